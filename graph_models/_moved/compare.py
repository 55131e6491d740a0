"""Deprecated path: ``graph_models.compare`` is now `graph_models.research.compare`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.research.compare'])
