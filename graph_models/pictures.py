"""Every picture the toolkit draws, as PNG bytes (no display needed, no TensorFlow import).

- `prediction_grid`: input images with predicted label, confidence and, when known, the true
  label (`grid_titles`); mistakes get a red frame and title (``predict --grid``, ``eval
  --report``, the mistakes TensorBoard draws after training).
- `confusion_matrix_png`: counts with per-cell numbers (``eval --report``, TensorBoard).
- `compare_report_png`: the ``compare`` report: bars from zero with their values, error bars
  (sample std over seeds) and the paired graph - Keras differences with 95% intervals
  (`compare_report_figure` gives the matplotlib Figure, for measuring its layout).
- `png_size`: a PNG's width and height from its header (TensorBoard image summaries).

The grid and the confusion matrix, drawn after every training run, use Pillow (matplotlib's
import alone took 0.4 s of a 9 s MLP run); the compare report uses matplotlib (Agg backend).
Functions return bytes so callers write them atomically.
"""

import io
import math
import os
import struct
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt
    return plt


def _png(fig, dpi: int = 90) -> bytes:
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png', dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def png_size(png: bytes) -> Tuple[int, int]:
    """``(width, height)`` of PNG bytes, read from the IHDR chunk (no decoding).

    Raises:
      ValueError: the bytes are not a PNG.
    """
    if len(png) < 24 or png[:8] != b'\x89PNG\r\n\x1a\n' or png[12:16] != b'IHDR':
        raise ValueError('not a PNG image')
    width, height = struct.unpack('>II', png[16:24])
    return width, height


def _name(labels: Optional[Sequence[str]], index: int) -> str:
    if labels is not None and 0 <= index < len(labels):
        return labels[index]
    return str(index)


def confidence_text(probability: float) -> str:
    """A probability as a percentage that never reads "100%" unless it is 1.

    Whole percents, rounded (0.985 -> "98%", at most "99%"); from 99% up, and below 1%, one
    decimal, rounded but at most "99.9%" (0.996 -> "99.6%", 0.9999 -> "99.9%", 0.004 -> "0.4%").
    Rounded, not cut: a float32 softmax output of 0.996 is 0.99599999, which must not read
    "99.5%". A NaN (a model whose outputs are not numbers) reads "nan".
    """
    percent = 100.0 * float(probability)
    if math.isnan(percent):
        return 'nan'
    if percent >= 100.0:
        return '100%'
    if percent >= 99.0 or percent < 1.0:
        return f'{min(round(percent, 1), 99.9):.1f}%'
    return f'{min(round(percent), 99)}%'


def _font(size: int):
    """DejaVu Sans (the face of the matplotlib pictures, from its data folder, without importing
    matplotlib) at ``size`` pixels; Pillow's own font where that file is missing."""
    from PIL import ImageFont
    try:
        import importlib.util
        folder = importlib.util.find_spec('matplotlib').submodule_search_locations[0]
        return ImageFont.truetype(os.path.join(folder, 'mpl-data', 'fonts', 'ttf',
                                               'DejaVuSans.ttf'), size)
    except (AttributeError, TypeError, IndexError, OSError):
        return ImageFont.load_default(size)


def _image_png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format='PNG')
    return buffer.getvalue()


def _text_size(draw, text: str, font) -> Tuple[int, int]:
    left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=font, align='center')
    return right - left, bottom - top


def grid_titles(probabilities: np.ndarray, true_labels: Optional[np.ndarray] = None,
                class_names: Optional[Sequence[str]] = None) -> List[Tuple[str, str]]:
    """``(text, color)`` of every cell of `prediction_grid`: ``<predicted> <confidence>``, and
    ``(true <label>)`` in red for a mistake; green when right, black when labels are unknown."""
    probabilities = np.asarray(probabilities, np.float64)
    titles = []
    for i, p in enumerate(probabilities):
        predicted = int(p.argmax())
        text, color = f'{_name(class_names, predicted)} {confidence_text(p.max())}', 'black'
        if true_labels is not None:
            wrong = int(true_labels[i]) != predicted
            color = 'red' if wrong else 'green'
            if wrong:
                text += f'\n(true {_name(class_names, int(true_labels[i]))})'
        titles.append((text, color))
    return titles


_RGB = {'black': (0, 0, 0), 'red': (215, 0, 0), 'green': (0, 140, 0), 'gray': (128, 128, 128)}


def prediction_grid(images: np.ndarray, probabilities: np.ndarray,
                    true_labels: Optional[np.ndarray] = None,
                    class_names: Optional[Sequence[str]] = None, *, columns: int = 8,
                    title: Optional[str] = None) -> bytes:
    """A grid of input images, each titled with its prediction (`grid_titles`).

    Drawn with Pillow (no matplotlib: it is drawn after every training run, and matplotlib's
    import alone took 0.4 s there).

    Args:
      images: ``[N, 28, 28]`` or ``[N, 784]`` or ``[N, 28, 28, 1]``, uint8 or float in [0, 1].
      probabilities: float ``[N, C]`` (softmax outputs).
      true_labels: int ``[N]`` or None when unknown.
      class_names: display names by class index (default the index).
      columns: images per row.
      title: figure title.

    Returns:
      PNG bytes. Each cell reads ``<predicted> <confidence>%``, plus ``(true <label>)`` and a red
      frame when the prediction is wrong; correct ones get a green frame when labels are known.
    """
    from PIL import Image, ImageDraw
    images = np.asarray(images)
    n = len(images)
    if n == 0:
        raise ValueError('no images to draw')
    side = int(round(math.sqrt(images[0].size)))
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    ink = np.clip(images.reshape(n, side, side).astype(np.float64) / scale, 0.0, 1.0)
    titles = grid_titles(probabilities, true_labels, class_names)
    columns = max(1, min(columns, n))
    rows = math.ceil(n / columns)
    zoom, frame, gap, head = 5, 3, 24, 36  # Pixels: digit zoom, frame, gap, cell title.
    box = side * zoom + 2 * frame
    top = 40 if title else 8
    canvas = Image.new('RGB', (columns * (box + gap) + gap, top + rows * (head + box + gap)),
                       'white')
    draw = ImageDraw.Draw(canvas)
    font = _font(13)
    for i, (text, color) in enumerate(titles):
        x = gap + (i % columns) * (box + gap)
        y = top + (i // columns) * (head + box + gap) + head
        width = frame if color == 'red' else 2
        draw.rectangle([x, y, x + box - 1, y + box - 1],
                       fill=_RGB['gray' if color == 'black' else color])
        draw.rectangle([x + width, y + width, x + box - 1 - width, y + box - 1 - width],
                       fill='white')
        digit = Image.fromarray(np.round(255 * (1.0 - ink[i])).astype(np.uint8), 'L')
        canvas.paste(digit.resize((side * zoom, side * zoom), Image.NEAREST),
                     (x + frame, y + frame))
        w, h = _text_size(draw, text, font)
        draw.multiline_text((x + (box - w) / 2, y - h - 6), text, fill=_RGB[color], font=font,
                            align='center')
    if title:
        big = _font(16)
        w, _ = _text_size(draw, title, big)
        draw.text(((canvas.width - w) / 2, 10), title, fill='black', font=big)
    return _image_png(canvas)


def confusion_matrix(true_labels: np.ndarray, predicted: np.ndarray,
                     num_classes: int) -> np.ndarray:
    """Counts ``[num_classes, num_classes]``: row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (np.asarray(true_labels, np.int64), np.asarray(predicted, np.int64)), 1)
    return matrix


def per_class_metrics(matrix: np.ndarray, class_names: Optional[Sequence[str]] = None) -> Dict:
    """Per-class precision, recall and support from a confusion matrix.

    Returns:
      ``{'classes': [{'index', 'name', 'precision', 'recall', 'support'}], 'accuracy'}``;
      precision is None for a class never predicted, recall None for a class absent.
    """
    classes = []
    for k in range(len(matrix)):
        predicted, support = int(matrix[:, k].sum()), int(matrix[k].sum())
        classes.append({'index': k, 'name': _name(class_names, k),
                        'precision': float(matrix[k, k] / predicted) if predicted else None,
                        'recall': float(matrix[k, k] / support) if support else None,
                        'support': support})
    total = int(matrix.sum())
    return {'classes': classes,
            'accuracy': float(np.trace(matrix) / total) if total else None}


# Matplotlib's 'Blues' at nine even steps: the colour of a count from 0 to the largest.
_BLUES = np.array([(247, 251, 255), (222, 235, 247), (198, 219, 239), (158, 202, 225),
                   (107, 174, 214), (66, 146, 198), (33, 113, 181), (8, 81, 156), (8, 48, 107)],
                  np.float64)


def _blue(fraction: float) -> Tuple[int, int, int]:
    position = min(max(fraction, 0.0), 1.0) * (len(_BLUES) - 1)
    low = int(position)
    high = min(low + 1, len(_BLUES) - 1)
    mixed = _BLUES[low] + (position - low) * (_BLUES[high] - _BLUES[low])
    return tuple(int(round(c)) for c in mixed)


def _rotated_text(text: str, font, angle: float):
    """``text`` in black on a transparent image turned by ``angle`` degrees (counter-clockwise)."""
    from PIL import Image, ImageDraw
    left, top, right, bottom = font.getbbox(text)
    image = Image.new('RGBA', (right - left + 2, bottom - top + 2), (255, 255, 255, 0))
    ImageDraw.Draw(image).text((1 - left, 1 - top), text, fill='black', font=font)
    return image.rotate(angle, expand=True, resample=Image.BICUBIC)


def confusion_matrix_png(matrix: np.ndarray, class_names: Optional[Sequence[str]] = None,
                         title: str = 'confusion matrix') -> bytes:
    """The confusion matrix as a heat map (rows: true class, columns: predicted) with the count
    in every non-zero cell; drawn with Pillow, like `prediction_grid`."""
    from PIL import Image, ImageDraw
    matrix = np.asarray(matrix)
    k = len(matrix)
    names = [_name(class_names, i) for i in range(k)]
    font, small, big = _font(13), _font(12), _font(16)
    probe = ImageDraw.Draw(Image.new('RGB', (1, 1)))
    name_width = max(_text_size(probe, name, font)[0] for name in names)
    cell = max(40, 9 * len(str(int(matrix.max(initial=0)))) + 8)
    left = name_width + 44  # The class names and, left of them, the word "true".
    top = 48
    below = int(name_width * 0.75) + 48  # Names at 45 degrees, then the word "predicted".
    width = max(left + k * cell + 20, _text_size(probe, title, big)[0] + 40)
    canvas = Image.new('RGB', (width, top + k * cell + below), 'white')
    draw = ImageDraw.Draw(canvas)
    peak = matrix.max(initial=0)
    for i in range(k):
        for j in range(k):
            x, y = left + j * cell, top + i * cell
            fraction = matrix[i, j] / peak if peak else 0.0
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=_blue(fraction))
            if matrix[i, j]:
                text = str(int(matrix[i, j]))
                w, h = _text_size(draw, text, small)
                draw.text((x + (cell - w) / 2, y + (cell - h) / 2 - 2), text, font=small,
                          fill='white' if fraction > 0.5 else 'black')
    for i, name in enumerate(names):
        w, h = _text_size(draw, name, font)
        draw.text((left - w - 6, top + i * cell + (cell - h) / 2 - 2), name, fill='black',
                  font=font)
        label = _rotated_text(name, font, 45)
        # The label's top-right corner at the column's bottom centre.
        canvas.paste(label, (int(left + (i + 0.5) * cell - label.width), top + k * cell + 4),
                     label)
    w, _ = _text_size(draw, 'predicted', font)
    draw.text((left + (k * cell - w) / 2, canvas.height - 26), 'predicted', fill='black',
              font=font)
    word = _rotated_text('true', font, 90)
    canvas.paste(word, (8, int(top + (k * cell - word.height) / 2)), word)
    w, _ = _text_size(draw, title, big)
    draw.text(((canvas.width - w) / 2, 14), title, fill='black', font=big)
    return _image_png(canvas)


def worst_mistakes(probabilities: np.ndarray, true_labels: np.ndarray,
                   count: int = 16) -> np.ndarray:
    """Indices of the wrong predictions made with the highest confidence, most confident first."""
    probabilities = np.asarray(probabilities)
    predicted = probabilities.argmax(1)
    wrong = np.flatnonzero(predicted != np.asarray(true_labels))
    order = np.argsort(-probabilities[wrong].max(1), kind='stable')
    return wrong[order][:count]


_PANELS = [('accuracy', ['test_accuracy', 'tflite_float_accuracy', 'tflite_int8_accuracy'],
            ['TF', 'float tflite', 'int8 tflite'], 1.0),
           ('training examples/s', ['examples_per_sec'], ['train'], 1.0),
           ('batch-1 latency (us)', ['latency_float_us', 'latency_int8_us'],
            ['float', 'int8'], 1.0),
           ('.tflite size (KB)', ['tflite_float_bytes', 'tflite_int8_bytes'],
            ['float', 'int8'], 1 / 1024)]


def compare_report_png(report: Dict) -> bytes:
    """The ``compare`` report picture (`compare_report_figure`) as PNG bytes."""
    return _png(compare_report_figure(report))


def compare_report_figure(report: Dict):
    """The ``compare`` report as a matplotlib Figure (the caller saves or closes it).

    Four panels (accuracy, training throughput, latency, size) of graph and Keras bars: every
    value axis starts at zero, bars carry their values, error bars show the sample std over the
    seeds. A fifth panel shows the paired accuracy differences graph - Keras in percentage
    points with their 95% t-intervals (a zero line marks "no difference").
    """
    plt = _pyplot()
    seeds = len(report.get('seeds', [0]))
    fig, axes = plt.subplots(1, 5, figsize=(21, 4.2))
    for ax, (title, keys, labels, scale) in zip(axes, _PANELS):
        x = np.arange(len(keys))
        top = 0.0
        for offset, side in ((-0.2, 'graph'), (0.2, 'keras')):
            values = [report[side][k] * scale for k in keys]
            errors = [report.get('spread', {}).get(side, {}).get(k, 0.0) * scale for k in keys]
            bars = ax.bar(x + offset, values, width=0.4, label=side,
                          yerr=errors if seeds > 1 else None, capsize=4)
            fmt = {'accuracy': '{:.4f}', 'batch-1 latency (us)': '{:.1f}'}.get(title, '{:,.0f}')
            ax.bar_label(bars, [fmt.format(v) for v in values], fontsize=7, padding=2)
            top = max(top, max(v + e for v, e in zip(values, errors)))
        ax.set_xticks(x, labels)
        ax.set_ylim(0, top * 1.15 if top > 0 else 1)
        ax.set_title(title + (' (axis from 0)' if title == 'accuracy' else ''))
    # Below the axis, not on it: inside, it covered the bars.
    axes[0].legend(loc='upper center', bbox_to_anchor=(0.5, -0.1), ncol=2, fontsize=8)
    ax = axes[4]
    keys = _PANELS[0][1]
    diffs = [report['difference'][k] for k in keys]
    means = [100 * d['mean'] for d in diffs]
    low = high = [0.0] * len(means)
    intervals = all(d.get('ci95_low') is not None for d in diffs)
    if intervals:
        low = [m - 100 * d['ci95_low'] for m, d in zip(means, diffs)]
        high = [100 * d['ci95_high'] - m for m, d in zip(means, diffs)]
    # The intervals belong to the bars, so that bar_label puts each value beyond the end of its
    # interval (drawn apart, the interval's line ran through the value).
    bars = ax.bar(np.arange(len(keys)), means, width=0.5, color='tab:gray',
                  yerr=[low, high] if intervals else None, capsize=5,
                  error_kw={'ecolor': 'black'})
    ax.set_title('accuracy graph - Keras (pp, 95% CI)' if intervals
                 else 'accuracy graph - Keras (pp, 1 seed)')
    ax.bar_label(bars, [f'{m:+.3f}' for m in means], fontsize=7, padding=2)
    # Room above and below for the value labels, so they stay inside the panel (not over its
    # title).
    lowest = min([0.0, *(m - e for m, e in zip(means, low))])
    highest = max([0.0, *(m + e for m, e in zip(means, high))])
    span = (highest - lowest) or 1.0
    ax.set_ylim(lowest - 0.2 * span, highest + 0.2 * span)
    ax.axhline(0, color='black', linewidth=0.8)
    ax.set_xticks(np.arange(len(keys)), _PANELS[0][2])
    fig.suptitle(f"{report['model']} on {report['dataset']}: graph vs Keras"
                 + (f' ({seeds} seeds, mean ± std)' if seeds > 1 else ''))
    fig.tight_layout()
    return fig


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
    matrix = confusion_matrix(labels, probabilities.argmax(1), num_classes)
    out = {'confusion_matrix': confusion_matrix_png(
        matrix, class_names, title=f'confusion matrix {title}'.strip())}
    worst = worst_mistakes(probabilities, labels, MISTAKES)
    if len(worst):
        out['mistakes'] = prediction_grid(
            images[worst], probabilities[worst], labels[worst], class_names,
            title=f'most confident mistakes {title}'.strip())
    return out
