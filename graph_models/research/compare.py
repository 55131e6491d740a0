"""``graph-models compare``: a graph model and its Keras twin, trained and measured side by side.

Fairness: both start from the same initial weights (the graph's initial values are copied into
the Keras twin), see the same batches in the same order (the graph's seeded epoch order, fed to
``fit`` with ``shuffle=False``), and use the same optimizer (Adam, TF1 defaults), loss, batch
size, epochs and dropout. Both are exported to a float and a post-training int8 ``.tflite``
(same 200 representative training images) and scored on the same test images with the same
LiteRT interpreter settings, so differences come from the framework.

Both do the same work per epoch: the graph run evaluates the test set after every epoch, so
Keras ``fit`` gets it as ``validation_data`` (same evaluation batch size). Timing has one
definition on both sides: training time runs from each epoch's start (input pipeline included)
to the end of its last step; evaluation is timed apart (Keras: a ``fit_timer`` callback); wall
time covers building, training, evaluation and (graph) checkpoints.

Report (``report.json``, ``report.md``, ``report.png`` in the output folder): test accuracy (TF,
float ``.tflite``, int8 ``.tflite``), training examples per second, training, evaluation and
wall time, parameters, ``.tflite`` sizes, batch-1 latency (median, one thread), and the top-1
agreement between the two frameworks' predictions. With ``seeds > 1`` every figure is a mean ±
sample std over the seeds, with the paired difference graph - Keras and its 95% t-interval.
"""

import dataclasses
import json
import os
import time
from typing import Callable, Dict, Optional

import numpy as np

from graph_models import data as data_lib
from graph_models.litert import evaluate
from graph_models.nets import graphs
from graph_models.nets import keras_twins
from graph_models.research import statistics
from graph_models.nets import precision as precision_lib
from graph_models._tf import v1
from graph_models.system.cpu import read_cpuinfo
from graph_models.errors import ConfigError
from graph_models.fileio import atomic_write, ensure_folder
from graph_models.nets.factory import MODELS, ModelConfig, count_parameters
from graph_models.training.run_config import RunConfig
from graph_models.training.scoring import EVAL_BATCH, Evaluator
from graph_models.training.train import train_and_eval

QUICK_TRAIN_EXAMPLES = 500
QUICK_TEST_EXAMPLES = 500


@dataclasses.dataclass
class SideResult:
    """One framework's figures (every field is filled by `compare`)."""

    framework: str
    parameters: int
    test_accuracy: float
    tflite_float_accuracy: float
    tflite_int8_accuracy: float
    examples_per_sec: float
    train_seconds: float
    eval_seconds: float
    wall_seconds: float
    tflite_float_bytes: int
    tflite_int8_bytes: int
    latency_float_us: float
    latency_int8_us: float


def initial_values(config: ModelConfig, seed: int, learning_rate: float) -> Dict[str, np.ndarray]:
    """The initial variable values `train_and_eval` starts from for this config and seed."""
    graph, _ = graphs.build_training_graph(config, learning_rate=learning_rate, seed=seed)
    with graph.as_default(), v1.Session(graph=graph) as session:
        session.run(v1.global_variables_initializer())
        return {v.op.name: session.run(v) for v in v1.trainable_variables()}


def _score_tflite(model: bytes, images, labels, latency_iterations: int):
    lite = evaluate.LiteModel(model)
    accuracy = evaluate.score(lite.probabilities(images), labels).accuracy
    latency = lite.latency(images[:lite.batch_size], iterations=latency_iterations)
    return accuracy, latency * 1e6


def compare(model_name: str, data: data_lib.Dataset, out_dir: str, *, epochs: int = 5,
            batch_size: int = 100, learning_rate: float = 1e-3, seed: int = 0, seeds: int = 1,
            keras_style: str = 'functional', quick: bool = False,
            precision: str = 'float32', log: Callable[[str], None] = print) -> Dict:
    """Trains, exports and measures a graph model and its Keras twin, for one or more seeds.

    Seed ``seed + i`` (i < ``seeds``) gives both sides the same initial weights and batches;
    the report has each figure's mean and sample std over seeds, the paired difference graph -
    Keras with its 95% t-interval, and every seed's figures and top-1 agreement.

    Args:
      model_name: a model with both a graph and a Keras version (``mlp``, ``mlp_small``,
        ``mlp_deep``, ``cnn``).
      data: the dataset; its ``source`` folder also feeds post-training int8 calibration.
      out_dir: run folder for checkpoints, logs, ``.tflite`` files and the reports (one
        ``seed-<s>`` subfolder per seed when ``seeds > 1``).
      epochs: training epochs, shared by both sides.
      batch_size: examples per step, shared by both sides.
      learning_rate: Adam's learning rate, shared by both sides.
      seed: the first seed.
      seeds: number of seeds (1 or more).
      keras_style: ``functional``, ``sequential`` or ``subclassed`` Keras twin.
      quick: 500 training examples, one epoch, 500 test examples (a smoke run).
      precision: ``float32`` or ``mixed_bfloat16`` training on both sides: the graph's
        bfloat16 rewrite (`graph_models.nets.precision`) and the Keras twin under Keras'
        ``mixed_bfloat16`` policy with a float32 softmax. Both sides' predictions and exports
        are float32 (the graph's inference graph; a float32 Keras twin with the trained
        weights).
      log: progress lines.

    Returns:
      The report dictionary (also written to ``report.json``).

    Raises:
      ConfigError: for a model without a Keras twin or fewer than 1 seed, or
        ``mixed_bfloat16`` on a CPU without native bfloat16 products.
    """
    precision_lib.check_supported(precision, read_cpuinfo())
    if model_name not in MODELS or model_name not in keras_twins.KERAS_MODELS:
        raise ConfigError(
            f'compare needs a model with both versions: '
            f'{", ".join(m for m in MODELS if m in keras_twins.KERAS_MODELS)}')
    if seeds < 1:
        raise ConfigError(f'the number of seeds must be at least 1, got {seeds}')
    if keras_style not in keras_twins.KERAS_STYLES:
        raise ConfigError(f'unknown Keras style {keras_style!r}; choose one of '
                          f'{", ".join(keras_twins.KERAS_STYLES)}')
    if quick:
        data = data.limited(QUICK_TRAIN_EXAMPLES)
        epochs = 1
    # Train-time evaluation, the report and the log all score the same test images, so the run
    # prints one test accuracy per side (--quick once logged all of them, reported 500).
    test_count = min(QUICK_TEST_EXAMPLES, len(data.test_labels)) if quick else len(
        data.test_labels)
    data = dataclasses.replace(data, test_images=data.test_images[:test_count],
                               test_labels=data.test_labels[:test_count])
    ensure_folder(out_dir)
    seed_list = [seed + i for i in range(seeds)]
    per_seed = []
    for s in seed_list:
        seed_dir = out_dir if seeds == 1 else os.path.join(out_dir, f'seed-{s}')
        run = _compare_seed(model_name, data, seed_dir, epochs=epochs, batch_size=batch_size,
                            learning_rate=learning_rate, seed=s, keras_style=keras_style,
                            quick=quick, precision=precision, log=log)
        log(f"seed {s}: graph test accuracy {run['graph']['test_accuracy']:.4f}, "
            f"keras test accuracy {run['keras']['test_accuracy']:.4f}, "
            f"top-1 agreement {run['agreement_top1']:.4f}")
        per_seed.append(run)
    report = {
        'model': model_name, 'dataset': data.name, 'data_source': data.source, 'epochs': epochs,
        'batch_size': batch_size, 'learning_rate': learning_rate, 'seed': seed,
        'seeds': seed_list, 'keras_style': keras_style, 'quick': quick, 'precision': precision,
        'train_examples': len(data.train_labels), 'test_examples': test_count,
        'dropout_rate': keras_twins.SEED_DROPOUT.get(model_name, 0.0),
    }
    report.update(aggregate(per_seed))
    report['per_seed'] = per_seed
    write_reports(report, out_dir)
    return report


NUMERIC_FIELDS = [f.name for f in dataclasses.fields(SideResult) if f.name != 'framework']


def aggregate(per_seed) -> Dict:
    """Mean, std and paired graph - Keras difference of every figure over the seeds.

    Args:
      per_seed: one ``{'graph': {...}, 'keras': {...}, 'agreement_top1': float}`` per seed.

    Returns:
      ``graph``/``keras``: figure -> mean; ``spread``: side -> figure -> sample std;
      ``difference``: figure -> `statistics.paired_difference`; ``agreement_top1`` (mean) and
      ``agreement_top1_std``.
    """
    out = {'graph': {'framework': 'graph'}, 'keras': {'framework': 'keras'},
           'spread': {'graph': {}, 'keras': {}}, 'difference': {}}
    for key in NUMERIC_FIELDS:
        columns = {side: [run[side][key] for run in per_seed] for side in ('graph', 'keras')}
        for side, values in columns.items():
            summary = statistics.mean_std(values)
            out[side][key] = summary['mean']
            out['spread'][side][key] = summary['std']
        out['difference'][key] = statistics.paired_difference(columns['graph'], columns['keras'])
    agreement = statistics.mean_std([run['agreement_top1'] for run in per_seed])
    out['agreement_top1'] = agreement['mean']
    out['agreement_top1_std'] = agreement['std']
    return out


def _compare_seed(model_name: str, data: data_lib.Dataset, out_dir: str, *, epochs: int,
                  batch_size: int, learning_rate: float, seed: int, keras_style: str,
                  quick: bool, precision: str, log: Callable[[str], None]) -> Dict:
    """One seed of `compare`: ``{'seed', 'graph', 'keras', 'agreement_top1'}``."""
    from graph_models.export import export_checkpoint
    from freeze.tflite import representative_from_images

    ensure_folder(out_dir)
    config = ModelConfig(model_name, dropout_rate=keras_twins.SEED_DROPOUT.get(model_name,
                                                                                    0.0))
    shape = config.input_shape
    train_x = data_lib.to_float(data.train_images, shape)
    test_x = data_lib.to_float(data.test_images, shape)
    test_y = data.test_labels
    latency_iterations = 50 if quick else 1000
    representative = representative_from_images(train_x, seed=seed)

    # --- The graph model.
    log(f'graph {model_name} (seed {seed}): training {epochs} epoch(s) on {len(train_x)} '
        f'examples')
    run = RunConfig(model=config, dataset=data.name, epochs=epochs, batch_size=batch_size,
                    learning_rate=learning_rate, seed=seed, data_source=data.source,
                    precision=precision)
    began = time.perf_counter()
    result = train_and_eval(run, data, run_name='graph', log_dir=os.path.join(out_dir, 'logs'),
                            checkpoint_dir=os.path.join(out_dir, 'checkpoints'), overwrite=True,
                            progress=False, log=log)
    graph_wall = time.perf_counter() - began
    evaluator = Evaluator.for_run(run)
    evaluator.restore(result.checkpoint_path)
    logits = evaluator.logits(test_x)
    evaluator.close()
    graph_probs = np.exp(logits - logits.max(1, keepdims=True))
    graph_probs /= graph_probs.sum(1, keepdims=True)
    graph_float = export_checkpoint(result.checkpoint_dir, 'float').model
    graph_int8 = export_checkpoint(result.checkpoint_dir, 'int8').model
    train_seconds = sum(h.seconds for h in result.history)
    eval_seconds = sum(h.eval_seconds for h in result.history)

    # --- The Keras twin, from the same initial weights and with the same batches. It gets
    # the graph's per-epoch work: the same test set as validation data, same batch size.
    import keras
    log(f'keras {model_name} ({keras_style}, seed {seed}): training {epochs} epoch(s) on '
        f'{len(train_x)} examples')
    start_values = initial_values(config, seed, learning_rate)
    began = time.perf_counter()
    model = keras_twins.build_keras_model(model_name, config.num_classes, seed=seed,
                                              style=keras_style, precision=precision)
    keras_twins.copy_graph_weights(model, start_values, scope=model_name)
    keras_twins.compile_like_graph(model, learning_rate)
    validation = (data_lib.to_float(data.test_images, shape), data.test_labels)
    timer = keras_twins.fit_timer()
    for epoch in range(epochs):
        order = data_lib.epoch_order(len(train_x), seed, epoch)
        model.fit(train_x[order], data.train_labels[order], batch_size=batch_size, epochs=1,
                  shuffle=False, verbose=0, callbacks=[timer], validation_data=validation,
                  validation_batch_size=EVAL_BATCH)
    keras_wall = time.perf_counter() - began
    keras_train_seconds = sum(timer.epoch_seconds)
    if precision != precision_lib.FLOAT32:
        # Predict and export in float32, as the graph side does (its inference graph).
        trained = model
        model = keras_twins.build_keras_model(model_name, config.num_classes, seed=seed,
                                                  style=keras_style)
        model.set_weights(trained.get_weights())
    keras_probs = model.predict(test_x, batch_size=EVAL_BATCH, verbose=0)
    keras_float = keras_twins.to_tflite(model, 'float')
    keras_int8 = keras_twins.to_tflite(model, 'int8', representative)
    keras_params = keras_twins.count_parameters(model)
    keras.backend.clear_session()

    sides = {}
    for name, probs, float_model, int8_model, params, seconds, evaluating, wall in (
            ('graph', graph_probs, graph_float, graph_int8,
             count_parameters_of(config), train_seconds, eval_seconds, graph_wall),
            ('keras', keras_probs, keras_float, keras_int8, keras_params, keras_train_seconds,
             timer.eval_seconds, keras_wall)):
        float_acc, float_latency = _score_tflite(float_model, test_x, test_y, latency_iterations)
        int8_acc, int8_latency = _score_tflite(int8_model, test_x, test_y, latency_iterations)
        sides[name] = dataclasses.asdict(SideResult(
            framework=name, parameters=params,
            test_accuracy=evaluate.score(probs, test_y).accuracy,
            tflite_float_accuracy=float_acc, tflite_int8_accuracy=int8_acc,
            examples_per_sec=len(train_x) * epochs / seconds, train_seconds=seconds,
            eval_seconds=evaluating, wall_seconds=wall, tflite_float_bytes=len(float_model),
            tflite_int8_bytes=len(int8_model), latency_float_us=float_latency,
            latency_int8_us=int8_latency))
        atomic_write(os.path.join(out_dir, f'{name}_float.tflite'), float_model)
        atomic_write(os.path.join(out_dir, f'{name}_int8.tflite'), int8_model)
    return {'seed': seed, 'graph': sides['graph'], 'keras': sides['keras'],
            'agreement_top1': float((graph_probs.argmax(1) == keras_probs.argmax(1)).mean())}


def count_parameters_of(config: ModelConfig) -> int:
    """Trainable parameters of a graph model config."""
    graph, _ = graphs.build_inference_graph(config, batch_size=None)
    with graph.as_default():
        return count_parameters(v1.trainable_variables())


ROWS = [
    ('parameters', 'parameters', '{:,}'),
    ('test_accuracy', 'test accuracy (TF)', '{:.4f}'),
    ('tflite_float_accuracy', 'test accuracy (float .tflite)', '{:.4f}'),
    ('tflite_int8_accuracy', 'test accuracy (int8 .tflite)', '{:.4f}'),
    ('examples_per_sec', 'training examples/s', '{:,.0f}'),
    ('train_seconds', 'training time (s)', '{:.1f}'),
    ('eval_seconds', 'per-epoch test evaluation (s)', '{:.1f}'),
    ('wall_seconds', 'wall time incl. evaluation (s)', '{:.1f}'),
    ('tflite_float_bytes', 'float .tflite size (bytes)', '{:,}'),
    ('tflite_int8_bytes', 'int8 .tflite size (bytes)', '{:,}'),
    ('latency_float_us', 'float .tflite batch-1 latency (us, median)', '{:.1f}'),
    ('latency_int8_us', 'int8 .tflite batch-1 latency (us, median)', '{:.1f}'),
]


def _pm(report: Dict, side: str, key: str, fmt: str) -> str:
    """``mean ± std`` (just the mean for one seed)."""
    fmt = '{:,.0f}' if fmt == '{:,}' else fmt  # Means of integer figures are floats.
    text = fmt.format(report[side][key])
    if len(report.get('seeds', [0])) > 1:
        text += ' ± ' + fmt.format(report['spread'][side][key])
    return text


def markdown_table(report: Dict) -> str:
    """The side-by-side table of a report, in Markdown (mean ± std over the seeds)."""
    n = len(report.get('seeds', [report['seed']]))
    seeds_text = f'{n} seeds, mean ± std' if n > 1 else f"seed {report['seed']}"
    lines = [f"## {report['model']} on {report['dataset']}: TF1 graph vs Keras "
             f"({report.get('keras_style', 'functional')}) "
             f"({report['epochs']} epochs, batch {report['batch_size']}, "
             f"{report['train_examples']} training / {report['test_examples']} test examples, "
             f"{seeds_text}" + (', quick' if report['quick'] else '')
             + (f", {report['precision']}" if report.get('precision', 'float32') != 'float32'
                else '') + ')', '',
             '| | graph (tf.compat.v1 Session) | Keras | graph - Keras (95% CI) |',
             '| --- | --- | --- | --- |']
    for key, label, fmt in ROWS:
        d = report['difference'][key]
        signed = ('{:,.0f}' if fmt == '{:,}' else fmt).replace(':', ':+')
        diff = signed.format(d['mean'])
        if d.get('ci95_low') is not None and d['std'] > 0:
            diff += f" ({signed.format(d['ci95_low'])} .. {signed.format(d['ci95_high'])})"
        lines.append(f"| {label} | {_pm(report, 'graph', key, fmt)} | "
                     f"{_pm(report, 'keras', key, fmt)} | {diff} |")
    agreement = f"{report['agreement_top1']:.4f}"
    if n > 1:
        agreement += f" ± {report['agreement_top1_std']:.4f}"
    lines += ['', f"Top-1 agreement between the two frameworks' test predictions: {agreement}"]
    if n > 1:
        lines += ['', '| seed | graph test accuracy | Keras test accuracy | top-1 agreement |',
                  '| --- | --- | --- | --- |']
        lines += [f"| {r['seed']} | {r['graph']['test_accuracy']:.4f} | "
                  f"{r['keras']['test_accuracy']:.4f} | {r['agreement_top1']:.4f} |"
                  for r in report['per_seed']]
        lines += ['', 'Differences are paired per seed (same initial weights and batches); the '
                      '95% CI is a Student-t interval on the mean difference.']
    return '\n'.join(lines) + '\n'


def write_reports(report: Dict, out_dir: str) -> None:
    """Writes ``report.json``, ``report.md`` and ``report.png`` atomically."""
    from graph_models import pictures
    atomic_write(os.path.join(out_dir, 'report.json'),
                 (json.dumps(report, indent=2) + '\n').encode())
    atomic_write(os.path.join(out_dir, 'report.md'), markdown_table(report).encode())
    atomic_write(os.path.join(out_dir, 'report.png'), pictures.compare_report_png(report))


def default_out_dir(model_name: str, dataset: str, root: Optional[str] = None) -> str:
    return os.path.join(root or 'runs', f'compare-{model_name}-{dataset}')
