"""Issue 21: reliability and first-hour usability, round three.

Data loss first (items 9-11): a symlink never leads a command to write or delete a file outside
the folder it owns, and ``export``/``freeze`` never overwrite the files of their own source.
"""

import logging
import os
import re
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from graph_models import cli
from graph_models._tf import tf
from graph_models.errors import ConfigError
from graph_models.nets.factory import ModelConfig
from graph_models.training.run_config import RunConfig
from graph_models.training.train import train_and_eval

from conftest import synthetic_dataset, synthetic_digits, write_idx_folder


@pytest.fixture(scope='module')
def base(tmp_path_factory):
    """One tiny trained run (``ckpt/base``) and its data folder."""
    root = tmp_path_factory.mktemp('round3')
    data = synthetic_dataset(200, 50)
    data_dir = write_idx_folder(root / 'data', data)
    run = RunConfig(model=ModelConfig('mlp_small'), epochs=1, batch_size=50,
                    data_source=data_dir)
    folder = train_and_eval(run, data, run_name='base', log_dir=str(root / 'logs'),
                            checkpoint_dir=str(root / 'ckpt'), progress=False,
                            log=lambda line: None).checkpoint_dir
    return {'root': root, 'data': data, 'data_dir': data_dir, 'run': folder}


def _train(root, data, run_name, **kwargs):
    run = RunConfig(model=ModelConfig('mlp_small'), epochs=1, batch_size=50,
                    dataset=data.name)
    return train_and_eval(run, data, run_name=run_name, log_dir=str(root / 'logs'),
                          checkpoint_dir=str(root / 'ckpt'), progress=False,
                          log=lambda line: None, **kwargs)


def _one_line_error(capsys, command, status=1):
    assert cli.main(command) == status
    err = capsys.readouterr().err
    assert err.startswith(f'graph-models {command[0]}: error:') and err.count('\n') == 1, err
    return err


# Item 9 ---------------------------------------------------------------------------------------

def test_a_symlinked_lock_is_refused_and_its_target_untouched(tmp_path, base):
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'important.txt').write_text('precious\n')
    (tmp_path / 'ckpt' / 'r3').mkdir(parents=True)
    os.symlink(outside / 'important.txt', tmp_path / 'ckpt' / 'r3' / '.lock')
    with pytest.raises(ConfigError, match=r'\.lock is a symbolic link'):
        _train(tmp_path, base['data'], 'r3')
    assert (outside / 'important.txt').read_text() == 'precious\n'
    assert os.listdir(tmp_path / 'ckpt' / 'r3') == ['.lock']  # The link is left as found.


def test_cli_symlinked_lock_is_one_line(tmp_path, base, capsys):
    (tmp_path / 'outside').mkdir()
    (tmp_path / 'outside' / 'important.txt').write_text('precious\n')
    (tmp_path / 'ckpt' / 'r3').mkdir(parents=True)
    os.symlink(tmp_path / 'outside' / 'important.txt', tmp_path / 'ckpt' / 'r3' / '.lock')
    err = _one_line_error(capsys, [
        'train', '--model', 'mlp_small', '--limit', '100', '--epochs', '1', '--no-progress',
        '--data-dir', base['data_dir'], '--run-name', 'r3',
        '--checkpoint-dir', str(tmp_path / 'ckpt'), '--log-dir', str(tmp_path / 'logs')],
        status=2)
    assert 'symbolic link' in err
    assert (tmp_path / 'outside' / 'important.txt').read_text() == 'precious\n'


# Item 10 --------------------------------------------------------------------------------------

def _source_files(run):
    return sorted(n for n in os.listdir(run) if not n.startswith('.'))


@pytest.mark.parametrize('target', ['index', 'data', 'checkpoint', 'run_config.json'])
def test_export_refuses_to_overwrite_its_own_source_files(tmp_path, base, capsys, target):
    run = tmp_path / 'ow'
    shutil.copytree(base['run'], run)
    prefix = os.path.basename(tf.train.latest_checkpoint(str(run)))
    name = {'index': prefix + '.index',
            'data': prefix + '.data-00000-of-00001'}.get(target, target)
    before = {n: (run / n).read_bytes() for n in _source_files(run)}
    err = _one_line_error(capsys, ['export', str(run), '--quantize', 'float', '-o',
                                   str(run / name)], status=2)
    assert 'is a file of the source' in err and name in err
    assert {n: (run / n).read_bytes() for n in _source_files(run)} == before
    # Named through another path (a link to the folder) it is the same file: refused too.
    os.symlink(run, tmp_path / 'alias')
    _one_line_error(capsys, ['export', str(run / prefix), '--quantize', 'float', '-o',
                             str(tmp_path / 'alias' / name)], status=2)
    assert {n: (run / n).read_bytes() for n in _source_files(run)} == before


def test_freeze_refuses_to_overwrite_a_savedmodel_or_graph_source(tmp_path, base, capsys):
    pb = tmp_path / 'g.pb'
    assert cli.main(['freeze', base['run'], '-o', str(pb), '--pbtxt']) == 0
    capsys.readouterr()
    before = pb.read_bytes()
    # The .pbtxt written beside -o would be the source itself.
    err = _one_line_error(capsys, ['freeze', str(tmp_path / 'g.pbtxt'), '-o', str(pb),
                                   '--pbtxt'], status=2)
    assert 'g.pbtxt' in err
    assert pb.read_bytes() == before



# Item 11 --------------------------------------------------------------------------------------

def _victim(tmp_path):
    """A folder outside --checkpoint-dir that looks like a run (it holds a run_config.json)."""
    victim = tmp_path / 'victim'
    victim.mkdir()
    (victim / 'run_config.json').write_text('{}')
    (victim / 'thesis.tex').write_text('years of work')
    return victim


def test_overwrite_refuses_a_symlinked_run_folder(tmp_path, base):
    victim = _victim(tmp_path)
    (tmp_path / 'ckpt').mkdir()
    os.symlink(victim, tmp_path / 'ckpt' / 'r')
    with pytest.raises(ConfigError, match='is a symbolic link'):
        _train(tmp_path, base['data'], 'r', overwrite=True)
    assert sorted(os.listdir(victim)) == ['run_config.json', 'thesis.tex']
    assert os.path.islink(tmp_path / 'ckpt' / 'r')


def test_overwrite_refuses_a_symlinked_log_folder(tmp_path, base):
    _train(tmp_path, base['data'], 'r')
    victim = tmp_path / 'victim'
    (victim / 'train').mkdir(parents=True)
    (victim / 'train' / 'precious.txt').write_text('x')
    shutil.rmtree(tmp_path / 'logs' / 'r')
    os.symlink(victim, tmp_path / 'logs' / 'r')
    with pytest.raises(ConfigError, match='is a symbolic link'):
        _train(tmp_path, base['data'], 'r', overwrite=True)
    assert (victim / 'train' / 'precious.txt').read_text() == 'x'
    assert os.listdir(tmp_path / 'ckpt' / 'r')  # The run is kept.


# Items 1 and 5 --------------------------------------------------------------------------------

BIN = os.path.join(os.path.dirname(sys.executable), 'graph-models')
LOG_LEVELS = [None, '', '0', '3']  # TF_CPP_MIN_LOG_LEVEL unset, set but empty, 0 and 3.


def _env(level):
    env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
    if level is not None:
        env['TF_CPP_MIN_LOG_LEVEL'] = level
    return env


def test_importing_the_library_leaves_the_process_alone():
    # TensorFlow's own import sets a few variables: compare with the process after it.
    code = ('import logging, os, sys\n'
            'import tensorflow as tf\n'
            'env, level = dict(os.environ), tf.get_logger().level\n'
            'import graph_models.training.train, graph_models.export, freeze, freeze.export\n'
            'changed = sorted(k for k in set(env) | set(os.environ) '
            'if env.get(k) != os.environ.get(k))\n'
            'assert changed == [] and "TF_CPP_MIN_LOG_LEVEL" not in os.environ, changed\n'
            'assert tf.get_logger().level == level == logging.NOTSET, tf.get_logger().level\n')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          env=_env(None), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_the_cli_quiets_tensorflow_only_while_it_runs(capsys):
    logger = logging.getLogger('tensorflow')
    level = logger.level
    assert cli.main(['summary', '--model', 'mlp_small']) == 0
    assert logger.level == level
    capsys.readouterr()


@pytest.mark.slow
@pytest.mark.parametrize('level', LOG_LEVELS)
def test_training_is_quiet_whatever_tf_cpp_min_log_level(tmp_path, base, level):
    proc = subprocess.run(
        [BIN, 'train', '--model', 'mlp_small', '--limit', '100', '--epochs', '1',
         '--data-dir', base['data_dir'], '--run-name', 'q', '--no-progress',
         '--checkpoint-dir', str(tmp_path / 'ckpt'), '--log-dir', str(tmp_path / 'logs')],
        capture_output=True, text=True, env=_env(level), timeout=300)
    assert proc.returncode == 0 and proc.stderr == '', proc.stderr
    proc = subprocess.run([BIN, 'eval', str(tmp_path / 'ckpt' / 'q'), '--data-dir',
                           base['data_dir']], capture_output=True, text=True,
                          env=_env(level), timeout=300)
    assert proc.returncode == 0 and proc.stderr == '', proc.stderr


# Item 2 ---------------------------------------------------------------------------------------

def _train_argv(tmp_path, data_dir, *extra):
    return ['train', '--model', 'mlp_small', '--limit', '200', '--epochs', '2',
            '--batch-size', '50', '--data-dir', data_dir, '--run-name', 'r', '--no-progress',
            '--checkpoint-dir', str(tmp_path / 'ckpt'), '--log-dir', str(tmp_path / 'logs'),
            *extra]


def _sigint_in_the_second_epoch(monkeypatch, how='signal'):
    from graph_models.training import train as train_lib
    real = train_lib._TrainingRun.train_epoch

    def train_epoch(self, epoch, *args, **kwargs):
        if epoch == 1:
            if how == 'signal':
                os.kill(os.getpid(), signal.SIGINT)
            else:  # What a handler raising inside a C callback looks like.
                try:
                    raise KeyboardInterrupt()
                except KeyboardInterrupt as e:
                    raise SystemError('<built-in function __import__> returned a result with '
                                      'an exception set') from e
        return real(self, epoch, *args, **kwargs)
    monkeypatch.setattr(train_lib._TrainingRun, 'train_epoch', train_epoch)


def test_sigterm_while_the_interrupted_run_is_wound_up_keeps_the_one_line(
        tmp_path, base, capsys, monkeypatch):
    # The SIGTERM lands after training put the command's handlers back, while the run folders
    # are released: it used to raise there and replace the "saved ..." line.
    from graph_models.training import loop
    _sigint_in_the_second_epoch(monkeypatch)
    real_exit = loop.RunFolders.__exit__

    def exit_with_sigterm(self, *exc):
        os.kill(os.getpid(), signal.SIGTERM)
        return real_exit(self, *exc)
    monkeypatch.setattr(loop.RunFolders, '__exit__', exit_with_sigterm)
    status = cli.main(_train_argv(tmp_path, base['data_dir']))
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'SIGINT at step 4: saved' in err, err
    assert status == 130


def test_a_signal_wrapped_in_a_system_error_is_still_an_interrupt(tmp_path, base, capsys,
                                                                 monkeypatch):
    _sigint_in_the_second_epoch(monkeypatch, how='system-error')
    assert cli.main(_train_argv(tmp_path, base['data_dir'])) == 130
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'SIGINT at step 4: saved' in err, err


def test_a_signal_after_the_command_is_done_does_not_kill_the_process():
    # Interpreter shutdown takes a while after TensorFlow ran: a SIGTERM then must not end the
    # process by the default action (exit -15 instead of the status already reported).
    code = ('import os, signal, sys\n'
            'from graph_models import cli\n'
            'sys.argv = ["graph-models", "summary", "--model", "mlp_small"]\n'
            'status = cli.main()\n'
            'os.kill(os.getpid(), signal.SIGTERM)\n'
            'os.kill(os.getpid(), signal.SIGINT)\n'
            'sys.exit(status)\n')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr == ''


# Item 3 ---------------------------------------------------------------------------------------

@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No cached data and no network: only a recorded or given data folder can be read."""
    from graph_models import data as data_lib
    monkeypatch.setenv('GRAPH_MODELS_DATA', str(tmp_path / 'empty-cache'))

    def no_download(*args, **kwargs):
        raise AssertionError('tried to download')
    monkeypatch.setattr(data_lib, 'download_dataset', no_download)


def test_eval_of_a_run_reads_its_recorded_data(tmp_path, base, capsys, offline):
    run = tmp_path / 'run'
    shutil.copytree(base['run'], run)
    assert cli.main(['eval', str(run)]) == 0, capsys.readouterr().err
    assert cli.main(['eval', tf.train.latest_checkpoint(str(run))]) == 0
    capsys.readouterr()


def test_resume_reads_the_recorded_data(tmp_path, base, capsys, offline):
    argv = ['train', '--model', 'mlp_small', '--batch-size', '50', '--run-name', 'r',
            '--no-progress', '--checkpoint-dir', str(tmp_path / 'ckpt'),
            '--log-dir', str(tmp_path / 'logs')]
    assert cli.main([*argv, '--epochs', '1', '--data-dir', base['data_dir']]) == 0
    capsys.readouterr()
    assert cli.main([*argv, '--epochs', '2', '--resume']) == 0, capsys.readouterr().err
    assert 'step 8' in capsys.readouterr().out


# Item 12 --------------------------------------------------------------------------------------

def _digit(background, stroke, dtype):
    pixels = np.full((28, 28), background, dtype=dtype)
    pixels[6:22, 12:16] = stroke
    return pixels


def test_a_16_bit_png_is_scaled_by_its_own_depth(tmp_path):
    from PIL import Image
    from graph_models.litert.predict import load_digit
    path = str(tmp_path / 'deep.png')
    Image.fromarray(_digit(1000, 40000, np.uint16)).save(path)
    assert Image.open(path).mode.startswith('I')
    pixels = load_digit(path)
    assert abs(pixels[0, 0] - 1000 / 65535) < 1e-3  # Was 1.0 (clipped to 255), then inverted.
    assert abs(pixels[14, 14] - 40000 / 65535) < 1e-3


def test_a_float_tiff_keeps_its_values(tmp_path):
    from PIL import Image
    from graph_models.litert.predict import load_digit
    path = str(tmp_path / 'float.tif')
    Image.fromarray(_digit(0.0, 0.8, np.float32), mode='F').save(path)
    pixels = load_digit(path)
    assert pixels[0, 0] == 0 and abs(pixels[14, 14] - 0.8) < 1e-3  # Was all zero.


def test_a_float_image_out_of_any_range_is_refused(tmp_path):
    from PIL import Image
    from graph_models.litert.predict import ImageError, load_digit
    path = str(tmp_path / 'wild.tif')
    Image.fromarray(_digit(-5.0, 1e6, np.float32), mode='F').save(path)
    with pytest.raises(ImageError, match='wild.tif holds float values from -5 to 1e\\+06'):
        load_digit(path)


# Items 19, 20, 21, 29, 32: names, paths and streams ------------------------------------------

def _train_cli(tmp_path, data_dir, run_name, **env):
    return subprocess.run(
        [BIN, 'train', '--model', 'mlp_small', '--limit', '100', '--epochs', '1',
         '--data-dir', data_dir, '--run-name', run_name, '--no-progress',
         '--checkpoint-dir', str(tmp_path / 'ckpt'), '--log-dir', str(tmp_path / 'logs')],
        capture_output=True, env={**os.environ, **env}, timeout=300, cwd=tmp_path)


@pytest.mark.parametrize('name', ['r\nsecond line', 'r\rx', 'tab\there', 'bell\x07'])
def test_a_run_name_with_control_characters_is_refused_before_the_data_loads(
        tmp_path, base, capsys, monkeypatch, name):
    from graph_models import data as data_lib

    def no_loading(*args, **kwargs):
        raise AssertionError('loaded the data first')
    monkeypatch.setattr(data_lib, 'load_dataset', no_loading)
    err = _one_line_error(capsys, ['train', '--model', 'mlp_small', '--run-name', name,
                                   '--checkpoint-dir', str(tmp_path / 'ckpt'),
                                   '--log-dir', str(tmp_path / 'logs')], status=2)
    assert 'control character' in err
    assert not (tmp_path / 'ckpt').exists()


def test_a_bad_run_name_is_refused_before_the_data_loads(tmp_path, capsys, monkeypatch):
    from graph_models import data as data_lib

    def no_loading(*args, **kwargs):
        raise AssertionError('loaded the data first')
    monkeypatch.setattr(data_lib, 'load_dataset', no_loading)
    _one_line_error(capsys, ['train', '--run-name', '..', '--checkpoint-dir',
                             str(tmp_path / 'ckpt')], status=2)


def test_a_non_utf8_run_name_is_one_line_and_leaves_nothing(tmp_path, base):
    proc = _train_cli(tmp_path, base['data_dir'], os.fsdecode(b'r\xff'))
    err = proc.stderr.decode()
    assert proc.returncode == 2 and err.count('\n') == 1, err
    assert 'UTF-8' in err and 'Traceback' not in err
    assert not (tmp_path / 'ckpt').exists()


def test_a_non_utf8_checkpoint_dir_is_one_line_and_leaves_nothing(tmp_path, base):
    proc = subprocess.run(
        [BIN, 'train', '--model', 'mlp_small', '--limit', '100', '--epochs', '1',
         '--data-dir', base['data_dir'], '--no-progress', '--checkpoint-dir',
         os.fsdecode(b'ck\xff'), '--log-dir', 'logs'],
        capture_output=True, timeout=300, cwd=tmp_path)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and err.count('\n') == 1 and 'UTF-8' in err, err
    assert os.listdir(tmp_path) == []


def test_a_non_utf8_data_folder_is_read_and_printed_escaped(tmp_path, base):
    data_dir = os.fsdecode(os.path.join(os.fsencode(str(tmp_path)), b'd\xff'))
    shutil.copytree(base['data_dir'], data_dir)
    proc = _train_cli(tmp_path, data_dir, 'r', PYTHONIOENCODING='utf-8')  # A strict stdout.
    assert proc.returncode == 0 and proc.stderr == b'', proc.stderr.decode()
    assert b'd\\udcff' in proc.stdout  # Was UnicodeEncodeError while printing it.


def test_help_with_stdout_closed_is_no_traceback():
    proc = subprocess.run([BIN, '--help'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          preexec_fn=lambda: os.close(1), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert b'Traceback' not in proc.stderr and b'AttributeError' not in proc.stderr


def test_a_non_ascii_path_under_a_strict_c_locale(tmp_path, base):
    strict = {'LC_ALL': 'C', 'PYTHONUTF8': '0', 'PYTHONCOERCECLOCALE': '0'}
    data_dir = tmp_path / 'caf\u00e9'
    shutil.copytree(base['data_dir'], data_dir)
    # Data read from it and the path printed back as it came.
    proc = _train_cli(tmp_path, str(data_dir), 'r', **strict)
    assert proc.returncode == 0 and proc.stderr == b'', proc.stderr.decode()
    assert str(data_dir).encode() in proc.stdout
    # A checkpoint folder TensorFlow cannot name under this locale: one line, nothing made.
    proc = subprocess.run(
        [BIN, 'train', '--model', 'mlp_small', '--limit', '100', '--data-dir', str(data_dir),
         '--checkpoint-dir', 'ck\u00e9', '--log-dir', 'logs'], capture_output=True,
        timeout=300, cwd=tmp_path, env={**os.environ, **strict})
    err = proc.stderr.decode('ascii')
    assert proc.returncode == 2 and err.count('\n') == 1 and 'LC_ALL=C.UTF-8' in err, err
    assert sorted(os.listdir(tmp_path)) == ['caf\u00e9', 'ckpt', 'logs']


def test_an_over_long_checkpoint_dir_leaves_no_empty_folders(tmp_path, base, capsys):
    deep = os.path.join(str(tmp_path), *(['d' * 200] * 30))
    status = cli.main(['train', '--model', 'mlp_small', '--limit', '100', '--epochs', '1',
                       '--data-dir', base['data_dir'], '--no-progress',
                       '--checkpoint-dir', deep, '--log-dir', str(tmp_path / 'logs')])
    err = capsys.readouterr().err
    assert status == 1 and err.count('\n') == 1, err
    assert os.listdir(tmp_path) == []


# Item 15 --------------------------------------------------------------------------------------

@pytest.mark.parametrize('command', [['eval'], ['export', '-o', 'x.tflite'],
                                     ['freeze', '-o', 'x.pb'], ['resume']])
def test_a_state_file_that_is_not_utf8_is_one_line(tmp_path, base, capsys, monkeypatch,
                                                   command):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(base['run'], tmp_path / 'ckpt' / 'bad')
    (tmp_path / 'ckpt' / 'bad' / 'checkpoint').write_bytes(
        b'model_checkpoint_path: "model.ckpt-4\xff"\n')
    if command == ['resume']:
        argv = ['train', '--model', 'mlp_small', '--batch-size', '50', '--epochs', '2',
                '--resume', '--run-name', 'bad', '--data-dir', base['data_dir'],
                '--checkpoint-dir', 'ckpt', '--log-dir', 'logs', '--no-progress']
    else:
        argv = [command[0], 'ckpt/bad', *command[1:]]
    status = cli.main(argv)
    err = capsys.readouterr().err
    assert status == 1 and err.count('\n') == 1, err
    assert 'ckpt/bad/checkpoint is not a valid checkpoint state file' in err
    assert sorted(os.listdir(tmp_path / 'ckpt' / 'bad')) == sorted(os.listdir(base['run']))


# Item 13 --------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def fashion_dir(tmp_path_factory):
    return write_idx_folder(tmp_path_factory.mktemp('fashion'),
                            synthetic_dataset(100, 50, seed=3, name='fashion_mnist'))


def test_eval_refuses_another_dataset_than_the_run_was_trained_on(base, fashion_dir, capsys):
    err = _one_line_error(capsys, ['eval', base['run'], '--dataset', 'fashion_mnist',
                                   '--data-dir', fashion_dir], status=2)
    assert "trained on 'mnist'" in err and '--force-dataset' in err
    assert cli.main(['eval', base['run'], '--dataset', 'fashion_mnist', '--data-dir',
                     fashion_dir, '--force-dataset']) == 0
    assert 'fashion_mnist' in capsys.readouterr().out


def test_eval_refuses_another_dataset_than_the_tflite_record_says(tmp_path, base, fashion_dir,
                                                                  capsys):
    model = str(tmp_path / 'm.tflite')
    assert cli.main(['export', base['run'], '-o', model]) == 0
    capsys.readouterr()
    err = _one_line_error(capsys, ['eval', model, '--dataset', 'fashion_mnist',
                                   '--data-dir', fashion_dir], status=2)
    assert "exported from a model trained on 'mnist'" in err
    assert cli.main(['eval', model, '--dataset', 'fashion_mnist', '--data-dir', fashion_dir,
                     '--force-dataset']) == 0
    capsys.readouterr()


# Item 24 --------------------------------------------------------------------------------------

@pytest.mark.parametrize('status,name', [(130, 'SIGINT'), (143, 'SIGTERM')])
def test_an_interrupted_compare_does_not_advise_resume(tmp_path, base, capsys, monkeypatch,
                                                       status, name):
    from graph_models.research import compare
    from graph_models.errors import TrainingInterrupted

    def interrupted(*args, **kwargs):
        raise TrainingInterrupted(f'{name} at step 3: saved x', exit_code=status,
                                  cli_message=f'{name} at step 3: saved x; run the same '
                                              'command with --resume to continue')
    monkeypatch.setattr(compare, 'train_and_eval', interrupted)
    assert cli.main(['compare', '--quick', '--data-dir', base['data_dir'],
                     '--out', str(tmp_path / 'out')]) == status
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and f'{name} during the comparison' in err, err
    assert '--resume' not in err and 'compare again' in err


# Item 14 --------------------------------------------------------------------------------------

def _chain_graph(length):
    from graph_models._tf import v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [1, 784], name='Input')
        y = tf.matmul(x, tf.constant(np.full((784, 10), 0.01, np.float32)))
        for i in range(length):
            y = tf.identity(y, name=f'id{i}')
        tf.nn.softmax(y, name='Output')
    return graph.as_graph_def()


def test_a_long_identity_chain_is_bypassed_in_one_pass():
    from freeze.sources import make_inference_graph
    graph_def, inputs, outputs, _ = make_inference_graph(_chain_graph(3000))
    assert inputs == ['Input'] and outputs == ['Output']
    assert sum(n.op == 'Identity' for n in graph_def.node) == 0  # Was 3,000 for the converter.
    assert len(graph_def.node) < 10


def test_bypassing_identities_keeps_what_control_edges_wait_on():
    from freeze.freeze_graph import bypass_identities
    from graph_models._tf import v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [2], name='x')
        a = tf.identity(x, name='a')
        pivot = tf.identity(a, name='pivot')
        with tf.control_dependencies([pivot]):
            c = tf.constant([1.0, 2.0], name='c')
        b = tf.identity(tf.identity(a, name='b0'), name='b1')
        tf.add(b, c, name='out')
        tf.identity(x, name='kept_output')
    result = bypass_identities(graph.as_graph_def(), ['kept_output'])
    nodes = {n.name: n for n in result.node}
    assert set(nodes) == {'x', 'pivot', 'c', 'out', 'kept_output'}
    assert list(nodes['out'].input) == ['x', 'c'] and list(nodes['pivot'].input) == ['x']
    assert list(nodes['c'].input) == ['^pivot']
    with tf.Graph().as_default() as g:
        tf.graph_util.import_graph_def(result, name='')
        with v1.Session(graph=g) as session:
            assert session.run('out:0', {'x:0': [1.0, 1.0]}).tolist() == [2.0, 3.0]


# Item 22 --------------------------------------------------------------------------------------

def test_a_state_file_naming_a_missing_checkpoint_is_one_line(tmp_path, base, capsys):
    run = tmp_path / 'miss'
    shutil.copytree(base['run'], run)
    (run / 'checkpoint').write_text('model_checkpoint_path: "model.ckpt-99"\n')
    err = _one_line_error(capsys, ['eval', str(run)])
    assert 'names model.ckpt-99' in err and "Couldn't match" not in err


def test_a_huge_path_in_the_state_file_is_quoted_abridged(tmp_path, base, capsys):
    run = tmp_path / 'miss'
    shutil.copytree(base['run'], run)
    (run / 'checkpoint').write_text('model_checkpoint_path: "' + 'a' * 5_000_000 + '"\n')
    err = _one_line_error(capsys, ['eval', str(run)])
    assert len(err) < 2000 and '...' in err


# Item 30 --------------------------------------------------------------------------------------

def test_a_batch_no_command_could_read_is_refused_up_front(tmp_path, base, capsys):
    out = tmp_path / 'f.pb'
    err = _one_line_error(capsys, ['freeze', base['run'], '-o', str(out), '--batch-size',
                                   '2147483647'], status=2)
    assert '--batch-size 2147483647' in err and 'at most 342,392' in err
    assert not out.exists()
    assert cli.main(['freeze', base['run'], '-o', str(out), '--batch-size', '342392']) == 0
    capsys.readouterr()


# Items 26, 27, 32: output files -----------------------------------------------------------------

def test_a_long_but_valid_output_name_is_written(tmp_path, base, capsys):
    out = tmp_path / ('m' * 238 + '.tflite')  # 245 characters: the temporary's name is longer.
    assert cli.main(['export', base['run'], '-o', str(out)]) == 0, capsys.readouterr().err
    assert out.read_bytes()[4:8] == b'TFL3'
    capsys.readouterr()


def test_an_output_that_is_a_folder_names_the_folder(tmp_path, base, capsys):
    (tmp_path / 'out').mkdir()
    err = _one_line_error(capsys, ['export', base['run'], '-o', str(tmp_path / 'out')])
    assert f'({tmp_path / "out"})' in err and '.tmp' not in err
    assert os.listdir(tmp_path / 'out') == []


@pytest.mark.parametrize('command', ['export', 'freeze'])
def test_a_full_disk_names_the_output(tmp_path, base, capsys, monkeypatch, command):
    def no_space(fd):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(os, 'fsync', no_space)
    out = tmp_path / ('m.tflite' if command == 'export' else 'g.pb')
    err = _one_line_error(capsys, [command, base['run'], '-o', str(out)])
    assert f'No space left on device ({out})' in err, err
    assert os.listdir(tmp_path) == []


def test_a_temporary_of_a_killed_writer_is_removed_at_once(tmp_path, base, capsys):
    dead = subprocess.Popen(['true'])
    dead.wait()
    left = tmp_path / f'.m.tflite.{dead.pid}-abcdefgh.tmp'
    left.write_bytes(b'half a model')
    live = tmp_path / f'.m.tflite.{os.getppid()}-abcdefgh.tmp'  # A writer still running.
    live.write_bytes(b'being written')
    assert cli.main(['export', base['run'], '-o', str(tmp_path / 'm.tflite')]) == 0
    capsys.readouterr()
    assert sorted(os.listdir(tmp_path)) == [live.name, 'm.tflite', 'm.tflite.json']


# Item 23 --------------------------------------------------------------------------------------

def test_a_huge_image_is_our_one_line_without_pils_warning(tmp_path):
    import warnings
    from PIL import Image
    from graph_models.litert.predict import ImageError, load_digit
    path = str(tmp_path / 'huge.png')
    Image.new('1', (10000, 9000)).save(path)  # 90 M pixels: over PIL's warning threshold.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        with pytest.raises(ImageError, match='10000x9000 pixels, more than 40,000,000'):
            load_digit(path)
    assert not [w for w in caught if 'DecompressionBomb' in w.category.__name__]


# Item 8 ---------------------------------------------------------------------------------------

@pytest.mark.parametrize('p,text', [(0.996, '99.6%'), (0.9999, '99.9%'), (1.0, '100%'),
                                    (0.985, '98%'), (0.5, '50%'), (0.004, '0.4%'),
                                    (np.float32(0.996), '99.6%'), (np.float32(0.993), '99.3%'),
                                    (np.float32(0.99999994), '99.9%'), (np.float32(1.0), '100%'),
                                    (np.float32(0.004), '0.4%'), (float('nan'), 'nan')])
def test_a_confidence_is_never_rounded_up_to_certainty(p, text):
    """Softmax outputs are float32: 0.996 is stored as 0.99599999, which must still read 99.6%."""
    from graph_models.pictures import confidence_text
    assert confidence_text(p) == text


def test_the_prediction_grid_never_shows_100_percent_below_1():
    from graph_models import pictures
    probabilities = np.full((3, 10), 0.0, np.float32)
    probabilities[0, 3], probabilities[0, 5] = 0.996, 0.004
    probabilities[1, 7], probabilities[1, 1] = 0.99999994, 0.00000006
    probabilities[2, 2] = 1.0
    # The texts prediction_grid writes over its cells.
    assert pictures.grid_titles(probabilities) == [('3 99.6%', 'black'), ('7 99.9%', 'black'),
                                                   ('2 100%', 'black')]
    png = pictures.prediction_grid(synthetic_digits(3)[0], probabilities, columns=3)
    assert pictures.png_size(png)[0] > pictures.png_size(png)[1] > 100


def _compare_report(seeds, graph_accuracy, keras_accuracy, spread):
    """A report dict as `compare.compare` builds it (`compare.aggregate` over per-seed figures)."""
    from graph_models import compare
    rng = np.random.default_rng(seeds)

    def figures(accuracy):
        def acc():
            return float(np.clip(accuracy + rng.uniform(-spread, spread), 0.0, 1.0))
        return {'parameters': 1000, 'test_accuracy': acc(), 'tflite_float_accuracy': acc(),
                'tflite_int8_accuracy': acc(),
                'examples_per_sec': 250000.0 * rng.uniform(0.5, 1.5),
                'train_seconds': 3.0, 'eval_seconds': 0.5, 'wall_seconds': 4.0,
                'tflite_float_bytes': 13_000_000, 'tflite_int8_bytes': 3_300_000,
                'latency_float_us': 20.0 * rng.uniform(0.5, 2.0),
                'latency_int8_us': 12.0 * rng.uniform(0.5, 2.0)}
    per_seed = [{'graph': figures(graph_accuracy), 'keras': figures(keras_accuracy),
                 'agreement_top1': 0.99} for _ in range(seeds)]
    report = {'model': 'cnn', 'dataset': 'mnist', 'seed': 0, 'seeds': list(range(seeds))}
    report.update(compare.aggregate(per_seed))
    return report


def _crosses(box, artist, fig):
    """Whether a line or line collection (error bars, their caps, the zero line) enters ``box``."""
    from matplotlib.collections import LineCollection
    from matplotlib.transforms import Bbox
    if isinstance(artist, LineCollection):
        paths = [artist.get_transform().transform_path(p) for p in artist.get_paths()]
        return any(path.intersects_bbox(box, filled=False) for path in paths)
    if artist.get_marker() in (None, 'None', '', ' '):
        path = artist.get_transform().transform_path(artist.get_path())
        return path.intersects_bbox(box, filled=False)
    # Caps: one marker per point, markersize wide and markeredgewidth high (points).
    half_w = artist.get_markersize() * fig.dpi / 144
    half_h = artist.get_markeredgewidth() * fig.dpi / 144
    points = artist.get_transform().transform(artist.get_xydata())
    return any(Bbox([[x - half_w, y - half_h], [x + half_w, y + half_h]]).overlaps(box)
               for x, y in points)


def _layout_problems(fig):
    """Everything that covers something else in the compare report, as it is drawn."""
    fig.canvas.draw()  # Lays the figure out as savefig does.
    renderer = fig.canvas.get_renderer()
    problems = []
    whole = fig.bbox
    for ax in fig.axes:
        panel = repr(ax.title.get_text())
        frame = ax.get_window_extent(renderer)
        title = ax.title.get_window_extent(renderer)
        labels = [(t.get_text(), t.get_window_extent(renderer)) for t in ax.texts
                  if t.get_text()]
        assert len(labels) == len(ax.patches)  # One value label per bar.
        lines = list(ax.lines) + [c for c in ax.collections]
        for i, (text, box) in enumerate(labels):
            where = f'{panel}: label {text}'
            if box.overlaps(title):
                problems.append(f'{where} over the panel title')
            if fig._suptitle is not None and box.overlaps(
                    fig._suptitle.get_window_extent(renderer)):
                problems.append(f'{where} over the figure title')
            if not (whole.x0 <= box.x0 and box.x1 <= whole.x1 and whole.y0 <= box.y0
                    and box.y1 <= whole.y1):
                problems.append(f'{where} outside the figure')
            if not (frame.y0 <= box.y0 and box.y1 <= frame.y1):
                problems.append(f'{where} outside its panel')
            if any(_crosses(box, line, fig) for line in lines):
                problems.append(f'{where} crossed by an error bar or the zero line')
            problems.extend(f'{where} over label {other}' for other, o in labels[i + 1:]
                            if box.overlaps(o))
        legend = ax.get_legend()
        if legend is not None:
            box = legend.get_window_extent(renderer)
            for other in fig.axes:
                texts = [*other.texts, *other.get_xticklabels(), *other.get_yticklabels()]
                if any(p.get_window_extent(renderer).overlaps(box) for p in other.patches):
                    problems.append(f'legend over a bar of {other.title.get_text()!r}')
                if any(t.get_text() and t.get_window_extent(renderer).overlaps(box)
                       for t in texts):
                    problems.append(f'legend over a label of {other.title.get_text()!r}')
    return problems


@pytest.mark.parametrize('seeds,graph_accuracy,keras_accuracy,spread', [
    (1, 0.996, 0.992, 0.0),     # One seed: no intervals, the last panel's bars reach its top.
    (3, 0.995, 0.99, 0.005),    # Near 1.0 with error bars and 95% intervals.
    (10, 0.999, 0.999, 0.001),  # Ten seeds, accuracies 0.998-1.0, intervals around zero.
    (5, 0.97, 0.99, 0.002),     # Keras ahead: negative differences, labels under the bars.
    (2, 1.0, 1.0, 0.0),         # Identical sides: every difference exactly 0.
])
def test_compare_picture_labels_cover_nothing_and_the_legend_no_bar(
        seeds, graph_accuracy, keras_accuracy, spread):
    from matplotlib import pyplot as plt
    from graph_models import pictures
    fig = pictures.compare_report_figure(
        _compare_report(seeds, graph_accuracy, keras_accuracy, spread))
    try:
        assert _layout_problems(fig) == []
    finally:
        plt.close(fig)


def test_compare_picture_labels_stay_off_the_title_under_a_style_without_margins():
    """A matplotlibrc with ``axes.ymargin: 0`` (the 'classic' style) once put the last panel's
    value labels over its title: the panel's room above the bars must not come from the margin."""
    from matplotlib import pyplot as plt
    from graph_models import pictures
    with plt.style.context('classic'):
        fig = pictures.compare_report_figure(_compare_report(1, 0.996, 0.992, 0.0))
        try:
            assert _layout_problems(fig) == []
        finally:
            plt.close(fig)


# Item 18 --------------------------------------------------------------------------------------

@pytest.mark.parametrize('command', ['eval', 'inspect'])
def test_a_deeply_nested_pbtxt_is_one_line(tmp_path, capsys, command):
    levels = 400
    path = tmp_path / 'deep.pbtxt'
    path.write_text('node { name: "x" op: "Const" attr { key: "a" value { '
                    + 'func { name: "f" attr { key: "b" value { ' * levels
                    + '}}}' * levels + ' } } }')
    err = _one_line_error(capsys, [command, str(path)])
    assert 'nested too deeply' in err


# Item 16 --------------------------------------------------------------------------------------

@pytest.mark.parametrize('command', [['eval'], ['export', '-o', 'm.tflite']])
def test_a_meta_checkpoint_with_truncated_data_is_one_line(tmp_path, base, capsys,
                                                           monkeypatch, command):
    from graph_models._tf import v1
    monkeypatch.chdir(tmp_path)
    with tf.Graph().as_default():
        x = v1.placeholder(tf.float32, [None, 784], name='Input')
        w = v1.get_variable('w', [784, 10], initializer=v1.zeros_initializer())
        tf.nn.softmax(tf.matmul(x, w), name='Output')
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            v1.train.Saver().save(session, str(tmp_path / 'model.ckpt'))
    data = next(p for p in tmp_path.iterdir() if '.data-' in p.name)
    os.truncate(data, 100)
    err = _one_line_error(capsys, [command[0], 'model.ckpt', '--data-dir', base['data_dir'],
                                   *command[1:]])
    assert 'truncated or corrupt' in err


# Item 17 --------------------------------------------------------------------------------------

@pytest.mark.parametrize('command', [['eval'], ['export', '-o', 'm.tflite']])
def test_a_const_with_content_of_the_wrong_size_is_one_line(tmp_path, base, capfd, monkeypatch,
                                                            command):
    from graph_models._tf import v1
    monkeypatch.chdir(tmp_path)
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [1, 784], name='Input')
        w = tf.constant(np.zeros((784, 10), np.float32), name='w')
        tf.nn.softmax(tf.matmul(x, w), name='Output')
    graph_def = graph.as_graph_def()
    for node in graph_def.node:
        if node.name == 'w':
            node.attr['value'].tensor.tensor_content = \
                node.attr['value'].tensor.tensor_content[:100]
    (tmp_path / 'bad.pb').write_bytes(graph_def.SerializeToString())
    capfd.readouterr()
    assert cli.main([command[0], 'bad.pb', '--data-dir', base['data_dir'], *command[1:]]) == 1
    err = capfd.readouterr().err
    assert err.count('\n') == 1, err  # Was 140 lines (eval), 58 (export).
    assert 'w (Const) holds 100 bytes of data, its shape [784, 10] of float32 needs 31,360' in err


# Item 28 --------------------------------------------------------------------------------------

def test_an_empty_meta_file_says_so(tmp_path, base, capsys):
    ckpt = tmp_path / 'model.ckpt'
    for suffix in ('.index', '.data-00000-of-00001'):
        shutil.copy(tf.train.latest_checkpoint(base['run']) + suffix, str(ckpt) + suffix)
    (tmp_path / 'model.ckpt.meta').write_bytes(b'')
    err = _one_line_error(capsys, ['eval', str(ckpt), '--data-dir', base['data_dir']])
    assert 'model.ckpt.meta holds no graph' in err, err


def test_a_savedmodel_without_serving_default_names_its_signatures(tmp_path, base, capsys):
    from graph_models._tf import v1
    folder = str(tmp_path / 'sm')
    with tf.Graph().as_default(), v1.Session() as session:
        x = v1.placeholder(tf.float32, [None, 784], name='Input')
        y = tf.nn.softmax(tf.matmul(x, tf.zeros([784, 10])), name='Output')
        signature = v1.saved_model.predict_signature_def({'x': x}, {'y': y})
        builder = v1.saved_model.Builder(folder)
        builder.add_meta_graph_and_variables(session, ['serve'],
                                             signature_def_map={'a': signature, 'b': signature})
        builder.save()
    err = _one_line_error(capsys, ['eval', folder, '--data-dir', base['data_dir']])
    assert 'None' not in err and 'no serving_default' in err and "'a', 'b'" in err, err


# Item 25 --------------------------------------------------------------------------------------

@pytest.mark.parametrize('command', [['eval'], ['export', '-o', 'm.tflite']])
def test_a_checkpoint_pruned_while_read_is_retried_on_the_newest(tmp_path, base, capsys,
                                                                 monkeypatch, command):
    # Training with --keep-checkpoints 1 saves step N+1 and deletes step N between the moment
    # the state file is read and the moment the checkpoint is.
    from graph_models.training import checkpoints
    monkeypatch.chdir(tmp_path)
    run = tmp_path / 'run'
    shutil.copytree(base['run'], run)
    real = checkpoints.resolve_checkpoint
    calls = []

    def move(prefix, source, target):
        for name in os.listdir(source):
            if name.startswith(os.path.basename(prefix) + '.'):
                shutil.move(os.path.join(source, name), os.path.join(target, name))

    def racing(path):
        calls.append(path)
        if len(calls) == 2:  # The read that finds the checkpoint gone...
            try:
                return real(path)
            finally:  # ...after which the newer one is in place.
                move(calls[0], str(tmp_path / 'away'), str(run))
        prefix = real(path)
        if len(calls) == 1:
            calls[0] = prefix
            (tmp_path / 'away').mkdir()
            move(prefix, str(run), str(tmp_path / 'away'))
        return prefix
    monkeypatch.setattr(checkpoints, 'resolve_checkpoint', racing)
    status = cli.main([command[0], str(run), '--data-dir', base['data_dir'], *command[1:]])
    assert status == 0, capsys.readouterr().err
    capsys.readouterr()


# Item 31 --------------------------------------------------------------------------------------

_TASK_STOPPED = re.compile(r'\[(ps|worker)\d+\] graph-models train: '
                           r'(terminated \(SIGTERM\)|interrupted \(SIGINT\))$')


@pytest.mark.slow
@pytest.mark.parametrize('level', [None, '0', '3'])  # TF_CPP_MIN_LOG_LEVEL of the user.
def test_sigint_to_cluster_local_says_what_happened_and_nothing_else(tmp_path, mnist_10k_dir,
                                                                      level):
    """SIGINT to a training cluster-local: 130, its one line, one line per stopped task, and
    no "Object was never used" block (the tasks' output is cluster-local's stdout)."""
    import threading
    import uuid
    run_name = 'sigint-' + uuid.uuid4().hex[:8]
    proc = subprocess.Popen(
        [BIN, 'cluster-local', '--workers', '2', '--ps', '1', '--timeout', '240', '--',
         'train', '--model', 'mlp_small', '--data-dir', mnist_10k_dir, '--limit', '2000',
         '--epochs', '50', '--batch-size', '10', '--save-every-steps', '20', '--run-name',
         run_name, '--checkpoint-dir', str(tmp_path / 'ckpt'), '--log-dir',
         str(tmp_path / 'logs')],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(level))
    lines = []
    training = threading.Event()
    epochs_done = set()

    def read():
        for line in proc.stdout:
            lines.append(line)
            found = re.match(r'\[(worker\d)\] \1.*: shard epoch \d+ done', line)
            if found:
                epochs_done.add(found.group(1))
                if epochs_done == {'worker0', 'worker1'}:
                    training.set()
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert training.wait(timeout=180), ''.join(lines)[-3000:]
        folder = tmp_path / 'ckpt' / run_name
        assert any(f.endswith('.index') for f in os.listdir(folder))  # A checkpoint, too.
        seen = len(lines)
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=90)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=30)
    out = ''.join(lines)
    after = [line.rstrip('\n') for line in lines[seen:]
             if not re.search(r'shard epoch \d+ done|global step \d+', line)]
    assert proc.returncode == 130, err + out[-3000:]
    assert err == 'graph-models cluster-local: interrupted (SIGINT)\n', err
    for text in (out, err):
        assert 'Object was never used' not in text, text[-3000:]
        assert 'Traceback' not in text and 'ERROR:tensorflow' not in text, text[-3000:]
    # After the signal: at most one line per task, each saying that it was stopped.
    assert len(after) <= 3 and all(_TASK_STOPPED.match(line) for line in after), after


def test_the_cli_drops_tensorflows_object_never_used_block():
    # An interrupted cluster worker garbage-collects ops it built but never ran; TensorFlow
    # logs a 12-line "Object was never used" block at ERROR for each.
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())
    logger = logging.getLogger('tensorflow')
    handler = Keep()
    logger.addHandler(handler)
    try:
        restore = cli._quiet_tensorflow(process=False)
        logger.error('==================================\nObject was never used (type <class '
                     "'tensorflow.python.framework.ops.Operation'>):\n<tf.Operation ...>")
        logger.error('a real error')
        restore()
        logger.error('Object was never used, outside a command')
    finally:
        logger.removeHandler(handler)
    assert records == ['a real error', 'Object was never used, outside a command']



def test_a_cli_process_drops_the_block_until_it_exits(monkeypatch):
    """The console script's quiet outlasts the command: an interrupted cluster worker's graph
    is collected at interpreter exit, and its blocks were logged then (item 31)."""
    monkeypatch.setenv('TF_CPP_MIN_LOG_LEVEL', '3')
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())
    logger = logging.getLogger('tensorflow')
    level, filters = logger.level, list(logger.filters)
    handler = Keep()
    logger.addHandler(handler)
    try:
        cli._quiet_tensorflow(process=True)()  # Quieted, then "restored" at the command's end.
        logger.error('==================================\nObject was never used (type <class '
                     "'tensorflow.python.framework.ops.SymbolicTensor'>):\n<tf.Tensor ...>")
        logger.warning('a warning at exit')
        logger.error('a real error')
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.filters[:] = filters
    assert records == ['a real error']

# Item 7 ---------------------------------------------------------------------------------------

def _help(*argv):
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as stop:
        cli.main([*argv, '--help'])
    assert stop.value.code == 0
    return out.getvalue()


def test_export_without_a_source_is_one_line_naming_source(capsys):
    # SOURCE is optional to argparse (tflite_convert's --graph_def_file and its kin give it
    # too): the command itself refuses its absence, exit 2.
    assert cli.main(['export']) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'usage:' not in err, err
    assert err.startswith('graph-models export: error: no model source: give SOURCE')


@pytest.mark.parametrize('argv', [['train', '--epochs', '0'], ['train', '--nope'],
                                  ['export', '--nope'], ['nope']])
def test_a_usage_error_is_one_line_pointing_at_the_help(capsys, argv):
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'usage:' not in err, err
    command = argv[0] if argv[0] != 'nope' else None
    assert err.startswith(f'graph-models {command}: error:' if command else 'graph-models: error:')
    assert err.rstrip().endswith(f'see graph-models {command} --help' if command
                                 else 'see graph-models --help')


@pytest.mark.parametrize('command', sorted(cli.EXAMPLES))
def test_every_command_help_shows_debug_and_an_example(command):
    text = _help(command)
    assert '--debug' in text
    example = cli.EXAMPLES[command].splitlines()[0]
    assert example in text  # One line, not re-wrapped.


def test_weight_bits_is_explained_and_defaults_read_one_way():
    text = ' '.join(_help('train').split())
    assert '--weight-bits B bits per weight' in text
    assert '(default 8)' not in text and 'default 8' not in text.replace('(default: 8)', '')


def test_export_source_help_lists_every_kind_of_source():
    text = ' '.join(_help('export').split())
    for kind in ('run folder', 'checkpoint prefix', '.meta', 'SavedModel', '.pb', '.pbtxt'):
        assert kind in text.split('options:')[0], kind


UNRAISABLE_SCRIPT = '''
import gc, os, signal, sys
from graph_models.system import signals

class HalfBuilt:
    def __init__(self):
        os.kill(os.getpid(), signal.SIGTERM)  # The handler raises inside __init__.
        self.ready = True

    def __del__(self):
        self.ready  # AttributeError: __init__ never got this far.

signals.install()
try:
    HalfBuilt()
except BaseException as e:
    print(type(e).__name__, flush=True)
gc.collect()
'''


def test_a_signal_inside_an_objects_init_leaves_no_exception_ignored_lines():
    """CI saw "Exception ignored in _TensorCacheDeleter.__del__" after train's one SIGTERM
    line: the signal's exception had interrupted TensorFlow building that object."""
    proc = subprocess.run([sys.executable, '-c', UNRAISABLE_SCRIPT], capture_output=True,
                          text=True, timeout=60)
    assert proc.stdout.strip() == 'Terminated'
    assert 'Exception ignored' not in proc.stderr and proc.stderr == '', proc.stderr
