"""Deprecated path: ``graph_models.checkpoints`` is now `graph_models.training.checkpoints`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.training.checkpoints'])
