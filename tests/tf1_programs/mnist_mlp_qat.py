"""MNIST MLP with quantization-aware training, written for TensorFlow 1.15.

The classic tutorial graph (placeholders, tf.matmul, xavier init), rewritten with
tf.contrib.quantize for 8-bit export, TensorBoard logs and a Saver checkpoint.
"""
import argparse
import os
import sys

import tensorflow as tf
from tensorflow.examples.tutorials.mnist import input_data

FLAGS = None


def main(_):
    mnist = input_data.read_data_sets(FLAGS.data_dir, one_hot=True)

    x = tf.placeholder(tf.float32, [None, 784], name='x')
    y_ = tf.placeholder(tf.float32, [None, 10], name='y_')

    init = tf.contrib.layers.xavier_initializer()
    with tf.variable_scope('hidden'):
        w1 = tf.get_variable('weights', [784, FLAGS.hidden], initializer=init)
        b1 = tf.get_variable('biases', [FLAGS.hidden], initializer=tf.zeros_initializer())
        h1 = tf.nn.relu(tf.matmul(x, w1) + b1)
    with tf.variable_scope('logits'):
        w2 = tf.get_variable('weights', [FLAGS.hidden, 10], initializer=init)
        b2 = tf.get_variable('biases', [10], initializer=tf.zeros_initializer())
        logits = tf.matmul(h1, w2) + b2
    probs = tf.nn.softmax(logits, name='probs')

    cross_entropy = tf.reduce_mean(
        tf.nn.softmax_cross_entropy_with_logits_v2(labels=y_, logits=logits))
    tf.contrib.quantize.create_training_graph(input_graph=tf.get_default_graph(),
                                              quant_delay=FLAGS.quant_delay)
    train_step = tf.train.AdamOptimizer(FLAGS.learning_rate).minimize(cross_entropy)

    correct = tf.equal(tf.argmax(probs, 1), tf.argmax(y_, 1))
    accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
    tf.summary.scalar('cross_entropy', cross_entropy)
    tf.summary.scalar('accuracy', accuracy)
    merged = tf.summary.merge_all()

    saver = tf.train.Saver()
    with tf.Session() as sess:
        writer = tf.summary.FileWriter(FLAGS.log_dir, sess.graph)
        sess.run(tf.global_variables_initializer())
        for i in range(FLAGS.steps):
            batch_xs, batch_ys = mnist.train.next_batch(FLAGS.batch_size)
            summary, _ = sess.run([merged, train_step], feed_dict={x: batch_xs, y_: batch_ys})
            writer.add_summary(summary, i)
        writer.close()
        acc = sess.run(accuracy, feed_dict={x: mnist.test.images, y_: mnist.test.labels})
        print('test accuracy %g' % acc)
        path = saver.save(sess, os.path.join(FLAGS.train_dir, 'model.ckpt'))
        print('saved %s' % path)


if __name__ == '__main__':
    parser = argparse.ArgumentParser()
    parser.add_argument('--data_dir', type=str, default='/tmp/tensorflow/mnist/input_data')
    parser.add_argument('--train_dir', type=str, default='/tmp/mnist_qat')
    parser.add_argument('--log_dir', type=str, default='/tmp/mnist_qat/logs')
    parser.add_argument('--steps', type=int, default=2000)
    parser.add_argument('--batch_size', type=int, default=100)
    parser.add_argument('--hidden', type=int, default=128)
    parser.add_argument('--quant_delay', type=int, default=0)
    parser.add_argument('--learning_rate', type=float, default=1e-3)
    FLAGS, unparsed = parser.parse_known_args()
    tf.app.run(main=main, argv=[sys.argv[0]] + unparsed)
