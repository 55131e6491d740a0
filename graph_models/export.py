"""Model sources for the commands: our run folders through `graph_models.training.restore`, any
other TF1
model (``.pb``, ``.pbtxt``, checkpoint + ``.meta``, SavedModel) through the ``freeze`` toolkit.

`load_model` turns any source into a `freeze.sources.FrozenGraph`; `export_model` converts it
(verified, see `freeze.export`); `reference_graph` rebuilds the graph an export record names and
checks it is the one that was converted. The library decides what a path is; the CLI only
passes it on.
"""

import dataclasses
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from freeze import export as freeze_export
from freeze import sources, tflite
from freeze.errors import FreezeError  # noqa: F401  (re-exported for callers and tests)
from freeze.export import ExportRecord, write_export  # noqa: F401
from freeze.freeze_graph import (FROZEN_GRAPH_FILE, freeze_session, graph_digest,  # noqa: F401
                                 op_name, stateful_ops, write_graph_def)
from graph_models import data as data_lib
from graph_models.nets import graphs
from graph_models.training import restore
from graph_models._tf import tf
from graph_models.errors import CheckpointError, ConfigError
from graph_models.fileio import ensure_parent
from graph_models.training.restore import build_restored_inference_graph  # noqa: F401
from graph_models.training.run_config import RunConfig

RUN = 'checkpoint'  # Source kind of our own run folders in export records.
# Which TF graph `reference_graph` gives: the graph as trained, or (records written before
# trained_graph_sha256) the graph the export converted, weight ranges symmetrized.
TRAINED = 'trained'
CONVERTED = 'converted'
# The fake quant after a QAT run's Logits (<model>/logits/act_quant/FakeQuantWithMinMaxVars).
_LOGITS_QUANT = '/act_quant/FakeQuantWithMinMaxVars'


@dataclasses.dataclass
class FrozenModel:
    """A frozen inference graph of one of our runs.

    Attributes:
      graph_def: the frozen ``GraphDef``.
      run: the run config of the checkpoint.
      checkpoint: the checkpoint prefix that was restored.
      batch_size: the static batch size of ``Input``.
      quantized: whether the graph has the quantization eval rewrite.
    """

    graph_def: tf.compat.v1.GraphDef
    run: RunConfig
    checkpoint: str
    batch_size: int
    quantized: bool


def freeze_checkpoint(checkpoint: str, *, batch_size: int = 1, quantized: Optional[bool] = None,
                      output_names: Sequence[str] = (graphs.OUTPUT, graphs.LOGITS)
                      ) -> FrozenModel:
    """Rebuilds the inference graph of one of our checkpoints, restores it and freezes it.

    Args:
      checkpoint: a run folder (its latest checkpoint) or a prefix inside one.
      batch_size: static batch size of ``Input`` (1 for TFLite and Edge TPU).
      quantized: see `graph_models.training.restore.build_restored_inference_graph`.
      output_names: outputs to keep (``Output`` and ``Logits``).

    Raises:
      CheckpointError: missing checkpoint or run config, or a checkpoint of another model.
      FreezeError: an unknown output name, or a stateful op left in the frozen graph.
    """
    if batch_size <= 0:
        raise ConfigError(f'batch size must be positive, got {batch_size}')
    restored = restore.restore_run(checkpoint, batch_size=batch_size, quantized=quantized)
    try:
        graph_def = freeze_session(restored.session, output_names=list(output_names))
    finally:
        restored.close()
    left = stateful_ops(graph_def)
    if left:
        raise FreezeError(f'the frozen graph still has stateful ops: {", ".join(left[:5])}')
    return FrozenModel(graph_def, restored.run, restored.checkpoint, batch_size,
                       restored.quantized)


def _check_batch_size(batch_size: int, example_shape: Sequence[int]) -> None:
    """Raises `ConfigError` for a batch whose input tensor every command would refuse to read
    (`freeze.safety.MAX_ELEMENTS`), before anything is built or written."""
    from freeze.safety import MAX_ELEMENTS
    per_example = int(np.prod(example_shape))
    if batch_size * per_example > MAX_ELEMENTS:
        raise ConfigError(f'--batch-size {batch_size} makes the input '
                          f'{[batch_size, *example_shape]} ({batch_size * per_example:,} '
                          f'elements), more than the {MAX_ELEMENTS:,} that eval, export and '
                          f'predict read; use a batch of at most {MAX_ELEMENTS // per_example:,}')


def _run_graph(path: str, *, batch_size: int, quantized: Optional[bool],
               input_arrays: Optional[Sequence[str]], output_arrays: Optional[Sequence[str]],
               input_shapes: Optional[Dict[str, Sequence[int]]],
               quantize_outputs: bool = False) -> sources.FrozenGraph:
    """A run's frozen graph. ``Logits`` of a QAT run sits before its fake quant: with
    ``quantize_outputs`` the output is that fake quant (`freeze.sources.quantized_outputs`),
    and that fake quant's name is accepted as an output (an earlier export's record)."""
    if input_arrays and list(input_arrays) != [graphs.INPUT]:
        raise ConfigError(f'a run of ours has the one input {graphs.INPUT}, not '
                          f'{", ".join(input_arrays)}')
    outputs = list(output_arrays or [graphs.OUTPUT])
    named = {graphs.OUTPUT, graphs.LOGITS}

    def unknown_output(name):
        return ConfigError(f'a run of ours has the outputs {graphs.OUTPUT} and '
                           f'{graphs.LOGITS}, not {name}')

    unknown = sorted(n for n in set(outputs) - named if not n.endswith(_LOGITS_QUANT))
    if unknown:
        raise unknown_output(unknown[0])

    def freeze_newest(batch_size: int):
        run, _ = restore.open_run(path)
        if input_shapes:
            shape = sources.named_input_shapes(input_shapes, [graphs.INPUT]).get(graphs.INPUT,
                                                                                 [])
            if not shape or shape[1:] != list(run.model.input_shape):
                raise ConfigError(f'--input-shapes {shape} does not fit the run\'s input '
                                  f'{[batch_size, *run.model.input_shape]}; only the batch '
                                  'may change')
            batch_size = shape[0]
        _check_batch_size(batch_size, run.model.input_shape)
        # Output is kept while freezing: the logits' fake quant lies on its path.
        return run, batch_size, freeze_checkpoint(
            path, batch_size=batch_size, quantized=quantized,
            output_names=sorted((set(outputs) & named) | {graphs.OUTPUT}))

    try:
        run, batch_size, frozen = freeze_newest(batch_size)
    except CheckpointError:
        if not os.path.isdir(path):
            raise
        # A run still training with --keep-checkpoints 1 may have pruned the checkpoint
        # between finding and reading it: once more, on the newest one.
        run, batch_size, frozen = freeze_newest(batch_size)
    graph_def, notes = frozen.graph_def, []
    if quantize_outputs and frozen.quantized:
        outputs, notes = sources.quantized_outputs(graph_def, outputs)
    nodes = {n.name: n for n in graph_def.node}
    for name in set(outputs) - named:
        if name not in nodes or op_name(nodes[name].input[0]) != graphs.LOGITS:
            raise unknown_output(name)
    graph_def = tf.compat.v1.graph_util.extract_sub_graph(graph_def, outputs)
    return sources.FrozenGraph(graph_def, [graphs.INPUT], outputs,
                               {graphs.INPUT: [batch_size, *run.model.input_shape]},
                               frozen.checkpoint, RUN,
                               {'quantized': frozen.quantized, 'dataset': run.dataset},
                               notes=notes)


def load_model(path: str, *, batch_size: int = 1, quantized: Optional[bool] = None,
               input_arrays: Optional[Sequence[str]] = None,
               output_arrays: Optional[Sequence[str]] = None,
               input_shapes: Optional[Dict[str, Sequence[int]]] = None,
               tag_set: Sequence[str] = ('serve',), signature_def: Optional[str] = None,
               allow_unsafe_ops: bool = False,
               quantize_outputs: bool = False) -> sources.FrozenGraph:
    """Any model source as a frozen inference graph.

    Args:
      path: one of our run folders (or a prefix in one), a checkpoint prefix with its
        ``.meta``, a SavedModel folder, or a frozen ``.pb``/``.pbtxt``.
      batch_size: static batch size, where the source leaves it open or fixes another.
      quantized: our runs only: the QAT eval graph (default: when the run was quantized).
      input_arrays: input tensor names (see `freeze.sources.load_source`).
      output_arrays: output tensor names (see `freeze.sources.load_source`).
      input_shapes: input shapes by name (see `freeze.sources.load_source`).
      tag_set: the SavedModel's MetaGraph tags.
      signature_def: the SavedModel's signature.
      allow_unsafe_ops: skip the op allow-list (not needed for our runs).
      quantize_outputs: an output one fake quant reads becomes that fake quant (see
        `freeze.sources.load_source`; our QAT runs' ``Logits``).

    Returns:
      The `freeze.sources.FrozenGraph`.
    """
    if batch_size <= 0:
        raise ConfigError(f'batch size must be positive, got {batch_size}')
    if restore.is_run(path):
        return _run_graph(path, batch_size=batch_size, quantized=quantized,
                          input_arrays=input_arrays, output_arrays=output_arrays,
                          input_shapes=input_shapes, quantize_outputs=quantize_outputs)
    if quantized is False:
        raise ConfigError('--float applies to our QAT runs; for other sources pick the graph '
                          'with --output-arrays')
    return sources.load_source(path, input_arrays=input_arrays, output_arrays=output_arrays,
                               input_shapes=input_shapes, batch_size=batch_size,
                               tag_set=tag_set, signature_def=signature_def,
                               allow_unsafe_ops=allow_unsafe_ops,
                               quantize_outputs=quantize_outputs)


def scale_to_range(images: np.ndarray, input_range: Tuple[float, float]) -> np.ndarray:
    """Maps pixels in [0, 1] onto a model's real input range."""
    low, high = input_range
    if (low, high) == (0.0, 1.0):
        return images
    return (low + (high - low) * images).astype(np.float32)


def dataset_images(frozen: sources.FrozenGraph, dataset: Optional[str],
                   data_dir: Optional[str], *, split: str = 'train',
                   limit: Optional[int] = None, download: bool = False):
    """``(images shaped for the model's input, labels, dataset)`` of a dataset split.

    Raises:
      ConfigError: when the dataset's examples do not fit the model's input shape.
    """
    data = data_lib.load_dataset(dataset or 'mnist', data_dir, download=download)
    images = data.train_images if split == 'train' else data.test_images
    labels = data.train_labels if split == 'train' else data.test_labels
    if limit:
        images, labels = images[:limit], labels[:limit]
    shape = frozen.input_shapes[frozen.inputs[0]][1:]
    if int(np.prod(shape)) != int(np.prod(images.shape[1:])):
        raise ConfigError(f'the model input {frozen.inputs[0]} takes examples of shape {shape}, '
                          f'{data.name} has {list(images.shape[1:])}; pick a model for this '
                          'dataset, or the dataset for this model')
    return data_lib.to_float(images, shape), labels, data


def export_model(source: str, mode: str = 'float', *, batch_size: int = 1,
                 dataset: Optional[str] = None, data_dir: Optional[str] = None,
                 input_arrays: Optional[Sequence[str]] = None,
                 output_arrays: Optional[Sequence[str]] = None,
                 input_shapes: Optional[Dict[str, Sequence[int]]] = None,
                 tag_set: Sequence[str] = ('serve',), signature_def: Optional[str] = None,
                 input_range: Optional[Tuple[float, float]] = None,
                 calibrate: bool = False, allow_unsafe_ops: bool = False,
                 representative_examples: int = tflite.REPRESENTATIVE_EXAMPLES) -> ExportRecord:
    """Exports any model source to TFLite, verifying integer models.

    For one of our runs, ``int8``/``uint8`` use its QAT eval graph when it was quantized, and
    post-training quantization from its own training data otherwise. For other sources,
    post-training quantization needs ``data_dir`` (the dataset defaults to what it holds).
    ``input_range`` None takes the range of the graph's own input fake-quant op, else [0, 1]
    (`freeze.export.resolve_input_range`).

    Returns:
      The `freeze.export.ExportRecord` (write it with `write_export`).

    Raises:
      ConfigError, CheckpointError, freeze.errors.ToolkitError: see the callees.
    """
    if mode not in tflite.MODES:
        raise ConfigError(f'unknown export mode {mode!r}; choose one of '
                          f'{", ".join(tflite.MODES)}')
    integer = mode in ('int8', 'uint8')
    quantized = None
    if restore.is_run(source):
        run, _ = restore.open_run(source)
        qat = bool(run.quantization) and integer and not calibrate
        if mode == 'uint8' and not run.quantization and not calibrate:
            raise ConfigError('uint8 export needs a quantization-aware checkpoint (train with '
                              '--quantize); for a float checkpoint use --quantize int8 '
                              '(post-training quantization)')
        quantized = qat
        if integer and not qat:
            dataset = dataset or run.dataset
            data_dir = data_dir or run.data_source
    frozen = load_model(source, batch_size=batch_size, quantized=quantized,
                        input_arrays=input_arrays, output_arrays=output_arrays,
                        input_shapes=input_shapes, tag_set=tag_set, signature_def=signature_def,
                        allow_unsafe_ops=allow_unsafe_ops,
                        quantize_outputs=integer and not calibrate)
    images, seed, limit = None, 0, None
    if frozen.source_kind == RUN:
        seed, limit = run.seed, run.limit  # The run's own training examples, as it saw them.
    wants_data = data_dir is not None or dataset is not None  # --dataset alone: its cache.
    if integer and wants_data and (calibrate or not frozen.fake_quantized
                                   or frozen.unreached_ranges):
        images, _, _ = dataset_images(frozen, dataset, data_dir, limit=limit)
        images = scale_to_range(images, freeze_export.resolve_input_range(
            frozen.graph_def, frozen.inputs, input_range))
    record = freeze_export.export_graph(frozen, mode, representative_images=images,
                                        input_range=input_range, calibrate=calibrate,
                                        representative_examples=representative_examples,
                                        seed=seed)
    return record


def export_checkpoint(checkpoint: str, mode: str = 'float', *, batch_size: int = 1,
                      data_dir: Optional[str] = None,
                      representative_examples: int = tflite.REPRESENTATIVE_EXAMPLES
                      ) -> ExportRecord:
    """Exports one of our runs (see `export_model`)."""
    if not restore.is_run(checkpoint):
        restore.open_run(checkpoint)  # Raises the precise CheckpointError.
        raise CheckpointError(f'no run of ours at {checkpoint}')
    return export_model(checkpoint, mode, batch_size=batch_size, data_dir=data_dir,
                        representative_examples=representative_examples)


def symmetrize_weight_ranges(session) -> int:
    """Widens every ``weights_quant`` range variable of a live QAT eval graph to ``[-r, r]``.

    The session form of `freeze.export.symmetrize_weight_ranges` (which rewrites a frozen
    graph, as export does): both give the same frozen graph.

    Returns:
      The number of weight ranges changed.
    """
    from graph_models.quantize import QUANTIZATION_VARIABLES
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


def reference_graph(record: Dict, allow_unsafe_ops: bool = False
                    ) -> Tuple[Optional[sources.FrozenGraph], str]:
    """The TF graph as trained that an export record's model came from, or None and why not.

    The source is loaded again as it was for the export (our run's QAT or float graph, the
    same tensors, shapes, tags and signature). The reference is the graph as trained
    (`freeze.export.trained_graph`): weight ranges as learned, not as the export symmetrized
    them, and no range the export calibrated. Its digest must equal the record's
    ``trained_graph_sha256``: otherwise the source changed (or the record names another model)
    and no agreement can be measured. Records written before that field name the converted
    graph (``graph_sha256``, symmetrized weights); that graph is rebuilt and checked instead
    (``options['reference']`` says which one it is). ``allow_unsafe_ops`` as for
    `load_model` (``eval --allow-unsafe-ops``).
    """
    source = record.get('source')
    if not isinstance(source, str):
        return None, 'the export record names no source'
    try:
        if record.get('source_kind') == RUN:
            frozen = load_model(source, batch_size=int(record.get('batch_size', 1)),
                                quantized=record.get('graph') == 'qat_eval',
                                output_arrays=record.get('output_arrays'))
        else:
            options = record.get('options') or {}
            frozen = sources.load_source(
                source, input_arrays=record.get('input_arrays'),
                output_arrays=record.get('output_arrays'),
                input_shapes=record.get('input_shapes') or None,
                tag_set=options.get('tag_set', ['serve']),
                signature_def=options.get('signature_def'), allow_unsafe_ops=allow_unsafe_ops)
    except (CheckpointError, ConfigError, FreezeError, OSError) as e:
        return None, f'its source {source} cannot be loaded ({e})'
    except Exception as e:  # pylint: disable=broad-except
        from freeze.errors import ToolkitError
        if isinstance(e, ToolkitError):
            return None, f'its source {source} cannot be loaded ({e})'
        raise
    if record.get('trained_graph_sha256'):
        graph_def, digest, kind = (freeze_export.trained_graph(frozen),
                                   record['trained_graph_sha256'], TRAINED)
    else:
        graph_def, digest, kind = frozen.graph_def, record.get('graph_sha256'), CONVERTED
        if record.get('graph') == 'float' and frozen.fake_quantized:
            graph_def = freeze_export.strip_fake_quant(graph_def)
        if record.get('symmetrized_weights'):
            graph_def, _ = freeze_export.symmetrize_weight_ranges(graph_def)
    if digest and digest != graph_digest(graph_def):
        return None, (f'its source {source} is not the graph that was converted (the graph '
                      'digest differs): export the model again')
    frozen.graph_def = graph_def
    frozen.options = dict(frozen.options, reference=kind)
    return frozen, ''


def _beside(source: str, name: str) -> str:
    folder = source if os.path.isdir(source) else os.path.dirname(source) or '.'
    return os.path.join(folder, name)


_CHECKPOINT_STATE = 'checkpoint'
_SAVED_MODEL_FILES = ('saved_model.pb', 'saved_model.pbtxt', 'fingerprint.pb')


def _is_checkpoint_file(name: str) -> bool:
    return name.endswith(('.index', '.meta')) or '.data-' in name


def _source_files(source: str) -> List[str]:
    """The files a source is read from: what an output must never replace.

    A folder (a run or a SavedModel): its checkpoint files, ``checkpoint`` state,
    ``run_config.json``, ``saved_model.pb``/``.pbtxt`` and everything under ``variables/`` and
    ``assets/``. A file or checkpoint prefix: the file, the prefix's ``.index``/``.data-*``/
    ``.meta`` and the state file and run config beside it.
    """
    from graph_models.training.run_config import RUN_CONFIG_FILE
    if os.path.isdir(source):
        folder, stem = source, None
    else:
        folder = os.path.dirname(source) or '.'
        stem = os.path.basename(source)
        for suffix in ('.meta', '.index'):
            stem = stem[:-len(suffix)] if stem.endswith(suffix) else stem
        stem = stem.split('.data-')[0]
    files = [source]
    try:
        names = os.listdir(folder)
    except OSError:
        return files
    for name in names:
        if name in (_CHECKPOINT_STATE, RUN_CONFIG_FILE) or \
                (stem is None and name in _SAVED_MODEL_FILES) or \
                (_is_checkpoint_file(name) and (stem is None or name.startswith(stem + '.'))):
            files.append(os.path.join(folder, name))
    if stem is None:
        for sub in ('variables', 'assets'):
            for parent, _, children in os.walk(os.path.join(folder, sub)):
                files.extend(os.path.join(parent, child) for child in children)
    return files


def _check_outputs(paths: Sequence[str], source: str) -> None:
    """Raises `ConfigError` if an output would replace one of the source's files (compared as
    files, so a link or another spelling of the path is caught too); creates their folders."""
    for path in paths:
        if not os.path.lexists(path):
            continue
        for own in _source_files(source):
            try:
                same = os.path.samefile(path, own)
            except OSError:
                same = os.path.realpath(path) == os.path.realpath(own)
            if same:
                raise ConfigError(f'the output {path} is a file of the source {source} '
                                  f'({os.path.basename(own)}); writing it would destroy the '
                                  'source: choose another -o path')
    for path in paths:
        ensure_parent(path)


def freeze_model(source: str, output: Optional[str] = None, *, batch_size: int = 1,
                 float_graph: bool = False, pbtxt: bool = False, **source_options):
    """Freezes any source into a ``.pb`` (and a ``.pbtxt``): ``(frozen graph, paths written)``.

    Args:
      source: see `load_model`.
      output: the ``.pb`` path (default ``frozen_graph.pb`` beside the source).
      batch_size: static batch size, where the source leaves it open or fixes another.
      float_graph: our QAT runs: their float graph instead of the eval graph.
      pbtxt: also write the text form beside it.
      **source_options: `load_model` options.
    """
    if restore.is_run(source) and not source_options.get('output_arrays'):
        source_options['output_arrays'] = [graphs.OUTPUT, graphs.LOGITS]
    frozen = load_model(source, batch_size=batch_size,
                        quantized=False if float_graph else None, **source_options)
    output = output or _beside(source, FROZEN_GRAPH_FILE)
    text = os.path.splitext(output)[0] + '.pbtxt'
    _check_outputs([output, text] if pbtxt else [output], source)  # Both before writing one.
    write_graph_def(frozen.graph_def, output)
    written = [output]
    if pbtxt:
        write_graph_def(frozen.graph_def, text, as_text=True)
        written.append(text)
    return frozen, written


def describe_frozen(frozen: sources.FrozenGraph, path: str) -> str:
    """One line about a frozen graph written to ``path``: kind, source, size, inputs, outputs."""
    kind = 'QAT eval' if frozen.fake_quantized else 'float'
    inputs = ', '.join(f'{n} {frozen.input_shapes[n]}' for n in frozen.inputs)
    return (f'{path}: {kind} graph of {frozen.source}, {len(frozen.graph_def.node)} nodes, '
            f'input {inputs}, outputs {", ".join(frozen.outputs)}')


def export_to_file(source: str, output: Optional[str], mode: str = 'float', *,
                   metadata: bool = True, **options):
    """`export_model`, then publishes the model and its record: ``(record, model path)``.

    Args:
      source: as for `export_model`.
      output: the ``.tflite`` path (default ``model_<mode>.tflite`` beside the source).
      mode: as for `export_model`.
      metadata: embed TFLite metadata (name, input normalization, labels file) when the
        dataset is known: our runs know theirs, other sources need ``dataset``.
      **options: as for `export_model`.
    """
    output = output or _beside(source, f'model_{mode}.tflite')
    _check_outputs([output, output + freeze_export.RECORD_SUFFIX], source)  # And its record.
    freeze_export.check_record_slot(output)  # Before converting: no file of the user's.
    record = export_model(source, mode, **options)
    if metadata:
        from freeze.metadata import MetadataError
        from graph_models.export import embed_in_export
        try:
            embed_in_export(record, options.get('dataset'))
        except MetadataError as e:
            raise ConfigError(f'cannot embed metadata ({e})',
                              cli_message=f'cannot embed metadata ({e}); pass --no-metadata '
                                          'to export without it') from None
    write_export(record, output)
    return record, output


DESCRIPTIONS = {
    'mnist': 'Handwritten digit classifier (MNIST, 28x28 grayscale, 10 classes)',
    'fashion_mnist': 'Clothing classifier (Fashion-MNIST, 28x28 grayscale, 10 classes)',
}


def model_info(model_name: str, dataset: str, *, mode: str = 'float', version: str = '',
               input_range: Tuple[float, float] = (0.0, 1.0)):
    """The `freeze.metadata.ModelInfo` of one of our classifiers trained on ``dataset``.

    Args:
      model_name: the network (``mlp``, ``cnn``, ...).
      dataset: the training dataset; gives the labels and the description.
      mode: export mode (float, dynamic, int8, uint8), named in the description.
      version: model version string (for example the package version).
      input_range: the real ``(min, max)`` the model takes for pixels 0 and 255; the
        normalization ``(pixel - mean) / std`` maps one onto the other.
    """
    from freeze.metadata import ModelInfo
    from graph_models import __version__
    description = DESCRIPTIONS.get(dataset, f'{dataset} classifier')
    low, high = (float(v) for v in input_range)
    std = 255.0 / (high - low)
    return ModelInfo(name=f'{model_name}-{dataset}', version=version or __version__,
                     description=f'{description}; {mode} TFLite export of graph-models '
                                 f'{model_name}. Input: pixels scaled to [{low:g}, {high:g}], '
                                 'light strokes on a dark background.',
                     author='graph-models', labels=data_lib.class_names(dataset),
                     mean=(0.0 - low * std,), std=(std,))


def with_metadata(model: bytes, model_name: str, dataset: str, mode: str = 'float',
                  input_range: Tuple[float, float] = (0.0, 1.0)) -> bytes:
    """``model`` with the metadata and labels file of ``model_info``."""
    from freeze.metadata import add_metadata
    return add_metadata(model, model_info(model_name, dataset, mode=mode,
                                          input_range=input_range))


def embed_in_export(record, dataset: Optional[str] = None) -> Optional[str]:
    """Adds metadata to an export record's model in place; returns the dataset used or None.

    A checkpoint export takes the model name and dataset from its run config; a frozen ``.pb``
    gets metadata only when ``dataset`` is given (we do not know what a foreign graph outputs).

    Args:
      record: a `freeze.export.ExportRecord`.
      dataset: the dataset the model classifies (overrides the run's).
    """
    model_name = 'model'
    if record.source_kind == 'checkpoint':
        from graph_models.training.run_config import read_run_config
        run = read_run_config(record.source)
        model_name, dataset = run.model.name, dataset or run.dataset
    if dataset is None:
        return None
    record.model = with_metadata(record.model, model_name, dataset, record.mode,
                                 tuple(record.input_range))
    return dataset
