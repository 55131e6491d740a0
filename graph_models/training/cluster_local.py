"""``graph-models cluster-local``: a whole TF cluster as subprocesses on 127.0.0.1.

Starts ``ps`` parameter servers and ``workers`` workers, each running ``graph-models train``
with a generated cluster spec on free loopback ports. It streams their output prefixed with the
task (``[worker0] ...``), restarts a task that fails (a bounded number of times; the restarted
task rejoins the run, see `run_cluster_local`), and stops every task when the chief has
finished and the others are done. No process is left behind, whatever happens: the tasks
share one process group, get a parent-death signal and watch their parent, so they also end
when ``cluster-local`` itself is killed (SIGINT, SIGTERM or SIGKILL).
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional, TextIO

from graph_models.errors import ConfigError, GraphModelsError


class ClusterError(GraphModelsError):
    """A task of the local cluster failed (the others were stopped)."""


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


def describe_exit(code: int) -> str:
    """``exited with status 1`` / ``killed by SIGKILL`` for a ``Popen.returncode``."""
    if code < 0:
        try:
            return f'killed by {signal.Signals(-code).name}'
        except ValueError:
            return f'killed by signal {-code}'
    return f'exited with status {code}'


class EventLog:
    """``<run>/cluster_events.jsonl``: one JSON line per task restart.

    Events wait in memory until the chief has created the run folder (cluster-local never
    creates it: a folder it made would not be the chief's to remove after a failed start).

    Args:
      folder: the run's checkpoint folder, or None (events are then only kept in memory).
    """

    FILE = 'cluster_events.jsonl'

    def __init__(self, folder: Optional[str]):
        self.folder = folder
        self.events: List[dict] = []
        self._written = 0

    def add(self, **event) -> None:
        self.events.append(event)
        self.flush()

    def flush(self) -> None:
        if self.folder is None or not os.path.isdir(self.folder) or \
                self._written == len(self.events):
            return
        with open(os.path.join(self.folder, self.FILE), 'a') as f:
            for event in self.events[self._written:]:
                f.write(json.dumps(event) + '\n')
        self._written = len(self.events)


def _checkpoint_step(folder: Optional[str]) -> Optional[int]:
    """The global step of the run's latest checkpoint, or None."""
    from graph_models._tf import tf
    from graph_models.errors import CheckpointError
    from graph_models.training.loop import checkpoint_global_step
    if folder is None or not os.path.isdir(folder):
        return None
    latest = tf.train.latest_checkpoint(folder)
    try:
        return checkpoint_global_step(latest) if latest else None
    except CheckpointError:
        return None


_GLOBAL_STEP = re.compile(r'global step (\d+)')
_EXCEPTION = re.compile(r'[\w.]*(Error|Exception): ')  # A traceback's last line.


class _Tasks:
    """The task processes of one local cluster, their output threads and what they said.

    Args:
      spec: the cluster spec (JSON bytes) each task reads from a pipe.
      args: the ``train`` arguments of every task.
      env: the tasks' environment.
      out: where the prefixed output goes.
    """

    def __init__(self, spec: bytes, args: List[str], env: Dict[str, str], out: TextIO):
        self.spec, self.args, self.env, self.out = spec, args, env, out
        self.procs: Dict[str, subprocess.Popen] = {}
        self.threads: List[threading.Thread] = []
        self.last_error: Dict[str, str] = {}
        self.global_step = 0  # The largest global step any task reported.
        self.lock = threading.Lock()
        self.group: Optional[int] = None  # Tasks share one process group.

    def start(self, name: str, job: str, index: int, life: int) -> None:
        """Starts task ``name``; a restart (``life`` > 0) resumes the run (``--resume``)."""
        from graph_models.training.distributed import LIFE_ENV  # Loaded with local_cluster already.
        args = self.args
        if life:
            args = [a for a in args if a not in ('--overwrite', '--resume')] + ['--resume']
        env = dict(self.env, **{LIFE_ENV: str(life)})
        read_end, write_end = os.pipe()
        try:
            os.write(write_end, self.spec)  # A few hundred bytes: fits the pipe's buffer.
            os.close(write_end)
            command = [sys.executable, '-m', 'graph_models', 'train', *args, '--cluster-spec',
                       f'/dev/fd/{read_end}', '--job-name', job, '--task-index', str(index),
                       '--no-progress']
            try:
                proc = subprocess.Popen(
                    command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                    env=env, pass_fds=(read_end,),
                    process_group=0 if self.group is None else self.group)
            except PermissionError:  # Every task of the old group has gone: a new group.
                proc = subprocess.Popen(
                    command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                    env=env, pass_fds=(read_end,), process_group=0)
                self.group = proc.pid
        finally:
            os.close(read_end)
        if self.group is None:
            self.group = proc.pid
        self.procs[name] = proc
        self.last_error.pop(name, None)
        thread = threading.Thread(target=self._stream, args=(name, proc.stdout), daemon=True)
        thread.start()
        self.threads.append(thread)

    def _stream(self, name: str, stream) -> None:
        for line in stream:
            with self.lock:
                self.out.write(f'[{name}] {line}')
                self.out.flush()
                if ': error: ' in line or _EXCEPTION.match(line):
                    self.last_error[name] = line.strip()
                steps = _GLOBAL_STEP.findall(line)
                if steps:
                    self.global_step = max(self.global_step, *map(int, steps))

    def kill(self, names: List[str]) -> None:
        """SIGKILLs these tasks and waits for them (they are about to be restarted)."""
        for name in names:
            if self.procs[name].poll() is None:
                self.procs[name].kill()
        for name in names:
            self.procs[name].wait()

    def stop(self) -> None:
        _stop(self.procs, group=self.group)
        for thread in self.threads:
            thread.join(timeout=5)


def run_cluster_local(train_args: List[str], *, workers: int = 2, ps: int = 1,
                      timeout: Optional[float] = None, max_restarts: int = 3,
                      run_folder: Optional[str] = None,
                      out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Runs ``graph-models train TRAIN_ARGS`` as a local cluster; returns 0 on success.

    A task that fails is restarted, at most ``max_restarts`` times per task. A lost worker
    (not the chief) is restarted alone and rejoins where its step count on the ps says. A lost
    chief or ps takes the run back to the chief's latest checkpoint, so every task is
    restarted and resumes from it (see `graph_models.training.distributed`). A task that exits with
    status 2 (a usage or configuration error) is not restarted; nor is any task of a
    ``--sync-replicas`` run (``SyncReplicasOptimizer``'s token queue does not survive a lost
    task). Each restart is a line on ``err`` and an event in ``<run>/cluster_events.jsonl``.

    Args:
      train_args: the ``train`` arguments (a leading ``train`` is accepted).
      workers: number of worker tasks (worker 0 is the chief).
      ps: number of parameter-server tasks.
      timeout: seconds the whole run may take (None: no limit).
      max_restarts: restarts allowed per task (0: the first failure stops the cluster).
      run_folder: the run's checkpoint folder, where ``cluster_events.jsonl`` goes (None: the
        events are not written to a file).
      out: where the prefixed output goes.
      err: where the restart lines go.

    Raises:
      ConfigError: on bad counts or cluster flags among ``train_args``.
      ClusterError: when a task fails more than ``max_restarts`` times, cannot be restarted,
        or the timeout passes (every task is stopped first).
    """
    # Imports TensorFlow: not at start-up.
    from graph_models.training.distributed import local_cluster
    if workers < 1 or ps < 1:
        raise ConfigError(f'a cluster needs at least 1 worker and 1 ps, got {workers} and {ps}')
    if max_restarts < 0:
        raise ConfigError(f'max restarts must be 0 or more, got {max_restarts}')
    args = list(train_args)
    if args[:1] == ['--']:
        args = args[1:]
    if args[:1] == ['train']:
        args = args[1:]
    clashing = {'--cluster-spec', '--job-name', '--task-index'} & set(args)
    if clashing:
        raise ConfigError(f'cluster-local sets {", ".join(sorted(clashing))} itself; drop them')
    restartable = '--sync-replicas' not in args
    events = EventLog(run_folder)
    # The spec reaches each task through an inherited pipe (--cluster-spec /dev/fd/N): no
    # temporary folder that a killed cluster-local could leave behind.
    spec = json.dumps(local_cluster(workers, ps)).encode()
    env = dict(os.environ)
    env.pop('TF_CONFIG', None)
    env['PYTHONUNBUFFERED'] = '1'
    env[PARENT_PID_ENV] = str(os.getpid())
    # Parameter servers and the chief first: their loss restarts everything.
    tasks = {f'ps{i}': ('ps', i) for i in range(ps)}
    tasks.update({f'worker{i}': ('worker', i) for i in range(workers)})
    restarts = {name: 0 for name in tasks}  # Restarts each task's own failures caused.
    lives = {name: 0 for name in tasks}  # Restarts of each task, whatever the cause.
    cluster = _Tasks(spec, args, env, out)
    began = time.monotonic()
    try:
        for name, (job, index) in tasks.items():
            cluster.start(name, job, index, life=0)
        workers_names = [f'worker{i}' for i in range(workers)]
        while True:
            failed = next(((name, code) for name, proc in cluster.procs.items()
                           if (code := proc.poll()) not in (None, 0)), None)
            if failed is not None:
                name, code = failed
                time.sleep(0.2)  # Let its output thread catch its last line.
                cause = describe_exit(code)
                if cluster.last_error.get(name):
                    cause += f' ({cluster.last_error[name]})'
                if code == 2:
                    raise ClusterError(f'{name} {cause}; a restart cannot fix a usage or '
                                       'configuration error: stopped the whole cluster')
                if not restartable:
                    raise ClusterError(f'{name} {cause}; a --sync-replicas run cannot survive a '
                                       'lost task (its token queues are gone): stopped the '
                                       'whole cluster')
                if restarts[name] >= max_restarts:
                    raise ClusterError(
                        f'{name} failed after {restarts[name]} restart(s) (--max-restarts '
                        f'{max_restarts}); last error: {cause}; stopped the whole cluster')
                restarts[name] += 1
                alone = name != 'worker0' and not name.startswith('ps')
                again = [name] if alone else list(tasks)
                if not alone:
                    cluster.kill(again)
                    try:
                        os.killpg(cluster.group, 9)  # Anything the tasks started themselves.
                    except (OSError, TypeError):
                        pass
                    cluster.group = None
                saved = _checkpoint_step(run_folder)
                # The last global step a task printed, or the checkpoint's if that is later.
                step = max(cluster.global_step, saved or 0)
                scope = ('alone' if alone else
                         f'with every task, from the latest checkpoint (global step {saved})')
                err.write(f'cluster-local: restart {restarts[name]}/{max_restarts} of {name} '
                          f'({cause}, global step {step}): restarting it {scope}\n')
                err.flush()
                for task in again:
                    events.add(time=round(time.time(), 3), task=task,
                               cause=cause if task == name else f'{name} lost',
                               global_step=step, checkpoint_step=saved,
                               restart=restarts[name], of=name)
                    lives[task] += 1
                    cluster.start(task, *tasks[task], life=lives[task])
                continue
            events.flush()
            if all(cluster.procs[w].poll() == 0 for w in workers_names):
                if all(proc.poll() == 0 for proc in cluster.procs.values()):
                    return 0
                # Workers are done: the ps tasks exit once they have seen every worker's
                # done message; give them a moment.
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and any(p.poll() is None
                                                           for p in cluster.procs.values()):
                    time.sleep(0.1)
                if any(p.poll() is None for p in cluster.procs.values()):
                    raise ClusterError('the parameter servers did not stop after the workers '
                                       'finished; stopped them')
                continue
            if timeout is not None and time.monotonic() - began > timeout:
                raise ClusterError(f'the cluster did not finish within {timeout:.0f} s; '
                                   'stopped every task')
            time.sleep(0.1)
    finally:
        cluster.stop()
        events.flush()
