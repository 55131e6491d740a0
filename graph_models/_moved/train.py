"""Deprecated path: ``graph_models.train`` is now `graph_models.training.train`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.training.train'])
