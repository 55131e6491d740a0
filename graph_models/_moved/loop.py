"""Deprecated path: ``graph_models.loop`` is now `graph_models.training.loop`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.training.loop'])
