"""Trains a tf.layers CNN with batch norm and quantization-aware training (TensorFlow 1.x)."""
import argparse
import os

import tensorflow as tf
from tensorflow.examples.tutorials.mnist import input_data

from cnn_layers_model import cnn


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--data_dir', default='/tmp/mnist_data')
    parser.add_argument('--train_dir', default='/tmp/cnn_train')
    parser.add_argument('--steps', type=int, default=1000)
    parser.add_argument('--batch_size', type=int, default=64)
    args = parser.parse_args()

    mnist = input_data.read_data_sets(args.data_dir)
    images = tf.placeholder(tf.float32, [None, 784], name='images')
    labels = tf.placeholder(tf.int64, [None], name='labels')
    logits = cnn(images, is_training=True)
    loss = tf.losses.sparse_softmax_cross_entropy(labels=labels, logits=logits)

    tf.contrib.quantize.create_training_graph(quant_delay=0)
    global_step = tf.train.get_or_create_global_step()
    update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    with tf.control_dependencies(update_ops):
        train_op = tf.train.AdamOptimizer(1e-3).minimize(loss, global_step=global_step)

    saver = tf.train.Saver()
    tf.gfile.MakeDirs(args.train_dir)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for step in range(args.steps):
            xs, ys = mnist.train.next_batch(args.batch_size)
            _, value = sess.run([train_op, loss], {images: xs, labels: ys})
            if step % 50 == 0:
                print('step %d, loss %.3f' % (step, value))
        saver.save(sess, os.path.join(args.train_dir, 'model.ckpt'), global_step=global_step)
        print('trained %d steps' % args.steps)


if __name__ == '__main__':
    main()
