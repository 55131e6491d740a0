"""Deprecated path: ``graph_models.precision`` is now `graph_models.nets.precision`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.nets.precision'])
