"""Benchmark harness smoke test: every figure is produced and positive (no speed assertion)."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.__main__ import main  # noqa: E402


def test_bench_quick_writes_every_figure(tmp_path, capsys):
    assert main(['--quick', '--out', str(tmp_path)]) == 0
    (json_file,) = [f for f in os.listdir(tmp_path) if f.endswith('.json')]
    results = json.loads((tmp_path / json_file).read_text())
    assert results['machine']['cores'] > 0 and results['machine']['tensorflow']
    for section in ('throughput', 'qat_cost', 'latency'):
        for model in ('mlp', 'cnn'):
            figures = results[section][model]
            assert figures and all(value > 0 for value in figures.values()), (section, model)
    assert set(results['qat_cost']['mlp']) == {'float_step_s', 'qat_step_s', 'qat_over_float',
                                               'float_examples_per_s', 'qat_examples_per_s'}
    assert all(value > 0 for value in results['flops'].values())
    assert len(results['headline']) == 6 and all(v > 0 for v in results['headline'].values())
    markdown = (tmp_path / json_file.replace('.json', '.md')).read_text()
    assert '| mlp |' in markdown and 'quick mode' in markdown
