"""``tf.contrib.lite`` of TF 1.x programs, converting through the ``freeze`` toolkit.

``toco_convert(graph_def, inputs, outputs, inference_type=..., quantized_input_stats=...)`` and
``TFLiteConverter`` / ``TocoConverter`` (``from_session``, ``from_frozen_graph``,
``from_keras_model_file``, the attributes
``inference_type``, ``quantized_input_stats``, ``post_training_quantize``, ``optimizations``,
``representative_dataset``; ``convert()``) pick a mode of `freeze.tflite` (float, dynamic, int8,
uint8) and call its converters. Integer models are verified like ``graph-models export`` does
(`freeze.verify.verify_integer_model`: integer compute only, weights with zero point 0, runs in
LiteRT, agrees with the frozen graph on sample inputs in the real input range the
``quantized_input_stats`` define); a model that fails raises instead of being returned.
"""

import contextlib
import functools
import logging
import os
import sys
import tempfile
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from freeze import export, tflite, verify
from freeze._tf import tf
from freeze.freeze_graph import freeze_session

FLOAT = tf.float32
QUANTIZED_UINT8 = tf.uint8
INT8 = tf.int8

constants = type('constants', (), {'FLOAT': FLOAT, 'QUANTIZED_UINT8': QUANTIZED_UINT8,
                                   'INT8': INT8, 'TFLITE': 'TFLITE',
                                   'GRAPHVIZ_DOT': 'GRAPHVIZ_DOT'})
Optimize = tf.lite.Optimize
OpsSet = tf.lite.OpsSet
Interpreter = tf.lite.Interpreter

_SAMPLES = 64


def _mode(inference_type, post_training: bool, representative: bool) -> str:
    dtype = tf.as_dtype(inference_type) if inference_type is not None else tf.float32
    if dtype == tf.uint8:
        return 'uint8'
    if dtype == tf.int8:
        return 'int8'
    if representative:
        return 'int8'
    return 'dynamic' if post_training else 'float'


def _input_range(mode: str, stats: Optional[Tuple[float, float]]) -> Tuple[float, float]:
    """The real input range ``quantized_input_stats`` ``(mean, std)`` define for the mode."""
    if not stats:
        return tflite.INPUT_RANGE
    mean, std = stats
    q_min, q_max = (-128.0, 127.0) if mode == 'int8' else (0.0, 255.0)
    return (q_min - mean) / std, (q_max - mean) / std


def _verified(model: bytes, mode: str, graph_def, input_name: str, output_name: str,
              input_shape: Sequence[int], input_range: Tuple[float, float]) -> bytes:
    if mode not in ('int8', 'uint8'):
        return model
    rng = np.random.default_rng(0)
    shape = [d or 1 for d in input_shape[1:]]
    samples = rng.uniform(*input_range, size=[_SAMPLES] + shape).astype(np.float32)
    verify.verify_integer_model(
        model, samples,
        lambda x: export.run_graph(graph_def, input_name, output_name, x))
    return model


@contextlib.contextmanager
def _quiet():
    """Keeps the converter's and LiteRT's chatter out of the program's stderr.

    TF 1.15's ``convert()`` printed nothing at the default log level; the MLIR converter and
    the verification log INFO lines (absl), deprecation warnings of the TF internals it calls,
    and C++ lines on file descriptor 2 ("fully_quantize: 0", "Created TensorFlow Lite XNNPACK
    delegate", grappler's "Init node ... doesn't exist"). TensorFlow's and absl's loggers are
    raised to ERROR meanwhile, and what reaches fd 2 is written back without the lines
    `graph_models.system.stderr_filter` knows as chatter.
    """
    from absl import logging as absl_logging
    from graph_models.system import stderr_filter
    tf_logger, absl_level = logging.getLogger('tensorflow'), absl_logging.get_verbosity()
    tf_level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)
    absl_logging.set_verbosity(absl_logging.ERROR)
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # No fd 2 (a closed stderr): nothing to keep clean.
        try:
            yield
        finally:
            tf_logger.setLevel(tf_level)
            absl_logging.set_verbosity(absl_level)
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tf_logger.setLevel(tf_level)
            absl_logging.set_verbosity(absl_level)
            captured.seek(0)
            kept = [line for line in captured.read().splitlines(keepends=True)
                    if not stderr_filter.is_noise(line.rstrip(b'\n'))]
            if kept:
                os.write(2, b''.join(kept))


def _quietly(function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with _quiet():
            return function(*args, **kwargs)
    return wrapper


def _op(tensor) -> str:
    return tensor.op.name


@_quietly
def toco_convert(input_data, input_tensors, output_tensors, *args, **kwargs) -> bytes:
    """TF 1.x's ``tf.contrib.lite.toco_convert``: a frozen GraphDef -> ``.tflite`` bytes.

    Args:
      input_data: the frozen GraphDef.
      input_tensors: input tensors of the graph it was frozen from.
      output_tensors: output tensors.
      *args: TF 1.x's positional options (``inference_type``, ...) are not supported.
      **kwargs: ``inference_type`` (``tf.float32``, ``tf.uint8``, ``tf.int8``) and
        ``quantized_input_stats`` (a list of ``(mean, std)``); others are ignored like the
        MLIR converter ignores them.

    Returns:
      The flatbuffer.
    """
    if args:
        raise TypeError('toco_convert: pass inference_type and quantized_input_stats as '
                        'keywords')
    mode = _mode(kwargs.get('inference_type'), False, False)
    if mode == 'float':
        return tflite.toco_convert(input_data, input_tensors, output_tensors, 'float')
    stats = (kwargs.get('quantized_input_stats') or [None])[0]
    input_range = _input_range(mode, stats)
    inputs, outputs = [_op(t) for t in input_tensors], [_op(t) for t in output_tensors]
    model = tflite.convert_graph_def(input_data, inputs, outputs, mode, fake_quantized=True,
                                     input_range=input_range)
    return _verified(model, mode, input_data, inputs[0], outputs[0],
                     input_tensors[0].shape.as_list(), input_range)


class TFLiteConverter:
    """TF 1.x's ``tf.contrib.lite.TFLiteConverter``; ``convert()`` goes through `freeze.tflite`.

    Attributes:
      inference_type: ``tf.float32`` (float), ``tf.uint8`` / ``tf.int8`` (fully integer from
        fake-quant ranges, or from ``representative_dataset``).
      quantized_input_stats: input name -> ``(mean, std)``.
      post_training_quantize: int8 weights, float compute (``dynamic``).
      optimizations: ``[Optimize.DEFAULT]`` is ``post_training_quantize``.
      representative_dataset: a generator of input lists: post-training integer quantization.
    """

    def __init__(self, graph_def, input_names: Sequence[str], output_names: Sequence[str],
                 input_shapes: Dict[str, Sequence[int]], path: Optional[str] = None,
                 session=None, input_tensors=None, output_tensors=None):
        self._graph_def = graph_def
        self._input_names = list(input_names)
        self._output_names = list(output_names)
        self._input_shapes = input_shapes
        self._path = path
        self._session = session
        self._tensors = (input_tensors, output_tensors)
        self.inference_type = tf.float32
        self.inference_input_type = None
        self.inference_output_type = None
        self.quantized_input_stats = None
        self.post_training_quantize = False
        self.optimizations = []
        self.representative_dataset = None
        self.default_ranges_stats = None
        self.output_format = 'TFLITE'
        self.allow_custom_ops = False
        self.target_spec = type('TargetSpec', (), {'supported_ops': None})()

    @classmethod
    def from_session(cls, sess, input_tensors, output_tensors) -> 'TFLiteConverter':
        """Converter of a live session's graph (its variables frozen at ``convert()``)."""
        return cls(None, [_op(t) for t in input_tensors], [_op(t) for t in output_tensors],
                   {_op(t): t.shape.as_list() for t in input_tensors}, session=sess,
                   input_tensors=list(input_tensors), output_tensors=list(output_tensors))

    @classmethod
    def from_frozen_graph(cls, graph_def_file, input_arrays, output_arrays,
                          input_shapes=None) -> 'TFLiteConverter':
        """Converter of a frozen ``.pb`` file."""
        from freeze.freeze_graph import read_graph_def
        graph_def = read_graph_def(graph_def_file)
        shapes = dict(input_shapes or {})
        for name in input_arrays:
            if name not in shapes:
                node = next((n for n in graph_def.node if n.name == name), None)
                dims = node.attr['shape'].shape.dim if node is not None else []
                shapes[name] = [d.size if d.size >= 0 else None for d in dims]
        return cls(graph_def, input_arrays, output_arrays, shapes, path=graph_def_file)

    @classmethod
    def from_keras_model_file(cls, model_file, input_arrays=None, input_shapes=None,
                              output_arrays=None, custom_objects=None) -> 'TFLiteConverter':
        """Converter of a Keras 2 ``.h5`` model, as TF 1.15 made it: a fresh Keras session
        (``clear_session``, inference learning phase) holding the loaded model."""
        from tf_keras.api._v1 import keras
        keras.backend.clear_session()
        keras.backend.set_learning_phase(False)
        model = keras.models.load_model(model_file, custom_objects)
        inputs, outputs = list(model.inputs), list(model.outputs)
        if input_arrays:
            inputs = [t for name in input_arrays for t in inputs if _op(t) == name]
        if output_arrays:
            outputs = [t for name in output_arrays for t in outputs if _op(t) == name]
        converter = cls.from_session(keras.backend.get_session(), inputs, outputs)
        converter._input_shapes.update(input_shapes or {})  # pylint: disable=protected-access
        return converter

    @classmethod
    def from_saved_model(cls, saved_model_dir, *args, **kwargs):
        """Not provided: raises `TF1APIError` naming ``graph-models export``."""
        del args, kwargs
        from graph_models.tf1.module import TF1APIError
        raise TF1APIError('tf.contrib.lite.TFLiteConverter.from_saved_model',
                          f'run graph-models export {saved_model_dir} (--quantize ...) on the '
                          'SavedModel, or freeze the graph and use from_frozen_graph',
                          'is not provided by graph-models run')

    def _representative(self):
        data = self.representative_dataset
        return getattr(data, 'input_gen', data)  # TF 1.15 wrapped it in RepresentativeDataset.

    @_quietly
    def convert(self) -> bytes:
        """The ``.tflite`` flatbuffer (integer models verified; see the module docstring)."""
        representative = self._representative()
        post_training = bool(self.post_training_quantize or self.optimizations)
        mode = _mode(self.inference_type, post_training, representative is not None)
        if representative is not None and mode == 'uint8':
            mode = 'int8'  # The MLIR converter quantizes post-training to int8 only.
        stats = None
        if self.quantized_input_stats:
            stats = self.quantized_input_stats.get(self._input_names[0])
        input_range = _input_range(mode, stats)
        options = dict(input_range=input_range)
        if mode in ('int8', 'uint8'):
            options['representative_data'] = representative
        if self._session is not None:
            inputs, outputs = self._tensors
            model = tflite.convert_session(self._session, inputs, outputs, mode, **options)
            graph_def = freeze_session(self._session, output_names=self._output_names)
        else:
            model = tflite.convert_frozen_graph(self._path, self._input_names,
                                                self._output_names,
                                                {k: [d or 1 for d in v] for k, v in
                                                 self._input_shapes.items()}, mode, **options)
            graph_def = self._graph_def
        shape = self._input_shapes[self._input_names[0]]
        return _verified(model, mode, graph_def, self._input_names[0], self._output_names[0],
                         shape, input_range)


TocoConverter = TFLiteConverter
