"""Adversarial review of issue 20: TF1 programs written as their authors wrote them.

Each test reproduces one finding with a small program: the order of calls of the original
script, not this project's.
"""

import json
import os

import numpy as np
import pytest

from freeze import sources
from graph_models import cli, quantize
from graph_models._tf import tf, v1


def _deep_mnist_tutorial_graph():
    """mnist_deep.py's order with tf.contrib.quantize: the loss, ``create_training_graph``,
    the optimizer, and only then ``accuracy`` from ``y_conv`` (the float logits, before the
    fake quant that the rewrite put in front of the loss)."""
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 784])
        y_ = v1.placeholder(tf.float32, [None, 10])
        with tf.name_scope('fc1'):
            w = tf.Variable(v1.truncated_normal([784, 16], stddev=0.1))
            h = tf.nn.relu(tf.matmul(x, w) + tf.Variable(tf.constant(0.1, shape=[16])))
        with tf.name_scope('dropout'):
            keep_prob = v1.placeholder(tf.float32)
            h = v1.nn.dropout(h, keep_prob)
        with tf.name_scope('fc2'):
            w = tf.Variable(v1.truncated_normal([16, 10], stddev=0.1))
            y_conv = tf.matmul(h, w) + tf.Variable(tf.constant(0.1, shape=[10]))
        with tf.name_scope('loss'):
            cross_entropy = tf.nn.softmax_cross_entropy_with_logits(labels=y_, logits=y_conv)
        cross_entropy = tf.reduce_mean(cross_entropy)
        quantize.create_training_graph(graph)
        with tf.name_scope('adam_optimizer'):
            v1.train.AdamOptimizer(1e-4).minimize(cross_entropy)
        with tf.name_scope('accuracy'):
            correct = tf.cast(tf.equal(tf.argmax(y_conv, 1), tf.argmax(y_, 1)), tf.float32)
        tf.reduce_mean(correct)
    return graph


def test_deep_mnist_accuracy_after_rewrite_has_one_output():
    """Finding 1: the accuracy built after ``create_training_graph`` reads ``fc2/add`` and the
    loss its fake quant: one prediction, not two candidates (was: 'cannot tell the output of
    the graph: candidates fc2/act_quant/FakeQuantWithMinMaxVars, fc2/add')."""
    graph_def = _deep_mnist_tutorial_graph().as_graph_def()
    assert sources.discover_outputs(graph_def) == ['fc2/act_quant/FakeQuantWithMinMaxVars']
