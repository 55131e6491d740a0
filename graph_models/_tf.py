"""Imports TensorFlow once: every module of the package imports ``tf`` and ``v1`` from here.

The import itself is the ``freeze`` toolkit's, so both packages load TensorFlow the same way;
neither changes the process (environment, logger levels): only the command line quiets
TensorFlow.
"""

from freeze._tf import tf, v1

__all__ = ['tf', 'v1']
