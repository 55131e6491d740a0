"""Property tests: random and mutated inputs give valid data or our clear error, nothing else."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzz_targets as targets

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def mutated(seed: bytes):
    """The seed with random byte flips, a cut, or bytes appended."""
    return st.one_of(
        st.tuples(st.integers(0, len(seed) - 1), st.integers(0, 255)).map(
            lambda p: seed[:p[0]] + bytes([p[1]]) + seed[p[0] + 1:]),
        st.integers(0, len(seed)).map(lambda n: seed[:n]),
        st.binary(max_size=64).map(lambda tail: seed + tail),
        st.lists(st.tuples(st.integers(0, len(seed) - 1), st.integers(0, 255)), max_size=8).map(
            lambda flips: _flip(seed, flips)))


def _flip(seed, flips):
    data = bytearray(seed)
    for position, value in flips:
        data[position] = value
    return bytes(data)


@SETTINGS
@given(st.one_of(st.binary(max_size=4096), mutated(targets.SEEDS['idx'])))
def test_idx_parser(content):
    targets.idx_bytes(content)


@SETTINGS
@given(st.one_of(st.binary(max_size=2048), mutated(targets.SEEDS['idx_gz'])))
def test_idx_file_reader_with_gzip(content):
    targets.idx_file(content)


@SETTINGS
@given(st.one_of(st.binary(max_size=2048), mutated(targets.SEEDS['npz'])))
def test_npz_loader(content):
    targets.npz_file(content)


@SETTINGS
@given(st.one_of(st.binary(max_size=256), mutated(targets.SEEDS['tflite'])))
def test_tflite_header_check(content):
    targets.tflite_file(content)


@SETTINGS
@given(st.binary(max_size=1024))
def test_graph_def_reader(content):
    targets.graph_def_file(content)


def test_npz_with_unsupported_zip_version_found_by_the_long_fuzz_run():
    seed = bytearray(targets.SEEDS['npz'])
    seed[3928] = 64  # The failing case tests/fuzz_parsers.py found: "zip file version 6.4".
    assert targets.npz_file(bytes(seed)) is None


def test_valid_seeds_parse():
    assert targets.idx_bytes(targets.SEEDS['idx']).shape == (3, 28, 28)
    assert targets.npz_file(targets.SEEDS['npz']).train_images.shape == (2, 28, 28)
    assert targets.tflite_file(targets.SEEDS['tflite']) is not None
