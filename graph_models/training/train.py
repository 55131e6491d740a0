"""Training under ``tf.compat.v1.Session``: `train_and_eval`.

The steps run in `graph_models.training.loop.TrainingLoop` (the loop cluster workers use too) on a
plain ``Session`` over an in-graph input pipeline (`graph_models.training.loop.EpochPipeline`). The
training graph (dropout, labels, loss, Adam, summaries) lives in its own ``tf.Graph``.
Evaluation uses a separate inference graph (no dropout, moving batch-norm statistics) that
restores each epoch's checkpoint, as TF1's train/eval split did, so the figures it reports are
those of the graph that export will freeze.

Outputs of a run called ``RUN``:

- ``<checkpoint_dir>/RUN/model.ckpt-<step>.*``, the ``checkpoint`` state file and
  ``run_config.json`` (see `graph_models.training.run_config`);
- ``<log_dir>/RUN/train`` (graph, loss, accuracy, learning rate, weight and activation
  histograms) and ``<log_dir>/RUN/eval`` (graph, test loss and accuracy per epoch).
"""

import contextlib
import dataclasses
import os
import signal
import sys
import threading
import time
from typing import Callable, List, Optional, Tuple

import numpy as np
from tqdm import tqdm

from graph_models.training import checkpoints
from graph_models import data as data_lib
from graph_models.nets import graphs
from graph_models.training import restore
from graph_models.nets import precision as precision_lib
from graph_models.system.cpu import read_cpuinfo
from graph_models.system import signals as signals_lib
from graph_models._tf import tf, v1
from graph_models.errors import ConfigError, GraphModelsError, Terminated, TrainingInterrupted
from graph_models.training.scoring import Evaluator, softmax_cross_entropy
from graph_models.training.loop import (EpochPipeline, LocalSession, RunFolders, TrainingLoop,
                                         check_training_arguments, checkpoint_global_step,
                                         prune_checkpoints)
from graph_models.training.multistep import MultiStep
from graph_models.training.run_config import RunConfig, write_run_config
from graph_models.training.tensorboard import scalar_summary, training_summary_ops


@dataclasses.dataclass
class EpochResult:
    """Figures of one finished epoch.

    Attributes:
      epoch: one-based epoch number.
      global_step: global step at the end of the epoch.
      train_loss: mean training loss over the epoch's batches (training graph).
      train_accuracy: mean training accuracy over the epoch's batches.
      test_loss: mean cross-entropy on the test set (inference graph).
      test_accuracy: accuracy on the test set (inference graph).
      examples_per_sec: training throughput of the epoch: examples / ``seconds``.
      seconds: wall time of the epoch's training, from its input pipeline set-up to the end
        of its last step (per-step fetches and summaries included; evaluation and checkpoint
        saves excluded).
      save_seconds: wall time of the epoch's checkpoint saves.
      eval_seconds: wall time of the epoch's test-set evaluation (restore included).
    """

    epoch: int
    global_step: int
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    examples_per_sec: float
    seconds: float
    save_seconds: float = 0.0
    eval_seconds: float = 0.0


@dataclasses.dataclass
class TrainResult:
    """What a training run produced.

    Attributes:
      run_name: the run's name.
      checkpoint_dir: folder with the checkpoints and ``run_config.json``.
      log_dir: folder with the ``train`` and ``eval`` TensorBoard logs.
      checkpoint_path: prefix of the last checkpoint written.
      global_step: the final global step.
      history: one `EpochResult` per epoch trained in this call.
    """

    run_name: str
    checkpoint_dir: str
    log_dir: str
    checkpoint_path: str
    global_step: int
    history: List[EpochResult]

    @property
    def final(self) -> Optional[EpochResult]:
        return self.history[-1] if self.history else None


def session_config(run: RunConfig) -> v1.ConfigProto:
    """Session options of a run's training graph: XLA JIT compilation when ``run.xla``, the
    bfloat16 rewrite when ``run.precision`` is ``mixed_bfloat16``.

    Thread pools stay TensorFlow's defaults (one intra-op thread per core).
    """
    config = v1.ConfigProto()
    if run.xla:
        config.graph_options.optimizer_options.global_jit_level = v1.OptimizerOptions.ON_1
    return precision_lib.apply_precision(config, run.precision)


def show_progress(progress: bool, stream=None) -> bool:
    """Whether to draw a progress bar: asked for, and the stream (stderr) is a terminal.

    Checked here rather than in the CLI so library callers writing to a file or a pipe get no
    bar either.
    """
    stream = sys.stderr if stream is None else stream
    return bool(progress) and bool(getattr(stream, 'isatty', lambda: False)())


def train_and_eval(run: RunConfig, data: data_lib.Dataset, *, run_name: Optional[str] = None,
                   log_dir: str = 'logs', checkpoint_dir: str = 'checkpoints',
                   keep_checkpoints: int = 5, save_every_steps: Optional[int] = None,
                   summary_every_steps: int = 50,
                   histogram_every_steps: Optional[int] = None,
                   pictures_every_epochs: Optional[int] = None, resume: bool = False,
                   overwrite: bool = False, resume_from_float: Optional[str] = None,
                   precision: Optional[str] = None, cpuinfo_text: Optional[str] = None,
                   progress: bool = True, log: Callable[[str], None] = print) -> TrainResult:
    """Trains a model under a Session, evaluating and checkpointing after every epoch.

    Args:
      run: model and hyperparameters (written to ``run_config.json``).
      data: the dataset; its training split is used as is (apply ``limit`` beforehand with
        `graph_models.data.load_dataset`).
      run_name: name of the run's folders; default ``<model>-<dataset>``.
      log_dir: parent folder of the TensorBoard logs.
      checkpoint_dir: parent folder of the checkpoints.
      keep_checkpoints: how many recent checkpoints to keep.
      save_every_steps: also save every this many steps (None: only per epoch and at the end).
      summary_every_steps: write the training scalars every this many steps.
      histogram_every_steps: also write the weight and activation histograms every this
        many steps (None: once per epoch, at its last step; histograms cost more than a
        training step).
      pictures_every_epochs: draw the evaluation pictures (confusion matrix, most confident
        mistakes) into the eval log every this many epochs (None: only after the last epoch;
        drawing them costs about 0.75 s, an MLP epoch's worth of training). A run stopped
        before or during that last evaluation has none; ``graph-models eval RUN --report DIR``
        draws the same pictures for any checkpoint.
      resume: continue from the latest checkpoint of the run (same global step, optimizer
        state and data order); its settings must match ``run`` except ``epochs``.
      overwrite: delete the run's existing checkpoints and logs first.
      resume_from_float: a float checkpoint (folder or prefix) of the same model to start a
        quantized run from: its weights, biases and batch-norm statistics are restored; the
        quantization ranges, global step and optimizer start fresh.
      precision: compute precision, ``float32`` or ``mixed_bfloat16`` (see
        `graph_models.nets.precision`); None keeps ``run.precision``. The one used is recorded in
        ``run_config.json``.
      cpuinfo_text: the text of ``/proc/cpuinfo`` that decides whether ``mixed_bfloat16`` runs
        natively (None: read this machine's).
      progress: show a per-epoch progress bar (loss, examples per second) on stderr.
      log: where the per-epoch lines go.

    Returns:
      The `TrainResult`.

    Raises:
      ConfigError: on bad arguments, an existing run without ``resume``/``overwrite``, or
        ``mixed_bfloat16`` on a CPU without native bfloat16 products.
      CheckpointError: if ``resume`` finds no checkpoint or an unreadable one.
      TrainingError: if the loss becomes NaN or infinite (the last good checkpoint is kept).
      TrainingInterrupted: on Ctrl-C, after saving a checkpoint at the current step.
    """
    if precision is not None:
        run = dataclasses.replace(run, precision=precision)
    precision_lib.check_supported(run.precision, cpuinfo_text if cpuinfo_text is not None
                                  else read_cpuinfo())
    check_training_arguments(run, data, keep_checkpoints=keep_checkpoints,
                             summary_every_steps=summary_every_steps,
                             histogram_every_steps=histogram_every_steps,
                             save_every_steps=save_every_steps,
                             pictures_every_epochs=pictures_every_epochs)
    float_checkpoint = None
    if resume_from_float is not None:
        if resume:
            raise ConfigError('--resume and --resume-from-float exclude each other: resume '
                              'continues this run, resume-from-float starts it')
        float_checkpoint = checkpoints.resolve_checkpoint(resume_from_float)
    run_name = run.run_name(run_name)
    with RunFolders(checkpoint_dir, log_dir, run_name) as folders:
        ckpt_dir, run_log_dir = folders.checkpoint_dir, folders.log_dir
        restore_from = folders.prepare(run, resume=resume, overwrite=overwrite)
        spe = data_lib.steps_per_epoch(len(data.train_labels), run.batch_size)
        if restore_from:
            step = checkpoint_global_step(restore_from)
            if step >= run.epochs * spe:
                # Nothing to train: leave the run exactly as it is (run config included).
                log(f'{ckpt_dir} is already trained to step {step} ({step / spe:g} epochs of '
                    f'{spe} steps); nothing to do (raise --epochs above {step // spe} to '
                    'train further)')
                return TrainResult(run_name=run_name, checkpoint_dir=ckpt_dir,
                                   log_dir=run_log_dir, checkpoint_path=restore_from,
                                   global_step=step, history=[])
            prune_checkpoints(ckpt_dir, keep_checkpoints, restore_from)
        folders.make_log_folders()
        return _train_locked(run, data, run_name=run_name, ckpt_dir=ckpt_dir,
                             run_log_dir=run_log_dir, restore_from=restore_from,
                             keep_checkpoints=keep_checkpoints,
                             save_every_steps=save_every_steps,
                             summary_every_steps=summary_every_steps,
                             histogram_every_steps=histogram_every_steps,
                             pictures_every_epochs=pictures_every_epochs,
                             float_checkpoint=float_checkpoint, progress=progress, log=log)


class _SignalLatch:
    """Signal handlers for a training loop; remembers which signal came last.

    SIGINT and SIGTERM raise `KeyboardInterrupt` / `Terminated` in the main thread, whatever
    disposition the process inherited (a background job ``cmd &`` starts with SIGINT
    ignored). While the interrupt checkpoint is written, `hold` makes a second signal only
    noted, so SIGINT then SIGTERM still saves and exits with the later signal's status.
    """

    def __init__(self):
        self.last: Optional[int] = None
        self._previous = {}
        self._holding = False

    def _handler(self, signum, frame):
        self.last = signum
        if self._holding:
            return
        if signum == signal.SIGTERM:
            raise Terminated()
        raise KeyboardInterrupt()

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # Signal handlers can only be set from the main thread.
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handler)

    def hold(self) -> None:
        self._holding = True

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}


def _train_locked(run: RunConfig, data: data_lib.Dataset, *, run_name: str, ckpt_dir: str,
                  run_log_dir: str, restore_from: Optional[str], keep_checkpoints: int,
                  save_every_steps: Optional[int], summary_every_steps: int,
                  histogram_every_steps: Optional[int], pictures_every_epochs: Optional[int],
                  float_checkpoint: Optional[str], progress: bool,
                  log: Callable[[str], None]) -> TrainResult:
    """`train_and_eval` once the run's folders are locked and prepared."""
    input_shape = run.model.input_shape
    # The training split stays uint8 (the in-graph pipeline scales each batch, 4x less memory).
    train_x, train_y = data.train_images, data.train_labels
    test_x = data_lib.to_float(data.test_images, input_shape)
    test_y = data.test_labels
    spe = data_lib.steps_per_epoch(len(train_x), run.batch_size)

    signals = _SignalLatch()
    signals.install()
    history: List[EpochResult] = []
    training = None
    try:
        try:
            training = _TrainingRun(run, ckpt_dir, keep_checkpoints=keep_checkpoints,
                                    float_checkpoint=float_checkpoint,
                                    restoring=bool(restore_from),
                                    summary_every_steps=summary_every_steps,
                                    histogram_every_steps=histogram_every_steps,
                                    save_every_steps=save_every_steps)
            training.start(restore_from, run_log_dir, log)
            for epoch in range(training.step // spe, run.epochs):
                result = training.train_epoch(epoch, train_x, train_y, spe=spe,
                                              progress=progress)
                eval_began = time.perf_counter()
                last = epoch + 1 == run.epochs
                pictures = last or bool(pictures_every_epochs
                                        and (epoch + 1) % pictures_every_epochs == 0)
                result.test_loss, result.test_accuracy = training.evaluate(test_x, test_y,
                                                                           pictures=pictures)
                result.eval_seconds = time.perf_counter() - eval_began
                history.append(result)
                log(f'epoch {result.epoch}/{run.epochs}  step {result.global_step}  '
                    f'train loss {result.train_loss:.4f} acc {result.train_accuracy:.4f}  '
                    f'test loss {result.test_loss:.4f} acc {result.test_accuracy:.4f}  '
                    f'{result.examples_per_sec:,.0f} examples/s')
            training.close_writers()
        except (KeyboardInterrupt, Terminated, SystemError) as e:
            if signals_lib.interrupt_in(e) is None:
                raise
            signals.hold()  # A second signal must not interrupt the checkpoint being written.
            # Nor, once the handlers are put back, the winding up and the line that says so.
            signals_lib.begin_stopping()
            name = 'SIGTERM' if signals.last == signal.SIGTERM else 'SIGINT'
            status = 143 if signals.last == signal.SIGTERM else 130
            if training is None or not training.started:
                raise TrainingInterrupted(f'{name} during start-up: nothing trained in this '
                                          'call, no checkpoint written (earlier ones are '
                                          'untouched)', exit_code=status) from None
            # The signal may land between a step and the bookkeeping after it: name the
            # checkpoint after the step the variables are really at.
            training.step = int(training.session.run(training.tensors.global_step))
            path = training.save()
            name = 'SIGTERM' if signals.last == signal.SIGTERM else name
            status = 143 if signals.last == signal.SIGTERM else status
            raise TrainingInterrupted(
                f'{name} at step {training.step}: saved {path}; train again with resume=True '
                'to continue', exit_code=status,
                cli_message=f'{name} at step {training.step}: saved {path}; run the same '
                            'command with --resume to continue') from None
    finally:
        signals.hold()
        if training is not None:
            training.close()
        signals.restore()
    checkpoint_path = training.checkpoint_path or tf.train.latest_checkpoint(ckpt_dir)
    return TrainResult(run_name=run_name, checkpoint_dir=ckpt_dir, log_dir=run_log_dir,
                       checkpoint_path=checkpoint_path, global_step=training.step,
                       history=history)


class _TrainingRun:
    """The training graph, its `TrainingLoop` on a `LocalSession`, and the evaluator of a run.

    Args:
      run: the run config.
      ckpt_dir: the run's checkpoint folder.
      keep_checkpoints: checkpoints to keep.
      float_checkpoint: a float checkpoint to initialize the model variables from.
      restoring: whether `start` will restore a checkpoint of this run.
      summary_every_steps, histogram_every_steps, save_every_steps: the loop's cadence (see
        `train_and_eval`).
    """

    def __init__(self, run: RunConfig, ckpt_dir: str, *, keep_checkpoints: int,
                 float_checkpoint: Optional[str], restoring: bool,
                 summary_every_steps: int = 50, histogram_every_steps: Optional[int] = None,
                 save_every_steps: Optional[int] = None):
        self.run = run
        self.ckpt_dir = ckpt_dir
        pipelines: List[EpochPipeline] = []

        def input_pipeline():
            pipelines.append(EpochPipeline(run.model.input_shape, run.batch_size))
            return pipelines[0].next_batch()

        optimizers = []

        def keep_optimizer(optimizer):
            optimizers.append(optimizer)
            return optimizer

        self.graph, self.tensors = graphs.build_training_graph(
            run.model, learning_rate=run.learning_rate, seed=run.seed,
            rewrite=run.quantization.training_rewrite() if run.quantization else None,
            input_pipeline=input_pipeline, wrap_optimizer=keep_optimizer)
        self.pipeline = pipelines[0]
        with self.graph.as_default():
            scalar_summaries, histogram_summaries = training_summary_ops(self.tensors)
            multi_step = None
            if run.steps_per_run > 1:
                multi_step = MultiStep(run.model, self.pipeline.next_batch, optimizers[0],
                                       self.tensors.global_step)
            self.saver = v1.train.Saver(v1.global_variables(), max_to_keep=keep_checkpoints,
                                        save_relative_paths=True)
            self.init_op = v1.global_variables_initializer()
            self.float_checkpoint = float_checkpoint if not restoring else None
            self.float_saver = None
            if self.float_checkpoint:
                self.float_variables = checkpoints.model_variables(self.graph)
                # Checked now, before any training: a float checkpoint of another model.
                checkpoints.check_variables_fit(self.float_checkpoint, self.float_variables)
                self.float_saver = v1.train.Saver(self.float_variables)
        self.graph.finalize()  # Nothing may add ops inside the loop (a classic TF1 slow-down).
        self.evaluator = Evaluator.for_run(run)
        self.session = v1.Session(graph=self.graph, config=session_config(run))
        self.local = LocalSession(self.session, self.tensors, scalar_summaries=scalar_summaries,
                                  histogram_summaries=histogram_summaries, saver=self.saver,
                                  checkpoint_dir=ckpt_dir, multi_step=multi_step)
        self.loop = TrainingLoop(self.local, batch_size=run.batch_size,
                                 steps_per_run=run.steps_per_run,
                                 summary_every_steps=summary_every_steps,
                                 histogram_every_steps=histogram_every_steps,
                                 save_every_steps=save_every_steps)
        self._loaded_split = None
        self.eval_writer = None
        self._event_bytes = {}  # Event file -> its size at the last flush.
        self.started = False

    # The loop's step and last checkpoint, under the names the rest of this module uses.
    step = property(lambda self: self.loop.step,
                    lambda self, value: setattr(self.loop, 'step', value))
    checkpoint_path = property(lambda self: self.loop.checkpoint_path)

    @property
    def train_writer(self):
        return self.local.writer

    def start(self, restore_from: Optional[str], run_log_dir: str,
              log: Callable[[str], None]) -> None:
        """Initializes or restores the variables, writes the run config, opens the writers."""
        self.local.run_log_dir = run_log_dir
        # Saver and FileWriter insist on their graph being the default one.
        with self.graph.as_default():
            if restore_from:
                # The one restore path: names and shapes checked first (resource variables
                # would take a value of any shape without complaint).
                restore.restore_variables(self.session, restore_from, v1.global_variables(),
                                          saver=self.saver)
                self.loop.checkpoint_path = restore_from
                # Let max_to_keep count the checkpoints of earlier calls too.
                state = tf.train.get_checkpoint_state(self.ckpt_dir)
                if state is not None:
                    known = [p for p in state.all_model_checkpoint_paths
                             if os.path.isfile(p + '.index')]
                    self.saver.recover_last_checkpoints(known)
            else:
                self.session.run(self.init_op)
                if self.float_saver is not None:
                    restore.restore_variables(self.session, self.float_checkpoint,
                                              self.float_variables, saver=self.float_saver)
                    log(f'initialized the model from {self.float_checkpoint}')
            write_run_config(self.ckpt_dir, self.run)
            self.local.writer = v1.summary.FileWriter(os.path.join(run_log_dir, 'train'),
                                                      self.graph)
        with self.evaluator.graph.as_default():
            self.eval_writer = v1.summary.FileWriter(os.path.join(run_log_dir, 'eval'),
                                                     self.evaluator.graph)
        self.step = int(self.session.run(self.tensors.global_step))
        self.started = True

    def save(self) -> str:
        """Writes a checkpoint at the current step; returns its path."""
        return self.loop.save()

    def train_epoch(self, epoch: int, train_x: np.ndarray, train_y: np.ndarray, *, spe: int,
                    progress: bool) -> EpochResult:
        """Trains the rest of one epoch (from the current step) and checkpoints at its end.

        ``train_x`` is the training split as stored (uint8, see `EpochPipeline.load`);
        ``train_y`` its int labels.

        The epoch's ``seconds`` run from the input pipeline's set-up to the end of the last
        step (per-step fetches and summaries included), without checkpoint saves.
        Histograms are written at the epoch's last step and every ``histogram_every_steps``.
        """
        run = self.run
        start_step = self.step - epoch * spe
        order = data_lib.epoch_order(len(train_x), run.seed, epoch)[start_step * run.batch_size:]
        began = time.perf_counter()
        if self._loaded_split is not train_x:
            self.pipeline.load(self.session, train_x, train_y)
            self._loaded_split = train_x
        self.pipeline.start(self.session, order)
        with tqdm(total=spe, initial=start_step, desc=f'epoch {epoch + 1}/{run.epochs}',
                  unit='batch', disable=not show_progress(progress), file=sys.stderr,
                  leave=False) as bar:
            stats = self.loop.run_epoch(len(order), began=began, last_step=(epoch + 1) * spe,
                                        bar=bar)
        seen = stats.examples
        return EpochResult(epoch=epoch + 1, global_step=self.step,
                           train_loss=stats.loss_sum / max(seen, 1),
                           train_accuracy=stats.accuracy_sum / max(seen, 1),
                           test_loss=float('nan'), test_accuracy=float('nan'),
                           examples_per_sec=seen / max(stats.seconds, 1e-9),
                           seconds=stats.seconds, save_seconds=stats.save_seconds)

    def evaluate(self, test_x: np.ndarray, test_y: np.ndarray, *,
                 pictures: bool = True) -> Tuple[float, float]:
        """Test loss and accuracy of the latest checkpoint in the inference graph; logged.

        Args:
          test_x: float test images in the model's input layout.
          test_y: int test labels.
          pictures: also draw the evaluation pictures into the eval log.
        """
        self.evaluator.restore(self.checkpoint_path)
        logits = self.evaluator.logits(test_x)
        loss, accuracy = softmax_cross_entropy(logits, test_y)
        self._log_write(self.eval_writer.add_summary,
                        scalar_summary(loss=loss, accuracy=accuracy), self.step)
        # Pictures (confusion matrix, confident mistakes) and QAT ranges: graph_models/tb_pictures.
        from graph_models.training import tensorboard
        self._log_write(self.eval_writer.add_summary, tensorboard.eval_summary(
            self.evaluator, test_x, test_y, data_lib.class_names(self.run.dataset),
            logits=logits if pictures else None), self.step)
        self._flush_writers()
        return loss, accuracy

    def _log_write(self, call, *args):
        return self.local.log_write(call, *args)

    def _flush_writers(self) -> None:
        """Flushes both summary writers and checks that their event files grew.

        Each epoch adds summaries to both writers, so a file that did not grow lost them. TF's
        C++ events writer reports some failures (an event file it cannot open on a full disk)
        only in its own log and raises nothing; the size check makes them our error too.
        """
        for writer in (self.train_writer, self.eval_writer):
            self._log_write(writer.flush)
            path = writer.event_writer._ev_writer.FileName()  # pylint: disable=protected-access
            size = os.path.getsize(path) if os.path.isfile(path) else 0
            if size <= self._event_bytes.get(path, 0):
                log_dir = os.path.dirname(self.local.run_log_dir)
                problem = (f'cannot write TensorBoard logs in {log_dir} (nothing reached {path}: '
                           'disk full or not writable); free disk space or choose another ')
                intact = f'; the checkpoints in {self.ckpt_dir} are intact'
                raise GraphModelsError(problem + 'log folder' + intact,
                                       cli_message=problem + '--log-dir' + intact)
            self._event_bytes[path] = size

    def close_writers(self) -> None:
        """Flushes and closes the summary writers (raises `GraphModelsError` on failure)."""
        writers = [w for w in (self.train_writer, self.eval_writer) if w is not None]
        self.local.writer = self.eval_writer = None
        for writer in writers:
            self._log_write(writer.close)

    def close(self) -> None:
        """Closes everything; on the error path a writer failure must not hide the first."""
        for writer in (self.train_writer, self.eval_writer):
            if writer is not None:
                with contextlib.suppress(RuntimeError):
                    writer.close()  # Flushes pending summaries, on every error.
        self.session.close()
        self.evaluator.close()
