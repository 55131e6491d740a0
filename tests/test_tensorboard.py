"""TensorBoard: event files hold the graph and the expected tags; a real server serves them."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from tensorboard.backend.event_processing import event_accumulator

from graph_models.nets.factory import ModelConfig
from graph_models.training.run_config import RunConfig
from graph_models.training.train import train_and_eval


@pytest.fixture(scope='module')
def trained_logs(tmp_path_factory):
    from conftest import synthetic_dataset
    root = tmp_path_factory.mktemp('tb')
    run = RunConfig(model=ModelConfig('cnn'), epochs=2, batch_size=50)
    train_and_eval(run, synthetic_dataset(), run_name='cnn-run', log_dir=str(root / 'logs'),
                   checkpoint_dir=str(root / 'ckpt'), summary_every_steps=4, progress=False,
                   log=lambda line: None)
    return root / 'logs'


def _tags(folder):
    accumulator = event_accumulator.EventAccumulator(
        str(folder), size_guidance={event_accumulator.SCALARS: 0,
                                    event_accumulator.HISTOGRAMS: 0})
    accumulator.Reload()
    return accumulator


def test_train_events(trained_logs):
    acc = _tags(trained_logs / 'cnn-run' / 'train')
    tags = acc.Tags()
    assert tags['graph'] is True
    assert {'loss', 'accuracy', 'learning_rate'} <= set(tags['scalars'])
    assert {'weights/cnn/conv1/weights', 'weights/cnn/logits/biases', 'activations/conv1',
            'activations/fc1', 'activations/logits'} <= set(tags['histograms'])
    steps = [e.step for e in acc.Scalars('loss')]
    assert steps == [4, 8, 12, 16]
    # Histograms cost more than a step: written at each epoch's end (8 steps per epoch).
    assert [e.step for e in acc.Histograms('weights/cnn/conv1/weights')] == [8, 16]
    # The training split is loaded into the graph from a feed, not stored as a constant.
    big = [n.name for n in acc.Graph().node if n.op == 'Const' and
           len(n.attr['value'].tensor.tensor_content) > 1_000_000]
    assert big == []
    assert acc.Scalars('learning_rate')[0].value == pytest.approx(1e-3)
    graph_ops = {node.name for node in acc.Graph().node}
    assert {'Input', 'Labels', 'Logits', 'Output', 'train_op'} <= graph_ops


def test_eval_events(trained_logs):
    acc = _tags(trained_logs / 'cnn-run' / 'eval')
    assert acc.Tags()['graph'] is True
    assert {'loss', 'accuracy'} <= set(acc.Tags()['scalars'])
    assert [e.step for e in acc.Scalars('accuracy')] == [8, 16]
    assert 0.0 <= acc.Scalars('accuracy')[-1].value <= 1.0
    # The eval graph is the inference graph: no labels, no optimizer.
    graph_ops = {node.name for node in acc.Graph().node}
    assert 'Output' in graph_ops and 'Labels' not in graph_ops and 'train_op' not in graph_ops


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_tensorboard_server_serves_the_scalars(trained_logs):
    port = _free_port()
    tensorboard = os.path.join(os.path.dirname(sys.executable), 'tensorboard')
    proc = subprocess.Popen([tensorboard, '--logdir', str(trained_logs), '--host', '127.0.0.1',
                             '--port', str(port), '--load_fast', 'false'],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f'http://127.0.0.1:{port}/data/plugin/scalars/tags'
        tags, deadline = {}, time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    tags = json.load(resp)
                if 'cnn-run/eval' in tags and 'cnn-run/train' in tags:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert {'loss', 'accuracy', 'learning_rate'} <= set(tags['cnn-run/train'])
        assert {'loss', 'accuracy'} <= set(tags['cnn-run/eval'])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_histogram_every_steps(tmp_path):
    from conftest import synthetic_dataset
    run = RunConfig(model=ModelConfig('mlp_small'), epochs=1, batch_size=50)
    train_and_eval(run, synthetic_dataset(), run_name='r', log_dir=str(tmp_path / 'logs'),
                   checkpoint_dir=str(tmp_path / 'ckpt'), summary_every_steps=2,
                   histogram_every_steps=3, progress=False, log=lambda line: None)
    acc = _tags(tmp_path / 'logs' / 'r' / 'train')
    assert [e.step for e in acc.Histograms('activations/fc1')] == [3, 6, 8]
    assert [e.step for e in acc.Scalars('loss')] == [2, 4, 6, 8]
