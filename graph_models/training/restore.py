"""The one way to rebuild one of our runs' inference graphs and restore a checkpoint into it.

Every command that scores or exports a run (``eval``, ``freeze``, ``export``, the evaluator of
training and comparison) goes through here. Before restoring, every variable's name and shape is
checked against the checkpoint; every restore failure (missing or truncated files, a checkpoint
of another model, ``NotFoundError``, ``OutOfRangeError``, ``DataLossError``...) becomes a
`CheckpointError` with a one-line message.
"""

import dataclasses
import os
from typing import Dict, Optional, Sequence, Tuple

from graph_models.training import checkpoints
from graph_models.nets import graphs
from graph_models._tf import tf, v1
from graph_models.errors import CheckpointError, tf_error_reason
from graph_models.training.run_config import RunConfig, read_run_config


def open_run(path: str) -> Tuple[RunConfig, str]:
    """``(run config, checkpoint prefix)`` of a run folder or of a checkpoint prefix in one.

    Raises:
      CheckpointError: no checkpoint, or no valid ``run_config.json`` beside it.
    """
    prefix = checkpoints.resolve_checkpoint(path)
    return read_run_config(path if os.path.isdir(path) else prefix), prefix


def is_run(path: str) -> bool:
    """Whether ``path`` is one of our run folders (or a checkpoint prefix inside one)."""
    from graph_models.training.run_config import run_config_path
    folder = path if os.path.isdir(path) else os.path.dirname(path) or '.'
    if not os.path.isfile(run_config_path(folder)):
        return False
    return os.path.isdir(path) or os.path.isfile(path + '.index')


def restore_variables(session: v1.Session, checkpoint: str,
                      variables: Sequence[tf.Variable], saver=None) -> None:
    """Checks ``variables`` against ``checkpoint`` (names, shapes), then restores them.

    Args:
      session: the session of the variables' graph.
      checkpoint: checkpoint prefix.
      variables: the variables to restore.
      saver: a ``Saver`` of exactly these variables, to reuse (repeated restores into one
        graph would otherwise add a saver's ops each time).

    Raises:
      CheckpointError: a missing or mis-shaped variable, or any read failure.
    """
    renamed = checkpoints.check_variables_fit(checkpoint, list(variables))
    graph = session.graph
    try:
        with graph.as_default():
            if renamed:
                _load_values(session, checkpoint, variables, renamed)
                return
            saver = saver or v1.train.Saver(list(variables))
            saver.restore(session, checkpoint)
    except (tf.errors.OpError, ValueError) as e:
        reason = tf_error_reason(getattr(e, 'message', str(e)))
        raise CheckpointError(f'cannot restore {checkpoint}: {reason}; the checkpoint is '
                              'truncated, corrupt or of another model') from None


def _load_values(session: v1.Session, checkpoint: str, variables: Sequence[tf.Variable],
                 renamed: Dict[str, str]) -> None:
    """Restores a checkpoint that saved some variables under older names (see
    `graph_models.training.checkpoints.legacy_range_state_name`).

    Feeds each saved value into the variable's initializer in one run: no new ops, so it also
    works on the finalized graph of a resumed training (a renaming ``Saver`` would add ops).
    """
    reader = tf.train.load_checkpoint(checkpoint)
    feeds = {var.initializer.inputs[1]: reader.get_tensor(renamed.get(var.op.name, var.op.name))
             for var in variables}
    session.run([var.initializer for var in variables], feeds)


@dataclasses.dataclass
class RestoredRun:
    """A run's inference graph with a checkpoint restored into it.

    Attributes:
      run: the run config.
      checkpoint: the prefix restored.
      session: the session (call `close`).
      model: the graph's `graphs.ModelTensors`.
      quantized: whether the graph has the quantization eval rewrite.
    """

    run: RunConfig
    checkpoint: str
    session: v1.Session
    model: graphs.ModelTensors
    quantized: bool

    def close(self) -> None:
        self.session.close()


def build_restored_inference_graph(run: RunConfig, checkpoint: str, *,
                                   batch_size: Optional[int] = 1,
                                   quantized: Optional[bool] = None):
    """Rebuilds a run's inference graph and restores a checkpoint into it.

    Args:
      run: the run config.
      checkpoint: checkpoint prefix.
      batch_size: static batch size of ``Input`` (None: dynamic).
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
    session = v1.Session(graph=graph)
    try:
        restore_variables(session, checkpoint, variables)
    except BaseException:
        session.close()
        raise
    return session, model


def restore_run(path: str, *, batch_size: Optional[int] = 1,
                quantized: Optional[bool] = None) -> RestoredRun:
    """`open_run` plus `build_restored_inference_graph`."""
    run, prefix = open_run(path)
    quantized = bool(run.quantization) if quantized is None else quantized
    session, model = build_restored_inference_graph(run, prefix, batch_size=batch_size,
                                                    quantized=quantized)
    return RestoredRun(run, prefix, session, model, quantized)
