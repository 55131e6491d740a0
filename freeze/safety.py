"""Refusing untrusted frozen graphs that could touch files or run code.

A ``GraphDef`` from elsewhere is a program: ops such as ``ReadFile``, ``WriteFile``, ``PyFunc``,
``Save``/``Restore``, ``MatchingFiles`` or ``ImmutableConst`` read or write files or call Python
when the graph runs (and some during conversion). Before a graph from a ``.pb``, ``.pbtxt``,
``.meta`` or SavedModel is run or converted, every op, including those inside functions of the
graph's library, must be on an allow-list of pure math and neural-network ops: tensor in,
tensor out, whatever the op computes (atrous convolution's ``SpaceToBatchND``, ``InTopKV2``).
Left off on purpose: file and Python ops, ``Print``/``PrintV2`` (it can write to a file),
readers, queues, datasets, lookup tables and anything stateful. ``--allow-unsafe-ops`` lifts the
check, for any source kind, for graphs the user trusts.

A small file can still declare huge tensors (``Fill`` of 2^20 x 2^20 constant-folds for hours):
`check_graph_size` bounds every constant and every shape a graph declares, whatever its ops.
"""

import collections
from typing import Dict, List, Optional

import numpy as np

from freeze.errors import UnsafeGraphError

# At most this many elements in any tensor a graph declares (1 GB of float32).
MAX_ELEMENTS = 1 << 28
# Ops whose input 1 (Fill: 0) is a shape they create a tensor of.
_SHAPE_INPUT = {'Fill': 0, 'RandomUniform': 0, 'RandomStandardNormal': 0, 'TruncatedNormal': 0,
                'BroadcastTo': 1, 'Reshape': 1, 'Zeros': 0, 'Ones': 0, 'Empty': 0,
                'ResizeBilinear': 1, 'ResizeNearestNeighbor': 1, 'Tile': 1, 'MirrorPad': 1,
                'Pad': 1, 'PadV2': 1}

# Pure computations on tensors: no file system, no Python, no state, no I/O.
SAFE_OPS = frozenset({
    'Abs', 'Add', 'AddN', 'AddV2', 'All', 'Any', 'ArgMax', 'ArgMin', 'AvgPool', 'BatchMatMul',
    'BatchMatMulV2', 'BatchMatMulV3', 'BiasAdd', 'BroadcastTo', 'Cast', 'Ceil', 'ClipByValue',
    'Concat', 'ConcatV2', 'Const', 'Conv2D', 'Conv2DBackpropInput', 'Cumsum',
    'DepthToSpace', 'DepthwiseConv2dNative', 'Div', 'DivNoNan', 'Einsum', 'Elu', 'Equal', 'Erf',
    'Exp', 'ExpandDims', 'FakeQuantWithMinMaxArgs', 'FakeQuantWithMinMaxVars',
    'FakeQuantWithMinMaxVarsPerChannel', 'Fill', 'Floor', 'FloorDiv', 'FloorMod',
    'FusedBatchNorm', 'FusedBatchNormV2', 'FusedBatchNormV3', 'Gather', 'GatherNd', 'GatherV2',
    'Greater', 'GreaterEqual', 'Identity', 'IdentityN', 'L2Loss', 'LRN', 'LeakyRelu', 'Less',
    'LessEqual', 'Log', 'Log1p', 'LogSoftmax', 'LogicalAnd', 'LogicalNot', 'LogicalOr',
    'MatMul', 'Max', 'MaxPool', 'Maximum', 'Mean', 'Min', 'Minimum', 'MirrorPad', 'Mul',
    'Neg', 'NoOp', 'NotEqual', 'OneHot', 'OnesLike', 'Pack', 'Pad', 'PadV2', 'Placeholder',
    'PlaceholderWithDefault', 'Pow', 'PreventGradient', 'Prod', 'Range', 'Rank', 'RealDiv',
    'Reciprocal', 'Relu', 'Relu6', 'Reshape', 'ResizeBilinear', 'ResizeNearestNeighbor',
    'Round', 'Rsqrt', 'Select', 'SelectV2', 'Selu', 'Shape', 'ShapeN', 'Sigmoid', 'Sign',
    'Size', 'Slice', 'Snapshot', 'Softmax', 'Softplus', 'Softsign', 'SpaceToDepth', 'Split',
    'SplitV', 'Sqrt', 'Square', 'SquaredDifference', 'Squeeze', 'StopGradient', 'StridedSlice',
    'Sub', 'Sum', 'Tanh', 'Tile', 'TopKV2', 'Transpose', 'Unpack', 'Where', 'ZerosLike',
    # Atrous (dilated) convolutions of TF1 graphs, pooling and resizing variants, evaluation
    # metrics (the tutorials' in_top_k), quantization round trips: all pure tensor math.
    'SpaceToBatchND', 'BatchToSpaceND', 'SpaceToBatch', 'BatchToSpace', 'InTopK', 'InTopKV2',
    'MaxPoolV2', 'MaxPoolWithArgmax', 'AvgPool3D', 'MaxPool3D', 'Conv3D', 'ResizeBicubic',
    'ResizeArea', 'CropAndResize', 'ExtractImagePatches', 'Reverse', 'ReverseV2',
    'QuantizeAndDequantizeV2', 'QuantizeAndDequantizeV3', 'QuantizeAndDequantizeV4',
    'SoftmaxCrossEntropyWithLogits', 'SparseSoftmaxCrossEntropyWithLogits', 'Cumprod',
    'Expm1', 'Inv', 'IsFinite', 'IsInf', 'IsNan', 'LinSpace', 'MatrixBandPart', 'MatrixDiag',
    'MatrixDiagV2', 'MatrixDiagV3', 'Mod', 'TruncateDiv', 'TruncateMod', 'BroadcastArgs',
    'BroadcastGradientArgs', 'Sin', 'Cos', 'Tan', 'Asin', 'Acos', 'Atan', 'Atan2', 'Sinh',
    'Cosh', 'Asinh', 'Acosh', 'Atanh', 'Erfc', 'Xdivy', 'Xlogy', 'BiasAddV1', 'ScatterNd',
    'EnsureShape', 'CheckNumerics', 'NonMaxSuppressionV2', 'NonMaxSuppressionV3',
    'NonMaxSuppressionV4', 'NonMaxSuppressionV5',
    'Dilation2D', 'FusedResizeAndPadConv2D', 'FusedPadConv2D',
    # Training-time ops an inference graph is cleaned of (dropout randomness, v1 cond on
    # is_training): they touch no file; `freeze.sources` folds them away or names them.
    'RandomUniform', 'RandomStandardNormal', 'TruncatedNormal', 'Switch', 'Merge',
})


def _used_functions(graph_def) -> list:
    """The library functions the graph's nodes call, directly or through other functions.

    A ``.meta`` keeps the functions of everything the script built (a confusion matrix's
    ``Assert`` guard); pruned to the outputs, only those still called can run.
    """
    library = {f.signature.name: f for f in graph_def.library.function}
    used, stack = {}, [graph_def.node]
    while stack:
        for node in stack.pop():
            names = [node.op] + [a.func.name for a in node.attr.values() if a.func.name] + [
                f.name for a in node.attr.values() for f in a.list.func]
            for name in names:
                if name in library and name not in used:
                    used[name] = library[name]
                    stack.append(library[name].node_def)
    return list(used.values())


def unsafe_ops(graph_def) -> Dict[str, List[str]]:
    """Op type -> node names of every op (called functions included) outside `SAFE_OPS`."""
    found = collections.defaultdict(list)
    for node in graph_def.node:
        if node.op not in SAFE_OPS:
            found[node.op].append(node.name)
    for function in _used_functions(graph_def):
        for node in function.node_def:
            if node.op not in SAFE_OPS and node.op not in {
                    f.signature.name for f in graph_def.library.function}:
                found[node.op].append(f'{function.signature.name}/{node.name}')
    return dict(found)


def check_graph_safety(graph_def, source: str, allow_unsafe: bool = False) -> None:
    """Raises `UnsafeGraphError` naming the offending ops, unless ``allow_unsafe``.

    Args:
      graph_def: the graph to check (nothing of it is run).
      source: the file it came from, for the message.
      allow_unsafe: skip the check (``--allow-unsafe-ops``).
    """
    if allow_unsafe:
        return
    found = unsafe_ops(graph_def)
    if found:
        listing = ', '.join(f'{op} ({names[0]}' + (f' and {len(names) - 1} more' if len(names) > 1
                                                  else '') + ')'
                            for op, names in sorted(found.items()))
        raise UnsafeGraphError(f'refusing {source}: it has ops that are not pure math/NN ops '
                               f'and could read or write files or run code: {listing}; pass '
                               '--allow-unsafe-ops only if you trust this graph')


def _const_values(graph_def) -> Dict[str, np.ndarray]:
    """Small integer constants (candidate shapes), by node name."""
    from freeze._tf import tf
    values = {}
    for node in graph_def.node:
        if node.op != 'Const':
            continue
        proto = node.attr['value'].tensor
        dims = [d.size for d in proto.tensor_shape.dim]
        if proto.dtype in (tf.int32.as_datatype_enum, tf.int64.as_datatype_enum) and \
                len(dims) <= 1 and (not dims or 0 <= dims[0] <= 8):
            try:
                values[node.name] = tf.make_ndarray(proto)
            except (TypeError, ValueError):
                continue
    return values


def _elements(dims) -> Optional[int]:
    total = 1
    for d in dims:
        d = int(d)
        if d < 0:
            return None
        total *= d
    return total


def check_graph_size(graph_def, source: str, max_elements: int = MAX_ELEMENTS) -> None:
    """Refuses a graph that declares a constant or a shape with too many elements.

    Checks every ``Const`` (declared shape, not its payload), every placeholder's shape and the
    constant shape operand of ops that create tensors (``Fill``, ``BroadcastTo``, ``Tile``,
    ``Reshape``, random ops...), before anything is run or constant-folded.

    Args:
      graph_def: the graph (nothing of it is run).
      source: the file it came from, for the message.
      max_elements: the largest tensor allowed.

    Raises:
      UnsafeGraphError: naming the op and the size it declares.
    """
    from freeze.freeze_graph import op_name
    consts = _const_values(graph_def)
    nodes = list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]
    for node in nodes:
        declared = None
        if node.op == 'Const':
            declared = [d.size for d in node.attr['value'].tensor.tensor_shape.dim]
        elif node.op.startswith('Placeholder') and 'shape' in node.attr:
            declared = [d.size for d in node.attr['shape'].shape.dim]
        elif node.op in _SHAPE_INPUT and len(node.input) > _SHAPE_INPUT[node.op]:
            shape = consts.get(op_name(node.input[_SHAPE_INPUT[node.op]]))
            if shape is not None:
                declared = np.atleast_1d(shape).tolist()
                if node.op == 'Tile':  # Multiples: bound the growth factor.
                    declared = [abs(int(d)) for d in declared]
        if declared is None:
            continue
        count = _elements(declared)
        if count is not None and count > max_elements:
            raise UnsafeGraphError(
                f'refusing {source}: {node.name} ({node.op}) declares a tensor of shape '
                f'{list(map(int, declared))} ({count:,} elements, more than the limit of '
                f'{max_elements:,}); this is not a model this tool can convert')
