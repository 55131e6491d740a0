"""Deprecated path: ``graph_models.stats`` is now `graph_models.research.statistics`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.research.statistics'])
