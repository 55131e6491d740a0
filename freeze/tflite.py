"""TensorFlow Lite export through the TFLiteConverter v1 path.

All three legacy entry points are reachable: `convert_session`
(``TFLiteConverter.from_session``), `convert_frozen_graph` (``.from_frozen_graph``) and
`toco_convert` (``tf.compat.v1.lite.toco_convert``, routed through the MLIR converter in TF 2.21).

Modes:

``float``
    float32 model. From a checkpoint it is built from the *float* inference graph (for a QAT
    checkpoint too: its model variables), so no fake-quant op makes the interpreter dequantize
    weights at every call.
``dynamic``
    float32 I/O, int8 weights (``optimizations=[Optimize.DEFAULT]``, no representative data).
``int8`` / ``uint8``
    fully integer, input and output included. From a quantization-aware checkpoint: the eval
    graph's fake-quant ranges with ``inference_type`` and ``quantized_input_stats``. From a float
    checkpoint (``int8``): post-training quantization with a representative dataset drawn from
    the training data.

Input statistics follow the converter's convention ``real = (q - mean) / std``. ``Input`` holds
pixels in [0, 1], so uint8 uses (0, 255) and int8 uses (-128, 255).
"""

from typing import Callable, Dict, Iterable, Optional, Sequence, Tuple

import numpy as np

from freeze._tf import tf, v1
from freeze.errors import ExportError, UsageError as ConfigError

MODES = ('float', 'dynamic', 'int8', 'uint8')
INPUT_RANGE = (0.0, 1.0)
REPRESENTATIVE_EXAMPLES = 200


RepresentativeData = Callable[[], Iterable[Sequence[np.ndarray]]]


def input_stats(dtype: str, input_range: Tuple[float, float] = INPUT_RANGE
                ) -> Tuple[float, float]:
    """``(mean, std)`` mapping integers onto ``input_range`` (``real = (q - mean) / std``).

    Args:
      dtype: ``int8`` or ``uint8``.
      input_range: the real range of the input.

    Returns:
      The converter's ``quantized_input_stats`` entry.
    """
    low, high = input_range
    std = 255.0 / (high - low)
    q_min = -128.0 if dtype == 'int8' else 0.0
    return q_min - low * std, std


def _tf_dtype(mode: str):
    return {'int8': tf.int8, 'uint8': tf.uint8}[mode]


def configure(converter, mode: str, *, fake_quantized: bool,
              representative_data: Optional[RepresentativeData] = None,
              input_names: Sequence[str] = ('Input',),
              input_range: Tuple[float, float] = INPUT_RANGE) -> None:
    """Sets a v1 converter up for a mode.

    Args:
      converter: a ``tf.compat.v1.lite.TFLiteConverter``.
      mode: one of `MODES`.
      fake_quantized: whether the graph carries fake-quant ranges (a QAT eval graph).
      representative_data: needed for ``int8``/``uint8`` of a graph without fake quantization.
      input_names: the input arrays, for ``quantized_input_stats``.
      input_range: real range of the inputs.

    Raises:
      ConfigError: on an unknown mode or a missing representative dataset.
    """
    if mode not in MODES:
        raise ConfigError(f'unknown export mode {mode!r}; choose one of {", ".join(MODES)}')
    if mode == 'float':
        return
    if mode == 'dynamic':
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        return
    if fake_quantized:
        converter.inference_type = _tf_dtype(mode)
        converter.quantized_input_stats = {name: input_stats(mode, input_range)
                                           for name in input_names}
        return
    if representative_data is None:
        raise ConfigError(f'{mode} export of a float graph is post-training quantization and '
                          'needs representative data (a dataset)')
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_data
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = _tf_dtype(mode)
    converter.inference_output_type = _tf_dtype(mode)


def _convert(converter) -> bytes:
    try:
        return converter.convert()
    except Exception as e:  # The converter raises ConverterError, ValueError, RuntimeError...
        lines = [line.strip() for line in str(e).splitlines() if 'error' in line.lower()]
        raise ExportError(f'the TFLite converter failed: {(lines or [str(e)])[0][:500]}') \
            from None


def convert_session(session: v1.Session, input_tensors, output_tensors, mode: str = 'float',
                    **kwargs) -> bytes:
    """``TFLiteConverter.from_session``: converts a live session's graph.

    Args:
      session: the Session (variables are frozen by the converter).
      input_tensors: list of input tensors.
      output_tensors: list of output tensors.
      mode: one of `MODES`.
      **kwargs: `configure` options (``fake_quantized``, ``representative_data``, ...).

    Returns:
      The ``.tflite`` flatbuffer.
    """
    converter = v1.lite.TFLiteConverter.from_session(session, input_tensors, output_tensors)
    kwargs.setdefault('fake_quantized', _has_fake_quant(session.graph.as_graph_def()))
    configure(converter, mode, input_names=[t.op.name for t in input_tensors], **kwargs)
    return _convert(converter)


def convert_frozen_graph(path: str, input_arrays: Sequence[str], output_arrays: Sequence[str],
                         input_shapes: Optional[Dict[str, Sequence[int]]] = None,
                         mode: str = 'float', **kwargs) -> bytes:
    """``TFLiteConverter.from_frozen_graph``: converts a frozen ``.pb`` file.

    Args:
      path: the frozen GraphDef file.
      input_arrays: input op names.
      output_arrays: output op names.
      input_shapes: input name -> static shape (fixes a ``None`` batch dimension).
      mode: one of `MODES`.
      **kwargs: `configure` options.

    Returns:
      The ``.tflite`` flatbuffer.
    """
    try:
        converter = v1.lite.TFLiteConverter.from_frozen_graph(
            path, list(input_arrays), list(output_arrays),
            input_shapes={k: list(v) for k, v in (input_shapes or {}).items()} or None)
    except (ValueError, OSError, tf.errors.OpError) as e:
        raise ExportError(f'cannot load {path} for conversion: {str(e).splitlines()[0]}') \
            from None
    if 'fake_quantized' not in kwargs:
        graph_def = v1.GraphDef()
        with open(path, 'rb') as f:
            graph_def.ParseFromString(f.read())
        kwargs['fake_quantized'] = _has_fake_quant(graph_def)
    configure(converter, mode, input_names=list(input_arrays), **kwargs)
    return _convert(converter)


def convert_graph_def(graph_def, input_arrays: Sequence[str], output_arrays: Sequence[str],
                      mode: str = 'float', **kwargs) -> bytes:
    """Converts an in-memory frozen ``GraphDef`` (``from_session`` on the imported graph).

    Args:
      graph_def: the frozen GraphDef, with static input shapes.
      input_arrays: input op names.
      output_arrays: output op names.
      mode: one of `MODES`.
      **kwargs: `configure` options.

    Returns:
      The ``.tflite`` flatbuffer.
    """
    graph = tf.Graph()
    with graph.as_default():
        v1.import_graph_def(graph_def, name='')
    inputs = [graph.get_tensor_by_name(n + ':0') for n in input_arrays]
    outputs = [graph.get_tensor_by_name(n + ':0') for n in output_arrays]
    with v1.Session(graph=graph) as session:
        return convert_session(session, inputs, outputs, mode, **kwargs)


def toco_convert(graph_def, input_tensors, output_tensors, mode: str = 'float') -> bytes:
    """``tf.compat.v1.lite.toco_convert``, the legacy call of ML Kit-era scripts.

    Supports ``float`` and, for fake-quantized graphs, ``int8``/``uint8`` (toco has no
    representative-dataset path).

    Args:
      graph_def: a frozen GraphDef.
      input_tensors: input tensors of the graph the GraphDef was taken from (names, shapes
        and dtypes are read from them).
      output_tensors: output tensors.
      mode: ``float``, ``int8`` or ``uint8``.

    Returns:
      The ``.tflite`` flatbuffer.
    """
    if mode not in ('float', 'int8', 'uint8'):
        raise ConfigError(f'toco_convert supports float, int8 and uint8, not {mode!r}')
    kwargs = {}
    if mode != 'float':
        if not _has_fake_quant(graph_def):
            raise ConfigError('toco_convert can only make integer models of fake-quantized '
                              '(QAT) graphs')
        kwargs = dict(inference_type=_tf_dtype(mode),
                      quantized_input_stats=[input_stats(mode)] * len(input_tensors))
    try:
        return v1.lite.toco_convert(graph_def, list(input_tensors), list(output_tensors),
                                    **kwargs)
    except Exception as e:  # pylint: disable=broad-except
        raise ExportError(f'toco_convert failed: {str(e).splitlines()[0][:500]}') from None


def has_fake_quant(graph_def) -> bool:
    """Whether a graph carries fake-quantization ranges (a QAT eval graph)."""
    return _has_fake_quant(graph_def)


def _has_fake_quant(graph_def) -> bool:
    return any(node.op.startswith('FakeQuantWithMinMax') for node in graph_def.node)


def representative_from_images(images: np.ndarray, count: int = REPRESENTATIVE_EXAMPLES,
                               seed: int = 0) -> RepresentativeData:
    """A representative dataset of ``count`` single examples drawn from float ``images``."""
    rng = np.random.default_rng(seed)
    index = rng.choice(len(images), size=min(count, len(images)), replace=False)

    def generator():
        for i in index:
            yield [images[i:i + 1]]

    return generator
