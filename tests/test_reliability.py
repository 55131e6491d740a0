"""Crash safety, signals, non-finite loss, full disks, bad inputs, untrusted graphs."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from graph_models import cli
from graph_models._tf import tf, v1
from graph_models.errors import TrainingError
from graph_models.nets.factory import ModelConfig
from graph_models.training.run_config import RunConfig
from graph_models.training.train import train_and_eval

from conftest import synthetic_dataset, write_idx_folder

BIN = os.path.join(os.path.dirname(sys.executable), 'graph-models')


@pytest.fixture(scope='module')
def big_data_dir(tmp_path_factory):
    """2,000 synthetic training examples: with batch 10 an epoch is 200 steps."""
    return write_idx_folder(tmp_path_factory.mktemp('data'), synthetic_dataset(2000, 100))


def _ignore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _train_process(tmp_path, data_dir, *extra, sigint_ignored=True):
    """``graph-models train`` in a subprocess.

    By default it starts with SIGINT ignored, as every job started by ``cmd &`` does: training
    must install its handler regardless (issue 12 item 13), and the test then behaves the same
    however pytest itself was launched.
    """
    args = [BIN, 'train', '--model', 'mlp', '--data-dir', data_dir, '--epochs', '10',
            '--batch-size', '10', '--save-every-steps', '20', '--run-name', 'r',
            '--log-dir', str(tmp_path / 'logs'), '--checkpoint-dir', str(tmp_path / 'ckpt'),
            '--no-progress', *extra]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ignore_sigint if sigint_ignored else None)


def _latest_step(ckpt_dir):
    state = os.path.join(ckpt_dir, 'checkpoint')
    if not os.path.isfile(state):
        return 0
    latest = tf.train.latest_checkpoint(ckpt_dir)
    return int(latest.rsplit('-', 1)[1]) if latest else 0


def _wait_for_step(proc, ckpt_dir, step, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _latest_step(ckpt_dir) >= step:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError(f'no checkpoint at step {step} within {timeout} s')


def _restorable(ckpt_dir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(ckpt_dir))
    return reader.get_tensor('global_step'), reader.get_tensor('mlp/fc1/weights')


@pytest.mark.slow
def test_kill_9_then_resume_reaches_the_same_final_step(tmp_path, big_data_dir):
    proc = _train_process(tmp_path, big_data_dir)
    ckpt = str(tmp_path / 'ckpt' / 'r')
    _wait_for_step(proc, ckpt, 60)
    proc.kill()  # SIGKILL: no handler runs.
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = _latest_step(ckpt)
    assert killed_at < 2000
    step, weights = _restorable(ckpt)  # The newest checkpoint is complete and readable.
    assert step == killed_at and np.isfinite(weights).all()
    resumed = _train_process(tmp_path, big_data_dir, '--resume')
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    assert _latest_step(ckpt) == 2000  # 10 epochs of 200 steps, as an uninterrupted run.
    assert 'epoch 10/10  step 2000' in out


@pytest.mark.slow
@pytest.mark.parametrize('signum,status,name', [(signal.SIGINT, 130, 'SIGINT'),
                                                (signal.SIGTERM, 143, 'SIGTERM')])
def test_signal_saves_flushes_and_exits(tmp_path, big_data_dir, signum, status, name):
    proc = _train_process(tmp_path, big_data_dir, '--summary-every-steps', '5')
    ckpt = str(tmp_path / 'ckpt' / 'r')
    _wait_for_step(proc, ckpt, 40)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == status, err
    assert 'Traceback' not in err
    last = err.strip().splitlines()[-1]
    assert f'{name} at step' in last and '--resume' in last
    stopped_at = int(last.split('at step ')[1].split(':')[0])
    assert _latest_step(ckpt) == stopped_at  # A checkpoint at the current step.
    from tensorboard.backend.event_processing import event_accumulator
    events = event_accumulator.EventAccumulator(str(tmp_path / 'logs' / 'r' / 'train'))
    events.Reload()
    steps = [e.step for e in events.Scalars('loss')]
    assert steps and steps[-1] >= 40  # Summaries up to the stop were flushed.


@pytest.mark.slow
def test_sigint_then_sigterm_during_the_save_still_saves_and_says_one_line(tmp_path,
                                                                           big_data_dir):
    proc = _train_process(tmp_path, big_data_dir)
    ckpt = str(tmp_path / 'ckpt' / 'r')
    _wait_for_step(proc, ckpt, 40)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)  # Arrives while the interrupt checkpoint is written.
    out, err = proc.communicate(timeout=120)
    assert 'Traceback' not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    if proc.returncode == 143:  # The SIGTERM was noted during the save.
        assert lines[0].startswith('graph-models train: error: SIGTERM at step')
    else:  # The process had finished saving before the SIGTERM was delivered.
        assert proc.returncode == 130 and 'SIGINT at step' in lines[0]
    stopped_at = int(lines[0].split('at step ')[1].split(':')[0])
    assert _latest_step(ckpt) == stopped_at
    assert _restorable(ckpt)[0] == stopped_at


@pytest.mark.parametrize('when', ['import', 'after data'])
def test_sigterm_during_start_up_exits_143_with_one_line(tmp_path, tiny_data_dir, when):
    proc = _train_process(tmp_path, tiny_data_dir, '--epochs', '1')
    if when == 'import':
        time.sleep(0.5)  # TensorFlow is still being imported.
    else:
        assert proc.stdout.readline().startswith('mlp on mnist: 400 training')
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err  # Before: killed by the signal (-15), no message.
    assert err.count('\n') == 1 and 'SIGTERM' in err and 'Traceback' not in err, err
    # Nothing half-made is left: no run folder without a checkpoint. (A signal that lands after
    # the variables are initialized saves them, possibly as model.ckpt-0: a valid run.)
    run = tmp_path / 'ckpt' / 'r'
    assert not os.path.exists(run) or tf.train.latest_checkpoint(str(run)) is not None


def test_sigterm_during_restore_keeps_the_run(tmp_path, tiny_data_dir):
    first = _train_process(tmp_path, tiny_data_dir, '--epochs', '1')
    assert first.wait(timeout=300) == 0
    ckpt = tmp_path / 'ckpt' / 'r'
    before = sorted(os.listdir(ckpt))
    proc = _train_process(tmp_path, tiny_data_dir, '--epochs', '50', '--resume')
    assert proc.stdout.readline().startswith('mlp on mnist: 400 training')
    proc.send_signal(signal.SIGTERM)  # While the graph is built and the checkpoint restored.
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.count('\n') == 1 and 'SIGTERM' in err, err
    assert _latest_step(str(ckpt)) >= 40  # The run and its checkpoints are still there.
    assert set(before) <= set(os.listdir(ckpt))


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    data = synthetic_dataset()
    run = RunConfig(model=ModelConfig('mlp_small'), epochs=1, batch_size=50,
                    learning_rate=1e30)  # Blows the weights up within two steps.
    with pytest.raises(TrainingError) as e:
        train_and_eval(run, data, run_name='nan', log_dir=str(tmp_path / 'logs'),
                       checkpoint_dir=str(tmp_path / 'ckpt'), save_every_steps=1,
                       progress=False, log=lambda line: None)
    message = str(e.value)
    assert 'at step' in message and 'lower the learning rate' in message
    bad_step = int(message.split('at step ')[1].split(';')[0])
    ckpt = str(tmp_path / 'ckpt' / 'nan')
    assert _latest_step(ckpt) == bad_step - 1
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(ckpt))
    assert np.isfinite(reader.get_tensor('mlp_small/fc1/weights')).all()


@pytest.fixture
def full_disk(tmp_path):
    """A 600 KB tmpfs: a real 'No space left on device' (needs root; skipped otherwise)."""
    mount = tmp_path / 'full'
    mount.mkdir()
    if subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=600k', 'tmpfs', str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip('cannot mount a small tmpfs here (not root)')
    yield mount
    subprocess.run(['umount', str(mount)], capture_output=True)


def test_full_disk_gives_a_clear_error_and_no_partial_files(full_disk, tmp_path, capsys,
                                                            tiny_data_dir):
    status = cli.main(['train', '--model', 'mlp', '--data-dir', tiny_data_dir, '--epochs', '1',
                       '--checkpoint-dir', str(full_disk / 'ckpt'), '--log-dir',
                       str(tmp_path / 'logs'), '--no-progress'])
    assert status == 1
    assert 'No space left on device' in capsys.readouterr().err
    # No half checkpoint, and no run folder without a checkpoint (issue 12 item 7).
    assert os.listdir(full_disk) == []

    ckpt = tmp_path / 'ckpt'
    assert cli.main(['train', '--model', 'mlp', '--data-dir', tiny_data_dir, '--epochs', '1',
                     '--checkpoint-dir', str(ckpt), '--log-dir', str(tmp_path / 'logs'),
                     '--run-name', 'ok', '--no-progress']) == 0
    capsys.readouterr()
    for command in (['export', str(ckpt / 'ok'), '-o', str(full_disk / 'model.tflite')],
                    ['freeze', str(ckpt / 'ok'), '-o', str(full_disk / 'frozen.pb')]):
        assert cli.main(command) == 1
        assert 'No space left on device' in capsys.readouterr().err
    assert os.listdir(full_disk) == []


def test_full_log_dir_hit_by_the_writer_thread_is_one_line(full_disk, tmp_path, tiny_data_dir):
    """Issue 12 item 8: TensorBoard's writer thread failed with two tracebacks."""
    filler = full_disk / 'filler'
    with open(filler, 'wb') as f:  # Leave about 30 KB: the first epoch's events overflow it.
        f.write(bytes(os.statvfs(full_disk).f_bavail * os.statvfs(full_disk).f_frsize
                      - 30 * 1024))
    proc = subprocess.run(
        [BIN, 'train', '--model', 'mlp_small', '--data-dir', tiny_data_dir, '--epochs', '2',
         '--batch-size', '10', '--summary-every-steps', '1', '--histogram-every-steps', '1',
         '--run-name', 'r',
         '--checkpoint-dir', str(tmp_path / 'ckpt'), '--log-dir', str(full_disk / 'logs'),
         '--no-progress'], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.count('\n') == 1, proc.stderr
    assert proc.stderr.startswith('graph-models train: error: cannot write TensorBoard logs in')
    assert ('No space left on device' in proc.stderr or 'disk full' in proc.stderr) \
        and '--log-dir' in proc.stderr
    assert _latest_step(str(tmp_path / 'ckpt' / 'r')) >= 40  # The epoch's checkpoint is kept.


@pytest.fixture(scope='module')
def artifacts(tmp_path_factory):
    """A trained checkpoint, its .tflite, and a frozen .pb."""
    root = tmp_path_factory.mktemp('artifacts')
    data_dir = write_idx_folder(root / 'data', synthetic_dataset())
    assert cli.main(['train', '--model', 'mlp_small', '--data-dir', data_dir, '--epochs', '1',
                     '--batch-size', '50', '--checkpoint-dir', str(root / 'ckpt'),
                     '--log-dir', str(root / 'logs'), '--run-name', 'm', '--no-progress']) == 0
    assert cli.main(['export', str(root / 'ckpt' / 'm'), '-o', str(root / 'm.tflite')]) == 0
    assert cli.main(['freeze', str(root / 'ckpt' / 'm'), '-o', str(root / 'm.pb')]) == 0
    return root, data_dir


def _bad_inputs(root, data_dir):
    """(argv, exit status, words the one-line message must contain)."""
    files = root / 'bad'
    files.mkdir(exist_ok=True)
    (files / 'empty.tflite').write_bytes(b'')
    (files / 'text.tflite').write_text('this is not a model at all')
    (files / 'garbage.pb').write_bytes(b'\xff\xfe garbage \x00' * 10)
    (files / 'image.png').write_bytes(b'\x89PNG\r\n\x1a\n truncated')
    (files / 'empty_dir').mkdir(exist_ok=True)
    idx = files / 'idx'
    write_idx_folder(idx, synthetic_dataset(20, 10))
    (idx / 't10k-images-idx3-ubyte.gz').write_bytes(b'')
    other = root / 'ckpt' / 'other'
    other.mkdir(exist_ok=True)
    for f in os.listdir(root / 'ckpt' / 'm'):
        if f != 'run_config.json':
            (other / f).write_bytes((root / 'ckpt' / 'm' / f).read_bytes())
    (other / 'run_config.json').write_text(
        (root / 'ckpt' / 'm' / 'run_config.json').read_text().replace('"mlp_small"', '"cnn"')
        .replace('"hidden_sizes": [\n      128\n    ]', '"hidden_sizes": null'))
    broken_config = root / 'ckpt' / 'broken'
    broken_config.mkdir(exist_ok=True)
    (broken_config / 'run_config.json').write_text('{not json')
    model, pb, ckpt = str(root / 'm.tflite'), str(root / 'm.pb'), str(root / 'ckpt' / 'm')
    return [
        (['train', '--data-dir', str(files / 'nowhere')], 1, 'does not exist'),
        (['train', '--data-dir', str(idx)], 1, 'too short to be an IDX file'),
        (['train', '--data-dir', str(files / 'empty_dir')], 1, 'holds no mnist data'),
        (['train', '--epochs', '0'], 2, 'must be a positive integer'),
        (['train', '--batch-size', '-5'], 2, 'must be a positive integer'),
        (['train', '--batch-size', '100000000000000000000'], 2, 'must be at most'),
        (['train', '--hidden-sizes', '1' + '0' * 20], 2, 'positive integers'),
        (['freeze', str(files / 'nowhere')], 1, 'no checkpoint at'),
        (['freeze', str(other)], 1, 'written for a different model'),
        (['freeze', str(broken_config)], 1, 'holds no checkpoint'),
        (['freeze', ckpt, '--batch-size', '0'], 2, 'must be a positive integer'),
        (['export', str(files / 'garbage.pb')], 1, 'not a frozen GraphDef'),
        (['export', pb, '--output-arrays', 'Nope'], 1, "no op named 'Nope'"),
        (['export', ckpt, '--quantize', 'int4'], 2, "invalid choice: 'int4'"),
        (['export', ckpt, '--output-arrays', 'Nope'], 2, 'has the outputs Output and Logits'),
        (['eval', str(files / 'text.tflite'), '--data-dir', data_dir], 1, 'TFL3'),
        (['eval', str(files / 'missing.tflite'), '--data-dir', data_dir], 1, 'cannot read'),
        (['eval', model, '--data-dir', data_dir, '--limit', '-1'], 2, 'positive integer'),
        (['predict', str(files / 'image.png'), '--model', model], 1, 'not a readable image'),
        (['predict', str(files / 'empty_dir'), '--model', model], 1, 'holds no image files'),
        (['predict', str(files / 'image.png'), '--model', pb], 1, 'not a readable image'),
        (['inspect', str(files / 'empty.tflite')], 1, 'TFL3'),
        (['inspect', str(files / 'garbage.pb')], 1, 'not a frozen GraphDef'),
    ]


def test_every_bad_input_gets_one_clear_line(artifacts, capsys):
    root, data_dir = artifacts
    for argv, status, words in _bad_inputs(root, data_dir):
        try:
            got = cli.main(argv)
        except SystemExit as e:  # argparse usage errors.
            got = e.code
        err = capsys.readouterr().err
        assert got == status, (argv, err)
        assert words in err, (argv, err)
        if status == 1:
            assert err.count('\n') == 1 and err.startswith('graph-models '), (argv, err)


def _write_file_graph(path, target):
    graph = tf.Graph()
    with graph.as_default():
        inputs = v1.placeholder(tf.float32, [1, 784], name='Input')
        write = tf.io.write_file(str(target), 'written by an untrusted graph')
        with tf.control_dependencies([write]):
            tf.identity(tf.nn.softmax(tf.matmul(inputs, tf.zeros([784, 10]))), name='Output')
    with open(path, 'wb') as f:
        f.write(graph.as_graph_def().SerializeToString())


def test_untrusted_graph_with_write_file_is_refused(tmp_path, capsys, tiny_data_dir):
    target = tmp_path / 'pwned.txt'
    pb = tmp_path / 'evil.pb'
    _write_file_graph(pb, target)
    for argv in (['eval', str(pb), '--data-dir', tiny_data_dir],
                 ['export', str(pb), '-o', str(tmp_path / 'evil.tflite')],
                 ['inspect', str(pb)]):
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert 'WriteFile' in err and '--allow-unsafe-ops' in err
        assert not target.exists()
    assert not (tmp_path / 'evil.tflite').exists()
    # The flag lifts the gate (and shows why it exists).
    assert cli.main(['inspect', str(pb), '--allow-unsafe-ops']) == 0
    assert 'WriteFile x1' in capsys.readouterr().out
    assert cli.main(['eval', str(pb), '--data-dir', tiny_data_dir, '--allow-unsafe-ops']) == 0
    assert target.read_text() == 'written by an untrusted graph'


def test_our_own_frozen_graphs_pass_the_allow_list(artifacts):
    from freeze.freeze_graph import read_graph_def
    from freeze.safety import unsafe_ops
    root, _ = artifacts
    assert unsafe_ops(read_graph_def(str(root / 'm.pb'))) == {}


def test_bench_out_on_a_full_disk_is_one_line_before_measuring(full_disk, capsys):
    """Issue 12 item 8: ``python -m bench --out <full disk>`` ended in an OSError traceback."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from bench.__main__ import main as bench_main
    filler = full_disk / 'filler'
    with open(filler, 'wb') as f:
        f.write(bytes(os.statvfs(full_disk).f_bavail * os.statvfs(full_disk).f_frsize))
    status = bench_main(['--quick', '--out', str(full_disk / 'results')])
    assert status == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'No space left on device' in err and '--out' in err, err
    assert [f for _, _, files in os.walk(full_disk / 'results') for f in files] == []
