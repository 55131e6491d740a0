"""Quantization rewrite: placement and names, delay, EMA ranges, batch-norm folding, errors."""

import numpy as np
import pytest

from graph_models import data as data_lib
from graph_models import quantize
from graph_models.nets import graphs
from graph_models._tf import tf, v1
from graph_models.errors import CheckpointError
from graph_models.nets.factory import ModelConfig
from graph_models.quantize import QuantizationConfig, QuantizeError
from graph_models.training.run_config import RunConfig, read_run_config
from graph_models.training.scoring import Evaluator
from graph_models.training.train import train_and_eval

from conftest import synthetic_dataset

# Every quantized layer of each model, with the op that feeds its act_quant.
LAYERS = {
    'mlp': {'fc1': 'Relu', 'logits': 'Identity'},
    'mlp_small': {'fc1': 'Relu', 'logits': 'Identity'},
    'mlp_deep': {'fc1': 'Relu', 'fc2': 'Relu', 'logits': 'Identity'},
    'cnn': {'conv1': 'Relu', 'conv2': 'Relu', 'conv3': 'Relu', 'fc1': 'Relu',
            'logits': 'Identity'},
}
CONFIGS = [ModelConfig(name) for name in LAYERS] + [ModelConfig('cnn', batch_norm=True)]


def _ids(config):
    return config.name + ('_bn' if config.batch_norm else '')


def _fake_quants(graph):
    return {op.name: op for op in graph.get_operations()
            if op.type in ('FakeQuantWithMinMaxVars', 'FakeQuantWithMinMaxArgs')}


def _check_placement(graph, config):
    fq = _fake_quants(graph)
    layers = LAYERS[config.name]
    assert len(fq) == 2 * len(layers) + 1
    for layer, activation in layers.items():
        scope = f'{config.name}/{layer}'
        weights_fq = fq.pop(f'{scope}/weights_quant/FakeQuantWithMinMaxVars')
        consumer_types = {c.type for c in weights_fq.outputs[0].consumers()} | {
            c.type for d in weights_fq.outputs[0].consumers() for c in d.outputs[0].consumers()}
        assert consumer_types & {'MatMul', 'Conv2D'}, consumer_types
        folded = config.batch_norm and layer.startswith('conv')
        assert weights_fq.inputs[0].op.type == ('Mul' if folded else 'ReadVariableOp')
        act_fq = fq.pop(f'{scope}/act_quant/FakeQuantWithMinMaxVars')
        assert act_fq.inputs[0].op.type == activation
        if activation == 'Relu':
            assert act_fq.inputs[0].op.name.startswith(scope + '/')
        else:  # As TF 1.15: the Identity after the logits' bias add counts as activation.
            assert act_fq.inputs[0].name == 'Logits:0'
            assert act_fq.inputs[0].op.inputs[0].op.type == 'BiasAdd'
        assert act_fq.get_attr('narrow_range') is False
        assert weights_fq.get_attr('narrow_range') is True
    input_fq = fq.pop('input_quant/FakeQuantWithMinMaxArgs')
    assert input_fq.inputs[0].name == 'Input:0'
    assert (input_fq.get_attr('min'), input_fq.get_attr('max')) == (0.0, 1.0)
    assert not fq
    # The logits are quantized: the softmax Output reads the last act_quant.
    output_input = graph.get_tensor_by_name('Output:0').op.inputs[0]
    assert output_input.op.name.endswith('logits/act_quant/FakeQuantWithMinMaxVars')


@pytest.mark.parametrize('config', CONFIGS, ids=_ids)
def test_training_graph_placement_and_names(config):
    graph, _ = graphs.build_training_graph(
        config, learning_rate=1e-3, seed=0, rewrite=quantize.create_training_graph)
    _check_placement(graph, config)
    names = {v.op.name for v in graph.get_collection(quantize.QUANTIZATION_VARIABLES)}
    expected = {f'{config.name}/{layer}/{kind}/{end}' for layer in LAYERS[config.name]
                for kind in ('weights_quant', 'act_quant') for end in ('min', 'max')}
    # TF 1.15's zero-debias state: <s>/<s>/min/biased (a scope named after the variable).
    expected |= {f'{config.name}/{layer}/act_quant/{config.name}/{layer}/act_quant/{end}/{state}'
                 for layer in LAYERS[config.name]
                 for end in ('min', 'max') for state in ('biased', 'local_step')}
    assert names == expected
    with graph.as_default():
        assert not names & {v.op.name for v in v1.trainable_variables()}
        assert names <= {v.op.name for v in v1.global_variables()}


@pytest.mark.parametrize('config', CONFIGS, ids=_ids)
def test_eval_graph_placement_and_no_updates(config):
    graph, _ = graphs.build_inference_graph(config, rewrite=quantize.create_eval_graph)
    _check_placement(graph, config)
    forward = v1.graph_util.extract_sub_graph(graph.as_graph_def(), ['Output'])
    types = {node.op for node in forward.node}
    assert not {t for t in types if t.startswith('Assign')}
    assert 'FakeQuantWithMinMaxVars' in types
    assert not [op for op in graph.get_operations() if 'Ema' in op.name or 'Last' in op.name]
    if config.batch_norm:  # Folded with moving statistics: no batch-norm op left on the path.
        assert not types & {'FusedBatchNormV3', 'Mean'}


def _session_with_float_weights(config, quant_config):
    """A float training graph and a quantized one sharing the same initial weights."""
    float_graph, float_t = graphs.build_training_graph(config, learning_rate=1e-3, seed=0)
    quant_graph, quant_t = graphs.build_training_graph(
        config, learning_rate=1e-3, seed=0, rewrite=quant_config.training_rewrite())
    float_sess = v1.Session(graph=float_graph)
    quant_sess = v1.Session(graph=quant_graph)
    with float_graph.as_default():
        float_sess.run(v1.global_variables_initializer())
        values = {v.op.name: float_sess.run(v) for v in v1.global_variables()}
    with quant_graph.as_default():
        quant_sess.run(v1.global_variables_initializer())
        for var in v1.global_variables():
            if var.op.name in values:
                var.load(values[var.op.name], quant_sess)
    return (float_sess, float_t), (quant_sess, quant_t)


@pytest.mark.parametrize('config', [ModelConfig('mlp'), ModelConfig('cnn')], ids=_ids)
def test_quant_delay_float_before_quantized_after(config):
    (fs, ft), (qs, qt) = _session_with_float_weights(config, QuantizationConfig(quant_delay=5))
    images = data_lib.to_float(synthetic_dataset(64, 8).train_images[:64], config.input_shape)
    float_out = fs.run(ft.model.output, {ft.model.inputs: images})
    quant_out = qs.run(qt.model.output, {qt.model.inputs: images})
    np.testing.assert_array_equal(quant_out, float_out)  # Step 0 < delay: exactly float.

    with qs.graph.as_default():  # TF 1.15's counter: the next run is the 5th.
        _var(qs.graph, 'fake_quantization_step').load(4, qs)
    activations = quantize.quantized_activation_tensors(qs.graph)
    assert len(activations) == len(LAYERS[config.name]) + 1
    values = qs.run(activations + [qt.model.output], {qt.model.inputs: images})
    for tensor, value in zip(activations, values[:-1]):
        assert len(np.unique(value)) <= 2 ** 8, tensor.name
    assert not np.allclose(values[-1], float_out, atol=1e-7)


def test_lower_bit_widths_take_fewer_values():
    config = ModelConfig('mlp_small')
    _, (qs, qt) = _session_with_float_weights(
        config, QuantizationConfig(weight_bits=4, activation_bits=3))
    images = data_lib.to_float(synthetic_dataset(64, 8).train_images, (784,))
    for tensor in quantize.quantized_activation_tensors(qs.graph):
        assert len(np.unique(qs.run(tensor, {qt.model.inputs: images}))) <= 2 ** 3
    weights = qs.graph.get_tensor_by_name('mlp_small/fc1/weights_quant/FakeQuantWithMinMaxVars:0')
    assert len(np.unique(qs.run(weights, {qt.model.inputs: images}))) <= 2 ** 4 - 1


def _var(graph, name):
    with graph.as_default():
        return {v.op.name: v for v in v1.global_variables()}[name]


def test_ema_ranges_move_toward_the_observed_range():
    config = ModelConfig('mlp_small')
    _, (qs, qt) = _session_with_float_weights(config, QuantizationConfig())
    graph = qs.graph
    act_min = _var(graph, 'mlp_small/logits/act_quant/min')
    act_max = _var(graph, 'mlp_small/logits/act_quant/max')
    relu_max = _var(graph, 'mlp_small/fc1/act_quant/max')
    assert qs.run([act_min, act_max, relu_max]) == [0.0, 6.0, 6.0]  # TF 1.15's initial ranges.
    images = data_lib.to_float(synthetic_dataset(64, 8).train_images, (784,))
    logits = graph.get_tensor_by_name('mlp_small/logits/BiasAdd:0')
    feed = {qt.model.inputs: images}
    observed, _ = qs.run([logits, qt.model.output], feed)  # One forward: one EMA update.
    # Zero-debiased: the first update gives the batch range itself (widened to 0).
    expected_min, expected_max = min(observed.min(), 0.0), max(observed.max(), 0.0)
    # rtol: 1 - 0.999 in float32 is off by 5e-5 relative (TF 1.15 computed it alike).
    np.testing.assert_allclose(qs.run([act_min, act_max]), [expected_min, expected_max],
                               rtol=1e-4)
    second, _ = qs.run([logits, qt.model.output], {qt.model.inputs: images[::-1] * 0.5})
    d = quantize.EMA_DECAY
    biased = (1 - d) * d * expected_max + (1 - d) * max(second.max(), 0.0)
    np.testing.assert_allclose(qs.run(act_max), biased / (1 - d ** 2), rtol=1e-4)
    # Repeated training steps keep pulling the range toward what the layer produces.
    labels = synthetic_dataset(64, 8).train_labels
    first_relu_max = qs.run(relu_max)
    for _ in range(30):
        qs.run(qt.train_op, {qt.model.inputs: images, qt.labels: labels})
    relu_out = qs.run(graph.get_tensor_by_name('mlp_small/fc1/Relu:0'), feed)
    assert 0.0 < qs.run(relu_max) < 6.0
    assert abs(qs.run(relu_max) - relu_out.max()) < abs(first_relu_max - relu_out.max()) + 0.5


def test_weight_ranges_are_last_value_and_symmetric_option():
    config = ModelConfig('mlp_small')
    for symmetric in (False, True):
        _, (qs, qt) = _session_with_float_weights(config,
                                                  QuantizationConfig(symmetric=symmetric))
        images = data_lib.to_float(synthetic_dataset(8, 8).train_images, (784,))
        qs.run(qt.model.output, {qt.model.inputs: images})
        graph = qs.graph
        w = qs.run(_var(graph, 'mlp_small/fc1/weights'))
        low, high = qs.run([_var(graph, 'mlp_small/fc1/weights_quant/min'),
                            _var(graph, 'mlp_small/fc1/weights_quant/max')])
        if symmetric:
            bound = np.abs(w).max()
            np.testing.assert_allclose([low, high], [-bound, bound], rtol=1e-6)
        else:
            np.testing.assert_allclose([low, high], [min(w.min(), 0), max(w.max(), 0)],
                                       rtol=1e-6)


def _bn_graph(is_training):
    """A batch-norm CNN graph with non-trivial statistics; returns graph, model and values."""
    config = ModelConfig('cnn', batch_norm=True)
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(1)
        v1.train.get_or_create_global_step()
        model = graphs.build_model(config, is_training=is_training)
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            values = {v.op.name: session.run(v) for v in v1.global_variables()}
    rng = np.random.default_rng(0)
    for name in values:
        if name.endswith(('moving_mean', 'beta')):
            values[name] = rng.normal(0, 0.1, values[name].shape).astype(np.float32)
        elif name.endswith(('moving_variance', 'gamma')):
            values[name] = rng.uniform(0.5, 2.0, values[name].shape).astype(np.float32)
    return graph, model, values


def _run(graph, tensor, feed, values):
    """Runs ``tensor`` in a new session (a session that ran a graph misses later rewrites)."""
    with graph.as_default(), v1.Session(graph=graph) as session:
        session.run(v1.global_variables_initializer())
        for var in v1.global_variables():
            if var.op.name in values:
                var.load(values[var.op.name], session)
        return session.run(tensor, feed)


def test_batch_norm_folding_eval_matches_unfolded():
    graph, model, values = _bn_graph(is_training=False)
    feed = {model.inputs: data_lib.to_float(synthetic_dataset(16, 4).train_images, (28, 28, 1))}
    before = _run(graph, model.logits, feed, values)
    folded = quantize.fold_batch_norms(graph, is_training=False)
    assert [op.name for op in folded] == ['cnn/conv1/Conv2D_Fold', 'cnn/conv2/Conv2D_Fold',
                                          'cnn/conv3/Conv2D_Fold']
    forward = v1.graph_util.extract_sub_graph(graph.as_graph_def(), ['Logits'])
    assert 'FusedBatchNormV3' not in {node.op for node in forward.node}
    assert 'Conv2D_Fold' in {node.name.split('/')[-1] for node in forward.node}
    after = _run(graph, model.logits, feed, values)
    np.testing.assert_allclose(after, before, atol=1e-5, rtol=1e-5)


def test_batch_norm_folding_training_uses_batch_then_moving_statistics():
    graph, model, values = _bn_graph(is_training=True)
    feed = {model.inputs: data_lib.to_float(synthetic_dataset(16, 4).train_images, (28, 28, 1))}
    batch_stats = _run(graph, model.logits, feed, values)
    quantize.fold_batch_norms(graph, is_training=True, freeze_bn_delay=10)
    forward = v1.graph_util.extract_sub_graph(graph.as_graph_def(), ['Logits'])
    assert 'post_conv_mul' in {node.name.split('/')[-1] for node in forward.node}
    np.testing.assert_allclose(_run(graph, model.logits, feed, values), batch_stats,
                               atol=1e-4, rtol=1e-4)
    # From the freeze step on, the folded training graph computes the inference graph.
    eval_graph, eval_model, _ = _bn_graph(is_training=False)
    moving = _run(eval_graph, eval_model.logits, {eval_model.inputs: feed[model.inputs]},
                  values)
    assert not np.allclose(moving, batch_stats, atol=1e-3)
    frozen = _run(graph, model.logits, feed, dict(values, fake_quantization_step=np.int64(9)))
    np.testing.assert_allclose(frozen, moving, atol=1e-4, rtol=1e-4)


def test_rewrite_after_minimize_raises():
    graph = tf.Graph()
    with graph.as_default():
        model = graphs.build_model(ModelConfig('mlp_small'), is_training=True)
        loss = tf.reduce_mean(model.logits)
        v1.train.AdamOptimizer().minimize(loss)
        with pytest.raises(QuantizeError, match='before the optimizer'):
            quantize.create_training_graph()


def test_rewrite_twice_is_a_no_op_and_default_graph_is_used():
    graph = tf.Graph()
    with graph.as_default():
        graphs.build_model(ModelConfig('mlp_small'), is_training=False)
        quantize.create_eval_graph()  # No graph given: the default graph.
        assert _fake_quants(graph)
        before = [op.name for op in graph.get_operations()]
        quantize.create_eval_graph(graph)  # As TF 1.15: nothing left to quantize.
        assert [op.name for op in graph.get_operations()] == before


def _qat(tmp_path, data, run_name, **kwargs):
    run = RunConfig(model=kwargs.pop('model', ModelConfig('mlp_small')), epochs=2,
                    batch_size=50, quantization=kwargs.pop('quantization', QuantizationConfig()))
    return train_and_eval(run, data, run_name=run_name, log_dir=str(tmp_path / 'logs'),
                          checkpoint_dir=str(tmp_path / 'ckpt'), progress=False,
                          log=lambda line: None, **kwargs)


def test_qat_training_learns_and_checkpoints_ranges(tmp_path, tiny_data):
    result = _qat(tmp_path, tiny_data, 'qat', model=ModelConfig('cnn'))
    assert result.history[-1].test_accuracy >= 0.9
    config = read_run_config(result.checkpoint_dir)
    assert config.quantization == QuantizationConfig()
    reader = tf.train.load_checkpoint(result.checkpoint_path)
    saved_max = reader.get_tensor('cnn/conv1/act_quant/max')
    assert saved_max != 6.0  # The EMA moved it.
    evaluator = Evaluator.for_run(config)
    evaluator.restore(result.checkpoint_path)
    restored = evaluator.session.run(_var(evaluator.graph, 'cnn/conv1/act_quant/max'))
    assert restored == saved_max
    evaluator.close()


def test_resume_from_float(tmp_path, tiny_data):
    float_run = RunConfig(model=ModelConfig('mlp_small'), epochs=1, batch_size=50)
    float_result = train_and_eval(float_run, tiny_data, run_name='float',
                                  log_dir=str(tmp_path / 'logs'),
                                  checkpoint_dir=str(tmp_path / 'ckpt'), progress=False,
                                  log=lambda line: None)
    result = _qat(tmp_path, tiny_data, 'qat', resume_from_float=float_result.checkpoint_dir)
    assert result.global_step == 16  # A fresh global step: 2 epochs of 8 steps.
    assert result.history[0].test_accuracy >= float_result.history[-1].test_accuracy - 0.05
    with pytest.raises(CheckpointError, match='different model'):
        _qat(tmp_path, tiny_data, 'qat2', model=ModelConfig('mlp'),
             resume_from_float=float_result.checkpoint_dir)
    with pytest.raises(CheckpointError, match='no checkpoint at'):
        _qat(tmp_path, tiny_data, 'qat3', resume_from_float=str(tmp_path / 'nope'))


def test_cli_quantization_flags(capsys, tiny_data_dir):
    from graph_models import cli
    assert cli.main(['train', '--quant-delay', '5', '--data-dir', tiny_data_dir]) == 2
    assert '--quant-delay only applies with --quantize' in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli.main(['train', '--quantize', '--weight-bits', '1'])
    assert e.value.code == 2
