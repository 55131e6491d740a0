"""Training under ``tf.compat.v1.Session``: `train_and_eval`.

The training graph (dropout, labels, loss, Adam, summaries) lives in its own ``tf.Graph``.
Evaluation uses a separate inference graph (no dropout, moving batch-norm statistics) that
restores each epoch's checkpoint, as TF1's train/eval split did, so the figures it reports are
those of the graph that export will freeze.

Outputs of a run called ``RUN``:

- ``<checkpoint_dir>/RUN/model.ckpt-<step>.*``, the ``checkpoint`` state file and
  ``run_config.json`` (see `graph_models.run_config`);
- ``<log_dir>/RUN/train`` (graph, loss, accuracy, learning rate, weight and activation
  histograms) and ``<log_dir>/RUN/eval`` (graph, test loss and accuracy per epoch).
"""

import dataclasses
import math
import os
import shutil
import sys
import time
from typing import Callable, List, Optional, Tuple

import numpy as np
from tqdm import tqdm

from graph_models import checkpoints
from graph_models import data as data_lib
from graph_models import graphs
from graph_models._tf import tf, v1
from graph_models.errors import (CheckpointError, ConfigError, GraphModelsError, TrainingError,
                                 TrainingInterrupted)
from graph_models.nets_factory import ModelConfig
from graph_models.run_config import RunConfig, read_run_config, write_run_config

CHECKPOINT_PREFIX = 'model.ckpt'


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
      examples_per_sec: training throughput of the epoch (training steps only).
      seconds: wall time of the epoch's training steps.
    """

    epoch: int
    global_step: int
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    examples_per_sec: float
    seconds: float


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


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> Tuple[float, float]:
    """Mean cross-entropy and accuracy of ``logits [N, C]`` against int ``labels [N]``."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = float(-log_probs[np.arange(len(labels)), labels].mean())
    accuracy = float((logits.argmax(axis=1) == labels).mean())
    return loss, accuracy


class Evaluator:
    """An inference graph in its own session that restores checkpoints and evaluates arrays.

    Args:
      model_config: which network.
      batch_size: static batch size of the graph, or None for a dynamic one.
      rewrite: in-place rewrite of the inference graph (for example the quantization eval
        rewrite).
    """

    @classmethod
    def for_run(cls, run: RunConfig, batch_size: Optional[int] = None) -> 'Evaluator':
        """The evaluator of a run: quantized (eval rewrite) when the run was."""
        rewrite = run.quantization.eval_rewrite() if run.quantization else None
        return cls(run.model, batch_size=batch_size, rewrite=rewrite)

    def __init__(self, model_config: ModelConfig, batch_size: Optional[int] = None,
                 rewrite: Optional[graphs.GraphRewrite] = None):
        self.graph, self.model = graphs.build_inference_graph(
            model_config, batch_size=batch_size, rewrite=rewrite)
        with self.graph.as_default():
            self._saver = v1.train.Saver(v1.global_variables())
            self._global_step = v1.train.get_global_step()
        self.session = v1.Session(graph=self.graph)

    def restore(self, checkpoint_path: str) -> int:
        """Restores a checkpoint; returns its global step."""
        with self.graph.as_default():
            self._saver.restore(self.session, checkpoint_path)
        return int(self.session.run(self._global_step))

    def logits(self, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        """Runs ``Logits`` over float ``images [N, ...]`` in chunks; returns ``[N, C]``."""
        chunks = [self.session.run(self.model.logits, {self.model.inputs: images[i:i + batch_size]})
                  for i in range(0, len(images), batch_size)]
        return np.concatenate(chunks)

    def evaluate(self, images: np.ndarray, labels: np.ndarray) -> Tuple[float, float]:
        """Mean cross-entropy and accuracy on float ``images`` and int ``labels``."""
        return softmax_cross_entropy(self.logits(images), labels)

    def close(self):
        self.session.close()


class EpochPipeline:
    """An in-graph input pipeline, fed once per epoch instead of once per step.

    The epoch's examples, already in the run's seeded order, go into a ``tf.data`` iterator;
    training steps then run with no ``feed_dict``. Batches are exactly those of
    `graph_models.data.iterate_batches`, so results and resumption are unchanged, and the
    per-step copy and feed overhead is gone. ``Input`` and ``Labels`` default to the iterator's
    batch and can still be fed.

    Args:
      input_shape: shape of one example.
      batch_size: examples per batch (the epoch's last batch may be smaller).
    """

    def __init__(self, input_shape, batch_size: int):
        self.images = v1.placeholder(tf.float32, [None, *input_shape], name='epoch_images')
        self.labels = v1.placeholder(tf.int64, [None], name='epoch_labels')
        dataset = tf.data.Dataset.from_tensor_slices((self.images, self.labels))
        dataset = dataset.batch(batch_size).prefetch(2)
        self.iterator = v1.data.make_initializable_iterator(dataset)

    def next_batch(self):
        return self.iterator.get_next()

    def start(self, session, images: np.ndarray, labels: np.ndarray) -> None:
        """Loads one epoch's examples (in training order) into the pipeline."""
        session.run(self.iterator.initializer, {self.images: images, self.labels: labels})


def _add_training_summaries(tensors: graphs.TrainingTensors) -> tf.Tensor:
    """Scalar and histogram summaries of the training graph; returns the merged op.

    The legacy summary ops take their tag verbatim (``v1.summary.scalar('loss', ...)`` would
    tag ``loss_1``, since the public ``loss`` tensor owns that name).
    """
    with tf.name_scope('summaries'):
        summaries = [tf.raw_ops.ScalarSummary(tags=tag, values=value)
                     for tag, value in (('loss', tensors.loss), ('accuracy', tensors.accuracy),
                                        ('learning_rate', tensors.learning_rate))]
        summaries += [tf.raw_ops.HistogramSummary(tag='weights/' + var.op.name, values=var)
                      for var in v1.trainable_variables()]
        summaries += [tf.raw_ops.HistogramSummary(tag='activations/' + name, values=tensor)
                      for name, tensor in tensors.model.end_points.items()]
        return v1.summary.merge(summaries)


def _scalar_summary(**values: float) -> v1.Summary:
    return v1.Summary(value=[v1.Summary.Value(tag=k, simple_value=v) for k, v in values.items()])


def _prepare_run_folders(checkpoint_dir: str, log_dir: str, *, resume: bool,
                         overwrite: bool, run: RunConfig) -> Optional[str]:
    """Checks the run's folders against resume/overwrite; returns the checkpoint to resume."""
    latest = tf.train.latest_checkpoint(checkpoint_dir) if os.path.isdir(checkpoint_dir) else None
    if resume:
        if latest is None:
            raise CheckpointError(f'no checkpoint to resume in {checkpoint_dir}; drop --resume '
                                  'to start a new run')
        saved = read_run_config(checkpoint_dir)
        changed = saved.differences(run)
        if changed:
            raise ConfigError(f'cannot resume {checkpoint_dir}: {", ".join(changed)} differ from '
                              'the checkpoint\'s run config; use the same settings or a new '
                              '--run-name')
        return latest
    if overwrite:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
        shutil.rmtree(log_dir, ignore_errors=True)
    elif latest is not None:
        raise ConfigError(f'{checkpoint_dir} already holds a checkpoint; pass --resume to '
                          'continue it, --overwrite to start again, or a new --run-name')
    return None


def train_and_eval(run: RunConfig, data: data_lib.Dataset, *, run_name: Optional[str] = None,
                   log_dir: str = 'logs', checkpoint_dir: str = 'checkpoints',
                   keep_checkpoints: int = 5, save_every_steps: Optional[int] = None,
                   summary_every_steps: int = 50, resume: bool = False,
                   overwrite: bool = False, resume_from_float: Optional[str] = None,
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
      summary_every_steps: write training summaries every this many steps.
      resume: continue from the latest checkpoint of the run (same global step, optimizer
        state and data order); its settings must match ``run`` except ``epochs``.
      overwrite: delete the run's existing checkpoints and logs first.
      resume_from_float: a float checkpoint (folder or prefix) of the same model to start a
        quantized run from: its weights, biases and batch-norm statistics are restored; the
        quantization ranges, global step and optimizer start fresh.
      progress: show a per-epoch progress bar (loss, examples per second) on stderr.
      log: where the per-epoch lines go.

    Returns:
      The `TrainResult`.

    Raises:
      ConfigError: on bad arguments, or an existing run without ``resume``/``overwrite``.
      CheckpointError: if ``resume`` finds no checkpoint or an unreadable one.
      TrainingError: if the loss becomes NaN or infinite (the last good checkpoint is kept).
      TrainingInterrupted: on Ctrl-C, after saving a checkpoint at the current step.
    """
    for name, value in (('keep_checkpoints', keep_checkpoints),
                        ('summary_every_steps', summary_every_steps),
                        ('save_every_steps', save_every_steps or 1)):
        if value <= 0:
            raise ConfigError(f'{name.replace("_", " ")} must be positive, got {value}')
    if data.name != run.dataset:
        raise ConfigError(f'the data is {data.name!r} but the run config says {run.dataset!r}')
    if resume_from_float is not None:
        if resume:
            raise ConfigError('--resume and --resume-from-float exclude each other: resume '
                              'continues this run, resume-from-float starts it')
        float_checkpoint = checkpoints.resolve_checkpoint(resume_from_float)
    run_name = run_name or f'{run.model.name}-{run.dataset}' + ('-qat' if run.quantization
                                                                   else '')
    ckpt_dir = os.path.join(checkpoint_dir, run_name)
    run_log_dir = os.path.join(log_dir, run_name)
    restore_from = _prepare_run_folders(ckpt_dir, run_log_dir, resume=resume,
                                        overwrite=overwrite, run=run)

    # Fail on an unusable output folder now, not after the first epoch.
    for folder, flag in ((ckpt_dir, '--checkpoint-dir'),
                         (os.path.join(run_log_dir, 'train'), '--log-dir'),
                         (os.path.join(run_log_dir, 'eval'), '--log-dir')):
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise GraphModelsError(f'cannot create folder {folder} ({e.strerror}); choose '
                                   f'another {flag}') from None

    input_shape = run.model.input_shape
    train_x = data_lib.to_float(data.train_images, input_shape)
    train_y = data.train_labels
    test_x = data_lib.to_float(data.test_images, input_shape)
    test_y = data.test_labels
    spe = data_lib.steps_per_epoch(len(train_x), run.batch_size)
    total_steps = run.epochs * spe

    pipelines: List[EpochPipeline] = []

    def input_pipeline():
        pipelines.append(EpochPipeline(input_shape, run.batch_size))
        return pipelines[0].next_batch()

    graph, t = graphs.build_training_graph(
        run.model, learning_rate=run.learning_rate, seed=run.seed,
        rewrite=run.quantization.training_rewrite() if run.quantization else None,
        input_pipeline=input_pipeline)
    pipeline = pipelines[0]
    with graph.as_default():
        summary_op = _add_training_summaries(t)
        saver = v1.train.Saver(v1.global_variables(), max_to_keep=keep_checkpoints,
                               save_relative_paths=True)
        init_op = v1.global_variables_initializer()
        float_saver = None
        if resume_from_float is not None and restore_from is None:
            float_variables = checkpoints.model_variables(graph)
            checkpoints.check_variables_fit(float_checkpoint, float_variables)
            float_saver = v1.train.Saver(float_variables)
    graph.finalize()  # Nothing may add ops inside the loop (a classic TF1 slow-down).

    evaluator = Evaluator.for_run(run)
    session = v1.Session(graph=graph)
    train_writer = eval_writer = None
    history: List[EpochResult] = []
    checkpoint_path = restore_from or ''
    try:
        # Saver and FileWriter insist on their graph being the default one.
        with graph.as_default():
            if restore_from:
                try:
                    saver.restore(session, restore_from)
                except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError,
                        tf.errors.DataLossError) as e:
                    raise CheckpointError(f'cannot restore {restore_from}: '
                                          f'{e.message.splitlines()[0]}') from None
            else:
                session.run(init_op)
                if float_saver is not None:
                    float_saver.restore(session, float_checkpoint)
                    log(f'initialized the model from {float_checkpoint}')
            write_run_config(ckpt_dir, run)
            train_writer = v1.summary.FileWriter(os.path.join(run_log_dir, 'train'), graph)
            with evaluator.graph.as_default():
                eval_writer = v1.summary.FileWriter(os.path.join(run_log_dir, 'eval'),
                                                    evaluator.graph)

            step = int(session.run(t.global_step))
            if step >= total_steps:
                log(f'{ckpt_dir} is already trained to step {step} ({run.epochs} epochs); '
                    'nothing to do (raise --epochs to train further)')

            def save() -> str:
                try:
                    return saver.save(session, os.path.join(ckpt_dir, CHECKPOINT_PREFIX),
                                      global_step=step, write_meta_graph=False)
                except tf.errors.OpError as e:
                    raise CheckpointError(f'cannot write a checkpoint in {ckpt_dir} '
                                          f'({e.message.splitlines()[0]}); free disk space '
                                          'or choose another --checkpoint-dir') from None

            for epoch in range(step // spe, run.epochs):
                start_step = step - epoch * spe
                order = data_lib.epoch_order(len(train_x), run.seed, epoch)
                order = order[start_step * run.batch_size:]
                pipeline.start(session, train_x[order], train_y[order])
                bar = tqdm(total=spe, initial=start_step, desc=f'epoch {epoch + 1}/{run.epochs}',
                           unit='batch', disable=not progress, file=sys.stderr, leave=False)
                loss_sum = acc_sum = 0.0
                seen = 0
                train_seconds = 0.0
                try:
                    for first in range(0, len(order), run.batch_size):
                        want_summary = (step + 1) % summary_every_steps == 0
                        fetches = [t.train_op, t.loss, t.accuracy] + ([summary_op] if want_summary
                                                                      else [])
                        began = time.perf_counter()
                        results = session.run(fetches)
                        train_seconds += time.perf_counter() - began
                        loss, acc = float(results[1]), float(results[2])
                        if not math.isfinite(loss):
                            raise TrainingError(
                                f'loss became {loss} at step {step + 1}; the last good checkpoint '
                                f'is {checkpoint_path or "none (no checkpoint yet)"}; lower the '
                                'learning rate and resume or start again')
                        step += 1
                        n = min(run.batch_size, len(order) - first)
                        loss_sum += loss * n
                        acc_sum += acc * n
                        seen += n
                        if want_summary:
                            train_writer.add_summary(results[3], step)
                        if save_every_steps and step % save_every_steps == 0:
                            checkpoint_path = save()
                        bar.set_postfix(loss=f'{loss:.4f}',
                                        ex_s=f'{seen / max(train_seconds, 1e-9):,.0f}')
                        bar.update(1)
                except KeyboardInterrupt:
                    checkpoint_path = save()
                    raise TrainingInterrupted(
                        f'interrupted at step {step}; saved {checkpoint_path}; run the same '
                        'command with --resume to continue') from None
                finally:
                    bar.close()

                checkpoint_path = save()
                evaluator.restore(checkpoint_path)
                test_loss, test_acc = evaluator.evaluate(test_x, test_y)
                eval_writer.add_summary(_scalar_summary(loss=test_loss, accuracy=test_acc), step)
                train_writer.flush()
                eval_writer.flush()
                result = EpochResult(epoch=epoch + 1, global_step=step,
                                     train_loss=loss_sum / max(seen, 1),
                                     train_accuracy=acc_sum / max(seen, 1), test_loss=test_loss,
                                     test_accuracy=test_acc,
                                     examples_per_sec=seen / max(train_seconds, 1e-9),
                                     seconds=train_seconds)
                history.append(result)
                log(f'epoch {result.epoch}/{run.epochs}  step {step}  '
                    f'train loss {result.train_loss:.4f} acc {result.train_accuracy:.4f}  '
                    f'test loss {test_loss:.4f} acc {test_acc:.4f}  '
                    f'{result.examples_per_sec:,.0f} examples/s')
            if not checkpoint_path:
                checkpoint_path = tf.train.latest_checkpoint(ckpt_dir)
    finally:
        for writer in (train_writer, eval_writer):
            if writer is not None:
                writer.close()
        session.close()
        evaluator.close()
    return TrainResult(run_name=run_name, checkpoint_dir=ckpt_dir, log_dir=run_log_dir,
                       checkpoint_path=checkpoint_path, global_step=step, history=history)
