"""Issue 21, "Done when": an adversarial pass on programs and files this project did not write.

Each test here was written from a finding of that pass (public TF 1.x programs run with
``graph-models run``, what they wrote fed to the other commands, hostile files) and failed
before its fix.
"""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env():
    env = dict(os.environ)
    env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
    return env


def _graph_models(*args):
    return [sys.executable, '-m', 'graph_models', *args]


@pytest.mark.slow
def test_stdout_closed_by_its_reader_is_no_error():
    """``graph-models inspect model.tflite | head -1``: the reader leaves, the next write to
    stdout fails with EPIPE. That is how a pipe ends, not an error to report ("error: Broken
    pipe", exit 1): stop quietly, with the status of a tool SIGPIPE ended (141)."""
    proc = subprocess.Popen(_graph_models('summary', '--model', 'mlp_small'),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    proc.stdout.close()  # The reader is gone before the first line.
    err = proc.stderr.read().decode()
    status = proc.wait(timeout=120)
    assert err == ''
    assert status == 141
