"""Deprecated path: ``graph_models.architectures`` is now `graph_models.nets.architectures`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.nets.architectures'])
