"""The process and the machine: what the CPU can do, signals, and TensorFlow's stderr noise.

Modules:
  cpu: ``/proc/cpuinfo`` flags (AVX512_BF16, AMX) and the CPU's model name.
  signals: SIGINT/SIGTERM handling that lets training save and exit with one line.
  stderr_filter: `StderrFilter`, which hides TensorFlow's start-up lines from the command line.
  tf_startup: `defer_keras`, TensorFlow's start-up in a command-line process without the
    Keras 3 import it makes eagerly.

May import: the base modules (`graph_models.errors`); no TensorFlow at import time.
"""
