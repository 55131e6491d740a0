"""Release check, as tf-slim does it: build the wheel, install it into a fresh venv, use it.

The fresh venv sees the development venv's third-party packages (TensorFlow and friends) through
a plain path entry, so nothing is downloaded. That entry does not run the development venv's
``.pth`` hooks, so the editable install of this checkout is invisible there: ``graph_models``
and ``freeze`` can only come from the wheel.
"""

import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest

from conftest import REPO_ROOT, synthetic_dataset, write_idx_folder


def _clean_env():
    return {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')}


@pytest.fixture(scope='module')
def wheel_venv(tmp_path_factory):
    """Builds the wheel and installs it (no dependencies) into a new venv; returns its bin/."""
    root = tmp_path_factory.mktemp('release')
    # Build from a copy of the sources: setuptools' build/ folder must not land in the checkout
    # (a stale build/lib would leak deleted modules into later wheels).
    source = root / 'source'
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(
        '.git', '.venv', 'build', 'dist', '*.egg-info', '__pycache__', 'checkpoints', 'logs',
        'runs', '.pytest_cache', '.hypothesis'))
    dist = root / 'dist'
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation',
                    '-q', '-w', str(dist), str(source)], check=True, cwd=root, env=_clean_env(),
                   timeout=300)
    wheels = glob.glob(str(dist / 'graph_models-*.whl'))
    assert len(wheels) == 1, wheels
    venv = root / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True,
                   timeout=120)
    python = venv / 'bin' / 'python'
    purelib = subprocess.run([str(python), '-c', 'import sysconfig; '
                              'print(sysconfig.get_paths()["purelib"])'], check=True,
                             capture_output=True, text=True).stdout.strip()
    # Dependencies: the development venv's site-packages as a plain path (no .pth hooks).
    with open(os.path.join(purelib, 'dev_dependencies.pth'), 'w') as f:
        f.write(sysconfig.get_paths()['purelib'] + '\n')
    subprocess.run([sys.executable, '-m', 'pip', '--python', str(python), 'install', '-q',
                    '--no-deps', '--no-index', wheels[0]], check=True, env=_clean_env(),
                   timeout=300)
    return {'bin': venv / 'bin', 'wheel': wheels[0], 'root': root}


def test_wheel_holds_both_packages_and_no_tests(wheel_venv):
    names = zipfile.ZipFile(wheel_venv['wheel']).namelist()
    assert 'graph_models/cli.py' in names and 'graph_models/commands/train.py' in names
    assert 'freeze/__init__.py' in names
    assert not [n for n in names if n.startswith(('tests/', 'bench/'))]
    entry_points = [n for n in names if n.endswith('entry_points.txt')]
    text = zipfile.ZipFile(wheel_venv['wheel']).read(entry_points[0]).decode()
    assert 'graph-models = graph_models.cli:main' in text


def test_installed_wheel_imports_from_a_clean_folder(wheel_venv, tmp_path):
    code = ('import graph_models, freeze, graph_models.training.train, graph_models.cli; '
            'print(graph_models.__version__); print(graph_models.__file__); '
            'print(freeze.__file__)')
    proc = subprocess.run([str(wheel_venv['bin'] / 'python'), '-c', code], cwd=tmp_path,
                          capture_output=True, text=True, env=_clean_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    version, package, toolkit = proc.stdout.split()
    assert version == '0.1.0'
    for location in (package, toolkit):
        assert location.startswith(str(wheel_venv['root'] / 'venv')), location


def test_installed_wheel_trains_and_exports_from_a_clean_folder(wheel_venv, tmp_path):
    """The console script of the wheel: --help, then a tiny train and a float export."""
    binary = str(wheel_venv['bin'] / 'graph-models')
    env = _clean_env()
    proc = subprocess.run([binary, '--help'], cwd=tmp_path, capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'train' in proc.stdout and 'export' in proc.stdout
    data_dir = write_idx_folder(tmp_path / 'data', synthetic_dataset(200, 50))
    proc = subprocess.run([binary, 'train', '--model', 'mlp_small', '--epochs', '1',
                           '--data-dir', data_dir, '--no-progress'], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / 'checkpoints' / 'mlp_small-mnist'
    assert (run / 'run_config.json').is_file()
    proc = subprocess.run([binary, 'export', str(run), '--quantize', 'float'], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    model = run / 'model_float.tflite'
    assert model.read_bytes()[4:8] == b'TFL3'


def test_console_script_help():
    binary = os.path.join(os.path.dirname(sys.executable), 'graph-models')
    proc = subprocess.run([binary, 'train', '--help'], capture_output=True, text=True)
    assert proc.returncode == 0
    for flag in ('--model', '--dataset', '--data-dir', '--limit', '--epochs', '--batch-size',
                 '--learning-rate', '--seed', '--dropout', '--hidden-sizes', '--batch-norm',
                 '--run-name', '--log-dir', '--checkpoint-dir', '--keep-checkpoints',
                 '--save-every-steps', '--summary-every-steps', '--resume', '--overwrite'):
        assert flag in proc.stdout


def test_installed_dependencies_are_consistent():
    """Issue 21 item 4: the environment the package runs in satisfies every declared
    requirement (``make install`` runs the same check)."""
    proc = subprocess.run([sys.executable, '-m', 'pip', 'check'], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'No broken requirements found' in proc.stdout


def test_fast_test_target_skips_the_slow_tests():
    """Issue 21 item 6: ``make test-fast`` is ``pytest -m "not slow"``, and the README and the
    tests page say so."""
    # -n: prints the commands, runs none. Under `make test` the inherited MAKEFLAGS add
    # "Entering directory" lines: --no-print-directory.
    proc = subprocess.run(['make', '-n', '--no-print-directory', 'test-fast'], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert '-m pytest -m "not slow"' in proc.stdout.splitlines()[-1], proc.stdout
    with open(os.path.join(REPO_ROOT, 'docs', 'tests.md'), encoding='utf-8') as f:
        tests = f.read()
    assert 'make test-fast' in tests and 'pytest -m "not slow"' in tests
    with open(os.path.join(REPO_ROOT, 'README.md'), encoding='utf-8') as f:
        readme = f.read()
    assert 'make test-fast' in readme[readme.index('## Quick start'):]
