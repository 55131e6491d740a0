"""Deprecated path: ``graph_models.cnn`` is now `graph_models.nets.cnn`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.nets.cnn'])
