"""Finding checkpoints and restoring model variables from them."""

import os
import re
from typing import Dict, List, Optional

from graph_models._tf import tf, v1
from graph_models.errors import CheckpointError, abridged, tf_error_reason


def latest_checkpoint(folder: str) -> Optional[str]:
    """``tf.train.latest_checkpoint``, with a state file that is not text as one error.

    Returns:
      The prefix the ``checkpoint`` state file names, or None without a state file.

    Raises:
      CheckpointError: the state file is not UTF-8 text (TensorFlow raised
        ``UnicodeDecodeError``), or names a checkpoint that does not exist.
    """
    state_file = os.path.join(folder, 'checkpoint')
    try:
        # Not tf.train.latest_checkpoint: it logs "ERROR:tensorflow:Couldn't match files"
        # for a state file naming a missing checkpoint, a second line beside ours.
        state = tf.train.get_checkpoint_state(folder)
    except UnicodeDecodeError:
        raise CheckpointError(f'{state_file} is not a valid checkpoint state file (not UTF-8 '
                              'text); restore it, or delete it and pass a checkpoint prefix '
                              'such as model.ckpt-500') from None
    if state is None or not state.model_checkpoint_path:
        return None
    prefix = state.model_checkpoint_path
    if not (os.path.isfile(prefix + '.index') or os.path.isfile(prefix)):
        named = abridged(os.path.relpath(prefix, folder) if prefix.startswith(folder)
                         else prefix)
        raise CheckpointError(f'{state_file} names {named}, which does not exist (deleted or '
                              'moved); pass an existing checkpoint prefix such as '
                              'model.ckpt-500, or fix the state file')
    return prefix


def resolve_checkpoint(path: str) -> str:
    """Turns a checkpoint folder (its latest checkpoint) or prefix into a checkpoint prefix.

    Args:
      path: a folder written by training, or a prefix such as ``.../model.ckpt-500``.

    Returns:
      The checkpoint prefix.

    Raises:
      CheckpointError: if there is no readable checkpoint there.
    """
    if os.path.isdir(path):
        latest = latest_checkpoint(path)
        if latest is None:
            raise CheckpointError(f'{path} holds no checkpoint (no "checkpoint" state file '
                                  'naming one); pass a folder written by "graph-models train" '
                                  'or a prefix such as model.ckpt-500')
        return latest
    if os.path.isfile(path + '.index'):
        return path
    raise CheckpointError(f'no checkpoint at {path}; pass a checkpoint folder or a prefix such '
                          'as checkpoints/mlp-mnist/model.ckpt-500')


def model_variables(graph: tf.Graph) -> List[tf.Variable]:
    """The variables that define a trained model: weights, biases, batch-norm statistics.

    Excludes the global step, optimizer slots and quantization ranges.
    """
    with graph.as_default():
        variables = v1.trainable_variables() + v1.get_collection(
            v1.GraphKeys.MOVING_AVERAGE_VARIABLES)
    return list({v.op.name: v for v in variables}.values())


# A moving-average range's zero-debias state under TF 1.15's name: <s>/<s>/min/biased.
_RANGE_STATE = re.compile(
    r'^(?P<scope>.+)/(?P=scope)/(?P<end>min|max)/(?P<state>biased|local_step)$')


def legacy_range_state_name(name: str) -> Optional[str]:
    """The name our runs used before they matched TF 1.15's: ``<s>/<s>/min/biased`` ->
    ``<s>/min/biased`` (``local_step`` and ``max`` alike); None for any other variable."""
    match = _RANGE_STATE.match(name)
    return (f"{match['scope']}/{match['end']}/{match['state']}" if match else None)


def check_variables_fit(checkpoint: str, variables: List[tf.Variable]) -> Dict[str, str]:
    """Raises `CheckpointError` unless ``checkpoint`` has every variable, with its shape.

    A quantization range's zero-debias state may be saved under its older name (see
    `legacy_range_state_name`): runs written before the names matched TF 1.15's still fit.

    Returns:
      ``{variable name: name in the checkpoint}`` for the variables saved under an older name.
    """
    try:
        shapes = tf.train.load_checkpoint(checkpoint).get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as e:
        message = tf_error_reason(getattr(e, 'message', str(e)))
        raise CheckpointError(f'cannot read checkpoint {checkpoint} ({message}); it is corrupt '
                              'or incomplete') from None
    renamed = {}
    for var in variables:
        name, shape = var.op.name, var.shape.as_list()
        saved = name
        if name not in shapes and legacy_range_state_name(name) in shapes:
            saved = renamed[name] = legacy_range_state_name(name)
        if saved not in shapes:
            raise CheckpointError(f'checkpoint {checkpoint} has no variable {name}: it was '
                                  'written for a different model')
        if shapes[saved] != shape:
            raise CheckpointError(f'checkpoint {checkpoint} has {saved} with shape '
                                  f'{shapes[saved]}, the model needs {shape}: it was written '
                                  'for a different model')
    return renamed
