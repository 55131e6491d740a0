"""Deprecated path: ``graph_models.mlp`` is now `graph_models.nets.mlp`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.nets.mlp'])
