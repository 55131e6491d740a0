"""Deprecated path: ``graph_models.compare_qat`` is now `graph_models.research.keras_qat`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.research.keras_qat'])
