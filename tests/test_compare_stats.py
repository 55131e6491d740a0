"""The multi-seed statistics (known inputs) and the compare report's numbers."""

import json
import re

import pytest

from graph_models import cli
from graph_models.research import statistics

from conftest import synthetic_dataset, write_idx_folder


def test_mean_std_known_input():
    s = statistics.mean_std([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert s['mean'] == 5.0 and s['n'] == 8
    assert s['std'] == pytest.approx(2.138089935, abs=1e-9)  # sqrt(32 / 7)
    assert statistics.mean_std([0.5])['std'] == 0.0


def test_paired_interval_known_input():
    # Differences 1, 2, 3, 4, 5: mean 3, sd sqrt(2.5), t(0.975, 4) = 2.776.
    d = statistics.paired_difference([2, 4, 6, 8, 10], [1, 2, 3, 4, 5])
    half = 2.776445 * 2.5 ** 0.5 / 5 ** 0.5
    assert d['mean'] == 3.0
    assert d['ci95_low'] == pytest.approx(3 - half, abs=2e-3)
    assert d['ci95_high'] == pytest.approx(3 + half, abs=2e-3)
    single = statistics.paired_difference([0.9], [0.8])
    assert single['ci95_low'] is None and single['mean'] == pytest.approx(0.1)
    with pytest.raises(ValueError):
        statistics.paired_difference([1, 2], [1])


def test_t_table_matches_scipy_and_fallback(monkeypatch):
    assert statistics.t_critical_95(1) == pytest.approx(12.706, abs=1e-3)
    assert statistics.t_critical_95(4) == pytest.approx(2.776, abs=1e-3)
    import builtins
    real_import = builtins.__import__

    def no_scipy(name, *args, **kwargs):
        if name.startswith('scipy'):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', no_scipy)
    assert statistics.t_critical_95(4) == 2.776
    assert statistics.t_critical_95(60) == pytest.approx(2.000, abs=3e-3)
    with pytest.raises(ValueError):
        statistics.t_critical_95(0)


def test_compare_two_seeds_one_accuracy_everywhere(tmp_path, capsys):
    data = synthetic_dataset(600, 700)
    # Test images past the 500 that --quick scores carry wrong labels: an accuracy computed on
    # all 700 (what the training log printed before the fix) cannot match the report's.
    data.test_labels[500:] = (data.test_labels[500:] + 1) % 10
    data.source = write_idx_folder(tmp_path / 'data', data)
    out = tmp_path / 'cmp'
    assert cli.main(['compare', '--model', 'mlp_small', '--data-dir', data.source, '--quick',
                     '--seeds', '2', '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / 'report.json').read_text())
    assert report['seeds'] == [0, 1] and len(report['per_seed']) == 2
    # --quick scores 500 test images; the training log's per-epoch test accuracy must be on
    # those same images (before the fix it was on all 700 and differed from the report).
    assert report['test_examples'] == 500
    for run in report['per_seed']:
        seed, acc = run['seed'], run['graph']['test_accuracy']
        logged = re.findall(r'test loss \S+ acc (\d\.\d{4})', printed)
        assert f'{acc:.4f}' in logged, (seed, acc, logged)
        assert f"seed {seed}: graph test accuracy {acc:.4f}" in printed
        assert acc > 0.8  # Learned on the 500 correctly labelled test images.
        assert 0.0 <= run['agreement_top1'] <= 1.0
    accs = [r['graph']['test_accuracy'] for r in report['per_seed']]
    assert report['graph']['test_accuracy'] == pytest.approx(sum(accs) / 2)
    assert report['spread']['graph']['test_accuracy'] == pytest.approx(
        statistics.mean_std(accs)['std'])
    diff = report['difference']['test_accuracy']
    assert diff['ci95_low'] <= diff['mean'] <= diff['ci95_high']
    md = (out / 'report.md').read_text()
    mean, std = report['graph']['test_accuracy'], report['spread']['graph']['test_accuracy']
    assert f'{mean:.4f} ± {std:.4f}' in md and f'{mean:.4f} ± {std:.4f}' in printed
    assert '95% CI' in md and 'agreement' in md
    assert (out / 'seed-1' / 'graph_int8.tflite').exists()
    png = (out / 'report.png').read_bytes()
    assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 10_000


def test_compare_subclassed_keras_style(tmp_path):
    from graph_models.research import compare
    data = synthetic_dataset(600, 100)
    data.source = write_idx_folder(tmp_path / 'data', data)
    report = compare.compare('mlp_small', data, str(tmp_path / 'cmp'), quick=True,
                             keras_style='subclassed', log=lambda line: None)
    assert report['keras_style'] == 'subclassed'
    assert report['keras']['parameters'] == report['graph']['parameters'] == 101_770
    assert report['agreement_top1'] > 0.9
    assert 'Keras (subclassed)' in compare.markdown_table(report) or \
        '(subclassed)' in compare.markdown_table(report)
