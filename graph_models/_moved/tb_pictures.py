"""Deprecated path: ``graph_models.tb_pictures`` is now `graph_models.training.tensorboard`."""

from graph_models._moved import forward

forward(__name__, ['graph_models.training.tensorboard'])
