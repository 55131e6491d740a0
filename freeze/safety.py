"""Refusing untrusted frozen graphs that could touch files or run code.

A ``GraphDef`` from elsewhere is a program: ops such as ``ReadFile``, ``WriteFile``, ``PyFunc``,
``Save``/``Restore``, ``MatchingFiles`` or ``ImmutableConst`` read or write files or call Python
when the graph runs (and some during conversion). Before ``export``, ``eval`` or ``inspect``
handle a ``.pb``, every op, including those inside functions of the graph's library, must be on
an allow-list of pure math and neural-network ops. ``--allow-unsafe-ops`` lifts the check for
graphs the user trusts.
"""

import collections
from typing import Dict, List

from graph_models.errors import GraphModelsError

# Pure computations on tensors: no file system, no Python, no state, no randomness, no I/O.
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
})


class UnsafeGraphError(GraphModelsError):
    """A graph has ops outside the allow-list."""


def unsafe_ops(graph_def) -> Dict[str, List[str]]:
    """Op type -> node names of every op (functions included) outside `SAFE_OPS`."""
    found = collections.defaultdict(list)
    for node in graph_def.node:
        if node.op not in SAFE_OPS:
            found[node.op].append(node.name)
    for function in graph_def.library.function:
        for node in function.node_def:
            if node.op not in SAFE_OPS:
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
