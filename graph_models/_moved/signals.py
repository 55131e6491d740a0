"""Deprecated path: ``graph_models.signals`` is now `graph_models.system.signals`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.system.signals'])
