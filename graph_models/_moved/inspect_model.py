"""Deprecated path: ``graph_models.inspect_model`` is now `graph_models.litert.inspect`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.litert.inspect'])
