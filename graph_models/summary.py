"""A Keras-like layer table of a graph model (``graph-models summary``)."""

from typing import List, Tuple

from graph_models import graphs
from graph_models._tf import v1
from graph_models.nets_factory import ModelConfig, count_parameters


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


def find_run_config(folder: str) -> str:
    """The ``run_config.json`` of a run folder: in it, or in its only run subfolder.

    Raises:
      CheckpointError: if there is none, or several runs to choose from.
    """
    import os
    from graph_models.errors import CheckpointError
    from graph_models.run_config import RUN_CONFIG_FILE
    if not os.path.isdir(folder):
        raise CheckpointError(f'{folder} is not a folder')
    direct = os.path.join(folder, RUN_CONFIG_FILE)
    if os.path.isfile(direct):
        return direct
    found = sorted(os.path.join(folder, d, RUN_CONFIG_FILE) for d in os.listdir(folder)
                   if os.path.isfile(os.path.join(folder, d, RUN_CONFIG_FILE)))
    if len(found) == 1:
        return found[0]
    if not found:
        raise CheckpointError(f'{folder} holds no {RUN_CONFIG_FILE} (nor does any folder in it); '
                              'it is not a trained run')
    raise CheckpointError(f'{folder} holds {len(found)} runs; name one of: '
                          + ', '.join(os.path.dirname(p) for p in found))


def format_run(folder: str) -> str:
    """The layer table of a trained run, headed by its training settings."""
    from graph_models.run_config import read_run_config
    path = find_run_config(folder)
    run = read_run_config(path)
    quant = 'float'
    if run.quantization:
        q = run.quantization
        quant = (f'QAT {q.weight_bits}-bit weights, {q.activation_bits}-bit activations, '
                 f'quant delay {q.quant_delay}')
    header = [f'run: {path}',
              f'dataset {run.dataset}, {run.epochs} epochs, batch {run.batch_size}, '
              f'learning rate {run.learning_rate:g}, seed {run.seed}, {quant}']
    return '\n'.join(header) + '\n' + format_table(run.model)
