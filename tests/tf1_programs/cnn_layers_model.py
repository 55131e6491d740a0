"""The CNN shared by cnn_layers_train.py and cnn_layers_eval.py (tf.layers, TF 1.x)."""
import tensorflow as tf


def cnn(images, is_training):
    """Two conv + batch-norm + ReLU blocks and a dense softmax head; returns the logits."""
    net = tf.reshape(images, [-1, 28, 28, 1])
    for i, filters in enumerate((8, 16)):
        with tf.variable_scope('conv%d' % (i + 1)):
            net = tf.layers.conv2d(net, filters, 3, strides=2, padding='same', use_bias=False)
            net = tf.layers.batch_normalization(net, training=is_training, fused=True)
            net = tf.nn.relu(net)
    net = tf.layers.flatten(net)
    return tf.layers.dense(net, 10, name='logits')
