"""Reading a ``.tflite``: the file (`read_tflite`, `ModelFileError`), what is inside it, and
whether the Coral Edge TPU compiler can take it. The bottom of `graph_models.litert`: it
imports nothing else of the wing.

The model's FlatBuffer is read with LiteRT's own schema (``ai_edge_litert.schema_py_generated``),
not by running it. The Edge TPU check follows Coral's published model requirements:

- tensor parameters quantized to 8 bits (int8 or uint8; int32 is allowed for biases), int8
  weights with zero point 0 (TFLite's int8 spec);
- tensor sizes constant at compile time (no dynamic dimension, so batch 1 rather than None);
- data tensors of at most 3 dimensions larger than 1 (only the 3 innermost may exceed 1;
  constant convolution filters are exempt);
- only operations on the compiler's supported list. The compiler maps ops to the Edge TPU until
  the first unsupported one; it and everything after it run on the CPU.
"""

import collections
import dataclasses
import os
import struct
from typing import Dict, List

from graph_models.errors import GraphModelsError

TFLITE_IDENTIFIER = b'TFL3'


class ModelFileError(GraphModelsError):
    """A model file is missing or not what its name says."""


def read_tflite(path: str) -> bytes:
    """Reads a ``.tflite`` file, checking the FlatBuffer's ``TFL3`` identifier.

    Raises:
      ModelFileError: if the file is missing, too short, or not a TFLite FlatBuffer.
    """
    try:
        with open(path, 'rb') as f:
            content = f.read()
    except OSError as e:
        raise ModelFileError(f'cannot read {path}: {e.strerror}') from None
    if len(content) < 8 or content[4:8] != TFLITE_IDENTIFIER:
        raise ModelFileError(f'{path} is not a TensorFlow Lite model (no FlatBuffer with the '
                             f'{TFLITE_IDENTIFIER.decode()} identifier); export one with '
                             '"graph-models export"')
    return content


def is_tflite(path: str) -> bool:
    """Whether ``path`` is a regular file with the TFLite identifier (else: a graph source)."""
    try:
        if not os.path.isfile(path):
            return path.endswith('.tflite')
        with open(path, 'rb') as f:
            head = f.read(8)
    except OSError:
        return path.endswith('.tflite')
    return head[4:8] == TFLITE_IDENTIFIER or path.endswith('.tflite')


# Coral's "Supported operations" list (Edge TPU compiler), as TFLite builtin operator names.
EDGETPU_SUPPORTED_OPS = frozenset({
    'ADD', 'AVERAGE_POOL_2D', 'CONCATENATION', 'CONV_2D', 'DEPTHWISE_CONV_2D', 'EXPAND_DIMS',
    'FULLY_CONNECTED', 'L2_NORMALIZATION', 'LOGISTIC', 'LSTM', 'MAX_POOL_2D', 'MAXIMUM', 'MEAN',
    'MINIMUM', 'MUL', 'PACK', 'PAD', 'PRELU', 'QUANTIZE', 'REDUCE_MAX', 'REDUCE_MIN', 'RELU',
    'RELU6', 'RELU_N1_TO_1', 'RESHAPE', 'RESIZE_BILINEAR', 'RESIZE_NEAREST_NEIGHBOR', 'RSQRT',
    'SLICE', 'SOFTMAX', 'SPACE_TO_DEPTH', 'SPLIT', 'SQUARED_DIFFERENCE', 'SQUEEZE',
    'STRIDED_SLICE', 'SUB', 'SUM', 'TANH', 'TRANSPOSE', 'TRANSPOSE_CONV',
})
_EIGHT_BIT = {'INT8', 'UINT8'}


@dataclasses.dataclass
class TensorInfo:
    name: str
    shape: List[int]
    shape_signature: List[int]
    dtype: str
    scale: List[float]
    zero_point: List[int]
    is_constant: bool


@dataclasses.dataclass
class ModelInfo:
    """A ``.tflite``'s inputs, outputs, ops and tensors.

    Attributes:
      size_bytes: file size.
      inputs, outputs: the subgraph's input and output tensors.
      ops: operator names in execution order (first subgraph).
      tensors: every tensor of the first subgraph.
    """

    size_bytes: int
    inputs: List[TensorInfo]
    outputs: List[TensorInfo]
    ops: List[str]
    tensors: List[TensorInfo]

    def op_counts(self) -> Dict[str, int]:
        return dict(collections.Counter(self.ops))

    def dtype_counts(self) -> Dict[str, int]:
        return dict(collections.Counter(t.dtype for t in self.tensors))


def _names(enum_class) -> Dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith('_')}


class _Corrupt(Exception):
    """A FlatBuffer field points outside the buffer or holds an impossible value."""


def _count(length: int, model: bytes, what: str) -> int:
    """A vector length from the FlatBuffer, checked against the buffer's size.

    Every vector element takes at least one byte, so a length larger than the buffer is a lie
    (a mutated length of 2^31 would otherwise loop for hours).
    """
    if not 0 <= length <= len(model):
        raise _Corrupt(f'{what} count {length} does not fit in {len(model)} bytes')
    return length


def _text(raw) -> str:
    return (raw or b'').decode('utf-8', errors='backslashreplace')


def read_model_info(model: bytes, name: str = 'the model') -> ModelInfo:
    """Parses a TFLite FlatBuffer (already checked for the ``TFL3`` identifier).

    Args:
      model: the FlatBuffer bytes.
      name: what to call the model in error messages.

    Raises:
      ModelFileError: if the FlatBuffer is truncated or corrupt (offsets outside the buffer,
        impossible counts, no subgraph).
    """
    from graph_models.litert.model_file import ModelFileError
    try:
        return _read_model_info(model)
    except (_Corrupt, struct.error, IndexError, KeyError, TypeError, ValueError,
            AttributeError, OverflowError, UnicodeDecodeError) as e:
        reason = str(e).splitlines()[0] if isinstance(e, _Corrupt) else type(e).__name__
        raise ModelFileError(f'{name} is not a valid TensorFlow Lite model: its FlatBuffer is '
                             f'truncated or corrupt ({reason}); export it again') from None


def _read_model_info(model: bytes) -> ModelInfo:
    from ai_edge_litert import schema_py_generated as schema
    op_names = _names(schema.BuiltinOperator)
    type_names = _names(schema.TensorType)
    root = schema.Model.GetRootAs(model, 0)
    if _count(root.SubgraphsLength(), model, 'subgraph') == 0:
        raise _Corrupt('no subgraph')
    graph = root.Subgraphs(0)
    buffers_with_data = {i for i in range(_count(root.BuffersLength(), model, 'buffer'))
                         if root.Buffers(i).DataLength() > 0 or root.Buffers(i).Size() > 0}
    tensors = []
    for i in range(_count(graph.TensorsLength(), model, 'tensor')):
        t = graph.Tensors(i)
        q = t.Quantization()
        scale = ([float(x) for x in q.ScaleAsNumpy()]
                 if q and _count(q.ScaleLength(), model, 'scale') else [])
        zero = ([int(x) for x in q.ZeroPointAsNumpy()]
                if q and _count(q.ZeroPointLength(), model, 'zero point') else [])
        shape = [int(x) for x in t.ShapeAsNumpy()] if _count(t.ShapeLength(), model,
                                                             'dimension') else []
        signature = ([int(x) for x in t.ShapeSignatureAsNumpy()]
                     if _count(t.ShapeSignatureLength(), model, 'dimension') else shape)
        tensors.append(TensorInfo(_text(t.Name()), shape, signature,
                                  type_names.get(t.Type(), str(t.Type())), scale, zero,
                                  t.Buffer() in buffers_with_data))
    ops = []
    num_codes = _count(root.OperatorCodesLength(), model, 'operator code')
    for i in range(_count(graph.OperatorsLength(), model, 'operator')):
        index = graph.Operators(i).OpcodeIndex()
        if not 0 <= index < num_codes:
            raise _Corrupt(f'operator {i} uses operator code {index} of {num_codes}')
        code = root.OperatorCodes(index)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = op_names.get(builtin, str(builtin))
        if name == 'CUSTOM':
            name = 'CUSTOM:' + _text(code.CustomCode())
        ops.append(name)

    def tensor_list(indices, what):
        result = []
        for i in indices:
            if not 0 <= int(i) < len(tensors):
                raise _Corrupt(f'{what} tensor {int(i)} of {len(tensors)}')
            result.append(tensors[int(i)])
        return result

    inputs = tensor_list(graph.InputsAsNumpy() if _count(graph.InputsLength(), model, 'input')
                         else [], 'input')
    outputs = tensor_list(graph.OutputsAsNumpy() if _count(graph.OutputsLength(), model,
                                                           'output') else [], 'output')
    return ModelInfo(len(model), inputs, outputs, ops, tensors)


def edgetpu_blockers(info: ModelInfo) -> List[str]:
    """One line per reason the Edge TPU compiler would not map the whole model; [] if ready."""
    blockers = []
    for t in info.tensors:
        allowed = _EIGHT_BIT | ({'INT32'} if t.is_constant else set())
        if t.dtype not in allowed:
            blockers.append(f'tensor {t.name!r} is {t.dtype}, not 8-bit quantized')
    for t in info.tensors:
        if any(d < 0 for d in t.shape_signature):
            blockers.append(f'tensor {t.name!r} has a dynamic shape {t.shape_signature} '
                            '(export with a fixed --batch-size 1)')
        # Constant filters are exempt: every convolution has 4-D weights.
        if not t.is_constant and sum(d > 1 for d in t.shape) > 3:
            blockers.append(f'tensor {t.name!r} has shape {t.shape}: more than 3 dimensions '
                            'larger than 1')
    for t in info.tensors:
        if t.is_constant and t.dtype == 'INT8' and any(z != 0 for z in t.zero_point):
            blockers.append(f'int8 weights {t.name!r} have zero point {t.zero_point[0]}, the '
                            'int8 spec needs 0 (export int8 with symmetric weight ranges)')
    unsupported = [(i, op) for i, op in enumerate(info.ops) if op not in EDGETPU_SUPPORTED_OPS]
    for i, op in unsupported:
        blockers.append(f'op {i} {op} is not supported by the Edge TPU compiler')
    if unsupported:
        first = unsupported[0][0]
        blockers.append(f'the graph would be cut at op {first} ({unsupported[0][1]}): '
                        f'{first} of {len(info.ops)} ops on the Edge TPU, the rest on the CPU')
    return blockers


