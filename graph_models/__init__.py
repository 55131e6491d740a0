"""TensorFlow 1 graph-mode MNIST models on TensorFlow 2.21 (``tf.compat.v1``).

The package is a house in wings, one per stage. Bottom to top (a wing imports only the
wings below it; tests/test_layout.py checks this from the source):

  quantize/   TF 1.15's ``tf.contrib.quantize`` for any TF1 graph; stands alone, like the
              top-level ``freeze`` toolkit (freeze, convert, verify).
  (base)      _tf, errors, fileio, data (MNIST / Fashion-MNIST), pictures (every PNG), and
              system/ (CPU features, signals, TensorFlow's stderr noise).
  nets/       the graph builders, the architecture table, the factory, the training and
              inference graphs, the Keras twins, precision.
  training/   the run config, the training loop, `train_and_eval`, scoring, checkpoints,
              TensorBoard, distributed and cluster-local training.
  export.py   our runs as sources for ``freeze``: freeze, export, reference graphs.
  litert/     everything that opens a ``.tflite``: read, evaluate, inspect, predict, labels.
  research/   graph models against their Keras twins, with statistics.
  tf1/        TF 1.x programs unchanged (``graph-models run``).
  commands/, cli.py   the ``graph-models`` command, thin on top.

The module paths of release 0.1 (``graph_models.train``, ``graph_models.run_export``, ...)
still import, with a ``DeprecationWarning`` naming the new path, for one more release: they
live in ``_moved/``, which this package searches after its own folder. The documentation's
architecture page describes every module.
"""

import os as _os

__version__ = '0.1.0'

# Old module paths: found only when no module of that name exists in the package itself.
__path__.append(_os.path.join(_os.path.dirname(__file__), '_moved'))
