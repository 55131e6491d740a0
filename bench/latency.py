"""Batch-1 inference latency (TF Session vs float and int8 .tflite) and export wall time."""

import os
import statistics
import tempfile
import time
from typing import Dict

import numpy as np

from bench.common import interleaved_medians
from graph_models.run_export import export_checkpoint
from graph_models import evaluate
from graph_models.checkpoints import resolve_checkpoint
from graph_models.nets_factory import ModelConfig
from graph_models.quantize import QuantizationConfig
from graph_models.run_config import RunConfig
from graph_models.train import Evaluator, train_and_eval


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


def measure(quick: bool = False) -> Dict:
    """Median batch-1 latency of the Session, float and int8 models; export wall times."""
    results = {}
    iterations = 50 if quick else 2000
    with tempfile.TemporaryDirectory() as folder:
        for name in ('mlp', 'cnn'):
            checkpoint = _checkpoint(os.path.join(folder, name), name)
            export_seconds = []
            for _ in range(1 if quick else 3):
                began = time.perf_counter()
                int8 = export_checkpoint(checkpoint, 'int8').model
                export_seconds.append(time.perf_counter() - began)
            float_model = export_checkpoint(checkpoint, 'float').model
            image = np.random.default_rng(1).random((1,) + ModelConfig(name).input_shape,
                                                    dtype=np.float32)
            evaluator = Evaluator(ModelConfig(name), batch_size=1)
            evaluator.restore(resolve_checkpoint(checkpoint))
            session_run = interleaved_medians(
                {'session': lambda: evaluator.session.run(
                    evaluator.model.output, {evaluator.model.inputs: image})},
                iterations=iterations // 10 or 1, repeats=10)['session']
            evaluator.close()
            results[name] = {
                'session_batch1_us': session_run * 1e6,
                'tflite_float_batch1_us': evaluate.LiteModel(float_model).latency(
                    image, iterations=iterations) * 1e6,
                'tflite_int8_batch1_us': evaluate.LiteModel(int8).latency(
                    image, iterations=iterations) * 1e6,
                'checkpoint_to_int8_export_s': statistics.median(export_seconds),
            }
    return results
