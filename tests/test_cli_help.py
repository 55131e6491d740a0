"""CLI manners: help text with defaults for every flag, progress bars only on a terminal, and
summary RUN_FOLDER."""

import argparse
import io

import pytest

from graph_models import cli, loop, train


def _subparsers():
    parser = cli.build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    raise AssertionError('no subcommands')


def test_every_flag_has_help_with_its_default():
    missing = []
    for name, sub in _subparsers().items():
        formatter = sub._get_formatter()
        assert isinstance(formatter, cli._DefaultsHelpFormatter), name
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            text = formatter._get_help_string(action)
            if not text:
                missing.append(f'{name} {action.dest}: no help')
            has_default = action.default is not None and action.default is not False
            if action.option_strings and has_default and 'default' not in text.lower():
                missing.append(f'{name} {action.dest}: default not shown')
    assert not missing, missing


def test_help_shows_zero_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(['compare', '--help'])
    out = capsys.readouterr().out
    assert '(default: 0)' in out and '(default: functional)' in out


def test_progress_only_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert train.show_progress(True, Tty()) is True
    assert train.show_progress(True, io.StringIO()) is False
    assert train.show_progress(False, Tty()) is False
    assert loop.progress_text(0.12345, 12345.6) == 'loss 0.1235, 12,346 examples/s'


def test_library_training_draws_no_bar_into_a_pipe(tmp_path, capsys):
    from conftest import synthetic_dataset
    from graph_models.nets_factory import ModelConfig
    from graph_models.run_config import RunConfig
    run = RunConfig(model=ModelConfig('mlp_small'), epochs=1, batch_size=50)
    train.train_and_eval(run, synthetic_dataset(100, 20), log_dir=str(tmp_path / 'logs'),
                         checkpoint_dir=str(tmp_path / 'ckpt'), progress=True,
                         log=lambda line: None)
    err = capsys.readouterr().err
    assert 'examples/s' not in err and 'batch/s' not in err and '|' not in err


def test_summary_of_a_run_folder(tmp_path, capsys, tiny_data_dir):
    assert cli.main(['train', '--model', 'cnn', '--batch-norm', '--data-dir', tiny_data_dir,
                     '--epochs', '1', '--no-progress', '--checkpoint-dir',
                     str(tmp_path / 'ckpt'), '--log-dir', str(tmp_path / 'logs')]) == 0
    capsys.readouterr()
    assert cli.main(['summary', str(tmp_path / 'ckpt')]) == 0
    out = capsys.readouterr().out
    assert 'Model: "cnn" (TF1 graph)' in out and 'dataset mnist, 1 epochs' in out
    assert 'Non-trainable params: 320' in out  # Batch-norm moving statistics: 2 x 160.
    assert cli.main(['summary', str(tmp_path / 'logs')]) == 1
    err = capsys.readouterr().err
    assert 'is not a trained run' in err and len(err.strip().splitlines()) == 1


def test_library_errors_speak_arguments_cli_speaks_flags(tmp_path, capsys, tiny_data_dir):
    from conftest import synthetic_dataset
    from graph_models import data as data_lib
    from graph_models.errors import ConfigError, DataError
    from graph_models.nets_factory import ModelConfig
    from graph_models.run_config import RunConfig
    run = RunConfig(model=ModelConfig('mlp_small'), epochs=1, batch_size=50)
    kwargs = dict(log_dir=str(tmp_path / 'logs'), checkpoint_dir=str(tmp_path / 'ckpt'),
                  run_name='r', progress=False, log=lambda line: None)
    train.train_and_eval(run, synthetic_dataset(100, 20), **kwargs)
    with pytest.raises(ConfigError) as e:
        train.train_and_eval(run, synthetic_dataset(100, 20), **kwargs)
    assert '--' not in str(e.value) and 'overwrite=True' in str(e.value)
    assert '--overwrite' in e.value.for_cli()
    with pytest.raises(DataError) as e:
        data_lib.load_dataset('mnist', str(tmp_path / 'nowhere'))
    assert '--' not in str(e.value)
    status = cli.main(['train', '--model', 'mlp_small', '--data-dir', str(tmp_path / 'nowhere'),
                       '--no-progress'])
    assert status == 1 and 'pass --data-dir' in capsys.readouterr().err
