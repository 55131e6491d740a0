"""Release check: the installed package imports from a clean folder, with its entry point."""

import os
import subprocess
import sys


def test_installed_package_imports_from_a_clean_folder(tmp_path):
    code = ('import graph_models, freeze, graph_models.train, graph_models.cli; '
            'print(graph_models.__version__); print(graph_models.__file__)')
    proc = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True,
                          text=True, env={k: v for k, v in os.environ.items()
                                          if k != 'PYTHONPATH'})
    assert proc.returncode == 0, proc.stderr
    version, location = proc.stdout.split()
    assert version == '0.1.0'
    assert not location.startswith(str(tmp_path))


def test_console_script_help():
    binary = os.path.join(os.path.dirname(sys.executable), 'graph-models')
    proc = subprocess.run([binary, 'train', '--help'], capture_output=True, text=True)
    assert proc.returncode == 0
    for flag in ('--model', '--dataset', '--data-dir', '--limit', '--epochs', '--batch-size',
                 '--learning-rate', '--seed', '--dropout', '--hidden-sizes', '--batch-norm',
                 '--run-name', '--log-dir', '--checkpoint-dir', '--keep-checkpoints',
                 '--save-every-steps', '--summary-every-steps', '--resume', '--overwrite'):
        assert flag in proc.stdout
