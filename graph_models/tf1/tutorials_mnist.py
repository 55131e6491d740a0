"""``tensorflow.examples.tutorials.mnist.mnist``: the two-hidden-layer model of TF 1.x's tutorials.

``fully_connected_feed.py`` imports it (``from tensorflow.examples.tutorials.mnist import
mnist``) and calls `inference`, `loss`, `training` and `evaluation`; the graph is TF 1.x's
(variables ``hidden1/weights``, ``hidden1/biases``, ``hidden2/...``, ``softmax_linear/...`` and a
``global_step``), built with ``tf.compat.v1``.
"""

import math

from freeze._tf import v1

NUM_CLASSES = 10
IMAGE_SIZE = 28
IMAGE_PIXELS = IMAGE_SIZE * IMAGE_SIZE


def _dense(inputs, fan_in: int, units: int):
    weights = v1.Variable(v1.truncated_normal([fan_in, units],
                                              stddev=1.0 / math.sqrt(float(fan_in))),
                          name='weights')
    biases = v1.Variable(v1.zeros([units]), name='biases')
    return v1.matmul(inputs, weights) + biases


def inference(images, hidden1_units, hidden2_units):
    """Logits ``[batch, NUM_CLASSES]`` of two ReLU layers and a linear one.

    Args:
      images: float ``[batch, IMAGE_PIXELS]``.
      hidden1_units: size of the first hidden layer.
      hidden2_units: size of the second hidden layer.
    """
    with v1.name_scope('hidden1'):
        hidden1 = v1.nn.relu(_dense(images, IMAGE_PIXELS, hidden1_units))
    with v1.name_scope('hidden2'):
        hidden2 = v1.nn.relu(_dense(hidden1, hidden1_units, hidden2_units))
    with v1.name_scope('softmax_linear'):
        logits = _dense(hidden2, hidden2_units, NUM_CLASSES)
    return logits


def loss(logits, labels):
    """Mean sparse softmax cross-entropy of ``logits`` against int ``labels`` ``[batch]``."""
    labels = v1.cast(labels, v1.int64)
    return v1.losses.sparse_softmax_cross_entropy(labels=labels, logits=logits)


def training(loss, learning_rate):  # pylint: disable=redefined-outer-name
    """A gradient-descent step on ``loss`` (with a ``loss`` scalar summary and a global step)."""
    v1.summary.scalar('loss', loss)
    optimizer = v1.train.GradientDescentOptimizer(learning_rate)
    global_step = v1.Variable(0, name='global_step', trainable=False)
    return optimizer.minimize(loss, global_step=global_step)


def evaluation(logits, labels):
    """The number of examples whose label is the top-1 logit (an int32 scalar)."""
    correct = v1.nn.in_top_k(logits, labels, 1)
    return v1.reduce_sum(v1.cast(correct, v1.int32))
