"""TF 1.x programs, unchanged, on TensorFlow 2.21: ``graph-models run SCRIPT.py [ARGS]``.

Three ways in, each of which switches the process into TF 1.x mode (importing ``graph_models``
itself changes no global state):

* ``graph-models run SCRIPT.py [ARGS...]`` and ``python -m graph_models.tf1 SCRIPT.py [ARGS]``
  run a program as ``python SCRIPT.py`` ran it under TF 1.15 (`graph_models.tf1.runner`);
* ``import graph_models.tf1 as tf`` in place of ``import tensorflow as tf``: this module then
  is the TF 1.x ``tensorflow`` (attribute reads are forwarded to it), and a later
  ``import tensorflow`` anywhere in the process gets it too.

TF 1.x mode: Keras 2 (``TF_USE_LEGACY_KERAS=1``, set when TensorFlow is not imported yet),
``tf.compat.v1.disable_v2_behavior()``, and proxies for ``tensorflow`` and ``keras``.

Modules:
  module: the proxy modules, their import finder and `TF1APIError`.
  switch: `install`, which switches the process into TF 1.x mode.
  contrib_api: the ``tensorflow`` proxy tree, ``tf.contrib`` and what has no equivalent.
  keras2: ``import keras`` / ``tf.keras`` as tf-keras' v1 API, ``keras.datasets`` loaders.
  input_data: ``tensorflow.examples.tutorials.mnist.input_data`` on `graph_models.data`.
  tutorials_mnist: ``tensorflow.examples.tutorials.mnist.mnist``, the tutorials' model.
  contrib_lite: ``tf.contrib.lite`` through the ``freeze`` toolkit (integer models verified).
  report: which TF 1.x names a program used and what they were mapped to (``run --report``).
  runner: `run_script`, the ``python SCRIPT.py`` semantics.
"""

from graph_models.tf1 import switch as _switch

_TF = _switch.install()['tensorflow']
_SUBMODULES = ('module', 'switch', 'contrib_api', 'keras2', 'input_data', 'tutorials_mnist',
               'contrib_lite', 'report', 'runner')


def __getattr__(name):
    if name in _SUBMODULES:  # Not imported yet: the import system imports it (not tf.<name>).
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(_TF, name)


def __dir__():
    return dir(_TF)
