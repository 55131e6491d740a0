"""Batch-1 inference latency: TF Session vs float and int8 ``.tflite``, Keras-v2 int8; export.

Latency is the same span on both runtimes: set input -> run -> get output (a Session ``run``
with a feed and a fetch; LiteRT ``set_tensor``, ``invoke``, ``get_tensor``), median of many
calls, one LiteRT thread. The graph's int8 model (quantization-aware checkpoint, TFLiteConverter
v1) is compared with the same architecture and weights converted from the Keras twin with
TFLiteConverter v2 (post-training int8), in alternating rounds of the same run.
"""

import os
import statistics
import tempfile
import time
from typing import Dict

import numpy as np

from graph_models.litert import evaluate
from graph_models.nets import keras_twins
from graph_models._tf import tf
from graph_models.export import export_checkpoint
from graph_models.training.checkpoints import resolve_checkpoint
from graph_models.nets.factory import ModelConfig
from graph_models.quantize import QuantizationConfig
from graph_models.training.run_config import RunConfig
from graph_models.training.scoring import Evaluator
from graph_models.training.train import train_and_eval


def _checkpoint(folder: str, name: str) -> str:
    """A small QAT checkpoint of ``name`` trained on random data (the weights' values do not
    change latency)."""
    from graph_models.data import Dataset, write_idx
    rng = np.random.default_rng(0)
    n = 200
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n)
    data_dir = os.path.join(folder, 'data')
    os.makedirs(data_dir)
    for stem, array in (('train-images-idx3-ubyte', images), ('t10k-images-idx3-ubyte', images),
                        ('train-labels-idx1-ubyte', labels.astype(np.uint8)),
                        ('t10k-labels-idx1-ubyte', labels.astype(np.uint8))):
        write_idx(os.path.join(data_dir, stem + '.gz'), array)
    data = Dataset('mnist', images, labels.astype(np.int64), images, labels.astype(np.int64),
                   data_dir)
    run = RunConfig(model=ModelConfig(name), epochs=1, batch_size=100,
                    quantization=QuantizationConfig(), data_source=data_dir)
    return train_and_eval(run, data, run_name=name, log_dir=os.path.join(folder, 'logs'),
                          checkpoint_dir=os.path.join(folder, 'ckpt'), progress=False,
                          log=lambda line: None).checkpoint_dir


def keras_v2_int8(checkpoint: str, name: str, images: np.ndarray) -> bytes:
    """The Keras twin with the checkpoint's float weights, converted by TFLiteConverter v2
    (post-training int8, int8 input and output)."""
    from freeze.tflite import representative_from_images
    import keras
    reader = tf.train.load_checkpoint(resolve_checkpoint(checkpoint))
    values = {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()}
    model = keras_twins.build_keras_model(name, dropout_rate=0.0)
    keras_twins.copy_graph_weights(model, values, scope=name)
    model_bytes = keras_twins.to_tflite(model, 'int8', representative_from_images(images))
    keras.backend.clear_session()
    return model_bytes


def measure(quick: bool = False) -> Dict:
    """Median batch-1 latencies (us), the int8 graph / Keras-v2 ratio, export wall times."""
    results = {}
    iterations = 50 if quick else 2000
    rounds = 2 if quick else 7
    with tempfile.TemporaryDirectory() as folder:
        for name in ('mlp', 'cnn'):
            config = ModelConfig(name)
            checkpoint = _checkpoint(os.path.join(folder, name), name)
            export_seconds = []
            for _ in range(1 if quick else 3):
                began = time.perf_counter()
                int8 = export_checkpoint(checkpoint, 'int8').model
                export_seconds.append(time.perf_counter() - began)
            float_model = export_checkpoint(checkpoint, 'float').model
            rng = np.random.default_rng(1)
            image = rng.random((1,) + config.input_shape, dtype=np.float32)
            keras_int8 = keras_v2_int8(checkpoint, name,
                                       rng.random((200,) + config.input_shape, dtype=np.float32))
            evaluator = Evaluator(config, batch_size=1)
            evaluator.restore(resolve_checkpoint(checkpoint))
            run = evaluator.session.make_callable(evaluator.model.output,
                                                  [evaluator.model.inputs])

            def session_latency(calls):
                times = []
                for _ in range(calls):
                    began = time.perf_counter()
                    run(image)
                    times.append(time.perf_counter() - began)
                return statistics.median(times)

            lites = {'tflite_float': evaluate.LiteModel(float_model),
                     'tflite_int8': evaluate.LiteModel(int8),
                     'keras_v2_tflite_int8': evaluate.LiteModel(keras_int8)}
            per_round = {k: [] for k in ['session', *lites]}
            calls = max(iterations // rounds, 10)
            for _ in range(rounds):
                per_round['session'].append(session_latency(calls))
                for key, lite in lites.items():
                    per_round[key].append(lite.latency(image, iterations=calls, warmup=5))
            evaluator.close()
            ratios = [a / b for a, b in zip(per_round['tflite_int8'],
                                            per_round['keras_v2_tflite_int8'])]
            results[name] = {f'{k}_batch1_us': statistics.median(v) * 1e6
                             for k, v in per_round.items()}
            results[name].update({
                'int8_over_keras_v2_int8': statistics.median(ratios),
                'int8_over_keras_v2_int8_min': min(ratios),
                'int8_over_keras_v2_int8_max': max(ratios),
                'checkpoint_to_int8_export_s': statistics.median(export_seconds),
            })
    return results
