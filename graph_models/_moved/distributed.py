"""Deprecated path: ``graph_models.distributed`` is now `graph_models.training.distributed`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.training.distributed'])
