"""The real path: `graph_models.training.train.train_and_eval` against Keras ``fit`` doing the same
work.

One definition on both sides:

- **training seconds**: per epoch, from the start of the epoch's input pipeline to the end of
  its last step (per-step fetches, summaries and, for Keras, the first epoch's tracing
  included); evaluation and checkpoint saves excluded. Throughput = examples / that.
- **evaluation seconds** and **checkpoint seconds**: timed separately.
- **wall seconds**: the whole call (graph building or model compiling, training, per-epoch
  evaluation on the test set, checkpoints).

Same work per epoch: the graph evaluates the test set after every epoch (batches of
`graph_models.training.scoring.EVAL_BATCH`), so Keras gets ``validation_data`` with the same batch
size.
Keras shuffles with ``shuffle=True`` as users run it. Runs of the two sides alternate (their
order flips every round) and each figure is the median over rounds; the per-round ratios'
spread is reported to show the noise.
"""

import os
import statistics
import tempfile
import time
from typing import Callable, Dict, List

from graph_models import data as data_lib
from graph_models.nets import keras_twins
from graph_models.nets.factory import ModelConfig
from graph_models.quantize import QuantizationConfig
from graph_models.training.run_config import RunConfig
from graph_models.training.scoring import EVAL_BATCH
from graph_models.training.train import train_and_eval


def graph_run(data: data_lib.Dataset, run: RunConfig) -> Dict:
    """Runs ``train_and_eval`` once (fresh folders); returns its figures."""
    with tempfile.TemporaryDirectory() as folder:
        began = time.perf_counter()
        result = train_and_eval(run, data, run_name='bench', log_dir=os.path.join(folder, 'l'),
                                checkpoint_dir=os.path.join(folder, 'c'), progress=False,
                                log=lambda line: None)
        wall = time.perf_counter() - began
    h = result.history
    train = sum(e.seconds for e in h)
    return {'train_seconds': train, 'eval_seconds': sum(e.eval_seconds for e in h),
            'checkpoint_seconds': sum(e.save_seconds for e in h), 'wall_seconds': wall,
            'examples_per_s': len(data.train_labels) * run.epochs / train,
            'epoch_seconds': [e.seconds for e in h],
            'test_accuracy': h[-1].test_accuracy}


def keras_run(data: data_lib.Dataset, name: str, epochs: int, batch_size: int,
              seed: int = 0, precision: str = 'float32') -> Dict:
    """Builds, compiles and fits the Keras twin with per-epoch validation; returns its figures.

    ``mixed_bfloat16`` builds the twin under Keras' ``mixed_bfloat16`` policy with a float32
    softmax (`graph_models.nets.keras_twins.build_keras_model`; the global policy is restored).
    """
    import keras
    shape = ModelConfig(name).input_shape
    train_x = data_lib.to_float(data.train_images, shape)
    test_x = data_lib.to_float(data.test_images, shape)
    began = time.perf_counter()
    model = keras_twins.build_keras_model(name, seed=seed, dropout_rate=0.0,
                                              precision=precision)
    keras_twins.compile_like_graph(model)
    timer = keras_twins.fit_timer()
    history = model.fit(train_x, data.train_labels, batch_size=batch_size, epochs=epochs,
                        shuffle=True, verbose=0, callbacks=[timer],
                        validation_data=(test_x, data.test_labels),
                        validation_batch_size=EVAL_BATCH)
    wall = time.perf_counter() - began
    keras.backend.clear_session()
    train = sum(timer.epoch_seconds)
    return {'train_seconds': train, 'eval_seconds': timer.eval_seconds,
            'checkpoint_seconds': 0.0, 'wall_seconds': wall,
            'examples_per_s': len(data.train_labels) * epochs / train,
            'epoch_seconds': timer.epoch_seconds,
            'test_accuracy': float(history.history['val_accuracy'][-1])}


def alternate(sides: Dict[str, Callable[[], Dict]], rounds: int) -> Dict[str, List[Dict]]:
    """Runs each side once per round, flipping their order every round."""
    names = list(sides)
    runs: Dict[str, List[Dict]] = {n: [] for n in names}
    for r in range(rounds):
        for n in (names if r % 2 == 0 else names[::-1]):
            runs[n].append(sides[n]())
    return runs


def _summary(runs: List[Dict]) -> Dict:
    keys = ('train_seconds', 'eval_seconds', 'checkpoint_seconds', 'wall_seconds',
            'examples_per_s', 'test_accuracy')
    return {k: statistics.median(r[k] for r in runs) for k in keys}


def _ratios(a: List[Dict], b: List[Dict], key: str, invert: bool = False) -> Dict:
    values = [(y[key] / x[key]) if invert else (x[key] / y[key]) for x, y in zip(a, b)]
    return {'median': statistics.median(values), 'min': min(values), 'max': max(values)}


def graph_vs_keras(data: data_lib.Dataset, name: str, *, epochs: int, batch_size: int,
                   rounds: int, precision: str = 'float32', steps_per_run: int = 1) -> Dict:
    """Real-path throughput and wall time, graph vs Keras, for model ``name``.

    The graph trains at ``precision`` with ``steps_per_run``. Keras float32 ``fit`` is always
    a side (``keras``, the ratios' reference); with ``mixed_bfloat16`` the Keras twin at that
    precision is a third side (``keras_mixed``), with its own ratios.
    """
    run = RunConfig(model=ModelConfig(name), dataset=data.name, epochs=epochs,
                    batch_size=batch_size, data_source=data.source, precision=precision,
                    steps_per_run=steps_per_run)
    sides = {'graph': lambda: graph_run(data, run),
             'keras': lambda: keras_run(data, name, epochs, batch_size)}
    if precision != 'float32':
        sides['keras_mixed'] = lambda: keras_run(data, name, epochs, batch_size,
                                                 precision=precision)
    runs = alternate(sides, rounds)
    result = {side: _summary(runs[side]) for side in sides}
    result.update({
        'precision': precision, 'steps_per_run': steps_per_run,
        'throughput_ratio': _ratios(runs['graph'], runs['keras'], 'examples_per_s'),
        'wall_ratio': _ratios(runs['graph'], runs['keras'], 'wall_seconds', invert=True),
        'rounds': rounds, 'runs': runs})
    if 'keras_mixed' in sides:
        result['throughput_ratio_keras_mixed'] = _ratios(runs['graph'], runs['keras_mixed'],
                                                         'examples_per_s')
    return result


def qat_vs_float(data: data_lib.Dataset, name: str, *, epochs: int, batch_size: int,
                 rounds: int) -> Dict:
    """Real-path training seconds of the QAT run over the float run (same data, settings)."""
    base = dict(model=ModelConfig(name), dataset=data.name, epochs=epochs,
                batch_size=batch_size, data_source=data.source)
    runs = alternate({'float': lambda: graph_run(data, RunConfig(**base)),
                      'qat': lambda: graph_run(data, RunConfig(
                          **base, quantization=QuantizationConfig()))}, rounds)
    return {'float': _summary(runs['float']), 'qat': _summary(runs['qat']),
            'qat_over_float': _ratios(runs['qat'], runs['float'], 'train_seconds'),
            'rounds': rounds}


def xla_vs_default(data: data_lib.Dataset, name: str, *, epochs: int, batch_size: int,
                   rounds: int) -> Dict:
    """Real-path training seconds with ``--xla`` over without (decides the flag's default)."""
    base = dict(model=ModelConfig(name), dataset=data.name, epochs=epochs,
                batch_size=batch_size, data_source=data.source)
    runs = alternate({'default': lambda: graph_run(data, RunConfig(**base)),
                      'xla': lambda: graph_run(data, RunConfig(**base, xla=True))}, rounds)
    return {'default': _summary(runs['default']), 'xla': _summary(runs['xla']),
            'xla_over_default': _ratios(runs['xla'], runs['default'], 'train_seconds'),
            'rounds': rounds}
