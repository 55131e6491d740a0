"""Deprecated path: ``graph_models.evaluate`` is now `graph_models.litert.evaluate` and `graph_models.litert.model_file`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.litert.evaluate', 'graph_models.litert.model_file'])
