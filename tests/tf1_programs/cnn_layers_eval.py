"""Rebuilds the CNN for inference, rewrites it with create_eval_graph, restores the training
checkpoint and saves the eval checkpoint that TFLite export reads (TensorFlow 1.x)."""
import argparse
import os

import numpy as np
import tensorflow as tf
from tensorflow.examples.tutorials.mnist import input_data

from cnn_layers_model import cnn


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--data_dir', default='/tmp/mnist_data')
    parser.add_argument('--train_dir', default='/tmp/cnn_train')
    parser.add_argument('--eval_dir', default='/tmp/cnn_eval')
    parser.add_argument('--tflite', default='', help='also write a uint8 .tflite here')
    args = parser.parse_args()

    mnist = input_data.read_data_sets(args.data_dir)
    tf.gfile.MakeDirs(args.eval_dir)
    g = tf.Graph()
    with g.as_default():
        images = tf.placeholder(tf.float32, [None, 784], name='images')
        logits = cnn(images, is_training=False)
        probs = tf.nn.softmax(logits, name='probs')
        tf.contrib.quantize.create_eval_graph(input_graph=g)
        saver = tf.train.Saver()
        with tf.Session(graph=g) as sess:
            saver.restore(sess, tf.train.latest_checkpoint(args.train_dir))
            predicted = sess.run(probs, {images: mnist.test.images}).argmax(axis=1)
            print('eval accuracy %.4f' % np.mean(predicted == mnist.test.labels))
            saver.save(sess, os.path.join(args.eval_dir, 'eval.ckpt'))
            if args.tflite:
                converter = tf.contrib.lite.TFLiteConverter.from_session(sess, [images], [probs])
                converter.inference_type = tf.contrib.lite.constants.QUANTIZED_UINT8
                converter.quantized_input_stats = {'images': (0., 255.)}
                with tf.gfile.GFile(args.tflite, 'wb') as f:
                    f.write(converter.convert())


if __name__ == '__main__':
    main()
