"""Loading any TF1 model as a frozen inference graph: ``.pb``, ``.pbtxt``, ``.meta`` + checkpoint,
SavedModel.

`load_source` is the one entry point. Whatever the source, the result is a `FrozenGraph`: a
pruned ``GraphDef`` with static input shapes and no variables, in which

* the inputs are the placeholders the outputs need (or ``input_arrays``);
* the outputs are ``output_arrays``, else the graph's one softmax, else its one sink; when that
  is ambiguous the error names the candidates;
* training switches are fed their inference values and folded away: ``keep_prob`` placeholders
  become 1, ``is_training``/``training`` switches False, dropout ``rate`` placeholders 0, any
  other ``placeholder_with_default`` its default;
* what only training needs (optimizer, summaries, savers, queues) is pruned, constants are
  folded, dropout whose randomness became irrelevant is removed, and if anything random or
  stateful is still left the error names it.

Nothing of a user's graph runs before it has passed the op allow-list and the size bounds of
`freeze.safety`: variable values are read from the checkpoint file, never restored by the
graph's own saver ops.
"""

import dataclasses
import os
import re
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from freeze import safety
from freeze._tf import tf, v1
from freeze.errors import FreezeError, UsageError
from freeze.freeze_graph import (graph_digest, op_name, read_graph_def, stateful_ops)

FROZEN_GRAPH = 'frozen_graph'
CHECKPOINT_META = 'checkpoint_meta'
SAVED_MODEL = 'saved_model'

_KEEP_PROB = re.compile(r'keep_?prob', re.I)
_TRAINING = re.compile(r'(is_)?train(ing)?(_phase)?$|phase_train', re.I)
_RATE = re.compile(r'(dropout_?)?rate$|^dropout$', re.I)
_NOT_OUTPUT_SCOPES = ('gradients', 'save', 'train', 'init', 'summaries', 'Adam', 'GradientDescent')
_VARIABLE_OPS = ('VariableV2', 'Variable', 'VarHandleOp')
_UPDATE_OPS = ('Assign', 'AssignAdd', 'AssignSub')
_RESOURCE_UPDATE_OPS = ('AssignVariableOp', 'AssignAddVariableOp', 'AssignSubVariableOp')
# RandomUniform draws from [0, 1): the largest float32 below 1 closes the interval.
_BELOW_ONE = float(np.nextafter(np.float32(1), np.float32(0)))


@dataclasses.dataclass
class FrozenGraph:
    """A frozen inference graph and where it came from.

    Attributes:
      graph_def: the pruned, frozen ``GraphDef`` (static input shapes, no variables).
      inputs: input op names.
      outputs: output op names.
      input_shapes: input op name -> static shape (batch first).
      source: absolute path of the source.
      source_kind: ``frozen_graph``, ``checkpoint_meta`` or ``saved_model`` (callers may set
        their own kinds).
      options: how the source was loaded (tag set, signature...), to load it again.
    """

    graph_def: tf.compat.v1.GraphDef
    inputs: List[str]
    outputs: List[str]
    input_shapes: Dict[str, List[int]]
    source: str
    source_kind: str
    options: Dict = dataclasses.field(default_factory=dict)

    @property
    def fake_quantized(self) -> bool:
        """Whether the graph carries fake-quant ranges."""
        return any(n.op.startswith('FakeQuantWithMinMax') for n in self.graph_def.node)

    @property
    def digest(self) -> str:
        """SHA-256 of the frozen graph (see `freeze.freeze_graph.graph_digest`)."""
        return graph_digest(self.graph_def)

    def input_dtype(self, name: str):
        node = next(n for n in self.graph_def.node if n.name == name)
        return tf.as_dtype(node.attr['dtype'].type)


def source_kind(path: str) -> str:
    """What ``path`` is: a SavedModel folder, a checkpoint prefix with ``.meta``, a GraphDef.

    Raises:
      FreezeError: if it is none of these.
    """
    if os.path.isdir(path):
        if any(os.path.isfile(os.path.join(path, f)) for f in ('saved_model.pb',
                                                               'saved_model.pbtxt')):
            return SAVED_MODEL
        latest = tf.train.latest_checkpoint(path)
        if latest and os.path.isfile(latest + '.meta'):
            return CHECKPOINT_META
        raise FreezeError(f'{path} is a folder with neither a SavedModel (saved_model.pb) nor a '
                          'checkpoint with its .meta; pass a SavedModel folder, a checkpoint '
                          'prefix such as model.ckpt, or a frozen .pb/.pbtxt')
    if path.endswith('.meta') or os.path.isfile(path + '.meta') or os.path.isfile(path +
                                                                                  '.index'):
        return CHECKPOINT_META
    if os.path.exists(path):
        return FROZEN_GRAPH
    raise FreezeError(f'no checkpoint at {path} (nor a model file or folder); pass a frozen '
                      '.pb/.pbtxt, a checkpoint prefix with its .meta (model.ckpt), or a '
                      'SavedModel folder')


def _checkpoint_prefix(path: str) -> str:
    if os.path.isdir(path):
        return tf.train.latest_checkpoint(path)
    return path[:-len('.meta')] if path.endswith('.meta') else path


def _read_meta_graph(path: str):
    from google.protobuf.message import DecodeError
    meta = v1.MetaGraphDef()
    try:
        with open(path, 'rb') as f:
            meta.ParseFromString(f.read())
    except OSError as e:
        raise FreezeError(f'cannot read {path}: {e.strerror}') from None
    except (DecodeError, ValueError, RuntimeWarning) as e:
        raise FreezeError(f'{path} is not a MetaGraphDef (.meta) file ({e})') from None
    if not meta.graph_def.node:  # An empty file parses as an empty MetaGraphDef.
        raise FreezeError(f'{path} holds no graph (empty or not a MetaGraphDef .meta file); '
                          'export the graph again, or pass a frozen .pb')
    return meta


def _read_saved_model(folder: str, tag_set: Sequence[str], signature_def: Optional[str]):
    """``(graph_def, variables prefix or None, inputs, outputs)`` of one SavedModel signature."""
    from google.protobuf import text_format
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2
    saved = saved_model_pb2.SavedModel()
    pb = os.path.join(folder, 'saved_model.pb')
    try:
        if os.path.isfile(pb):
            with open(pb, 'rb') as f:
                saved.ParseFromString(f.read())
        else:
            with open(os.path.join(folder, 'saved_model.pbtxt')) as f:
                text_format.Parse(f.read(), saved)
    except (OSError, DecodeError, ValueError, text_format.ParseError, RuntimeWarning) as e:
        raise FreezeError(f'cannot read the SavedModel in {folder} ({str(e)[:200]})') from None
    wanted = set(tag_set)
    metas = [m for m in saved.meta_graphs if set(m.meta_info_def.tags) == wanted]
    if not metas:
        have = ['"' + ','.join(m.meta_info_def.tags) + '"' for m in saved.meta_graphs]
        raise FreezeError(f'{folder} has no MetaGraph with tags "{",".join(tag_set)}"; '
                          f'--tag-set can be one of {", ".join(have) or "(none)"}')
    meta = metas[0]
    signatures = dict(meta.signature_def)
    if signature_def is None:
        if 'serving_default' in signatures:
            signature_def = 'serving_default'
        elif len(signatures) == 1:
            signature_def = next(iter(signatures))
    if signature_def is None:
        names = ', '.join(repr(name) for name in sorted(signatures))
        raise FreezeError(f'{folder} has no serving_default signature and several others '
                          f'({names}); choose one with --signature-def' if signatures else
                          f'{folder} has no signature in its MetaGraph "{",".join(tag_set)}"; '
                          'save it with a signature, or pass a frozen .pb')
    if signature_def not in signatures:
        raise FreezeError(f'{folder} has no signature {signature_def!r}; --signature-def can be '
                          f'one of {", ".join(sorted(signatures)) or "(none)"}')
    signature = signatures[signature_def]
    inputs = [op_name(signature.inputs[k].name) for k in sorted(signature.inputs)]
    outputs = [op_name(signature.outputs[k].name) for k in sorted(signature.outputs)]
    prefix = os.path.join(folder, 'variables', 'variables')
    if not os.path.isfile(prefix + '.index'):
        prefix = None
    return meta.graph_def, prefix, inputs, outputs, signature_def


def _consumers(graph_def) -> Dict[str, List[str]]:
    out = {}
    for node in graph_def.node:
        for name in node.input:
            out.setdefault(op_name(name), []).append(node.name)
    return out


def _ancestors(graph_def, names: Sequence[str]) -> set:
    nodes = {n.name: n for n in graph_def.node}
    seen, stack = set(), list(names)
    while stack:
        name = stack.pop()
        if name in seen or name not in nodes:
            continue
        seen.add(name)
        stack.extend(op_name(i) for i in nodes[name].input)
    return seen


def _is_switch(node) -> bool:
    """A training switch: keep_prob, is_training, dropout rate, placeholder_with_default."""
    if node.op == 'PlaceholderWithDefault':
        return True
    if node.op != 'Placeholder':
        return False
    dims = node.attr['shape'].shape.dim if 'shape' in node.attr else []
    scalar = ('shape' in node.attr and not node.attr['shape'].shape.unknown_rank
              and len(dims) == 0)
    base = node.name.rsplit('/', 1)[-1]
    return bool(_KEEP_PROB.search(base) or (node.attr['dtype'].type == tf.bool.as_datatype_enum)
                or (scalar and (_TRAINING.search(base) or _RATE.search(base))))


def discover_outputs(graph_def) -> List[str]:
    """The graph's outputs: its one softmax, else its one sink.

    Raises:
      FreezeError: naming the candidates when there is not exactly one.
    """
    def outside(name):
        return not name.split('/')[0].startswith(_NOT_OUTPUT_SCOPES)

    softmax = [n.name for n in graph_def.node if n.op == 'Softmax' and outside(n.name)]
    if len(softmax) == 1:
        return softmax
    if len(softmax) > 1:
        raise FreezeError(f'the graph has {len(softmax)} softmax outputs: '
                          f'{", ".join(softmax[:10])}; choose with --output-arrays')
    consumers = _consumers(graph_def)
    placeholders = {n.name for n in graph_def.node if n.op == 'Placeholder'}
    sinks = []
    for node in graph_def.node:
        if node.name in consumers or not outside(node.name) or node.op in (
                'NoOp', 'Const', 'Placeholder', 'PlaceholderWithDefault', 'Assert') or \
                node.op.startswith(('Assign', 'Save', 'Restore', 'Apply', 'Resource')) or \
                node.op.endswith('Summary') or node.op in _VARIABLE_OPS:
            continue
        if _ancestors(graph_def, [node.name]) & placeholders:
            sinks.append(node.name)
    if len(sinks) == 1:
        return sinks
    raise FreezeError('cannot tell the output of the graph: '
                      + (f'candidates {", ".join(sinks[:10])}' if sinks else 'no softmax and '
                         'no sink fed by a placeholder')
                      + '; name it with --output-arrays')


def _variables_to_constants(graph_def, checkpoint: Optional[str], source: str):
    """Replaces variables by their checkpoint values (read from the file, never restored)."""
    variables = [n for n in graph_def.node if n.op in _VARIABLE_OPS]
    if not variables:
        return graph_def
    if checkpoint is None:
        raise FreezeError(f'{source} has variables ({variables[0].name}) but no checkpoint '
                          'holds their values')
    try:
        reader = tf.train.load_checkpoint(checkpoint)
        shapes = reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as e:
        raise FreezeError(f'cannot read checkpoint {checkpoint} '
                          f'({str(getattr(e, "message", e)).splitlines()[0][:200]})') from None
    values = {}
    for node in variables:
        declared = [d.size for d in node.attr['shape'].shape.dim]
        if node.name not in shapes:
            raise FreezeError(f'checkpoint {checkpoint} has no variable {node.name}: it was '
                              'written for a different graph')
        if declared and shapes[node.name] != declared:
            raise FreezeError(f'checkpoint {checkpoint} has {node.name} with shape '
                              f'{shapes[node.name]}, the graph needs {declared}: it was '
                              'written for a different graph')
        try:
            values[node.name] = reader.get_tensor(node.name)
        except (tf.errors.OpError, ValueError, IndexError) as e:  # Index: a short .data file.
            raise FreezeError(f'cannot read {node.name} from checkpoint {checkpoint} '
                              f'({str(getattr(e, "message", e)).splitlines()[0][:200]}); it is '
                              'truncated or corrupt') from None
    out = v1.GraphDef()
    out.library.CopyFrom(graph_def.library)
    out.versions.CopyFrom(graph_def.versions)
    handles = {n.name for n in variables if n.op == 'VarHandleOp'}
    graph_dtypes = {n.name: n.attr['dtype'].type for n in variables}
    for node in graph_def.node:
        new = out.node.add()
        if node.name in values:
            dtype = node.attr['dtype'].type
            new.name, new.op = node.name, 'Const'
            new.attr['dtype'].type = dtype
            new.attr['value'].tensor.CopyFrom(tf.make_tensor_proto(
                values[node.name], dtype=tf.as_dtype(dtype)))
        elif node.op == 'ReadVariableOp' and op_name(node.input[0]) in handles:
            new.name, new.op = node.name, 'Identity'
            new.input.extend(node.input)
            new.attr['T'].type = node.attr['dtype'].type
        elif node.op in _UPDATE_OPS and node.input and op_name(node.input[0]) in values:
            # A training update the outputs read (contrib/quantize's moving-average ranges
            # feed their fake-quant ops through AssignMovingAvg): at inference the variable
            # keeps its trained value.
            new.name, new.op = node.name, 'Identity'
            new.input.append(node.input[0])
            new.attr['T'].type = graph_dtypes[op_name(node.input[0])]
        else:
            new.CopyFrom(node)
    return out


def _switch_value(node):
    """The inference value of a training switch node, as a numpy scalar, or None."""
    base = node.name.rsplit('/', 1)[-1]
    dtype = tf.as_dtype(node.attr['dtype'].type)
    if _KEEP_PROB.search(base):
        return np.array(1, dtype.as_numpy_dtype)
    if dtype == tf.bool:
        return np.array(False)
    if _RATE.search(base):
        return np.array(0, dtype.as_numpy_dtype)
    return None


def _set_const(node, value: np.ndarray, dtype=None) -> None:
    node.op = 'Const'
    del node.input[:]
    node.attr.clear()
    dtype = tf.as_dtype(dtype or value.dtype)
    node.attr['dtype'].type = dtype.as_datatype_enum
    node.attr['value'].tensor.CopyFrom(tf.make_tensor_proto(value, dtype=dtype))


def _feed_switches(graph_def, inputs: Sequence[str]) -> None:
    for node in graph_def.node:
        if node.name in inputs or not node.op.startswith('Placeholder'):
            continue
        value = _switch_value(node) if _is_switch(node) else None
        if value is not None:
            _set_const(node, value, node.attr['dtype'].type)
        elif node.op == 'PlaceholderWithDefault':
            node.op = 'Identity'
            dtype = node.attr['dtype'].type
            node.attr.clear()
            node.attr['T'].type = dtype
        else:
            raise FreezeError(f'placeholder {node.name} is needed by the outputs but is not an '
                              'input (--input-arrays) nor a known training switch (keep_prob, '
                              'is_training, rate); add it to --input-arrays')


def _set_input_shapes(graph_def, inputs, input_shapes, batch_size) -> Dict[str, List[int]]:
    shapes = {}
    nodes = {n.name: n for n in graph_def.node}
    for name in inputs:
        node = nodes[name]
        if node.op not in ('Placeholder', 'PlaceholderWithDefault'):
            raise FreezeError(f'input {name} is a {node.op}, not a placeholder; name the '
                              'placeholders with --input-arrays')
        if input_shapes and name in input_shapes:
            shape = [int(d) for d in input_shapes[name]]
        else:
            proto = node.attr['shape'].shape
            if proto.unknown_rank:
                raise FreezeError(f'input {name} has no known shape; give it with '
                                  '--input-shapes, for example 1,28,28,1')
            shape = [d.size for d in proto.dim]
            if shape and shape[0] in (-1, None):
                shape[0] = batch_size
            if any(d is None or d < 0 for d in shape):
                raise FreezeError(f'input {name} has shape {shape} with unknown dimensions; give '
                                  'the full shape with --input-shapes, for example 1,28,28,1')
        if any(d <= 0 for d in shape):
            raise UsageError(f'input shape {shape} of {name} must be positive')
        node.op = 'Placeholder'
        del node.input[:]
        dtype = node.attr['dtype'].type
        node.attr.clear()
        node.attr['dtype'].type = dtype
        node.attr['shape'].shape.CopyFrom(tf.TensorShape(shape).as_proto())
        shapes[name] = shape
    return shapes


_NOT_FOLDABLE = ('Placeholder', 'PlaceholderWithDefault', 'Switch', 'Merge', 'Enter', 'Exit',
                 'NextIteration', 'LoopCond', 'If', 'StatelessIf', 'While', 'StatelessWhile')


def _import(graph_def):
    graph = tf.Graph()
    with graph.as_default():
        try:
            v1.import_graph_def(graph_def, name='')
        except (ValueError, TypeError, tf.errors.OpError) as e:
            raise FreezeError(f'the graph does not import: {str(e).splitlines()[0][:300]}') \
                from None
    return graph


def _fold_constants(graph_def, outputs: Sequence[str]):
    """Replaces every computation that depends only on constants by its value."""
    graph = _import(graph_def)
    foldable = {}
    branch = {}  # Ops inside a v1 cond branch: may be dead, never evaluated here.
    for op in graph.get_operations():  # Topological order.
        branch[op.name] = op.type in ('Switch', 'RefSwitch') or any(
            branch.get(t.op.name, False) for t in op.inputs) or any(
                branch.get(c.name, False) for c in op.control_inputs)
        if op.type == 'Const':  # Inside a cond branch a constant waits for the branch.
            foldable[op.name] = all(foldable.get(c.name, False) for c in op.control_inputs)
            continue
        # Fake-quant ops stay: the converter reads the ranges of weights from them.
        if op.type in _NOT_FOLDABLE or op.type.startswith(('Random', 'TruncatedNormal',
                                                           'FakeQuant')) or \
                op.type in stateful_types():
            foldable[op.name] = False
            continue
        if op.type == 'Shape' and op.inputs[0].shape.is_fully_defined() and \
                not branch[op.name]:
            foldable[op.name] = True
            continue
        foldable[op.name] = all(foldable.get(t.op.name, False) for t in op.inputs) and all(
            foldable.get(c.name, False) for c in op.control_inputs) and len(op.outputs) == 1
    frontier = []
    for op in graph.get_operations():
        if not foldable[op.name] or op.type == 'Const':
            continue
        users = [c for t in op.outputs for c in t.consumers()]
        if op.name in outputs or any(not foldable[c.name] for c in users):
            if op.outputs[0].shape.is_fully_defined() and op.outputs[0].shape.num_elements() \
                    <= safety.MAX_ELEMENTS:
                frontier.append(op)
    if not frontier:
        return graph_def
    # Shape ops of static inputs are folded too; the session still wants the inputs fed.
    feeds = {op.outputs[0]: np.zeros(op.outputs[0].shape.as_list(),
                                     op.outputs[0].dtype.as_numpy_dtype)
             for op in graph.get_operations() if op.type == 'Placeholder'
             and op.outputs[0].shape.is_fully_defined()}
    with v1.Session(graph=graph) as session:
        values = session.run([op.outputs[0] for op in frontier], feeds)
    folded = {op.name: (value, op.outputs[0].dtype) for op, value in zip(frontier, values)}
    out = v1.GraphDef()
    out.CopyFrom(graph_def)
    for node in out.node:
        if node.name in folded:
            value, dtype = folded[node.name]
            _set_const(node, np.asarray(value), dtype)
    return v1.graph_util.extract_sub_graph(out, list(outputs))


def stateful_types() -> set:
    return {'Assert', 'Print', 'PrintV2', 'VariableV2', 'VarHandleOp', 'ReadVariableOp'}


def _const_value(node) -> Optional[np.ndarray]:
    if node is None or node.op != 'Const':
        return None
    return tf.make_ndarray(node.attr['value'].tensor)


def _remove_dead_randomness(graph_def, outputs: Sequence[str]):
    """Folds random values whose use is certain: dropout at keep_prob 1 or rate 0.

    Interval analysis: a ``RandomUniform`` lies in [0, 1); arithmetic with constants, ``Floor``,
    comparisons and ``Cast`` carry the interval along. A node whose interval shrinks to a point
    (``floor(1 + U)``, ``U >= 0``) is replaced by that constant.
    """
    graph = _import(graph_def)
    nodes = {n.name: n for n in graph_def.node}
    interval = {}
    replace = {}
    for op in graph.get_operations():
        def bounds(t):
            if t.op.name in interval:
                return interval[t.op.name]
            value = _const_value(nodes.get(t.op.name))
            if value is not None and value.size and value.dtype != object:
                return float(np.min(value)), float(np.max(value))
            return None
        if op.type == 'RandomUniform':
            interval[op.name] = (0.0, _BELOW_ONE)
            continue
        if not op.inputs or not any(t.op.name in interval for t in op.inputs):
            continue
        b = [bounds(t) for t in op.inputs]
        if any(x is None for x in b[:2]) and op.type not in ('Floor', 'Cast', 'Identity'):
            continue
        lo = hi = None
        if op.type in ('Add', 'AddV2'):
            lo, hi = b[0][0] + b[1][0], b[0][1] + b[1][1]
        elif op.type == 'Sub':
            lo, hi = b[0][0] - b[1][1], b[0][1] - b[1][0]
        elif op.type in ('Floor', 'Identity', 'Cast'):
            if b[0] is None:
                continue
            lo, hi = (np.floor(b[0][0]), np.floor(b[0][1])) if op.type == 'Floor' else b[0]
        elif op.type in ('GreaterEqual', 'Greater', 'Less', 'LessEqual'):
            (a0, a1), (c0, c1) = b[0], b[1]
            true = {'GreaterEqual': a0 >= c1, 'Greater': a0 > c1, 'Less': a1 < c0,
                    'LessEqual': a1 <= c0}[op.type]
            false = {'GreaterEqual': a1 < c0, 'Greater': a1 <= c0, 'Less': a0 >= c1,
                     'LessEqual': a0 > c1}[op.type]
            if true or false:
                lo = hi = 1.0 if true else 0.0
            else:
                lo, hi = 0.0, 1.0
        else:
            continue
        interval[op.name] = (float(lo), float(hi))
        if lo == hi and op.outputs[0].shape.is_fully_defined():
            dtype = op.outputs[0].dtype
            replace[op.name] = (np.full(op.outputs[0].shape.as_list(), lo,
                                        dtype.as_numpy_dtype), dtype)
    return _edit_nodes(graph_def, replace, lambda node, const: _set_const(node, *const), outputs)


def _edit_nodes(graph_def, edits: Dict[str, object], edit: Callable, outputs: Sequence[str]):
    """A copy of ``graph_def`` with ``edit(node, edits[node.name])`` applied to the named nodes,
    pruned to what ``outputs`` need; ``graph_def`` itself when ``edits`` is empty."""
    if not edits:
        return graph_def
    out = v1.GraphDef()
    out.CopyFrom(graph_def)
    for node in out.node:
        if node.name in edits:
            edit(node, edits[node.name])
    return v1.graph_util.extract_sub_graph(out, list(outputs))


def _resolve_switches(graph_def, outputs: Sequence[str]):
    """Removes the dead branch of every v1 ``Switch`` whose predicate is a constant."""
    nodes = {n.name: n for n in graph_def.node}
    live_port = {}
    for node in graph_def.node:
        if node.op in ('Switch', 'RefSwitch'):
            pred = _const_value(nodes.get(op_name(node.input[1])))
            if pred is not None:
                live_port[node.name] = 1 if bool(pred) else 0
    if not live_port:
        return graph_def
    out = v1.GraphDef()
    out.CopyFrom(graph_def)
    dead = set()
    changed = True
    while changed:
        changed = False
        for node in out.node:
            if node.name in dead:
                continue
            data = [i for i in node.input if not i.startswith('^')]

            def is_dead(name):
                base = op_name(name)
                if base in dead:
                    return True
                if base in live_port:
                    port = int(name.split(':')[1]) if ':' in name else 0
                    return port != live_port[base]
                return False
            if node.op == 'Merge':
                live = [i for i in data if not is_dead(i)]
                if len(live) == len(data):
                    continue
                if not live:
                    dead.add(node.name)
                else:
                    dtype = node.attr['T'].type
                    del node.input[:]
                    node.input.append(live[0])
                    node.op = 'Identity'
                    node.attr.clear()
                    node.attr['T'].type = dtype
                changed = True
            elif any(is_dead(i) for i in data):
                dead.add(node.name)
                changed = True
    # Live Switch outputs become the Switch's data input.
    for node in out.node:
        for k, name in enumerate(node.input):
            base = op_name(name)
            if base in live_port and not name.startswith('^'):
                node.input[k] = nodes[base].input[0]
            elif base in dead or (base in live_port and name.startswith('^')):
                node.input[k] = ''
        kept = [i for i in node.input if i]
        del node.input[:]
        node.input.extend(kept)
    kept_nodes = [n for n in out.node if n.name not in dead and n.name not in live_port]
    del out.node[:]
    out.node.extend(kept_nodes)
    return v1.graph_util.extract_sub_graph(out, list(outputs))


def _simplify(graph_def, outputs: Sequence[str]):
    """Removes what folding left trivial: ``Select`` on a constant condition, ``x * 1``,
    ``x / 1`` (dropout at keep_prob 1)."""
    graph = _import(graph_def)
    nodes = {n.name: n for n in graph_def.node}
    identity = {}
    for op in graph.get_operations():
        if op.type in ('Select', 'SelectV2'):
            cond = _const_value(nodes.get(op.inputs[0].op.name))
            if cond is None or not cond.size or not (cond.all() or not cond.any()):
                continue
            chosen = op.inputs[1] if cond.all() else op.inputs[2]
            if chosen.shape.is_fully_defined() and chosen.shape == op.outputs[0].shape:
                identity[op.name] = 1 if cond.all() else 2
        elif op.type in ('Mul', 'RealDiv', 'Div'):
            for k in ((1,) if op.type != 'Mul' else (0, 1)):
                value = _const_value(nodes.get(op.inputs[k].op.name))
                other = op.inputs[1 - k]
                if value is not None and value.size and np.all(value == 1) and \
                        other.shape.is_fully_defined() and other.shape == op.outputs[0].shape:
                    identity[op.name] = 1 - k
                    break
    return _edit_nodes(graph_def, identity, _to_identity, outputs)


def _to_identity(node, port: int) -> None:
    """Turns ``node`` into an ``Identity`` of its input ``port``."""
    keep = node.input[port]
    dtype = node.attr['T'].type
    del node.input[:]
    node.input.append(keep)
    node.op = 'Identity'
    node.attr.clear()
    node.attr['T'].type = dtype


def named_input_shapes(input_shapes, inputs: Sequence[str]) -> Optional[Dict[str, List[int]]]:
    """``input_shapes`` keyed by input name: a bare shape (a list of ints) is the first input's.

    Args:
      input_shapes: None, a dict input name -> shape, or one shape.
      inputs: the graph's input names, in order.
    """
    if input_shapes is None or isinstance(input_shapes, Mapping):
        return input_shapes
    return {inputs[0]: [int(d) for d in input_shapes]}


def make_inference_graph(graph_def, *, checkpoint: Optional[str] = None,
                         input_arrays: Optional[Sequence[str]] = None,
                         output_arrays: Optional[Sequence[str]] = None,
                         input_shapes: Union[Dict[str, Sequence[int]], Sequence[int], None] = None,
                         batch_size: int = 1, source: str = 'the graph',
                         allow_unsafe_ops: bool = False):
    """Turns a (training or frozen) GraphDef into a frozen inference graph.

    Args:
      graph_def: the graph, possibly with variables, optimizer, summaries and savers.
      checkpoint: checkpoint prefix holding the variables' values (None for a frozen graph).
      input_arrays: input op names; default: the placeholders the outputs need.
      output_arrays: output op names; default: `discover_outputs`.
      input_shapes: input op name -> static shape, or one shape (a list of ints) for the first
        input; default: the placeholder's shape with its batch dimension set to
        ``batch_size``.
      batch_size: the static batch size when the graph leaves it open.
      source: where the graph came from, for messages.
      allow_unsafe_ops: skip the op allow-list (trusted graphs only).

    Returns:
      ``(graph_def, inputs, outputs, input_shapes)``.

    Raises:
      FreezeError: unknown or ambiguous names, missing variables, random or stateful ops left.
      UnsafeGraphError: ops outside the allow-list, or tensors over the size bound.
    """
    from freeze.freeze_graph import bypass_identities, check_output_names
    if batch_size <= 0:
        raise UsageError(f'batch size must be positive, got {batch_size}')
    safety.check_graph_size(graph_def, source)
    outputs = check_output_names(graph_def, output_arrays) if output_arrays else \
        discover_outputs(graph_def)
    if input_arrays:
        inputs = check_output_names(graph_def, input_arrays)
    else:
        needed = _ancestors(graph_def, outputs)
        inputs = [n.name for n in graph_def.node if n.name in needed and n.op == 'Placeholder'
                  and not _is_switch(n)]
        if not inputs:
            raise FreezeError(f'no input placeholder feeds {", ".join(outputs)}; name the '
                              'inputs with --input-arrays')
    if set(inputs) & set(outputs):
        raise UsageError(f'{sorted(set(inputs) & set(outputs))[0]} is both an input and an '
                         'output')
    input_shapes = named_input_shapes(input_shapes, inputs)
    if input_shapes:
        unknown = set(input_shapes) - set(inputs)
        if unknown:
            raise UsageError(f'--input-shapes names {sorted(unknown)[0]}, which is not an '
                             f'input ({", ".join(inputs)})')
    # Prune to what the outputs need, cutting the graph at the inputs.
    cut = v1.GraphDef()
    cut.CopyFrom(graph_def)
    updates = {n.name for n in cut.node if n.op in _UPDATE_OPS + _RESOURCE_UPDATE_OPS}
    for node in cut.node:
        if node.name in inputs:
            del node.input[:]
        # Reads that wait for a training update (control dependency) read the trained value.
        kept = [i for i in node.input if not (i.startswith('^') and op_name(i) in updates)]
        if len(kept) != len(node.input):
            del node.input[:]
            node.input.extend(kept)
        for key in ('_class', '_output_shapes'):
            if key in node.attr:
                del node.attr[key]
        node.device = ''
    try:
        pruned = v1.graph_util.extract_sub_graph(cut, outputs)
    except (AssertionError, ValueError, TypeError) as e:
        raise FreezeError(f'cannot prune {source} to {", ".join(outputs)}: {e}') from None
    v2_flow = [f'{n.name} ({n.op})' for n in pruned.node
               if n.op in ('If', 'StatelessIf', 'While', 'StatelessWhile')]
    if v2_flow:
        raise FreezeError(f'{v2_flow[0]} is TF2 control flow (tf.cond/while_loop with control '
                          'flow v2), which this tool does not fold into an inference graph; '
                          'build the graph after tf.compat.v1.disable_control_flow_v2() (v1 '
                          'Switch/Merge folds away), or freeze it yourself')
    if not allow_unsafe_ops:
        safety.check_graph_safety(_without_variables(pruned), source)
    pruned = _variables_to_constants(pruned, checkpoint, source)
    _feed_switches(pruned, inputs)
    shapes = _set_input_shapes(pruned, inputs, input_shapes, batch_size)
    safety.check_graph_size(pruned, source)
    pruned = bypass_identities(pruned, [*inputs, *outputs])  # Long chains: see its docstring.
    for _ in range(3):  # Folding exposes constant predicates and random ops, and back.
        pruned = _fold_constants(pruned, outputs)
        pruned = _resolve_switches(pruned, outputs)
        pruned = _remove_dead_randomness(pruned, outputs)
        pruned = _simplify(pruned, outputs)
    pruned = _fold_constants(pruned, outputs)
    left = stateful_ops(pruned) + [f'{n.name} ({n.op})' for n in pruned.node
                                   if n.op in ('Switch', 'Merge', 'If', 'StatelessIf', 'While')]
    if left:
        raise FreezeError(f'the inference graph still has random, stateful or control-flow ops: '
                          f'{", ".join(left[:5])}; feed the switch that controls them with its '
                          'inference value, or rebuild the graph without them')
    return pruned, list(inputs), list(outputs), shapes


def _without_variables(graph_def):
    """The graph with its variable ops (read from the checkpoint, never run) left out."""
    out = v1.GraphDef()
    out.library.CopyFrom(graph_def.library)
    out.node.extend(n for n in graph_def.node
                    if n.op not in _VARIABLE_OPS + _UPDATE_OPS and n.op != 'ReadVariableOp')
    return out


def load_source(path: str, *, input_arrays: Optional[Sequence[str]] = None,
                output_arrays: Optional[Sequence[str]] = None,
                input_shapes: Union[Dict[str, Sequence[int]], Sequence[int], None] = None,
                batch_size: int = 1,
                tag_set: Sequence[str] = ('serve',), signature_def: Optional[str] = None,
                allow_unsafe_ops: bool = False) -> FrozenGraph:
    """Loads a frozen ``.pb``/``.pbtxt``, a checkpoint with its ``.meta``, or a SavedModel.

    Args:
      path: the ``.pb``/``.pbtxt`` file, a checkpoint prefix (``model.ckpt``; its ``.meta``
        beside it), its ``.meta`` file, a folder with a ``checkpoint`` state file, or a
        SavedModel folder.
      input_arrays: input op names (default: discovered).
      output_arrays: output op names (default: discovered; for a SavedModel its signature's).
      input_shapes: input name -> static shape, or one shape for the first input.
      batch_size: static batch size where the graph leaves it open.
      tag_set: SavedModel MetaGraph tags (``--tag-set``).
      signature_def: SavedModel signature key (``--signature-def``; default
        ``serving_default`` or the only one).
      allow_unsafe_ops: skip the op allow-list.

    Returns:
      The `FrozenGraph`.

    Raises:
      FreezeError, UnsafeGraphError, UsageError: see `make_inference_graph`.
    """
    kind = source_kind(path)
    options = {}
    checkpoint = None
    if kind == FROZEN_GRAPH:
        graph_def = read_graph_def(path)
    elif kind == CHECKPOINT_META:
        checkpoint = _checkpoint_prefix(path)
        if not os.path.isfile(checkpoint + '.meta'):
            raise FreezeError(f'no {checkpoint}.meta beside the checkpoint: the graph is needed '
                              '(tf.compat.v1.train.Saver writes it unless write_meta_graph=False)')
        if not os.path.isfile(checkpoint + '.index'):
            raise FreezeError(f'no checkpoint {checkpoint} (its .index is missing) beside '
                              f'{checkpoint}.meta')
        graph_def = _read_meta_graph(checkpoint + '.meta').graph_def
    else:
        graph_def, checkpoint, sig_in, sig_out, signature_def = _read_saved_model(
            path, tag_set, signature_def)
        input_arrays = input_arrays or sig_in
        output_arrays = output_arrays or sig_out
        options = {'tag_set': list(tag_set), 'signature_def': signature_def}
    graph_def, inputs, outputs, shapes = make_inference_graph(
        graph_def, checkpoint=checkpoint, input_arrays=input_arrays,
        output_arrays=output_arrays, input_shapes=input_shapes, batch_size=batch_size,
        source=path, allow_unsafe_ops=allow_unsafe_ops)
    return FrozenGraph(graph_def, inputs, outputs, shapes, os.path.abspath(path), kind, options)
