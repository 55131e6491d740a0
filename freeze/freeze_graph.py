"""Freezing: variables to constants, only what the outputs need.

`freeze_session` is the classic utility for any Session; `freeze_checkpoint` goes from a training
checkpoint folder to a frozen inference ``GraphDef``. It rebuilds the *inference* graph from
``run_config.json`` (fixed batch size, no dropout, the quantization eval rewrite when the run was
quantized), restores the checkpoint and freezes it. It then checks that no variable, optimizer,
summary, saver or moving-average update op is left.
"""

import dataclasses
import difflib
import os
from typing import Iterable, List, Optional, Sequence

from graph_models import checkpoints, graphs
from graph_models._tf import tf, v1
from graph_models.errors import CheckpointError, GraphModelsError, tf_error_reason
from graph_models.fileio import atomic_write
from graph_models.run_config import RunConfig, read_run_config

FROZEN_GRAPH_FILE = 'frozen_graph.pb'

# Op types that must not survive in a frozen inference graph.
_STATEFUL_PREFIXES = ('Variable', 'VarHandle', 'ReadVariable', 'Assign', 'Apply', 'ResourceApply',
                      'ResourceSparseApply', 'Save', 'Restore', 'MergeV2Checkpoints')
_SUMMARY_SUFFIX = 'Summary'


class FreezeError(GraphModelsError):
    """A graph cannot be frozen as asked (unknown output name, stateful ops left, ...)."""


@dataclasses.dataclass
class FrozenModel:
    """A frozen inference graph and where it came from.

    Attributes:
      graph_def: the frozen ``GraphDef``.
      run: the run config of the checkpoint.
      checkpoint: the checkpoint prefix that was restored.
      batch_size: the static batch size of ``Input``.
      quantized: whether the graph has the quantization eval rewrite.
    """

    graph_def: tf.compat.v1.GraphDef
    run: RunConfig
    checkpoint: str
    batch_size: int
    quantized: bool


def _op_name(name: str) -> str:
    return name.split(':')[0]


def _available_names(graph_def) -> List[str]:
    """Names worth suggesting: inputs and ops nothing else consumes (likely outputs)."""
    consumed = {_op_name(i.lstrip('^')) for node in graph_def.node for i in node.input}
    names = [n.name for n in graph_def.node
             if n.op == 'Placeholder' or (n.name not in consumed and n.op not in (
                 'NoOp', 'Const', 'VarHandleOp', 'VariableV2') and not n.op.startswith(
                     _STATEFUL_PREFIXES) and 'save' not in n.name.lower())]
    return names


def check_output_names(graph_def, output_names: Iterable[str]) -> List[str]:
    """Returns the op names of ``output_names``; raises `FreezeError` for unknown ones.

    Args:
      graph_def: the graph to look in.
      output_names: tensor or op names (``Output`` or ``Output:0``).

    Raises:
      FreezeError: naming the unknown output, close matches and the graph's likely outputs.
    """
    ops = {node.name for node in graph_def.node}
    names = [_op_name(n) for n in output_names]
    for name in names:
        if name not in ops:
            close = difflib.get_close_matches(name, ops, n=3)
            hint = f'did you mean {", ".join(close)}? ' if close else ''
            available = _available_names(graph_def)[:15]
            raise FreezeError(f'no op named {name!r} in the graph; {hint}inputs and outputs '
                              f'available: {", ".join(available)}')
    return names


def freeze_session(session: v1.Session, keep_var_names: Optional[Sequence[str]] = None,
                   output_names: Optional[Sequence[str]] = None,
                   clear_devices: bool = True) -> tf.compat.v1.GraphDef:
    """Freezes the state of a session into a pruned ``GraphDef``.

    Variables become constants holding their current values, and only the ops the outputs need
    are kept.

    Args:
      session: the Session whose graph and variable values are frozen.
      keep_var_names: variables to leave as variables (by op name); None converts all.
      output_names: output op or tensor names; default ``['Output']``.
      clear_devices: drop device placements so the graph loads anywhere.

    Returns:
      The frozen ``GraphDef``.

    Raises:
      FreezeError: if an output name does not exist (the message lists likely names).
    """
    graph = session.graph
    graph_def = graph.as_graph_def()
    names = check_output_names(graph_def, output_names or [graphs.OUTPUT])
    if clear_devices:
        for node in graph_def.node:
            node.device = ''
    with graph.as_default():
        return v1.graph_util.convert_variables_to_constants(
            session, graph_def, names,
            variable_names_blacklist=list(keep_var_names) if keep_var_names else None)


def stateful_ops(graph_def) -> List[str]:
    """``name (type)`` of each variable, optimizer, summary, saver or update op in a graph."""
    return [f'{node.name} ({node.op})' for node in graph_def.node
            if node.op.startswith(_STATEFUL_PREFIXES) or node.op.endswith(_SUMMARY_SUFFIX)
            or 'AssignMovingAvg' in node.name or node.op.startswith('RandomUniform')]


def build_restored_inference_graph(run: RunConfig, checkpoint: str, *, batch_size: int = 1,
                                   quantized: Optional[bool] = None):
    """Rebuilds a run's inference graph and restores a checkpoint into it.

    Args:
      run: the run config.
      checkpoint: checkpoint prefix.
      batch_size: static batch size of ``Input``.
      quantized: with the quantization eval rewrite; default: whether the run was quantized.
        False on a quantized run gives its float graph (model variables only).

    Returns:
      ``(session, model_tensors)``; the caller closes the session.

    Raises:
      CheckpointError: if the checkpoint does not fit the model or cannot be read.
    """
    quantized = bool(run.quantization) if quantized is None else quantized
    if quantized and not run.quantization:
        raise CheckpointError('this checkpoint comes from a float run: it has no quantization '
                              'ranges; train with --quantize, or export with post-training '
                              'quantization')
    rewrite = run.quantization.eval_rewrite() if quantized else None
    graph, model = graphs.build_inference_graph(run.model, batch_size=batch_size,
                                                rewrite=rewrite)
    with graph.as_default():
        variables = (v1.global_variables() if quantized
                     else checkpoints.model_variables(graph))
        checkpoints.check_variables_fit(checkpoint, variables)
        saver = v1.train.Saver(variables)
    session = v1.Session(graph=graph)
    try:
        with graph.as_default():
            saver.restore(session, checkpoint)
    except tf.errors.OpError as e:
        session.close()
        raise CheckpointError(f'cannot restore {checkpoint}: {tf_error_reason(e.message)}') \
            from None
    return session, model


def freeze_checkpoint(checkpoint: str, *, batch_size: int = 1,
                      quantized: Optional[bool] = None) -> FrozenModel:
    """Rebuilds the inference graph of a training checkpoint, restores it and freezes it.

    Args:
      checkpoint: a checkpoint folder written by training (its latest checkpoint) or a prefix.
      batch_size: static batch size of ``Input`` (1 for TFLite and Edge TPU).
      quantized: see `build_restored_inference_graph`.

    Returns:
      The `FrozenModel`; its graph has the outputs ``Output`` and ``Logits``.

    Raises:
      CheckpointError: missing checkpoint or run config, or a checkpoint of another model.
      FreezeError: if a stateful op is left in the frozen graph.
    """
    if batch_size <= 0:
        raise FreezeError(f'batch size must be positive, got {batch_size}')
    prefix = checkpoints.resolve_checkpoint(checkpoint)
    run = read_run_config(checkpoint if os.path.isdir(checkpoint) else prefix)
    session, _ = build_restored_inference_graph(run, prefix, batch_size=batch_size,
                                                quantized=quantized)
    try:
        graph_def = freeze_session(session, output_names=[graphs.OUTPUT, graphs.LOGITS])
    finally:
        session.close()
    left = stateful_ops(graph_def)
    if left:
        raise FreezeError(f'the frozen graph still has stateful ops: {", ".join(left[:5])}')
    quantized = bool(run.quantization) if quantized is None else quantized
    return FrozenModel(graph_def, run, prefix, batch_size, quantized)


def write_graph_def(graph_def, path: str, as_text: bool = False) -> None:
    """Writes a ``GraphDef`` as binary ``.pb`` (or text ``.pbtxt``) atomically."""
    from google.protobuf import text_format
    content = (text_format.MessageToString(graph_def).encode() if as_text
               else graph_def.SerializeToString())
    atomic_write(path, content)


def read_graph_def(path: str) -> tf.compat.v1.GraphDef:
    """Reads a binary frozen ``GraphDef``.

    Raises:
      FreezeError: if the file is missing, empty or not a GraphDef.
    """
    from google.protobuf.message import DecodeError
    try:
        with open(path, 'rb') as f:
            content = f.read()
    except OSError as e:
        raise FreezeError(f'cannot read {path}: {e.strerror}') from None
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(content)
    except (DecodeError, RuntimeWarning, ValueError) as e:
        raise FreezeError(f'{path} is not a frozen GraphDef (.pb) file ({e})') from None
    if not graph_def.node:
        raise FreezeError(f'{path} holds no graph (empty or not a GraphDef .pb file)')
    return graph_def
