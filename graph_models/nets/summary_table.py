"""A Keras-like layer table of a graph model (``graph-models summary``)."""

from typing import List, Tuple

from graph_models.nets import graphs
from graph_models._tf import v1
from graph_models.nets.factory import ModelConfig, count_parameters


def layer_table(config: ModelConfig) -> Tuple[List[Tuple[str, str, int]], int, int]:
    """The layers of a graph model with their output shapes and parameter counts.

    Args:
      config: the model.

    Returns:
      ``(rows, trainable, non_trainable)``: rows of ``(layer, output shape, parameters)`` in
      order, starting with ``Input``; the parameter counts (batch-norm moving statistics are
      non-trainable, as in Keras; the global step is not a parameter).
    """
    graph, model = graphs.build_inference_graph(config, batch_size=None)
    with graph.as_default():
        trainable = v1.trainable_variables()
        parameters = [v for v in v1.global_variables() if v.op.name.startswith(config.name + '/')]
    rows = [('Input', str(tuple(model.inputs.shape.as_list())), 0)]
    for layer, tensor in model.end_points.items():
        variables = [v for v in parameters if v.op.name.startswith(f'{config.name}/{layer}/')]
        rows.append((layer, str(tuple(tensor.shape.as_list())), count_parameters(variables)))
    total_trainable = count_parameters(trainable)
    return rows, total_trainable, count_parameters(parameters) - total_trainable


def format_table(config: ModelConfig) -> str:
    """The printed summary, with the totals line Keras' ``model.summary()`` has."""
    rows, trainable, non_trainable = layer_table(config)
    width = max(len(r[0]) for r in rows) + 2
    lines = [f'Model: "{config.name}" (TF1 graph)',
             f'{"Layer":<{width}}{"Output Shape":<22}{"Param #":>10}', '-' * (width + 32)]
    lines += [f'{name:<{width}}{shape:<22}{params:>10,}' for name, shape, params in rows]
    lines += ['-' * (width + 32), f'Total params: {trainable + non_trainable:,}',
              f'Trainable params: {trainable:,}', f'Non-trainable params: {non_trainable:,}']
    return '\n'.join(lines)


