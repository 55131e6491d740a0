"""Several training steps per Session.run: the same updates, exact cadences and step counts."""

import json
import os

import numpy as np
import pytest

from graph_models.system.cpu import cpu_info, read_cpuinfo
from graph_models.nets.precision import onednn_enabled
from tensorboard.backend.event_processing import event_accumulator

from conftest import synthetic_dataset
from graph_models._tf import tf
from graph_models.errors import ConfigError
from graph_models.training.loop import TrainingLoop
from graph_models.nets.factory import ModelConfig
from graph_models.quantize import QuantizationConfig
from graph_models.training.run_config import RunConfig, read_run_config, write_run_config
from graph_models.training.train import train_and_eval


class _Session:
    run_steps = object()  # Only its presence matters to the chunking.


def test_chunks_stop_before_every_cadence_step():
    loop = TrainingLoop(_Session(), batch_size=10, summary_every_steps=50,
                        histogram_every_steps=None, save_every_steps=30, steps_per_run=16)
    assert loop._chunk(1, 100, last_step=100) == 16
    assert loop._chunk(17, 100, last_step=100) == 13  # 30 saves: it runs singly.
    assert loop._chunk(30, 100, last_step=100) == 1
    assert loop._chunk(31, 100, last_step=100) == 16
    assert loop._chunk(47, 100, last_step=100) == 3  # 50 writes the scalars.
    assert loop._chunk(91, 100, last_step=100) == 9  # The epoch's last step writes histograms.
    assert loop._chunk(95, 3, last_step=None) == 3  # A short last chunk.


def test_run_config_field_and_refusals(tmp_path):
    assert RunConfig().steps_per_run == 1
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match='steps per run'):
            RunConfig(steps_per_run=bad)
    with pytest.raises(ConfigError, match='does not apply to a quantized run') as e:
        RunConfig(steps_per_run=4, quantization=QuantizationConfig())
    assert e.value.for_cli().startswith('--steps-per-run 4 does not apply with --quantize')
    write_run_config(str(tmp_path), RunConfig(steps_per_run=16))
    data = json.loads((tmp_path / 'run_config.json').read_text())
    assert data['steps_per_run'] == 16
    del data['steps_per_run']  # Written before the field existed.
    (tmp_path / 'run_config.json').write_text(json.dumps(data))
    assert read_run_config(str(tmp_path)).steps_per_run == 1


def _scalar_steps(folder):
    accumulator = event_accumulator.EventAccumulator(
        str(folder), size_guidance={event_accumulator.SCALARS: 0,
                                    event_accumulator.HISTOGRAMS: 0})
    accumulator.Reload()
    return ([e.step for e in accumulator.Scalars('loss')],
            [e.step for e in accumulator.Histograms('activations/logits')])


@pytest.mark.slow
@pytest.mark.parametrize('model', [ModelConfig('mlp_small'), ModelConfig('cnn', batch_norm=True)])
def test_k_steps_per_run_make_the_same_updates_at_the_same_cadence(tmp_path, model):
    data = synthetic_dataset(430, 100)  # 9 steps of 50 per epoch, the last one of 30.
    runs = {}
    for k in (1, 4, 16):
        run = RunConfig(model=model, dataset=data.name, epochs=2, batch_size=50,
                        steps_per_run=k)
        result = train_and_eval(run, data, run_name=f'k{k}', log_dir=str(tmp_path / 'logs'),
                                checkpoint_dir=str(tmp_path / 'ckpt'), progress=False,
                                log=lambda line: None, summary_every_steps=4,
                                save_every_steps=5, histogram_every_steps=7,
                                keep_checkpoints=10)
        runs[k] = result
        assert result.global_step == 18
        reader = tf.train.load_checkpoint(result.checkpoint_path)
        assert reader.get_tensor('global_step') == 18
        assert sorted(n for n in os.listdir(result.checkpoint_dir) if n.endswith('.index')) == \
            [f'model.ckpt-{s}.index' for s in (10, 15, 18, 5, 9)]
        scalars, histograms = _scalar_steps(tmp_path / 'logs' / f'k{k}' / 'train')
        assert scalars == [4, 8, 12, 16]
        assert histograms == [7, 9, 14, 18]  # Every 7 and each epoch's last step.
        assert read_run_config(result.checkpoint_dir).steps_per_run == k
    one = tf.train.load_checkpoint(runs[1].checkpoint_path)
    for k in (4, 16):
        assert [h.train_loss for h in runs[k].history] == \
            pytest.approx([h.train_loss for h in runs[1].history], rel=1e-5)
        assert [h.test_loss for h in runs[k].history] == \
            pytest.approx([h.test_loss for h in runs[1].history], rel=1e-5)
        reader = tf.train.load_checkpoint(runs[k].checkpoint_path)
        for name in one.get_variable_to_shape_map():
            np.testing.assert_allclose(reader.get_tensor(name), one.get_tensor(name),
                                       rtol=1e-5, atol=1e-6)


def test_cli_refuses_steps_per_run_with_quantize_in_one_line(capsys, tiny_data_dir, tmp_path):
    from graph_models import cli
    assert cli.main(['train', '--quantize', '--steps-per-run', '4', '--data-dir',
                     tiny_data_dir, '--checkpoint-dir', str(tmp_path / 'c'),
                     '--log-dir', str(tmp_path / 'l')]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        'graph-models train: error: --steps-per-run 4 does not apply with --quantize; '
        'leave it out']
    assert not (tmp_path / 'c').exists()


@pytest.mark.slow
@pytest.mark.skipif(not (cpu_info(read_cpuinfo() or '')['bf16'] and onednn_enabled()),
                    reason='mixed_bfloat16 needs avx512_bf16/amx_bf16 and oneDNN on')
def test_cli_records_steps_per_run_and_precision(tmp_path, tiny_data_dir, capsys):
    from graph_models import cli
    from graph_models.system.cpu import cpu_info, read_cpuinfo
    precision = 'mixed_bfloat16' if cpu_info(read_cpuinfo() or '')['bf16'] else 'float32'
    assert cli.main(['train', '--model', 'mlp_small', '--epochs', '1', '--steps-per-run', '4',
                     '--precision', precision, '--data-dir', tiny_data_dir, '--no-progress',
                     '--checkpoint-dir', str(tmp_path / 'c'),
                     '--log-dir', str(tmp_path / 'l')]) == 0
    assert 'test accuracy' in capsys.readouterr().out
    run = read_run_config(str(tmp_path / 'c' / 'mlp_small-mnist'))
    assert (run.steps_per_run, run.precision) == (4, precision)
