"""MNIST and Fashion-MNIST: reading, validating, locating, downloading and batching.

Reads the four standard IDX files (gzip or raw) from a folder, or Keras' ``.npz`` archive, and
checks everything a corrupt file could get wrong (magic number, dimensions, counts, label range,
images and labels agreeing). Where the files come from, in order:

1. the ``data_dir`` argument (``--data-dir``): a folder with the IDX files or an ``.npz``, or an
   ``.npz`` file itself;
2. the cache folder ``$GRAPH_MODELS_DATA/<dataset>`` (default ``~/.cache/graph_models/<dataset>``);
3. for Fashion-MNIST, Debian's ``/usr/share/datasets/fashion-mnist`` (package
   ``dataset-fashion-mnist``);
4. a download of the canonical files into the cache folder, each verified by SHA-256 and written
   atomically.

Everything here is numpy; nothing imports TensorFlow.
"""

import dataclasses
import gzip
import hashlib
import math
import os
import urllib.error
import urllib.request
import zlib
from typing import Dict, Iterator, Optional, Sequence, Tuple

import numpy as np

from graph_models.errors import ConfigError, DataError
from graph_models.fileio import atomic_open, atomic_write

NUM_CLASSES = 10
IMAGE_SIZE = 28

# The four standard IDX files, by role (names without the .gz suffix).
IDX_FILES = {
    'train_images': 'train-images-idx3-ubyte',
    'train_labels': 'train-labels-idx1-ubyte',
    'test_images': 't10k-images-idx3-ubyte',
    'test_labels': 't10k-labels-idx1-ubyte',
}

# IDX type byte 0x08 is unsigned byte, the only type MNIST uses.
_IDX_UBYTE = 0x08
_GZIP_MAGIC = b'\x1f\x8b'
_NPZ_KEYS = ('x_train', 'y_train', 'x_test', 'y_test')


@dataclasses.dataclass(frozen=True)
class DatasetSource:
    """Where a dataset can be found and how to verify a download.

    Attributes:
      name: the dataset name used on the command line.
      mirrors: base URLs that serve the four ``.gz`` files, tried in order.
      sha256: SHA-256 of each canonical ``.gz`` file, by file name.
      npz_names: file names of a Keras ``.npz`` archive accepted in a data folder.
      system_dirs: read-only folders a system package installs the files into.
    """

    name: str
    mirrors: Tuple[str, ...]
    sha256: Dict[str, str]
    npz_names: Tuple[str, ...] = ()
    system_dirs: Tuple[str, ...] = ()


SOURCES = {
    'mnist': DatasetSource(
        name='mnist',
        mirrors=('https://storage.googleapis.com/cvdf-datasets/mnist/',),
        sha256={
            'train-images-idx3-ubyte.gz':
                '440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609',
            'train-labels-idx1-ubyte.gz':
                '3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c',
            't10k-images-idx3-ubyte.gz':
                '8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6',
            't10k-labels-idx1-ubyte.gz':
                'f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6',
        },
        npz_names=('mnist.npz',),
    ),
    'fashion_mnist': DatasetSource(
        name='fashion_mnist',
        mirrors=('https://storage.googleapis.com/tensorflow/tf-keras-datasets/',
                 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/'),
        sha256={
            'train-images-idx3-ubyte.gz':
                '3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84',
            'train-labels-idx1-ubyte.gz':
                'a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845',
            't10k-images-idx3-ubyte.gz':
                '346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073',
            't10k-labels-idx1-ubyte.gz':
                '67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5',
        },
        npz_names=('fashion_mnist.npz', 'fashion-mnist.npz'),
        system_dirs=('/usr/share/datasets/fashion-mnist',),
    ),
}

DATASET_NAMES = tuple(SOURCES)

# Display names of the classes by label index (labels files, predictions, pictures).
CLASS_NAMES = {
    'mnist': tuple(str(k) for k in range(10)),
    'fashion_mnist': ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt',
                      'Sneaker', 'Bag', 'Ankle boot'),
}


def class_names(dataset: str):
    """The class names of a dataset by label index (the index itself for unknown datasets)."""
    return list(CLASS_NAMES.get(dataset, tuple(str(k) for k in range(NUM_CLASSES))))


@dataclasses.dataclass
class Dataset:
    """A loaded dataset, as stored: uint8 images and int64 labels.

    Attributes:
      name: dataset name (``mnist`` or ``fashion_mnist``).
      train_images: uint8 array of shape ``[N, 28, 28]``.
      train_labels: int64 array of shape ``[N]``, values in ``[0, 10)``.
      test_images: uint8 array of shape ``[M, 28, 28]``.
      test_labels: int64 array of shape ``[M]``.
      source: the folder or file the data was read from.
    """

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str

    def limited(self, limit: Optional[int]) -> 'Dataset':
        """Returns a copy whose training split keeps only the first ``limit`` examples.

        Args:
          limit: number of training examples to keep, or None to keep all.

        Raises:
          ConfigError: if ``limit`` is not a positive number.
        """
        if limit is None:
            return self
        if limit <= 0:
            raise ConfigError(f'limit must be a positive number of examples, got {limit}')
        return dataclasses.replace(self, train_images=self.train_images[:limit],
                                   train_labels=self.train_labels[:limit])


# ---------------------------------------------------------------------------------------------
# IDX format


# An IDX file may declare at most this many bytes (MNIST's largest file holds 47 MB).
MAX_IDX_BYTES = 1 << 30
# Deflate cannot expand data by more than about 1032:1: a .gz that declares more than this many
# bytes per compressed byte is lying about its size.
_MAX_DEFLATE_RATIO = 1032


def _idx_declared_size(content: bytes, name: str) -> Optional[int]:
    """Total size (header + data) that an IDX header declares, or None if ``content`` is too
    short to hold the whole header. Raises `DataError` on a bad magic or type."""
    if len(content) < 4:
        return None
    zero, dtype_code, ndim = content[:2], content[2], content[3]
    if zero != b'\x00\x00' or ndim == 0:
        raise DataError(f'{name} is not an IDX file (magic number 0x{content[:4].hex()}); '
                        'expected an MNIST-format file such as train-images-idx3-ubyte.gz')
    if dtype_code != _IDX_UBYTE:
        raise DataError(f'{name} has IDX data type 0x{dtype_code:02x}, expected 0x08 '
                        '(unsigned byte) as in MNIST')
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        return None
    dims = [int(d) for d in np.frombuffer(content, dtype='>u4', count=ndim, offset=4)]
    # Python integers: 2^31 x 2^31 x 4 must not wrap around as an int64 product did.
    return header_size + math.prod(dims)


def _read_bytes(path: str) -> bytes:
    """Reads an IDX file, gunzipping it when it starts with the gzip magic.

    A gzip file is decompressed only up to the size its IDX header declares (plus one byte, to
    notice trailing data), after checking that size against `MAX_IDX_BYTES` and against what
    the compressed file could possibly hold: a decompression bomb is refused before it costs
    memory.
    """
    try:
        with open(path, 'rb') as f:
            raw = f.read(MAX_IDX_BYTES + 1)
    except OSError as e:
        raise DataError(f'cannot read {path}: {e.strerror}') from None
    if raw[:2] != _GZIP_MAGIC:
        if len(raw) > MAX_IDX_BYTES:
            raise DataError(f'{path} is larger than {MAX_IDX_BYTES:,} bytes, more than any '
                            'IDX dataset this tool reads')
        return raw
    try:
        stream = zlib.decompressobj(wbits=31)
        head = stream.decompress(raw, 4 + 4 * 255)
        declared = _idx_declared_size(head, path)
        if declared is None:  # Too short for its own header.
            content = head + stream.decompress(stream.unconsumed_tail, 4 + 4 * 255)
            if not stream.eof:
                raise DataError(f'{path} is not a valid gzip file (the stream ends early); it '
                                'is truncated or corrupt: download it again')
            return content  # parse_idx names the problem.
        if declared > MAX_IDX_BYTES:
            raise DataError(f'{path} declares {declared:,} bytes of data, more than the '
                            f'{MAX_IDX_BYTES:,} this tool reads; it is corrupt or not a dataset')
        if declared > len(raw) * _MAX_DEFLATE_RATIO + 1024:
            raise DataError(f'{path} declares {declared:,} bytes but a {len(raw):,}-byte gzip '
                            'file cannot hold that much; it is truncated or corrupt: download '
                            'it again')
        content = head + stream.decompress(stream.unconsumed_tail,
                                           max(declared - len(head), 0) + 1)
        if not stream.eof and not stream.unconsumed_tail and len(content) <= declared:
            raise DataError(f'{path} is not a valid gzip file (the stream ends early); it is '
                            'truncated or corrupt: download it again')
        return content
    except zlib.error as e:
        raise DataError(f'{path} is not a valid gzip file ({e}); it is truncated or corrupt: '
                        'download it again') from None


def parse_idx(content: bytes, name: str = '<bytes>') -> np.ndarray:
    """Parses an IDX file's bytes (unsigned-byte type, the type MNIST uses).

    Args:
      content: the uncompressed file content.
      name: what to call the file in error messages.

    Returns:
      A uint8 array with the shape the header declares.

    Raises:
      DataError: on a wrong magic number, a non-uint8 type, or a size that does not match the
        header (truncated or trailing bytes).
    """
    if len(content) < 4:
        raise DataError(f'{name} is too short to be an IDX file ({len(content)} bytes): '
                        'download it again')
    expected = _idx_declared_size(content, name)
    if expected is None:
        raise DataError(f'{name} is truncated inside its header: download it again')
    header_size = 4 + 4 * content[3]
    dims = tuple(int(d) for d in np.frombuffer(content, dtype='>u4', count=content[3],
                                               offset=4))
    if len(content) != expected:
        what = 'truncated' if len(content) < expected else 'longer than its header says'
        raise DataError(f'{name} is {what}: {len(content)} bytes for dimensions {dims} '
                        f'(expected {expected}); download it again')
    return np.frombuffer(content, dtype=np.uint8, offset=header_size).reshape(dims)


def read_idx(path: str) -> np.ndarray:
    """Reads an IDX file (gzip-compressed or raw) from ``path``; see `parse_idx`."""
    return parse_idx(_read_bytes(path), name=path)


def write_idx(path: str, array: np.ndarray) -> None:
    """Writes a uint8 array as an IDX file, gzip-compressed when ``path`` ends in ``.gz``.

    The file is written to a temporary name and renamed, so a reader never sees half of it.

    Args:
      path: destination file.
      array: uint8 array of 1 to 255 dimensions.

    Raises:
      ValueError: if the array is not uint8.
    """
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f'IDX writer supports uint8 arrays only, got {array.dtype}')
    header = bytes([0, 0, _IDX_UBYTE, array.ndim]) + np.asarray(array.shape, '>u4').tobytes()
    content = header + np.ascontiguousarray(array).tobytes()
    if path.endswith('.gz'):
        content = gzip.compress(content, mtime=0)
    atomic_write(path, content)


# ---------------------------------------------------------------------------------------------
# Validation and loading


def _check_split(images: np.ndarray, labels: np.ndarray, images_name: str,
                 labels_name: str) -> Tuple[np.ndarray, np.ndarray]:
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f'{images_name} holds arrays of shape {images.shape}, expected '
                        f'[N, {IMAGE_SIZE}, {IMAGE_SIZE}] images: is it an image file?')
    if labels.ndim != 1:
        raise DataError(f'{labels_name} holds arrays of shape {labels.shape}, expected a '
                        '1-D list of labels: is it a label file?')
    if len(images) != len(labels):
        raise DataError(f'{images_name} has {len(images)} images but {labels_name} has '
                        f'{len(labels)} labels: the two files do not belong together')
    if len(images) == 0:
        raise DataError(f'{images_name} holds no images')
    if labels.size and int(labels.max()) >= NUM_CLASSES:
        raise DataError(f'{labels_name} has label {int(labels.max())}, outside 0..'
                        f'{NUM_CLASSES - 1}: the file is corrupt or not an MNIST label file')
    return images, labels.astype(np.int64)


def _find_idx_file(folder: str, stem: str) -> Optional[str]:
    for candidate in (stem + '.gz', stem):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    return None


def load_idx_folder(folder: str, name: str = 'mnist') -> Dataset:
    """Loads the four standard IDX files from a folder.

    Args:
      folder: folder holding ``train-images-idx3-ubyte[.gz]`` and the three others.
      name: the dataset name to record.

    Returns:
      The validated `Dataset`.

    Raises:
      DataError: if a file is missing, corrupt or inconsistent with its partner.
    """
    paths = {}
    for role, stem in IDX_FILES.items():
        path = _find_idx_file(folder, stem)
        if path is None:
            raise DataError(f'{folder} has no {stem}.gz (or {stem}); it needs the four files '
                            f'{_expected_files()}')
        paths[role] = path
    arrays = {role: read_idx(path) for role, path in paths.items()}
    train = _check_split(arrays['train_images'], arrays['train_labels'],
                         paths['train_images'], paths['train_labels'])
    test = _check_split(arrays['test_images'], arrays['test_labels'],
                        paths['test_images'], paths['test_labels'])
    return Dataset(name, train[0], train[1], test[0], test[1], source=os.path.abspath(folder))


def load_npz(path: str, name: str = 'mnist') -> Dataset:
    """Loads a Keras-style ``.npz`` archive with ``x_train, y_train, x_test, y_test``.

    Args:
      path: the ``.npz`` file (as written by ``keras.datasets.mnist``).
      name: the dataset name to record.

    Returns:
      The validated `Dataset`.

    Raises:
      DataError: if the file is not a readable npz, lacks a key, or holds wrong shapes or
        values.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in _NPZ_KEYS if k not in archive.files]
            if missing:
                raise DataError(f'{path} lacks the arrays {", ".join(missing)}; a Keras MNIST '
                                f'archive holds {", ".join(_NPZ_KEYS)}')
            arrays = {k: archive[k] for k in _NPZ_KEYS}
    except DataError:
        raise
    except Exception as e:  # pylint: disable=broad-except
        # Everything in the try parses an untrusted archive: zipfile and numpy raise
        # BadZipFile, NotImplementedError (unknown zip version), struct.error, Unicode,
        # memory and value errors on damaged files (found by tests/fuzz_parsers.py).
        raise DataError(f'{path} is not a readable .npz archive ({type(e).__name__}: {e}); '
                        'download it again') from None
    for key in ('x_train', 'x_test'):
        a = arrays[key]
        if a.dtype != np.uint8:
            if not np.issubdtype(a.dtype, np.integer) or a.size and (a.min() < 0 or a.max() > 255):
                raise DataError(f'{path}: {key} has dtype {a.dtype}, expected uint8 pixels')
            arrays[key] = a.astype(np.uint8)
    for key in ('y_train', 'y_test'):
        a = arrays[key]
        if not np.issubdtype(a.dtype, np.integer) or (a.size and a.min() < 0):
            raise DataError(f'{path}: {key} has dtype {a.dtype} or negative values, expected '
                            'integer labels 0..9')
    train = _check_split(arrays['x_train'], arrays['y_train'], f'{path}:x_train',
                         f'{path}:y_train')
    test = _check_split(arrays['x_test'], arrays['y_test'], f'{path}:x_test', f'{path}:y_test')
    return Dataset(name, train[0], train[1], test[0], test[1], source=os.path.abspath(path))


def _expected_files() -> str:
    return ', '.join(stem + '.gz' for stem in IDX_FILES.values())


def _load_from(location: str, source: DatasetSource) -> Optional[Dataset]:
    """Loads from a folder or npz file; None when the folder holds none of the dataset."""
    if os.path.isfile(location):
        if location.endswith('.npz'):
            return load_npz(location, source.name)
        raise DataError(f'{location} is a file but not an .npz archive; pass the folder that '
                        'holds the IDX files instead')
    if not os.path.isdir(location):
        return None
    present = [stem for stem in IDX_FILES.values() if _find_idx_file(location, stem)]
    if present:
        return load_idx_folder(location, source.name)
    for npz in source.npz_names:
        if os.path.isfile(os.path.join(location, npz)):
            return load_npz(os.path.join(location, npz), source.name)
    return None


def default_cache_dir(dataset: str) -> str:
    """The cache folder of a dataset: ``$GRAPH_MODELS_DATA/<dataset>`` or the user cache."""
    root = os.environ.get('GRAPH_MODELS_DATA') or os.path.join(
        os.path.expanduser('~'), '.cache', 'graph_models')
    return os.path.join(root, dataset)


def download_file(url: str, destination: str, sha256: str, timeout: float = 60.0) -> None:
    """Downloads ``url`` to ``destination``, verifying its SHA-256; writes atomically.

    Args:
      url: where to fetch from (``http(s)://`` or ``file://``).
      destination: the final file path; its folder must exist.
      sha256: expected hex digest of the file.
      timeout: seconds to wait for the server.

    Raises:
      DataError: on a network error or a checksum mismatch (nothing is left at
        ``destination``).
    """
    digest = hashlib.sha256()
    try:
        with atomic_open(destination, 'wb') as out, \
                urllib.request.urlopen(url, timeout=timeout) as resp:
            while True:
                chunk = resp.read(1 << 20)
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)
            if digest.hexdigest() != sha256:
                served = (f'{url} downloaded with SHA-256 {digest.hexdigest()}, expected '
                          f'{sha256}: the mirror served a different file; try again later or ')
                raise DataError(served + 'give data_dir, a folder with your own copy',
                                cli_message=served + 'pass --data-dir with your own copy')
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, 'reason', None) or e
        raise DataError(f'could not download {url} ({reason})') from None


def download_dataset(source: DatasetSource, folder: str,
                     mirrors: Optional[Sequence[str]] = None) -> None:
    """Downloads the four ``.gz`` files of ``source`` into ``folder`` (skipping present ones).

    Args:
      source: the dataset's `DatasetSource`.
      folder: destination folder, created if needed.
      mirrors: base URLs to try instead of ``source.mirrors``.

    Raises:
      DataError: if a file could not be fetched from any mirror.
    """
    os.makedirs(folder, exist_ok=True)
    for filename, sha256 in source.sha256.items():
        destination = os.path.join(folder, filename)
        if os.path.isfile(destination):
            continue
        errors = []
        for base in (mirrors or source.mirrors):
            try:
                download_file(base.rstrip('/') + '/' + filename, destination, sha256)
                break
            except DataError as e:
                errors.append(str(e))
        else:
            raise DataError('; '.join(errors))


def load_dataset(name: str = 'mnist', data_dir: Optional[str] = None, *,
                 cache_dir: Optional[str] = None, download: bool = True,
                 mirrors: Optional[Sequence[str]] = None,
                 limit: Optional[int] = None) -> Dataset:
    """Finds, loads and validates a dataset.

    Args:
      name: ``mnist`` or ``fashion_mnist``.
      data_dir: a folder (IDX files or an npz) or an ``.npz`` file. When given, it is the only
        place looked at.
      cache_dir: the cache folder; defaults to `default_cache_dir`.
      download: whether to download the canonical files when nothing is found locally.
      mirrors: base URLs to download from instead of the canonical ones.
      limit: keep only the first ``limit`` training examples (quick runs).

    Returns:
      The loaded `Dataset`.

    Raises:
      ConfigError: on an unknown dataset name or a bad limit.
      DataError: if the data is not found (with the files expected and the ``--data-dir``
        fix), cannot be downloaded, or is corrupt.
    """
    if name not in SOURCES:
        raise ConfigError(f'unknown dataset {name!r}; choose one of {", ".join(DATASET_NAMES)}')
    source = SOURCES[name]
    if data_dir is not None:
        if not os.path.exists(data_dir):
            raise DataError(f'data folder {data_dir} does not exist; give the folder that '
                            f'holds {_expected_files()}',
                            cli_message=f'data folder {data_dir} does not exist; pass '
                                        f'--data-dir with the folder that holds '
                                        f'{_expected_files()}')
        dataset = _load_from(data_dir, source)
        if dataset is None:
            raise DataError(f'{data_dir} holds no {name} data; it needs {_expected_files()} '
                            f'(or {" / ".join(source.npz_names)})')
        return dataset.limited(limit)

    cache_dir = cache_dir or default_cache_dir(name)
    for location in (cache_dir,) + source.system_dirs:
        dataset = _load_from(location, source)
        if dataset is not None:
            return dataset.limited(limit)

    looked = ', '.join((cache_dir,) + source.system_dirs)
    if not download:
        raise DataError(f'no {name} data found in {looked}; give data_dir, a folder with '
                        f'{_expected_files()}',
                        cli_message=f'no {name} data found in {looked}; pass --data-dir DIR '
                                    f'with {_expected_files()}')
    try:
        download_dataset(source, cache_dir, mirrors)
    except DataError as e:
        failed = (f'{name} is not on this machine (looked in {looked}) and the download '
                  f'failed: {e}. Put {_expected_files()} in a folder and ')
        raise DataError(failed + 'give it as data_dir',
                        cli_message=failed + 'pass --data-dir DIR') from None
    return load_idx_folder(cache_dir, name).limited(limit)


# ---------------------------------------------------------------------------------------------
# Preprocessing and batching


def to_float(images: np.ndarray, input_shape: Sequence[int]) -> np.ndarray:
    """Scales uint8 images to float32 in [0, 1] and reshapes them for a model.

    Args:
      images: uint8 array ``[N, 28, 28]`` (any shape with 784 values per image).
      input_shape: the per-example shape the model takes: ``(784,)`` for the MLP,
        ``(28, 28, 1)`` for the CNN.

    Returns:
      float32 array of shape ``[N] + input_shape``.
    """
    images = np.asarray(images)
    out = images.reshape((len(images),) + tuple(input_shape)).astype(np.float32)
    out *= np.float32(1.0 / 255.0)
    return out


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Number of mini-batches in one epoch (the last one may be smaller)."""
    return -(-num_examples // batch_size)


def epoch_order(num_examples: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled example order of one epoch; a pure function of (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


def iterate_batches(images: np.ndarray, labels: np.ndarray, batch_size: int, *, seed: int,
                    epoch: int, start_step: int = 0,
                    shuffle: bool = True) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """Yields the mini-batches of one epoch in a seeded, shuffled order.

    The order depends only on ``(seed, epoch)``, so a run resumed at ``start_step`` sees exactly
    the batches an uninterrupted run would have seen.

    Args:
      images: array ``[N, ...]``.
      labels: array ``[N]``.
      batch_size: examples per batch; the last batch of an epoch may be smaller.
      seed: the run's seed.
      epoch: zero-based epoch index.
      start_step: number of batches of this epoch to skip (already trained).
      shuffle: False keeps the stored order.

    Yields:
      ``(images_batch, labels_batch)`` tuples.
    """
    n = len(images)
    order = epoch_order(n, seed, epoch) if shuffle else np.arange(n)
    for start in range(start_step * batch_size, n, batch_size):
        index = order[start:start + batch_size]
        yield images[index], labels[index]
