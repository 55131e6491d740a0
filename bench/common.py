"""Shared benchmark helpers: machine info, interleaved repeated timing, result files."""

import datetime
import json
import os
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional

from graph_models.system.cpu import cpu_info, read_cpuinfo
from graph_models.fileio import atomic_write

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')
QUICK_SUBFOLDER = 'quick'


def machine_info() -> Dict:
    """CPU model and ISA features, cores and threads, Python and TensorFlow versions."""
    from graph_models._tf import tf
    text = read_cpuinfo()
    info = cpu_info(text or '')
    if text is None:
        info['cpu'] = platform.processor() or 'unknown'
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    threading = tf.config.threading
    return {**info, 'cores': os.cpu_count(), 'usable_cores': usable,
            # 0 means TensorFlow's default: one thread per usable core.
            'tf_intra_op_threads': threading.get_intra_op_parallelism_threads(),
            'tf_inter_op_threads': threading.get_inter_op_parallelism_threads(),
            'omp_num_threads': os.environ.get('OMP_NUM_THREADS'),
            'onednn': os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'default (on)'),
            'litert_threads': 1, 'python': platform.python_version(),
            'tensorflow': tf.__version__, 'platform': platform.platform()}


def machine_line(m: Dict) -> str:
    """One line naming the machine for result tables."""
    features = [name for name, present in m['isa'].items() if present] or ['no AVX2']
    return (f"{m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), ISA: "
            f"{', '.join(features)}; TF intra/inter-op threads "
            f"{m['tf_intra_op_threads'] or 'default'}/{m['tf_inter_op_threads'] or 'default'}, "
            f"LiteRT 1 thread; TensorFlow {m['tensorflow']}, Python {m['python']}")


def interleaved_medians(steps: Dict[str, Callable[[], None]], iterations: int,
                        repeats: int) -> Dict[str, float]:
    """Median seconds per call of each function, timed in alternating rounds.

    Alternating the candidates round by round lets slow drifts of the machine (other load,
    frequency changes) hit all of them alike, so their ratio is trustworthy.

    Args:
      steps: name -> a function doing one unit of work (one training step, one inference).
      iterations: calls per timed round.
      repeats: rounds per function.

    Returns:
      name -> median over rounds of the mean seconds per call.
    """
    rounds: Dict[str, List[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            began = time.perf_counter()
            for _ in range(iterations):
                step()
            rounds[name].append((time.perf_counter() - began) / iterations)
    return {name: statistics.median(times) for name, times in rounds.items()}


def load_or_exit(prog: str, load: Callable[[], object]):
    """Runs ``load`` (a dataset load); a `graph_models.errors.GraphModelsError` becomes one
    line on stderr and ``SystemExit(1)``, as in every command of the toolkit."""
    from graph_models.errors import GraphModelsError
    try:
        return load()
    except GraphModelsError as e:
        print(f'{prog}: error: {e}', file=sys.stderr)
        raise SystemExit(1) from None


def has_bf16() -> bool:
    """Whether this CPU computes bfloat16 products natively (avx512_bf16 or amx_bf16) and
    oneDNN, whose rewrite mixed_bfloat16 is, is on."""
    from graph_models.nets import precision as precision_lib
    return bool(cpu_info(read_cpuinfo() or '')['bf16']) and precision_lib.onednn_enabled()


def section_cli(prog: str, description: str, argv, add_arguments=None):
    """The command line of a single-section bench command (``python -m bench.process``,
    ``bench.steps_per_run``): ``--model``, ``--dataset``, ``--data-dir``, ``--epochs``,
    ``--rounds``, ``--quick`` and the command's own (``add_arguments(parser)``).

    Returns:
      ``(args, data)``: the parsed flags (``--quick``: epochs and rounds set to 1) and the
      dataset (``--quick``: tiny random data), a bad data folder ending in one line.
    """
    import argparse

    from bench.__main__ import load_data
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', default='mlp', choices=['mlp', 'cnn'])
    parser.add_argument('--dataset', default='fashion_mnist', choices=['mnist', 'fashion_mnist'])
    parser.add_argument('--data-dir', default=None)
    parser.add_argument('--epochs', type=int, default=5)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--quick', action='store_true',
                        help='tiny random data, one epoch, one round (smoke test)')
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.rounds < 1:
        parser.error('--epochs and --rounds must be at least 1')
    if args.quick:
        args.epochs = args.rounds = 1
    return args, load_or_exit(prog, lambda: load_data(args.quick, args.dataset, args.data_dir))


def results_folder(folder: Optional[str], quick: bool) -> str:
    """Where a run writes: ``folder`` (default `RESULTS_DIR`), or its ``quick`` subfolder."""
    folder = folder or RESULTS_DIR
    return os.path.join(folder, QUICK_SUBFOLDER) if quick else folder


def check_writable(folder: str, probe_bytes: int = 256 * 1024) -> None:
    """Raises OSError unless ``folder`` can be created and take ``probe_bytes`` more."""
    os.makedirs(folder, exist_ok=True)
    probe = os.path.join(folder, '.bench-probe')
    try:
        atomic_write(probe, bytes(probe_bytes))
    finally:
        if os.path.exists(probe):
            os.unlink(probe)


def write_results(results: Dict, markdown: str, folder: str) -> str:
    """Writes ``<date-time>.json`` and ``.md`` (never replacing a file); returns the JSON path.

    Both or neither: if the ``.md`` cannot be written, the new ``.json`` is removed again.
    """
    os.makedirs(folder, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H%M%SZ')
    name, n = stamp, 1
    while os.path.exists(os.path.join(folder, f'{name}.json')):
        n += 1
        name = f'{stamp}-{n}'
    path = os.path.join(folder, f'{name}.json')
    atomic_write(path, (json.dumps(results, indent=2) + '\n').encode())
    try:
        atomic_write(os.path.join(folder, f'{name}.md'), markdown.encode())
    except OSError:
        os.unlink(path)
        raise
    return path
