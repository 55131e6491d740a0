"""Deprecated path: ``graph_models.evaluator`` is now `graph_models.training.scoring`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.training.scoring'])
