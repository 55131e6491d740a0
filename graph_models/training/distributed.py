"""Scale-out on TensorFlow's own distributed runtime: parameter servers, between-graph replication.

Each process of a cluster starts a ``tf.distribute.Server`` for its task of a
``tf.compat.v1.train.ClusterSpec`` (from ``--cluster-spec cluster.json`` or the standard
``TF_CONFIG`` variable; a separate ``chief`` job, as a Kubeflow ``TFJob`` with a Chief replica
sets it, becomes worker 0 by `fold_chief`):

- **ps** tasks hold the variables and serve until every worker has reported that it is done
  (through a shared ``FIFOQueue`` on each ps), then exit.
- **workers** build the same training graph under ``replica_device_setter`` (variables on the
  ps tasks, computation local; batches fed per step) and train in the loop of
  single-process training (`graph_models.training.loop.TrainingLoop`) on a
  ``MonitoredTrainingSession``.
  Worker 0 is the chief: it claims the run folder with the single-process policy (run name,
  lock, ``overwrite``), initializes the variables and writes the checkpoints,
  ``run_config.json`` and the TensorBoard summaries, so its checkpoints are ordinary ones that
  ``freeze`` and ``export`` take unchanged. Each worker reads its own shard of the training
  data (every ``num_workers``-th example). Updates are asynchronous by default;
  ``sync_replicas`` wraps Adam in ``SyncReplicasOptimizer`` (one update per round of all
  workers' gradients).

Global step: asynchronous training ends when the global step, which every worker's update
increments, reaches the sum of all workers' steps (``epochs`` passes over each shard).
Synchronous training ends after ``epochs`` passes over a shard counted in aggregated updates;
since stale gradients are dropped, workers go on past their ``epochs`` passes until then.

When a task dies, TF's runtime does not recover it; a supervisor restarts it
(``graph-models cluster-local``, a Kubernetes ``TFJob`` with ``restartPolicy: OnFailure``), and
the restarted task rejoins the same run:

- Each worker's count of the steps it has run lives next to the global step, in a variable
  ``cluster/worker<i>_steps`` on a ps, incremented by the same ``session.run`` as the update.
  A restarted worker reads it and continues its shard where it stopped (the shard's epoch
  orders are a pure function of the seed), so no example is trained twice in an epoch beyond
  the one batch a kill can interrupt.
- A restarted chief (``resume``) claims its run folder again
  (`graph_models.training.loop.RunFolders`: the same lock, no new folder, ``run_config.json``
  checked against the run) and
  ``MonitoredTrainingSession`` restores its latest checkpoint: variables, global step and the
  workers' step counts together. The counts and the global step then move back to the
  checkpoint, so every worker must restart with it to read them again (``cluster-local``
  restarts every task when the chief or a ps is lost).
- Asynchronous runs end exactly at the global step target: workers stop there
  (``StopAtStepHook``), and if a checkpoint caught the counts and the global step a step apart,
  the chief makes up the few missing steps once the others are done.
"""

import contextlib
import dataclasses
import itertools
import json
import os
import signal
import sys
import time
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np

from graph_models import data as data_lib
from graph_models.nets import graphs
from graph_models._tf import tf, v1
from graph_models.errors import ConfigError
from graph_models.training.scoring import Evaluator
from graph_models.training.loop import (MonitoredSession, RunFolders, TrainingLoop,
                                         check_training_arguments)
from graph_models.training.run_config import RunConfig, write_run_config
from graph_models.training.tensorboard import add_training_summaries

JOBS = ('ps', 'worker')

# Test hook, never set in normal use: "worker1@30" makes task worker1 SIGKILL itself once the
# global step reaches 30 in its first life, "worker1@30@every" in every life.
TEST_KILL_ENV = 'GRAPH_MODELS_TEST_KILL_AT'
# How many times the supervisor (cluster-local) has restarted this task: 0 in its first life.
LIFE_ENV = 'GRAPH_MODELS_CLUSTER_LIFE'


def kill_step(spec: str, task: str, life: int) -> Optional[int]:
    """The global step at which the `TEST_KILL_ENV` test hook kills ``task``, or None.

    Args:
      spec: the hook's value, ``TASK@STEP`` (first life only) or ``TASK@STEP@every``.
      task: this task's name (``worker1``).
      life: restarts this task has had (`LIFE_ENV`).

    Raises:
      ConfigError: on a malformed ``spec``.
    """
    if not spec:
        return None
    parts = spec.split('@')
    if len(parts) not in (2, 3) or not parts[1].isdigit() or parts[2:] not in ([], ['every']):
        raise ConfigError(f'{TEST_KILL_ENV}={spec!r} is not TASK@STEP or TASK@STEP@every; '
                          'unset it (it is a test hook)')
    if parts[0] != task or (life > 0 and parts[2:] != ['every']):
        return None
    return int(parts[1])


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    """This process's place in a cluster.

    Attributes:
      cluster: job name -> list of ``host:port`` addresses (``ps`` and ``worker``).
      job_name: ``ps`` or ``worker``.
      task_index: index of this task within its job.
    """

    cluster: Mapping[str, List[str]]
    job_name: str
    task_index: int

    def __post_init__(self):
        for job in JOBS:
            addresses = self.cluster.get(job)
            if not addresses or not isinstance(addresses, list):
                raise ConfigError(f'the cluster spec needs a non-empty "{job}" list of '
                                  'host:port addresses')
        unknown = set(self.cluster) - set(JOBS)
        if unknown:
            raise ConfigError(f'the cluster spec has jobs {sorted(unknown)}; only ps and worker '
                              'are used')
        if self.job_name not in JOBS:
            raise ConfigError(f'job name must be ps or worker, got {self.job_name!r}')
        if not 0 <= self.task_index < len(self.cluster[self.job_name]):
            raise ConfigError(f'task index {self.task_index} is out of range: the cluster has '
                              f'{len(self.cluster[self.job_name])} {self.job_name} task(s)')

    @property
    def num_workers(self) -> int:
        return len(self.cluster['worker'])

    @property
    def num_ps(self) -> int:
        return len(self.cluster['ps'])

    @property
    def is_chief(self) -> bool:
        return self.job_name == 'worker' and self.task_index == 0

    @property
    def name(self) -> str:
        return f'{self.job_name}{self.task_index}'

    def spec(self) -> v1.train.ClusterSpec:
        return v1.train.ClusterSpec(dict(self.cluster))

    @classmethod
    def from_sources(cls, cluster_spec: Optional[str], job_name: Optional[str],
                     task_index: Optional[int],
                     environ: Mapping[str, str]) -> Optional['ClusterConfig']:
        """From ``--cluster-spec``/``--job-name``/``--task-index``, else ``TF_CONFIG``.

        Returns:
          The `ClusterConfig`, or None when neither is given (single-process training).

        Raises:
          ConfigError: on a missing, unreadable or inconsistent cluster description.
        """
        if cluster_spec is not None:
            if job_name is None or task_index is None:
                raise ConfigError('a cluster spec needs a job name (ps or worker) and a task '
                                  'index',
                                  cli_message='--cluster-spec needs --job-name {ps,worker} and '
                                              '--task-index')
            try:
                with open(cluster_spec) as f:
                    cluster = json.load(f)
            except OSError as e:
                raise ConfigError(f'cannot read cluster spec {cluster_spec}: {e.strerror}') \
                    from None
            except ValueError as e:
                raise ConfigError(f'cluster spec {cluster_spec} is not JSON ({e})') from None
            if isinstance(cluster, dict) and 'cluster' in cluster:
                cluster = cluster['cluster']  # A TF_CONFIG-style file.
            if not isinstance(cluster, dict):
                raise ConfigError(f'cluster spec {cluster_spec} must be a JSON object such as '
                                  '{"ps": ["host:port"], "worker": ["host:port", ...]}')
            return cls(*fold_chief(cluster, job_name, task_index))
        if job_name is not None or task_index is not None:
            raise ConfigError('a job name and task index need a cluster spec (or TF_CONFIG)',
                              cli_message='--job-name and --task-index need --cluster-spec (or '
                                          'TF_CONFIG)')
        if not environ.get('TF_CONFIG'):
            return None
        try:
            config = json.loads(environ['TF_CONFIG'])
            cluster, job_name, task_index = fold_chief(
                config['cluster'], config['task']['type'], int(config['task']['index']))
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f'TF_CONFIG is not a valid cluster description ({e}); expected '
                              '{"cluster": {...}, "task": {"type": "worker", "index": 0}}') \
                from None
        return cls(cluster, job_name, task_index)


def fold_chief(cluster: Mapping[str, List[str]], job_name: str,
               task_index: int) -> Tuple[Dict[str, List[str]], str, int]:
    """A cluster with a separate ``chief`` job (TF_CONFIG of a Kubeflow ``TFJob`` with a Chief
    replica) as ours: the chief becomes worker 0 and worker ``i`` becomes worker ``i + 1``.

    Args:
      cluster: job name -> addresses, possibly with a ``chief`` job of one task.
      job_name: this task's job (``chief``, ``worker`` or ``ps``).
      task_index: this task's index in it.

    Returns:
      ``(cluster, job_name, task_index)`` with only ``ps`` and ``worker`` jobs.

    Raises:
      ConfigError: a ``chief`` job of other than one task.
    """
    if not isinstance(cluster, dict) or 'chief' not in cluster:
        return cluster, job_name, task_index
    chief = cluster['chief']
    if not isinstance(chief, list) or len(chief) != 1:
        raise ConfigError(f'the cluster\'s "chief" job must have exactly one task, got {chief!r}')
    folded = {job: addresses for job, addresses in cluster.items() if job != 'chief'}
    folded['worker'] = chief + list(folded.get('worker') or [])
    if job_name == 'chief':
        return folded, 'worker', task_index  # ClusterConfig checks the index (0).
    if job_name == 'worker':
        return folded, 'worker', task_index + 1
    return folded, job_name, task_index


def _server(cluster: ClusterConfig):
    return tf.distribute.Server(cluster.spec(), job_name=cluster.job_name,
                                task_index=cluster.task_index, start=True)


def _done_queue(cluster: ClusterConfig, ps_index: int):
    with v1.device(f'/job:ps/task:{ps_index}'):
        return v1.FIFOQueue(cluster.num_workers, tf.int32, shapes=[[]],
                            shared_name=f'graph_models_done_{ps_index}',
                            name=f'done_queue_{ps_index}')


def run_parameter_server(cluster: ClusterConfig, log: Callable[[str], None] = print) -> int:
    """Serves variables until every worker has reported done; returns 0.

    Args:
      cluster: a ``ps`` task's `ClusterConfig`.
      log: progress lines.
    """
    server = _server(cluster)
    log(f'{cluster.name}: serving at {cluster.cluster["ps"][cluster.task_index]}, waiting for '
        f'{cluster.num_workers} worker(s)')
    graph = tf.Graph()
    with graph.as_default():
        wait = _done_queue(cluster, cluster.task_index).dequeue_many(cluster.num_workers)
    # Only its own task: a session that reached the workers would fail (UnavailableError)
    # when a worker is lost and restarted, and the ps with it.
    config = v1.ConfigProto(device_filters=[f'/job:ps/task:{cluster.task_index}'])
    with v1.Session(server.target, graph=graph, config=config) as session:
        session.run(wait)
    # The last worker's enqueue is answered after the dequeue completes: leaving at once
    # closed its socket first (UnavailableError on a worker that had finished).
    time.sleep(1.0)
    log(f'{cluster.name}: all {cluster.num_workers} worker(s) finished')
    return 0


@dataclasses.dataclass
class WorkerResult:
    """What one worker did.

    Attributes:
      task: ``worker0``, ``worker1``, ...
      local_steps: training steps this worker ran.
      global_step: the global step when it stopped.
      shard_examples: size of its training shard.
      checkpoint_dir: the chief's checkpoint folder (None on other workers).
      test_accuracy: the chief's test accuracy of the final checkpoint (None elsewhere).
      seconds: wall time of the training loop.
    """

    task: str
    local_steps: int
    global_step: int
    shard_examples: int
    checkpoint_dir: Optional[str] = None
    test_accuracy: Optional[float] = None
    seconds: float = 0.0


def train_worker(run: RunConfig, data: data_lib.Dataset, cluster: ClusterConfig, *,
                 run_name: Optional[str] = None, log_dir: str = 'logs',
                 checkpoint_dir: str = 'checkpoints', sync_replicas: bool = False,
                 save_every_steps: Optional[int] = None, summary_every_steps: int = 50,
                 keep_checkpoints: int = 5, overwrite: bool = False, resume: bool = False,
                 kill_at_step: Optional[int] = None,
                 log: Callable[[str], None] = print) -> WorkerResult:
    """Trains as one worker of a cluster (between-graph replication).

    The steps run in `graph_models.training.loop.TrainingLoop`, the loop of single-process
    training, on
    a `graph_models.training.loop.MonitoredSession`. The chief claims the run's folders with the
    same
    policy (`graph_models.training.loop.RunFolders`: run name, lock, ``overwrite``).

    Args:
      run: model and hyperparameters (the chief writes them to ``run_config.json``).
      data: the full dataset; this worker takes examples ``task_index::num_workers``.
      cluster: a ``worker`` task's `ClusterConfig`.
      run_name, log_dir, checkpoint_dir: as in `graph_models.training.train.train_and_eval`.
      sync_replicas: synchronous updates with ``SyncReplicasOptimizer``.
      save_every_steps: chief checkpoint interval in global steps (default: one shard epoch).
      summary_every_steps: chief summary interval in global steps.
      keep_checkpoints: checkpoints the chief keeps.
      overwrite: the chief empties the run's folders first (only folders that are runs; see
        `graph_models.training.loop.empty_run_for_overwrite`); other workers ignore it.
      resume: the chief continues the run's latest checkpoint if there is one (its run config
        must match ``run``) and starts the run otherwise, so that a supervisor can restart any
        task with the same command; other workers always rejoin where their step count says.
      kill_at_step: test hook: the task kills itself (SIGKILL) once the global step reaches
        this (None, the default: never).
      log: progress lines.

    Returns:
      The `WorkerResult`.

    Raises:
      ConfigError: a bad run name or cadence, data of another dataset, or (chief) a checkpoint
        folder that already holds a checkpoint without ``overwrite``, or one in use by another
        process.
      TrainingError: if the loss becomes NaN or infinite (the message names the task and the
        global step).
    """
    if cluster.job_name != 'worker':
        raise ConfigError('train_worker runs on worker tasks; ps tasks run run_parameter_server')
    check_training_arguments(run, data, keep_checkpoints=keep_checkpoints,
                             summary_every_steps=summary_every_steps,
                             save_every_steps=save_every_steps)
    run_name = run.run_name(run_name)
    folders = RunFolders(checkpoint_dir, log_dir, run_name)  # Checks the name on every task.
    # Only the chief writes into the run's folders, so only the chief claims them.
    with folders if cluster.is_chief else contextlib.nullcontext():
        if cluster.is_chief:
            resuming = resume and tf.train.latest_checkpoint(folders.checkpoint_dir) is not None
            folders.prepare(run, resume=resuming, overwrite=overwrite and not resuming)
            if resuming:
                log(f'{cluster.name} (chief): resuming {folders.checkpoint_dir} from '
                    f'{tf.train.latest_checkpoint(folders.checkpoint_dir)}')
            else:
                write_run_config(folders.checkpoint_dir, run)
        return _train_worker(run, data, cluster, folders, sync_replicas=sync_replicas,
                             save_every_steps=save_every_steps,
                             summary_every_steps=summary_every_steps,
                             keep_checkpoints=keep_checkpoints, kill_at_step=kill_at_step,
                             log=log)


def _train_worker(run: RunConfig, data: data_lib.Dataset, cluster: ClusterConfig,
                  folders: RunFolders, *, sync_replicas: bool, save_every_steps: Optional[int],
                  summary_every_steps: int, keep_checkpoints: int,
                  kill_at_step: Optional[int], log: Callable[[str], None]) -> WorkerResult:
    """`train_worker` once the chief holds its run folder."""
    ckpt_dir = folders.checkpoint_dir
    n, i = cluster.num_workers, cluster.task_index
    shape = run.model.input_shape
    shard_x = data_lib.to_float(data.train_images[i::n], shape)
    shard_y = data.train_labels[i::n]
    shard_steps = [data_lib.steps_per_epoch(len(data.train_labels[w::n]), run.batch_size)
                   for w in range(n)]
    last_step = (run.epochs * shard_steps[0] if sync_replicas
                 else run.epochs * sum(shard_steps))

    server = _server(cluster)
    sync_optimizers = []

    def wrap(optimizer):
        sync = v1.train.SyncReplicasOptimizer(optimizer, replicas_to_aggregate=n,
                                              total_num_replicas=n)
        sync_optimizers.append(sync)
        return sync

    worker_device = f'/job:worker/task:{i}'
    device = v1.train.replica_device_setter(cluster=cluster.spec(), worker_device=worker_device)
    graph, t = graphs.build_training_graph(
        run.model, learning_rate=run.learning_rate, seed=run.seed,
        rewrite=run.quantization.training_rewrite() if run.quantization else None,
        device=device,
        wrap_optimizer=wrap if sync_replicas else None)
    with graph.as_default():
        with v1.device(device), v1.name_scope('cluster'):
            # Every worker's step count, checkpointed with the global step (see the module
            # docstring); the graph holds all of them so that every worker builds the same.
            worker_steps = [v1.Variable(np.int64(0), trainable=False, name=f'worker{w}_steps')
                            for w in range(n)]
        with tf.control_dependencies([t.train_op]):
            counted = worker_steps[i].assign_add(1, read_value=False)
        t = dataclasses.replace(t, train_op=counted)
        summary_op = add_training_summaries(t)
        saver = v1.train.Saver(max_to_keep=keep_checkpoints, save_relative_paths=True)
        done = [_done_queue(cluster, p).enqueue(1) for p in range(cluster.num_ps)]
        workers_done = _done_queue(cluster, 0).size()  # Workers that finished their steps.
        # Global variables only: SyncReplicasOptimizer's local_step is a local variable that
        # this worker's own session initializes later.
        uninitialized = v1.report_uninitialized_variables(v1.global_variables())
    hooks = [v1.train.StopAtStepHook(last_step=last_step)]
    if sync_replicas:
        hooks.append(sync_optimizers[0].make_session_run_hook(cluster.is_chief))
    config = v1.ConfigProto(device_filters=['/job:ps', f'/job:worker/task:{i}'])
    if not cluster.is_chief:
        # MonitoredTrainingSession re-checks the chief's initialization only every 30 s;
        # poll for it here instead so that workers start as soon as the variables exist.
        with v1.Session(server.target, graph=graph, config=config) as session:
            while len(session.run(uninitialized)):
                time.sleep(0.1)
    steps = None
    began = time.perf_counter()
    try:
        with graph.as_default(), v1.train.MonitoredTrainingSession(
                master=server.target, is_chief=cluster.is_chief,
                checkpoint_dir=ckpt_dir if cluster.is_chief else None,
                scaffold=v1.train.Scaffold(saver=saver, summary_op=summary_op), hooks=hooks,
                save_checkpoint_steps=save_every_steps or shard_steps[0],
                save_summaries_steps=summary_every_steps,
                summary_dir=os.path.join(folders.log_dir, 'train') if cluster.is_chief else None,
                log_step_count_steps=None, config=config,
                stop_grace_period_secs=10) as session:
            # The session's hooks stop the steps and, on the chief, save and summarize.
            steps = _ClusterSteps(session, t,
                                  checkpoint_dir=ckpt_dir if cluster.is_chief else None,
                                  batch_size=run.batch_size, kill_at_step=kill_at_step)
            loop = TrainingLoop(steps, batch_size=run.batch_size, name=cluster.name)
            # A restarted worker (or every worker after the chief restored a checkpoint) goes
            # on from its step count; plain session.run: the hooks need no say in a read.
            done_steps, steps.global_step = session.run_step_fn(
                lambda step_context: step_context.session.run([worker_steps[i],
                                                               t.global_step]))
            first_epoch, skip = divmod(int(done_steps), shard_steps[i])
            loop.step = int(done_steps)
            if done_steps:
                log(f'{cluster.name}: rejoining at local step {done_steps} (shard epoch '
                    f'{first_epoch + 1}, batch {skip + 1}), global step {steps.global_step}')
            # Asynchronous: each worker makes exactly its shard's passes. Synchronous: stale
            # gradients are dropped, so workers keep contributing until the global step reaches
            # the target; stopping early would leave the others waiting for a partner gradient.
            epochs = (itertools.count(first_epoch) if sync_replicas
                      else range(first_epoch, run.epochs))
            for epoch in epochs:
                began_epoch = time.perf_counter()
                # The batches of data.iterate_batches(seed=run.seed + i).
                order = data_lib.epoch_order(len(shard_y), run.seed + i, epoch)
                if epoch == first_epoch:
                    order = order[skip * run.batch_size:]
                steps.start_epoch(shard_x, shard_y, order)
                loop.run_epoch(len(order), began=began_epoch)
                log(f'{cluster.name}: shard epoch {epoch + 1} done, '
                    f'{loop.step} local steps, global step {steps.global_step}')
                if session.should_stop():
                    break
            if cluster.is_chief and not sync_replicas:
                # The chief's final checkpoint must include the other workers' updates: wait
                # until the global step reaches the target (a batch is fed because the summary
                # hook may evaluate the summaries on this run).
                feed = {t.model.inputs: shard_x[:run.batch_size],
                        t.labels: shard_y[:run.batch_size]}
                # Also stop waiting once every other worker has finished: then no update can
                # come any more, whatever the global step says.
                while not session.should_stop():
                    steps.global_step, finished = session.run([t.global_step, workers_done],
                                                              feed)
                    if finished >= cluster.num_workers - 1:
                        break
                    time.sleep(0.05)
                # A checkpoint restored after a lost task may hold the step counts a step or
                # two behind the global step or ahead of it: ahead, the workers stopped at the
                # target; behind, the chief makes up the missing steps from its shard's next
                # epoch so that the run ends exactly at the target.
                missing = last_step - int(steps.global_step)
                if missing > 0 and not session.should_stop():
                    log(f'{cluster.name}: {missing} step(s) short of global step {last_step} '
                        'after a restore; making them up')
                    steps.start_epoch(shard_x, shard_y, data_lib.epoch_order(
                        len(shard_y), run.seed + i, run.epochs)[:missing * run.batch_size])
                    loop.run_epoch(min(missing * run.batch_size, len(shard_y)),
                                   began=time.perf_counter())
    except tf.errors.CancelledError:
        if not sync_replicas:
            raise
        # SyncReplicasOptimizer's chief queue runner still waits for gradients when the
        # session closes, and TF cancels it; training had ended and the final checkpoint is
        # saved before that (closing the token queue also releases waiting workers).
        log(f'{cluster.name}: synchronous queue runner cancelled at shutdown (expected)')
    seconds = time.perf_counter() - began
    # The same device filters: a session that waited to reach every task would hang on a
    # worker that has already finished and gone.
    with v1.Session(server.target, graph=graph, config=config) as session:
        try:
            session.run(done)
        except tf.errors.UnavailableError:
            # A ps that has gone either had every done message or was lost (and its
            # supervisor restarts the cluster); training is over either way.
            log(f'{cluster.name}: a ps had gone when this worker reported done')
    local_steps = loop.step if steps is not None else 0
    global_step = steps.global_step if steps is not None else 0
    result = WorkerResult(cluster.name, local_steps, int(global_step), len(shard_y),
                          seconds=seconds)
    if cluster.is_chief:
        checkpoint = tf.train.latest_checkpoint(ckpt_dir)
        evaluator = Evaluator.for_run(run)
        global_step = evaluator.restore(checkpoint)
        test_x = data_lib.to_float(data.test_images, shape)
        _, accuracy = evaluator.evaluate(test_x, data.test_labels)
        evaluator.close()
        result.checkpoint_dir, result.test_accuracy = ckpt_dir, accuracy
        result.global_step = global_step
        log(f'{cluster.name} (chief): checkpoint {checkpoint}, global step {global_step}, '
            f'test accuracy {accuracy:.4f}')
    return result


class _ClusterSteps(MonitoredSession):
    """`graph_models.training.loop.MonitoredSession` with the test hook that kills the task at a
    step.

    Args:
      kill_at_step: SIGKILL this process once the global step reaches it (None: never).
      *args, **kwargs: as for `graph_models.training.loop.MonitoredSession`.
    """

    def __init__(self, *args, kill_at_step: Optional[int] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._kill_at_step = kill_at_step
        if kill_at_step is not None:
            self.step_fns = {kind: self._step_then_maybe_die for kind in self.step_fns}

    def _step_then_maybe_die(self):
        results = self._step()
        if self.global_step >= self._kill_at_step:
            print(f'test hook: SIGKILL at global step {self.global_step}', flush=True)
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return results


def free_ports(count: int) -> List[int]:
    """``count`` distinct free TCP ports on 127.0.0.1."""
    import socket
    sockets, ports = [], []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(('127.0.0.1', 0))
            sockets.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in sockets:
            s.close()
    return ports


def local_cluster(workers: int, ps: int) -> Dict[str, List[str]]:
    """A cluster spec of ``ps`` + ``workers`` tasks on free loopback ports."""
    ports = free_ports(workers + ps)
    return {'ps': [f'127.0.0.1:{p}' for p in ports[:ps]],
            'worker': [f'127.0.0.1:{p}' for p in ports[ps:]]}

