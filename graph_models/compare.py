"""``graph-models compare``: a graph model and its Keras twin, trained and measured side by side.

Fairness: both start from the same initial weights (the graph's initial values are copied into
the Keras twin), see the same batches in the same order (the graph's seeded epoch order, fed to
``fit`` with ``shuffle=False``), and use the same optimizer (Adam, TF1 defaults), loss, batch
size, epochs and dropout. Both are exported to a float and a post-training int8 ``.tflite``
(same 200 representative training images) and scored on the same test images with the same
LiteRT interpreter settings, so differences come from the framework.

Report (``report.json``, ``report.md``, ``report.png`` in the output folder): test accuracy (TF,
float ``.tflite``, int8 ``.tflite``), training examples per second (training steps only) and
wall time, parameters, ``.tflite`` sizes, batch-1 latency (median, one thread), and the top-1
agreement between the two frameworks' predictions.
"""

import dataclasses
import json
import os
import time
from typing import Callable, Dict, Optional

import numpy as np

from graph_models import data as data_lib
from graph_models import evaluate, graphs, keras_reference
from graph_models._tf import v1
from graph_models.errors import ConfigError
from graph_models.fileio import atomic_write
from graph_models.nets_factory import MODELS, ModelConfig, count_parameters
from graph_models.run_config import RunConfig
from graph_models.train import Evaluator, train_and_eval

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
            batch_size: int = 100, learning_rate: float = 1e-3, seed: int = 0,
            quick: bool = False, log: Callable[[str], None] = print) -> Dict:
    """Trains, exports and measures a graph model and its Keras twin.

    Args:
      model_name: a model with both a graph and a Keras version (``mlp``, ``mlp_small``,
        ``mlp_deep``, ``cnn``).
      data: the dataset; its ``source`` folder also feeds post-training int8 calibration.
      out_dir: run folder for checkpoints, logs, ``.tflite`` files and the reports.
      epochs, batch_size, learning_rate, seed: shared training settings.
      quick: 500 training examples, one epoch, 500 test examples (a smoke run).
      log: progress lines.

    Returns:
      The report dictionary (also written to ``report.json``).
    """
    from graph_models.run_export import export_checkpoint
    from freeze.tflite import representative_from_images

    if model_name not in MODELS or model_name not in keras_reference.KERAS_MODELS:
        raise ConfigError(
            f'compare needs a model with both versions: '
            f'{", ".join(m for m in MODELS if m in keras_reference.KERAS_MODELS)}')
    if quick:
        data = data.limited(QUICK_TRAIN_EXAMPLES)
        epochs = 1
    os.makedirs(out_dir, exist_ok=True)
    config = ModelConfig(model_name, dropout_rate=keras_reference.SEED_DROPOUT.get(model_name,
                                                                                    0.0))
    shape = config.input_shape
    train_x = data_lib.to_float(data.train_images, shape)
    test_count = QUICK_TEST_EXAMPLES if quick else len(data.test_labels)
    test_x = data_lib.to_float(data.test_images[:test_count], shape)
    test_y = data.test_labels[:test_count]
    latency_iterations = 50 if quick else 1000
    representative = representative_from_images(train_x, seed=seed)

    # --- The graph model.
    log(f'graph {model_name}: training {epochs} epoch(s) on {len(train_x)} examples')
    run = RunConfig(model=config, dataset=data.name, epochs=epochs, batch_size=batch_size,
                    learning_rate=learning_rate, seed=seed, data_source=data.source)
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

    # --- The Keras twin, from the same initial weights and with the same batches.
    import keras
    log(f'keras {model_name}: training {epochs} epoch(s) on {len(train_x)} examples')
    model = keras_reference.build_keras_model(model_name, config.num_classes, seed=seed)
    keras_reference.copy_graph_weights(model, initial_values(config, seed, learning_rate),
                                       scope=model_name)
    keras_reference.compile_like_graph(model, learning_rate)
    began = time.perf_counter()
    keras_train_seconds = 0.0
    for epoch in range(epochs):
        order = data_lib.epoch_order(len(train_x), seed, epoch)
        fit_began = time.perf_counter()
        model.fit(train_x[order], data.train_labels[order], batch_size=batch_size, epochs=1,
                  shuffle=False, verbose=0)
        keras_train_seconds += time.perf_counter() - fit_began
    keras_probs = model.predict(test_x, batch_size=1000, verbose=0)
    keras_wall = time.perf_counter() - began
    keras_float = keras_reference.to_tflite(model, 'float')
    keras_int8 = keras_reference.to_tflite(model, 'int8', representative)
    keras.backend.clear_session()

    sides = {}
    for name, probs, float_model, int8_model, params, seconds, wall in (
            ('graph', graph_probs, graph_float, graph_int8,
             count_parameters_of(config), train_seconds, graph_wall),
            ('keras', keras_probs, keras_float, keras_int8,
             keras_reference.count_parameters(model), keras_train_seconds, keras_wall)):
        float_acc, float_latency = _score_tflite(float_model, test_x, test_y, latency_iterations)
        int8_acc, int8_latency = _score_tflite(int8_model, test_x, test_y, latency_iterations)
        sides[name] = SideResult(
            framework=name, parameters=params,
            test_accuracy=evaluate.score(probs, test_y).accuracy,
            tflite_float_accuracy=float_acc, tflite_int8_accuracy=int8_acc,
            examples_per_sec=len(train_x) * epochs / seconds, train_seconds=seconds,
            wall_seconds=wall, tflite_float_bytes=len(float_model),
            tflite_int8_bytes=len(int8_model), latency_float_us=float_latency,
            latency_int8_us=int8_latency)
        atomic_write(os.path.join(out_dir, f'{name}_float.tflite'), float_model)
        atomic_write(os.path.join(out_dir, f'{name}_int8.tflite'), int8_model)

    report = {
        'model': model_name, 'dataset': data.name, 'data_source': data.source, 'epochs': epochs,
        'batch_size': batch_size, 'learning_rate': learning_rate, 'seed': seed, 'quick': quick,
        'train_examples': len(train_x), 'test_examples': test_count,
        'dropout_rate': config.dropout_rate,
        'graph': dataclasses.asdict(sides['graph']), 'keras': dataclasses.asdict(sides['keras']),
        'agreement_top1': float((graph_probs.argmax(1) == keras_probs.argmax(1)).mean()),
    }
    write_reports(report, out_dir)
    return report


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
    ('wall_seconds', 'wall time incl. evaluation (s)', '{:.1f}'),
    ('tflite_float_bytes', 'float .tflite size (bytes)', '{:,}'),
    ('tflite_int8_bytes', 'int8 .tflite size (bytes)', '{:,}'),
    ('latency_float_us', 'float .tflite batch-1 latency (us, median)', '{:.1f}'),
    ('latency_int8_us', 'int8 .tflite batch-1 latency (us, median)', '{:.1f}'),
]


def markdown_table(report: Dict) -> str:
    """The side-by-side table of a report, in Markdown."""
    lines = [f"## {report['model']} on {report['dataset']}: TF1 graph vs Keras "
             f"({report['epochs']} epochs, batch {report['batch_size']}, "
             f"{report['train_examples']} training / {report['test_examples']} test examples"
             + (', quick' if report['quick'] else '') + ')', '',
             '| | graph (tf.compat.v1 Session) | Keras | graph / Keras |', '| --- | --- | --- | --- |']
    for key, label, fmt in ROWS:
        g, k = report['graph'][key], report['keras'][key]
        ratio = f'{g / k:.2f}x' if k else '-'
        lines.append(f'| {label} | {fmt.format(g)} | {fmt.format(k)} | {ratio} |')
    lines += ['', f"Top-1 agreement between the two frameworks' test predictions: "
                  f"{report['agreement_top1']:.4f}"]
    return '\n'.join(lines) + '\n'


def write_reports(report: Dict, out_dir: str) -> None:
    """Writes ``report.json``, ``report.md`` and ``report.png`` atomically."""
    atomic_write(os.path.join(out_dir, 'report.json'),
                 (json.dumps(report, indent=2) + '\n').encode())
    atomic_write(os.path.join(out_dir, 'report.md'), markdown_table(report).encode())
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt
    import io
    panels = [('accuracy', ['test_accuracy', 'tflite_float_accuracy', 'tflite_int8_accuracy'],
               ['TF', 'float tflite', 'int8 tflite']),
              ('training examples/s', ['examples_per_sec'], ['train']),
              ('batch-1 latency (us)', ['latency_float_us', 'latency_int8_us'],
               ['float', 'int8']),
              ('.tflite size (KB)', ['tflite_float_bytes', 'tflite_int8_bytes'],
               ['float', 'int8'])]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    for ax, (title, keys, labels) in zip(axes, panels):
        x = np.arange(len(keys))
        for offset, side in ((-0.2, 'graph'), (0.2, 'keras')):
            values = [report[side][k] / (1024 if 'bytes' in k else 1) for k in keys]
            ax.bar(x + offset, values, width=0.4, label=side)
        ax.set_xticks(x, labels)
        ax.set_title(title)
        if title == 'accuracy':
            low = min(report[s][k] for s in ('graph', 'keras') for k in keys)
            ax.set_ylim(max(0.0, low - 0.05), 1.0)
    axes[0].legend()
    fig.suptitle(f"{report['model']} on {report['dataset']}: graph vs Keras")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png', dpi=90)
    plt.close(fig)
    atomic_write(os.path.join(out_dir, 'report.png'), buffer.getvalue())


def default_out_dir(model_name: str, dataset: str, root: Optional[str] = None) -> str:
    return os.path.join(root or 'runs', f'compare-{model_name}-{dataset}')
