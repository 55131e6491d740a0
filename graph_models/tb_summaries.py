"""The training graph's TensorBoard summaries (``<log_dir>/<run>/train`` and ``eval``)."""

from typing import Tuple

from graph_models import graphs
from graph_models._tf import tf, v1


def training_summary_ops(tensors: graphs.TrainingTensors) -> Tuple[tf.Tensor, tf.Tensor]:
    """The training graph's summaries as two merged ops: cheap scalars and costly histograms.

    Histograms cost far more than a training step (``HistogramSummary`` buckets every weight
    on one thread: about 78% of a summary step's op time for the MLP, traced), so the training
    loop writes them less often than the scalars. The legacy summary ops take their tag
    verbatim (``v1.summary.scalar('loss', ...)`` would tag ``loss_1``, since the public
    ``loss`` tensor owns that name).

    Returns:
      ``(scalars, histograms)``: merged ``loss``, ``accuracy``, ``learning_rate`` scalars, and
      merged ``weights/<variable>`` and ``activations/<layer>`` histograms.
    """
    with tf.name_scope('summaries'):
        scalars = [tf.raw_ops.ScalarSummary(tags=tag, values=value)
                   for tag, value in (('loss', tensors.loss), ('accuracy', tensors.accuracy),
                                      ('learning_rate', tensors.learning_rate))]
        histograms = [tf.raw_ops.HistogramSummary(tag='weights/' + var.op.name, values=var)
                      for var in v1.trainable_variables()]
        histograms += [tf.raw_ops.HistogramSummary(tag='activations/' + name, values=tensor)
                       for name, tensor in tensors.model.end_points.items()]
        return v1.summary.merge(scalars), v1.summary.merge(histograms)


def add_training_summaries(tensors: graphs.TrainingTensors) -> tf.Tensor:
    """Scalar and histogram summaries of the training graph; returns the merged op."""
    return v1.summary.merge(list(training_summary_ops(tensors)))


def scalar_summary(**values: float) -> v1.Summary:
    """A ``Summary`` of plain scalars, ``tag=value`` (the evaluation's loss and accuracy)."""
    return v1.Summary(value=[v1.Summary.Value(tag=k, simple_value=v) for k, v in values.items()])
