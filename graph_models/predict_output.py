"""The text and JSON output of ``graph-models predict`` (top-k classes with names)."""

import json
from typing import Sequence

import numpy as np


def best_classes(probabilities: np.ndarray, names: Sequence[str], k: int):
    """The ``k`` most likely classes of one probability row, most likely first.

    Returns:
      ``[{'index', 'label', 'probability'}]`` (label is the index when ``names`` is short).
    """
    order = np.argsort(-probabilities, kind='stable')[:k]
    return [{'index': int(i), 'label': names[i] if i < len(names) else str(int(i)),
             'probability': float(probabilities[i])} for i in order]


def format_predictions(paths: Sequence[str], probabilities: np.ndarray, names: Sequence[str],
                       *, top_k: int = 1, as_json: bool = False) -> str:
    """One line per image (``path: label (confidence 0.987)``, then the runners-up), or JSON.

    The JSON document is ``{"predictions": [{"path", "top_k": [{"index", "label",
    "probability"}]}]}``.
    """
    rows = [(path, best_classes(p, names, top_k))
            for path, p in zip(paths, probabilities)]
    if as_json:
        return json.dumps({'predictions': [{'path': path, 'top_k': best}
                                           for path, best in rows]}, indent=2)
    lines = []
    for path, best in rows:
        line = f"{path}: {best[0]['label']} (confidence {best[0]['probability']:.3f})"
        if len(best) > 1:
            line += '; then ' + ', '.join(f"{b['label']} {b['probability']:.3f}"
                                          for b in best[1:])
        lines.append(line)
    return '\n'.join(lines)
