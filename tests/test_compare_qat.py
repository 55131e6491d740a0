"""compare --quantize: our QAT rewrite vs Keras QAT (TFMOT), and the message when it is missing."""

import builtins
import json

import pytest

from graph_models import cli
from graph_models.research import keras_qat

from conftest import synthetic_dataset, write_idx_folder


def test_batch_schedule_is_the_graph_epoch_order():
    batches = keras_qat.batch_schedule(250, 100, seed=3, epochs=2)
    assert [len(b) for b in batches] == [100, 100, 50, 100, 100, 50]
    assert sorted(int(i) for b in batches[:3] for i in b) == list(range(250))


def test_missing_tfmot_is_one_line(tmp_path, monkeypatch, capsys):
    real_import = builtins.__import__

    def no_tfmot(name, *args, **kwargs):
        if name.startswith('tensorflow_model_optimization'):
            raise ImportError(f'No module named {name!r}')
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', no_tfmot)
    data = synthetic_dataset(200, 100)
    data.source = write_idx_folder(tmp_path / 'data', data)
    assert cli.main(['compare', '--quantize', '--model', 'mlp_small', '--data-dir', data.source,
                     '--quick', '--out', str(tmp_path / 'q')]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'pip install -e ".[keras-qat]"' in err
    assert not (tmp_path / 'q' / 'report.json').exists()


def test_compare_quantize_quick(tmp_path, capsys):
    pytest.importorskip('tensorflow_model_optimization')
    data = synthetic_dataset(600, 200)
    data.source = write_idx_folder(tmp_path / 'data', data)
    out = tmp_path / 'q'
    assert cli.main(['compare', '--quantize', '--model', 'mlp_small', '--data-dir', data.source,
                     '--quick', '--quant-delay', '2', '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / 'report.json').read_text())
    assert report['quant_delay'] == 2 and report['train_examples'] == 500
    for side in ('graph', 'keras'):
        r = report[side]
        # The synthetic bars are linearly separable: both sides learn them in one epoch.
        assert r['float_accuracy'] > 0.9 and r['int8_accuracy'] > 0.9, (side, r)
        assert 0.9 <= r['int8_agreement_with_float'] <= 1.0
        assert 50_000 < r['int8_bytes'] < 140_000  # ~102k int8 weights, not 400k float.
        keras_qat.check_integer_compute((out / f'{side}_qat_int8.tflite').read_bytes())
    assert '| int8 .tflite test accuracy |' in printed
    assert (out / 'report.md').read_text().startswith('## mlp_small on mnist: QAT')
