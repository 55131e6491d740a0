"""``tensorflow.examples.tutorials.mnist.input_data``, as TF 1.x had it, on `graph_models.data`.

`read_data_sets` reads the four IDX files in ``train_dir`` and downloads only the missing ones
(into ``train_dir``, each verified by SHA-256), as TF 1.x did. Under ``graph-models run
--data-dir DIR`` it reads ``DIR`` instead and never downloads. Files are read and validated by
`graph_models.data`; `DataSet` keeps TF 1.x's semantics: float32 images in [0, 1] (flattened to
784 with ``reshape``), uint8 or one-hot labels, ``next_batch`` with per-epoch shuffling and the
wrap-around that joins the end of one epoch to the start of the next.
"""

import collections
import os
from typing import Optional

import numpy as np

from graph_models import data as data_lib
from graph_models.tf1.module import data_dir as forced_data_dir

Datasets = collections.namedtuple('Datasets', ['train', 'validation', 'test'])

_FLOAT32, _UINT8 = 'float32', 'uint8'


def _dtype_name(dtype) -> str:
    """``tf.float32`` / ``np.float32`` / ``'float32'`` -> ``'float32'``."""
    name = getattr(dtype, 'name', None) or getattr(np.dtype(dtype), 'name', str(dtype))
    if name not in (_FLOAT32, _UINT8):
        raise TypeError(f'Invalid image dtype {dtype!r}, expected uint8 or float32')
    return name


def dense_to_one_hot(labels_dense: np.ndarray, num_classes: int) -> np.ndarray:
    """Class labels ``[N]`` -> one-hot float64 ``[N, num_classes]`` (TF 1.x's dtype)."""
    one_hot = np.zeros((labels_dense.shape[0], num_classes))
    one_hot[np.arange(labels_dense.shape[0]), labels_dense.ravel().astype(np.int64)] = 1
    return one_hot


class DataSet:
    """One split (``train``, ``validation`` or ``test``) with TF 1.x's batching.

    Args:
      images: uint8 ``[N, 28, 28]`` (or ``[N, 28, 28, 1]``) images.
      labels: ``[N]`` class labels, or ``[N, 10]`` one-hot.
      fake_data: TF 1.x's unit-test mode (``next_batch`` returns constant examples).
      one_hot: whether the fake labels are one-hot.
      dtype: ``float32`` (scaled to [0, 1]) or ``uint8`` (raw pixels).
      reshape: flatten images to ``[N, 784]``.
      seed: seed of the shuffling (None: a random one).
    """

    def __init__(self, images, labels, fake_data=False, one_hot=False, dtype=np.float32,
                 reshape=True, seed=None):
        dtype = _dtype_name(dtype)
        self._rng = np.random.RandomState(seed)
        if fake_data:
            self._num_examples = 10000
            self.one_hot = one_hot
        else:
            images = np.asarray(images)
            if images.shape[0] != labels.shape[0]:
                raise AssertionError(f'images.shape: {images.shape} labels.shape: '
                                     f'{labels.shape}')
            self._num_examples = images.shape[0]
            if reshape:
                images = images.reshape(images.shape[0], int(np.prod(images.shape[1:])))
            if dtype == _FLOAT32:
                images = images.astype(np.float32) * np.float32(1.0 / 255.0)
        self._images = images
        self._labels = labels
        self._epochs_completed = 0
        self._index_in_epoch = 0

    @property
    def images(self):
        return self._images

    @property
    def labels(self):
        return self._labels

    @property
    def num_examples(self) -> int:
        return self._num_examples

    @property
    def epochs_completed(self) -> int:
        return self._epochs_completed

    def _shuffle(self) -> None:
        order = self._rng.permutation(self._num_examples)
        self._images = self._images[order]
        self._labels = self._labels[order]

    def next_batch(self, batch_size, fake_data=False, shuffle=True):
        """The next ``batch_size`` examples; an epoch's end wraps into the next (reshuffled).

        Returns:
          ``(images, labels)``.
        """
        if fake_data:
            fake_image = [1.0] * 784
            fake_label = [1] + [0] * 9 if self.one_hot else 0
            return ([fake_image for _ in range(batch_size)],
                    [fake_label for _ in range(batch_size)])
        start = self._index_in_epoch
        if self._epochs_completed == 0 and start == 0 and shuffle:
            self._shuffle()
        if start + batch_size > self._num_examples:
            self._epochs_completed += 1
            rest = self._num_examples - start
            images_rest = self._images[start:self._num_examples]
            labels_rest = self._labels[start:self._num_examples]
            if shuffle:
                self._shuffle()
            self._index_in_epoch = batch_size - rest
            end = self._index_in_epoch
            return (np.concatenate((images_rest, self._images[0:end]), axis=0),
                    np.concatenate((labels_rest, self._labels[0:end]), axis=0))
        self._index_in_epoch += batch_size
        return self._images[start:self._index_in_epoch], self._labels[start:self._index_in_epoch]


def _source_for(source_url: Optional[str]) -> data_lib.DatasetSource:
    if source_url and 'fashion' in source_url.lower():
        return data_lib.SOURCES['fashion_mnist']
    return data_lib.SOURCES['mnist']


def _download_missing(folder: str, source: data_lib.DatasetSource,
                      source_url: Optional[str]) -> None:
    """Downloads the IDX files ``folder`` lacks (neither ``.gz`` nor raw), as TF 1.x did."""
    os.makedirs(folder, exist_ok=True)
    for filename, sha256 in source.sha256.items():
        stem = filename[:-len('.gz')]
        if any(os.path.isfile(os.path.join(folder, n)) for n in (filename, stem)):
            continue
        mirrors = [source_url] if source_url else list(source.mirrors)
        errors = []
        for base in mirrors:
            try:
                data_lib.download_file(base.rstrip('/') + '/' + filename,
                                       os.path.join(folder, filename), sha256)
                break
            except data_lib.DataError as e:
                errors.append(str(e))
        else:
            raise data_lib.DataError('; '.join(errors))


def read_data_sets(train_dir, fake_data=False, one_hot=False, dtype=np.float32, reshape=True,
                   validation_size=5000, seed=None, source_url=None):
    """TF 1.x's ``input_data.read_data_sets``.

    Args:
      train_dir: folder with the four IDX files; missing ones are downloaded into it (unless
        ``graph-models run --data-dir`` is set: that folder is read instead, offline).
      fake_data: return TF 1.x's fake datasets (no files read).
      one_hot: labels as one-hot ``[N, 10]`` float vectors instead of uint8 class labels.
      dtype: ``float32`` (images scaled to [0, 1]) or ``uint8``.
      reshape: flatten images to ``[N, 784]``.
      validation_size: the first ``validation_size`` training examples become ``validation``.
      seed: shuffling seed of the three splits.
      source_url: base URL to download from (a Fashion-MNIST URL selects Fashion-MNIST).

    Returns:
      ``Datasets(train, validation, test)`` of `DataSet`.

    Raises:
      ValueError: if ``validation_size`` is not within the training set (TF 1.x's message).
      graph_models.errors.DataError: missing, corrupt or undownloadable files.
    """
    if fake_data:
        def fake():
            return DataSet([], [], fake_data=True, one_hot=one_hot, dtype=dtype, seed=seed)
        return Datasets(train=fake(), validation=fake(), test=fake())
    source = _source_for(source_url)
    folder = forced_data_dir()
    if folder is None:
        folder = train_dir
        _download_missing(folder, source, source_url)
        loaded = data_lib.load_idx_folder(folder, source.name)
    else:
        loaded = data_lib.load_dataset(source.name, folder, download=False)
    train_images, train_labels = loaded.train_images, loaded.train_labels.astype(np.uint8)
    test_images, test_labels = loaded.test_images, loaded.test_labels.astype(np.uint8)
    if not reshape:
        train_images, test_images = train_images[..., None], test_images[..., None]
    if one_hot:
        train_labels = dense_to_one_hot(train_labels, data_lib.NUM_CLASSES)
        test_labels = dense_to_one_hot(test_labels, data_lib.NUM_CLASSES)
    if not 0 <= validation_size <= len(train_images):
        raise ValueError(f'Validation size should be between 0 and {len(train_images)}. '
                         f'Received: {validation_size}.')
    options = dict(dtype=dtype, reshape=reshape, seed=seed)
    return Datasets(
        train=DataSet(train_images[validation_size:], train_labels[validation_size:], **options),
        validation=DataSet(train_images[:validation_size], train_labels[:validation_size],
                           **options),
        test=DataSet(test_images, test_labels, **options))


def load_mnist(train_dir='MNIST-data'):
    """TF 1.x's ``load_mnist``: ``read_data_sets(train_dir)``."""
    return read_data_sets(train_dir)
