"""Deprecated path: ``graph_models.graphs`` is now `graph_models.nets.graphs`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.nets.graphs'])
