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
@given(mutated(targets.tiny_tflite()))
def test_tflite_flatbuffer_reader(content):
    """Issue 12 item 8: the real reader of ``inspect``, on mutants of a real model."""
    targets.tflite_inspect(content)


def test_tflite_reader_mutants_found_before_the_fix():
    """Cuts and flips that raised IndexError, struct.error and AttributeError (and one that
    looped over a vector length of 2^31) before every failure became our one-line error."""
    import random
    seed = targets.tiny_tflite()
    assert targets.tflite_inspect(seed).ops == ['FULLY_CONNECTED', 'SOFTMAX']
    cases = [seed[:n] for n in range(8, len(seed), 7)]
    rng = random.Random(0)
    for _ in range(300):
        data = bytearray(seed)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(8, len(data))] = rng.choice([0, 1, 0x7f, 0x80, 0xff])
        cases.append(bytes(data))
    for content in cases:
        targets.tflite_inspect(content)  # Our error or a report; nothing else.


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
