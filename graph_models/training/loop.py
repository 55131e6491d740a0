"""The one training loop, and the run-folder policy around it.

Single-process training (`graph_models.training.train`) and cluster workers
(`graph_models.training.distributed`)
both train with `TrainingLoop`. The loop owns the step counter, the NaN check, the summary and
checkpoint cadence; the session it drives is pluggable:

- `LocalSession`: a plain ``tf.compat.v1.Session`` over the in-graph input pipeline, one
  ``make_callable`` step function per fetch list, its own ``Saver`` and ``FileWriter``.
- `MonitoredSession`: ``MonitoredTrainingSession`` on a cluster; its hooks stop at the global
  step target and, on the chief only, write the checkpoints and summaries.

The run-folder policy (`RunFolders`: run name check, `RunLock`, stale temporaries,
``overwrite``/``resume`` via `prepare_run_folders` and `empty_run_for_overwrite`, removal of
folders a failed start created) is the same for both: a cluster chief claims its run folder
exactly as a single process does.
"""

import contextlib
import math
import os
import shutil
import sys
import time
from typing import List, Optional

import numpy as np

from graph_models._tf import tf, v1
from graph_models.training.checkpoints import latest_checkpoint
from graph_models.errors import (CheckpointError, ConfigError, GraphModelsError,
                                 TrainingError, tf_error_reason)
from graph_models.training.run_config import RunConfig, read_run_config, run_config_path

CHECKPOINT_PREFIX = 'model.ckpt'

LOCK_FILE = '.lock'
_LOG_SUBFOLDERS = ('train', 'eval')


def check_text(value: str, what: str) -> None:
    """Raises `ConfigError` unless ``value`` (a path or name given as ``what``) is valid UTF-8.

    Bytes that are not UTF-8 reach Python as surrogates (``\\udcff``), which TensorFlow's file
    functions cannot encode: refuse them before any folder is made.
    """
    try:
        value.encode('utf-8')
    except UnicodeEncodeError:
        raise ConfigError(f'{what} {value!r} is not valid UTF-8 text (its bytes are not '
                          'UTF-8, or the locale is not a UTF-8 one); use a UTF-8 name, or '
                          'set LC_ALL=C.UTF-8') from None


def check_run_name(name: str) -> None:
    """Raises `ConfigError` unless ``name`` is one plain path component (no ``/``, ``.``, ``..``,
    no control characters, valid UTF-8).

    A run name becomes a folder under ``--checkpoint-dir`` and ``--log-dir`` that ``--overwrite``
    may delete; ``..`` or an absolute path would point it at someone else's files. A newline
    would split every output line that names the run.
    """
    bad = (not name or name in ('.', '..') or '/' in name or '\0' in name
           or (os.sep in name) or (os.altsep is not None and os.altsep in name))
    if bad:
        raise ConfigError(f'--run-name must be one plain folder name such as mlp-run1 (no "/", '
                          f'".", ".."), got {name!r}')
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ConfigError(f'--run-name must not hold a control character (newline, tab, ...), '
                          f'got {name!r}')
    check_text(name, '--run-name')


class RunLock:
    """An exclusive lock on a run folder, so two processes never train the same run.

    The lock is ``flock`` on ``<folder>/.lock``, which holds the owner's process id. The kernel
    drops it when the owner exits, however it exits (even ``kill -9``), so a lock left by a
    dead process is simply taken over.

    Args:
      folder: the run's checkpoint folder (must exist).
    """

    def __init__(self, folder: str):
        self.path = os.path.join(folder, LOCK_FILE)
        self._fd: Optional[int] = None

    def acquire(self) -> None:
        """Takes the lock.

        Raises:
          ConfigError: if another live process holds it (its process id is named), or the
            lock file is a symbolic link.
        """
        import errno
        import fcntl
        try:
            # O_NOFOLLOW: a planted link would have us truncate and write its target.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as e:
            if e.errno != errno.ELOOP:
                raise
            raise ConfigError(f'{self.path} is a symbolic link, and a run folder holds no '
                              'links; remove it or choose another --run-name') from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode('ascii', 'replace').strip() or 'unknown'
            os.close(fd)
            raise ConfigError(f'{os.path.dirname(self.path)} is in use by another '
                              f'"graph-models train" (process {holder}); wait for it to end or '
                              'choose another --run-name') from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f'{os.getpid()}\n'.encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # Closing drops the flock.
            self._fd = None


def _checkpoint_step(name: str) -> Optional[int]:
    """The step of ``model.ckpt-<step>.index``, or None for other names."""
    stem = CHECKPOINT_PREFIX + '-'
    if name.startswith(stem) and name.endswith('.index') and name[len(stem):-6].isdigit():
        return int(name[len(stem):-6])
    return None


def remove_stale_temporaries(ckpt_dir: str) -> List[str]:
    """Deletes what an interrupted save leaves behind; returns the names removed.

    A ``kill -9`` during a save leaves TensorFlow's ``*.tempstate*`` bundle files, a sharded
    save's ``model.ckpt-N_temp`` folder, or the state file's ``checkpoint.tmp*``. Only names
    of those shapes are touched. Call it while holding the run's `RunLock`.
    """
    removed = []
    for name in sorted(os.listdir(ckpt_dir)):
        path = os.path.join(ckpt_dir, name)
        stale = ('.tempstate' in name and name.startswith(CHECKPOINT_PREFIX)) or \
            name.startswith('checkpoint.tmp') or \
            (name.startswith(CHECKPOINT_PREFIX + '-') and name.endswith('_temp'))
        if not stale:
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        removed.append(name)
    return removed


def prune_checkpoints(ckpt_dir: str, keep: int, latest: str) -> List[str]:
    """Keeps the ``keep`` newest ``model.ckpt-<step>`` checkpoints (always ``latest``).

    A restarted Saver only knows the checkpoints it wrote itself, so each resume used to leave
    the previous run's checkpoints behind for good.

    Returns:
      The prefixes kept, oldest first.
    """
    steps = sorted(step for step in map(_checkpoint_step, os.listdir(ckpt_dir))
                   if step is not None)
    prefixes = [os.path.join(ckpt_dir, f'{CHECKPOINT_PREFIX}-{step}') for step in steps]
    kept = [p for p in prefixes if p != latest][-(keep - 1):] if keep > 1 else []
    kept = sorted(set(kept) | {latest}, key=lambda p: int(p.rsplit('-', 1)[1]))
    for prefix in prefixes:
        if prefix in kept:
            continue
        base = os.path.basename(prefix)
        for name in os.listdir(ckpt_dir):
            if name == base + '.index' or name == base + '.meta' or \
                    name.startswith(base + '.data-'):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(ckpt_dir, name))
    return kept


def empty_run_for_overwrite(ckpt_dir: str, log_dir: str) -> None:
    """Empties a run's folders for ``--overwrite``, refusing folders that are not runs.

    Only a checkpoint folder holding our ``run_config.json`` (or nothing but the lock) is
    emptied, and a log folder only when it holds nothing but ``train`` and ``eval``.
    """
    from graph_models.training.run_config import RUN_CONFIG_FILE
    entries = set(os.listdir(ckpt_dir)) - {LOCK_FILE}
    if entries and RUN_CONFIG_FILE not in entries:
        raise ConfigError(f'--overwrite refuses to empty {ckpt_dir}: it holds no '
                          f'{RUN_CONFIG_FILE}, so it is not a run written by "graph-models '
                          'train"; choose another --run-name or --checkpoint-dir')
    if os.path.isdir(log_dir):
        foreign = sorted(set(os.listdir(log_dir)) - set(_LOG_SUBFOLDERS))
        if foreign:
            raise ConfigError(f'--overwrite refuses to empty {log_dir}: it holds '
                              f'{foreign[0]!r}, not only a run\'s train/eval logs; choose '
                              'another --run-name or --log-dir')
    for name in entries:
        path = os.path.join(ckpt_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    for name in _LOG_SUBFOLDERS:
        shutil.rmtree(os.path.join(log_dir, name), ignore_errors=True)


def prepare_run_folders(checkpoint_dir: str, log_dir: str, *, resume: bool,
                        overwrite: bool, run: RunConfig, resumable: bool = True
                        ) -> Optional[str]:
    """Checks the run's folders against resume/overwrite; returns the checkpoint to resume.

    Call it while holding the run's `RunLock`.

    Args:
      checkpoint_dir, log_dir: the run's folders.
      resume: continue the latest checkpoint (its run config must match ``run``).
      overwrite: empty the run's folders first (`empty_run_for_overwrite`).
      run: the run config.
      resumable: whether this kind of run can resume at all (cluster runs cannot); only the
        advice in the error for an existing checkpoint depends on it.

    Raises:
      ConfigError: an existing checkpoint without resume/overwrite, or a mismatched resume.
      CheckpointError: resume without a checkpoint.
    """
    try:
        latest = latest_checkpoint(checkpoint_dir) if os.path.isdir(checkpoint_dir) else None
    except CheckpointError:
        if resume:
            raise
        latest = None  # A broken state file: --overwrite may still start the run again.
    if resume:
        if latest is None:
            raise CheckpointError(f'no checkpoint to resume in {checkpoint_dir}; start a new '
                                  'run with resume=False',
                                  cli_message=f'no checkpoint to resume in {checkpoint_dir}; '
                                              'drop --resume to start a new run')
        saved = read_run_config(checkpoint_dir)
        changed = saved.differences(run)
        if changed:
            differ = (f'cannot resume {checkpoint_dir}: {", ".join(changed)} differ from the '
                      'checkpoint\'s run config; use the same settings or a new ')
            raise ConfigError(differ + 'run name', cli_message=differ + '--run-name')
        return latest
    if overwrite:
        empty_run_for_overwrite(checkpoint_dir, log_dir)
    elif latest is not None and resumable:
        raise ConfigError(f'{checkpoint_dir} already holds a checkpoint; resume=True continues '
                          'it, overwrite=True starts again, or choose a new run name',
                          cli_message=f'{checkpoint_dir} already holds a checkpoint; pass '
                                      '--resume to continue it, --overwrite to start again, or '
                                      'a new --run-name')
    elif latest is not None:
        raise ConfigError(f'{checkpoint_dir} already holds a checkpoint; overwrite=True starts '
                          'again, or choose a new run name (a cluster run cannot resume)',
                          cli_message=f'{checkpoint_dir} already holds a checkpoint; pass '
                                      '--overwrite to start again or a new --run-name (a '
                                      'cluster run cannot resume)')
    return None


def checkpoint_global_step(prefix: str) -> int:
    """The ``global_step`` stored in checkpoint ``prefix`` (raises `CheckpointError`)."""
    try:
        return int(tf.train.load_checkpoint(prefix).get_tensor('global_step'))
    except (tf.errors.OpError, ValueError, KeyError) as e:
        message = tf_error_reason(getattr(e, 'message', str(e)))
        raise CheckpointError(f'cannot read the global step of {prefix} ({message}); the '
                              'checkpoint is corrupt or incomplete') from None


def check_not_a_link(folder: str, parent: str, flag: str) -> None:
    """Raises `ConfigError` if run folder ``folder`` is a symbolic link or resolves outside
    ``parent``: ``--overwrite`` would empty, and training write into, someone else's folder."""
    if os.path.islink(folder):
        raise ConfigError(f'{folder} is a symbolic link; a run folder must be a real folder '
                          f'inside {flag}: remove the link or choose another --run-name')
    if os.path.lexists(folder) and \
            os.path.dirname(os.path.realpath(folder)) != os.path.realpath(parent):
        raise ConfigError(f'{folder} resolves outside {parent}; choose another --run-name')


def _missing_folders(folder: str) -> List[str]:
    """``folder`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    folder = os.path.abspath(folder)
    while not os.path.lexists(folder) and os.path.dirname(folder) != folder:
        missing.append(folder)
        folder = os.path.dirname(folder)
    return missing


def make_folder(folder: str, flag: str) -> None:
    """``makedirs``; a failure becomes `GraphModelsError` naming ``flag`` on the command line."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise GraphModelsError(f'cannot create folder {folder} ({e.strerror}); choose '
                               'another folder',
                               cli_message=f'cannot create folder {folder} ({e.strerror}); '
                                           f'choose another {flag}') from None


def check_training_arguments(run: RunConfig, data, *, keep_checkpoints: int,
                             summary_every_steps: int,
                             histogram_every_steps: Optional[int] = None,
                             save_every_steps: Optional[int] = None,
                             pictures_every_epochs: Optional[int] = None) -> None:
    """Raises `ConfigError` on a non-positive cadence, data of another dataset than ``run``,
    or images that are not uint8 as `graph_models.data.Dataset` stores them."""
    for name, value in (('keep_checkpoints', keep_checkpoints),
                        ('summary_every_steps', summary_every_steps),
                        ('histogram_every_steps', histogram_every_steps),
                        ('save_every_steps', save_every_steps),
                        ('pictures_every_epochs', pictures_every_epochs)):
        if value is not None and value <= 0:
            raise ConfigError(f'{name.replace("_", " ")} must be positive, got {value}')
    if data.name != run.dataset:
        raise ConfigError(f'the data is {data.name!r} but the run config says {run.dataset!r}')
    check_uint8_images(data.train_images, 'training')
    check_uint8_images(data.test_images, 'test')


def check_uint8_images(images, split: str) -> None:
    """Raises `ConfigError` unless ``images`` are uint8 (float ones would be scaled by 1/255 a
    second time)."""
    dtype = np.asarray(images).dtype
    if dtype != np.uint8:
        raise ConfigError(f'the {split} images must be uint8 (0-255) as '
                          f'graph_models.data.Dataset stores them, got {dtype}')


class RunFolders:
    """A run's checkpoint and log folders, claimed for one training call.

    A context manager: entering checks the run name, creates ``<checkpoint_dir>/<run_name>``,
    takes its `RunLock` and removes a killed save's temporaries; `prepare` applies the
    resume/overwrite policy. Leaving with an exception before the run has a checkpoint removes
    the folders (and parents) this claim created, so a failed start leaves nothing behind;
    leaving always releases the lock.

    Args:
      checkpoint_dir: parent folder of the run's checkpoint folder.
      log_dir: parent folder of the run's log folder.
      run_name: the run's folder name (one plain path component; see `check_run_name`).

    Attributes:
      run_name: the run's name.
      checkpoint_dir: ``<checkpoint_dir>/<run_name>``.
      log_dir: ``<log_dir>/<run_name>``.
    """

    def __init__(self, checkpoint_dir: str, log_dir: str, run_name: str):
        check_run_name(run_name)
        check_text(checkpoint_dir, '--checkpoint-dir')
        check_text(log_dir, '--log-dir')
        self.run_name = run_name
        self.checkpoint_dir = os.path.join(checkpoint_dir, run_name)
        self.log_dir = os.path.join(log_dir, run_name)
        self._parents = (checkpoint_dir, log_dir)
        self.lock = RunLock(self.checkpoint_dir)

    def __enter__(self) -> 'RunFolders':
        ckpt_dir = self.checkpoint_dir
        self._created = {folder: not os.path.lexists(folder)
                         for folder in (ckpt_dir, self.log_dir)}
        # Every folder the claim may create, deepest first: a path that turns out too long
        # fails after makedirs made a dozen levels of it.
        self._new_parents = [folder for parent in self._parents
                             for folder in _missing_folders(parent)]
        # Folders this claim may remove again if training fails before a checkpoint.
        self._owned = dict(self._created)
        self._lock_is_new = False
        try:  # A signal may land anywhere in here too: undo what was made.
            check_not_a_link(ckpt_dir, self._parents[0], '--checkpoint-dir')
            check_not_a_link(self.log_dir, self._parents[1], '--log-dir')
            make_folder(ckpt_dir, '--checkpoint-dir')
            self._lock_is_new = not os.path.lexists(self.lock.path)
            self.lock.acquire()
            if os.path.isfile(run_config_path(ckpt_dir)):  # Only in a folder that is a run.
                remove_stale_temporaries(ckpt_dir)
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def prepare(self, run: RunConfig, *, resume: bool, overwrite: bool,
                resumable: bool = True) -> Optional[str]:
        """`prepare_run_folders` on this run's folders; returns the checkpoint to resume."""
        restore_from = prepare_run_folders(self.checkpoint_dir, self.log_dir, resume=resume,
                                           overwrite=overwrite, run=run, resumable=resumable)
        if overwrite:
            self._owned = {folder: True for folder in self._owned}
        return restore_from

    def make_log_folders(self) -> None:
        """Creates ``<log_dir>/<run_name>/{train,eval}``."""
        for name in _LOG_SUBFOLDERS:
            check_not_a_link(os.path.join(self.log_dir, name), self.log_dir, '--log-dir')
            make_folder(os.path.join(self.log_dir, name), '--log-dir')

    def _holds_checkpoint(self) -> bool:
        try:
            return latest_checkpoint(self.checkpoint_dir) is not None
        except CheckpointError:
            return True  # An unreadable state file: keep the folder as it is.

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is not None and not self._holds_checkpoint():
                for folder in (self.checkpoint_dir, self.log_dir):
                    if self._owned[folder]:
                        shutil.rmtree(folder, ignore_errors=True)
                for parent in self._new_parents:  # --checkpoint-dir / --log-dir (and parents).
                    with contextlib.suppress(OSError):
                        os.rmdir(parent)  # Only if empty.
                if self._lock_is_new and not os.path.isfile(run_config_path(self.checkpoint_dir)):
                    with contextlib.suppress(OSError):  # Leave a non-run folder as found.
                        os.unlink(self.lock.path)
        finally:
            self.lock.release()
        return False


def progress_text(loss: float, examples_per_sec: float) -> str:
    """The progress bar's postfix, in plain words."""
    return f'loss {loss:.4f}, {examples_per_sec:,.0f} examples/s'


class EpochPipeline:
    """An in-graph input pipeline: the training split is loaded once, each epoch feeds its order.

    The training images (uint8, as `graph_models.data.Dataset` stores them; each batch is
    scaled to float32 in [0, 1] exactly as `graph_models.data.to_float` does) and labels go
    into the graph once per run (variables in no
    collection: neither checkpointed, nor initialized or checked by an initializer, a
    ``Scaffold`` or ``MonitoredTrainingSession``; `load` initializes them). Each epoch then
    loads only its example order (``int64 [N]``, in the run's seeded order) and rewinds a
    position counter; every step that evaluates the batch takes the next ``batch_size``
    indices of the order, advances the counter and gathers those rows, so training steps run
    with no ``feed_dict``. Batches are exactly those of `graph_models.data.iterate_batches`,
    so results and resumption are unchanged, while the per-epoch cost is an index array
    instead of a copy of the whole split. ``Input`` and ``Labels`` default to the pipeline's
    batch and can still be fed.

    The pipeline is plain graph ops rather than a ``tf.data`` iterator: re-initializing an
    iterator at every epoch (``MakeIterator``) took 0.2-0.35 s after an epoch's steps, about a
    fifth of an MLP epoch on Fashion-MNIST, and ``IteratorGetNext`` cost more per step than the
    gather it delivered (measured on a 2-core machine, where a prefetch thread has no idle core
    to hide behind). Gathering uint8 rows and scaling them takes 50-80 us per MLP batch against
    150-220 us for float rows.

    Args:
      input_shape: shape of one example.
      batch_size: examples per batch (the epoch's last batch may be smaller).
      device: device of the pipeline's ops, or None. A cluster worker passes its own device:
        under ``replica_device_setter`` the split's variables would otherwise go to a ps task
        (and every worker's shard into the same variable there).
    """

    def __init__(self, input_shape, batch_size: int, device: Optional[str] = None):
        with (v1.device(device) if device else contextlib.nullcontext()):
            self._build(input_shape, batch_size)

    def _build(self, input_shape, batch_size: int) -> None:
        self.images = v1.placeholder(tf.uint8, [None, *input_shape], name='epoch_images')
        self.labels = v1.placeholder(tf.int64, [None], name='epoch_labels')
        self.order = v1.placeholder(tf.int64, [None], name='epoch_order')

        def local(initial, name, validate_shape=False):
            return v1.Variable(initial, trainable=False, collections=[],
                               validate_shape=validate_shape, name=name)

        self._images = local(self.images, 'train_images')
        self._labels = local(self.labels, 'train_labels')
        self._order = local(self.order, 'epoch_order_indices')
        self._position = local(tf.constant(0, tf.int64), 'epoch_position', True)
        self.load_op = tf.group(self._images.initializer, self._labels.initializer)
        self.start_op = tf.group(self._order.initializer, self._position.initializer)
        self._batch_size = batch_size
        self._input_shape = tuple(input_shape)

    def next_batch(self):
        """``(images float32 [B, ...] in [0, 1], labels int64 [B])`` of the next batch;
        advances the position."""
        with v1.name_scope('epoch_batch'):
            end = self._position.assign_add(self._batch_size)
            index = self._order[end - self._batch_size:end]  # Clamped: the last batch is short.
            pixels = tf.gather(self._images, index, name='pixels')
            # The same float32 product as data.to_float, so batches are bit-identical to it.
            images = tf.multiply(tf.cast(pixels, tf.float32), np.float32(1.0 / 255.0),
                                 name='images')
            return images, tf.gather(self._labels, index, name='labels')

    def load(self, session, images, labels) -> None:
        """Copies the training split into the graph (once per run).

        Args:
          session: the graph's session.
          images: uint8 ``[N, ...]`` with the model's input size per example (any layout).
          labels: int ``[N]``.

        Raises:
          ConfigError: the images are not uint8.
        """
        check_uint8_images(images, 'training')
        images = np.asarray(images).reshape((len(images),) + self._input_shape)
        session.run(self.load_op, {self.images: images, self.labels: labels})

    def start(self, session, order) -> None:
        """Starts one epoch over the loaded split in ``order`` (indices into it)."""
        session.run(self.start_op, {self.order: order})


# The fetch lists of a step: (write the scalar summaries, write the histograms).
STEP_KINDS = ((False, False), (True, False), (False, True), (True, True))


class LocalSession:
    """A plain ``Session`` driven by `TrainingLoop` (single-process training).

    Steps run as ``make_callable`` functions with no ``feed_dict`` (the in-graph pipeline
    supplies the batches): callables skip ``session.run``'s per-call fetch analysis (about
    90 us of Python per step, measured). There is one per fetch list the loop uses.

    Args:
      session: the training graph's session.
      tensors: the graph's `graph_models.nets.graphs.TrainingTensors`.
      scalar_summaries: merged scalar summary op.
      histogram_summaries: merged histogram summary op.
      saver: the run's checkpoint ``Saver``.
      checkpoint_dir: the run's checkpoint folder.
      multi_step: a `graph_models.training.multistep.MultiStep` of the graph, or None.

    Attributes:
      step_fns: ``(scalars, histograms)`` -> callable returning
        ``[train_op, loss, accuracy, *summaries]``.
      run_steps: callable taking a step count and returning the `MultiStep` fetches after
        running that many steps, or None (no multi-step loop in the graph).
      writer: the ``train`` summary ``FileWriter`` (set once the log folder exists).
      run_log_dir: the run's log folder (for error messages).
    """

    stoppable = False  # Nothing but the loop's own step count ends an epoch.
    saves_checkpoints = True
    restart_hint = 'resume or start again'

    def __init__(self, session: v1.Session, tensors, *, scalar_summaries, histogram_summaries,
                 saver: v1.train.Saver, checkpoint_dir: str, multi_step=None):
        self.session = session
        self.run_steps = None
        if multi_step is not None:
            self.run_steps = session.make_callable(multi_step.fetches,
                                                   feed_list=[multi_step.steps])
        self.graph = session.graph
        self.saver = saver
        self.checkpoint_dir = checkpoint_dir
        self.writer = None
        self.run_log_dir = ''
        step = [tensors.train_op, tensors.loss, tensors.accuracy]
        summaries = {(False, False): [], (True, False): [scalar_summaries],
                     (False, True): [histogram_summaries],
                     (True, True): [scalar_summaries, histogram_summaries]}
        self.step_fns = {kind: session.make_callable(step + summaries[kind])
                         for kind in STEP_KINDS}

    def should_stop(self) -> bool:
        return False

    def step_name(self, step: int) -> str:
        return f'step {step}'

    def latest_checkpoint(self) -> str:
        return ''  # The loop knows its own saves.

    def save(self, step: int) -> str:
        """Writes a checkpoint at ``step`` with its ``.meta``; returns its path.

        The ``.meta`` (the training graph, about 5 ms per save of the MLP) lets TF1 users
        ``import_meta_graph`` a run's checkpoint; the Saver's ``max_to_keep`` and
        `prune_checkpoints` remove it with its checkpoint.

        Raises:
          CheckpointError: the checkpoint folder is full or unwritable.
        """
        try:
            with self.graph.as_default():
                return self.saver.save(
                    self.session, os.path.join(self.checkpoint_dir, CHECKPOINT_PREFIX),
                    global_step=step, write_meta_graph=True)
        except tf.errors.OpError as e:
            reason = (f'cannot write a checkpoint in {self.checkpoint_dir} '
                      f'({tf_error_reason(e.message)}); free disk space or choose another ')
            raise CheckpointError(reason + 'checkpoint folder',
                                  cli_message=reason + '--checkpoint-dir') from None

    def write_summary(self, summary, step: int) -> None:
        self.log_write(self.writer.add_summary, summary, step)

    def log_write(self, call, *args):
        """Runs a summary writer call; a failure of its writer thread becomes our error.

        ``FileWriter`` writes from a background thread; when that thread fails (a full
        ``--log-dir``), the next call in the main thread re-raises its RuntimeError.
        """
        try:
            return call(*args)
        except RuntimeError as e:
            reason = str(e).splitlines()[0].split('; ')[-1] if str(e) else 'write failed'
            raise GraphModelsError(
                f'cannot write TensorBoard logs in {os.path.dirname(self.run_log_dir)} '
                f'({reason}); free disk space or choose another --log-dir; the checkpoints in '
                f'{self.checkpoint_dir} are intact') from None


class MonitoredSession:
    """A ``MonitoredTrainingSession`` driven by `TrainingLoop` (cluster workers).

    Steps feed the worker's batches (the shard in the epoch's seeded order) to the graph's
    ``Input``/``Labels`` placeholders. They do not use an in-graph `EpochPipeline` as
    single-process steps do: ``MonitoredTrainingSession`` recreates its session after a
    recoverable error while the cluster starts, which loses any in-graph pipeline state (with
    the former ``tf.data`` iterator: "GetNext() failed because the iterator has not been
    initialized", in about one cluster start in three; the pipeline's split, order and position
    variables would be lost alike); a feed has no state to lose. The session's hooks decide
    when to stop (``StopAtStepHook`` on the global step, which all
    workers advance) and, on the chief, write the checkpoints and summaries; so the loop asks
    `should_stop` before every step and neither saves nor writes summaries itself.

    Args:
      session: the open ``MonitoredTrainingSession``.
      tensors: the graph's `graph_models.nets.graphs.TrainingTensors`.
      checkpoint_dir: the chief's checkpoint folder (None on other workers).
      batch_size: examples per step.

    Attributes:
      global_step: the global step after the last step this worker ran.
    """

    stoppable = True
    saves_checkpoints = False  # The chief's CheckpointSaverHook does.
    run_steps = None  # One fed batch per step.
    restart_hint = 'start again (overwrite=True)'

    def __init__(self, session, tensors, *, checkpoint_dir: Optional[str] = None,
                 batch_size: int = 100):
        self.session = session
        self.checkpoint_dir = checkpoint_dir
        self.global_step = 0
        self._fetches = [tensors.train_op, tensors.loss, tensors.accuracy, tensors.global_step]
        self._inputs, self._labels = tensors.model.inputs, tensors.labels
        self._batch_size = batch_size
        self._batches = iter(())
        self.step_fns = {kind: self._step for kind in STEP_KINDS}

    def start_epoch(self, images, labels, order) -> None:
        """Starts an epoch over the shard in ``order`` (the batches of
        `graph_models.data.iterate_batches`), fed one batch per step."""
        size = self._batch_size
        self._batches = ((images[order[k:k + size]], labels[order[k:k + size]])
                         for k in range(0, len(order), size))

    def _step(self):
        images, labels = next(self._batches)
        _, loss, accuracy, self.global_step = self.session.run(
            self._fetches, {self._inputs: images, self._labels: labels})
        return None, loss, accuracy

    def should_stop(self) -> bool:
        return self.session.should_stop()

    def step_name(self, step: int) -> str:
        return f'global step {self.global_step} (local step {step})'

    def latest_checkpoint(self) -> str:
        if not self.checkpoint_dir:
            return ''
        return tf.train.latest_checkpoint(self.checkpoint_dir) or ''

    def save(self, step: int) -> str:
        return self.latest_checkpoint()

    def write_summary(self, summary, step: int) -> None:
        raise AssertionError('the chief\'s summary hook writes a cluster run\'s summaries')


class EpochStats:
    """What `TrainingLoop.run_epoch` measured (sums over the steps it ran)."""

    __slots__ = ('loss_sum', 'accuracy_sum', 'examples', 'seconds', 'save_seconds')

    def __init__(self, loss_sum: float, accuracy_sum: float, examples: int, seconds: float,
                 save_seconds: float):
        self.loss_sum, self.accuracy_sum, self.examples = loss_sum, accuracy_sum, examples
        self.seconds, self.save_seconds = seconds, save_seconds


class TrainingLoop:
    """The one training loop: steps, the NaN check, summary and checkpoint cadence.

    Args:
      session: a `LocalSession` or `MonitoredSession`.
      batch_size: examples per step (an epoch's last batch may be smaller).
      summary_every_steps: write the scalar summaries every this many steps (None: the
        session's hooks do).
      histogram_every_steps: also write the histograms every this many steps (they are always
        written at an epoch's ``last_step``).
      save_every_steps: also checkpoint every this many steps (None: per epoch only).
      name: prefix of error messages (a cluster task such as ``worker1``).
      steps_per_run: up to this many steps per session call (the session's ``run_steps``)
        between cadence points; steps with a summary, histogram or checkpoint run singly.

    Attributes:
      step: the step counter: the global step of a single process, a worker's local steps.
      checkpoint_path: the last checkpoint this loop wrote (or restored from).
    """

    def __init__(self, session, *, batch_size: int, summary_every_steps: Optional[int] = None,
                 histogram_every_steps: Optional[int] = None,
                 save_every_steps: Optional[int] = None, name: str = '',
                 steps_per_run: int = 1):
        self.session = session
        self.steps_per_run = steps_per_run if getattr(session, 'run_steps', None) else 1
        self.batch_size = batch_size
        self.summary_every_steps = summary_every_steps
        self.histogram_every_steps = histogram_every_steps
        self.save_every_steps = save_every_steps
        self.name = name
        self.step = 0
        self.checkpoint_path = ''

    def save(self) -> str:
        """Checkpoints at the current step; returns the path."""
        self.checkpoint_path = self.session.save(self.step)
        return self.checkpoint_path

    def check_loss(self, loss: float, step: int) -> None:
        """Raises `TrainingError` naming the step when ``loss`` is NaN or infinite."""
        if math.isfinite(loss):
            return
        checkpoint = self.checkpoint_path or self.session.latest_checkpoint()
        where = f'{self.name}: ' if self.name else ''
        message = (f'{where}loss became {loss} at {self.session.step_name(step)}; the last '
                   f'good checkpoint is {checkpoint or "none (no checkpoint yet)"}; lower the '
                   'learning rate and ')
        hint = self.session.restart_hint
        raise TrainingError(message + hint, cli_message=message + hint.replace(
            'overwrite=True', '--overwrite'))

    def _is_cadence_step(self, step: int, last_step: Optional[int]) -> bool:
        """Whether ``step`` writes a summary, histograms or a checkpoint."""
        return any(every and step % every == 0 for every in (
            self.summary_every_steps, self.histogram_every_steps, self.save_every_steps)) \
            or step == last_step

    def _chunk(self, step: int, left: int, last_step: Optional[int]) -> int:
        """How many steps from ``step`` on (at most ``left``) run in one call: up to
        ``steps_per_run``, stopping before the next cadence step (which runs singly)."""
        count = 0
        while count < min(self.steps_per_run, left) and \
                not self._is_cadence_step(step + count, last_step):
            count += 1
        return max(count, 1)

    def run_epoch(self, examples: int, *, began: float, last_step: Optional[int] = None,
                  bar=None) -> EpochStats:
        """Runs the steps over ``examples`` examples (fewer if the session says stop).

        Args:
          examples: examples left in the epoch; the steps take ``batch_size`` at a time.
          began: ``time.perf_counter()`` when the epoch started (its input set-up included).
          last_step: the epoch's last step, where the histograms are written.
          bar: a ``tqdm`` bar to update per step, or None.

        Returns:
          `EpochStats`; ``seconds`` runs from ``began`` to the end of the last step, without
          checkpoint saves. With a session that `saves_checkpoints`, the epoch ends with one.

        Raises:
          TrainingError: if the loss becomes NaN or infinite (see `check_loss`).
        """
        session = self.session
        step_fns = session.step_fns
        stoppable = session.stoppable
        batch_size = self.batch_size
        summary_every = self.summary_every_steps
        histogram_every = self.histogram_every_steps
        save_every = self.save_every_steps
        show = bar is not None and not bar.disable
        loss_sum = acc_sum = saving = 0.0
        seen = 0
        steps = -(-examples // batch_size)
        done = 0
        while done < steps:
            if stoppable and session.should_stop():
                break
            step = self.step + 1
            chunk = self._chunk(step, steps - done, last_step) if self.steps_per_run > 1 else 1
            if chunk > 1:
                chunk_loss, chunk_acc, n, first_bad = session.run_steps(chunk)
                if first_bad >= 0:
                    self.check_loss(float('nan'), step + int(first_bad))
                self.step = step + chunk - 1
                done += chunk
                loss_sum += float(chunk_loss)
                acc_sum += float(chunk_acc)
                seen += int(n)
                if show:
                    elapsed = time.perf_counter() - began - saving
                    bar.set_postfix_str(progress_text(float(chunk_loss) / max(int(n), 1),
                                                      seen / max(elapsed, 1e-9)))
                    bar.update(chunk)
                continue
            first = done * batch_size
            done += 1
            want_scalars = bool(summary_every) and step % summary_every == 0
            want_histograms = step == last_step or bool(
                histogram_every and step % histogram_every == 0)
            results = step_fns[want_scalars, want_histograms]()
            loss, acc = float(results[1]), float(results[2])
            if not math.isfinite(loss):
                self.check_loss(loss, step)
            self.step = step
            n = min(batch_size, examples - first)
            loss_sum += loss * n
            acc_sum += acc * n
            seen += n
            for summary in results[3:]:
                session.write_summary(summary, step)
            if save_every and step % save_every == 0:
                save_began = time.perf_counter()
                self.save()
                saving += time.perf_counter() - save_began
            if show:
                elapsed = time.perf_counter() - began - saving
                bar.set_postfix_str(progress_text(loss, seen / max(elapsed, 1e-9)))
                bar.update(1)
        seconds = time.perf_counter() - began - saving
        if session.saves_checkpoints:
            save_began = time.perf_counter()
            self.save()
            saving += time.perf_counter() - save_began
        return EpochStats(loss_sum, acc_sum, seen, seconds, saving)
