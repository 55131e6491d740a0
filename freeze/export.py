"""One call from a checkpoint folder (or a frozen ``.pb``) to a ``.tflite``.

`export_checkpoint` picks the right graph for the mode (float graph for ``float``/``dynamic``
and post-training ``int8``; the QAT eval graph for ``int8``/``uint8`` of a quantized run), with a
fixed batch size. `export_frozen_graph` converts a ``.pb`` from elsewhere. Both return an
`ExportRecord`; `write_export` writes the model atomically, with a ``.json`` record beside it that
``graph-models eval`` reads to compare the model with its TF graph.
"""

import dataclasses
import json
import os
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from freeze import freeze_graph, safety, tflite
from graph_models import __version__, checkpoints, graphs
from graph_models import data as data_lib
from graph_models.errors import ConfigError
from graph_models.fileio import atomic_write
from graph_models.run_config import read_run_config


@dataclasses.dataclass
class ExportRecord:
    """What was exported, from what, and how.

    Attributes:
      model: the ``.tflite`` bytes (not written to the JSON record).
      mode: ``float``, ``dynamic``, ``int8`` or ``uint8``.
      source: checkpoint prefix or ``.pb`` path.
      source_kind: ``checkpoint`` or ``frozen_graph``.
      graph: which TF graph was converted: ``float`` or ``qat_eval``.
      quantization: ``none``, ``dynamic``, ``qat`` or ``post_training``.
      batch_size: static batch size of the input.
      input_arrays: input op names.
      output_arrays: output op names.
      seconds: wall time of the whole export (graph rebuild, restore, conversion).
      symmetrized_weights: whether asymmetric QAT weight ranges were widened to symmetric
        ones for the int8 spec (weights with zero point 0).
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

    def to_json(self) -> Dict:
        d = dataclasses.asdict(self)
        del d['model']
        d['size_bytes'] = len(self.model)
        d['package_version'] = __version__
        return d


def _representative(run, data_dir: Optional[str], count: int) -> tflite.RepresentativeData:
    data = data_lib.load_dataset(run.dataset, data_dir or run.data_source, download=False,
                                 limit=run.limit)
    images = data_lib.to_float(data.train_images, run.model.input_shape)
    return tflite.representative_from_images(images, count=count, seed=run.seed)


def export_checkpoint(checkpoint: str, mode: str = 'float', *, batch_size: int = 1,
                      data_dir: Optional[str] = None,
                      representative_examples: int = tflite.REPRESENTATIVE_EXAMPLES
                      ) -> ExportRecord:
    """Exports a training checkpoint to TFLite through ``TFLiteConverter.from_session``.

    Args:
      checkpoint: checkpoint folder (latest checkpoint) or prefix, with ``run_config.json``.
      mode: one of `freeze.tflite.MODES`.
      batch_size: static batch size of ``Input`` (1 for Edge TPU).
      data_dir: where the training data is, for post-training int8 (default: the run's data
        source).
      representative_examples: how many training examples calibrate post-training int8.

    Returns:
      The `ExportRecord`.

    Raises:
      CheckpointError: missing or unfitting checkpoint.
      ConfigError: a mode the checkpoint cannot give (uint8 from a float run).
      ExportError: the converter failed.
    """
    if mode not in tflite.MODES:
        raise ConfigError(f'unknown export mode {mode!r}; choose one of '
                          f'{", ".join(tflite.MODES)}')
    if batch_size <= 0:
        raise ConfigError(f'batch size must be positive, got {batch_size}')
    began = time.perf_counter()
    prefix = checkpoints.resolve_checkpoint(checkpoint)
    run = read_run_config(checkpoint if os.path.isdir(checkpoint) else prefix)
    qat = bool(run.quantization) and mode in ('int8', 'uint8')
    representative = None
    if mode in ('int8', 'uint8') and not qat:
        if mode == 'uint8':
            raise ConfigError('uint8 export needs a quantization-aware checkpoint (train with '
                              '--quantize); for a float checkpoint use --quantize int8 '
                              '(post-training quantization)')
        representative = _representative(run, data_dir, representative_examples)
    session, model = freeze_graph.build_restored_inference_graph(
        run, prefix, batch_size=batch_size, quantized=qat)
    symmetrize = qat and mode == 'int8' and not run.quantization.symmetric
    try:
        if symmetrize:
            symmetrize_weight_ranges(session)
        flatbuffer = tflite.convert_session(session, [model.inputs], [model.output], mode,
                                            fake_quantized=qat,
                                            representative_data=representative)
    finally:
        session.close()
    quantization = {'float': 'none', 'dynamic': 'dynamic'}.get(
        mode, 'qat' if qat else 'post_training')
    return ExportRecord(flatbuffer, mode, prefix, 'checkpoint', 'qat_eval' if qat else 'float',
                        quantization, batch_size, [graphs.INPUT], [graphs.OUTPUT],
                        time.perf_counter() - began, symmetrized_weights=symmetrize)


def symmetrize_weight_ranges(session) -> int:
    """Widens every ``weights_quant`` range of a QAT eval graph to ``[-r, r]``.

    TFLite's int8 spec (and XNNPACK, and the Edge TPU) need weights with zero point 0. The
    asymmetric ranges of a default QAT run give other zero points, so for int8 export each
    range becomes symmetric around 0 with ``r = max(|min|, |max|)``. That clips nothing; the
    quantization step grows by at most 2x. Runs trained with ``--symmetric`` need none of this.

    Args:
      session: a session holding a restored QAT eval graph.

    Returns:
      The number of weight ranges changed.
    """
    from graph_models.quantize import QUANTIZATION_VARIABLES, WEIGHTS_QUANT
    graph = session.graph
    ranges = {}
    for var in graph.get_collection(QUANTIZATION_VARIABLES):
        scope, end = var.op.name.rsplit('/', 1)
        # <ctx>/weights_quant, or weights_quant[_N] for root or shared-scope layers.
        if end in ('min', 'max') and scope.rsplit('/', 1)[-1].split('_quant')[0] == 'weights':
            ranges.setdefault(scope, {})[end] = var
    with graph.as_default():
        for pair in ranges.values():
            low, high = session.run([pair['min'], pair['max']])
            bound = max(abs(float(low)), abs(float(high)))
            pair['min'].load(-bound, session)
            pair['max'].load(bound, session)
    return len(ranges)


def export_frozen_graph(path: str, mode: str = 'float', *,
                        input_arrays: Sequence[str] = (graphs.INPUT,),
                        output_arrays: Sequence[str] = (graphs.OUTPUT,),
                        input_shapes: Optional[Dict[str, Sequence[int]]] = None,
                        representative_images: Optional[np.ndarray] = None,
                        allow_unsafe_ops: bool = False) -> ExportRecord:
    """Exports a frozen ``.pb`` (ours or from elsewhere) via ``from_frozen_graph``.

    Args:
      path: the frozen GraphDef.
      mode: one of `freeze.tflite.MODES`.
      input_arrays: input op names.
      output_arrays: output op names.
      input_shapes: input name -> static shape (needed when the graph's batch is ``None``).
      representative_images: float inputs for post-training int8/uint8 of a graph without
        fake quantization.
      allow_unsafe_ops: skip the allow-list check of `freeze.safety` (trusted graphs only).

    Returns:
      The `ExportRecord`.
    """
    began = time.perf_counter()
    graph_def = freeze_graph.read_graph_def(path)
    safety.check_graph_safety(graph_def, path, allow_unsafe_ops)
    freeze_graph.check_output_names(graph_def, list(input_arrays) + list(output_arrays))
    fake_quantized = any(n.op.startswith('FakeQuantWithMinMax') for n in graph_def.node)
    representative = None
    if representative_images is not None and mode in ('int8', 'uint8') and not fake_quantized:
        representative = tflite.representative_from_images(representative_images)
    flatbuffer = tflite.convert_frozen_graph(path, input_arrays, output_arrays, input_shapes,
                                             mode, fake_quantized=fake_quantized,
                                             representative_data=representative)
    batch = 1
    if input_shapes:
        batch = int(list(input_shapes.values())[0][0])
    quantization = {'float': 'none', 'dynamic': 'dynamic'}.get(
        mode, 'qat' if fake_quantized else 'post_training')
    return ExportRecord(flatbuffer, mode, os.path.abspath(path), 'frozen_graph',
                        'qat_eval' if fake_quantized else 'float', quantization, batch,
                        list(input_arrays), list(output_arrays), time.perf_counter() - began)


def write_export(record: ExportRecord, path: str) -> str:
    """Writes the ``.tflite`` and its ``.json`` record atomically; returns the record path."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    atomic_write(path, record.model)
    record_path = path + '.json'
    atomic_write(record_path, (json.dumps(record.to_json(), indent=2) + '\n').encode())
    return record_path


def read_export_record(tflite_path: str) -> Optional[Dict]:
    """The ``.json`` record written beside a ``.tflite`` by `write_export`, or None."""
    try:
        with open(tflite_path + '.json') as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
