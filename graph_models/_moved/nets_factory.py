"""Deprecated path: ``graph_models.nets_factory`` is now `graph_models.nets.factory`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.nets.factory'])
