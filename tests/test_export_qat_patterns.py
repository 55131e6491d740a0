"""Issue 20 items 5, 7, 8, 11: TF1 QAT patterns written in plain TF1 code, exported with
``--quantize int8`` and no flags a user would not know, to a verified all-integer ``.tflite``
whose agreement with the graph as trained ``eval`` reports; the refusals pinned.

* an atrous depthwise layer with unfused batch norm (the range check looks through
  ``BatchToSpaceND`` and the folded batch norm's add);
* a tutorial that names its logits ``fc2/add`` as the output, before ``fc2/act_quant``;
* a training checkpoint whose ``quant_delay`` was never reached, with a fake quant that no
  training step read (its range still the initial [0, 6]).
"""

import json
import os
import re

import numpy as np
import pytest

from freeze import sources
from freeze.export import trained_graph
from graph_models import cli, quantize
from graph_models._tf import tf, v1

from conftest import synthetic_dataset

DATA = synthetic_dataset()


def _images(shape):
    return (DATA.train_images.reshape((-1,) + shape) / 255.0).astype(np.float32)


def _train(graph, x, labels, loss, shape, steps, folder, *, update_ops=False):
    """Adam on ``loss`` for ``steps`` batches of 50; saves ``folder/model.ckpt`` (+ .meta)."""
    with graph.as_default():
        deps = v1.get_collection(v1.GraphKeys.UPDATE_OPS) if update_ops else []
        with tf.control_dependencies(deps):
            train = v1.train.AdamOptimizer(3e-3).minimize(loss)
        images = _images(shape)
        rng = np.random.default_rng(0)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            for _ in range(steps):
                index = rng.integers(0, len(images), 50)
                session.run(train, {x: images[index], labels: DATA.train_labels[index]})
            os.makedirs(folder, exist_ok=True)
            return v1.train.Saver().save(session, os.path.join(str(folder), 'model.ckpt'))


def _eval_checkpoint(build, checkpoint, folder):
    """The inference graph rebuilt, ``create_eval_graph``, restored and saved (+ .meta)."""
    graph = tf.Graph()
    build(graph, training=False)
    with graph.as_default():
        quantize.create_eval_graph(graph)
        saver = v1.train.Saver()
        with v1.Session() as session:
            saver.restore(session, checkpoint)
            os.makedirs(folder, exist_ok=True)
            return saver.save(session, os.path.join(str(folder), 'model.ckpt'))


def _export(capsys, source, out, *flags):
    status = cli.main(['export', source, '--quantize', 'int8', '-o', str(out), *flags])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _eval_agreement(capsys, model, data_dir, *flags):
    """``graph-models eval`` of a .tflite: (accuracy, agreement, its reference label)."""
    assert cli.main(['eval', str(model), '--data-dir', data_dir, *flags]) == 0
    out = capsys.readouterr().out
    accuracy = float(re.search(r'accuracy (\d\.\d+)', out).group(1))
    match = re.search(r'agreement with the TF graph: (\d\.\d+) top-1.*\((.*)\)', out)
    assert match, out
    return accuracy, float(match.group(1)), match.group(2)


def _record(model):
    with open(str(model) + '.json') as f:
        return json.load(f)


# --- item 5: atrous depthwise + unfused batch norm -------------------------------------------


def _atrous(graph, training):
    """conv -> atrous depthwise (dilation 2) + slim-style unfused batch norm + ReLU6 ->
    logits. Returns ``(input, logits)``."""
    with graph.as_default():
        v1.set_random_seed(0)
        x = v1.placeholder(tf.float32, [None, 28, 28, 1], name='Input')
        with v1.variable_scope('conv0'):
            w0 = v1.get_variable('weights', [3, 3, 1, 8])
            b0 = v1.get_variable('biases', [8], initializer=v1.zeros_initializer())
            net = tf.nn.relu6(tf.nn.bias_add(tf.nn.conv2d(x, w0, 2, 'SAME'), b0))
        with v1.variable_scope('atrous'):
            w = v1.get_variable('depthwise_weights', [3, 3, 8, 1])
            net = tf.nn.depthwise_conv2d(net, w, [1, 1, 1, 1], 'SAME', dilations=[2, 2])
            with v1.variable_scope('BatchNorm'):
                gamma = v1.get_variable('gamma', [8], initializer=v1.ones_initializer())
                beta = v1.get_variable('beta', [8], initializer=v1.zeros_initializer())
                mean_var = v1.get_variable('moving_mean', [8], trainable=False,
                                           initializer=v1.zeros_initializer())
                var_var = v1.get_variable('moving_variance', [8], trainable=False,
                                          initializer=v1.ones_initializer())
                if training:
                    mean, var = tf.nn.moments(net, [0, 1, 2])
                    for moving, stat in ((mean_var, mean), (var_var, var)):
                        v1.add_to_collection(v1.GraphKeys.UPDATE_OPS, v1.assign_sub(
                            moving, (moving - stat) * 0.1))
                else:
                    mean, var = mean_var, var_var
                net = tf.nn.batch_normalization(net, mean, var, beta, gamma, 1e-3)
            net = tf.nn.relu6(net)
        flat = tf.reshape(net, [-1, 14 * 14 * 8])
        with v1.variable_scope('logits'):
            w = v1.get_variable('weights', [14 * 14 * 8, 10])
            b = v1.get_variable('biases', [10], initializer=v1.zeros_initializer())
            logits = tf.nn.bias_add(tf.matmul(flat, w), b)
        tf.nn.softmax(logits, name='Output')
    return x, logits


@pytest.mark.slow
def test_atrous_depthwise_with_unfused_batch_norm_exports_all_integer(tmp_path, capsys,
                                                                      tiny_data_dir):
    graph = tf.Graph()
    x, logits = _atrous(graph, training=True)
    with graph.as_default():
        labels = v1.placeholder(tf.int64, [None], name='Labels')
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits))
        quantize.create_training_graph(graph)
    checkpoint = _train(graph, x, labels, loss, (28, 28, 1), 40, tmp_path / 'train',
                        update_ops=True)
    source = _eval_checkpoint(_atrous, checkpoint, tmp_path / 'eval')
    # The atrous layer's weights_quant and act_quant (after ReLU6) are its ranges.
    frozen = sources.load_source(source, allow_unsafe_ops=True)
    types = {n.op for n in frozen.graph_def.node}
    assert {'BatchToSpaceND', 'SpaceToBatchND', 'DepthwiseConv2dNative'} <= types
    # SpaceToBatchND/BatchToSpaceND may not be on the .pb allow-list: trust the graph.
    model = tmp_path / 'atrous.tflite'
    status, out, err = _export(capsys, source, model, '--allow-unsafe-ops')
    assert status == 0, err
    assert 'int8 (qat, qat_eval graph, verified: mean |diff| ' in out
    assert _record(model)['verified']
    _, agreement, reference = _eval_agreement(capsys, model, tiny_data_dir,
                                              '--allow-unsafe-ops')
    assert reference == 'the graph as trained'
    assert agreement >= 0.95


# --- item 7: the output named before its fake quant ------------------------------------------


def _two_layers(graph, training=False):
    """The tutorial MLP with its logits named ``fc2/add`` (a bias ``tf.add``)."""
    with graph.as_default():
        v1.set_random_seed(0)
        x = v1.placeholder(tf.float32, [None, 784], name='x')
        net = x
        for name, units in (('fc1', 32), ('fc2', 10)):
            with v1.variable_scope(name):
                w = v1.get_variable('weights', [net.shape[-1], units])
                b = v1.get_variable('biases', [units], initializer=v1.zeros_initializer())
                net = tf.add(tf.matmul(net, w), b, name='add')
                if name == 'fc1':
                    net = tf.nn.relu(net)
    return x, net


@pytest.mark.slow
def test_output_named_before_its_fake_quant_is_exported_through_it(tmp_path, capsys,
                                                                   tiny_data_dir):
    graph = tf.Graph()
    x, logits = _two_layers(graph)
    with graph.as_default():
        labels = v1.placeholder(tf.int64, [None], name='y')
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits))
        quantize.create_training_graph(graph)
    checkpoint = _train(graph, x, labels, loss, (784,), 60, tmp_path / 'train')
    source = _eval_checkpoint(_two_layers, checkpoint, tmp_path / 'eval')
    model = tmp_path / 'mlp.tflite'
    status, out, err = _export(capsys, source, model, '--output-arrays', 'fc2/add')
    assert status == 0, err
    assert out.splitlines()[0] == (
        'the output fc2/add is taken before its fake quant fc2/act_quant/FakeQuantWithMinMaxVars;'
        ' exported fc2/act_quant/FakeQuantWithMinMaxVars instead (--output-arrays '
        'fc2/act_quant/FakeQuantWithMinMaxVars)')
    record = _record(model)
    assert record['output_arrays'] == ['fc2/act_quant/FakeQuantWithMinMaxVars']
    assert record['verified'] and record['quantization'] == 'qat'
    _, agreement, reference = _eval_agreement(capsys, model, tiny_data_dir)
    assert reference == 'the graph as trained' and agreement >= 0.95


# --- item 11: an unreached quantization delay and a range nothing read -----------------------


def _delayed_tutorial(folder):
    """The classic tutorial: ``create_training_graph(quant_delay=2000000)`` before the loss,
    which reads the raw ``Hypothesis`` logits; the softmax ``Output`` reads the logits'
    fake quant, which no training step runs. Saves the training graph (+ .meta)."""
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(0)
        x = v1.placeholder(tf.float32, [None, 784], name='Input')
        w1 = tf.Variable(v1.random_normal([784, 64], stddev=0.05), name='W1')
        w2 = tf.Variable(v1.random_normal([64, 10], stddev=0.05), name='W2')
        layer1 = tf.nn.relu(tf.matmul(x, w1), name='Layer_1')
        hypothesis = tf.matmul(layer1, w2, name='Hypothesis')
        tf.nn.softmax(hypothesis, name='Output')
        quantize.create_training_graph(input_graph=graph, quant_delay=2000000)
        labels = v1.placeholder(tf.int64, [None], name='Labels')
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=hypothesis))
    return _train(graph, x, labels, loss, (784,), 80, folder)


def _bound(graph_def, fake_quant, port):
    """The constant min (port 1) or max (port 2) a frozen fake quant reads."""
    nodes = {n.name: n for n in graph_def.node}
    node = nodes[nodes[fake_quant].input[port].split(':')[0]]
    while node.op == 'Identity':
        node = nodes[node.input[0].split(':')[0]]
    return float(tf.make_ndarray(node.attr['value'].tensor))


@pytest.fixture
def delayed_checkpoint(tmp_path):
    return _delayed_tutorial(tmp_path / 'tutorial')


@pytest.mark.slow
def test_unreached_delay_exports_learned_ranges_and_calibrates_unread_one(
        tmp_path, capsys, tiny_data_dir, delayed_checkpoint):
    reader = tf.train.load_checkpoint(delayed_checkpoint)
    # TF 1.15's names: the hidden layer's range was learned, the logits' never updated.
    assert reader.get_tensor('act_quant/act_quant/max/local_step') == 80
    assert reader.get_tensor('act_quant_1/act_quant_1/max/local_step') == 0
    assert reader.get_tensor('act_quant_1/max') == 6.0
    learned = float(reader.get_tensor('act_quant/max'))
    assert learned != 6.0
    frozen = sources.load_source(delayed_checkpoint)
    # The delay's quantized branch is taken (as create_eval_graph would build it).
    assert frozen.unreached_ranges == ['act_quant_1/FakeQuantWithMinMaxVars']
    quants = {n.name for n in frozen.graph_def.node if n.op == 'FakeQuantWithMinMaxVars'}
    assert {'act_quant/FakeQuantWithMinMaxVars', 'weights_quant/FakeQuantWithMinMaxVars',
            'weights_quant_1/FakeQuantWithMinMaxVars',
            'act_quant_1/FakeQuantWithMinMaxVars'} <= quants
    assert _bound(frozen.graph_def, 'act_quant/FakeQuantWithMinMaxVars', 2) == learned
    model = tmp_path / 'tutorial.tflite'
    status, out, err = _export(capsys, delayed_checkpoint, model, '--data-dir', tiny_data_dir)
    assert status == 0, err
    # First: the checkpoint predates the delay (training computed in float).
    assert out.splitlines()[0].startswith('the checkpoint was saved at quantization step ')
    assert out.splitlines()[1].startswith(
        'calibrated from 200 examples the ranges training never updated: act_quant_1 [')
    assert out.splitlines()[1].endswith('] (after Hypothesis)')
    record = _record(model)
    assert record['verified'] and record['quantization'] == 'qat'
    assert record['calibrated_ranges'] == ['act_quant_1/FakeQuantWithMinMaxVars']
    _, agreement, reference = _eval_agreement(capsys, model, tiny_data_dir)
    assert reference == 'the graph as trained' and agreement >= 0.95


@pytest.mark.slow
def test_unreached_range_without_data_is_refused_in_one_line(tmp_path, capsys,
                                                             delayed_checkpoint):
    status, out, err = _export(capsys, delayed_checkpoint, tmp_path / 'm.tflite')
    assert status == 2 and not os.path.exists(tmp_path / 'm.tflite')
    assert err.strip() == (
        'graph-models export: error: the fake-quant range of act_quant_1 [0, 6] (after '
        'Hypothesis) was never updated in training (local_step 0: no training step read it), '
        'so exporting it would clip with the initial range; pass --data-dir DIR to calibrate '
        'it from data, or --calibrate to calibrate every range')


# --- item 8: eval's agreement is with the graph as trained -----------------------------------


@pytest.mark.slow
def test_eval_agreement_is_with_the_graph_as_trained(tmp_path, capsys, tiny_data_dir):
    """Our QAT run's int8 export symmetrizes its weight ranges; ``eval`` compares the .tflite
    with the QAT eval graph as trained (learned ranges), and says so."""
    from graph_models import data as data_lib
    from graph_models.litert import evaluate
    from graph_models.quantize import QuantizationConfig
    from graph_models.training.restore import restore_run
    from graph_models.training.run_config import RunConfig
    from graph_models.nets.factory import ModelConfig
    from graph_models.export import freeze_session
    from graph_models.training.train import train_and_eval
    data = data_lib.load_dataset('mnist', tiny_data_dir)
    run = RunConfig(model=ModelConfig('mlp_small'), epochs=2, batch_size=50,
                    quantization=QuantizationConfig(), data_source=tiny_data_dir)
    result = train_and_eval(run, data, run_name='qat', log_dir=str(tmp_path / 'logs'),
                            checkpoint_dir=str(tmp_path / 'ckpt'), progress=False,
                            log=lambda line: None)
    model = tmp_path / 'qat.tflite'
    status, _, err = _export(capsys, result.checkpoint_dir, model)
    assert status == 0, err
    record = _record(model)
    assert record['symmetrized_weights'] and record['trained_graph_sha256'] != \
        record['graph_sha256']
    accuracy, agreement, reference = _eval_agreement(capsys, model, tiny_data_dir)
    assert reference == 'the graph as trained'
    # Independently: the run's QAT eval graph, restored, frozen, weight ranges untouched.
    restored = restore_run(result.checkpoint_dir)
    graph_def = freeze_session(restored.session, output_names=['Output'])
    restored.close()
    images = data_lib.to_float(data.test_images, (784,))
    trained = evaluate.frozen_graph_probabilities(graph_def, images)
    lite = evaluate.LiteModel(model.read_bytes()).probabilities(images)
    assert agreement == pytest.approx(float((lite.argmax(1) == trained.argmax(1)).mean()),
                                      abs=1e-4)
    assert accuracy == pytest.approx(float((lite.argmax(1) == data.test_labels).mean()),
                                     abs=1e-4)
    # Our run's Logits sit before their fake quant too: exported through it, and evaluated.
    logits_model = tmp_path / 'logits.tflite'
    status, out, err = _export(capsys, result.checkpoint_dir, logits_model,
                               '--output-arrays', 'Logits')
    assert status == 0, err
    quant = 'mlp_small/logits/act_quant/FakeQuantWithMinMaxVars'
    assert out.splitlines()[0] == (f'the output Logits is taken before its fake quant {quant}; '
                                   f'exported {quant} instead (--output-arrays {quant})')
    assert _record(logits_model)['output_arrays'] == [quant]
    _, logits_agreement, reference = _eval_agreement(capsys, logits_model, tiny_data_dir)
    assert reference == 'the graph as trained' and logits_agreement >= 0.95
    # A record written before trained_graph_sha256: the converted graph, labelled as such.
    del record['trained_graph_sha256']
    (tmp_path / 'qat.tflite.json').write_text(json.dumps(record))
    _, _, reference = _eval_agreement(capsys, model, tiny_data_dir)
    assert reference == ('the converted graph, weight ranges made symmetric; export again to '
                         'compare with the graph as trained')


@pytest.mark.slow
def test_float_export_leaves_out_the_unread_range(tmp_path, capsys, delayed_checkpoint):
    """A float model computes what training computed: the logits are not clipped to [0, 6]."""
    from graph_models.litert import evaluate
    model = tmp_path / 'float.tflite'
    status = cli.main(['export', delayed_checkpoint, '-o', str(model)])
    out = capsys.readouterr().out
    assert status == 0
    assert out.splitlines()[0].startswith('the checkpoint was saved at quantization step ')
    assert out.splitlines()[1] == ('left out the fake quants whose ranges training never '
                                   'updated: act_quant_1 [0, 6] (after Hypothesis)')
    images = _images((784,))[:32]
    frozen = sources.load_source(delayed_checkpoint)
    with_range = evaluate.frozen_graph_probabilities(frozen.graph_def, images, 'Input', 'Output')
    lite = evaluate.LiteModel(model.read_bytes()).probabilities(images)
    trained = evaluate.frozen_graph_probabilities(trained_graph(frozen), images, 'Input',
                                                  'Output')
    np.testing.assert_allclose(lite, trained, atol=1e-4)
    assert np.abs(with_range - trained).max() > 1e-2  # The initial range would have clipped.
