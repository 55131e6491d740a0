"""Shared fixtures: tiny generated datasets (real IDX files), the offline MNIST folder."""

import os

import numpy as np
import pytest

from graph_models import data as data_lib

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def synthetic_digits(n: int, seed: int = 0):
    """Linearly separable 28x28 'digits': class k is a bright two-row bar at rows 4+2k.

    Returns:
      uint8 images ``[n, 28, 28]`` and int64 labels ``[n]`` (every class present).
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % data_lib.NUM_CLASSES
    rng.shuffle(labels)
    images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        images[i, 4 + 2 * k:6 + 2 * k, 4:24] = rng.integers(180, 255, size=(2, 20))
    return images, labels.astype(np.int64)


def synthetic_dataset(n_train: int = 400, n_test: int = 100, seed: int = 0,
                      name: str = 'mnist') -> data_lib.Dataset:
    train = synthetic_digits(n_train, seed)
    test = synthetic_digits(n_test, seed + 1)
    return data_lib.Dataset(name, train[0], train[1], test[0], test[1], source='<synthetic>')


def cli_output(*argv) -> str:
    """Runs the command line in this process on ``argv``; returns its stdout (status must be 0)."""
    import contextlib
    import io
    from graph_models import cli
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main([str(a) for a in argv])
    assert status == 0, err.getvalue()
    return out.getvalue()


def write_idx_folder(folder, dataset: data_lib.Dataset, gz: bool = True) -> str:
    """Writes a dataset as the four standard IDX files; returns the folder."""
    os.makedirs(folder, exist_ok=True)
    suffix = '.gz' if gz else ''
    arrays = {'train_images': dataset.train_images, 'test_images': dataset.test_images,
              'train_labels': dataset.train_labels.astype(np.uint8),
              'test_labels': dataset.test_labels.astype(np.uint8)}
    for role, stem in data_lib.IDX_FILES.items():
        data_lib.write_idx(os.path.join(folder, stem + suffix), arrays[role])
    return str(folder)


@pytest.fixture
def tiny_data():
    """A 400/100 synthetic dataset in memory."""
    return synthetic_dataset()


@pytest.fixture
def tiny_data_dir(tmp_path):
    """A folder with the four gzip IDX files of a 400/100 synthetic dataset."""
    return write_idx_folder(tmp_path / 'data', synthetic_dataset())


@pytest.fixture(scope='session')
def mnist_10k_dir():
    """The offline real-MNIST folder (../shared/data/mnist-10k), or skip."""
    folder = os.environ.get('GRAPH_MODELS_TEST_MNIST',
                            os.path.join(REPO_ROOT, '..', 'shared', 'data', 'mnist-10k'))
    if not os.path.isfile(os.path.join(folder, 't10k-images-idx3-ubyte.gz')):
        pytest.skip(f'real MNIST not found at {folder}')
    return folder
