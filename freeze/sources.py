"""Loading any TF1 model as a frozen inference graph: ``.pb``, ``.pbtxt``, ``.meta`` + checkpoint,
SavedModel.

`load_source` is the one entry point. Whatever the source, the result is a `FrozenGraph`: a
pruned ``GraphDef`` with static input shapes and no variables, in which

* the inputs are the placeholders the outputs need (or ``input_arrays``), their batch
  dimension, open or fixed for training (``[100, 784]``), set to ``batch_size``; a ``Reshape``
  that hard-codes the old batch is rewritten, any other op that does is named;
* the outputs are ``output_arrays``, else the graph's one softmax, else the prediction that its
  loss and metrics compare with the labels (the logits, not ``in_top_k`` or the accuracy),
  else its one sink; gradients and quantization range updates are never candidates; when that
  is ambiguous the error names the candidates;
* training switches are fed their inference values and folded away, recognised by what they
  feed as much as by name (`switch_values`): a scalar placeholder feeding a dropout's keep
  probability becomes 1 and one feeding its rate 0 (``keep_prob``, ``dropout_rate``, the
  deep-MNIST tutorial's unnamed ``dropout/Placeholder``), bool ``is_training`` switches False,
  any other ``placeholder_with_default`` its default;
* what only training needs (optimizer, summaries, savers, queues) is pruned, constants are
  folded, dropout whose randomness became irrelevant is removed, and if anything random or
  stateful is still left the error names it;
* a contrib/quantize training graph is frozen as ``create_eval_graph`` would build it: the
  quantized branch of ``quant_delay`` with the learned ranges, and the ranges that training
  never updated are listed (`unreached_ranges`) for the export to calibrate or refuse.

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
      unreached_ranges: fake-quant ops whose moving-average range training never updated
        (`unreached_ranges`): their values are the initial ones, not learned.
      notes: what loading changed that the user should hear (an output moved past its
        fake quant).
    """

    graph_def: tf.compat.v1.GraphDef
    inputs: List[str]
    outputs: List[str]
    input_shapes: Dict[str, List[int]]
    source: str
    source_kind: str
    options: Dict = dataclasses.field(default_factory=dict)
    unreached_ranges: List[str] = dataclasses.field(default_factory=list)
    notes: List[str] = dataclasses.field(default_factory=list)

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


def _scores_of_signature(graph_def, outputs: Sequence[str]):
    """A signature's outputs without the class indices (``ArgMax``, ``TopKV2``) next to its
    float scores (``simple_save(outputs={'classes': ..., 'scores': ...})``): an integer model
    cannot output int64, and ``eval`` scores the class scores.

    Returns:
      ``(outputs, notes)``.
    """
    nodes = {n.name: n for n in graph_def.node}
    notes = []
    # A classification signature's top_k (mnist_saved_model.py: 'classes' = indices, 'scores'
    # = values, one op TopKV2 by name): sorted scores, not one per class in class order; the
    # model outputs what top_k sorted.
    unsorted = []
    for name in outputs:
        if name in nodes and nodes[name].op == 'TopKV2':
            name, sorted_by = op_name(nodes[name].input[0]), name
            notes.append(f'the signature output {sorted_by} (TopKV2) holds sorted scores; '
                         f'exported the scores it sorts, {name}, in class order')
        if name not in unsorted:
            unsorted.append(name)
    outputs = unsorted
    floats = [name for name in outputs if name in nodes and _float_output(nodes[name])]
    derived = [name for name in outputs if name not in floats and name in nodes and
               nodes[name].op in ('ArgMax', 'ArgMin')]
    if not floats or not derived:
        return list(outputs), sorted(set(notes), key=notes.index)
    return ([name for name in outputs if name not in derived],
            sorted(set(notes), key=notes.index) +
            [f'the signature output {name} ({nodes[name].op}) is computed from the scores '
             f'{", ".join(floats)} and was left out (name every output with --output-arrays)'
             for name in derived])


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


def _scalar_or_unknown(node) -> bool:
    """Whether a placeholder is declared scalar or without a shape (``tf.placeholder(dtype)``)."""
    if 'shape' not in node.attr:
        return True
    shape = node.attr['shape'].shape
    return shape.unknown_rank or len(shape.dim) == 0


def _random_values(graph_def) -> set:
    """Names of the nodes that are noise: a random op, scaled or shifted by constants only
    (``random_uniform``'s ``* (max - min) + min``), not what the noise then touches."""
    consumers = _consumers(graph_def)
    nodes = {n.name: n for n in graph_def.node}
    noise = {n.name for n in graph_def.node if n.op.startswith(('Random', 'TruncatedNormal'))}
    stack = list(noise)
    while stack:
        name = stack.pop()
        for user in consumers.get(name, []):
            node = nodes[user]
            if user in noise or node.op not in ('Identity', 'Cast', 'Mul', 'Add', 'AddV2',
                                                'Sub'):
                continue
            others = [op_name(i) for i in node.input
                      if not i.startswith('^') and op_name(i) != name]
            if all(o in noise or nodes.get(o) is not None and nodes[o].op == 'Const'
                   for o in others):
                noise.add(user)
                stack.append(user)
    return noise


# Ops a dropout switch passes through on its way to the dropout; ``1 - x`` flips its meaning.
_SWITCH_PASS = ('Identity', 'Cast', 'Snapshot', 'StopGradient', 'Reshape', 'Squeeze')


def _dropout_role(name: str, nodes, consumers, random: set) -> Optional[str]:
    """``'keep_prob'`` or ``'rate'`` when placeholder ``name`` feeds a dropout's probability.

    ``tf.nn.dropout`` compares its noise with the rate (``RandomUniform >= rate``; TF 2's
    ``keep_prob`` argument becomes ``rate = 1 - keep_prob``), TF 1's compat dropout adds the
    noise to keep_prob (``keep_prob + RandomUniform``, then ``Floor``). The placeholder's role
    is read from that use, through identities, casts and ``1 - x``, whatever its name.
    """
    roles = set()
    stack, seen = [(name, False)], set()
    while stack:
        current, flipped = stack.pop()
        if (current, flipped) in seen or len(seen) > 64:
            continue
        seen.add((current, flipped))
        for user_name in consumers.get(current, []):
            user = nodes[user_name]
            inputs = [op_name(i) for i in user.input if not i.startswith('^')]
            others = [i for i in inputs if i != current]
            if user.op in _SWITCH_PASS:
                stack.append((user_name, flipped))
            elif user.op == 'Sub' and len(inputs) == 2 and inputs[1] == current and \
                    _const_value(nodes.get(inputs[0])) is not None and \
                    np.all(_const_value(nodes[inputs[0]]) == 1):
                stack.append((user_name, not flipped))
            elif user.op in ('GreaterEqual', 'Greater', 'Less', 'LessEqual') and \
                    any(o in random for o in others):
                roles.add('keep_prob' if flipped else 'rate')
            elif user.op in ('Add', 'AddV2') and any(o in random for o in others):
                roles.add('rate' if flipped else 'keep_prob')
    return roles.pop() if len(roles) == 1 else None


def switch_values(graph_def) -> Dict[str, np.ndarray]:
    """Placeholder name -> inference value of every training switch of the graph.

    A switch is a bool placeholder (False, also with a default), a scalar float placeholder that
    feeds a dropout's probability, whatever its name (keep_prob 1, rate 0; see
    `_dropout_role`), a placeholder named like one (``keep_prob``, ``is_training``,
    ``dropout_rate``: scalar or without a shape), or any other ``placeholder_with_default``,
    which maps to None: it becomes an Identity of its default.
    """
    nodes = {n.name: n for n in graph_def.node}
    consumers = _consumers(graph_def)
    random = None
    values = {}
    for node in graph_def.node:
        if node.op not in ('Placeholder', 'PlaceholderWithDefault'):
            continue
        if node.op == 'PlaceholderWithDefault':
            values[node.name] = None  # Unless recognised below: its default.
        dtype = tf.as_dtype(node.attr['dtype'].type)
        base = node.name.rsplit('/', 1)[-1]
        loose = _scalar_or_unknown(node)
        if dtype == tf.bool:
            values[node.name] = np.array(False)
            continue
        if not dtype.is_floating:
            continue
        role = None
        if loose:
            if random is None:
                random = _random_values(graph_def)
            role = _dropout_role(node.name, nodes, consumers, random)
        if role is None and _KEEP_PROB.search(base):
            role = 'keep_prob'
        elif role is None and loose and _RATE.search(base):
            role = 'rate'
        if role is None and loose and _TRAINING.search(base):
            values[node.name] = np.array(0, dtype.as_numpy_dtype)
        elif role is not None:
            values[node.name] = np.array(1 if role == 'keep_prob' else 0, dtype.as_numpy_dtype)
    return values


# Names of what is never a model's output: gradients, and the range updates of quantization
# (``*/AssignMinLast``, ``*/AssignMaxEma``, the EMA's ``biased``/``local_step`` state).
_NOT_OUTPUT_NAME = re.compile(r'(^|/)(gradients(_\d+)?|Assign\w*|biased|local_step)(/|$)')
# Layers: what turns an input into a prediction (a label placeholder passes through none).
_LAYER_OPS = ('MatMul', 'Conv2D', 'DepthwiseConv2dNative', 'BatchMatMul', 'BatchMatMulV2',
              'BatchMatMulV3', 'Conv2DBackpropInput', 'Conv3D', 'Einsum')
# Losses and metrics: where a prediction meets the labels (a second model input meets the
# first in other ops, and the graph's outputs are then its sinks).
_METRIC_OPS = ('SoftmaxCrossEntropyWithLogits', 'SparseSoftmaxCrossEntropyWithLogits',
               'InTopK', 'InTopKV2', 'Equal', 'NotEqual', 'SquaredDifference')
# What a loss or metric reads the prediction through: the prediction is their input.
_READERS = ('Reshape', 'Identity', 'Squeeze', 'ExpandDims', 'Cast', 'Snapshot', 'StopGradient',
            'ArgMax', 'ArgMin', 'TopKV2')
_NOT_OUTPUT_OPS = ('NoOp', 'Const', 'Placeholder', 'PlaceholderWithDefault', 'Assert',
                   'Shape', 'ShapeN', 'Size', 'Rank')


def discover_outputs(graph_def) -> List[str]:
    """The graph's outputs: its one softmax, else its one prediction, else its one sink.

    The prediction is the float tensor that the layers compute from one data input (a
    placeholder that is not a training switch) and that losses and metrics (cross-entropy,
    ``in_top_k``, ``equal`` of ``argmax``: `_METRIC_OPS`) compare with another, the labels: the
    logits of a tutorial graph without softmax. Gradients and quantization range updates are
    never candidates.

    Raises:
      FreezeError: naming the candidates when there is not exactly one.
    """
    def outside(name):
        return not name.split('/')[0].startswith(_NOT_OUTPUT_SCOPES) and \
            not _NOT_OUTPUT_NAME.search(name)

    softmax = [n.name for n in graph_def.node if n.op == 'Softmax' and outside(n.name)]
    if len(softmax) == 1:
        return softmax
    if len(softmax) > 1:
        raise FreezeError(f'the graph has {len(softmax)} softmax outputs: '
                          f'{", ".join(softmax[:10])}; choose with --output-arrays')
    consumers = _consumers(graph_def)
    nodes = {n.name: n for n in graph_def.node}
    switches = switch_values(graph_def)
    data = {n.name for n in graph_def.node if n.op == 'Placeholder' and n.name not in switches}
    feeders = _data_feeders(graph_def, data)

    def candidate(node):
        return outside(node.name) and node.op not in _NOT_OUTPUT_OPS and \
            node.op not in _VARIABLE_OPS and not node.op.endswith('Summary') and \
            not node.op.startswith(('Assign', 'Save', 'Restore', 'Apply', 'Resource'))

    # The prediction: computed from one data input alone by the model's layers, and read by
    # what mixes it with another data input (the labels: loss, in_top_k, equal of argmax).
    layered = _downstream(graph_def, [n.name for n in graph_def.node
                                      if n.op in _LAYER_OPS])
    metrics = {n.name for n in graph_def.node
               if n.op in _METRIC_OPS and len(feeders.get(n.name, ())) > 1 and outside(n.name)}
    predictions = []
    for node in graph_def.node:
        if len(feeders.get(node.name, ())) != 1 or node.name not in layered or \
                not candidate(node) or not any(u in metrics for u in consumers.get(node.name, [])):
            continue
        # From the loss's reshape of the logits or the metric's argmax back to the logits
        # (a tensor something else reads too, such as a named tf.identity, stays).
        while node.op in _READERS and node.input and \
                all(u in metrics for u in consumers.get(node.name, []) if outside(u)) and \
                op_name(node.input[0]) in nodes and candidate(nodes[op_name(node.input[0])]):
            node = nodes[op_name(node.input[0])]
        if _float_output(node) and node.name not in predictions:
            predictions.append(node.name)
    # A metric built after create_training_graph reads the float logits, the loss their fake
    # quant: one prediction, the fake quant (what training computed).
    # With a quant_delay the loss reads <scope>/delayed_quant (a Select, or TF 1.15's cond
    # Merge), which takes the fake quant once the delay is reached.
    if len(predictions) > 1:
        quantized, _ = quantized_outputs(graph_def, predictions)
        quantized = {_delayed_fake_quant(nodes, name) or moved
                     for name, moved in zip(predictions, quantized)}
        if len(quantized) == 1 and nodes[next(iter(quantized))].op.startswith('FakeQuant'):
            predictions = list(quantized)
    if len(predictions) == 1:
        return predictions
    sinks = [n.name for n in graph_def.node
             if n.name not in consumers and candidate(n) and feeders.get(n.name)]
    if len(sinks) == 1:
        return sinks
    listing = predictions or sinks
    raise FreezeError('cannot tell the output of the graph: '
                      + (f'candidates {", ".join(listing[:10])}' if listing else 'no softmax and '
                         'no sink fed by a placeholder')
                      + '; name it with --output-arrays')


def _delayed_fake_quant(nodes, name: str) -> Optional[str]:
    """The fake quant that ``name`` selects once ``quant_delay`` is reached, when ``name`` is
    a ``<scope>/delayed_quant`` Select (ours) or cond Merge (TF 1.15), else None."""
    node = nodes.get(name)
    if node is None or not re.search(r'delayed_quant(/Merge)?$', name):
        return None
    stack, seen = [op_name(i) for i in node.input if not i.startswith('^')], set()
    while stack and len(seen) < 16:
        current = nodes.get(stack.pop())
        if current is None or current.name in seen:
            continue
        seen.add(current.name)
        if current.op.startswith('FakeQuantWithMinMax'):
            return current.name
        if current.op in ('Identity', 'Switch', 'RefSwitch'):  # A cond's branch.
            stack.extend(op_name(i) for i in current.input if not i.startswith('^'))
    return None


def _data_feeders(graph_def, data: set) -> Dict[str, frozenset]:
    """Node name -> the data placeholders among its ancestors."""
    nodes = {n.name: n for n in graph_def.node}
    out = {}
    for root in nodes:
        stack = [root]
        while stack:
            name = stack[-1]
            if name in out:
                stack.pop()
                continue
            node = nodes[name]
            pending = [op_name(i) for i in node.input
                       if op_name(i) in nodes and op_name(i) not in out]
            if pending:
                stack.extend(pending)
                continue
            feeding = set()
            for i in node.input:
                feeding |= out.get(op_name(i), frozenset())
            if name in data:
                feeding.add(name)
            out[name] = frozenset(feeding)
            stack.pop()
    return out


def _downstream(graph_def, names: Sequence[str]) -> set:
    """``names`` and every node that reads them, directly or not."""
    consumers = _consumers(graph_def)
    seen, stack = set(), list(names)
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(consumers.get(name, []))
    return seen


def _float_output(node) -> bool:
    """Whether the node's first output is a float tensor (from its op's definition)."""
    from tensorflow.python.framework import op_def_registry
    op_def = op_def_registry.get(node.op)
    if op_def is None or not op_def.output_arg:
        return False
    arg = op_def.output_arg[0]
    dtype = arg.type or (node.attr[arg.type_attr].type if arg.type_attr in node.attr else 0)
    return bool(dtype) and tf.as_dtype(dtype).is_floating


def _checkpoint_hint(graph_file: str) -> str:
    """What to pass instead of a training graph file: the checkpoint beside it when one is."""
    folder = os.path.dirname(os.path.abspath(graph_file))
    try:
        prefix = tf.train.latest_checkpoint(folder)
    except (tf.errors.OpError, ValueError, UnicodeError):  # A damaged 'checkpoint' file.
        prefix = None
    if prefix and os.path.isfile(prefix + '.meta') and os.path.isfile(prefix + '.index'):
        return (f'pass the checkpoint {prefix} instead (its graph is in {prefix}.meta), or '
                'freeze the graph first')
    return ('pass the checkpoint prefix that holds them instead (its graph is in the .meta '
            'beside it), or freeze the graph first')


def _variables_to_constants(graph_def, checkpoint: Optional[str], source: str):
    """Replaces variables by their checkpoint values (read from the file, never restored)."""
    variables = [n for n in graph_def.node if n.op in _VARIABLE_OPS]
    if not variables:
        return graph_def
    if checkpoint is None:
        raise FreezeError(f'{source} has variables ({variables[0].name}) but no checkpoint '
                          f'holds their values: {_checkpoint_hint(source)}')
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


def _frozen_updates_to_reads(graph_def) -> None:
    """A training update on a constant (a QAT training graph frozen by the user's own
    ``convert_variables_to_constants``: ``weights_quant/AssignMinLast``,
    ``act_quant/AssignMinEma/*`` stay, on the frozen range) reads the constant: at inference
    the range keeps its trained value (a graph that did not import)."""
    consts = {n.name: n.attr['dtype'].type for n in graph_def.node if n.op == 'Const'}
    for node in graph_def.node:
        if node.op in _UPDATE_OPS and node.input and op_name(node.input[0]) in consts:
            ref = node.input[0]
            node.op = 'Identity'
            del node.input[:]
            node.input.append(ref)
            for key in list(node.attr):
                del node.attr[key]
            node.attr['T'].type = consts[op_name(ref)]


# What lies between a fake quant's min/max input and its range variable (the read, or the
# training update contrib/quantize feeds it through).
_RANGE_PATH = ('Identity', 'RefIdentity', 'ReadVariableOp', 'Assign', 'AssignSub', 'AssignAdd',
               'Switch', 'RefSwitch')
_FAKE_QUANT_VARS = ('FakeQuantWithMinMaxVars', 'FakeQuantWithMinMaxVarsPerChannel')


def _range_variable(nodes, name: str) -> Optional[str]:
    """The variable a fake quant's min or max input reads, or None (a constant, a tensor)."""
    node = nodes.get(op_name(name))
    for _ in range(32):
        if node is None:
            return None
        if node.op in _VARIABLE_OPS:
            return node.name
        if node.op not in _RANGE_PATH or not node.input:
            return None
        node = nodes.get(op_name(node.input[0]))
    return None


def _update_counters(variable: str) -> List[str]:
    """Where a zero-debiased range keeps its update count: TF 1.15's ``<s>/<s>/min/local_step``
    (``assign_moving_average`` opens a scope named after the variable inside the quantizer's
    scope ``<s>``), and ``<s>/min/local_step`` (reimplementations that missed that scope)."""
    scope = variable.rsplit('/', 1)[0] if '/' in variable else ''
    tf115 = [f'{scope}/{variable}/local_step'] if scope else []
    return tf115 + [f'{variable}/local_step']


def unreached_ranges(graph_def, checkpoint: Optional[str]) -> List[str]:
    """Fake-quant ops whose moving-average range was never updated during training.

    contrib/quantize's activation ranges count their updates in a ``local_step`` variable; 0
    in the checkpoint means no training step read that fake quant (a loss built from the raw
    logits, say), so its range is still the initial one (``[0, 6]`` for activations) and would
    clip what it never saw. Ranges without such a counter (weights, hand-made ranges) are
    never reported.

    Args:
      graph_def: the graph as saved (variables not yet frozen).
      checkpoint: the checkpoint prefix holding the values (None: nothing to report).

    Returns:
      The fake-quant op names, in graph order.
    """
    if checkpoint is None:
        return []
    try:
        reader = tf.train.load_checkpoint(checkpoint)
        saved = reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError):
        return []  # _variables_to_constants reports an unreadable checkpoint.
    nodes = {n.name: n for n in graph_def.node}
    found = []
    for node in graph_def.node:
        if node.op not in _FAKE_QUANT_VARS or len(node.input) < 3:
            continue
        for k in (1, 2):
            variable = _range_variable(nodes, node.input[k])
            counter = next((c for c in _update_counters(variable) if c in saved),
                           None) if variable else None
            if counter is not None and not np.any(reader.get_tensor(counter)):
                found.append(node.name)
                break
    return found


def delay_not_reached(graph_def, checkpoint: Optional[str]) -> Optional[str]:
    """A note when the checkpoint was saved before ``quant_delay`` was reached: training then
    computed in float, and the export (and ``eval``'s reference) takes the quantized branch
    with the ranges learned meanwhile. None otherwise."""
    if checkpoint is None:
        return None
    nodes = {n.name: n for n in graph_def.node}
    delays = set()
    for node in graph_def.node:
        if node.op == 'GreaterEqual' and node.name.rsplit('/', 1)[-1] == 'activate_quant' \
                and len(node.input) == 2:
            value = _const_value(nodes.get(op_name(node.input[1])))
            if value is not None:
                delays.add(int(value))
    if not delays:
        return None
    try:
        step = int(tf.train.load_checkpoint(checkpoint).get_tensor('fake_quantization_step'))
    except (tf.errors.OpError, ValueError, KeyError):
        return None
    if step >= min(delays):
        return None
    return (f'the checkpoint was saved at quantization step {step}, before quant_delay '
            f'{min(delays)}: training computed in float; exported the quantized branch with the '
            'ranges learned meanwhile (eval\'s agreement is with that branch)')


def _activate_delayed_quantization(graph_def) -> None:
    """Takes the quantized branch of every ``quant_delay``: ``<scope>/activate_quant``
    (``fake_quantization_step >= quant_delay``, read by TF 1.15's ``cond`` or our
    ``delayed_quant`` Select) becomes True, as ``create_eval_graph`` (no delay) would build it;
    a training checkpoint saved before the delay was reached keeps its learned ranges."""
    for node in graph_def.node:
        if node.op == 'GreaterEqual' and node.name.rsplit('/', 1)[-1] == 'activate_quant':
            _set_const(node, np.array(True))


def quantized_outputs(graph_def, outputs: Sequence[str]):
    """Moves each output that one fake quant reads (directly or through Identity) onto that
    fake quant: a tutorial that names its logits ``fc2/add`` as the output, while
    ``create_eval_graph`` put ``fc2/act_quant`` after it, means the quantized logits.

    Returns:
      ``(outputs, notes)``: the new output names and one note per moved output.
    """
    nodes = {n.name: n for n in graph_def.node}
    consumers = _consumers(graph_def)
    moved, notes = [], []
    for name in outputs:
        quants, pending = set(), [name]
        while pending:
            tensor = pending.pop()
            for user in consumers.get(tensor, []):
                node = nodes[user]
                if node.op.startswith('FakeQuantWithMinMax') and op_name(node.input[0]) == tensor:
                    quants.add(user)
                elif node.op == 'Identity':
                    pending.append(user)
        if len(quants) == 1:
            quant = quants.pop()
            moved.append(quant)
            notes.append(f'the output {name} is taken before its fake quant {quant}; exported '
                         f'{quant} instead (--output-arrays {quant})')
        else:
            moved.append(name)
    return moved, notes


def _set_const(node, value: np.ndarray, dtype=None) -> None:
    node.op = 'Const'
    del node.input[:]
    node.attr.clear()
    dtype = tf.as_dtype(dtype or value.dtype)
    node.attr['dtype'].type = dtype.as_datatype_enum
    node.attr['value'].tensor.CopyFrom(tf.make_tensor_proto(value, dtype=dtype))


def _feed_switches(graph_def, inputs: Sequence[str], switches: Mapping) -> None:
    """Replaces each training switch by its inference value (`switch_values`)."""
    for node in graph_def.node:
        if node.name in inputs or not node.op.startswith('Placeholder'):
            continue
        value = switches.get(node.name)
        if value is not None:
            _set_const(node, value, node.attr['dtype'].type)
        elif node.op == 'PlaceholderWithDefault':
            node.op = 'Identity'
            dtype = node.attr['dtype'].type
            node.attr.clear()
            node.attr['T'].type = dtype
        else:
            raise FreezeError(f'placeholder {node.name} is needed by the outputs but is not an '
                              'input (--input-arrays) nor a training switch (a scalar '
                              'keep_prob/rate feeding a dropout, a bool is_training, a '
                              'placeholder_with_default); add it to --input-arrays')


def _set_input_shapes(graph_def, inputs, input_shapes, batch_size):
    """Gives every input its static shape: ``input_shapes``, else its own with the batch
    dimension (open or fixed) set to ``batch_size``.

    Returns:
      ``(input name -> shape, input name -> the fixed batch it was declared with)``, the
      latter for the inputs whose declared batch became ``batch_size``.
    """
    shapes, fixed = {}, {}
    nodes = {n.name: n for n in graph_def.node}
    for name in inputs:
        node = nodes[name]
        if node.op not in ('Placeholder', 'PlaceholderWithDefault'):
            raise FreezeError(f'input {name} is a {node.op}, not a placeholder; name the '
                              'placeholders with --input-arrays')
        proto = node.attr['shape'].shape
        declared = [] if proto.unknown_rank else [d.size for d in proto.dim]
        if input_shapes and name in input_shapes:
            shape = [int(d) for d in input_shapes[name]]
            if declared and shape and declared[0] > 0 and shape[0] != declared[0]:
                fixed[name] = declared[0]
        else:
            if proto.unknown_rank and name != inputs[0]:
                # --input-shapes shapes the first input: a shape-less second one is most often
                # a switch this tool cannot give a value.
                raise FreezeError(f'placeholder {name} feeds the outputs but has no shape and is '
                                  'no training switch (a scalar keep_prob/rate feeding a '
                                  'dropout, a bool is_training); build it with '
                                  'tf.placeholder_with_default(VALUE, []) to freeze its '
                                  'inference value, or with a shape to make it an input')
            if proto.unknown_rank:
                raise FreezeError(f'input {name} has no known shape; give it with '
                                  '--input-shapes, for example 1,28,28,1')
            shape = [d.size for d in proto.dim]
            if shape and shape[0] not in (-1, None) and shape[0] != batch_size:
                # A batch fixed for training (fully_connected_feed's [100, 784]) is not the
                # model's: inference takes --batch-size examples.
                fixed[name] = shape[0]
            if shape:
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
    return shapes, fixed


def _rebatch(graph_def, fixed: Dict[str, int], batch_size: int, outputs: Sequence[str]):
    """Rewrites what hard-codes an input's old fixed batch downstream of it, or refuses.

    A ``Reshape`` to a constant shape whose first dimension is the old batch (``[100, -1]``)
    gets ``batch_size`` there. Any other tensor downstream that keeps the old batch as its first
    dimension is refused, naming the op and the flag that keeps the old batch.
    """
    consumers = _consumers(graph_def)
    nodes = {n.name: n for n in graph_def.node}
    downstream, stack = set(), list(fixed)
    while stack:
        name = stack.pop()
        if name not in downstream:
            downstream.add(name)
            stack.extend(consumers.get(name, []))
    old_batches = set(fixed.values())
    out = v1.GraphDef()
    out.CopyFrom(graph_def)
    for node in list(out.node):
        if node.op != 'Reshape' or node.name not in downstream:
            continue
        shape = _const_value(nodes.get(op_name(node.input[1])))
        if shape is None or shape.ndim != 1 or not len(shape) or int(shape[0]) not in old_batches:
            continue
        shape = shape.copy()
        shape[0] = batch_size
        names = {n.name for n in out.node}
        const = out.node.add()
        const.name = next(f'{node.name}/rebatched_shape' + (f'_{k}' if k else '')
                          for k in range(len(names) + 1)
                          if f'{node.name}/rebatched_shape' + (f'_{k}' if k else '') not in names)
        _set_const(const, shape)
        node.input[1] = const.name
    name, old = next(iter(fixed.items()))
    keep = (f'export with --batch-size {old} to keep the batch it was built with, or build '
            'the graph with a None batch')
    try:
        graph = _import(out)
    except FreezeError as e:
        raise FreezeError(f'input {name} has a fixed batch of {old} that the graph also '
                          f'hard-codes further on, so it cannot take batch {batch_size} '
                          f'({str(e)[len("the graph does not import: "):][:200]}); {keep}') \
            from None
    if old > 1:
        for op in graph.get_operations():
            if op.name in downstream and op.name not in fixed and op.outputs and \
                    op.outputs[0].shape.rank and op.outputs[0].shape[0] == old:
                raise FreezeError(f'input {name} has a fixed batch of {old} that {op.name} '
                                  f'({op.type}) also hard-codes (shape '
                                  f'{op.outputs[0].shape.as_list()}), so it cannot take batch '
                                  f'{batch_size}; {keep}')
    return v1.graph_util.extract_sub_graph(out, list(outputs))


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
      batch_size: the static batch size, where the graph leaves it open and where it fixes
        another (a training batch; see `_rebatch`).
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
    switches = switch_values(graph_def)
    if input_arrays:
        inputs = check_output_names(graph_def, input_arrays)
    else:
        needed = _ancestors(graph_def, outputs)
        inputs = [n.name for n in graph_def.node if n.name in needed and n.op == 'Placeholder'
                  and n.name not in switches]
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
    _activate_delayed_quantization(cut)
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
    _frozen_updates_to_reads(pruned)
    _feed_switches(pruned, inputs, switches)
    shapes, fixed_batches = _set_input_shapes(pruned, inputs, input_shapes, batch_size)
    if fixed_batches:
        pruned = _rebatch(pruned, fixed_batches, batch_size, outputs)
    safety.check_graph_size(pruned, source)
    pruned = bypass_identities(pruned, [*inputs, *outputs])  # Long chains: see its docstring.
    for _ in range(3):  # Folding exposes constant predicates and random ops, and back.
        pruned = _fold_constants(pruned, outputs)
        pruned = _resolve_switches(pruned, outputs)
        pruned = _remove_dead_randomness(pruned, outputs)
        pruned = _simplify(pruned, outputs)
    pruned = _fold_constants(pruned, outputs)
    if fixed_batches:  # Folding turns computed shapes (tf.stack([100, 784])) into constants.
        pruned = _rebatch(pruned, fixed_batches, batch_size, outputs)
    _check_batch_norm_inference(pruned)
    left = stateful_ops(pruned) + [f'{n.name} ({n.op})' for n in pruned.node
                                   if n.op in ('Switch', 'Merge', 'If', 'StatelessIf', 'While')]
    if left:
        raise FreezeError(f'the inference graph still has random, stateful or control-flow ops: '
                          f'{", ".join(left[:5])}; feed the switch that controls them with its '
                          'inference value, or rebuild the graph without them')
    return pruned, list(inputs), list(outputs), shapes


def _check_batch_norm_inference(graph_def) -> None:
    """Refuses a batch norm in training mode (``is_training=True`` as a Python bool: nothing to
    feed): it normalizes with each batch's statistics, so a model of batch 1 computes garbage
    that its own TF graph agrees with.

    Raises:
      FreezeError: naming the op and the graph to export instead.
    """
    training = [n for n in graph_def.node
                if n.op.startswith('FusedBatchNorm') and n.attr['is_training'].b]
    if not training:
        return
    node = training[0]
    if any(n.name.endswith('/correction_mult') for n in graph_def.node):
        fix = ('build the model again with is_training=False, rewrite it with '
               'create_eval_graph, restore this checkpoint, save it and export that checkpoint')
    else:
        fix = ('build the model again with is_training=False (slim: in its arg_scope), '
               'restore this checkpoint, save it and export that checkpoint')
    raise FreezeError(f'{node.name} ({node.op}) normalizes with the statistics of each batch '
                      f'(is_training=True): this is a training graph, whose predictions depend '
                      f'on the batch; {fix}')


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
                allow_unsafe_ops: bool = False, quantize_outputs: bool = False) -> FrozenGraph:
    """Loads a frozen ``.pb``/``.pbtxt``, a checkpoint with its ``.meta``, or a SavedModel.

    Args:
      path: the ``.pb``/``.pbtxt`` file, a checkpoint prefix (``model.ckpt``; its ``.meta``
        beside it), its ``.meta`` file, a folder with a ``checkpoint`` state file, or a
        SavedModel folder.
      input_arrays: input op names (default: discovered).
      output_arrays: output op names (default: discovered; for a SavedModel its signature's).
      input_shapes: input name -> static shape, or one shape for the first input.
      batch_size: static batch size, where the graph leaves it open or fixes another.
      tag_set: SavedModel MetaGraph tags (``--tag-set``).
      signature_def: SavedModel signature key (``--signature-def``; default
        ``serving_default`` or the only one).
      allow_unsafe_ops: skip the op allow-list.
      quantize_outputs: an output that one fake quant reads becomes that fake quant (integer
        export: the quantized tensor right after it), with a note saying so.

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
    notes = []
    if kind == SAVED_MODEL:
        graph_def, checkpoint, sig_in, sig_out, signature_def = _read_saved_model(
            path, tag_set, signature_def)
        input_arrays = input_arrays or sig_in
        if not output_arrays:
            output_arrays, notes = _scores_of_signature(graph_def, sig_out)
        options = {'tag_set': list(tag_set), 'signature_def': signature_def}
    if quantize_outputs and output_arrays:
        from freeze.freeze_graph import check_output_names
        output_arrays, moved = quantized_outputs(
            graph_def, check_output_names(graph_def, output_arrays))
        notes += moved
    unreached = unreached_ranges(graph_def, checkpoint)
    delayed = delay_not_reached(graph_def, checkpoint)
    if delayed:
        notes.append(delayed)
    graph_def, inputs, outputs, shapes = make_inference_graph(
        graph_def, checkpoint=checkpoint, input_arrays=input_arrays,
        output_arrays=output_arrays, input_shapes=input_shapes, batch_size=batch_size,
        source=path, allow_unsafe_ops=allow_unsafe_ops)
    kept = {n.name for n in graph_def.node}
    return FrozenGraph(graph_def, inputs, outputs, shapes, os.path.abspath(path), kind, options,
                       [name for name in unreached if name in kept], notes)
