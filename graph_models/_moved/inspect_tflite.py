"""Deprecated path: ``graph_models.inspect_tflite`` is now `graph_models.litert.model_file` and `graph_models.litert.inspect`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.litert.model_file', 'graph_models.litert.inspect'])
