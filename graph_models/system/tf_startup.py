"""TensorFlow's start-up in a command-line process, without the Keras 3 it loads eagerly.

``import tensorflow`` (2.21) ends with ``importlib.import_module("keras.src.optimizers")``, "an
eager load for Keras' code" so that Keras 3 registers its optimizers, and ignores an
ImportError there. That import is about 0.8 s of TensorFlow's 3.5 s start-up on a 2-core
machine, and the commands that build, train, freeze, export and score TF1 graphs never use
Keras 3. `defer_keras` makes that one import fail while TensorFlow's ``__init__`` runs; any
later ``import keras`` (``compare``'s Keras twins, a program ``run`` runs) loads Keras as
usual, registrations included.

Only the command line calls it, for its own process: importing the library changes nothing.
"""

import importlib.abc
import importlib.machinery
import os
import sys


class _Deferred(importlib.abc.Loader):
    """The loader of ``keras`` while TensorFlow initializes: the import fails, nothing stays."""

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        raise ImportError('keras is loaded when used, not by import tensorflow')


class _KerasDeferral(importlib.abc.MetaPathFinder):
    """Finds ``keras`` (the real package's spec, deferred loader) only while ``tensorflow``'s
    ``__init__`` is running; otherwise leaves every name to the other finders."""

    def find_spec(self, name, path=None, target=None):
        if name != 'keras' or os.environ.get('TF_USE_LEGACY_KERAS') in ('true', 'True', '1'):
            return None  # With Keras 2 (``run``), TensorFlow imports tf_keras: leave it be.
        tf = sys.modules.get('tensorflow')
        if tf is None or not getattr(getattr(tf, '__spec__', None), '_initializing', False):
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None:  # TF also reads the package's folder from the spec (compat.v1).
            spec.loader = _Deferred()
        return spec


def defer_keras() -> None:
    """Has a coming ``import tensorflow`` skip its eager Keras 3 import (see the module).

    Does nothing once TensorFlow is imported, or when it is told to use Keras 2
    (``TF_USE_LEGACY_KERAS``: then it imports ``tf_keras``, which ``run`` needs).
    """
    if 'tensorflow' in sys.modules or any(isinstance(f, _KerasDeferral) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _KerasDeferral())
