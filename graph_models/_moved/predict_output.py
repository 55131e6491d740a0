"""Deprecated path: ``graph_models.predict_output`` is now `graph_models.litert.predict`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.litert.predict'])
