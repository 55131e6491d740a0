"""Classifying arbitrary digit images the way MNIST stores them, with any model.

Each image is flattened onto white where it is transparent, made grayscale, resized to the
model's input size, inverted when the background is light (MNIST digits are light on a dark
background) and scaled to [0, 1]. The model can be any ``.tflite`` whose input is an image
``[1, H, W, C]`` or ``[1, H*W]``, a frozen ``.pb``/``.pbtxt``, a TF1 checkpoint or SavedModel,
or one of our runs.
"""

import dataclasses
import json
import math
import os
import stat
import warnings
from typing import List, Optional, Sequence, Tuple

import numpy as np

from graph_models.errors import GraphModelsError, one_line

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.gif', '.pgm', '.tif', '.tiff', '.webp')
# Larger images are refused before decoding (a small PNG can declare gigapixels).
MAX_PIXELS = 40_000_000
MAX_IMAGE_BYTES = 64 << 20


class ImageError(GraphModelsError):
    """An image cannot be read or used."""


def _regular_file(path: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ImageError(f'no image at {path}') from None
    except OSError as e:
        raise ImageError(f'cannot read {path}: {e.strerror}') from None
    if not stat.S_ISREG(mode):
        raise ImageError(f'{path} is not a regular file (a FIFO, device or folder); pass an '
                         'image file')
    if os.path.getsize(path) > MAX_IMAGE_BYTES:
        raise ImageError(f'{path} is larger than {MAX_IMAGE_BYTES >> 20} MB; not a digit image')


def load_digit(path: str, size: Tuple[int, int] = (28, 28)) -> np.ndarray:
    """Reads an image file as an MNIST-like float32 ``[H, W]`` array in [0, 1].

    Transparent pixels are composited onto white first (a transparent PNG's hidden color
    channels are often black). The background is the median of the border pixels: when it
    is light, the image is inverted.

    Args:
      path: the image file.
      size: ``(height, width)`` to resize to.

    Raises:
      ImageError: if the file is missing, not a regular file, not an image, or too large.
    """
    from PIL import Image, UnidentifiedImageError
    _regular_file(path)
    try:
        with warnings.catch_warnings():
            # PIL warns of a "decompression bomb" above 89 M pixels; our own limit (below)
            # refuses such an image in one line, so its warning would only come first.
            warnings.simplefilter('ignore', Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            if image.width * image.height > MAX_PIXELS:
                raise ImageError(f'{path} is {image.width}x{image.height} pixels, more than '
                                 f'{MAX_PIXELS:,}: not a digit image')
            if image.mode in ('RGBA', 'LA', 'PA') or (image.mode == 'P' and
                                                     'transparency' in image.info):
                rgba = image.convert('RGBA')
                white = Image.new('RGBA', rgba.size, (255, 255, 255, 255))
                gray = Image.alpha_composite(white, rgba).convert('L')
            elif image.mode.startswith(('I', 'F')):
                gray = _deep_gray(image, path)
            else:
                gray = image.convert('L')
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f'no image at {path}') from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError,
            Image.DecompressionBombError) as e:
        raise ImageError(f'{path} is not a readable image ({str(e)[:200]})') from None
    if gray.width < 2 or gray.height < 2:
        raise ImageError(f'{path} is {gray.width}x{gray.height} pixels: too small for a digit')
    height, width = size
    pixels = np.asarray(gray.resize((width, height), Image.BILINEAR), dtype=np.float32)
    if gray.mode == 'L':
        pixels = pixels / 255.0
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if np.median(border) > 0.5:
        pixels = 1.0 - pixels
    return pixels


def _deep_gray(image, path: str):
    """A 16/32-bit integer or float grayscale image as a mode ``F`` image in [0, 1].

    ``convert('L')`` clips such values to 255 (a 16-bit PNG turns white) or truncates them (a
    float image in [0, 1] turns black): scale by the image's own depth and range instead.
    """
    from PIL import Image
    values = np.asarray(image, dtype=np.float64)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if image.mode.startswith('F'):
        # Floats in [0, 1], or in [0, 255] as some tools write them; nothing else is known.
        scale = 1.0 if high <= 1.0 else 255.0
        if not (np.isfinite(values).all() and low >= 0.0 and high <= 255.0):
            raise ImageError(f'{path} holds float values from {low:g} to {high:g}; predict '
                             'reads float images in 0..1 or 0..255: rescale it or save it as '
                             'an 8-bit image')
    else:
        scale = 65535.0 if high <= 65535 else float(2 ** 32 - 1)  # 16-bit, else 32-bit.
        if low < 0:
            raise ImageError(f'{path} holds negative pixel values ({low:g}); save it as an '
                             '8-bit or 16-bit grayscale image')
    return Image.fromarray((values / scale).astype(np.float32), mode='F')


def image_paths(path: str) -> List[str]:
    """The image itself, or the image files of a folder in name order."""
    if os.path.isdir(path):
        paths = sorted(os.path.join(path, f) for f in os.listdir(path)
                       if f.lower().endswith(IMAGE_SUFFIXES)
                       and os.path.isfile(os.path.join(path, f)))
        if not paths:
            raise ImageError(f'{path} holds no image files ({", ".join(IMAGE_SUFFIXES)})')
        return paths
    if not os.path.exists(path):
        raise ImageError(f'no image at {path}')
    return [path]


def image_layout(shape: Sequence[int]) -> Tuple[int, int, int]:
    """``(height, width, channels)`` of an image input ``[1, H, W, C]``, ``[1, H, W]`` or
    ``[1, H*W]`` (square).

    Raises:
      ImageError: for any other input shape.
    """
    shape = [int(d) for d in shape]
    if len(shape) == 4 and shape[3] in (1, 3):
        return shape[1], shape[2], shape[3]
    if len(shape) == 3:
        return shape[1], shape[2], 1
    if len(shape) == 2:
        side = math.isqrt(shape[1])
        if side * side == shape[1]:
            return side, side, 1
    raise ImageError(f'the model input has shape {shape}; predict needs an image input '
                     '[1, H, W, C] (C = 1 or 3) or [1, H*W]')


@dataclasses.dataclass
class Predictions:
    """What a model said about a set of images.

    Attributes:
      paths: the image files, in name order.
      pixels: the images as fed (before ``--input-range`` scaling), ``[N, H, W, C]`` in [0, 1].
      probabilities: class scores, ``[N, classes]``.
      class_names: one name per class (the model's labels file, else the dataset's, else the
        indices).
    """

    paths: List[str]
    pixels: np.ndarray
    probabilities: np.ndarray
    class_names: List[str]

    def best(self) -> List[Tuple[str, int, float]]:
        """``(path, class index, confidence)`` per image."""
        return [(p, int(row.argmax()), float(row.max()))
                for p, row in zip(self.paths, self.probabilities)]

    def write_grid(self, path: str) -> None:
        """Draws the images with their predicted labels into the PNG ``path`` (atomically).

        Raises:
          GraphModelsError: if the folder of ``path`` cannot be created.
        """
        from graph_models import pictures
        from graph_models.fileio import atomic_write, ensure_parent
        ensure_parent(path)
        atomic_write(path, pictures.prediction_grid(self.pixels, self.probabilities,
                                                    class_names=self.class_names))


def predict_images(images: str, model: str, *, input_arrays=None, output_arrays=None,
                   input_shapes=None, tag_set: Sequence[str] = ('serve',),
                   signature_def: Optional[str] = None,
                   allow_unsafe_ops: bool = False) -> Predictions:
    """Classifies an image or a folder of images with any model.

    Args:
      images: an image file or a folder of them.
      model: a ``.tflite``, a graph source or one of our runs (see
        `graph_models.export.load_model`).
      input_arrays: a graph source's input names (see `graph_models.export.load_model`).
      output_arrays: a graph source's output names.
      input_shapes: a graph source's input shapes.
      tag_set: a SavedModel's MetaGraph tags.
      signature_def: a SavedModel's signature.
      allow_unsafe_ops: skip the op allow-list for a graph source you trust.

    Returns:
      The `Predictions`, one row per image in name order.
    """
    from graph_models.litert import evaluate
    from graph_models.litert import model_file
    from graph_models.litert.labels import labels_of, read_model_metadata
    paths = image_paths(images)
    dataset = None
    if model_file.is_tflite(model):
        from freeze.export import read_export_record
        content = model_file.read_tflite(model)
        read_model_metadata(content, model)  # A broken metadata buffer is a one-line error.
        lite = evaluate.LiteModel(content, name=model)
        record = read_export_record(model, content)
        height, width, channels = image_layout(lite.input_shape)
        run = lite.probabilities
        input_range = tuple((record or {}).get('input_range') or (0.0, 1.0))
        names = labels_of(content, (record or {}).get('options', {}).get('dataset'))
    else:
        from graph_models.export import RUN, load_model
        frozen = load_model(model, batch_size=1, input_arrays=input_arrays,
                            output_arrays=output_arrays, input_shapes=input_shapes,
                            tag_set=tag_set, signature_def=signature_def,
                            allow_unsafe_ops=allow_unsafe_ops)
        height, width, channels = image_layout(frozen.input_shapes[frozen.inputs[0]])

        def run(x):
            return evaluate.frozen_graph_probabilities(frozen.graph_def, x, frozen.inputs[0],
                                                       frozen.outputs[0])
        from freeze.export import resolve_input_range
        input_range = resolve_input_range(frozen.graph_def, frozen.inputs, None)
        if frozen.source_kind == RUN:
            dataset = frozen.options.get('dataset')
        from graph_models.data import class_names
        names = class_names(dataset or 'mnist')
    from graph_models.export import scale_to_range
    pixels = np.stack([load_digit(p, (height, width)) for p in paths])
    pixels = np.repeat(pixels[..., None], channels, axis=-1)
    probs = np.asarray(run(scale_to_range(pixels, input_range))).reshape(len(paths), -1)
    if len(names) != probs.shape[1]:
        names = [str(i) for i in range(probs.shape[1])]
    return Predictions(paths, pixels, probs, list(names))


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
        line = f"{one_line(path)}: {best[0]['label']} (confidence {best[0]['probability']:.3f})"
        if len(best) > 1:
            line += '; then ' + ', '.join(f"{b['label']} {b['probability']:.3f}"
                                          for b in best[1:])
        lines.append(line)
    return '\n'.join(lines)
