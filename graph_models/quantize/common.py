"""Small graph helpers shared by the folding and quantization rewrites."""

from typing import List, Optional, Sequence

from graph_models.quantize._tf import tf, v1

# The step counter the delays read, as TF 1.15 named it (not the global step).
QUANTIZATION_STEP = 'fake_quantization_step'
FAKE_QUANT_TYPES = frozenset({'FakeQuantWithMinMaxVars', 'FakeQuantWithMinMaxArgs',
                              'FakeQuantWithMinMaxVarsPerChannel'})
QUANTIZATION_VARIABLES = 'quantization_variables'


def context_of(name: str) -> str:
    """``a/b/Conv2D`` -> ``a/b``; a root op (no scope) -> ``''``."""
    return name.rsplit('/', 1)[0] if '/' in name else ''


def join(context: str, name: str) -> str:
    return f'{context}/{name}' if context else name


def consumers(tensor: tf.Tensor) -> List[tf.Operation]:
    """The distinct ops reading ``tensor``, in graph order."""
    seen, out = set(), []
    for op in tensor.consumers():
        if op.name not in seen:
            seen.add(op.name)
            out.append(op)
    return out


def reroute(old: tf.Tensor, new: tf.Tensor, only: Optional[Sequence[tf.Operation]] = None) -> int:
    """Makes consumers of ``old`` (all, or those in ``only``) read ``new``; returns how many
    inputs changed. The op producing ``new`` is never rerouted (it may read ``old``)."""
    allowed = None if only is None else {op.name for op in only}
    changed = 0
    for op in consumers(old):
        if op is new.op or (allowed is not None and op.name not in allowed):
            continue
        for index, tensor in enumerate(op.inputs):
            if tensor is old or tensor.name == old.name:
                op._update_input(index, new)  # pylint: disable=protected-access
                changed += 1
    return changed


def followed_by_fake_quant(tensor: tf.Tensor) -> bool:
    """Whether a fake-quant op already reads ``tensor`` (directly or via Identity/Reshape)."""
    pending = list(tensor.consumers())
    while pending:
        op = pending.pop()
        if op.type in FAKE_QUANT_TYPES:
            return True
        if op.type in ('Identity', 'Reshape'):
            pending.extend(op.outputs[0].consumers())
    return False


def quantization_step(graph: tf.Graph) -> tf.Tensor:
    """TF 1.15's counter of graph runs: ``fake_quantization_step``, incremented on each run.

    Created once per graph at the root scope; later calls return the same tensor
    (``fake_quantization_step/Identity:0``), which holds the incremented value.
    """
    try:
        return graph.get_tensor_by_name(QUANTIZATION_STEP + '/Identity:0')
    except KeyError:
        pass
    with graph.as_default(), graph.name_scope(None), v1.variable_scope(
            v1.VariableScope(reuse=False), auxiliary_name_scope=False):
        step = v1.get_variable(QUANTIZATION_STEP, shape=[], dtype=tf.int64,
                               initializer=v1.zeros_initializer(), trainable=False,
                               collections=[v1.GraphKeys.GLOBAL_VARIABLES])
        with graph.name_scope(step.op.name + '/'):
            # One increment per session run that reads it, for reference and resource
            # variables alike.
            return tf.identity(v1.assign_add(step, 1), name='Identity')


def is_variable_read(tensor: tf.Tensor) -> bool:
    """Whether ``tensor`` is the value of a variable (reference or resource), as a weight is."""
    op = tensor.op
    if op.type == 'ReadVariableOp':
        return True
    if op.type in ('VariableV2', 'Variable'):
        return True
    if op.type == 'Identity':
        src = op.inputs[0].op
        if src.type in ('VariableV2', 'Variable', 'ReadVariableOp'):
            return True
        if src.type == 'Identity' and src.inputs[0].op.type in ('VariableV2', 'Variable'):
            return True
        # Partitioned variables: Identity(ConcatV2(Identity(var), ...)).
        if src.type == 'ConcatV2' and all(is_variable_read(t) for t in src.inputs[:-1]):
            return True
    return False
