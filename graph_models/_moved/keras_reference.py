"""Deprecated path: ``graph_models.keras_reference`` is now `graph_models.nets.keras_twins`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.nets.keras_twins'])
