"""Deprecated path: ``graph_models.eval_report`` is now `graph_models.litert.evaluate` and `graph_models.pictures`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.litert.evaluate', 'graph_models.pictures'])
