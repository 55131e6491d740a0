"""Evaluating models: ``.tflite`` with the LiteRT interpreter, and any TF graph source.

A ``.tflite`` runs in ``ai_edge_litert.interpreter.Interpreter`` (``tf.lite.Interpreter`` is
deprecated in TF 2.21). Integer models get their input quantized and their output dequantized
with the model's own scale and zero point, so every model is scored on the same float images.
For a ``.tflite`` whose ``.json`` export record names its source, that TF graph is loaded again,
checked against the record's graph digest, and run on the same images to measure top-1
agreement and the mean absolute difference of the probabilities. Graph sources (our runs, TF1
checkpoints, SavedModels, ``.pb``/``.pbtxt``) are scored as frozen inference graphs
(`graph_models.export.load_model`); shapes always come from the model.
"""

import dataclasses
import json
import os
import statistics
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from graph_models import pictures
from graph_models.errors import ConfigError, GraphModelsError
from graph_models.fileio import atomic_write
from graph_models.litert.model_file import ModelFileError, is_tflite, read_tflite
from graph_models.pictures import report_pictures


class LiteModel:
    """A ``.tflite`` model in the LiteRT interpreter, fed float images.

    Args:
      model: the FlatBuffer bytes.
      num_threads: interpreter threads (1 for latency figures comparable across machines).
      name: what error messages call the model (its path).

    Raises:
      ModelFileError: if LiteRT cannot load the model, or it is no single-input classifier.
    """

    def __init__(self, model: bytes, num_threads: int = 1, *, name: str = 'the model'):
        from ai_edge_litert.interpreter import Interpreter
        self._model = model  # The interpreter reads this buffer; keep it alive with us.
        try:
            self.interpreter = Interpreter(model_content=model, num_threads=num_threads)
            self.interpreter.allocate_tensors()
            inputs = self.interpreter.get_input_details()
            outputs = self.interpreter.get_output_details()
        except (ValueError, RuntimeError, UnicodeDecodeError) as e:
            reason = (str(e).splitlines() or [type(e).__name__])[0]
            raise ModelFileError(f'LiteRT cannot load {name} ({reason}): the file is truncated '
                                 'or corrupt; export it again') from None
        if len(inputs) != 1 or len(outputs) < 1:
            raise ModelFileError(f'the model has {len(inputs)} inputs and {len(outputs)} '
                                 'outputs; only models with one image input and an output '
                                 'can be scored')
        self.input = inputs[0]
        self.output = outputs[0]
        shape = [int(d) for d in self.input['shape']]
        if len(shape) < 2 or min(shape) <= 0:
            raise ModelFileError(f'the model input has shape {shape}; expected [batch, ...] '
                                 'with static dimensions')
        if self.input['dtype'] not in (np.float32, np.int8, np.uint8):
            raise ModelFileError(f'the model input is {np.dtype(self.input["dtype"]).name}; '
                                 'expected float32, int8 or uint8 images')
        self.batch_size = shape[0]
        self.input_shape = shape

    def _invoke(self) -> None:
        try:
            self.interpreter.invoke()
        except (RuntimeError, ValueError) as e:
            raise ModelFileError(f'the model fails when run: {str(e).splitlines()[0][:300]}') \
                from None

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
        if int(np.prod(shape)) != int(np.prod(images.shape[1:])):
            raise ModelFileError(f'the model input takes examples of shape {list(shape)}, the '
                                 f'data has {list(images.shape[1:])}')
        images = images.reshape((len(images),) + shape)
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = images[start:start + self.batch_size]
            n = len(batch)
            if n < self.batch_size:
                batch = np.concatenate([batch, np.zeros((self.batch_size - n,) + shape,
                                                        images.dtype)])
            self.interpreter.set_tensor(self.input['index'], self._quantize(batch))
            self._invoke()
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
            self._invoke()  # A failing model gives our error here, before the timed loop.
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
    from freeze.export import run_graph
    return run_graph(graph_def, input_name, output_name, images)


@dataclasses.dataclass
class Evaluation:
    """Scores of one model on a test set.

    Attributes:
      accuracy: top-1 accuracy.
      examples: number of test examples.
      agreement: top-1 agreement with the reference TF graph (None without one).
      mean_abs_diff: mean absolute difference of the probabilities from the reference.
      reference: which TF graph the agreement is with (`reference_label`).
      scores_are_probabilities: whether the reference's outputs are probabilities (else
        logits: the line says "output diff").
    """

    accuracy: float
    examples: int
    agreement: Optional[float] = None
    mean_abs_diff: Optional[float] = None
    reference: str = ''
    scores_are_probabilities: bool = True

    def to_dict(self) -> Dict:
        return dataclasses.asdict(self)


def score(probabilities: np.ndarray, labels: np.ndarray,
          reference: Optional[np.ndarray] = None) -> Evaluation:
    """Accuracy of ``probabilities [N, C]``, and agreement with ``reference`` when given."""
    result = Evaluation(float((probabilities.argmax(1) == labels).mean()), len(labels))
    if reference is not None:
        result.agreement = float((probabilities.argmax(1) == reference.argmax(1)).mean())
        result.mean_abs_diff = float(np.abs(probabilities - reference).mean())
        # Logits (fully_connected_feed's softmax_linear/add) are no probabilities.
        result.scores_are_probabilities = bool(
            np.all(reference >= 0) and np.allclose(reference.sum(1), 1.0, atol=1e-3))
    return result


def reference_probabilities(record: Dict, images: np.ndarray) -> Optional[np.ndarray]:
    """Runs the TF graph a ``.tflite`` was exported from (per its export record), or None."""
    reference, _, _ = _reference(record, images)
    return reference


def reference_label(record: Dict, kind: str) -> str:
    """What the agreement of a ``.tflite`` is measured against, for the report line."""
    from graph_models.export import TRAINED
    if kind == TRAINED:
        return 'the graph as trained'
    if record.get('symmetrized_weights'):
        return ('the converted graph, weight ranges made symmetric; export again to compare '
                'with the graph as trained')
    return 'the converted graph'


def _reference(record: Dict, images: np.ndarray, allow_unsafe_ops: bool = False):
    """``(probabilities, why not, label)`` of the reference TF graph of an export record."""
    from graph_models.export import reference_graph, scale_to_range
    frozen, why = reference_graph(record, allow_unsafe_ops=allow_unsafe_ops)
    if frozen is None:
        return None, why, ''
    input_range = tuple(record.get('input_range') or (0.0, 1.0))
    return (frozen_graph_probabilities(frozen.graph_def, scale_to_range(images, input_range),
                                       frozen.inputs[0], frozen.outputs[0]), '',
            reference_label(record, frozen.options.get('reference', '')))


@dataclasses.dataclass
class EvalReport:
    """What ``eval`` found.

    Attributes:
      path: the model.
      kind: ``tflite`` or the graph source kind.
      dataset: the dataset name.
      result: the `Evaluation`.
      notes: further lines (agreement skipped, latency, Edge TPU readiness).
      ok: False when ``--edgetpu`` found blockers (exit status 1).
    """

    path: str
    kind: str
    dataset: str
    result: Evaluation
    notes: List[str]
    ok: bool = True

    def lines(self) -> List[str]:
        out = [f'{self.path}: accuracy {self.result.accuracy:.4f} on {self.result.examples} '
               f'{self.dataset} test examples']
        if self.result.agreement is not None:
            label = f' ({self.result.reference})' if self.result.reference else ''
            out.append(f'agreement with the TF graph: {self.result.agreement:.4f} top-1, mean '
                       f'|{"prob" if self.result.scores_are_probabilities else "output"} '
                       f'diff| {self.result.mean_abs_diff:.5f}{label}')
        return out + self.notes


def _check_classes(probabilities: np.ndarray, labels: np.ndarray, dataset: str) -> None:
    if probabilities.ndim != 2 or probabilities.shape[1] <= int(labels.max()):
        raise ModelFileError(f'the model outputs shape {list(probabilities.shape[1:])}, not one '
                             f'score per {dataset} class ({int(labels.max()) + 1}); name the '
                             'class scores with --output-arrays')


def _check_dataset(asked: Optional[str], trained_on: Optional[str], how: str) -> None:
    """Raises `ConfigError` when ``asked`` is another dataset than the model's own: its score
    there would be meaningless (a digit model scoring clothes)."""
    if asked and trained_on and asked != trained_on:
        raise ConfigError(f'the model was {how} {trained_on!r}, not {asked!r}; drop --dataset, '
                          'or pass --force-dataset to score it on another dataset anyway')


def evaluate_model(path: str, *, dataset: Optional[str] = None, data_dir: Optional[str] = None,
                   limit: Optional[int] = None, latency: bool = False, edgetpu: bool = False,
                   input_arrays: Optional[Sequence[str]] = None,
                   output_arrays: Optional[Sequence[str]] = None,
                   input_shapes: Optional[Dict[str, Sequence[int]]] = None,
                   tag_set: Sequence[str] = ('serve',), signature_def: Optional[str] = None,
                   allow_unsafe_ops: bool = False,
                   report_dir: Optional[str] = None,
                   force_dataset: bool = False) -> EvalReport:
    """Scores any model on a test set: ``.tflite``, any graph source, our runs.

    A ``.tflite`` runs in LiteRT; when its export record names the graph it came from (and that
    graph's digest still matches), the graph runs on the same images for the agreement. Graph
    sources run as frozen inference graphs (shapes from the graph, never assumed).

    Args:
      path: the model.
      dataset: dataset name (default: the run's or the record's, else mnist).
      data_dir: where the dataset is.
      limit: only the first N test examples.
      latency: ``.tflite`` only: median latency of one invoke (refused for graphs).
      edgetpu: ``.tflite`` only: Edge TPU readiness (refused for graphs).
      input_arrays: a graph source's input names (see `graph_models.export.load_model`).
      output_arrays: a graph source's output names.
      input_shapes: a graph source's input shapes.
      tag_set: a SavedModel's MetaGraph tags.
      signature_def: a SavedModel's signature.
      allow_unsafe_ops: skip the op allow-list for a graph source you trust.
      report_dir: also write the pictures and per-class figures of
        `graph_models.litert.evaluate.write_eval_report` there.
      force_dataset: score on ``dataset`` even when the run (or the export record) says the
        model was trained on another one.

    Returns:
      The `EvalReport`.
    """
    from graph_models import data as data_lib
    from graph_models.export import RUN, dataset_images, load_model, scale_to_range
    notes = []
    ok = True
    if is_tflite(path):
        if input_arrays or output_arrays or input_shapes:
            raise ConfigError('--input-arrays, --output-arrays and --input-shapes apply to '
                              'graph sources; a .tflite has its own')
        from freeze.export import RECORD_SUFFIX, read_export_record
        content = read_tflite(path)
        model = LiteModel(content, name=path)
        record = read_export_record(path, content)
        trained_on = (record.get('options') or {}).get('dataset') if record else None
        if not force_dataset:
            _check_dataset(dataset, trained_on, 'exported from a model trained on')
        dataset = dataset or trained_on
        data = data_lib.load_dataset(dataset or 'mnist', data_dir, download=data_dir is None)
        count = min(limit or len(data.test_labels), len(data.test_labels))
        images = data_lib.to_float(data.test_images[:count], (784,))
        labels = data.test_labels[:count]
        input_range = tuple((record or {}).get('input_range') or (0.0, 1.0))
        probs = model.probabilities(scale_to_range(images, input_range))
        _check_classes(probs, labels, data.name)
        reference, label = None, ''
        if record:
            reference, why, label = _reference(record, images, allow_unsafe_ops)
            if reference is None:
                notes.append(f'agreement with the TF graph: not measured ({why})')
        elif read_export_record(path) is not None:
            # A record of another model: the file changed after export, so its source graph
            # is not this model's and no agreement can be measured against it.
            notes.append(f'agreement with the TF graph: not measured ({path}{RECORD_SUFFIX} '
                         'records another model: the file changed after its export; export '
                         'it again to measure it)')
        result = score(probs, labels, reference)
        result.reference = label
        if latency:
            notes.append(f'latency (batch {model.batch_size}, 1 thread, median): '
                         f'{model.latency(images[:model.batch_size]) * 1e6:,.1f} us')
        if edgetpu:
            from graph_models.litert.model_file import edgetpu_blockers, read_model_info
            blockers = edgetpu_blockers(read_model_info(content))
            ok = not blockers
            notes.append('Edge TPU: ready' if ok else
                         f'Edge TPU: not ready ({len(blockers)} blockers: {blockers[0]})')
        if report_dir:
            from graph_models.litert.labels import labels_of
            notes.append(_write_report(report_dir, images, labels, probs,
                                       labels_of(content, data.name), path))
        return EvalReport(path, 'tflite', data.name, result, notes, ok)
    if latency or edgetpu:
        flag = '--latency' if latency else '--edgetpu'
        raise ConfigError(f'{flag} measures a .tflite model; {path} is a TF graph: export it '
                          'with "graph-models export" and evaluate the .tflite')
    frozen = load_model(path, batch_size=100, input_arrays=input_arrays,
                        output_arrays=output_arrays, input_shapes=input_shapes,
                        tag_set=tag_set, signature_def=signature_def,
                        allow_unsafe_ops=allow_unsafe_ops)
    if frozen.source_kind == RUN:
        if data_dir is None:  # The run's own data, as export and train --resume read it.
            from graph_models.training.run_config import read_run_config
            data_dir = read_run_config(frozen.source).recorded_data_dir(dataset)
        if not force_dataset:
            _check_dataset(dataset, frozen.options.get('dataset'), 'trained on')
        dataset = dataset or frozen.options.get('dataset')
    images, labels, data = dataset_images(frozen, dataset, data_dir, split='test', limit=limit,
                                          download=data_dir is None)
    # Pixels in [0, 1] onto the input range the graph's own input fake-quant op gives it.
    from freeze.export import resolve_input_range
    probs = frozen_graph_probabilities(
        frozen.graph_def, scale_to_range(images, resolve_input_range(
            frozen.graph_def, frozen.inputs, None)), frozen.inputs[0], frozen.outputs[0])
    probs = probs.reshape(len(probs), -1)
    _check_classes(probs, labels, data.name)
    if report_dir:
        notes.append(_write_report(report_dir, images, labels, probs,
                                   data_lib.class_names(data.name), path))
    return EvalReport(path, frozen.source_kind, data.name, score(probs, labels), notes)


def _write_report(folder: str, images: np.ndarray, labels: np.ndarray,
                  probabilities: np.ndarray, names: Sequence[str], path: str) -> str:
    """Writes the ``eval --report`` files; returns the line that lists them."""
    from graph_models.litert.evaluate import write_eval_report
    written = write_eval_report(folder, images, labels, probabilities, names, model=path)
    return 'report: ' + ', '.join(sorted(written.values()))


def write_eval_report(out_dir: str, images: np.ndarray, labels: np.ndarray,
                      probabilities: np.ndarray, class_names: Optional[Sequence[str]] = None,
                      *, model: str = '') -> Dict[str, str]:
    """Writes ``confusion_matrix.png``, ``mistakes.png`` and ``per_class.json`` into ``out_dir``.

    Args:
      out_dir: the report folder (created).
      images: the evaluated images ``[N, 784]`` or ``[N, 28, 28(, 1)]``, floats in [0, 1].
      labels: int true labels ``[N]``.
      probabilities: float ``[N, C]``.
      class_names: display names by class index.
      model: the model's path, recorded in the JSON.

    Returns:
      Kind -> written path.
    """
    os.makedirs(out_dir, exist_ok=True)
    written = {}
    for name, png in report_pictures(images, labels, probabilities, class_names).items():
        path = os.path.join(out_dir, f'{name}.png')
        atomic_write(path, png)
        written[name] = path
    matrix = pictures.confusion_matrix(labels, probabilities.argmax(1), probabilities.shape[1])
    metrics = pictures.per_class_metrics(matrix, class_names)
    metrics.update(model=model, examples=int(len(labels)),
                   confusion_matrix=matrix.tolist())
    path = os.path.join(out_dir, 'per_class.json')
    atomic_write(path, (json.dumps(metrics, indent=2) + '\n').encode())
    written['per_class'] = path
    return written
