"""Benchmark harness: quick mode runs and writes apart, machine fields, FLOP counting.

No speed is asserted (figures come from ``python -m bench`` on a quiet machine).
"""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common, flops, profile  # noqa: E402
from bench.__main__ import TARGETS, main  # noqa: E402
from graph_models.system import cpu
from graph_models.nets import graphs
from graph_models.nets import precision  # noqa: E402
from graph_models.nets.factory import ModelConfig  # noqa: E402

HAS_BF16 = (cpu.cpu_info(cpu.read_cpuinfo() or '')['bf16']
            and precision.onednn_enabled())  # The rewrite is oneDNN's.


def test_bench_quick_writes_every_figure_apart_from_full_results(tmp_path):
    full = tmp_path / '2026-01-01T000000Z.json'
    full.write_text('{"quick": false}\n')
    # The mixed_bfloat16 run covers the float32 one (Keras float32 stays a side).
    precision = 'mixed_bfloat16' if HAS_BF16 else 'float32'
    assert main(['--quick', '--out', str(tmp_path), '--precision', precision]) == 0
    # A full run's results are untouched; the quick run went to the quick/ subfolder.
    assert sorted(os.listdir(tmp_path)) == ['2026-01-01T000000Z.json', 'quick']
    assert full.read_text() == '{"quick": false}\n'
    (json_file,) = [f for f in os.listdir(tmp_path / 'quick') if f.endswith('.json')]
    results = json.loads((tmp_path / 'quick' / json_file).read_text())
    assert results['quick'] is True and results['machine']['cores'] > 0
    for model in ('mlp', 'cnn'):
        real = results['real_path'][model]
        sides = ('graph', 'keras') + (('keras_mixed',) if HAS_BF16 else ())
        assert real['precision'] == precision
        for side in sides:
            assert real[side]['train_seconds'] > 0 and real[side]['eval_seconds'] > 0
            assert real[side]['wall_seconds'] > real[side]['train_seconds']
        assert real['graph']['checkpoint_seconds'] > 0
        assert results['qat_cost'][model]['qat_over_float']['median'] > 0
        latency = results['latency'][model]
        assert all(latency[k] > 0 for k in ('session_batch1_us', 'tflite_float_batch1_us',
                                             'tflite_int8_batch1_us',
                                             'keras_v2_tflite_int8_batch1_us'))
    assert results['xla']['mlp']['xla_over_default']['median'] > 0
    # Whole processes: graph-models train and the Keras script each ran once, to the end.
    for model in ('mlp', 'cnn'):
        whole = results['whole_process'][model]
        assert whole['precision'] == (precision if model == 'cnn' else 'float32')
        assert [len(whole['runs'][side]) for side in ('graph', 'keras')] == [1, 1]
        for side in ('graph', 'keras'):
            assert whole[side]['wall_seconds'] > 0 and 0 <= whole[side]['test_accuracy'] <= 1
        assert whole['keras_over_graph']['median'] == pytest.approx(
            whole['keras']['wall_seconds'] / whole['graph']['wall_seconds'])
    # The step profile traces the real training graph: its products are named ops of it.
    for model in ('mlp', 'cnn'):
        p = results['profile'][model]
        assert p['step_us'] > 0 and p['kinds_us']['products'] > 0
        assert p['kinds_us']['optimizer'] > 0
    top = {op: kind for op, kind, _ in results['profile']['mlp']['top']}
    assert 'gradients/mlp/fc1/MatMul_grad/MatMul_1' in top
    assert profile.op_kind(top['gradients/mlp/fc1/MatMul_grad/MatMul_1']) == 'products'
    for model in ('mlp', 'cnn'):
        ceiling = results['ceiling'][model]
        assert ceiling['graph_precision'] == precision
        assert (ceiling['products_only_bfloat16_step_ms'] is not None) == HAS_BF16
        assert all(v > 0 for k, v in ceiling.items() if k != 'graph_precision' and v is not None)
    mixed_target = 'cnn graph / Keras mixed_bfloat16 training throughput (real path)'
    assert set(results['headline']) == set(TARGETS) - (set() if HAS_BF16 else {mixed_target})
    assert all(v > 0 for v in results['headline'].values())
    markdown = (tmp_path / 'quick' / json_file.replace('.json', '.md')).read_text()
    assert 'QUICK MODE' in markdown and 'Machine: ' in markdown
    assert f'| mlp | graph ({precision}) |' in markdown
    assert f'| cnn | {precision} |' in markdown and '| mlp | float32 |' in markdown
    # Another result written in the same second gets its own name; nothing is replaced.
    first = (tmp_path / 'quick' / json_file).read_text()
    again = common.write_results({'n': 2}, 'two\n', str(tmp_path / 'quick'))
    again_too = common.write_results({'n': 3}, 'three\n', str(tmp_path / 'quick'))
    assert len({again, again_too, str(tmp_path / 'quick' / json_file)}) == 3
    assert (tmp_path / 'quick' / json_file).read_text() == first
    assert json.loads(open(again_too).read()) == {'n': 3}


def test_a_whole_process_that_does_not_do_the_work_gives_no_figure(tmp_path):
    """A side that fails, or ends without a test accuracy, is an error, not a fast time."""
    import sys
    from bench import process
    with pytest.raises(RuntimeError, match='exited 3'):
        process._timed([sys.executable, '-c', 'import sys; print("test accuracy 0.9"); '
                        'sys.exit(3)'], process._KERAS_ACCURACY, str(tmp_path))
    with pytest.raises(RuntimeError, match='without a test accuracy'):
        process._timed([sys.executable, '-c', 'print("done")'], process._KERAS_ACCURACY,
                       str(tmp_path))
    done = process._timed([sys.executable, '-c', 'print("test accuracy 0.9125")'],
                          process._KERAS_ACCURACY, str(tmp_path))
    assert done['test_accuracy'] == 0.9125 and done['wall_seconds'] > 0


def test_op_kinds():
    for kind in ('MatMul', '_MklMatMul', '_MklNativeFusedMatMul', 'Conv2DBackpropFilter',
                 '_FusedConv2D'):
        assert profile.op_kind(kind) == 'products', kind
    assert profile.op_kind('ResourceApplyAdam') == 'optimizer'
    assert profile.op_kind('ResourceGather') == profile.op_kind('MaxPoolGrad') == 'other'


def test_cpu_info_reads_model_and_isa_features():
    text = ('processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n'
            'flags\t\t: fpu sse2 avx2 fma avx512f avx512bw avx512_vnni amx_tile amx_int8\n'
            'processor\t: 1\nmodel name\t: other\nflags\t\t: fpu\n')
    info = cpu.cpu_info(text)
    assert info['cpu'] == 'Intel(R) Xeon(R) Platinum 8480+'
    assert info['isa']['avx2'] and info['isa']['avx512_vnni'] and info['isa']['amx_int8']
    assert not info['isa']['avx_vnni'] and not info['isa']['amx_bf16']
    assert info['vnni'] and info['amx']
    plain = cpu.cpu_info('model name\t: Old\nflags\t\t: fpu sse2 avx2\n')
    assert plain['isa']['avx2'] and not plain['vnni'] and not plain['amx']


def test_machine_info_fields():
    m = common.machine_info()
    assert m['cpu'] and m['cores'] >= m['usable_cores'] >= 1
    assert set(m['isa']) == set(cpu.ISA_FLAGS)
    for key in ('tf_intra_op_threads', 'tf_inter_op_threads', 'litert_threads', 'tensorflow'):
        assert key in m
    assert m['cpu'] in common.machine_line(m)


def test_step_flops_of_a_small_mlp_count_what_the_graph_runs():
    batch, hidden = 4, 16
    graph, t = graphs.build_training_graph(ModelConfig('mlp', hidden_sizes=(hidden,)),
                                           learning_rate=1e-3, seed=0)
    counted = flops.step_flops(graph, t.train_op, batch)
    products = {name: mkn for name, kind, _, mkn in counted['products']}
    # Forward X W1, H W2; backward dW1 = X^T dH, dW2 = H^T dZ, dH = dZ W2^T; no dX of layer 1.
    assert products == {
        'mlp/fc1/MatMul': (batch, 784, hidden),
        'mlp/logits/MatMul': (batch, hidden, 10),
        'gradients/mlp/fc1/MatMul_grad/MatMul_1': (784, batch, hidden),
        'gradients/mlp/logits/MatMul_grad/MatMul_1': (hidden, batch, 10),
        'gradients/mlp/logits/MatMul_grad/MatMul': (batch, 10, hidden),
    }
    assert counted['matmul'] == 2 * batch * (784 * hidden * 2 + hidden * 10 * 3)
    parameters = 784 * hidden + hidden + hidden * 10 + 10
    assert counted['parameters'] == parameters
    assert counted['optimizer'] == 12 * parameters
    # Minor terms: bias adds, ReLU and its gradient, bias gradients, xent, ... (a few per unit).
    assert batch * (hidden + 10) < counted['minor'] < 20 * batch * (hidden + 10) + 10 * parameters
    assert counted['total'] == counted['matmul'] + counted['optimizer'] + counted['minor']


def test_first_layer_input_gradient_is_not_in_the_training_step():
    graph, t = graphs.build_training_graph(ModelConfig('cnn'), learning_rate=1e-3, seed=0)
    kinds = {op.name: op.type for op in flops.step_ops(t.train_op)}
    assert kinds['gradients/cnn/conv1/Conv2D_grad/Conv2DBackpropFilter'] == \
        'Conv2DBackpropFilter'
    assert 'gradients/cnn/conv1/Conv2D_grad/Conv2DBackpropInput' not in kinds
    assert kinds['gradients/cnn/conv2/Conv2D_grad/Conv2DBackpropInput'] == \
        'Conv2DBackpropInput'


@pytest.mark.parametrize('quick', [True, False])
def test_results_folder(tmp_path, quick):
    folder = common.results_folder(str(tmp_path), quick)
    assert folder == (os.path.join(str(tmp_path), 'quick') if quick else str(tmp_path))
    assert common.results_folder(None, False) == common.RESULTS_DIR


def test_products_only_copies_every_product_of_the_step_with_its_shapes():
    """The floor figure times the same products the step runs: every MatMul/Conv op of the
    CNN's step is copied with its type and output shape (batch filled in)."""
    import numpy as np
    from graph_models._tf import tf
    _, t = graphs.build_training_graph(ModelConfig('cnn'), learning_rate=1e-3, seed=0)
    products = [op for op in flops.step_ops(t.train_op) if op.type in flops.MATMUL_OPS]
    assert {op.type for op in products} == {'MatMul', 'Conv2D', 'Conv2DBackpropInput',
                                            'Conv2DBackpropFilter'}
    with tf.Graph().as_default():
        rng = np.random.default_rng(0)
        for op in products:
            copy = flops._product_op(op, 3, rng)
            assert copy.op.type == op.type
            assert copy.shape.as_list() == [3 if d is None else d
                                            for d in op.outputs[0].shape.as_list()], op.name
    assert flops.products_only_seconds(t.train_op, 2, repeats=2) > 0


def test_steps_per_run_sweep_reports_every_side(capsys):
    from bench import steps_per_run
    assert steps_per_run.main(['--quick', '--model', 'mlp']) == 0
    lines = capsys.readouterr().out.splitlines()
    precisions = ['float32'] + (['mixed_bfloat16'] if HAS_BF16 else [])
    sides = [f'{p} K={k}' for p in precisions for k in steps_per_run.STEPS] + ['keras float32']
    assert [line.split(':')[0] for line in lines[1:]] == [f'mlp {side}' for side in sides]
    assert lines[-1].endswith('/ Keras float32 1.00x (1.00-1.00)')
    assert all(' examples/s, step ' in line for line in lines[1:])


def test_process_section_alone_reports_both_processes(capsys):
    from bench import process
    assert process.main(['--quick', '--model', 'mlp']) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith('mlp (float32): graph-models train ') and ' Keras / graph ' in line
    assert '; rounds: graph ' in line and '; Keras ' in line


@pytest.mark.parametrize('module', ['bench', 'bench.profile', 'bench.steps_per_run',
                                    'bench.process'])
def test_bench_commands_report_a_missing_data_folder_in_one_line(tmp_path, module):
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    extra = {'bench': ['--out', str(tmp_path / 'out')], 'bench.profile': ['--steps', '1'],
             'bench.steps_per_run': ['--rounds', '1'], 'bench.process': ['--rounds', '1']}[module]
    done = subprocess.run([sys.executable, '-m', module, '--data-dir', str(tmp_path / 'none'),
                           *extra],
                          cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    lines = [l for l in done.stderr.splitlines()
             if l.startswith(f'python -m {module}') or 'Traceback' in l]
    assert lines == [f'python -m {module}: error: data folder {tmp_path / "none"} does not '
                     'exist; give the folder that holds train-images-idx3-ubyte.gz, '
                     'train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, '
                     't10k-labels-idx1-ubyte.gz'], done.stderr
