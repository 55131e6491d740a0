"""Deprecated path: ``graph_models.run_export`` is now `graph_models.export`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.export'])
