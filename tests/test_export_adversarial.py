"""Adversarial review of issue 20: TF1 programs written as their authors wrote them.

Each test reproduces one finding with a small program: the order of calls of the original
script, not this project's.
"""

import json
import os

import numpy as np
import pytest

from freeze import sources
from graph_models import cli, quantize
from graph_models._tf import tf, v1


def _deep_mnist_tutorial_graph(ref_variables=False):
    """mnist_deep.py's order with tf.contrib.quantize: the loss, ``create_training_graph``,
    the optimizer, and only then ``accuracy`` from ``y_conv`` (the float logits, before the
    fake quant that the rewrite put in front of the loss)."""
    graph = tf.Graph()
    with graph.as_default(), v1.variable_scope('', use_resource=not ref_variables):
        Variable = v1.Variable if not ref_variables else (
            lambda value: v1.Variable(value, use_resource=False))
        x = v1.placeholder(tf.float32, [None, 784])
        y_ = v1.placeholder(tf.float32, [None, 10])
        with tf.name_scope('fc1'):
            w = Variable(v1.truncated_normal([784, 16], stddev=0.1))
            h = tf.nn.relu(tf.matmul(x, w) + Variable(tf.constant(0.1, shape=[16])))
        with tf.name_scope('dropout'):
            keep_prob = v1.placeholder(tf.float32)
            h = v1.nn.dropout(h, keep_prob)
        with tf.name_scope('fc2'):
            w = Variable(v1.truncated_normal([16, 10], stddev=0.1))
            y_conv = tf.matmul(h, w) + Variable(tf.constant(0.1, shape=[10]))
        with tf.name_scope('loss'):
            cross_entropy = tf.nn.softmax_cross_entropy_with_logits(labels=y_, logits=y_conv)
        cross_entropy = tf.reduce_mean(cross_entropy)
        quantize.create_training_graph(graph)
        with tf.name_scope('adam_optimizer'):
            v1.train.AdamOptimizer(1e-4).minimize(cross_entropy)
        with tf.name_scope('accuracy'):
            correct = tf.cast(tf.equal(tf.argmax(y_conv, 1), tf.argmax(y_, 1)), tf.float32)
        tf.reduce_mean(correct)
    return graph


def test_deep_mnist_accuracy_after_rewrite_has_one_output():
    """Finding 1: the accuracy built after ``create_training_graph`` reads ``fc2/add`` and the
    loss its fake quant: one prediction, not two candidates (was: 'cannot tell the output of
    the graph: candidates fc2/act_quant/FakeQuantWithMinMaxVars, fc2/add')."""
    graph_def = _deep_mnist_tutorial_graph().as_graph_def()
    assert sources.discover_outputs(graph_def) == ['fc2/act_quant/FakeQuantWithMinMaxVars']


def _batch_norm_training_pb(path, fold_qat=False):
    """A frozen graph whose batch norm is in training mode (slim/tf.layers ``is_training=True``
    as a Python bool: ``FusedBatchNormV3`` with ``is_training`` set, nothing to feed)."""
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 8, 8, 1], name='images')
        net = tf.nn.conv2d(x, tf.constant(np.ones([3, 3, 1, 4], np.float32)), 1, 'SAME')
        net, _, _ = v1.nn.fused_batch_norm(net, tf.ones([4]), tf.zeros([4]), is_training=True)
        if fold_qat:
            net = tf.multiply(net, 1.0, name='conv/correction_mult')
        net = tf.reduce_mean(tf.nn.relu(net), [1, 2])
        tf.nn.softmax(tf.matmul(net, tf.constant(np.ones([4, 3], np.float32))), name='probs')
    with open(path, 'wb') as f:
        f.write(graph.as_graph_def().SerializeToString())
    return str(path)


@pytest.mark.parametrize('fold_qat', [False, True])
def test_batch_norm_in_training_mode_is_refused(tmp_path, fold_qat):
    """Finding 2: tf-slim resnet_v1's *training* checkpoint (``is_training=True``) exported as
    float, accuracy 0.3764 instead of 0.9500 (batch norm on the statistics of a batch of 1), and
    ``eval`` reported agreement 1.0000 with the same wrong graph. The batch norm in training
    mode is refused, naming the fix; slim MobileNet's QAT training checkpoint was refused for
    its dropout ('feed the switch that controls them': there is none)."""
    from freeze.errors import FreezeError
    path = _batch_norm_training_pb(tmp_path / 'train.pb', fold_qat)
    with pytest.raises(FreezeError, match=r'FusedBatchNormV3.*is_training=True.*'
                       + ('create_eval_graph' if fold_qat else 'is_training=False')):
        sources.load_source(path)


def test_float_graph_int8_without_data_names_the_one_flag(tmp_path, capsys):
    """Finding 3: ``export resnet_v1_eval.ckpt --quantize int8`` (a float graph: no fake quant
    at all) told the user to pass ``--calibrate --data-dir DIR`` and listed a residual unit's
    ``bottleneck_v1/Relu`` twice; ``--data-dir`` is all it needs."""
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 4], name='x')
        a = tf.matmul(x, tf.constant(np.ones([4, 4], np.float32)))
        b = tf.matmul(x, tf.constant(np.ones([4, 4], np.float32)))
        net = tf.nn.relu(a + b, name='unit/Relu')
        tf.nn.softmax(tf.matmul(net, tf.constant(np.ones([4, 3], np.float32))), name='probs')
    path = tmp_path / 'float.pb'
    path.write_bytes(graph.as_graph_def().SerializeToString())
    assert cli.main(['export', str(path), '--quantize', 'int8']) == 2
    err = capsys.readouterr().err
    assert err.count('unit/Relu (MatMul)') == 1, err
    assert 'pass --data-dir DIR for post-training quantization' in err and '--calibrate' not in err


def _simple_save_classes_and_scores(folder):
    """A SavedModel as ``tf.saved_model.simple_save`` users write it: outputs ``classes``
    (ArgMax, int64) and ``scores`` (softmax), a custom input key, a fixed batch of 100."""
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, shape=(100, 784))
        w = tf.Variable(v1.truncated_normal([784, 10], stddev=0.05), name='weights')
        logits = tf.matmul(x, w) + tf.Variable(tf.zeros([10]), name='biases')
        probs = tf.nn.softmax(logits, name='probabilities')
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            v1.saved_model.simple_save(session, str(folder), inputs={'image_bytes': x},
                                       outputs={'scores': probs, 'classes': tf.argmax(logits, 1)})
    return str(folder)


def test_simple_save_classes_and_scores_exports_int8_and_evaluates(tmp_path, capsys):
    """Finding 4: ``simple_save(outputs={'scores': probs, 'classes': argmax})``: int8 export
    refused ('tensor ArgMax is int64'), the float ``.tflite`` had outputs [ArgMax,
    probabilities] and ``eval`` refused it ('outputs shape [], not one score per class', and
    --output-arrays is refused for a .tflite). The classes, computed from the scores, are left
    out with a note."""
    from conftest import synthetic_dataset, write_idx_folder
    saved = _simple_save_classes_and_scores(tmp_path / 'saved')
    frozen = sources.load_source(saved)
    assert frozen.outputs == ['probabilities'] and 'classes' not in frozen.outputs
    assert any('ArgMax (ArgMax) is computed from the scores probabilities' in n for n in frozen.notes)
    data_dir = write_idx_folder(tmp_path / 'data', synthetic_dataset(200, 100))
    for mode in ('float', 'int8'):
        model = tmp_path / f'{mode}.tflite'
        assert cli.main(['export', saved, '--quantize', mode, '--data-dir', data_dir,
                         '-o', str(model)]) == 0, capsys.readouterr().err
        assert 'was left out' in capsys.readouterr().out
        assert cli.main(['eval', str(model), '--data-dir', data_dir]) == 0, \
            capsys.readouterr().err
        assert 'agreement with the TF graph' in capsys.readouterr().out


def test_uint8_post_training_is_refused_before_converting(tmp_path, capsys):
    """Finding 5: ``export frozen.pb --quantize uint8 --data-dir D`` (README: "others:
    post-training from --data-dir") converted, then failed verification with 'QUANTIZE op
    inside the model; QUANTIZE op inside the model': the converter's post-training
    quantization is int8 inside. Refused up front, naming what works."""
    from conftest import synthetic_dataset, write_idx_folder
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 784], name='x')
        w = tf.constant(np.random.default_rng(0).normal(0, 0.05, [784, 10]).astype(np.float32))
        tf.nn.softmax(tf.matmul(x, w), name='probs')
    path = tmp_path / 'float.pb'
    path.write_bytes(graph.as_graph_def().SerializeToString())
    data_dir = write_idx_folder(tmp_path / 'data', synthetic_dataset(100, 50))
    assert cli.main(['export', str(path), '--quantize', 'uint8', '--data-dir', data_dir]) == 2
    err = capsys.readouterr().err
    assert 'uint8 post-training quantization is not all-integer' in err and \
        '--quantize int8' in err and err.count('\n') == 1


def test_user_frozen_qat_training_graph_exports(tmp_path, capsys):
    """Finding 6: a user's own ``convert_variables_to_constants`` of the QAT *training* graph
    (import_meta_graph, restore, freeze ``fc2/add``) keeps the range updates
    (``weights_quant/AssignMinLast``, ``act_quant/AssignMinEma/*``) on constants: every command
    failed with 'the graph does not import: Input 0 of node conv1/weights_quant/AssignMinLast
    was passed float ... expected float_ref'. At inference a range keeps its trained value."""
    graph = _deep_mnist_tutorial_graph(ref_variables=True)  # tf.disable_v2_behavior()
    with graph.as_default():
        x, y_ = [graph.get_operation_by_name(n).outputs[0] for n in ('Placeholder',
                                                                       'Placeholder_1')]
        keep_prob = graph.get_operation_by_name('dropout/Placeholder').outputs[0]
        train = graph.get_operation_by_name('adam_optimizer/Adam')
        rng = np.random.default_rng(0)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            for _ in range(5):
                session.run(train, {x: rng.random((20, 784), np.float32),
                                    y_: np.eye(10)[rng.integers(0, 10, 20)], keep_prob: 0.5})
            frozen = v1.graph_util.convert_variables_to_constants(
                session, graph.as_graph_def(), ['fc2/add'])
    path = tmp_path / 'frozen.pb'
    path.write_bytes(frozen.SerializeToString())
    assert any(n.op == 'Assign' for n in frozen.node)
    model = tmp_path / 'float.tflite'
    assert cli.main(['export', str(path), '--quantize', 'float', '-o', str(model)]) == 0, \
        capsys.readouterr().err
    # Frozen at fc2/add, the fake quant after it is not in the graph: the message says so
    # (was: 'rewrite the graph with create_training_graph before training').
    assert cli.main(['export', str(path), '--quantize', 'int8', '-o', str(model)]) == 1
    err = capsys.readouterr().err
    assert 'fc2/add (MatMul) has no fake-quant ranges because the graph was frozen at that ' \
        'output, before the fake quant' in err and 'create_training_graph before' not in err
    with graph.as_default(), v1.Session() as session:
        session.run(v1.global_variables_initializer())
        frozen = v1.graph_util.convert_variables_to_constants(
            session, graph.as_graph_def(), ['fc2/act_quant/FakeQuantWithMinMaxVars'])
    path.write_bytes(frozen.SerializeToString())
    model = tmp_path / 'int8.tflite'
    assert cli.main(['export', str(path), '--quantize', 'int8', '-o', str(model)]) == 0, \
        capsys.readouterr().err
    assert json.loads(open(str(model) + '.json').read())['verified']


def test_deep_mnist_with_quant_delay_has_one_output():
    """Finding 1b: with ``create_training_graph(quant_delay=N)`` the loss reads
    ``fc2/act_quant/delayed_quant`` and the accuracy ``fc2/add``: 'cannot tell the output of
    the graph: candidates fc2/act_quant/delayed_quant, fc2/add'."""
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 784])
        y_ = v1.placeholder(tf.float32, [None, 10])
        with tf.name_scope('fc2'):
            y_conv = tf.matmul(x, tf.Variable(v1.truncated_normal([784, 10]))) + \
                tf.Variable(tf.zeros([10]))
        loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y_, logits=y_conv))
        quantize.create_training_graph(graph, quant_delay=1000)
        v1.train.AdamOptimizer(1e-4).minimize(loss)
        tf.reduce_mean(tf.cast(tf.equal(tf.argmax(y_conv, 1), tf.argmax(y_, 1)), tf.float32))
    assert sources.discover_outputs(graph.as_graph_def()) == [
        'fc2/act_quant/FakeQuantWithMinMaxVars']


def test_classification_signature_top_k_exports_class_scores(tmp_path, capsys):
    """Finding 7 (silent wrong): mnist_saved_model.py's classification signature
    (``classes``/``scores`` = indices/values of ``tf.nn.top_k(softmax, 10)``, one op TopKV2)
    exported the *sorted* scores: ``eval`` printed accuracy 0.0980 and agreement 1.0000. The
    model now outputs the scores top_k sorts, in class order."""
    from conftest import synthetic_dataset, write_idx_folder
    data = synthetic_dataset(300, 100)
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, shape=(None, 784))
        y = v1.placeholder(tf.int64, [None])
        logits = tf.matmul(x, tf.Variable(tf.zeros([784, 10]), name='weights'))
        train = v1.train.AdamOptimizer(0.01).minimize(
            v1.losses.sparse_softmax_cross_entropy(y, logits))
        values, indices = tf.nn.top_k(tf.nn.softmax(logits), 10)
        info = v1.saved_model.utils.build_tensor_info
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            for _ in range(30):
                session.run(train, {x: data.train_images.reshape(-1, 784) / 255.0,
                                    y: data.train_labels})
            builder = v1.saved_model.builder.SavedModelBuilder(str(tmp_path / 'saved'))
            builder.add_meta_graph_and_variables(session, ['serve'], signature_def_map={
                'serving_default': v1.saved_model.signature_def_utils.build_signature_def(
                    inputs={'images': info(x)},
                    outputs={'classes': info(indices), 'scores': info(values)},
                    method_name='tensorflow/serving/classify')})
            builder.save()
    frozen = sources.load_source(str(tmp_path / 'saved'))
    assert frozen.outputs == ['Softmax']
    data_dir = write_idx_folder(tmp_path / 'data', data)
    model = tmp_path / 'float.tflite'
    assert cli.main(['export', str(tmp_path / 'saved'), '-o', str(model)]) == 0
    assert 'holds sorted scores' in capsys.readouterr().out
    assert cli.main(['eval', str(model), '--data-dir', data_dir]) == 0
    out = capsys.readouterr().out
    assert float(out.split('accuracy ')[1].split()[0]) > 0.5, out


def test_checkpoint_before_quant_delay_says_what_was_exported(tmp_path):
    """Finding 8 (wrong label): a training checkpoint saved before ``quant_delay`` (deep-MNIST,
    delay 1000, 60 steps) exported the quantized branch, and ``eval`` labelled its agreement
    '(the graph as trained)' without saying that training computed in float. A note says so."""
    graph = tf.Graph()
    with graph.as_default(), v1.variable_scope('', use_resource=False):
        x = v1.placeholder(tf.float32, [None, 784])
        y = v1.placeholder(tf.int64, [None])
        logits = tf.matmul(x, v1.Variable(tf.zeros([784, 10]), use_resource=False))
        tf.nn.softmax(logits, name='probs')
        loss = v1.losses.sparse_softmax_cross_entropy(y, logits)
        quantize.create_training_graph(graph, quant_delay=1000)
        train = v1.train.AdamOptimizer(0.01).minimize(loss)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            for _ in range(3):
                session.run(train, {x: np.ones((4, 784), np.float32), y: [1, 2, 3, 4]})
            prefix = v1.train.Saver().save(session, str(tmp_path / 'model.ckpt'))
    notes = sources.load_source(prefix).notes
    assert any('before quant_delay 1000' in n and 'training computed in float' in n
               for n in notes), notes


def test_agreement_on_logits_is_not_called_a_probability_difference():
    """Finding 9 (wrong label): fully_connected_feed's output is its logits
    (``softmax_linear/add``); ``eval`` printed their mean difference as 'mean |prob diff|
    0.03738'."""
    from graph_models.litert import evaluate
    logits = np.array([[2.0, -1.0, 0.5], [0.1, 3.0, -2.0]], np.float32)
    result = evaluate.score(logits + 0.01, np.array([0, 1]), logits)
    line = evaluate.EvalReport('m.tflite', 'tflite', 'mnist', result, []).lines()[1]
    assert 'mean |output diff| 0.01000' in line
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]], np.float32)
    line = evaluate.EvalReport('m.tflite', 'tflite', 'mnist',
                               evaluate.score(probs, np.array([0, 1]), probs), []).lines()[1]
    assert 'mean |prob diff| 0.00000' in line
