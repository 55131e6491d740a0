"""Issue 12 item 15: a command prints only its own lines; an error is exactly one stderr line."""

import os
import subprocess
import sys

import pytest

from graph_models.system.stderr_filter import is_noise

BIN = os.path.join(os.path.dirname(sys.executable), 'graph-models')

# Lines seen on TF 2.21 / LiteRT (timestamps and thread ids vary).
NOISE = [
    b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR',
    b'I0000 00:00:1795489125.107172    7218 port.cc:153] oneDNN custom operations are on. You '
    b'may see slightly different numerical results due to floating-point round-off errors.',
    b'fully_quantize: 0, inference_type: 6, input_inference_type: INT8, '
    b'output_inference_type: INT8',
    b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.',
    b'W0000 00:00:1795489172.745826    7866 tf_tfl_flatbuffer_helpers.cc:365] Ignored '
    b'output_format.',
    b'2026-11-24 03:00:00.000000: E tensorflow/core/grappler/optimizers/meta_optimizer.cc:961] '
    b'model_pruner failed: INVALID_ARGUMENT: Init node Const/Assign doesn\'t exist in graph',
]
KEPT = [b'graph-models train: error: no checkpoint at /x', b'epoch 1/5  step 100  train loss',
        b'E0000 00:00:1795489172.745826 7866 something.cc:12] a real failure',
        b'Traceback (most recent call last):']


@pytest.mark.parametrize('line', NOISE)
def test_known_chatter_is_noise(line):
    assert is_noise(line)


@pytest.mark.parametrize('line', KEPT)
def test_our_lines_and_real_errors_are_kept(line):
    assert not is_noise(line)


def _run(*argv):
    env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
    return subprocess.run([BIN, *argv], capture_output=True, text=True, env=env, timeout=300)


def test_command_prints_only_its_own_lines():
    proc = _run('summary', '--model', 'mlp_small')
    assert proc.returncode == 0
    assert proc.stderr == ''  # Before: four TensorFlow start-up lines.
    assert proc.stdout.splitlines()[0] == 'Model: "mlp_small" (TF1 graph)'


def test_error_is_exactly_one_line(tmp_path):
    proc = _run('freeze', str(tmp_path / 'nowhere'))
    assert proc.returncode == 1
    assert proc.stderr.count('\n') == 1
    assert proc.stderr.startswith('graph-models freeze: error: no checkpoint at')


def test_verbose_is_accepted_before_and_after_the_command():
    for argv in (['--verbose', 'summary'], ['summary', '--verbose']):
        proc = _run(*argv, '--model', 'mlp_small')
        assert proc.returncode == 0, proc.stderr
        assert 'Total params: 101,770' in proc.stdout
