"""A TF-Slim LeNet-style network with arg_scope and batch norm (TensorFlow 1.x, tf.contrib.slim)."""
import argparse
import os

import tensorflow as tf
import tensorflow.contrib.slim as slim
from tensorflow.examples.tutorials.mnist import input_data


def lenet(images, is_training):
    net = tf.reshape(images, [-1, 28, 28, 1])
    with slim.arg_scope([slim.conv2d, slim.fully_connected],
                        activation_fn=tf.nn.relu,
                        normalizer_fn=slim.batch_norm,
                        normalizer_params={'is_training': is_training, 'decay': 0.9},
                        weights_initializer=tf.contrib.layers.variance_scaling_initializer(),
                        weights_regularizer=slim.l2_regularizer(1e-4)):
        net = slim.conv2d(net, 8, [3, 3], scope='conv1')
        net = slim.max_pool2d(net, [2, 2], scope='pool1')
        net = slim.conv2d(net, 16, [3, 3], scope='conv2')
        net = slim.max_pool2d(net, [2, 2], scope='pool2')
        net = slim.flatten(net)
        net = slim.fully_connected(net, 32, scope='fc3')
    return slim.fully_connected(net, 10, activation_fn=None, normalizer_fn=None,
                                scope='logits')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--data_dir', default='/tmp/mnist_data')
    parser.add_argument('--train_dir', default='/tmp/slim_lenet')
    parser.add_argument('--steps', type=int, default=500)
    args = parser.parse_args()

    mnist = input_data.read_data_sets(args.data_dir, one_hot=True)
    images = tf.placeholder(tf.float32, [None, 784], name='input')
    labels = tf.placeholder(tf.float32, [None, 10], name='labels')
    is_training = tf.placeholder_with_default(False, [], name='is_training')
    logits = lenet(images, is_training)
    predictions = tf.nn.softmax(logits, name='predictions')

    tf.losses.softmax_cross_entropy(labels, logits)
    total_loss = tf.losses.get_total_loss()
    global_step = tf.contrib.framework.get_or_create_global_step()
    optimizer = tf.train.MomentumOptimizer(0.05, 0.9)
    train_op = slim.learning.create_train_op(total_loss, optimizer, global_step=global_step)

    print('model variables: %d' % len(slim.get_model_variables()))
    saver = tf.train.Saver()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(args.steps):
            xs, ys = mnist.train.next_batch(50)
            loss = sess.run(train_op, {images: xs, labels: ys, is_training: True})
        print('final loss %.3f' % loss)
        tf.gfile.MakeDirs(args.train_dir)
        saver.save(sess, os.path.join(args.train_dir, 'model.ckpt'), global_step=global_step)


if __name__ == '__main__':
    main()
