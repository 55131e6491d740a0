"""Deprecated path: ``graph_models.noise`` is now `graph_models.system.stderr_filter`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.system.stderr_filter'])
