"""CLI manners: help text with defaults for every flag, progress bars only on a terminal, and
summary RUN_FOLDER."""

import argparse
import io
import subprocess
import sys

import pytest

from graph_models import cli
from graph_models.training import loop
from graph_models.training import train


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
            # SUPPRESS (the per-command --verbose) means no default, as for the formatter.
            has_default = (action.default is not None and action.default is not False
                           and action.default != argparse.SUPPRESS)
            if action.option_strings and has_default and 'default' not in text.lower():
                missing.append(f'{name} {action.dest}: default not shown')
    assert not missing, missing


def test_help_imports_no_tensorflow():
    """Issue 14 item 7: the parsers and every --help load no TensorFlow, Keras or LiteRT (their
    import takes seconds); handlers import the library only when they run."""
    code = '\n'.join([
        'import contextlib, io, sys',
        'from graph_models import cli',
        'parser = cli.build_parser()',
        'out = io.StringIO()',
        'for argv in [["--help"]] + [[name, "--help"] for name in sorted(',
        '        cli.build_parser()._subparsers._group_actions[0].choices)]:',
        '    with contextlib.redirect_stdout(out):',
        '        try:',
        '            cli.main(argv)',
        '        except SystemExit as e:',
        '            assert e.code == 0, argv',
        'heavy = sorted(m for m in sys.modules',
        '               if m.split(".")[0] in ("tensorflow", "keras", "ai_edge_litert"))',
        'print(out.getvalue().count("usage: graph-models"), heavy)',
    ])
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    # The top-level help and the ten commands' answered; nothing heavy was imported.
    assert proc.stdout.split() == ['11', '[]'], proc.stdout


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
    from graph_models.nets.factory import ModelConfig
    from graph_models.training.run_config import RunConfig
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
    from graph_models.nets.factory import ModelConfig
    from graph_models.training.run_config import RunConfig
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


@pytest.mark.parametrize('kind,text,message', [
    ('positive_int', '0', 'must be a positive integer, got 0'),
    ('positive_int', 'x', "expected a positive integer, got 'x'"),
    ('positive_int', str(2 ** 31), 'must be at most 2,147,483,647, got 2147483648'),
    ('non_negative_int', '-1', 'must be >= 0, got -1'),
    ('non_negative_int', '1.5', "expected an integer >= 0, got '1.5'"),
    ('positive_float', 'inf', 'must be a positive number, got inf'),
    ('positive_float', 'nan', 'must be a positive number, got nan'),
    ('rate', '1', 'must be in [0, 1), got 1'),
    ('bits', '17', 'must be from 2 to 16, got 17'),
    ('int_list', '512,0', "expected positive integers such as 512,256, got '512,0'"),
    ('input_range', '1,1', "expected finite MIN < MAX, got '1,1'"),
])
def test_argument_types_say_what_they_expected(kind, text, message):
    from graph_models.commands import flags
    with pytest.raises(argparse.ArgumentTypeError) as e:
        getattr(flags, kind)(text)
    assert str(e.value) == message


def test_argument_types_accept_their_range():
    from graph_models.commands import flags
    assert flags.positive_int('7') == 7 and flags.non_negative_int('0') == 0
    assert flags.positive_float('1e-3') == 1e-3 and flags.rate('0') == 0.0
    assert flags.bits('2') == 2 and flags.bits('16') == 16
    assert flags.int_list('512,256') == [512, 256] and flags.input_range('-1,1') == (-1.0, 1.0)
