"""Imports TensorFlow once, with its C++ start-up chatter silenced (a user's setting wins)."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel('ERROR')
v1 = tf.compat.v1

__all__ = ['tf', 'v1']
