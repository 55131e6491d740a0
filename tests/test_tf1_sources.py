"""Models we did not build: a TF1 tutorial checkpoint (.meta), a SavedModel, a CNN .pb with
input ``x``, a QAT residual CNN in plain TF1 ops. Each goes to float and int8, eval and
predict; integer models are verified, and a float-computing "int8" model is never written."""

import json
import os

import numpy as np
import pytest

from freeze import export as freeze_export
from freeze import sources
from freeze.errors import FreezeError, UnsafeGraphError, VerificationError
from graph_models import cli
from graph_models._tf import tf
from graph_models.litert.model_file import edgetpu_blockers, read_model_info

from conftest import synthetic_dataset, write_idx_folder
import user_models


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp('tf1')
    data = synthetic_dataset(600, 200)
    data_dir = write_idx_folder(root / 'data', data)
    out = {'root': root, 'data': data, 'data_dir': data_dir}
    out['ckpt'] = user_models.tutorial_mlp(root / 'tutorial', data)
    out['partial'] = user_models.tutorial_mlp(root / 'partial', data, hypothesis_ranges=False)
    out['saved'] = user_models.saved_model_mlp(root / 'saved', data)
    out['cnn'], _ = user_models.cnn_pb(root / 'cnn.pb', data)
    out['qat'], _ = user_models.cnn_pb(root / 'qat.pb', data, qat=True)
    return out


def _pngs(folder, data, n=4):
    from PIL import Image
    folder.mkdir(exist_ok=True)
    for i in range(n):
        Image.fromarray(255 - data.test_images[i]).save(folder / f'd{i}.png')
    return [int(v) for v in data.test_labels[:n]]


def _predicted(out):
    return [int(line.split(': ')[1].split()[0]) for line in out.strip().splitlines()]


def _accuracy(out):
    return float(out.split('accuracy ')[1].split()[0])


def test_meta_checkpoint_becomes_an_inference_graph(models):
    frozen = sources.load_source(models['ckpt'])
    assert frozen.source_kind == 'checkpoint_meta'
    assert frozen.inputs == ['x'] and frozen.outputs == ['Probs']
    assert frozen.input_shapes == {'x': [1, 784]}
    ops = {n.op for n in frozen.graph_def.node}
    names = {n.name for n in frozen.graph_def.node}
    # keep_prob fed 1 and folded: no dropout randomness, no optimizer, saver or summary.
    assert 'keep_prob' not in names and not any(o.startswith('Random') for o in ops)
    assert not {o for o in ops if 'Variable' in o or 'Save' in o or 'Summary' in o
                or o.startswith('Apply')}
    assert {'MatMul', 'Softmax', 'Placeholder'} <= ops
    with pytest.raises(FreezeError, match="no op named 'Prbs'.*did you mean Probs"):
        sources.load_source(models['ckpt'], output_arrays=['Prbs'])


def test_tutorial_checkpoint_float_and_int8_cli(models, tmp_path, capsys):
    ckpt, data_dir = models['ckpt'], models['data_dir']
    labels = _pngs(tmp_path / 'digits', models['data'])
    # The TF graph itself: eval and predict straight from the checkpoint.
    assert cli.main(['eval', ckpt, '--data-dir', data_dir]) == 0
    graph_accuracy = _accuracy(capsys.readouterr().out)
    assert graph_accuracy > 0.9
    assert cli.main(['predict', str(tmp_path / 'digits'), '--model', ckpt]) == 0
    assert _predicted(capsys.readouterr().out) == labels
    # int8 without ranges or data: refused, nothing written, the layers named.
    target = tmp_path / 'int8.tflite'
    assert cli.main(['export', ckpt, '--quantize', 'int8', '-o', str(target)]) == 2
    err = capsys.readouterr().err
    assert 'h1 (MatMul), Hypothesis (MatMul) have no fake-quant ranges' in err
    assert err.count('\n') == 1 and not target.exists()
    for mode in ('float', 'int8'):
        model = tmp_path / f'{mode}.tflite'
        args = ['export', ckpt, '--quantize', mode, '-o', str(model)]
        assert cli.main(args + (['--data-dir', data_dir] if mode == 'int8' else [])) == 0
        record = json.loads((tmp_path / f'{mode}.tflite.json').read_text())
        assert record['source_kind'] == 'checkpoint_meta' and record['input_arrays'] == ['x']
        assert record['verified'] == (mode == 'int8') and record['input_range'] == [0.0, 1.0]
        capsys.readouterr()
        assert cli.main(['eval', str(model), '--data-dir', data_dir]) == 0
        out = capsys.readouterr().out
        assert 'agreement with the TF graph: 1.0000' in out or (
            mode == 'int8' and float(out.split('agreement with the TF graph: ')[1][:6]) >= 0.95)
        assert abs(_accuracy(out) - graph_accuracy) <= 0.03  # int8 rounding flips few.
        assert cli.main(['predict', str(tmp_path / 'digits'), '--model', str(model)]) == 0
        assert _predicted(capsys.readouterr().out) == labels
    assert edgetpu_blockers(read_model_info((tmp_path / 'int8.tflite').read_bytes())) == []


def test_partial_qat_graph_names_the_layer_and_calibrate_fixes_it(models, tmp_path, capsys):
    target = tmp_path / 'p.tflite'
    args = ['export', models['partial'], '--quantize', 'int8', '-o', str(target)]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert err.strip().endswith('Hypothesis (MatMul) has no fake-quant ranges: rewrite the '
                                'graph with create_training_graph before training, or pass '
                                '--calibrate --data-dir DIR for post-training quantization of '
                                'those layers')
    assert not target.exists() and os.listdir(tmp_path) == []
    assert cli.main(args + ['--calibrate', '--data-dir', models['data_dir']]) == 0
    record = json.loads((tmp_path / 'p.tflite.json').read_text())
    assert record['quantization'] == 'post_training' and record['verified']


def test_float_computing_int8_model_is_never_returned(models):
    """The MLIR converter keeps a layer without ranges in float: verification refuses it."""
    from freeze import tflite, verify
    frozen = sources.load_source(models['partial'])
    model = tflite.convert_graph_def(frozen.graph_def, frozen.inputs, frozen.outputs, 'int8',
                                     fake_quantized=True)
    problems = verify.structural_problems(model)
    assert any('DEQUANTIZE' in p or 'QUANTIZE' in p or 'float' in p for p in problems)
    with pytest.raises(VerificationError, match='Hypothesis'):
        freeze_export.export_graph(frozen, 'int8')


def test_saved_model_float_and_int8(models, tmp_path, capsys):
    saved, data_dir = models['saved'], models['data_dir']
    frozen = sources.load_source(saved)
    assert frozen.source_kind == 'saved_model' and frozen.inputs == ['image']
    assert frozen.outputs == ['probabilities'] and frozen.input_shapes == {'image': [1, 28, 28, 1]}
    assert not any(n.op in ('Switch', 'Merge', 'If') or n.op.startswith('Random')
                   for n in frozen.graph_def.node)
    with pytest.raises(FreezeError, match='--tag-set can be one of "serve"'):
        sources.load_source(saved, tag_set=('train',))
    with pytest.raises(FreezeError, match='--signature-def can be one of serving_default'):
        sources.load_source(saved, signature_def='predict')
    labels = _pngs(tmp_path / 'digits', models['data'])
    assert cli.main(['eval', saved, '--data-dir', data_dir, '--tag-set', 'serve',
                     '--signature-def', 'serving_default']) == 0
    graph_accuracy = _accuracy(capsys.readouterr().out)
    assert graph_accuracy > 0.9
    for mode in ('float', 'int8'):
        model = tmp_path / f'{mode}.tflite'
        assert cli.main(['export', saved, '--quantize', mode, '--data-dir', data_dir,
                         '-o', str(model)]) == 0
        capsys.readouterr()
        assert cli.main(['eval', str(model), '--data-dir', data_dir]) == 0
        out = capsys.readouterr().out
        assert 'agreement with the TF graph' in out
        assert abs(_accuracy(out) - graph_accuracy) <= 0.03
        assert cli.main(['predict', str(tmp_path / 'digits'), '--model', str(model)]) == 0
        assert _predicted(capsys.readouterr().out) == labels


def test_cnn_pb_with_input_x(models, tmp_path, capsys):
    pb, data_dir = models['cnn'], models['data_dir']
    # eval of a .pb whose input is not "Input": found, shape from the graph.
    assert cli.main(['eval', pb, '--data-dir', data_dir]) == 0
    graph_accuracy = _accuracy(capsys.readouterr().out)
    assert graph_accuracy > 0.9
    assert cli.main(['eval', pb, '--data-dir', data_dir, '--input-arrays', 'x',
                     '--output-arrays', 'probs']) == 0
    assert _accuracy(capsys.readouterr().out) == graph_accuracy
    assert cli.main(['eval', pb, '--input-arrays', 'Input']) == 1
    assert "no op named 'Input'" in capsys.readouterr().err
    assert cli.main(['eval', pb, '--latency', '--data-dir', data_dir]) == 2
    assert '--latency measures a .tflite model' in capsys.readouterr().err
    labels = _pngs(tmp_path / 'digits', models['data'])
    for mode in ('float', 'int8'):
        model = tmp_path / f'{mode}.tflite'
        assert cli.main(['export', pb, '--quantize', mode, '--data-dir', data_dir,
                         '-o', str(model)]) == 0
        info = read_model_info(model.read_bytes())
        assert info.inputs[0].shape == [1, 28, 28, 1]
        capsys.readouterr()
        assert cli.main(['eval', str(model), '--data-dir', data_dir, '--latency']) == 0
        out = capsys.readouterr().out
        assert 'agreement with the TF graph' in out and 'latency' in out
        assert abs(_accuracy(out) - graph_accuracy) <= 0.03
        assert cli.main(['predict', str(tmp_path / 'digits'), '--model', str(model)]) == 0
        assert _predicted(capsys.readouterr().out) == labels
    assert cli.main(['predict', str(tmp_path / 'digits'), '--model', pb]) == 0
    assert _predicted(capsys.readouterr().out) == labels


def test_qat_residual_cnn_pb_gets_symmetric_int8_weights(models, tmp_path, capsys):
    from ai_edge_litert.interpreter import Interpreter
    pb, data_dir = models['qat'], models['data_dir']
    frozen = sources.load_source(pb)
    assert frozen.fake_quantized
    graph_def, changed = freeze_export.symmetrize_weight_ranges(frozen.graph_def)
    assert changed == 3  # conv1, conv2, fc: asymmetric ranges widened.
    for mode in ('int8', 'uint8'):
        model = tmp_path / f'{mode}.tflite'
        assert cli.main(['export', pb, '--quantize', mode, '-o', str(model)]) == 0
        content = model.read_bytes()
        info = read_model_info(content)
        assert set(info.dtype_counts()) <= {'INT8', 'UINT8', 'INT32'}
        if mode == 'int8':
            assert edgetpu_blockers(info) == []
            interpreter = Interpreter(model_content=content)  # XNNPACK: zero points 0.
            interpreter.allocate_tensors()
            for t in interpreter.get_tensor_details():
                if t['dtype'] == np.int8 and 'weights' in t['name'].lower():
                    assert not np.any(t['quantization_parameters']['zero_points'])
        capsys.readouterr()
        assert cli.main(['eval', str(model), '--data-dir', data_dir]) == 0
        out = capsys.readouterr().out
        agreement = float(out.split('agreement with the TF graph: ')[1][:6])
        assert agreement >= 0.9


def test_input_range_is_recorded_and_used(models, tmp_path, capsys):
    model = tmp_path / 'r.tflite'
    assert cli.main(['export', models['cnn'], '--quantize', 'int8', '--input-range', '0,2',
                     '--data-dir', models['data_dir'], '-o', str(model)]) == 0
    record = json.loads((tmp_path / 'r.tflite.json').read_text())
    assert record['input_range'] == [0.0, 2.0]
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_content=model.read_bytes())
    scale, zero_point = interpreter.get_input_details()[0]['quantization']
    # Calibrated on pixels scaled to [0, 2] (the synthetic images reach 254 of 255).
    assert scale == pytest.approx(2.0 / 255, rel=0.02) and zero_point == -128
    capsys.readouterr()
    assert cli.main(['eval', str(model), '--data-dir', models['data_dir']]) == 0
    assert float(capsys.readouterr().out.split('agreement with the TF graph: ')[1][:6]) >= 0.95
    # The QAT graph quantizes its input x to [0, 1] itself: another range is refused.
    assert cli.main(['export', models['qat'], '--quantize', 'int8', '--input-range', '0,2',
                     '-o', str(tmp_path / 'q.tflite')]) == 2
    assert 'differs from the range [0, 1] the graph quantizes input x to' in \
        capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli.main(['export', models['qat'], '--input-range', '1,0'])
    assert e.value.code == 2 and 'MIN < MAX' in capsys.readouterr().err


def test_fill_bomb_is_refused_naming_the_op(tmp_path, capsys):
    """Issue 12 item 9: a tiny .pb declaring Fill of 2^20 x 2^20 was folded for 15 minutes."""
    from graph_models._tf import tf, v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [1, 4], name='x')
        big = tf.fill(tf.constant([1 << 20, 1 << 20]), 1.0, name='big')
        tf.add(x, tf.reduce_sum(big), name='y')
    pb = tmp_path / 'bomb.pb'
    pb.write_bytes(graph.as_graph_def().SerializeToString())
    assert cli.main(['export', str(pb), '--output-arrays', 'y']) == 1
    err = capsys.readouterr().err
    assert 'big (Fill) declares a tensor of shape [1048576, 1048576]' in err
    with pytest.raises(UnsafeGraphError):
        sources.load_source(str(pb), output_arrays=['y'])


def test_pbtxt_from_freeze_is_read_by_every_command(models, tmp_path, capsys):
    pb = tmp_path / 'tutorial.pb'
    assert cli.main(['freeze', models['ckpt'], '-o', str(pb), '--pbtxt']) == 0
    out = capsys.readouterr().out
    assert 'input x [1, 784], outputs Probs' in out
    text = str(tmp_path / 'tutorial.pbtxt')
    data_dir = models['data_dir']
    assert cli.main(['eval', text, '--data-dir', data_dir]) == 0
    from_text = _accuracy(capsys.readouterr().out)
    assert cli.main(['eval', str(pb), '--data-dir', data_dir]) == 0
    assert _accuracy(capsys.readouterr().out) == from_text
    assert cli.main(['inspect', text]) == 0
    assert 'inputs: x' in capsys.readouterr().out
    assert cli.main(['export', text, '-o', str(tmp_path / 't.tflite')]) == 0
    labels = _pngs(tmp_path / 'digits', models['data'])
    capsys.readouterr()
    assert cli.main(['predict', str(tmp_path / 'digits'), '--model', text]) == 0
    assert _predicted(capsys.readouterr().out) == labels


def test_unsafe_ops_are_refused_in_meta_and_saved_model_sources(tmp_path, capsys):
    from graph_models._tf import tf, v1
    target = tmp_path / 'written.txt'
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 784], name='x')
        w = v1.get_variable('w', [784, 10])
        write = tf.io.write_file(str(target), 'written by an untrusted graph')
        with tf.control_dependencies([write]):
            tf.nn.softmax(tf.matmul(x, w), name='probs')
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            prefix = v1.train.Saver().save(session, str(tmp_path / 'm' / 'model.ckpt'))
            builder = v1.saved_model.Builder(str(tmp_path / 'sm'))
            builder.add_meta_graph_and_variables(
                session, ['serve'], signature_def_map={
                    'serving_default': v1.saved_model.predict_signature_def(
                        {'x': x}, {'probs': graph.get_tensor_by_name('probs:0')})})
            builder.save()
    for source in (prefix, str(tmp_path / 'sm')):
        for command in (['export', source, '-o', str(tmp_path / 'x.tflite')],
                        ['eval', source], ['freeze', source, '-o', str(tmp_path / 'f.pb')]):
            assert cli.main(command) == 1
            err = capsys.readouterr().err
            assert 'WriteFile (WriteFile)' in err and '--allow-unsafe-ops' in err
    assert not target.exists() and not (tmp_path / 'x.tflite').exists()


@pytest.mark.parametrize('use_resource', [True, False])
def test_moving_average_range_updates_are_read_as_trained_values(tmp_path, use_resource):
    """contrib/quantize's training graph feeds fake-quant ops through AssignMovingAvg."""
    from graph_models._tf import tf, v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 784], name='x')
        low = v1.get_variable('act/min', initializer=0.0, trainable=False,
                              use_resource=use_resource)
        high = v1.get_variable('act/max', initializer=1.0, trainable=False,
                               use_resource=use_resource)
        new_low = v1.assign_sub(low, 0.1 * (low - tf.reduce_min(x)), name='AssignMovingAvg')
        new_high = v1.assign_sub(high, 0.1 * (high - tf.reduce_max(x)), name='AssignMovingAvg_1')
        q = tf.quantization.fake_quant_with_min_max_vars(x, new_low, new_high)
        w = v1.get_variable('w', [784, 10], use_resource=use_resource)
        wq = tf.quantization.fake_quant_with_min_max_vars(w, -1.0, 1.0)
        logits = tf.quantization.fake_quant_with_min_max_vars(tf.matmul(q, wq), -8.0, 8.0)
        tf.nn.softmax(logits, name='probs')
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            session.run(high.assign(0.75))
            prefix = v1.train.Saver().save(session, str(tmp_path / 'model.ckpt'))
    frozen = sources.load_source(prefix)
    ops = {n.op for n in frozen.graph_def.node}
    assert not {o for o in ops if o.startswith('Assign')} and frozen.fake_quantized
    fake_quant = [n for n in frozen.graph_def.node if n.op == 'FakeQuantWithMinMaxVars'
                  and n.input[0] == 'x'][0]
    nodes = {n.name: n for n in frozen.graph_def.node}
    max_node = nodes[fake_quant.input[2]]
    while max_node.op == 'Identity':
        max_node = nodes[max_node.input[0]]
    assert tf.make_ndarray(max_node.attr['value'].tensor) == pytest.approx(0.75)


@pytest.mark.parametrize('control_flow_v2', [False, True])
def test_is_training_cond_is_resolved_or_named(tmp_path, control_flow_v2):
    """A v1 cond on is_training (Switch/Merge) folds away; a v2 If is named, not kept."""
    from graph_models._tf import tf, v1
    if not control_flow_v2:
        v1.disable_control_flow_v2()
    try:
        graph = tf.Graph()
        with graph.as_default():
            x = v1.placeholder(tf.float32, [None, 784], name='x')
            is_training = v1.placeholder_with_default(True, [], name='is_training')
            w = v1.get_variable('w', [784, 10])
            h = tf.matmul(x, w)
            h = v1.cond(is_training, lambda: tf.nn.dropout(h, rate=0.5), lambda: h * 1.0)
            tf.nn.softmax(h, name='probs')
            with v1.Session() as session:
                session.run(v1.global_variables_initializer())
                expected_w = session.run(w)
                prefix = v1.train.Saver().save(session, str(tmp_path / 'model.ckpt'))
    finally:
        v1.enable_control_flow_v2()
    if control_flow_v2:
        with pytest.raises(FreezeError, match=r'^cond \((StatelessIf|If)\) is TF2 control flow'):
            sources.load_source(prefix)
        return
    frozen = sources.load_source(prefix)
    ops = {n.op for n in frozen.graph_def.node}
    assert not ops & {'Switch', 'Merge', 'RandomUniform'}
    image = np.random.default_rng(0).uniform(0, 1, (1, 784)).astype(np.float32)
    got = freeze_export.run_graph(frozen.graph_def, 'x', 'probs', image)
    logits = image @ expected_w
    want = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(got, want, atol=1e-5)  # float32 matmul of 784 terms.


def test_freeze_toolkit_stands_alone():
    """`grep -rn graph_models freeze/` prints nothing: the toolkit imports nothing of ours."""
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'freeze')
    for name in sorted(os.listdir(folder)):
        if name.endswith('.py'):
            with open(os.path.join(folder, name)) as f:
                assert 'graph_models' not in f.read(), name


def test_missing_ranges_of_a_qat_training_graph_point_at_the_eval_graph():
    """A QAT training graph with folded batch norm keeps the unfolded convolutions (they give
    the batch statistics); the message must send the user to the create_eval_graph graph."""
    from freeze import verify
    graph_def = tf.compat.v1.GraphDef()
    graph_def.node.add(name='conv1/correction_mult', op='Mul')
    message = verify.missing_ranges_message(['conv1/Conv2D (Conv2D)'], graph_def)
    assert 'training graph' in message and 'create_eval_graph' in message
    plain = verify.missing_ranges_message(['Hypothesis (MatMul)'], tf.compat.v1.GraphDef())
    assert plain.startswith('Hypothesis (MatMul) has no fake-quant ranges: rewrite the graph '
                            'with create_training_graph before training')


def test_input_shapes_without_input_arrays_shape_the_graphs_own_input(models, tmp_path, capsys):
    """--input-shapes is the shape of the first input, whatever its name (here ``x``): the CLI
    once keyed it by our own name ``Input`` and refused every other graph."""
    pb = tmp_path / 'frozen.pb'
    assert cli.main(['freeze', models['cnn'], '--input-shapes', '2,28,28,1', '-o', str(pb)]) == 0
    assert 'input x [2, 28, 28, 1]' in capsys.readouterr().out
    frozen = sources.load_source(str(pb), batch_size=2)
    assert frozen.inputs == ['x'] and frozen.input_shapes == {'x': [2, 28, 28, 1]}
    # A fixed batch is the graph's training batch, not the model's: --batch-size sets it.
    assert sources.load_source(str(pb)).input_shapes == {'x': [1, 28, 28, 1]}
