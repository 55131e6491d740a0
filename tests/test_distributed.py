"""TensorFlow's distributed runtime: cluster configs, a real 1 ps + 2 worker cluster on
loopback, and a worker killed mid-run."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import pytest

from graph_models.training.distributed import ClusterConfig, local_cluster
from graph_models.errors import ConfigError

from conftest import synthetic_dataset, write_idx_folder

BIN = os.path.join(os.path.dirname(sys.executable), 'graph-models')
CLUSTER = {'ps': ['127.0.0.1:2222'], 'worker': ['127.0.0.1:2223', '127.0.0.1:2224']}


def test_cluster_config_from_file_and_tf_config(tmp_path):
    path = tmp_path / 'cluster.json'
    path.write_text(json.dumps(CLUSTER))
    config = ClusterConfig.from_sources(str(path), 'worker', 1, {})
    assert (config.num_workers, config.num_ps, config.is_chief) == (2, 1, False)
    assert ClusterConfig.from_sources(str(path), 'worker', 0, {}).is_chief
    tf_config = json.dumps({'cluster': CLUSTER, 'task': {'type': 'ps', 'index': 0}})
    config = ClusterConfig.from_sources(None, None, None, {'TF_CONFIG': tf_config})
    assert config.job_name == 'ps' and config.name == 'ps0'
    assert ClusterConfig.from_sources(None, None, None, {}) is None


@pytest.mark.parametrize('cluster,job,index,message', [
    ({'worker': ['a:1']}, 'worker', 0, 'needs a non-empty "ps" list'),
    (CLUSTER, 'worker', 2, 'task index 2 is out of range'),
    (CLUSTER, 'chief', 0, 'job name must be ps or worker'),
    (dict(CLUSTER, evaluator=['a:3']), 'worker', 0, 'only ps and worker'),
])
def test_bad_cluster_configs(cluster, job, index, message):
    with pytest.raises(ConfigError, match=message):
        ClusterConfig(cluster, job, index)


def test_bad_cluster_sources(tmp_path):
    with pytest.raises(ConfigError, match='needs a job name'):
        ClusterConfig.from_sources(str(tmp_path / 'c.json'), None, None, {})
    with pytest.raises(ConfigError, match='cannot read cluster spec'):
        ClusterConfig.from_sources(str(tmp_path / 'c.json'), 'ps', 0, {})
    (tmp_path / 'bad.json').write_text('{nope')
    with pytest.raises(ConfigError, match='is not JSON'):
        ClusterConfig.from_sources(str(tmp_path / 'bad.json'), 'ps', 0, {})
    with pytest.raises(ConfigError, match='TF_CONFIG is not a valid'):
        ClusterConfig.from_sources(None, None, None, {'TF_CONFIG': '{"cluster": {}}'})
    with pytest.raises(ConfigError, match='need a cluster spec'):
        ClusterConfig.from_sources(None, 'worker', 0, {})


@pytest.mark.parametrize('flag', ['--histogram-every-steps', '--pictures-every-epochs'])
def test_single_process_summary_flags_are_refused_on_a_cluster(tmp_path, capsys, flag):
    """The chief's hooks write a cluster run's summaries: a cadence flag would be ignored."""
    from graph_models import cli
    path = tmp_path / 'cluster.json'
    path.write_text(json.dumps(CLUSTER))
    code = cli.main(['train', '--cluster-spec', str(path), '--job-name', 'worker',
                     '--task-index', '0', flag, '2', '--data-dir', str(tmp_path / 'none')])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1
    assert f'{flag} is for single-process training' in err and 'Traceback' not in err


def test_local_cluster_uses_distinct_loopback_ports():
    cluster = local_cluster(workers=2, ps=1)
    addresses = cluster['ps'] + cluster['worker']
    assert len(set(addresses)) == 3 and all(a.startswith('127.0.0.1:') for a in addresses)


def _cluster_command(tmp_path, data_dir, run_name, *, model, epochs, batch_size, extra=(),
                     local_flags=()):
    """``graph-models cluster-local`` with 2 workers and 1 ps training into ``tmp_path``."""
    return [BIN, 'cluster-local', '--workers', '2', '--ps', '1', '--timeout', '240',
            *local_flags, '--',
            'train', '--model', model, '--data-dir', data_dir, '--epochs', str(epochs),
            '--batch-size', str(batch_size), '--run-name', run_name, '--checkpoint-dir',
            str(tmp_path / 'ckpt'), '--log-dir', str(tmp_path / 'logs'), *extra]


def _processes(marker):
    out = subprocess.run(['pgrep', '-f', marker], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


@pytest.mark.slow
def test_one_ps_two_workers_on_loopback(tmp_path):
    data_dir = write_idx_folder(tmp_path / 'data', synthetic_dataset(800, 200))
    run_name = 'cluster-' + uuid.uuid4().hex[:8]
    proc = subprocess.run(_cluster_command(tmp_path, data_dir, run_name, model='mlp_small',
                                           epochs=3, batch_size=20),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    out = proc.stdout
    local = {int(m.group(1)): int(m.group(2)) for m in re.finditer(
        r'\[worker(\d)\] worker\d: (\d+) local steps', out)}
    assert local == {0: 60, 1: 60}  # 3 epochs of 400 examples / 20 per batch, each.
    chief_step = int(re.search(r'global step (\d+), test accuracy', out).group(1))
    assert chief_step == local[0] + local[1]  # The global step counts both workers' steps.
    assert '[ps0] ps0: all 2 worker(s) finished' in out
    assert not _processes(run_name)

    # The chief's checkpoint is an ordinary one: single-process evaluation and export.
    ckpt = tmp_path / 'ckpt' / run_name
    from graph_models import cli
    assert cli.main(['eval', str(ckpt), '--data-dir', data_dir]) == 0
    assert cli.main(['export', str(ckpt), '--quantize', 'float', '-o',
                     str(tmp_path / 'm.tflite')]) == 0
    distributed_accuracy = float(re.search(r'test accuracy ([\d.]+)', out).group(1))
    single = subprocess.run(
        [BIN, 'train', '--model', 'mlp_small', '--data-dir', data_dir, '--epochs', '3',
         '--batch-size', '20', '--run-name', 'single', '--checkpoint-dir',
         str(tmp_path / 'ckpt'), '--log-dir', str(tmp_path / 'logs'), '--no-progress'],
        capture_output=True, text=True, timeout=300)
    single_accuracy = float(re.search(r'test accuracy ([\d.]+) after', single.stdout).group(1))
    assert distributed_accuracy >= single_accuracy - 0.02
    assert distributed_accuracy >= 0.95  # Separable data: both learn it.


@pytest.mark.slow
def test_killed_worker_stops_the_cluster_and_leaves_no_process(tmp_path):
    """With --max-restarts 0 the first lost task stops the cluster (see
    test_cluster_recovery.py for restarts)."""
    data_dir = write_idx_folder(tmp_path / 'data', synthetic_dataset(4000, 100))
    run_name = 'killed-' + uuid.uuid4().hex[:8]
    proc = subprocess.Popen(_cluster_command(tmp_path, data_dir, run_name, model='mlp',
                                             epochs=50, batch_size=10,
                                             local_flags=['--max-restarts', '0']),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stdout:  # Wait until worker 1 is training.
        lines.append(line)
        if line.startswith('[worker1] worker1: shard epoch 1 done'):
            break
    victims = [pid for pid in _processes(run_name)
               if '--task-index 1' in open(f'/proc/{pid}/cmdline').read().replace('\0', ' ')
               and 'worker' in open(f'/proc/{pid}/cmdline').read()]
    assert victims, ''.join(lines)
    os.kill(victims[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert err.splitlines() == [
        'graph-models cluster-local: error: worker1 failed after 0 restart(s) (--max-restarts '
        '0); last error: killed by SIGKILL; stopped the whole cluster'], err

    time.sleep(1)
    assert not _processes(run_name)


@pytest.mark.slow
def test_sync_replicas_cluster_ends_cleanly(tmp_path):
    data_dir = write_idx_folder(tmp_path / 'data', synthetic_dataset(800, 200))
    run_name = 'sync-' + uuid.uuid4().hex[:8]
    proc = subprocess.run(_cluster_command(tmp_path, data_dir, run_name, model='mlp_small',
                                           epochs=3, batch_size=20,
                                           extra=['--sync-replicas']),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    # Synchronous: the global step counts aggregated updates, 3 passes over a 400-example
    # shard in batches of 20.
    chief_step = int(re.search(r'global step (\d+), test accuracy', proc.stdout).group(1))
    assert chief_step == 60
    assert float(re.search(r'test accuracy ([\d.]+)', proc.stdout).group(1)) >= 0.9
    assert not _processes(run_name)


@pytest.mark.slow
@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_tasks_die_with_a_killed_cluster_local(tmp_path, signum):
    """Issue 12 item 11: SIGTERM/SIGKILL of cluster-local left ps0 running for good."""
    data_dir = write_idx_folder(tmp_path / 'data', synthetic_dataset(4000, 100))
    run_name = 'parent-' + uuid.uuid4().hex[:8]
    private_tmp = tmp_path / 'tmp'  # Other test runs may use the shared /tmp meanwhile.
    private_tmp.mkdir()
    proc = subprocess.Popen(_cluster_command(tmp_path, data_dir, run_name, model='mlp',
                                             epochs=50, batch_size=10),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, 'TMPDIR': str(private_tmp)})
    lines = []
    for line in proc.stdout:  # Wait until the workers train.
        lines.append(line)
        if line.startswith('[worker1] worker1: shard epoch 1 done'):
            break
    tasks = _processes(run_name)
    assert len(tasks) >= 3, ''.join(lines)  # ps0, worker0, worker1 (and cluster-local).
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    if signum == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == (130 if signum == signal.SIGINT else 143), err
        assert 'Traceback' not in err and err.count('\n') == 1, err
    deadline = time.monotonic() + 20
    while _processes(run_name) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _processes(run_name)
    # No graph-models-cluster-* folder is left behind (the spec travels through a pipe).
    assert not [f for f in os.listdir(private_tmp) if f.startswith('graph-models-cluster-')]
