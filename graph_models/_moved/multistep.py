"""Deprecated path: ``graph_models.multistep`` is now `graph_models.training.multistep`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.training.multistep'])
