"""Deprecated path: ``graph_models.labels`` is now `graph_models.litert.labels` and `graph_models.export`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.litert.labels', 'graph_models.export'])
