"""``graph-models compare --quantize``: our QAT graph rewrite against Keras QAT (TFMOT).

Each side trains twice from the same initial weights (the graph's initial values) on the same
batches (the graph's seeded epoch order): a float model, and a quantization-aware model whose
fake quantization starts after ``quant_delay`` steps. The graph side uses
`graph_models.quantize` (TF1 contrib/quantize semantics); the Keras side uses
``tensorflow_model_optimization.quantization.keras.quantize_model`` on a ``tf_keras`` twin
(TFMOT does not support Keras 3). Each QAT model is converted to a full-integer int8
``.tflite`` (checked: every CONV_2D / FULLY_CONNECTED computes in int8) and scored with LiteRT.

How the quant delay is matched: TFMOT has no delay parameter, so the Keras side trains the plain
``tf_keras`` model for ``quant_delay`` batches, then wraps it with ``quantize_model`` (which
keeps the trained weights) and trains the remaining batches. Two differences remain and are
inherent to the two designs: TFMOT starts a fresh Adam (the wrapped model has new variables),
and its activation ranges start at the wrap, whereas the graph rewrite's moving-average ranges
already track activations during the delay.

Report (``report.json``, ``report.md``): per side the float model's test accuracy, the QAT
model's TF accuracy, the int8 ``.tflite`` accuracy, its top-1 agreement with the same side's
float model, its size and batch-1 latency (median, one thread).
"""

import dataclasses
import json
import math
import os
import time
from typing import Callable, Dict, List, Optional

import numpy as np

from graph_models import data as data_lib
from graph_models.litert import evaluate
from graph_models.nets import keras_twins
from graph_models.errors import ConfigError
from graph_models.fileio import atomic_write, ensure_folder
from graph_models.nets.factory import ModelConfig

MISSING_TFMOT = ('Keras QAT needs tensorflow-model-optimization and tf-keras, which are not '
                 'installed: pip install -e ".[keras-qat]"')


@dataclasses.dataclass
class QatSide:
    """One framework's QAT figures."""

    framework: str
    float_accuracy: float
    qat_accuracy: float
    int8_accuracy: float
    int8_agreement_with_float: float
    int8_bytes: int
    int8_latency_us: float
    train_seconds: float


def import_tfmot():
    """Returns ``(tfmot, tf_keras)``.

    Raises:
      ConfigError: when either package is missing or cannot be imported on this stack.
    """
    try:
        import tf_keras
        import tensorflow_model_optimization as tfmot
    except ImportError as e:
        raise ConfigError(f'{MISSING_TFMOT} ({e})') from None
    return tfmot, tf_keras


def batch_schedule(num_examples: int, batch_size: int, seed: int,
                   epochs: int) -> List[np.ndarray]:
    """The index batches the graph trainer feeds, in order, over all epochs."""
    batches = []
    for epoch in range(epochs):
        order = data_lib.epoch_order(num_examples, seed, epoch)
        batches += [order[i:i + batch_size] for i in range(0, num_examples, batch_size)]
    return batches


def check_integer_compute(model: bytes) -> None:
    """Raises ConfigError if a CONV_2D or FULLY_CONNECTED of a ``.tflite`` computes in float.

    The converter leaves layers without ranges in float silently; an "int8" model that
    computes in float must not be reported as int8.
    """
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_content=model)
    dtypes = {t['index']: t['dtype'] for t in interpreter.get_tensor_details()}
    for op in interpreter._get_ops_details():  # pylint: disable=protected-access
        if op['op_name'] in ('CONV_2D', 'FULLY_CONNECTED', 'DEPTHWISE_CONV_2D'):
            first = op['inputs'][0]
            if dtypes.get(first) != np.int8:
                raise ConfigError(f'the int8 .tflite computes {op["op_name"]} in '
                                  f'{np.dtype(dtypes.get(first)).name}, not int8')


def _keras_train(model, tf_keras, images, labels, batches, learning_rate):
    model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate, beta_1=0.9, beta_2=0.999,
                                                     epsilon=1e-8),
                  loss='sparse_categorical_crossentropy')
    for batch in batches:
        model.train_on_batch(images[batch], labels[batch])


def compare_qat(model_name: str, data: data_lib.Dataset, out_dir: str, *, epochs: int = 5,
                batch_size: int = 100, learning_rate: float = 1e-3, seed: int = 0,
                quant_delay: Optional[int] = None, quick: bool = False,
                log: Callable[[str], None] = print) -> Dict:
    """Trains float and QAT versions of a graph model and of its TFMOT Keras twin.

    Args:
      model_name: ``mlp``, ``mlp_small``, ``mlp_deep`` or ``cnn``.
      data: the dataset (its ``source`` feeds nothing here: QAT needs no calibration).
      out_dir: run folder for checkpoints, ``.tflite`` files and reports.
      epochs, batch_size, learning_rate, seed: shared training settings.
      quant_delay: training steps before fake quantization starts (both sides); None for one
        epoch.
      quick: 500 training examples, one epoch, 500 test examples; quant delay half an epoch.
      log: progress lines.

    Returns:
      The report dictionary (also written to ``report.json``).

    Raises:
      ConfigError: TFMOT / tf-keras missing, an unknown model, or a delay beyond the training.
    """
    from graph_models.export import export_checkpoint
    from graph_models.research import compare as compare_lib
    from graph_models.quantize import QuantizationConfig
    from graph_models.training.run_config import RunConfig
    from graph_models.training.scoring import Evaluator
    from graph_models.training.train import train_and_eval

    tfmot, tf_keras = import_tfmot()
    if model_name not in keras_twins.KERAS_MODELS or model_name == 'resnet50v2':
        raise ConfigError(f'compare --quantize supports mlp_small, mlp, mlp_deep and cnn, '
                          f'not {model_name!r}')
    if quick:
        data = data.limited(compare_lib.QUICK_TRAIN_EXAMPLES)
        epochs = 1
    test_count = min(compare_lib.QUICK_TEST_EXAMPLES, len(data.test_labels)) if quick else len(
        data.test_labels)
    data = dataclasses.replace(data, test_images=data.test_images[:test_count],
                               test_labels=data.test_labels[:test_count])
    steps_per_epoch = math.ceil(len(data.train_labels) / batch_size)
    total_steps = steps_per_epoch * epochs
    if quant_delay is None:
        quant_delay = steps_per_epoch // 2 if quick else steps_per_epoch
    if quant_delay >= total_steps:
        raise ConfigError(f'the quant delay ({quant_delay} steps) must be shorter than the '
                          f'training ({total_steps} steps)')
    ensure_folder(out_dir)
    config = ModelConfig(model_name,
                         dropout_rate=keras_twins.SEED_DROPOUT.get(model_name, 0.0))
    train_x = data_lib.to_float(data.train_images, config.input_shape)
    train_y = data.train_labels
    test_x = data_lib.to_float(data.test_images, config.input_shape)
    test_y = data.test_labels
    latency_iterations = 50 if quick else 1000

    # --- Graph: float run, then the QAT run (same seed: same initial weights and batches).
    graph = {}
    for kind, quantization in (('float', None),
                               ('qat', QuantizationConfig(quant_delay=quant_delay))):
        log(f'graph {model_name} {kind}: training {epochs} epoch(s)'
            + (f', quant delay {quant_delay} steps' if quantization else ''))
        run = RunConfig(model=config, dataset=data.name, epochs=epochs, batch_size=batch_size,
                        learning_rate=learning_rate, seed=seed, data_source=data.source,
                        quantization=quantization)
        result = train_and_eval(run, data, run_name=f'graph-{kind}',
                                log_dir=os.path.join(out_dir, 'logs'),
                                checkpoint_dir=os.path.join(out_dir, f'checkpoints-{kind}'),
                                overwrite=True, progress=False, log=log)
        evaluator = Evaluator.for_run(run)
        evaluator.restore(result.checkpoint_path)
        graph[kind] = evaluator.logits(test_x).argmax(1)
        evaluator.close()
        graph[f'{kind}_seconds'] = sum(h.seconds for h in result.history)
        if quantization:
            graph['int8'] = export_checkpoint(result.checkpoint_dir, 'int8').model

    # --- Keras (tf_keras + TFMOT) from the graph's initial weights, the same batches.
    initial = compare_lib.initial_values(config, seed, learning_rate)
    batches = batch_schedule(len(train_y), batch_size, seed, epochs)
    keras_side = {}
    log(f'keras {model_name} float: training {epochs} epoch(s)')
    model = keras_twins.build_keras_model(model_name, config.num_classes, seed=seed,
                                              keras_module=tf_keras)
    keras_twins.copy_graph_weights(model, initial, scope=model_name)
    began = time.perf_counter()
    _keras_train(model, tf_keras, train_x, train_y, batches, learning_rate)
    keras_side['float_seconds'] = time.perf_counter() - began
    keras_side['float'] = model.predict(test_x, batch_size=1000, verbose=0).argmax(1)
    tf_keras.backend.clear_session()

    log(f'keras {model_name} qat (TFMOT quantize_model): training {epochs} epoch(s), '
        f'float for the first {quant_delay} steps')
    model = keras_twins.build_keras_model(model_name, config.num_classes, seed=seed,
                                              keras_module=tf_keras)
    keras_twins.copy_graph_weights(model, initial, scope=model_name)
    began = time.perf_counter()
    _keras_train(model, tf_keras, train_x, train_y, batches[:quant_delay], learning_rate)
    qat_model = tfmot.quantization.keras.quantize_model(model)
    _keras_train(qat_model, tf_keras, train_x, train_y, batches[quant_delay:], learning_rate)
    keras_side['qat_seconds'] = time.perf_counter() - began
    keras_side['qat'] = qat_model.predict(test_x, batch_size=1000, verbose=0).argmax(1)
    keras_side['int8'] = _keras_int8(qat_model)
    tf_keras.backend.clear_session()

    sides = {}
    for name, side in (('graph', graph), ('keras', keras_side)):
        check_integer_compute(side['int8'])
        lite = evaluate.LiteModel(side['int8'])
        int8_pred = lite.probabilities(test_x).argmax(1)
        sides[name] = dataclasses.asdict(QatSide(
            framework=name, float_accuracy=float((side['float'] == test_y).mean()),
            qat_accuracy=float((side['qat'] == test_y).mean()),
            int8_accuracy=float((int8_pred == test_y).mean()),
            int8_agreement_with_float=float((int8_pred == side['float']).mean()),
            int8_bytes=len(side['int8']),
            int8_latency_us=lite.latency(test_x[:lite.batch_size],
                                         iterations=latency_iterations) * 1e6,
            train_seconds=side['qat_seconds']))
        atomic_write(os.path.join(out_dir, f'{name}_qat_int8.tflite'), side['int8'])
        log(f"{name}: float accuracy {sides[name]['float_accuracy']:.4f}, int8 .tflite "
            f"accuracy {sides[name]['int8_accuracy']:.4f}")
    report = {'model': model_name, 'dataset': data.name, 'epochs': epochs,
              'batch_size': batch_size, 'learning_rate': learning_rate, 'seed': seed,
              'quant_delay': quant_delay, 'quick': quick,
              'train_examples': len(train_y), 'test_examples': test_count,
              'tfmot_version': getattr(tfmot, '__version__', 'unknown'),
              'graph': sides['graph'], 'keras': sides['keras']}
    atomic_write(os.path.join(out_dir, 'report.json'),
                 (json.dumps(report, indent=2) + '\n').encode())
    atomic_write(os.path.join(out_dir, 'report.md'), markdown_table(report).encode())
    return report


def _keras_int8(qat_model) -> bytes:
    """Full-integer int8 ``.tflite`` of a TFMOT model (ranges from training, no calibration)."""
    import contextlib
    import io
    import warnings
    from graph_models._tf import tf
    converter = tf.lite.TFLiteConverter.from_keras_model(qat_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return converter.convert()


ROWS = [('float_accuracy', 'float model test accuracy (TF)', '{:.4f}'),
        ('qat_accuracy', 'QAT model test accuracy (TF, fake-quantized)', '{:.4f}'),
        ('int8_accuracy', 'int8 .tflite test accuracy', '{:.4f}'),
        ('int8_agreement_with_float', 'int8 .tflite top-1 agreement with the float model',
         '{:.4f}'),
        ('int8_bytes', 'int8 .tflite size (bytes)', '{:,}'),
        ('int8_latency_us', 'int8 .tflite batch-1 latency (us, median)', '{:.1f}'),
        ('train_seconds', 'QAT training time (s)', '{:.1f}')]


def markdown_table(report: Dict) -> str:
    """The QAT comparison table in Markdown."""
    lines = [f"## {report['model']} on {report['dataset']}: QAT, graph rewrite vs Keras TFMOT "
             f"({report['epochs']} epochs, batch {report['batch_size']}, quant delay "
             f"{report['quant_delay']} steps, {report['train_examples']} training / "
             f"{report['test_examples']} test examples, seed {report['seed']}"
             + (', quick' if report['quick'] else '') + ')', '',
             '| | graph (graph_models.quantize) | Keras (TFMOT quantize_model) |',
             '| --- | --- | --- |']
    for key, label, fmt in ROWS:
        lines.append(f"| {label} | {fmt.format(report['graph'][key])} | "
                     f"{fmt.format(report['keras'][key])} |")
    return '\n'.join(lines) + '\n'
