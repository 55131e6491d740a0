"""One call from a frozen inference graph to a verified ``.tflite`` with its export record.

`export_graph` converts a `freeze.sources.FrozenGraph` (from any source kind) in one of the
modes of `freeze.tflite`. For ``int8``/``uint8`` it

* uses the graph's fake-quant ranges when every layer has them (QAT), widening int8 weight
  ranges to symmetric ones so that int8 weights get zero point 0 (`symmetrize_weight_ranges`);
* refuses, naming the layers, a graph where some layers have no ranges, unless asked to
  calibrate (``calibrate=True``: every range comes from representative data instead);
* calibrates from representative data the ranges training never updated
  (`freeze.sources.unreached_ranges`), or refuses, naming them, without data;
* quantizes a graph without any fake-quant op post-training, from representative data;
* verifies the result (`freeze.verify`) and raises instead of returning a float-computing model.

`write_export` publishes the model and its ``.json`` record together (`freeze.fileio.publish`);
the record holds the model's digest, so `read_export_record` never pairs a model with another
model's record, and the digests of the converted graph and of the graph as trained
(`trained_graph`, the reference of an evaluation's agreement), so an evaluation can check that
the record's source still is that graph.
"""

import dataclasses
import hashlib
import json
import os
import time
from typing import Collection, Dict, List, Optional, Sequence, Tuple

import numpy as np

from freeze import tflite, verify
from freeze._tf import tf, v1
from freeze.errors import ExportError, UsageError, VerificationError
from freeze.fileio import publish
from freeze.freeze_graph import graph_digest, op_name

RECORD_SUFFIX = '.json'
# A record is a few hundred bytes; anything much larger is not one.
MAX_RECORD_BYTES = 1 << 20
SAMPLE_INPUTS = 32


@dataclasses.dataclass
class ExportRecord:
    """What was exported, from what, and how.

    Attributes:
      model: the ``.tflite`` bytes (not written to the JSON record).
      mode: ``float``, ``dynamic``, ``int8`` or ``uint8``.
      source: checkpoint prefix, folder or ``.pb`` path.
      source_kind: ``checkpoint`` (our runs), ``checkpoint_meta``, ``saved_model`` or
        ``frozen_graph``.
      graph: which TF graph was converted: ``float`` or ``qat_eval``.
      quantization: ``none``, ``dynamic``, ``qat`` or ``post_training``.
      batch_size: static batch size of the input.
      input_arrays: input op names.
      output_arrays: output op names.
      seconds: wall time of the whole export.
      symmetrized_weights: whether asymmetric weight ranges were widened to symmetric ones.
      input_range: the real ``(min, max)`` of the inputs (``--input-range``).
      input_shapes: input name -> static shape.
      graph_sha256: digest of the frozen graph that was converted (after symmetrization).
      options: how the source was loaded (SavedModel tags, signature...).
      verified: whether the integer checks of `freeze.verify` ran and passed.
      verify_mean_abs_diff: the mean absolute difference of the integer model's outputs from
        the frozen graph's on the verification samples (None when not verified).
      trained_graph_sha256: digest of the graph as trained (`trained_graph`), the reference
        of ``eval``'s agreement.
      calibrated_ranges: fake-quant ops whose never-updated range was calibrated from data.
      notes: lines for the user (an output moved past its fake quant, calibrated ranges).
    """

    model: bytes
    mode: str
    source: str
    source_kind: str
    graph: str
    quantization: str
    batch_size: int
    input_arrays: List[str]
    output_arrays: List[str]
    seconds: float
    symmetrized_weights: bool = False
    input_range: Tuple[float, float] = tflite.INPUT_RANGE
    input_shapes: Dict[str, List[int]] = dataclasses.field(default_factory=dict)
    graph_sha256: str = ''
    options: Dict = dataclasses.field(default_factory=dict)
    verified: bool = False
    verify_mean_abs_diff: Optional[float] = None
    trained_graph_sha256: str = ''
    calibrated_ranges: List[str] = dataclasses.field(default_factory=list)
    notes: List[str] = dataclasses.field(default_factory=list)

    def to_json(self) -> Dict:
        d = dataclasses.asdict(self)
        del d['model']
        d['input_range'] = list(self.input_range)
        d['size_bytes'] = len(self.model)
        d['model_sha256'] = hashlib.sha256(self.model).hexdigest()
        return d


def constant_nodes(graph_def) -> set:
    """Names of the nodes whose value depends on constants only (weights, folded or not)."""
    nodes = {n.name: n for n in graph_def.node}
    state = {}
    for root in nodes:
        stack = [root]
        while stack:
            name = stack[-1]
            if name in state:
                stack.pop()
                continue
            node = nodes.get(name)
            if node is None or node.op.startswith(('Placeholder', 'Random', 'Variable',
                                                    'VarHandle')):
                state[name] = False
                stack.pop()
                continue
            if node.op == 'Const':
                state[name] = True
                stack.pop()
                continue
            pending = [op_name(i) for i in node.input if op_name(i) not in state]
            if pending:
                stack.extend(pending)
                if len(stack) > 100000:
                    raise ExportError('the graph is too deep to analyse')
                continue
            state[name] = all(state[op_name(i)] for i in node.input)
            stack.pop()
    return {name for name, constant in state.items() if constant}


def weight_fake_quants(graph_def) -> List[str]:
    """Names of the fake-quant ops whose input depends on constants only (weights)."""
    constant = constant_nodes(graph_def)
    return [n.name for n in graph_def.node
            if n.op.startswith('FakeQuantWithMinMaxVars') and op_name(n.input[0]) in constant]


def symmetrize_weight_ranges(graph_def) -> Tuple[tf.compat.v1.GraphDef, int]:
    """Widens each weight fake-quant range ``[min, max]`` of a frozen graph to ``[-r, r]``.

    TFLite's int8 spec (and XNNPACK, and the Edge TPU) need int8 weights with zero point 0.
    ``r = max(|min|, |max|)`` clips nothing; the quantization step grows by at most 2x.

    Args:
      graph_def: a frozen graph whose fake-quant min/max inputs are constants.

    Returns:
      ``(new graph_def, number of ranges changed)``.
    """
    out = v1.GraphDef()
    out.CopyFrom(graph_def)
    nodes = {n.name: n for n in out.node}
    changed = 0
    for name in weight_fake_quants(out):
        node = nodes[name]
        bounds = [nodes.get(op_name(node.input[k])) for k in (1, 2)]
        while any(b is not None and b.op == 'Identity' for b in bounds):
            bounds = [nodes.get(op_name(b.input[0])) if b is not None and b.op == 'Identity'
                      else b for b in bounds]
        if any(b is None or b.op != 'Const' for b in bounds):
            continue
        low, high = (tf.make_ndarray(b.attr['value'].tensor) for b in bounds)
        bound = np.maximum(np.abs(low), np.abs(high)).astype(low.dtype)
        if np.array_equal(-bound, low) and np.array_equal(bound, high):
            continue
        # The min/max constants may be shared; give this op its own.
        for k, value in ((1, -bound), (2, bound)):
            const = out.node.add()
            const.name = f'{name}/symmetric_{"min" if k == 1 else "max"}'
            const.op = 'Const'
            const.attr['dtype'].type = tf.as_dtype(value.dtype).as_datatype_enum
            const.attr['value'].tensor.CopyFrom(tf.make_tensor_proto(value))
            node.input[k] = const.name
        changed += 1
    return (v1.graph_util.extract_sub_graph(out, [n.name for n in out.node]) if changed
            else out), changed


def strip_fake_quant(graph_def, only: Optional[Collection[str]] = None
                     ) -> tf.compat.v1.GraphDef:
    """The float graph under a fake-quantized one (each fake-quant op becomes an Identity).

    Args:
      graph_def: the graph.
      only: strip only these fake-quant ops (default: all).
    """
    out = v1.GraphDef()
    out.CopyFrom(graph_def)
    for node in out.node:
        if node.op.startswith('FakeQuantWithMinMax') and (only is None or node.name in only):
            inputs = [node.input[0]] + [i for i in node.input if i.startswith('^')]
            del node.input[:]
            node.input.extend(inputs)
            node.op = 'Identity'
            node.attr.clear()
            node.attr['T'].type = tf.float32.as_datatype_enum
    return out


def run_graph(graph_def, input_name: str, output_name: str, inputs: np.ndarray) -> np.ndarray:
    """Runs a frozen GraphDef on float ``inputs [N, ...]`` in batches of its static batch."""
    return _run_tensors(graph_def, input_name, [output_name + ':0'], inputs)[0]


def _run_tensors(graph_def, input_name: str, tensor_names: Sequence[str],
                 inputs: np.ndarray) -> List[np.ndarray]:
    """`run_graph` for any tensors (``name:port``); one array ``[N, ...]`` per tensor."""
    graph = tf.Graph()
    with graph.as_default():
        v1.import_graph_def(graph_def, name='')
    x = graph.get_tensor_by_name(input_name + ':0')
    ys = [graph.get_tensor_by_name(name if ':' in name else name + ':0')
          for name in tensor_names]
    static = x.shape.as_list()
    batch = static[0] or 256
    shape = tuple(static[1:])
    inputs = inputs.reshape((len(inputs),) + shape).astype(x.dtype.as_numpy_dtype)
    out = [[] for _ in ys]
    with v1.Session(graph=graph) as session:
        for start in range(0, len(inputs), batch):
            chunk = inputs[start:start + batch]
            n = len(chunk)
            if static[0] and n < batch:
                chunk = np.concatenate([chunk, np.zeros((batch - n,) + shape, chunk.dtype)])
            for values, result in zip(out, session.run(ys, {x: chunk})):
                values.append(result[:n])
    return [np.concatenate(values) for values in out]


def trained_graph(frozen) -> tf.compat.v1.GraphDef:
    """The graph as trained: the source's learned ranges, weight ranges as trained (not yet
    symmetrized), and the fake quants training never updated left out (training computed
    those tensors in float; their initial ranges were never part of the model)."""
    if not frozen.unreached_ranges:
        return frozen.graph_def
    return strip_fake_quant(frozen.graph_def, only=set(frozen.unreached_ranges))


def _const_bounds(nodes, node) -> Optional[Tuple[float, float]]:
    """A fake quant's ``(min, max)`` when both are constants (through Identity), else None."""
    bounds = []
    for k in (1, 2):
        bound = nodes.get(op_name(node.input[k]))
        while bound is not None and bound.op == 'Identity':
            bound = nodes.get(op_name(bound.input[0]))
        if bound is None or bound.op != 'Const':
            return None
        value = tf.make_ndarray(bound.attr['value'].tensor)
        bounds.append(float(np.min(value) if k == 1 else np.max(value)))
    return bounds[0], bounds[1]


def _range_label(name: str, nodes) -> str:
    """``act_quant_1 [0, 6] (after Hypothesis)``: a fake quant by its scope, range and input."""
    scope = name.rsplit('/', 1)[0] if '/' in name else name
    bounds = _const_bounds(nodes, nodes[name])
    shown = f' [{bounds[0]:g}, {bounds[1]:g}]' if bounds else ''
    return f'{scope}{shown} (after {op_name(nodes[name].input[0])})'


def unreached_ranges_message(names: Sequence[str], graph_def) -> str:
    """The one-line refusal for ranges training never updated (see
    `freeze.sources.unreached_ranges`)."""
    nodes = {n.name: n for n in graph_def.node}
    labels = ', '.join(_range_label(n, nodes) for n in names[:6]) + (
        f' and {len(names) - 6} more' if len(names) > 6 else '')
    one = len(names) == 1
    return (f'the fake-quant range{"" if one else "s"} of {labels} {"was" if one else "were"} '
            'never updated in training (local_step 0: no training step read '
            f'{"it" if one else "them"}), so exporting {"it" if one else "them"} would clip '
            'with the initial range; pass --data-dir DIR to calibrate '
            f'{"it" if one else "them"} from data, or --calibrate to calibrate every range')


def calibrate_ranges(graph_def, names: Sequence[str], input_name: str,
                     images: np.ndarray) -> tf.compat.v1.GraphDef:
    """Sets the range of each fake quant in ``names`` to its input's range over ``images``.

    The range is widened to contain 0 (as contrib/quantize's ranges are). Ranges are set in
    graph order, so a later range sees the earlier ones already calibrated.

    Args:
      graph_def: a frozen graph.
      names: fake-quant op names (`freeze.sources.unreached_ranges`).
      input_name: the graph's input.
      images: float inputs ``[N, ...]``.

    Returns:
      The new graph.
    """
    out = v1.GraphDef()
    out.CopyFrom(graph_def)
    nodes = {n.name: n for n in out.node}
    for name in [n.name for n in out.node if n.name in set(names)]:
        node = nodes[name]
        values = _run_tensors(out, input_name, [node.input[0]], images)[0]
        bounds = (min(float(values.min()), 0.0), max(float(values.max()), 0.0))
        for k, value in zip((1, 2), bounds):
            const = out.node.add()
            const.name = f'{name}/calibrated_{"min" if k == 1 else "max"}'
            const.op = 'Const'
            const.attr['dtype'].type = tf.float32.as_datatype_enum
            const.attr['value'].tensor.CopyFrom(
                tf.make_tensor_proto(np.float32(value), dtype=tf.float32))
            node.input[k] = const.name
    return v1.graph_util.extract_sub_graph(out, [n.name for n in out.node])


def _sample_inputs(shape: Sequence[int], input_range, representative: Optional[np.ndarray]):
    if representative is not None and len(representative):
        return representative[:SAMPLE_INPUTS].reshape((-1,) + tuple(shape[1:]))
    rng = np.random.default_rng(0)
    low, high = input_range
    return rng.uniform(low, high, (SAMPLE_INPUTS,) + tuple(shape[1:])).astype(np.float32)


def _input_fake_quants(graph_def, inputs: Sequence[str]):
    """``[(fake-quant node, (min, max))]`` of the fake-quant ops reading an input directly."""
    nodes = {n.name: n for n in graph_def.node}
    found = []
    for node in graph_def.node:
        if not node.op.startswith('FakeQuantWithMinMax') or op_name(node.input[0]) not in inputs:
            continue
        if node.op == 'FakeQuantWithMinMaxArgs':
            low, high = node.attr['min'].f, node.attr['max'].f
        else:
            bounds = _const_bounds(nodes, node)
            if bounds is None:
                continue
            low, high = bounds
        found.append((node, (float(low), float(high))))
    return found


def resolve_input_range(graph_def, inputs: Sequence[str],
                        requested: Optional[Tuple[float, float]]) -> Tuple[float, float]:
    """The real input range to convert with: the user's, else the graph's own, else [0, 1].

    Args:
      graph_def: the frozen graph.
      inputs: its input op names.
      requested: ``--input-range`` as given, or None when the user gave none.

    Raises:
      UsageError: when a requested range differs from the one the graph's input fake-quant op
        would silently impose instead.
    """
    found = _input_fake_quants(graph_def, inputs)
    if requested is None:
        return found[0][1] if found else tuple(tflite.INPUT_RANGE)
    requested = tuple(float(v) for v in requested)
    for node, (low, high) in found:
        if not np.allclose((low, high), requested, atol=1e-6):
            raise UsageError(f'--input-range {requested[0]:g},{requested[1]:g} differs from '
                             f'the range [{low:g}, {high:g}] the graph quantizes input '
                             f'{op_name(node.input[0])} to ({node.name}); pass --input-range '
                             f'{low:g},{high:g} or leave it out')
    return requested


def export_graph(frozen, mode: str = 'float', *,
                 representative_images: Optional[np.ndarray] = None,
                 input_range: Optional[Tuple[float, float]] = None,
                 calibrate: bool = False,
                 representative_examples: int = tflite.REPRESENTATIVE_EXAMPLES,
                 seed: int = 0) -> ExportRecord:
    """Converts a frozen inference graph, verifying integer models.

    Args:
      frozen: a `freeze.sources.FrozenGraph` (one input, one output for integer modes).
      mode: one of `freeze.tflite.MODES`.
      representative_images: float inputs ``[N, ...]`` for post-training quantization (a
        graph without fake-quant ops, or ``calibrate``); also the verification samples.
      input_range: real ``(min, max)`` of the inputs, for the quantized input statistics;
        None: the range of the graph's own input fake-quant op, else [0, 1]
        (`resolve_input_range`).
      calibrate: calibrate every range from ``representative_images`` (post-training), even
        where the graph has fake-quant ranges.
      representative_examples: how many of ``representative_images`` the converter sees.
      seed: which ones (`freeze.tflite.representative_from_images`).

    Returns:
      The `ExportRecord`.

    Raises:
      UsageError: a mode the graph cannot give without data, or a bad input range.
      ExportError: the converter failed.
      VerificationError: the converted integer model is not one (nothing should be written).
    """
    if mode not in tflite.MODES:
        raise UsageError(f'unknown export mode {mode!r}; choose one of {", ".join(tflite.MODES)}')
    if input_range is not None:
        low, high = (float(v) for v in input_range)
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise UsageError(f'input range must be MIN,MAX with MIN < MAX, got {low},{high}')
    began = time.perf_counter()
    graph_def = frozen.graph_def
    integer = mode in ('int8', 'uint8')
    # Float models keep the graph's fake-quant ops: a range given for them is only recorded.
    if integer or input_range is None:
        low, high = resolve_input_range(graph_def, frozen.inputs, input_range)
    fake_quantized = frozen.fake_quantized
    missing = verify.missing_ranges(graph_def) if integer and fake_quantized else []
    if integer and len(frozen.inputs) != 1:
        raise UsageError(f'integer export needs exactly one input, the graph has '
                         f'{len(frozen.inputs)}: {", ".join(frozen.inputs)} (read by '
                         f'{", ".join(frozen.outputs)}); name an output that reads one of them '
                         'with --output-arrays')
    if calibrate:
        if not integer:
            raise UsageError('calibration applies to int8/uint8 export')
        if representative_images is None:
            raise UsageError('calibration needs representative data: pass --data-dir')
        graph_def, fake_quantized, missing = strip_fake_quant(graph_def), False, []
    elif missing:
        raise VerificationError(verify.missing_ranges_message(missing, graph_def))
    if mode == 'uint8' and not fake_quantized:
        # The converter's post-training quantization computes in int8 and converts uint8 at
        # the edges (QUANTIZE ops): never an all-uint8 model.
        raise UsageError('uint8 post-training quantization is not all-integer (the converter '
                         'computes in int8 and adds QUANTIZE ops for uint8 input and output); '
                         'export --quantize int8, or a graph with fake-quant ranges '
                         '(create_training_graph) for uint8')
    if integer and not fake_quantized and representative_images is None:
        raise UsageError(verify.missing_ranges_message(verify.missing_ranges(graph_def)
                                                       or ['the graph'], fake_quantized=False))
    notes = list(frozen.notes)
    calibrated = []
    if integer and fake_quantized and frozen.unreached_ranges:
        if representative_images is None:
            raise UsageError(unreached_ranges_message(frozen.unreached_ranges, graph_def))
        calibrated = list(frozen.unreached_ranges)
        images = np.asarray(representative_images, np.float32)
        index = np.random.default_rng(seed).choice(
            len(images), size=min(representative_examples, len(images)), replace=False)
        graph_def = calibrate_ranges(graph_def, calibrated, frozen.inputs[0], images[index])
        nodes = {n.name: n for n in graph_def.node}
        notes.append(f'calibrated from {len(index)} examples the ranges training never updated: '
                     + ', '.join(_range_label(n, nodes) for n in calibrated))
    elif not integer and frozen.unreached_ranges:
        # A float model computes what training computed: no clipping by an initial range.
        nodes = {n.name: n for n in graph_def.node}
        notes.append('left out the fake quants whose ranges training never updated: '
                     + ', '.join(_range_label(n, nodes) for n in frozen.unreached_ranges))
        graph_def = trained_graph(frozen)
    symmetrized = 0
    if integer and fake_quantized and mode == 'int8':
        graph_def, symmetrized = symmetrize_weight_ranges(graph_def)
    representative = None
    shape = frozen.input_shapes[frozen.inputs[0]]
    if integer and not fake_quantized:
        images = np.asarray(representative_images, np.float32)
        try:
            images = images.reshape((-1,) + tuple(shape[1:]))
        except ValueError:
            raise UsageError(f'the representative data has examples of shape '
                             f'{list(representative_images.shape[1:])}, the model input '
                             f'{frozen.inputs[0]} needs {shape[1:]}') from None
        representative = tflite.representative_from_images(
            images, count=representative_examples, seed=seed)
    model = tflite.convert_graph_def(graph_def, frozen.inputs, frozen.outputs, mode,
                                     fake_quantized=fake_quantized,
                                     representative_data=representative,
                                     input_range=(low, high))
    verified, diff = False, None
    if integer:
        samples = _sample_inputs(shape, (low, high), representative_images)
        diff = verify.verify_integer_model(
            model, samples, lambda x: run_graph(graph_def, frozen.inputs[0],
                                                frozen.outputs[0], x), missing)
        verified = True
    quantization = {'float': 'none', 'dynamic': 'dynamic'}.get(
        mode, 'qat' if fake_quantized else 'post_training')
    return ExportRecord(model, mode, frozen.source, frozen.source_kind,
                        'qat_eval' if fake_quantized else 'float', quantization, shape[0],
                        list(frozen.inputs), list(frozen.outputs), time.perf_counter() - began,
                        symmetrized_weights=bool(symmetrized), input_range=(low, high),
                        input_shapes=dict(frozen.input_shapes),
                        graph_sha256=graph_digest(graph_def), options=dict(frozen.options),
                        verified=verified, verify_mean_abs_diff=diff,
                        trained_graph_sha256=graph_digest(trained_graph(frozen)),
                        calibrated_ranges=calibrated, notes=notes)


def check_record_slot(path: str) -> None:
    """Raises `UsageError` if the record of a model written to ``path`` (``path.json``) would
    replace a file that is not an export record: the user's own ``results.json``, named by
    nobody on the command line.
    """
    record_path = path + RECORD_SUFFIX
    if not os.path.lexists(record_path):
        return
    try:
        read_export_record(path)
        return
    except ExportError:
        pass
    raise UsageError(f'{record_path} exists and is not an export record; the model\'s record '
                     'would replace it: move that file or choose another -o path')


def write_export(record: ExportRecord, path: str) -> str:
    """Publishes the ``.tflite`` and its ``.json`` record together; returns the record path.

    Raises:
      OSError: if writing fails (then neither file changed and no temporary file is left).
    """
    check_record_slot(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    record_path = path + RECORD_SUFFIX
    publish([(path, record.model),
             (record_path, (json.dumps(record.to_json(), indent=2) + '\n').encode())])
    return record_path


def read_export_record(tflite_path: str, model: Optional[bytes] = None) -> Optional[Dict]:
    """The record written beside a ``.tflite`` by `write_export`, or None if there is none.

    Args:
      tflite_path: the model file.
      model: its bytes, to check the record's ``model_sha256`` (a record of another model
        is ignored, as if absent).

    Raises:
      ExportError: if a record is there but is not a valid export record.
    """
    path = tflite_path + RECORD_SUFFIX
    try:
        if not os.path.isfile(path):
            return None
        if os.path.getsize(path) > MAX_RECORD_BYTES:
            raise ExportError(f'{path} is not an export record (too large); delete it or '
                              'export the model again')
        with open(path, 'rb') as f:
            record = json.loads(f.read().decode('utf-8'))
    except OSError as e:
        raise ExportError(f'cannot read {path}: {e.strerror}') from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ExportError(f'{path} is not a valid export record (not JSON); delete it or '
                          'export the model again') from None
    fields = {'source': str, 'source_kind': str, 'mode': str}
    if not isinstance(record, dict) or any(not isinstance(record.get(k), t)
                                           for k, t in fields.items()):
        raise ExportError(f'{path} is not a valid export record (missing source, source_kind '
                          'or mode); delete it or export the model again')
    if model is not None and record.get('model_sha256') not in (
            None, hashlib.sha256(model).hexdigest()):
        return None
    return record
