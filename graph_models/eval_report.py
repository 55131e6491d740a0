"""``eval --report DIR`` and the TensorBoard eval pictures: confusion matrix, the most confident
mistakes, per-class precision and recall."""

import json
import os
from typing import Dict, Optional, Sequence

import numpy as np

from graph_models import pictures
from graph_models.fileio import atomic_write

MISTAKES = 16


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of float ``[N, C]`` logits."""
    z = np.exp(logits - logits.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def report_pictures(images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray,
                    class_names: Optional[Sequence[str]] = None, *,
                    title: str = '') -> Dict[str, bytes]:
    """The PNGs of an evaluation: ``confusion_matrix`` and ``mistakes`` (None-free dict).

    ``mistakes`` is left out when every prediction is right.
    """
    num_classes = probabilities.shape[1]
    matrix = pictures.confusion_matrix(labels, probabilities.argmax(1), num_classes)
    out = {'confusion_matrix': pictures.confusion_matrix_png(
        matrix, class_names, title=f'confusion matrix {title}'.strip())}
    worst = pictures.worst_mistakes(probabilities, labels, MISTAKES)
    if len(worst):
        out['mistakes'] = pictures.prediction_grid(
            images[worst], probabilities[worst], labels[worst], class_names,
            title=f'most confident mistakes {title}'.strip())
    return out


def write_eval_report(out_dir: str, images: np.ndarray, labels: np.ndarray,
                      probabilities: np.ndarray, class_names: Optional[Sequence[str]] = None,
                      *, model: str = '') -> Dict[str, str]:
    """Writes ``confusion_matrix.png``, ``mistakes.png`` and ``per_class.json`` into ``out_dir``.

    Args:
      out_dir: the report folder (created).
      images: the evaluated images ``[N, 784]`` or ``[N, 28, 28(, 1)]``, floats in [0, 1].
      labels: int true labels ``[N]``.
      probabilities: float ``[N, C]``.
      class_names: display names by class index.
      model: the model's path, recorded in the JSON.

    Returns:
      Kind -> written path.
    """
    os.makedirs(out_dir, exist_ok=True)
    written = {}
    for name, png in report_pictures(images, labels, probabilities, class_names).items():
        path = os.path.join(out_dir, f'{name}.png')
        atomic_write(path, png)
        written[name] = path
    matrix = pictures.confusion_matrix(labels, probabilities.argmax(1), probabilities.shape[1])
    metrics = pictures.per_class_metrics(matrix, class_names)
    metrics.update(model=model, examples=int(len(labels)),
                   confusion_matrix=matrix.tolist())
    path = os.path.join(out_dir, 'per_class.json')
    atomic_write(path, (json.dumps(metrics, indent=2) + '\n').encode())
    written['per_class'] = path
    return written
