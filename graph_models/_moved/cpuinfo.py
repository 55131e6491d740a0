"""Deprecated path: ``graph_models.cpuinfo`` is now `graph_models.system.cpu`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.system.cpu'])
