"""Data loading: IDX and npz round trips, validation errors, lookup order, download, batches."""

import gzip
import hashlib
import os

import numpy as np
import pytest

from graph_models import data as data_lib
from graph_models.errors import ConfigError, DataError

from conftest import synthetic_dataset, write_idx_folder


def _assert_same(a: data_lib.Dataset, b: data_lib.Dataset):
    for field in ('train_images', 'train_labels', 'test_images', 'test_labels'):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


@pytest.mark.parametrize('gz', [True, False])
def test_idx_folder_round_trip(tmp_path, gz):
    original = synthetic_dataset(50, 20)
    folder = write_idx_folder(tmp_path, original, gz=gz)
    loaded = data_lib.load_dataset('mnist', folder)
    _assert_same(original, loaded)
    assert loaded.train_images.dtype == np.uint8 and loaded.train_images.shape == (50, 28, 28)
    assert loaded.train_labels.dtype == np.int64
    assert loaded.source == os.path.abspath(folder)


def test_npz_round_trip(tmp_path):
    original = synthetic_dataset(50, 20)
    path = tmp_path / 'mnist.npz'
    np.savez(path, x_train=original.train_images, y_train=original.train_labels,
             x_test=original.test_images, y_test=original.test_labels)
    _assert_same(original, data_lib.load_dataset('mnist', str(path)))
    # A folder holding only the Keras archive works too.
    _assert_same(original, data_lib.load_dataset('mnist', str(tmp_path)))


def test_write_idx_header_is_standard(tmp_path):
    path = str(tmp_path / 'labels-idx1-ubyte')
    data_lib.write_idx(path, np.array([3, 1, 4], np.uint8))
    raw = open(path, 'rb').read()
    assert raw[:4] == b'\x00\x00\x08\x01' and raw[4:8] == (3).to_bytes(4, 'big')
    assert raw[8:] == bytes([3, 1, 4])


def _folder_with(tmp_path, role, content: bytes):
    folder = write_idx_folder(tmp_path, synthetic_dataset(30, 10))
    path = os.path.join(folder, data_lib.IDX_FILES[role] + '.gz')
    with open(path, 'wb') as f:
        f.write(content)
    return folder, path


def _idx_bytes(array):
    array = np.asarray(array, np.uint8)
    return bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, '>u4').tobytes() + \
        array.tobytes()


@pytest.mark.parametrize('role,content,message', [
    ('train_images', gzip.compress(_idx_bytes(np.zeros((30, 28, 28))))[:-20],
     'not a valid gzip file'),
    ('train_images', gzip.compress(_idx_bytes(np.zeros((30, 28, 28)))[:-100]), 'truncated'),
    ('train_images', gzip.compress(b'\x00\x00\x08\x03' + b'\x00\x00\x00\x1e'), 'truncated'),
    ('train_images', gzip.compress(b'PK\x03\x04garbage' * 10), 'not an IDX file'),
    ('train_images', gzip.compress(_idx_bytes(np.zeros((30, 28, 28))) + b'xx'),
     'longer than its header'),
    ('train_images', gzip.compress(b'\x00\x00\x0d\x03' + bytes(12)), 'data type 0x0d'),
    ('train_images', gzip.compress(_idx_bytes(np.zeros((30, 14, 14)))), 'expected [N, 28, 28]'),
    ('train_labels', gzip.compress(_idx_bytes(np.zeros(29))), 'do not belong together'),
    ('train_labels', gzip.compress(_idx_bytes(np.full(30, 10))), 'label 10'),
    ('test_labels', gzip.compress(_idx_bytes(np.zeros((10, 28, 28)))), 'is it a label file'),
    ('test_images', b'', 'too short'),
])
def test_corrupt_idx_files_name_the_file(tmp_path, role, content, message):
    folder, path = _folder_with(tmp_path, role, content)
    with pytest.raises(DataError) as e:
        data_lib.load_dataset('mnist', folder)
    text = str(e.value)
    assert message in text
    assert os.path.basename(path) in text
    assert '\n' not in text


def test_missing_file_lists_what_is_expected(tmp_path):
    folder = write_idx_folder(tmp_path, synthetic_dataset(30, 10))
    os.remove(os.path.join(folder, 't10k-labels-idx1-ubyte.gz'))
    with pytest.raises(DataError, match='no t10k-labels-idx1-ubyte.gz'):
        data_lib.load_dataset('mnist', folder)


@pytest.mark.parametrize('mutate,message', [
    (lambda d: d.pop('y_test'), 'lacks the arrays y_test'),
    (lambda d: d.update(x_train=d['x_train'].astype(np.float32) / 255), 'dtype float32'),
    (lambda d: d.update(y_train=d['y_train'][:-1]), 'do not belong together'),
])
def test_bad_npz(tmp_path, mutate, message):
    original = synthetic_dataset(30, 10)
    arrays = dict(x_train=original.train_images, y_train=original.train_labels,
                  x_test=original.test_images, y_test=original.test_labels)
    mutate(arrays)
    path = tmp_path / 'mnist.npz'
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=message):
        data_lib.load_dataset('mnist', str(path))


def test_truncated_npz(tmp_path):
    original = synthetic_dataset(30, 10)
    path = tmp_path / 'mnist.npz'
    np.savez(path, x_train=original.train_images, y_train=original.train_labels,
             x_test=original.test_images, y_test=original.test_labels)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataError, match='not a readable .npz'):
        data_lib.load_dataset('mnist', str(path))


def test_unknown_dataset_and_bad_limit(tiny_data_dir):
    with pytest.raises(ConfigError, match='unknown dataset'):
        data_lib.load_dataset('cifar10', tiny_data_dir)
    with pytest.raises(ConfigError, match='positive'):
        data_lib.load_dataset('mnist', tiny_data_dir, limit=0)
    assert len(data_lib.load_dataset('mnist', tiny_data_dir, limit=7).train_labels) == 7


def test_missing_data_dir(tmp_path):
    with pytest.raises(DataError, match='does not exist; give the folder'):
        data_lib.load_dataset('mnist', str(tmp_path / 'nope'))
    with pytest.raises(DataError, match='holds no mnist data'):
        data_lib.load_dataset('mnist', str(tmp_path))


def test_cache_folder_from_environment(tmp_path, monkeypatch):
    original = synthetic_dataset(30, 10)
    write_idx_folder(tmp_path / 'cache' / 'mnist', original)
    monkeypatch.setenv('GRAPH_MODELS_DATA', str(tmp_path / 'cache'))
    assert data_lib.default_cache_dir('mnist') == str(tmp_path / 'cache' / 'mnist')
    _assert_same(original, data_lib.load_dataset('mnist', download=False))


def test_offline_and_missing_gives_the_fix(tmp_path):
    with pytest.raises(DataError) as e:
        data_lib.load_dataset('mnist', cache_dir=str(tmp_path / 'empty'),
                              mirrors=['http://127.0.0.1:9/'])
    text = str(e.value)
    assert 'download failed' in text and 'give it as data_dir' in text
    assert '--data-dir' in e.value.for_cli() and '--' not in text
    assert 'train-images-idx3-ubyte.gz' in text
    assert not os.listdir(tmp_path / 'empty')  # No partial download left behind.
    with pytest.raises(DataError, match='no mnist data found'):
        data_lib.load_dataset('mnist', cache_dir=str(tmp_path / 'empty'), download=False)


def test_download_verifies_sha256_and_writes_atomically(tmp_path, monkeypatch):
    """A mirror (file:// here) with the right bytes fills the cache; wrong bytes are refused."""
    original = synthetic_dataset(30, 10)
    mirror = write_idx_folder(tmp_path / 'mirror', original)
    sums = {f: hashlib.sha256(open(os.path.join(mirror, f), 'rb').read()).hexdigest()
            for f in os.listdir(mirror)}
    source = data_lib.DatasetSource('mnist', ('file://' + mirror + '/',), sums)
    monkeypatch.setitem(data_lib.SOURCES, 'mnist', source)
    cache = tmp_path / 'cache'
    _assert_same(original, data_lib.load_dataset('mnist', cache_dir=str(cache)))
    assert sorted(os.listdir(cache)) == sorted(sums)

    bad = dict(sums, **{'t10k-labels-idx1-ubyte.gz': '0' * 64})
    monkeypatch.setitem(data_lib.SOURCES, 'mnist',
                        data_lib.DatasetSource('mnist', source.mirrors, bad))
    with pytest.raises(DataError, match='expected 0000'):
        data_lib.load_dataset('mnist', cache_dir=str(tmp_path / 'cache2'))
    assert 't10k-labels-idx1-ubyte.gz' not in os.listdir(tmp_path / 'cache2')
    assert not [f for f in os.listdir(tmp_path / 'cache2') if f.endswith('.tmp')]


def test_canonical_checksums_are_pinned():
    assert data_lib.SOURCES['mnist'].sha256['train-images-idx3-ubyte.gz'].startswith('440fcabf')
    assert data_lib.SOURCES['fashion_mnist'].system_dirs == ('/usr/share/datasets/fashion-mnist',)


def test_to_float_layouts(tiny_data):
    flat = data_lib.to_float(tiny_data.train_images, (784,))
    image = data_lib.to_float(tiny_data.train_images, (28, 28, 1))
    assert flat.dtype == np.float32 and flat.shape == (400, 784)
    assert image.shape == (400, 28, 28, 1)
    assert 0.0 <= flat.min() and flat.max() <= 1.0
    np.testing.assert_allclose(flat[3, 28 * 5 + 6], tiny_data.train_images[3, 5, 6] / 255.0,
                               rtol=1e-6)


def test_batches_are_seeded_complete_and_resumable():
    images = np.arange(25)[:, None]
    labels = np.arange(25)
    batches = list(data_lib.iterate_batches(images, labels, 10, seed=3, epoch=1))
    assert [len(b[1]) for b in batches] == [10, 10, 5]
    assert sorted(np.concatenate([b[1] for b in batches])) == list(range(25))
    again = list(data_lib.iterate_batches(images, labels, 10, seed=3, epoch=1))
    assert all((a[1] == b[1]).all() for a, b in zip(batches, again))
    other_epoch = list(data_lib.iterate_batches(images, labels, 10, seed=3, epoch=2))
    assert not (other_epoch[0][1] == batches[0][1]).all()
    resumed = list(data_lib.iterate_batches(images, labels, 10, seed=3, epoch=1, start_step=1))
    assert [list(b[1]) for b in resumed] == [list(b[1]) for b in batches[1:]]
    assert data_lib.steps_per_epoch(25, 10) == 3


def test_real_mnist_10k(mnist_10k_dir):
    dataset = data_lib.load_dataset('mnist', mnist_10k_dir)
    assert dataset.test_images.shape == (10000, 28, 28)
    assert np.bincount(dataset.test_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958,
                                                         1028, 974, 1009]
    assert len(dataset.train_labels) == 10000


def test_idx_header_claiming_2_pow_64_values_is_refused_cleanly(tmp_path):
    """Issue 12 item 9: 2^31 x 2^31 x 4 overflowed the int64 size check (to 0)."""
    header = bytes([0, 0, 8, 3]) + np.array([2 ** 31, 2 ** 31, 4], '>u4').tobytes()
    with pytest.raises(DataError, match='truncated'):
        data_lib.parse_idx(header, 'huge')
    path = tmp_path / 'huge-idx3-ubyte.gz'
    path.write_bytes(gzip.compress(header + bytes(100)))
    with pytest.raises(DataError, match='declares 18,446,744,073,709,551,632 bytes'):
        data_lib.read_idx(str(path))


def test_gzip_bomb_posing_as_idx_is_refused_before_decompressing(tmp_path):
    """Issue 12 item 9: a 3.7 MB bomb reached 4.8 GB of memory before it was rejected."""
    import resource
    import zlib
    header = bytes([0, 0, 8, 3]) + np.array([60000, 28, 28], '>u4').tobytes()
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunks = [compressor.compress(header)]
    zeros = bytes(1 << 20)
    for _ in range(1024):  # 1 GiB of zeros: about 1 MB compressed.
        chunks.append(compressor.compress(zeros))
    chunks.append(compressor.flush())
    bomb = tmp_path / 'train-images-idx3-ubyte.gz'
    bomb.write_bytes(b''.join(chunks))
    assert bomb.stat().st_size < 2 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DataError, match='longer than its header says'):
        data_lib.read_idx(str(bomb))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200  # At most the declared 47 MB (plus copies), never the 1 GiB.
    # A header that declares more than the compressed file could hold is refused at once.
    liar = tmp_path / 'liar-idx3-ubyte.gz'
    big = bytes([0, 0, 8, 3]) + np.array([1000, 1000, 1000], '>u4').tobytes()
    liar.write_bytes(gzip.compress(big + bytes(1000)))
    with pytest.raises(DataError, match='cannot hold that much'):
        data_lib.read_idx(str(liar))
