"""Whole processes, as users run them from the shell: ``graph-models train`` against a Keras
script doing the same work.

Each side is a fresh Python process timed from spawn to exit, so start-up (imports),
data loading, graph building or compiling, training and the per-epoch evaluation on the test
set are all inside the figure:

- graph: ``python -m graph_models train --model M --epochs E --batch-size B --precision P
  --data-dir D`` (the installed ``graph-models`` command is the same entry point);
- Keras: `KERAS_SCRIPT`, the seed-style float32 program: the twin of the same architecture
  (`graph_models.nets.keras_twins`), Adam with the graph's learning rate, ``model.fit`` with
  ``validation_data`` (the test set, evaluated after every epoch), on the same IDX files
  through the same loader.

The two sides run in alternating rounds (order flipped each round); figures are medians and
the ratio's spread is min-max over rounds.
"""

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

# The seed-style Keras program: what a user writes for the same job with Keras float32.
KERAS_SCRIPT = '''\
import sys

from graph_models.data import load_dataset, to_float
from graph_models.nets import keras_twins
from graph_models.nets.factory import ModelConfig

name, dataset, data_dir, epochs, batch_size = sys.argv[1:6]
data = load_dataset(dataset, data_dir, download=False)
shape = ModelConfig(name).input_shape
train_x, test_x = to_float(data.train_images, shape), to_float(data.test_images, shape)
model = keras_twins.build_keras_model(name, dropout_rate=0.0)
keras_twins.compile_like_graph(model)
history = model.fit(train_x, data.train_labels, batch_size=int(batch_size),
                    epochs=int(epochs), validation_data=(test_x, data.test_labels), verbose=0)
print(f"test accuracy {history.history['val_accuracy'][-1]:.4f}")
'''

_GRAPH_ACCURACY = re.compile(r'test loss \S+ acc ([\d.]+)')
_KERAS_ACCURACY = re.compile(r'test accuracy ([\d.]+)')


def write_idx_folder(data, folder: str) -> str:
    """Writes ``data`` (a `graph_models.data.Dataset`) as the four IDX files into ``folder``,
    so both processes read the very examples the rest of the run measured; returns it."""
    import numpy as np

    from graph_models.data import IDX_FILES, write_idx
    os.makedirs(folder, exist_ok=True)
    for role, stem in IDX_FILES.items():
        array = getattr(data, role)
        write_idx(os.path.join(folder, stem + '.gz'),
                  array.astype(np.uint8) if role.endswith('labels') else array)
    return folder


def _timed(command: List[str], accuracy: re.Pattern, cwd: str) -> Dict:
    """Runs ``command`` to its end; its wall seconds and the last test accuracy it printed.

    Raises:
      RuntimeError: if the process fails or prints no test accuracy (no figure from a run
        that did not do the work).
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get('TF_CPP_MIN_LOG_LEVEL') or '2')
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env)
    wall = time.perf_counter() - began
    found = accuracy.findall(done.stdout)
    if done.returncode != 0 or not found:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f'{" ".join(command[:4])}... exited {done.returncode} without a test '
                           f'accuracy: {" | ".join(tail)}')
    return {'wall_seconds': wall, 'test_accuracy': float(found[-1])}


def graph_process(name: str, *, dataset: str, data_dir: str, epochs: int, batch_size: int,
                  precision: str, folder: str) -> Dict:
    """``graph-models train`` in a fresh process; returns its wall seconds and accuracy."""
    command = [sys.executable, '-m', 'graph_models', 'train', '--model', name,
               '--dataset', dataset, '--data-dir', data_dir, '--epochs', str(epochs),
               '--batch-size', str(batch_size), '--precision', precision, '--no-progress',
               '--run-name', 'bench', '--overwrite',
               '--checkpoint-dir', os.path.join(folder, 'checkpoints'),
               '--log-dir', os.path.join(folder, 'logs')]
    return _timed(command, _GRAPH_ACCURACY, folder)


def keras_process(name: str, *, dataset: str, data_dir: str, epochs: int, batch_size: int,
                  folder: str) -> Dict:
    """`KERAS_SCRIPT` in a fresh process; returns its wall seconds and accuracy."""
    script = os.path.join(folder, 'keras_seed.py')
    with open(script, 'w') as f:
        f.write(KERAS_SCRIPT)
    command = [sys.executable, script, name, dataset, data_dir, str(epochs), str(batch_size)]
    return _timed(command, _KERAS_ACCURACY, folder)


def graph_vs_keras_process(name: str, *, dataset: str, data_dir: str, epochs: int,
                           batch_size: int, rounds: int, precision: str) -> Dict:
    """Whole-process wall time of ``graph-models train`` (at ``precision``) against the Keras
    float32 script, in ``rounds`` alternating rounds.

    Returns:
      ``{'graph': {...}, 'keras': {...}}`` medians of ``wall_seconds`` and ``test_accuracy``,
      ``keras_over_graph`` (median, min, max of the per-round wall-time ratios: above 1 means
      the graph process is faster), ``precision``, ``rounds`` and every round's ``runs``.
    """
    runs: Dict[str, List[Dict]] = {'graph': [], 'keras': []}
    with tempfile.TemporaryDirectory() as folder:
        sides = {
            'graph': lambda: graph_process(name, dataset=dataset, data_dir=data_dir,
                                           epochs=epochs, batch_size=batch_size,
                                           precision=precision, folder=folder),
            'keras': lambda: keras_process(name, dataset=dataset, data_dir=data_dir,
                                           epochs=epochs, batch_size=batch_size, folder=folder)}
        for r in range(rounds):
            for side in (('graph', 'keras') if r % 2 == 0 else ('keras', 'graph')):
                runs[side].append(sides[side]())
    ratios = [k['wall_seconds'] / g['wall_seconds'] for g, k in zip(runs['graph'], runs['keras'])]
    return {side: {key: statistics.median(run[key] for run in runs[side])
                   for key in ('wall_seconds', 'test_accuracy')} for side in runs} | {
        'keras_over_graph': {'median': statistics.median(ratios), 'min': min(ratios),
                             'max': max(ratios)},
        'precision': precision, 'rounds': rounds, 'runs': runs}


def main(argv=None) -> int:
    """``python -m bench.process --model M --precision P``: this section of ``python -m bench``
    alone (same data, same processes, same alternating rounds)."""
    from bench import common
    args, data = common.section_cli(
        'python -m bench.process', __doc__, argv, lambda parser: parser.add_argument(
            '--precision', default='float32', choices=['float32', 'mixed_bfloat16']))
    with tempfile.TemporaryDirectory() as folder:
        idx = write_idx_folder(data, os.path.join(folder, 'data'))
        r = graph_vs_keras_process(args.model, dataset=data.name, data_dir=idx,
                                   epochs=args.epochs, batch_size=100, rounds=args.rounds,
                                   precision=args.precision)
    q = r['keras_over_graph']
    print(f"{args.model} ({args.precision}): graph-models train "
          f"{r['graph']['wall_seconds']:.2f} s, Keras float32 script "
          f"{r['keras']['wall_seconds']:.2f} s, Keras / graph "
          f"{q['median']:.2f}x ({q['min']:.2f}-{q['max']:.2f}); rounds: graph "
          + ', '.join(f"{run['wall_seconds']:.1f}" for run in r['runs']['graph']) + '; Keras '
          + ', '.join(f"{run['wall_seconds']:.1f}" for run in r['runs']['keras']))
    return 0


if __name__ == '__main__':
    sys.exit(main())
