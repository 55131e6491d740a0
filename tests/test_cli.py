"""The ``graph-models`` command end to end: success, usage errors (2), user errors (1)."""

import json
import os
import subprocess
import sys

import pytest

from graph_models import cli

BIN = os.path.join(os.path.dirname(sys.executable), 'graph-models')


def run_cli(*args, cwd=None):
    return subprocess.run([BIN, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def _assert_one_line_error(proc, status, message):
    assert proc.returncode == status, proc.stderr
    assert 'Traceback' not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines and message in lines[-1], proc.stderr


def test_train_end_to_end(tmp_path, tiny_data_dir):
    proc = run_cli('train', '--model', 'mlp_small', '--data-dir', tiny_data_dir,
                   '--epochs', '2', '--batch-size', '50', '--run-name', 'e2e',
                   '--log-dir', str(tmp_path / 'logs'), '--checkpoint-dir',
                   str(tmp_path / 'ckpt'), '--no-progress')
    assert proc.returncode == 0, proc.stderr
    assert 'epoch 2/2  step 16' in proc.stdout
    assert 'test accuracy' in proc.stdout
    assert 'Traceback' not in proc.stderr
    ckpt = tmp_path / 'ckpt' / 'e2e'
    config = json.loads((ckpt / 'run_config.json').read_text())
    assert config['model']['name'] == 'mlp_small' and config['epochs'] == 2
    assert config['tensor_names']['output'] == 'Output'
    assert (ckpt / 'model.ckpt-16.index').is_file()
    assert os.listdir(tmp_path / 'logs' / 'e2e' / 'train')

    # The same run again is refused (usage error) until --resume or --overwrite.
    again = run_cli('train', '--model', 'mlp_small', '--data-dir', tiny_data_dir, '--epochs',
                    '3', '--batch-size', '50', '--run-name', 'e2e', '--log-dir',
                    str(tmp_path / 'logs'), '--checkpoint-dir', str(tmp_path / 'ckpt'))
    _assert_one_line_error(again, 2, 'already holds a checkpoint; pass --resume')
    resumed = run_cli('train', '--model', 'mlp_small', '--data-dir', tiny_data_dir, '--epochs',
                      '3', '--batch-size', '50', '--run-name', 'e2e', '--log-dir',
                      str(tmp_path / 'logs'), '--checkpoint-dir', str(tmp_path / 'ckpt'),
                      '--resume', '--no-progress')
    assert resumed.returncode == 0, resumed.stderr
    assert 'epoch 3/3  step 24' in resumed.stdout and 'epoch 1/3' not in resumed.stdout


def test_python_dash_m_is_the_same_command():
    proc = subprocess.run([sys.executable, '-m', 'graph_models', '--version'],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith('graph-models ')


@pytest.mark.parametrize('flags,message', [
    (['--epochs', '0'], 'must be a positive integer'),
    (['--epochs', 'five'], 'expected a positive integer'),
    (['--batch-size', '-3'], 'must be a positive integer'),
    (['--learning-rate', '0'], 'must be a positive number'),
    (['--learning-rate', 'nan'], 'must be a positive number'),
    (['--dropout', '1.5'], 'must be in [0, 1)'),
    (['--hidden-sizes', '512,x'], 'comma-separated positive integers'),
    (['--limit', '0'], 'must be a positive integer'),
    (['--model', 'resnet'], "invalid choice: 'resnet'"),
    (['--dataset', 'cifar'], "invalid choice: 'cifar'"),
    (['--resume', '--overwrite'], 'not allowed with argument'),
    (['--no-such-flag'], 'unrecognized arguments'),
])
def test_bad_flags_exit_2(capsys, flags, message):
    with pytest.raises(SystemExit) as e:
        cli.main(['train', *flags])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_library_usage_error_exits_2(capsys, tiny_data_dir):
    status = cli.main(['train', '--model', 'cnn', '--hidden-sizes', '10',
                       '--data-dir', tiny_data_dir])
    assert status == 2
    err = capsys.readouterr().err
    assert err == ("graph-models train: error: hidden sizes apply to the MLP models (mlp, "
                   "mlp_small, mlp_deep), not 'cnn': drop --hidden-sizes, or choose an MLP "
                   "model with --model\n")


def test_missing_data_exits_1_with_one_line(tmp_path):
    proc = run_cli('train', '--data-dir', str(tmp_path / 'nowhere'))
    _assert_one_line_error(proc, 1, 'does not exist; pass --data-dir')


def test_corrupt_data_exits_1_and_debug_shows_traceback(tmp_path, tiny_data_dir):
    path = os.path.join(tiny_data_dir, 'train-labels-idx1-ubyte.gz')
    with open(path, 'r+b') as f:
        f.truncate(20)
    proc = run_cli('train', '--data-dir', tiny_data_dir)
    _assert_one_line_error(proc, 1, 'train-labels-idx1-ubyte.gz is not a valid gzip file')
    debug = run_cli('--debug', 'train', '--data-dir', tiny_data_dir)
    assert debug.returncode == 1 and 'Traceback' in debug.stderr


@pytest.mark.parametrize('which', ['--checkpoint-dir', '--log-dir'])
def test_unwritable_output_folder(capsys, tmp_path, tiny_data_dir, which):
    blocker = tmp_path / 'file'
    blocker.write_text('not a folder')
    folders = {'--checkpoint-dir': str(tmp_path / 'ckpt'), '--log-dir': str(tmp_path / 'logs')}
    folders[which] = str(blocker / 'out')
    status = cli.main(['train', '--data-dir', tiny_data_dir, '--epochs', '1', '--no-progress',
                       *[x for kv in folders.items() for x in kv]])
    assert status == 1
    err = capsys.readouterr().err
    assert f'(Not a directory); choose another {which}' in err
    assert err.count('\n') == 1


def test_train_speed_flags_are_pinned(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(['train', '--help'])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert '--xla' in text and '--histogram-every-steps K' in text
    assert '--pictures-every-epochs N' in text
