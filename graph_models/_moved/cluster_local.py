"""Deprecated path: ``graph_models.cluster_local`` is now `graph_models.training.cluster_local`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.training.cluster_local'])
