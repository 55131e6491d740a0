"""Shared benchmark helpers: machine info, interleaved repeated timing, result files."""

import datetime
import json
import os
import platform
import statistics
import time
from typing import Callable, Dict, List

from graph_models.fileio import atomic_write

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')


def machine_info() -> Dict:
    """CPU model, core count, Python and TensorFlow versions of this machine."""
    from graph_models._tf import tf
    cpu = platform.processor() or 'unknown'
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return {'cpu': cpu, 'cores': os.cpu_count(), 'python': platform.python_version(),
            'tensorflow': tf.__version__, 'platform': platform.platform()}


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


def check_writable(folder: str, probe_bytes: int = 256 * 1024) -> None:
    """Raises OSError unless ``folder`` can be created and take ``probe_bytes`` more."""
    os.makedirs(folder, exist_ok=True)
    probe = os.path.join(folder, '.bench-probe')
    try:
        atomic_write(probe, bytes(probe_bytes))
    finally:
        if os.path.exists(probe):
            os.unlink(probe)


def write_results(results: Dict, markdown: str, folder: str = RESULTS_DIR) -> str:
    """Writes ``<date>.json`` and ``<date>.md`` into ``folder``; returns the JSON path.

    Both or neither: if the ``.md`` cannot be written, the new ``.json`` is removed again.
    """
    os.makedirs(folder, exist_ok=True)
    stamp = datetime.datetime.now().strftime('%Y-%m-%d')
    path = os.path.join(folder, f'{stamp}.json')
    atomic_write(path, (json.dumps(results, indent=2) + '\n').encode())
    try:
        atomic_write(os.path.join(folder, f'{stamp}.md'), markdown.encode())
    except OSError:
        os.unlink(path)
        raise
    return path
