"""Everything that opens a ``.tflite``: reading, evaluating, inspecting, predicting.

Modules, bottom to top:
  model_file: `read_tflite`, `ModelFileError`, the FlatBuffer reader and the Edge TPU checks
    (imports nothing else of this wing).
  labels: class names from a model's metadata.
  evaluate: accuracy, agreement with the TF graph, latency, the ``eval --report`` folder.
  inspect: ``inspect`` for any model (a ``.tflite`` or a TF graph source).
  predict: classifying image files with any model.

May import: `graph_models.export` and everything below it.
"""
