"""Fuzz targets shared by the property tests and the long fuzz run (tests/fuzz_parsers.py).

Each target takes raw bytes and must either succeed or raise the project's own error type;
any other exception is a bug.
"""

import gzip
import os
import tempfile

import numpy as np

from freeze.errors import FreezeError
from freeze.freeze_graph import read_graph_def
from graph_models import data as data_lib
from graph_models.errors import GraphModelsError
from graph_models.litert.model_file import read_tflite
from graph_models.litert.model_file import edgetpu_blockers
from graph_models.litert.inspect import format_info, inspect_file


def _in_file(content: bytes, suffix: str, reader):
    fd, path = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(content)
        return reader(path)
    finally:
        os.unlink(path)


def idx_bytes(content: bytes):
    try:
        array = data_lib.parse_idx(content, 'fuzz')
    except GraphModelsError:
        return None
    assert array.dtype == np.uint8
    return array


def idx_file(content: bytes):
    try:
        return _in_file(content, '.gz', data_lib.read_idx)
    except GraphModelsError:
        return None


def npz_file(content: bytes):
    try:
        return _in_file(content, '.npz', lambda p: data_lib.load_npz(p))
    except GraphModelsError:
        return None


def tflite_file(content: bytes):
    try:
        model = _in_file(content, '.tflite', read_tflite)
    except GraphModelsError:
        return None
    assert model[4:8] == b'TFL3'
    return model


def tflite_inspect(content: bytes):
    """The real FlatBuffer reader behind ``graph-models inspect`` (and its report)."""
    try:
        info = _in_file(content, '.tflite', inspect_file)
    except GraphModelsError:
        return None
    format_info(info, 'fuzz.tflite')
    edgetpu_blockers(info)
    return info


def graph_def_file(content: bytes):
    try:
        return _in_file(content, '.pb', read_graph_def)
    except FreezeError:  # The freeze toolkit's own error type.
        return None


def valid_idx(images: int = 3) -> bytes:
    array = np.arange(images * 28 * 28, dtype=np.uint8).reshape(images, 28, 28)
    return bytes([0, 0, 8, 3]) + np.asarray(array.shape, '>u4').tobytes() + array.tobytes()


def valid_npz() -> bytes:
    import io
    buffer = io.BytesIO()
    images = np.zeros((2, 28, 28), np.uint8)
    np.savez(buffer, x_train=images, y_train=np.array([1, 2]), x_test=images,
             y_test=np.array([3, 4]))
    return buffer.getvalue()


def tiny_tflite() -> bytes:
    """A real 1-FC-layer float model (2.3 KB), converted once per process."""
    global _TINY_TFLITE
    if _TINY_TFLITE is None:
        from graph_models._tf import tf, v1
        graph = tf.Graph()
        with graph.as_default():
            inputs = v1.placeholder(tf.float32, [1, 4], name='Input')
            weights = tf.constant(np.arange(12, dtype=np.float32).reshape(4, 3) / 10)
            tf.nn.softmax(tf.matmul(inputs, weights) + 0.5, name='Output')
            with v1.Session(graph=graph) as session:
                converter = v1.lite.TFLiteConverter.from_session(
                    session, [inputs], [graph.get_tensor_by_name('Output:0')])
                _TINY_TFLITE = converter.convert()
    return _TINY_TFLITE


_TINY_TFLITE = None

SEEDS = {'idx': valid_idx(), 'idx_gz': gzip.compress(valid_idx(), mtime=0), 'npz': valid_npz(),
         'tflite': b'\x1c\x00\x00\x00TFL3' + bytes(64)}
