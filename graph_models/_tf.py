"""Imports TensorFlow once, with its C++ start-up chatter silenced.

Every module of the package imports ``tf`` and ``v1`` from here; the import itself is the
``freeze`` toolkit's (``TF_CPP_MIN_LOG_LEVEL`` set before TensorFlow loads, a user's own setting
wins), so both packages load TensorFlow the same way.
"""

from freeze._tf import tf, v1

__all__ = ['tf', 'v1']
