"""Deprecated path: ``graph_models.layers`` is now `graph_models.nets.layers`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.nets.layers'])
