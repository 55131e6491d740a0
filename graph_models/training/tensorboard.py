"""TensorBoard additions of the eval run: the evaluation pictures as image summaries (after
the last epoch, or every ``pictures_every_epochs``), and after every epoch of a QAT run one
scalar per fake-quant range (``quant_ranges/<layer>/min|max``).
"""

import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from graph_models._tf import tf, v1
from graph_models.nets import graphs

# A fake-quant range is a pair of variables <scope>/min and <scope>/max (weights_quant,
# act_quant, ...); matched by name so that any rewrite with these names is covered.
_RANGE = re.compile(r'^(?P<scope>.+_quant)/(?P<end>min|max)$')


def quant_range_variables(graph) -> List[Tuple[str, str, object]]:
    """``[(layer scope, 'min'|'max', variable)]`` of the fake-quant ranges in ``graph``."""
    found = []
    with graph.as_default():
        for var in v1.global_variables():
            match = _RANGE.match(var.op.name)
            if match:
                found.append((match['scope'], match['end'], var))
    return sorted(found, key=lambda item: (item[0], item[1]))


def _image(tag: str, png: bytes) -> v1.Summary.Value:
    from graph_models.pictures import png_size
    width, height = png_size(png)
    return v1.Summary.Value(tag=tag, image=v1.Summary.Image(
        height=height, width=width, colorspace=4, encoded_image_string=png))


def eval_summary(evaluator, images: np.ndarray, labels: np.ndarray,
                 class_names: Optional[Sequence[str]] = None,
                 *, logits: Optional[np.ndarray] = None) -> v1.Summary:
    """The pictures and quantization ranges of a restored `graph_models.training.scoring.Evaluator`.

    Args:
      evaluator: an evaluator with the checkpoint to describe restored.
      images: float test images in the model's input layout.
      labels: int test labels.
      class_names: display names by class index.
      logits: the evaluator's logits ``[N, C]`` of ``images``: draw the image summaries
        (``pictures/confusion_matrix``, ``pictures/mistakes``) from them. None: ranges only.

    Returns:
      A ``Summary`` for the eval writer.
    """
    values = []
    ranges = quant_range_variables(evaluator.graph)
    if ranges:
        numbers = evaluator.session.run([var for _, _, var in ranges])
        for (scope, end, _), value in zip(ranges, numbers):
            values.append(v1.Summary.Value(tag=f'quant_ranges/{scope}/{end}',
                                           simple_value=float(np.asarray(value).ravel()[0])))
    if logits is not None:
        from graph_models.pictures import report_pictures, softmax
        probs = softmax(logits)
        for name, png in report_pictures(images, labels, probs, class_names).items():
            values.append(_image(f'pictures/{name}', png))
    return v1.Summary(value=values)


def range_tags(summary: v1.Summary) -> Dict[str, float]:
    """``tag -> value`` of the scalar values in a summary (for tests and logs)."""
    return {v.tag: v.simple_value for v in summary.value if v.WhichOneof('value') ==
            'simple_value'}


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
