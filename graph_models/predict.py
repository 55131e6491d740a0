"""Reading arbitrary digit images the way MNIST stores them.

Grayscale, resized to 28x28, inverted when the background is light (MNIST digits are light on a
dark background), scaled to [0, 1].
"""

import os
from typing import List

import numpy as np

from graph_models.errors import GraphModelsError

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.gif', '.pgm', '.tif', '.tiff', '.webp')


class ImageError(GraphModelsError):
    """An image cannot be read or used."""


def load_digit(path: str) -> np.ndarray:
    """Reads an image file as an MNIST-like float32 ``[28, 28]`` array in [0, 1].

    The background is the median of the border pixels: when it is light, the image is inverted.

    Raises:
      ImageError: if the file is missing or not an image.
    """
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as image:
            gray = image.convert('L')
    except FileNotFoundError:
        raise ImageError(f'no image at {path}') from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ImageError(f'{path} is not a readable image ({e})') from None
    if gray.width < 2 or gray.height < 2:
        raise ImageError(f'{path} is {gray.width}x{gray.height} pixels: too small for a digit')
    pixels = np.asarray(gray.resize((28, 28), Image.BILINEAR), dtype=np.float32) / 255.0
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if np.median(border) > 0.5:
        pixels = 1.0 - pixels
    return pixels


def image_paths(path: str) -> List[str]:
    """The image itself, or the image files of a folder in name order."""
    if os.path.isdir(path):
        paths = sorted(os.path.join(path, f) for f in os.listdir(path)
                       if f.lower().endswith(IMAGE_SUFFIXES))
        if not paths:
            raise ImageError(f'{path} holds no image files ({", ".join(IMAGE_SUFFIXES)})')
        return paths
    if not os.path.exists(path):
        raise ImageError(f'no image at {path}')
    return [path]
