"""Issue 12: run folders are never lost or mixed up (run names, --overwrite, lock, resume)."""

import json
import os
import subprocess
import sys
import time

import pytest

from graph_models._tf import tf
from graph_models.errors import CheckpointError, ConfigError, TrainingError
from graph_models.nets.factory import ModelConfig
from graph_models.training.run_config import RunConfig
from graph_models.training.loop import LOCK_FILE
from graph_models.training.train import train_and_eval


def _run(data, **kwargs):
    fields = {k: kwargs.pop(k) for k in list(kwargs) if k in (
        'model', 'epochs', 'batch_size', 'learning_rate')}
    fields.setdefault('model', ModelConfig('mlp_small'))
    fields.setdefault('batch_size', 50)
    fields.setdefault('epochs', 1)
    return RunConfig(dataset=data.name, **fields), kwargs


def _train(root, data, run_name='r', **kwargs):
    run, kwargs = _run(data, **kwargs)
    return train_and_eval(run, data, run_name=run_name, log_dir=str(root / 'logs'),
                          checkpoint_dir=str(root / 'ckpt'), progress=False,
                          log=kwargs.pop('log', lambda line: None), **kwargs)


def _tree(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder)
                  for d, _, files in os.walk(folder) for f in files)


def _checkpoints(folder):
    return sorted(int(f[len('model.ckpt-'):-len('.index')]) for f in os.listdir(folder)
                  if f.startswith('model.ckpt-') and f.endswith('.index'))


# Item 1 ---------------------------------------------------------------------------------------

@pytest.mark.parametrize('name', ['..', '.', '', 'a/b', '/abs/dir', '../ck'])
def test_run_name_must_be_one_plain_component(tmp_path, tiny_data, name):
    sandbox = tmp_path / 'sb'
    (sandbox / 'ckpt' / 'keep').mkdir(parents=True)
    (sandbox / 'ckpt' / 'keep' / 'precious.txt').write_text('x')
    (sandbox / 'sibling').mkdir()
    (sandbox / 'sibling' / 'precious.txt').write_text('y')
    with pytest.raises(ConfigError, match='one plain folder name'):
        _train(sandbox, tiny_data, run_name=name, overwrite=True)
    assert _tree(sandbox) == ['ckpt/keep/precious.txt', 'sibling/precious.txt']


def test_overwrite_only_empties_a_folder_with_our_run_config(tmp_path, tiny_data):
    foreign = tmp_path / 'ckpt' / 'photos'
    foreign.mkdir(parents=True)
    (foreign / 'cat.jpg').write_bytes(b'meow')
    (foreign / 'checkpoint.tmp1').write_bytes(b'not ours either')
    with pytest.raises(ConfigError, match='holds no run_config.json'):
        _train(tmp_path, tiny_data, run_name='photos', overwrite=True)
    assert sorted(os.listdir(foreign)) == ['cat.jpg', 'checkpoint.tmp1']  # As found.
    # A log folder with more than train/eval is refused too.
    _train(tmp_path, tiny_data, run_name='r')
    (tmp_path / 'logs' / 'r' / 'notes.txt').write_text('mine')
    with pytest.raises(ConfigError, match="'notes.txt'"):
        _train(tmp_path, tiny_data, run_name='r', overwrite=True)
    assert _checkpoints(tmp_path / 'ckpt' / 'r') == [8]
    os.unlink(tmp_path / 'logs' / 'r' / 'notes.txt')
    # A real run is emptied and trained again.
    result = _train(tmp_path, tiny_data, run_name='r', overwrite=True)
    assert result.global_step == 8 and _checkpoints(tmp_path / 'ckpt' / 'r') == [8]


def test_cli_rejects_dotdot_run_name_and_deletes_nothing(tmp_path, tiny_data_dir, capsys):
    from graph_models import cli
    sandbox = tmp_path / 'sb'
    for name in ('ck/other', 'lg/other'):
        (sandbox / name).mkdir(parents=True)
        (sandbox / name / 'file').write_text('keep me')
    status = cli.main(['train', '--model', 'mlp_small', '--data-dir', tiny_data_dir,
                       '--epochs', '1', '--checkpoint-dir', str(sandbox / 'ck'), '--log-dir',
                       str(sandbox / 'lg'), '--run-name', '..', '--overwrite', '--no-progress'])
    assert status == 2
    assert 'one plain folder name' in capsys.readouterr().err
    assert _tree(sandbox) == ['ck/other/file', 'lg/other/file']


# Item 2 ---------------------------------------------------------------------------------------

HOLD_LOCK = '''
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, str(os.getpid()).encode())
print('locked', flush=True)
time.sleep(60)
'''


def test_second_process_on_the_same_run_fails_naming_the_holder(tmp_path, tiny_data):
    folder = tmp_path / 'ckpt' / 'r'
    folder.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, '-c', HOLD_LOCK, str(folder / LOCK_FILE)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        began = time.monotonic()
        with pytest.raises(ConfigError, match=f'in use by another.*process {holder.pid}'):
            _train(tmp_path, tiny_data)
        assert time.monotonic() - began < 5  # At once, not after training.
        assert os.listdir(folder) == [LOCK_FILE]  # Nothing written into the holder's run.
    finally:
        holder.kill()
        holder.wait()
    # The holder is gone (as after kill -9): its lock is taken over.
    result = _train(tmp_path, tiny_data)
    assert result.global_step == 8
    assert (folder / LOCK_FILE).read_text().strip() == str(os.getpid())


# Item 3 ---------------------------------------------------------------------------------------

def test_resume_refuses_a_checkpoint_whose_shapes_differ_from_the_run(tmp_path, tiny_data):
    small = ModelConfig('mlp', hidden_sizes=[64])
    _train(tmp_path, tiny_data, model=small)
    config = tmp_path / 'ckpt' / 'r' / 'run_config.json'
    data = json.loads(config.read_text())
    data['model']['hidden_sizes'] = [128]
    config.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=r'mlp/fc1/weights with shape \[784, 64\], the '
                                              r'model needs \[784, 128\]'):
        _train(tmp_path, tiny_data, model=ModelConfig('mlp', hidden_sizes=[128]), epochs=2,
               resume=True)
    assert _checkpoints(tmp_path / 'ckpt' / 'r') == [8]


# Item 4 ---------------------------------------------------------------------------------------

def test_resume_keeps_only_keep_checkpoints_and_removes_stale_temporaries(tmp_path, tiny_data):
    folder = tmp_path / 'ckpt' / 'r'
    _train(tmp_path, tiny_data, save_every_steps=1, keep_checkpoints=3)
    assert _checkpoints(folder) == [6, 7, 8]
    # What kill -9 during a save leaves behind (TensorFlow's temporary names).
    (folder / 'model.ckpt-9.data-00000-of-00001.tempstate8817264').write_bytes(b'half')
    (folder / 'model.ckpt-9.index.tempstate8817265').write_bytes(b'half')
    (folder / 'model.ckpt-9_temp').mkdir()
    (folder / 'model.ckpt-9_temp' / 'part-00000-of-00001.index').write_bytes(b'half')
    (folder / 'checkpoint.tmp3f2a9c').write_bytes(b'half')
    (folder / 'notes.txt').write_text('not ours to delete')
    for epochs in (2, 3, 4):
        _train(tmp_path, tiny_data, epochs=epochs, save_every_steps=1, keep_checkpoints=3,
               resume=True)
        assert _checkpoints(folder) == [8 * epochs - 2, 8 * epochs - 1, 8 * epochs]
    leftovers = sorted(f for f in os.listdir(folder) if not f.startswith('model.ckpt-'))
    assert leftovers == [LOCK_FILE, 'checkpoint', 'notes.txt', 'run_config.json']
    assert not [f for f in os.listdir(folder) if 'temp' in f]
    # A smaller --keep-checkpoints applies at once.
    _train(tmp_path, tiny_data, epochs=5, keep_checkpoints=1, resume=True)
    assert _checkpoints(folder) == [40]
    assert tf.train.latest_checkpoint(str(folder)).endswith('model.ckpt-40')


# Item 5 ---------------------------------------------------------------------------------------

def test_noop_resume_leaves_the_run_untouched(tmp_path, tiny_data):
    _train(tmp_path, tiny_data, epochs=2)
    folder = tmp_path / 'ckpt' / 'r'
    before = {f: (folder / f).read_bytes() for f in os.listdir(folder)}
    lines = []
    result = _train(tmp_path, tiny_data, epochs=1, resume=True, log=lines.append)
    assert result.history == [] and result.global_step == 16
    assert lines == [f'{folder} is already trained to step 16 (2 epochs of 8 steps); nothing '
                     'to do (raise --epochs above 2 to train further)']
    assert {f: (folder / f).read_bytes() for f in os.listdir(folder)} == before
    assert json.loads((folder / 'run_config.json').read_text())['epochs'] == 2


# Item 7 ---------------------------------------------------------------------------------------

def test_failed_train_leaves_no_empty_run_folders(tmp_path, tiny_data):
    (tmp_path / 'ckpt').mkdir()
    (tmp_path / 'logs').mkdir()
    with pytest.raises(TrainingError):  # NaN at step 2, before any checkpoint.
        _train(tmp_path, tiny_data, learning_rate=1e30)
    assert os.listdir(tmp_path / 'ckpt') == [] and os.listdir(tmp_path / 'logs') == []
    # A run that already has a checkpoint keeps its folders when a later call fails.
    _train(tmp_path, tiny_data, run_name='kept')
    with pytest.raises(ConfigError):
        _train(tmp_path, tiny_data, run_name='kept', model=ModelConfig('mlp_deep'),
               resume=True)
    assert _checkpoints(tmp_path / 'ckpt' / 'kept') == [8]


# Item 8: hostile run_config.json ----------------------------------------------------------------

def _config_variants():
    from graph_models.training.run_config import RunConfig as RC
    good = RC(model=ModelConfig('mlp', hidden_sizes=[64])).to_dict()

    def changed(**fields):
        d = json.loads(json.dumps(good))
        for key, value in fields.items():
            if key.startswith('model.'):
                d['model'][key[6:]] = value
            else:
                d[key] = value
        return json.dumps(d)

    return {
        'hidden 1e20': changed(**{'model.hidden_sizes': [1e20]}),
        'hidden 10**20': changed(**{'model.hidden_sizes': [10 ** 20]}),
        'hidden 2.5': changed(**{'model.hidden_sizes': [2.5]}),
        'hidden text': changed(**{'model.hidden_sizes': 'abc'}),
        'epochs 1e20': changed(epochs=1e20),
        'batch huge': changed(batch_size=10 ** 20),
        'lr text': changed(learning_rate='fast'),
        'lr inf': '{"format_version": 1, "model": {"name": "mlp"}, "learning_rate": 1e999}',
        'model text': changed(model='mlp'),
        'nested 100000': '[' * 100000 + ']' * 100000,
        'nested dict': '{"a": ' * 100000 + '1' + '}' * 100000,
    }


@pytest.mark.parametrize('case', sorted(_config_variants()))
def test_hostile_run_config_is_one_clear_error(tmp_path, case):
    from graph_models.training.run_config import read_run_config
    folder = tmp_path / 'run'
    folder.mkdir()
    (folder / 'run_config.json').write_text(_config_variants()[case])
    with pytest.raises(CheckpointError, match='run_config.json'):
        read_run_config(str(folder))


def test_cli_resume_with_hostile_run_config(tmp_path, tiny_data_dir, capsys):
    from graph_models import cli
    argv = ['train', '--model', 'mlp', '--hidden-sizes', '64', '--data-dir', tiny_data_dir,
            '--epochs', '1', '--checkpoint-dir', str(tmp_path / 'ckpt'), '--log-dir',
            str(tmp_path / 'logs'), '--run-name', 'r', '--no-progress']
    assert cli.main(argv) == 0
    capsys.readouterr()
    config = tmp_path / 'ckpt' / 'r' / 'run_config.json'
    for case in ('hidden 1e20', 'nested 100000'):
        config.write_text(_config_variants()[case])
        assert cli.main(argv[:-1] + ['--resume', '--epochs', '2', '--no-progress']) == 1
        err = capsys.readouterr().err
        assert err.count('\n') == 1 and 'run_config.json' in err, err
