"""Deprecated path: ``graph_models.restore`` is now `graph_models.training.restore`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.training.restore'])
