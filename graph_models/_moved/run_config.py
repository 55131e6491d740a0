"""Deprecated path: ``graph_models.run_config`` is now `graph_models.training.run_config`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.training.run_config'])
