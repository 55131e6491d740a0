"""Checking an integer ``.tflite`` after conversion: it must compute in integers, load and agree.

The MLIR converter silently leaves layers without quantization ranges in float, wrapped in
QUANTIZE/DEQUANTIZE. `missing_ranges` finds such layers in the TF graph before converting;
`verify_integer_model` checks the flatbuffer after converting:

* every tensor is 8-bit, except int32 tensors (biases, shapes);
* no QUANTIZE/DEQUANTIZE inside the graph, no op computing on float tensors;
* int8 weights (constant tensors) have zero point 0 (the int8 spec, XNNPACK, the Edge TPU);
* it loads and runs in LiteRT with the XNNPACK delegate and without it;
* on sample inputs its outputs agree with the frozen graph it came from.
"""

from typing import Callable, List, Optional, Sequence

import numpy as np

from freeze.errors import VerificationError
from freeze.freeze_graph import op_name

COMPUTE_OPS = ('MatMul', 'Conv2D', 'DepthwiseConv2dNative', 'BatchMatMul', 'BatchMatMulV2',
               'Conv2DBackpropInput')
# Ops that only move values around: an atrous convolution's BatchToSpaceND, a MatMul's
# batch-norm Reshapes. They carry a layer's output to its range without computing.
_SHAPE_ONLY = ('Identity', 'BatchToSpaceND', 'SpaceToBatchND', 'Reshape', 'Squeeze',
               'ExpandDims')
# Ops between a layer's compute op and its activation range (bias, folded batch norm's add
# and scale, activation), and the shape-only ops among them.
_LAYER_TAIL = ('BiasAdd', 'Add', 'AddV2', 'Relu', 'Relu6', 'FusedBatchNorm',
               'FusedBatchNormV3', 'Mul', 'Sub', 'Maximum', 'Minimum') + _SHAPE_ONLY
_INT_TYPES = (np.int8, np.uint8)
# Agreement of the integer model with the float graph on sample inputs: the mean absolute
# difference of the outputs may not exceed this share of the reference's output range plus two
# quantization steps of the output (8-bit rounding of a well-quantized model stays far below).
MAX_MEAN_DIFF_SHARE = 0.1


def missing_ranges(graph_def) -> List[str]:
    """``name (OpType)`` of each layer of a fake-quantized graph that lacks learned ranges.

    A layer is a compute op (`COMPUTE_OPS`); it has ranges when its weights come through a
    ``FakeQuantWithMinMax*`` op and its output reaches one through bias, folded batch-norm,
    activation and shape-only ops (`_SHAPE_ONLY`: ``BatchToSpaceND`` of an atrous
    convolution, ``Reshape``...) only.
    The name is that of the layer's last op before the (missing) range, as users named it.
    """
    nodes = {n.name: n for n in graph_def.node}
    consumers = {}
    for node in graph_def.node:
        for i in node.input:
            consumers.setdefault(op_name(i), []).append(nodes[node.name])

    def through_identity(name):
        node = nodes.get(op_name(name))
        while node is not None and node.op == 'Identity':
            node = nodes.get(op_name(node.input[0]))
        return node

    missing = []
    for node in graph_def.node:
        if node.op not in COMPUTE_OPS:
            continue
        weights = through_identity(node.input[1]) if len(node.input) > 1 else None
        weight_ok = weights is not None and (weights.op.startswith('FakeQuant') or
                                              weights.op != 'Const')
        tail, named, output_ok = node, node, False
        seen = 0
        while seen < 16:
            seen += 1
            users = consumers.get(tail.name, [])
            if any(u.op.startswith('FakeQuant') for u in users):
                output_ok = True
                break
            following = [u for u in users if u.op in _LAYER_TAIL]
            if len(users) != 1 or not following:
                break
            tail = following[0]
            if tail.op not in _SHAPE_ONLY:  # Folded dropout leaves Identity ops: not the layer.
                named = tail
        if not (weight_ok and output_ok):
            missing.append(f'{named.name} ({node.op})')
    return missing


def _interpreter(model: bytes, xnnpack: bool):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    resolver = OpResolverType.AUTO if xnnpack else \
        OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = Interpreter(model_content=model, num_threads=1,
                              experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    return interpreter


def _quantize(values: np.ndarray, detail) -> np.ndarray:
    dtype = detail['dtype']
    if dtype == np.float32:
        return values.astype(np.float32)
    scale, zero_point = detail['quantization']
    info = np.iinfo(dtype)
    return np.clip(np.round(values / scale + zero_point), info.min, info.max).astype(dtype)


def _dequantize(values: np.ndarray, detail) -> np.ndarray:
    if detail['dtype'] == np.float32:
        return values
    scale, zero_point = detail['quantization']
    return (values.astype(np.float32) - zero_point) * scale


def run_model(interpreter, inputs: np.ndarray) -> np.ndarray:
    """Runs float ``inputs [N, ...]`` through an interpreter's first input and output, in
    batches of the model's static batch (the last one padded with zeros, its padding dropped).

    Raises:
      ValueError: when the examples do not have the model's example shape (`sample_misfit`).
    """
    detail = interpreter.get_input_details()[0]
    out_detail = interpreter.get_output_details()[0]
    shape = tuple(int(d) for d in detail['shape'])
    misfit = sample_misfit(inputs, shape)
    if misfit:
        raise ValueError(misfit)
    inputs = np.asarray(inputs, np.float32).reshape((len(inputs),) + shape[1:])
    outputs = []
    for start in range(0, len(inputs), shape[0]):
        batch = inputs[start:start + shape[0]]
        count = len(batch)
        if count < shape[0]:
            batch = np.concatenate([batch, np.zeros((shape[0] - count,) + shape[1:],
                                                    batch.dtype)])
        interpreter.set_tensor(detail['index'], _quantize(batch, detail))
        interpreter.invoke()
        outputs.append(_dequantize(interpreter.get_tensor(out_detail['index']),
                                   out_detail)[:count])
    return np.concatenate(outputs)


def sample_misfit(inputs: np.ndarray, shape: Sequence[int]) -> Optional[str]:
    """Why examples ``inputs [N, ...]`` cannot be fed to an input of ``shape``, or None."""
    example = [int(d) for d in shape[1:]]
    given = list(np.shape(inputs)[1:])
    if int(np.prod(given)) != int(np.prod(example)):
        return (f'the sample inputs have examples of shape {given}, the model input takes '
                f'{example}')
    return None


def structural_problems(model: bytes) -> List[str]:
    """What keeps a flatbuffer from being a fully integer model (empty when it is one)."""
    try:
        interpreter = _interpreter(model, xnnpack=False)
    except (ValueError, RuntimeError) as e:
        return [f'LiteRT cannot load it ({str(e).splitlines()[0][:200]})']
    tensors = {t['index']: t for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()  # pylint: disable=protected-access
    produced = {i for op in ops for i in op['outputs']}
    graph_inputs = {d['index'] for d in interpreter.get_input_details()}
    problems = []
    for op in ops:
        if op['op_name'] in ('QUANTIZE', 'DEQUANTIZE'):
            problems.append(f'{op["op_name"]} op inside the model')
            continue
        floats = [tensors[i]['name'] for i in list(op['inputs']) + list(op['outputs'])
                  if i >= 0 and i in tensors and tensors[i]['dtype'] == np.float32]
        if floats:
            problems.append(f'{op["op_name"]} computes in float ({floats[0]})')
    for index, tensor in tensors.items():
        dtype = tensor['dtype']
        if dtype not in _INT_TYPES and dtype != np.int32:
            problems.append(f'tensor {tensor["name"]} is {np.dtype(dtype).name}')
        constant = index not in produced and index not in graph_inputs
        if constant and dtype == np.int8:
            zero_points = tensor['quantization_parameters']['zero_points']
            if np.any(zero_points != 0):
                problems.append(f'int8 weights {tensor["name"]} have zero point '
                                f'{int(zero_points[np.nonzero(zero_points)][0])}, not 0')
    return problems


def verify_integer_model(model: bytes, sample_inputs: np.ndarray,
                         reference: Callable[[np.ndarray], np.ndarray],
                         layers_without_ranges: Sequence[str] = ()) -> Optional[float]:
    """Raises `VerificationError` unless ``model`` is a working, fully integer model.

    Args:
      model: the converted flatbuffer.
      sample_inputs: float inputs ``[N, ...]`` in the model's real input range.
      reference: runs the frozen TF graph on such inputs, returning its float outputs.
      layers_without_ranges: from `missing_ranges`, named first in the message.

    Returns:
      The mean absolute difference of the outputs from the reference.

    Raises:
      VerificationError: naming the first problems.
    """
    problems = structural_problems(model)
    if problems:
        if layers_without_ranges:
            raise VerificationError(missing_ranges_message(layers_without_ranges))
        raise VerificationError('the converted model is not fully integer: '
                                + '; '.join(problems[:4]) + '; nothing was written')
    input_shape = _interpreter(model, xnnpack=False).get_input_details()[0]['shape']
    misfit = sample_misfit(sample_inputs, input_shape)
    if misfit:  # The verifier's own data, not the model, is wrong: say so, not "LiteRT fails".
        raise VerificationError(f'cannot verify the converted model: {misfit}; pass '
                                'representative data of the model\'s input shape; nothing was '
                                'written')
    results = []
    for xnnpack in (True, False):
        try:
            results.append(run_model(_interpreter(model, xnnpack), sample_inputs))
        except (ValueError, RuntimeError) as e:
            where = 'with the XNNPACK delegate' if xnnpack else 'without delegates'
            raise VerificationError(f'the converted model does not run in LiteRT {where} '
                                    f'({str(e).splitlines()[0][:200]}); nothing was written') \
                from None
    expected = np.asarray(reference(sample_inputs), np.float32).reshape(results[0].shape)
    spread = float(expected.max() - expected.min()) if expected.size else 0.0
    diff = float(np.abs(results[0] - expected).mean())
    interpreter = _interpreter(model, xnnpack=False)
    scale = float(interpreter.get_output_details()[0]['quantization'][0] or 0.0)
    if diff > MAX_MEAN_DIFF_SHARE * spread + 2 * scale:
        raise VerificationError(f'the converted model disagrees with its TF graph on sample '
                                f'inputs (mean |diff| {diff:.4f}, output range {spread:.4f}); '
                                'its quantization ranges do not fit the data; nothing was '
                                'written')
    return diff


def missing_ranges_message(layers: Sequence[str], graph_def=None,
                           fake_quantized: bool = True) -> str:
    """The one-line error for layers without fake-quant ranges.

    Args:
      layers: the layers without ranges (`missing_ranges`).
      graph_def: the graph, to recognise a quantization-aware *training* graph: its batch-norm
        folding (``correction_mult``) keeps the unfolded convolutions for the batch statistics,
        and only the graph that ``create_eval_graph`` rewrote converts.
      fake_quantized: False for a graph without any fake quant: data alone quantizes it.
    """
    layers = list(dict.fromkeys(layers))  # Two convolutions of one residual Add: one name.
    listing = ', '.join(layers[:6]) + (f' and {len(layers) - 6} more' if len(layers) > 6 else '')
    verb = 'has' if len(layers) == 1 else 'have'
    if graph_def is not None and any(n.name.endswith('/correction_mult')
                                     for n in graph_def.node):
        return (f'{listing} {verb} no fake-quant ranges because this is a quantization-aware '
                'training graph (batch norm folded on batch statistics): export the inference '
                'graph rewritten with create_eval_graph, restored from the same checkpoint')
    if graph_def is not None and fake_quantized:
        read = {op_name(i) for n in graph_def.node for i in n.input}
        names = {n.name for n in graph_def.node}
        outputs = [layer for layer in layers
                   if layer.rsplit(' (', 1)[0] in names - read]
        if outputs and len(outputs) == len(layers):
            # A QAT graph frozen at the tensor before its fake quant (the user's own
            # convert_variables_to_constants of the logits): the rewrite was there.
            return (f'{listing} {verb} no fake-quant ranges because the graph was frozen at '
                    f'{"that output" if len(layers) == 1 else "those outputs"}, before '
                    'the fake quant that create_training_graph put after it; freeze the graph '
                    'with the fake quant as output (<scope>/act_quant/FakeQuantWithMinMaxVars), '
                    'export the checkpoint with its .meta, or pass --calibrate --data-dir DIR')
    if not fake_quantized:  # Post-training quantization needs only the data.
        return (f'{listing} {verb} no fake-quant ranges (the graph has none): pass --data-dir '
                'DIR for post-training quantization from its images, or rewrite the graph '
                'with create_training_graph before training')
    return (f'{listing} {verb} no fake-quant ranges: rewrite the graph with '
            'create_training_graph before training, or pass --calibrate --data-dir DIR for '
            'post-training quantization of those layers')
