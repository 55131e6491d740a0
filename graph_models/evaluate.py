"""Evaluating models: ``.tflite`` with the LiteRT interpreter, frozen ``.pb``, checkpoints.

A ``.tflite`` runs in ``ai_edge_litert.interpreter.Interpreter`` (``tf.lite.Interpreter`` is
deprecated in TF 2.21). Integer models get their input quantized and their output dequantized
with the model's own scale and zero point, so every model is scored on the same float images.
For a ``.tflite`` exported from a checkpoint (its ``.json`` export record names it), the TF graph
it was converted from is run on the same images to measure top-1 agreement and the mean absolute
difference of the probabilities.
"""

import dataclasses
import os
import statistics
import time
from typing import Dict, Optional

import numpy as np

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


class LiteModel:
    """A ``.tflite`` model in the LiteRT interpreter, fed float images.

    Args:
      model: the FlatBuffer bytes.
      num_threads: interpreter threads (1 for latency figures comparable across machines).
    """

    def __init__(self, model: bytes, num_threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter
        self._model = model  # The interpreter reads this buffer; keep it alive with us.
        try:
            self.interpreter = Interpreter(model_content=model, num_threads=num_threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelFileError(f'LiteRT cannot load the model: {str(e).splitlines()[0]}') \
                from None
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.batch_size = int(self.input['shape'][0])

    def _quantize(self, images: np.ndarray) -> np.ndarray:
        dtype = self.input['dtype']
        if dtype == np.float32:
            return images.astype(np.float32)
        scale, zero_point = self.input['quantization']
        info = np.iinfo(dtype)
        q = np.round(images / scale + zero_point)
        return np.clip(q, info.min, info.max).astype(dtype)

    def _dequantize(self, values: np.ndarray) -> np.ndarray:
        if self.output['dtype'] == np.float32:
            return values
        scale, zero_point = self.output['quantization']
        return (values.astype(np.float32) - zero_point) * scale

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Runs float ``images [N, ...]`` through the model; returns float outputs ``[N, C]``.

        Images are reshaped to the model's input shape and fed in batches of the model's static
        batch size (the last batch padded).
        """
        shape = tuple(int(d) for d in self.input['shape'][1:])
        images = images.reshape((len(images),) + shape)
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = images[start:start + self.batch_size]
            n = len(batch)
            if n < self.batch_size:
                batch = np.concatenate([batch, np.zeros((self.batch_size - n,) + shape,
                                                        images.dtype)])
            self.interpreter.set_tensor(self.input['index'], self._quantize(batch))
            self.interpreter.invoke()
            out.append(self._dequantize(self.interpreter.get_tensor(self.output['index']))[:n])
        return np.concatenate(out)

    def latency(self, image: np.ndarray, iterations: int = 200, warmup: int = 20) -> float:
        """Median seconds of set input -> ``invoke()`` -> get output, on one (batch) input.

        The same span as a TF Session's ``run`` with a feed and a fetch, so latencies of the two
        runtimes compare (the input is quantized beforehand, as a caller holding 8-bit images
        would).
        """
        data = self._quantize(image.reshape(tuple(self.input['shape'])))
        interpreter, in_index, out_index = (self.interpreter, self.input['index'],
                                            self.output['index'])
        for _ in range(warmup):
            interpreter.set_tensor(in_index, data)
            interpreter.invoke()
            interpreter.get_tensor(out_index)
        times = []
        for _ in range(iterations):
            began = time.perf_counter()
            interpreter.set_tensor(in_index, data)
            interpreter.invoke()
            interpreter.get_tensor(out_index)
            times.append(time.perf_counter() - began)
        return statistics.median(times)


def frozen_graph_probabilities(graph_def, images: np.ndarray, input_name: str = 'Input',
                               output_name: str = 'Output') -> np.ndarray:
    """Runs a frozen GraphDef on float ``images`` (batched to its static batch size)."""
    from graph_models._tf import tf, v1
    graph = tf.Graph()
    with graph.as_default():
        v1.import_graph_def(graph_def, name='')
    inputs = graph.get_tensor_by_name(input_name + ':0')
    outputs = graph.get_tensor_by_name(output_name + ':0')
    static = inputs.shape.as_list()
    batch = static[0] or 1000
    shape = tuple(static[1:])
    images = images.reshape((len(images),) + shape)
    out = []
    with v1.Session(graph=graph) as session:
        for start in range(0, len(images), batch):
            chunk = images[start:start + batch]
            n = len(chunk)
            if static[0] and n < batch:
                chunk = np.concatenate([chunk, np.zeros((batch - n,) + shape, np.float32)])
            out.append(session.run(outputs, {inputs: chunk})[:n])
    return np.concatenate(out)


@dataclasses.dataclass
class Evaluation:
    """Scores of one model on a test set.

    Attributes:
      accuracy: top-1 accuracy.
      examples: number of test examples.
      agreement: top-1 agreement with the reference TF graph (None without one).
      mean_abs_diff: mean absolute difference of the probabilities from the reference.
    """

    accuracy: float
    examples: int
    agreement: Optional[float] = None
    mean_abs_diff: Optional[float] = None

    def to_dict(self) -> Dict:
        return dataclasses.asdict(self)


def score(probabilities: np.ndarray, labels: np.ndarray,
          reference: Optional[np.ndarray] = None) -> Evaluation:
    """Accuracy of ``probabilities [N, C]``, and agreement with ``reference`` when given."""
    result = Evaluation(float((probabilities.argmax(1) == labels).mean()), len(labels))
    if reference is not None:
        result.agreement = float((probabilities.argmax(1) == reference.argmax(1)).mean())
        result.mean_abs_diff = float(np.abs(probabilities - reference).mean())
    return result


def reference_probabilities(record: Dict, images: np.ndarray) -> Optional[np.ndarray]:
    """Runs the TF graph a ``.tflite`` was exported from (per its export record)."""
    if record.get('source_kind') != 'checkpoint' or not os.path.isfile(
            record['source'] + '.index'):
        return None
    from freeze.freeze_graph import freeze_checkpoint
    frozen = freeze_checkpoint(record['source'], batch_size=record.get('batch_size', 1),
                               quantized=record.get('graph') == 'qat_eval')
    return frozen_graph_probabilities(frozen.graph_def, images)
