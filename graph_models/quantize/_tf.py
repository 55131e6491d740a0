"""TensorFlow for the quantize toolkit, imported directly: the toolkit uses nothing else of
``graph_models`` and changes nothing in the caller's process."""

import tensorflow as tf

v1 = tf.compat.v1

__all__ = ['tf', 'v1']
