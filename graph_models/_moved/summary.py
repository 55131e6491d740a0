"""Deprecated path: ``graph_models.summary`` is now `graph_models.nets.summary_table` and `graph_models.training.run_config`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.nets.summary_table', 'graph_models.training.run_config'])
