"""Issue 24: a local cluster (1 ps + 2 workers on loopback) that survives a lost task.

Each disturbed run trains mlp_small on the first 4,000 real mnist-10k examples (4 epochs,
batches of 50: 40 steps per shard epoch, 320 global steps, a checkpoint every 40) and is
compared with the same run undisturbed. Asynchronous updates make two undisturbed runs differ
already: after 80 global steps by up to 0.8 points (0.8642, 0.8715, 0.8724 measured), too
close to the 1-point bound; after 320 steps, near the plateau, by 0.02 points (0.9149, 0.9151).
A lost task costs at most the steps since the last checkpoint, redone, so the test accuracy
stays within 1 point of the undisturbed run.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from conftest import synthetic_dataset, write_idx_folder

BIN = os.path.join(os.path.dirname(sys.executable), 'graph-models')
GLOBAL_STEPS = 320  # 2 workers x 4 epochs x 2,000 examples / 50.
KILL_HOOK = 'GRAPH_MODELS_TEST_KILL_AT'


def _command(tmp_path, data_dir, run_name, *, limit=4000, epochs=4, local_flags=()):
    return [BIN, 'cluster-local', '--workers', '2', '--ps', '1', '--timeout', '300',
            *local_flags, '--', 'train', '--model', 'mlp_small', '--data-dir', data_dir,
            '--limit', str(limit), '--epochs', str(epochs), '--batch-size', '50',
            '--save-every-steps', '40', '--run-name', run_name,
            '--checkpoint-dir', str(tmp_path / 'ckpt'), '--log-dir', str(tmp_path / 'logs')]


def _processes(marker):
    out = subprocess.run(['pgrep', '-f', marker], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


def _no_process_left(marker):
    deadline = time.monotonic() + 20
    while _processes(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not _processes(marker)


def _run(command, env=None, timeout=400):
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def _chief(out):
    """(global step, test accuracy) of the chief's final checkpoint."""
    found = re.search(r'\(chief\): checkpoint \S+, global step (\d+), test accuracy ([\d.]+)',
                      out)
    assert found, out[-3000:]
    return int(found.group(1)), float(found.group(2))


def _events(tmp_path, run_name):
    with open(tmp_path / 'ckpt' / run_name / 'cluster_events.jsonl') as f:
        return [json.loads(line) for line in f]


def _exports(tmp_path, run_name):
    from graph_models import cli
    return cli.main(['export', str(tmp_path / 'ckpt' / run_name), '--quantize', 'float',
                     '-o', str(tmp_path / f'{run_name}.tflite')]) == 0


@pytest.fixture(scope='module')
def undisturbed(tmp_path_factory, mnist_10k_dir):
    """Test accuracy of the run no task of which is lost."""
    tmp_path = tmp_path_factory.mktemp('undisturbed')
    proc = _run(_command(tmp_path, mnist_10k_dir, 'undisturbed'))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    step, accuracy = _chief(proc.stdout)
    assert step == GLOBAL_STEPS
    return accuracy


def _check_recovered(proc, tmp_path, run_name, undisturbed, lost, restarted):
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    step, accuracy = _chief(proc.stdout)
    assert step == GLOBAL_STEPS  # Exactly the requested global step.
    assert abs(accuracy - undisturbed) <= 0.01, (accuracy, undisturbed)
    restarts = [line for line in proc.stderr.splitlines() if 'cluster-local: restart' in line]
    assert len(restarts) == 1 and f'of {lost} (' in restarts[0], proc.stderr
    assert 'Traceback' not in proc.stderr
    events = _events(tmp_path, run_name)
    assert sorted(e['task'] for e in events) == sorted(restarted), events
    assert all(e['of'] == lost and e['time'] > 0 and e['global_step'] >= 0 for e in events)
    assert _exports(tmp_path, run_name)
    assert _no_process_left(run_name)
    print(f'{lost} lost: {len(restarts)} restart, global step {step}, test accuracy '
          f'{accuracy:.4f} (undisturbed {undisturbed:.4f})')
    return accuracy


@pytest.mark.slow
def test_killed_worker_rejoins_and_the_run_completes(tmp_path, mnist_10k_dir, undisturbed):
    run_name = 'lost-worker-' + uuid.uuid4().hex[:8]
    proc = _run(_command(tmp_path, mnist_10k_dir, run_name), env={KILL_HOOK: 'worker1@150'})
    _check_recovered(proc, tmp_path, run_name, undisturbed, 'worker1', ['worker1'])
    assert '[worker1] test hook: SIGKILL at global step' in proc.stdout
    # It went on with its shard where its step count said, and made exactly its 40 steps.
    rejoined = re.search(r'\[worker1\] worker1: rejoining at local step (\d+)', proc.stdout)
    assert rejoined and 0 < int(rejoined.group(1)) < 160, proc.stdout[-3000:]
    assert re.search(r'\[worker1\] worker1: 160 local steps', proc.stdout)


@pytest.mark.slow
def test_killed_chief_resumes_from_its_checkpoint(tmp_path, mnist_10k_dir, undisturbed):
    run_name = 'lost-chief-' + uuid.uuid4().hex[:8]
    proc = _run(_command(tmp_path, mnist_10k_dir, run_name), env={KILL_HOOK: 'worker0@200'})
    _check_recovered(proc, tmp_path, run_name, undisturbed, 'worker0',
                     ['ps0', 'worker0', 'worker1'])
    # The same run folder, claimed again under its lock, and its checkpoint restored.
    assert re.search(r'\[worker0\] worker0 \(chief\): resuming \S+ from \S+model\.ckpt-\d+',
                     proc.stdout), proc.stdout[-3000:]
    assert 'in use by another' not in proc.stdout


@pytest.mark.slow
def test_killed_ps_restarts_every_task_from_the_checkpoint(tmp_path, mnist_10k_dir,
                                                           undisturbed):
    run_name = 'lost-ps-' + uuid.uuid4().hex[:8]
    ckpt = tmp_path / 'ckpt' / run_name
    killed = []

    def kill_ps_after_a_checkpoint():  # Mid-run: once a checkpoint of step 120 or later.
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            saved = [int(m.group(1)) for m in map(
                re.compile(r'model\.ckpt-(\d+)\.index$').match,
                os.listdir(ckpt) if ckpt.is_dir() else []) if m]
            if saved and max(saved) >= 120:
                for pid in _processes(run_name):
                    with open(f'/proc/{pid}/cmdline') as f:
                        if '\0--job-name\0ps\0' in f.read():
                            os.kill(pid, signal.SIGKILL)
                            killed.append(pid)
                            return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_ps_after_a_checkpoint, daemon=True)
    killer.start()
    proc = _run(_command(tmp_path, mnist_10k_dir, run_name))
    killer.join()
    assert killed
    _check_recovered(proc, tmp_path, run_name, undisturbed, 'ps0',
                     ['ps0', 'worker0', 'worker1'])
    assert re.search(r'\[worker0\] worker0 \(chief\): resuming', proc.stdout)


@pytest.mark.slow
@pytest.mark.parametrize('log_level', [None, '0', '3'])
def test_a_task_that_keeps_dying_stops_after_max_restarts(tmp_path, log_level):
    data_dir = write_idx_folder(tmp_path / 'data', synthetic_dataset(400, 50))
    run_name = 'dying-' + uuid.uuid4().hex[:8]
    env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
    if log_level is not None:
        env['TF_CPP_MIN_LOG_LEVEL'] = log_level
    env[KILL_HOOK] = 'worker1@3@every'
    proc = subprocess.run(_command(tmp_path, data_dir, run_name, limit=400, epochs=3,
                                   local_flags=['--max-restarts', '2']),
                          capture_output=True, text=True, timeout=400, env=env)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    assert len(lines) == 3, proc.stderr  # Two restarts, then the error.
    assert [line.split(' (')[0] for line in lines[:2]] == [
        'cluster-local: restart 1/2 of worker1', 'cluster-local: restart 2/2 of worker1']
    assert lines[2] == ('graph-models cluster-local: error: worker1 failed after 2 restart(s) '
                        '(--max-restarts 2); last error: killed by SIGKILL; stopped the whole '
                        'cluster')
    events = _events(tmp_path, run_name)
    assert [(e['task'], e['restart'], e['cause']) for e in events] == [
        ('worker1', 1, 'killed by SIGKILL'), ('worker1', 2, 'killed by SIGKILL')]
    assert _no_process_left(run_name)
