"""Imports TensorFlow once, for every module of the toolkit.

Importing the toolkit leaves the caller's process as it was: no environment variable is set and
TensorFlow's logger keeps its level. Quieting TensorFlow is the business of the command line
that uses the toolkit (before TensorFlow loads).
"""

import tensorflow as tf

v1 = tf.compat.v1

__all__ = ['tf', 'v1']
