"""The one training loop (issue 15): single-process and cluster training share `TrainingLoop`,
its NaN check and the run-folder policy; `RunConfig` names the run."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from graph_models.training import loop
from graph_models.training.distributed import ClusterConfig, local_cluster, train_worker
from graph_models.errors import ConfigError, TrainingError
from graph_models.nets.factory import ModelConfig
from graph_models.quantize import QuantizationConfig
from graph_models.training.run_config import RunConfig
from graph_models.training.train import train_and_eval

from conftest import synthetic_dataset

TESTS = os.path.dirname(os.path.abspath(__file__))


def test_run_config_names_the_run():
    assert RunConfig().run_name() == 'mlp-mnist'
    assert RunConfig(model=ModelConfig('cnn'), dataset='fashion_mnist').run_name() == \
        'cnn-fashion_mnist'
    assert RunConfig(quantization=QuantizationConfig()).run_name() == 'mlp-mnist-qat'
    assert RunConfig().run_name('mine') == 'mine'  # A given name wins.
    assert RunConfig().run_name('') == ''  # And an empty one is refused, not replaced.


def _spy_sessions(monkeypatch):
    """Records the session class of every `TrainingLoop.run_epoch` call."""
    seen = []
    run_epoch = loop.TrainingLoop.run_epoch

    def spy(self, *args, **kwargs):
        # The cluster's session kind (a subclass adds only a test hook).
        seen.append('MonitoredSession' if isinstance(self.session, loop.MonitoredSession)
                    else type(self.session).__name__)
        return run_epoch(self, *args, **kwargs)

    monkeypatch.setattr(loop.TrainingLoop, 'run_epoch', spy)
    return seen


def test_single_process_trains_in_the_loop_under_the_default_run_name(tmp_path,
                                                                      monkeypatch):
    seen = _spy_sessions(monkeypatch)
    run = RunConfig(model=ModelConfig('mlp_small'), epochs=2, batch_size=50)
    result = train_and_eval(run, synthetic_dataset(), log_dir=str(tmp_path / 'logs'),
                            checkpoint_dir=str(tmp_path / 'ckpt'), progress=False,
                            log=lambda line: None)
    assert seen == ['LocalSession', 'LocalSession']  # One call per epoch.
    assert result.run_name == 'mlp_small-mnist'
    assert os.path.isfile(tmp_path / 'ckpt' / 'mlp_small-mnist' / 'run_config.json')
    assert result.global_step == 16  # 2 epochs of 400 examples / 50.


def test_single_process_nan_names_the_step(tmp_path):
    run = RunConfig(model=ModelConfig('mlp_small'), epochs=1, batch_size=50,
                    learning_rate=1e30)  # Blows the weights up within two steps.
    with pytest.raises(TrainingError, match=r'^loss became (nan|inf) at step \d+; the last '
                                            r'good checkpoint is .*; lower the learning rate '
                                            r'and resume or start again$'):
        train_and_eval(run, synthetic_dataset(), run_name='nan', log_dir=str(tmp_path / 'l'),
                       checkpoint_dir=str(tmp_path / 'c'), progress=False,
                       log=lambda line: None)


def test_loop_cadence_and_nan_check_on_a_scripted_session():
    """The loop alone: which fetch list each step gets, saves, and the NaN error."""

    class Scripted:
        stoppable = False
        saves_checkpoints = True
        restart_hint = 'start again'

        def __init__(self, losses):
            self.losses = list(losses)
            self.kinds, self.saved, self.summaries = [], [], []
            self.step_fns = {kind: self._fn(kind) for kind in loop.STEP_KINDS}

        def _fn(self, kind):
            def step():
                self.kinds.append(kind)
                return [None, self.losses.pop(0), 0.5] + ['summary'] * sum(kind)
            return step

        def should_stop(self):
            return False

        def step_name(self, step):
            return f'step {step}'

        def latest_checkpoint(self):
            return ''

        def save(self, step):
            self.saved.append(step)
            return f'ckpt-{step}'

        def write_summary(self, summary, step):
            self.summaries.append(step)

    session = Scripted([1.0] * 6)
    training = loop.TrainingLoop(session, batch_size=10, summary_every_steps=2,
                                 histogram_every_steps=5, save_every_steps=3)
    stats = training.run_epoch(55, began=0.0, last_step=6)
    assert session.kinds == [(False, False), (True, False), (False, False), (True, False),
                             (False, True), (True, True)]
    assert session.saved == [3, 6, 6]  # Every 3 steps, and at the epoch's end.
    assert session.summaries == [2, 4, 5, 6, 6]
    assert (stats.examples, stats.loss_sum, training.step) == (55, 55.0, 6)
    assert training.checkpoint_path == 'ckpt-6'

    session = Scripted([1.0, 1.0, float('nan')])
    training = loop.TrainingLoop(session, batch_size=10, save_every_steps=2, name='worker3')
    with pytest.raises(TrainingError, match=r'^worker3: loss became nan at step 3; the last '
                                            r'good checkpoint is ckpt-2; lower the learning '
                                            r'rate and start again$'):
        training.run_epoch(100, began=0.0)
    assert training.step == 2  # The bad step is not counted.


def test_epoch_pipeline_yields_the_batches_of_iterate_batches():
    """The in-graph pipeline's batches are exactly `data.iterate_batches`' (short last batch
    included), from the epoch's start and from a resumed step; a fed Input still wins."""
    import numpy as np
    from graph_models import data as data_lib
    from graph_models._tf import tf, v1
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (23, 2, 2), dtype=np.uint8)  # As a Dataset stores them.
    labels = rng.integers(0, 10, 23)
    graph = tf.Graph()
    with graph.as_default():
        pipeline = loop.EpochPipeline((4,), 5)
        batch = pipeline.next_batch()
        fed = v1.placeholder_with_default(batch[0], [None, 4], name='Input')
    with v1.Session(graph=graph) as session:
        pipeline.load(session, images, labels)
        for epoch, start_step in ((0, 0), (1, 0), (1, 2)):
            order = data_lib.epoch_order(23, 7, epoch)[start_step * 5:]
            pipeline.start(session, order)
            expected = list(data_lib.iterate_batches(images, labels, 5, seed=7, epoch=epoch,
                                                     start_step=start_step))
            assert len(expected) == 5 - start_step
            for want_x, want_y in expected:
                got_x, got_y = session.run(batch)
                np.testing.assert_array_equal(got_x, data_lib.to_float(want_x, (4,)))
                np.testing.assert_array_equal(got_y, want_y)
            # Past the end: empty batches, never rows of another epoch.
            assert session.run(batch)[0].shape == (0, 4)
        pipeline.start(session, data_lib.epoch_order(23, 7, 0))
        pixels = data_lib.to_float(images[:2], (4,))
        np.testing.assert_array_equal(session.run(fed, {fed: pixels}), pixels)
        with pytest.raises(ConfigError, match='the training images must be uint8 \\(0-255\\) as '
                                              'graph_models.data.Dataset stores them'):
            pipeline.load(session, images.astype(np.float32), labels)


def test_cluster_pipeline_stays_on_its_worker():
    """Under replica_device_setter the shard's variables would land on a ps task, shared by
    every worker; the pipeline pins itself to the worker while the model's go to the ps."""
    from graph_models.nets import graphs
    from graph_models._tf import v1
    spec = v1.train.ClusterSpec({'ps': ['127.0.0.1:1'], 'worker': ['127.0.0.1:2', '127.0.0.1:3']})
    device = v1.train.replica_device_setter(cluster=spec, worker_device='/job:worker/task:1')
    graph, _ = graphs.build_training_graph(
        ModelConfig('mlp_small'), learning_rate=1e-3, seed=0, device=device,
        input_pipeline=lambda: loop.EpochPipeline((784,), 10,
                                                  device='/job:worker/task:1').next_batch())
    devices = {op.name: op.device for op in graph.get_operations()}
    for name in ('train_images', 'train_labels', 'epoch_order_indices', 'epoch_position',
                 'epoch_batch/AssignAddVariableOp', 'Input', 'Labels'):
        assert devices[name] == '/job:worker/task:1', name
    assert devices['mlp_small/fc1/weights'] == devices['global_step'] == '/job:ps/task:0'
    with graph.as_default():  # Nothing initializes or checks them but EpochPipeline.load.
        names = {v.op.name for v in v1.global_variables() + v1.local_variables()}
    assert not {'train_images', 'train_labels'} & names


def _chief(tmp_path):
    """A chief worker's config on free ports where nothing listens (no server is reached)."""
    return ClusterConfig(local_cluster(workers=1, ps=1), 'worker', 0)


def test_training_arguments_are_checked_before_any_folder(tmp_path):
    """A zero cadence and float images (they would be scaled by 1/255 twice) are refused
    before anything is created."""
    import dataclasses
    import numpy as np
    run = RunConfig(model=ModelConfig('mlp_small'), epochs=1, batch_size=50)
    data = synthetic_dataset()
    folders = dict(log_dir=str(tmp_path / 'logs'), checkpoint_dir=str(tmp_path / 'ckpt'),
                   progress=False, log=lambda line: None)
    with pytest.raises(ConfigError, match='pictures every epochs must be positive, got 0'):
        train_and_eval(run, data, pictures_every_epochs=0, **folders)
    for field, split in (('train_images', 'training'), ('test_images', 'test')):
        floats = dataclasses.replace(data, **{field: getattr(data, field) / np.float32(255)})
        with pytest.raises(ConfigError, match=f'the {split} images must be uint8 \\(0-255\\) '
                                              'as graph_models.data.Dataset stores them, '
                                              'got float32'):
            train_and_eval(run, floats, **folders)
    assert not os.path.exists(tmp_path / 'logs') and not os.path.exists(tmp_path / 'ckpt')


def test_cluster_chief_uses_the_run_folder_policy(tmp_path):
    run = RunConfig(model=ModelConfig('mlp_small'), epochs=1, batch_size=50)
    data = synthetic_dataset()
    folders = dict(log_dir=str(tmp_path / 'logs'), checkpoint_dir=str(tmp_path / 'ckpt'))
    train_and_eval(run, data, progress=False, log=lambda line: None, **folders)
    # An existing run: refused before any server starts (no overwrite, no resume).
    with pytest.raises(ConfigError, match='already holds a checkpoint; resume=True continues '
                                          'it, overwrite=True starts again') as e:
        train_worker(run, data, _chief(tmp_path), log=lambda line: None, **folders)
    assert '--overwrite' in e.value.cli_message
    assert len(os.listdir(tmp_path / 'ckpt' / 'mlp_small-mnist')) > 3  # Untouched.
    # --overwrite goes through empty_run_for_overwrite: a folder that is not a run is refused.
    foreign = tmp_path / 'ckpt' / 'notes'
    foreign.mkdir()
    (foreign / 'thesis.txt').write_text('mine')
    with pytest.raises(ConfigError, match='--overwrite refuses to empty'):
        train_worker(run, data, _chief(tmp_path), run_name='notes', overwrite=True,
                     log=lambda line: None, **folders)
    assert os.listdir(foreign) == ['thesis.txt']
    # The arguments are checked as in train_and_eval.
    with pytest.raises(ConfigError, match='summary every steps must be positive, got 0'):
        train_worker(run, data, _chief(tmp_path), summary_every_steps=0,
                     log=lambda line: None, **folders)
    with pytest.raises(ConfigError, match="the data is 'fashion_mnist' but the run config"):
        train_worker(run, synthetic_dataset(name='fashion_mnist'), _chief(tmp_path),
                     log=lambda line: None, **folders)
    # The run name is checked on every worker.
    other = ClusterConfig(local_cluster(workers=2, ps=1), 'worker', 1)
    for bad in ('../x', ''):
        with pytest.raises(ConfigError, match='--run-name must be one plain folder name'):
            train_worker(run, data, other, run_name=bad, log=lambda line: None, **folders)


CLUSTER_SCRIPT = textwrap.dedent('''
    import json, os, sys, threading
    sys.path.insert(0, {tests!r})
    from conftest import synthetic_dataset
    from graph_models.training import distributed
    from graph_models.training import loop
    from graph_models.errors import TrainingError
    from graph_models.nets.factory import ModelConfig
    from graph_models.training.run_config import RunConfig

    seen = []
    run_epoch = loop.TrainingLoop.run_epoch
    def spy(self, *args, **kwargs):
        # The cluster's session kind (a subclass adds only a test hook).
        seen.append('MonitoredSession' if isinstance(self.session, loop.MonitoredSession)
                    else type(self.session).__name__)
        return run_epoch(self, *args, **kwargs)
    loop.TrainingLoop.run_epoch = spy

    spec = distributed.local_cluster(workers=1, ps=1)
    ps = distributed.ClusterConfig(spec, 'ps', 0)
    threading.Thread(target=distributed.run_parameter_server, args=(ps,),
                     kwargs={{'log': lambda line: None}}, daemon=True).start()
    run = RunConfig(model=ModelConfig('mlp_small'), epochs=2, batch_size=50,
                    learning_rate={lr})
    out = {{}}
    try:
        result = distributed.train_worker(
            run, synthetic_dataset(), distributed.ClusterConfig(spec, 'worker', 0),
            checkpoint_dir={ckpt!r}, log_dir={logs!r}, overwrite={overwrite},
            log=lambda line: None)
        out.update(local_steps=result.local_steps, global_step=result.global_step)
    except TrainingError as e:
        out['error'], out['cli'] = str(e), e.for_cli()
    out['sessions'] = seen
    print('RESULT ' + json.dumps(out), flush=True)
    os._exit(0)  # The in-process gRPC servers would block interpreter shutdown.
''')


def _cluster_in_process(tmp_path, lr=1e-3, overwrite=False):
    """Trains a 1-ps, 1-worker cluster (both in one process); returns its result dict."""
    script = CLUSTER_SCRIPT.format(tests=TESTS, lr=lr, ckpt=str(tmp_path / 'ckpt'),
                                   logs=str(tmp_path / 'logs'), overwrite=overwrite)
    proc = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          timeout=240)
    lines = [line for line in proc.stdout.splitlines() if line.startswith('RESULT ')]
    assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-3000:]
    return json.loads(lines[0][len('RESULT '):])


@pytest.mark.slow
def test_cluster_worker_trains_in_the_same_loop_and_overwrites(tmp_path):
    first = _cluster_in_process(tmp_path)
    assert first['sessions'] == ['MonitoredSession', 'MonitoredSession']
    assert first == dict(first, local_steps=16, global_step=16)  # 2 epochs of 8 steps.
    again = _cluster_in_process(tmp_path, overwrite=True)  # --overwrite of a cluster run.
    assert again['global_step'] == 16
    run_dir = tmp_path / 'ckpt' / 'mlp_small-mnist'
    assert sorted(os.listdir(run_dir))[:1] == ['.lock']
    assert 'run_config.json' in os.listdir(run_dir)


@pytest.mark.slow
def test_cluster_nan_names_the_task_and_the_global_step(tmp_path):
    result = _cluster_in_process(tmp_path, lr=1e30)
    assert result['sessions'] == ['MonitoredSession']
    assert result['error'].startswith('worker0: loss became ')
    assert ' at global step ' in result['error'] and '(local step ' in result['error']
    assert result['error'].endswith('lower the learning rate and start again (overwrite=True)')
    assert result['cli'].endswith('lower the learning rate and start again (--overwrite)')


@pytest.mark.slow
def test_cluster_local_overwrite_goes_through_the_run_folder_policy(tmp_path):
    """``train --overwrite`` on a cluster: refused without it, the run's folders emptied with."""
    from conftest import write_idx_folder
    data_dir = write_idx_folder(tmp_path / 'data', synthetic_dataset(200, 50))
    binary = os.path.join(os.path.dirname(sys.executable), 'graph-models')

    def cluster(*extra):
        return subprocess.run(
            [binary, 'cluster-local', '--workers', '1', '--ps', '1', '--timeout', '200', '--',
             'train', '--model', 'mlp_small', '--data-dir', data_dir, '--epochs', '1',
             '--batch-size', '50', '--checkpoint-dir', str(tmp_path / 'ckpt'), '--log-dir',
             str(tmp_path / 'logs'), *extra], capture_output=True, text=True, timeout=240)

    first = cluster()
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    run_dir = tmp_path / 'ckpt' / 'mlp_small-mnist'  # RunConfig's default run name.
    (tmp_path / 'logs' / 'mlp_small-mnist' / 'train' / 'stale').write_text('old')
    again = cluster()
    assert again.returncode == 1
    assert (f'[worker0] graph-models train: error: {run_dir} already holds a checkpoint; pass '
            '--resume to continue it, --overwrite to start again, or a new --run-name'
            in again.stdout), again.stdout[-2000:]
    overwritten = cluster('--overwrite')
    assert overwritten.returncode == 0, overwritten.stdout[-2000:] + overwritten.stderr[-2000:]
    assert not (tmp_path / 'logs' / 'mlp_small-mnist' / 'train' / 'stale').exists()
    assert os.path.isfile(run_dir / 'model.ckpt-4.index')  # 200 / 50 steps, one worker.
