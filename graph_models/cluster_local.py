"""``graph-models cluster-local``: a whole TF cluster as subprocesses on 127.0.0.1.

Starts ``ps`` parameter servers and ``workers`` workers, each running ``graph-models train``
with a generated cluster spec on free loopback ports. It streams their output prefixed with the
task (``[worker0] ...``), and stops every task when the chief has finished and the others are
done, or at once when any task fails. No process is left behind, whatever happens: the tasks
share one process group, get a parent-death signal and watch their parent, so they also end
when ``cluster-local`` itself is killed (SIGINT, SIGTERM or SIGKILL).
"""

import json
import os
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional, TextIO

from graph_models.errors import ConfigError, GraphModelsError


class ClusterError(GraphModelsError):
    """A task of the local cluster failed (the others were stopped)."""


def _stream(name: str, stream, out: TextIO, lock: threading.Lock) -> None:
    for line in stream:
        with lock:
            out.write(f'[{name}] {line}')
            out.flush()


PARENT_PID_ENV = 'GRAPH_MODELS_CLUSTER_PARENT'
_PR_SET_PDEATHSIG = 1


def watch_parent(parent_pid: int, poll_seconds: float = 0.5) -> None:
    """Makes this cluster task die with the ``cluster-local`` process that started it.

    On Linux the kernel sends SIGKILL when the parent dies (``prctl(PR_SET_PDEATHSIG)``), even
    if the parent itself was killed with SIGKILL; elsewhere, and as a second line, a daemon
    thread polls the parent process id and leaves when the task has been orphaned.

    Args:
      parent_pid: the process id of the ``cluster-local`` process.
      poll_seconds: how often the thread checks.
    """
    if sys.platform.startswith('linux'):
        import ctypes
        import signal
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # The polling thread below still watches.
    if os.getppid() != parent_pid:  # The parent died before prctl took effect.
        os._exit(1)

    def poll():
        while True:
            time.sleep(poll_seconds)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=poll, name='watch-parent', daemon=True).start()


def _stop(procs: Dict[str, subprocess.Popen], grace: float = 5.0,
          group: Optional[int] = None) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + grace
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if group is not None:  # Anything the tasks started themselves.
        try:
            os.killpg(group, 9)
        except OSError:
            pass


def run_cluster_local(train_args: List[str], *, workers: int = 2, ps: int = 1,
                      timeout: Optional[float] = None, out: TextIO = sys.stdout) -> int:
    """Runs ``graph-models train TRAIN_ARGS`` as a local cluster; returns 0 on success.

    Args:
      train_args: the ``train`` arguments (a leading ``train`` is accepted).
      workers: number of worker tasks (worker 0 is the chief).
      ps: number of parameter-server tasks.
      timeout: seconds the whole run may take (None: no limit).
      out: where the prefixed output goes.

    Raises:
      ConfigError: on bad counts or cluster flags among ``train_args``.
      ClusterError: when a task fails or the timeout passes (every task is stopped first).
    """
    from graph_models.distributed import local_cluster  # Imports TensorFlow: not at start-up.
    if workers < 1 or ps < 1:
        raise ConfigError(f'a cluster needs at least 1 worker and 1 ps, got {workers} and {ps}')
    args = list(train_args)
    if args[:1] == ['--']:
        args = args[1:]
    if args[:1] == ['train']:
        args = args[1:]
    clashing = {'--cluster-spec', '--job-name', '--task-index'} & set(args)
    if clashing:
        raise ConfigError(f'cluster-local sets {", ".join(sorted(clashing))} itself; drop them')
    # The spec reaches each task through an inherited pipe (--cluster-spec /dev/fd/N): no
    # temporary folder that a killed cluster-local could leave behind.
    spec = json.dumps(local_cluster(workers, ps)).encode()
    env = dict(os.environ)
    env.pop('TF_CONFIG', None)
    env['PYTHONUNBUFFERED'] = '1'
    env[PARENT_PID_ENV] = str(os.getpid())
    tasks = [('ps', i) for i in range(ps)] + [('worker', i) for i in range(workers)]
    procs: Dict[str, subprocess.Popen] = {}
    threads = []
    lock = threading.Lock()
    began = time.monotonic()
    group = None  # All tasks share one process group, led by the first.
    try:
        for job, index in tasks:
            name = f'{job}{index}'
            read_end, write_end = os.pipe()
            try:
                os.write(write_end, spec)  # A few hundred bytes: fits the pipe's buffer.
                os.close(write_end)
                procs[name] = subprocess.Popen(
                    [sys.executable, '-m', 'graph_models', 'train', *args, '--cluster-spec',
                     f'/dev/fd/{read_end}', '--job-name', job, '--task-index', str(index),
                     '--no-progress'],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                    pass_fds=(read_end,), process_group=0 if group is None else group)
            finally:
                os.close(read_end)
            if group is None:
                group = procs[name].pid
            thread = threading.Thread(target=_stream, args=(name, procs[name].stdout, out, lock),
                                      daemon=True)
            thread.start()
            threads.append(thread)
        workers_names = [f'worker{i}' for i in range(workers)]
        while True:
            for name, proc in procs.items():
                code = proc.poll()
                if code not in (None, 0):
                    raise ClusterError(f'{name} exited with status {code}; stopped the whole '
                                       'cluster (see its output above)')
            if all(procs[w].poll() == 0 for w in workers_names):
                if all(proc.poll() == 0 for proc in procs.values()):
                    return 0
                # Workers are done: the ps tasks exit once they have seen every worker's
                # done message; give them a moment.
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and any(p.poll() is None
                                                           for p in procs.values()):
                    time.sleep(0.1)
                if any(p.poll() is None for p in procs.values()):
                    raise ClusterError('the parameter servers did not stop after the workers '
                                       'finished; stopped them')
                continue
            if timeout is not None and time.monotonic() - began > timeout:
                raise ClusterError(f'the cluster did not finish within {timeout:.0f} s; '
                                   'stopped every task')
            time.sleep(0.1)
    finally:
        _stop(procs, group=group)
        for thread in threads:
            thread.join(timeout=5)
