"""Batch-norm folding on user graphs: Conv2D, depthwise and MatMul; fused and unfused; an
Identity between layer and batch norm; towers; TF 1.15's correction and freeze; both variable
kinds. Numerics compare the folded graph with the same graph unfolded."""

import numpy as np
import pytest

from graph_models import quantize
from graph_models._tf import tf, v1

EPS = 1e-3
DECAY = 0.9
RNG = np.random.default_rng(0)
X = RNG.uniform(0, 1, (4, 6, 6, 3)).astype(np.float32)


def _const_var(name, value, kind, trainable=True):
    return v1.get_variable(name, initializer=tf.constant(value), trainable=trainable,
                           use_resource=(kind == 'resource'))


def _values(channels, layer):
    rng = np.random.default_rng(1)
    shape = {'conv': [3, 3, 3, channels], 'depthwise': [3, 3, 3, 1],
             'matmul': [108, channels]}[layer]
    return dict(weights=rng.normal(0, 0.3, shape).astype(np.float32),
                gamma=rng.uniform(0.5, 2, channels).astype(np.float32),
                beta=rng.normal(0, 0.2, channels).astype(np.float32),
                moving_mean=rng.normal(0, 0.3, channels).astype(np.float32),
                moving_variance=rng.uniform(0.5, 2, channels).astype(np.float32))


def _build(kind, layer='conv', fused=True, identity=False, tower=False, is_training=True):
    """``layer`` -> [Identity] -> batch norm -> Relu, slim style (moving-average updates as
    ``moving -= (moving - batch_stat) * (1 - decay)`` in UPDATE_OPS)."""
    channels = 3
    values = _values(channels, layer)
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, X.shape, name='Input')
        with v1.variable_scope('net/block'):
            w = _const_var('weights', values['weights'], kind)
            with v1.variable_scope('BatchNorm'):
                gamma = _const_var('gamma', values['gamma'], kind)
                beta = _const_var('beta', values['beta'], kind)
                mm = _const_var('moving_mean', values['moving_mean'], kind, False)
                mv = _const_var('moving_variance', values['moving_variance'], kind, False)
        # A training tower: ops under tower_0/, variables under net/.
        with graph.name_scope(('tower_0/' if tower else '') + 'net/block/'):
            if layer == 'conv':
                net = tf.nn.conv2d(x, w, 1, 'SAME')
            elif layer == 'depthwise':
                net = tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], 'SAME')
            else:
                net = tf.matmul(tf.reshape(x, [4, 108]), w)
            if identity:
                net = tf.identity(net)
            with tf.name_scope('BatchNorm'):
                if fused:
                    bn_in = tf.reshape(net, [-1, 1, 1, channels]) if layer == 'matmul' else net
                    if is_training:
                        y, mean, var = v1.nn.fused_batch_norm(bn_in, gamma, beta, epsilon=EPS,
                                                              is_training=True)
                    else:
                        y, mean, var = v1.nn.fused_batch_norm(
                            bn_in, gamma, beta, mean=mm, variance=mv, epsilon=EPS,
                            is_training=False)
                    if layer == 'matmul':
                        y = tf.reshape(y, [-1, channels])
                else:
                    axes = [0] if layer == 'matmul' else [0, 1, 2]
                    mean, var = tf.nn.moments(net, axes) if is_training else (mm, mv)
                    y = tf.nn.batch_normalization(net, mean, var, beta, gamma, EPS)
                if is_training:
                    for moving, stat in ((mm, mean), (mv, var)):
                        v1.add_to_collection(v1.GraphKeys.UPDATE_OPS, v1.assign_sub(
                            moving, (moving - stat) * (1 - DECAY)))
            out = tf.nn.relu(y)
        loss = tf.reduce_sum(out * out)
    return graph, x, out, loss, w, (mm, mv)


def _run(graph, fetches, x, step=None):
    with graph.as_default(), v1.Session() as session:
        session.run(v1.global_variables_initializer())
        if step is not None:
            {v.op.name: v for v in v1.global_variables()}[
                'fake_quantization_step'].load(step, session)
        return session.run(fetches, {x: X})


CASES = [dict(layer=layer, fused=fused) for layer in ('conv', 'depthwise', 'matmul')
         for fused in (True, False)]
IDS = [f"{c['layer']}-{'fused' if c['fused'] else 'unfused'}" for c in CASES]


@pytest.mark.parametrize('kind', ['reference', 'resource'])
@pytest.mark.parametrize('case', CASES, ids=IDS)
def test_eval_fold_matches_batch_norm(kind, case):
    graph, x, out, _, _, _ = _build(kind, is_training=False, **case)
    before = _run(graph, out, x)
    assert len(quantize.fold_batch_norms(graph, is_training=False)) == 1
    np.testing.assert_allclose(_run(graph, out, x), before, rtol=1e-5, atol=1e-5)
    quantize.create_eval_graph(graph)  # Nothing left to fold: quantizes the folded layer.
    names = {op.name for op in graph.get_operations()}
    layer_name = {'conv': 'Conv2D', 'depthwise': 'depthwise', 'matmul': 'MatMul'}[case['layer']]
    assert f'net/block/{layer_name}_Fold' in names
    assert {'net/block/mul_fold', 'net/block/add_fold'} <= names
    wq = graph.get_operation_by_name('net/block/weights_quant/FakeQuantWithMinMaxVars')
    assert wq.inputs[0].op.name == 'net/block/mul_fold'
    assert [c.name for c in wq.outputs[0].consumers()] == [f'net/block/{layer_name}_Fold']
    act = graph.get_operation_by_name('net/block/act_quant/FakeQuantWithMinMaxVars')
    assert act.inputs[0].op.type == 'Relu'
    assert act.inputs[0].op.inputs[0].op.name == 'net/block/add_fold'
    forward = v1.graph_util.extract_sub_graph(graph.as_graph_def(), [act.name])
    assert not {n.op for n in forward.node} & {'FusedBatchNormV3', 'FusedBatchNorm'}
    # Quantized on the untrained [0, 6] range: multiples of 6 / 255.
    levels = _run(graph, act.outputs[0], x) / (6.0 / 255)
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-3)


@pytest.mark.parametrize('kind', ['reference', 'resource'])
@pytest.mark.parametrize('case', CASES + [dict(layer='conv', fused=True, identity=True),
                                          dict(layer='conv', fused=True, tower=True),
                                          dict(layer='conv', fused=False, tower=True)],
                         ids=IDS + ['identity', 'tower-fused', 'tower-unfused'])
def test_training_fold_follows_tf115_and_freezes(kind, case):
    graph, x, out, loss, w, (mm, mv) = _build(kind, **case)
    with graph.as_default():
        grad_unfolded = tf.gradients(loss, w)[0]
    before, grad_before = _run(graph, [out, grad_unfolded], x)
    with graph.as_default():
        folded = quantize.fold_batch_norms(graph, is_training=True, freeze_bn_delay=5)
    assert len(folded) == 1
    prefix = ('tower_0/' if case.get('tower') else '') + 'net/block/'
    names = {op.name for op in graph.get_operations()}
    for name in ('correction_mult', 'mul_fold', 'post_conv_mul', 'correction_add', 'add_fold',
                 'batch_norm_correction/use_moving_average',
                 'batch_norm_correction/freeze_moving_mean',
                 'batch_norm_correction/freeze_moving_var'):
        assert prefix + name in names, name
    with graph.as_default():
        grad_after = tf.gradients(loss, w)[0]
        updates = v1.get_collection(v1.GraphKeys.UPDATE_OPS)
    # Before the freeze: batch norm with batch statistics, same value and same gradient.
    after, grad, _ = _run(graph, [out, grad_after, updates], x, step=0)
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(grad, grad_before, rtol=2e-3, atol=2e-3 * np.abs(grad).max())
    # From the freeze on: moving statistics, which no longer move.
    eval_graph, ex, eout, *_ = _build(kind, is_training=False, **case)
    moving = _run(eval_graph, eout, ex)
    assert not np.allclose(moving, before, atol=1e-3)
    with graph.as_default(), v1.Session() as session:
        session.run(v1.global_variables_initializer())
        {v.op.name: v for v in v1.global_variables()}['fake_quantization_step'].load(4, session)
        frozen, stats_before = session.run([out, [mm, mv]], {x: X})
        session.run(updates, {x: X})
        np.testing.assert_allclose(session.run([mm, mv]), stats_before, rtol=0, atol=0)
    np.testing.assert_allclose(frozen, moving, rtol=1e-4, atol=1e-4)
    # Before the freeze the updates still move the statistics.
    with graph.as_default(), v1.Session() as session:
        session.run(v1.global_variables_initializer())
        start = session.run(mm)
        session.run(updates, {x: X})
        assert not np.allclose(session.run(mm), start)


def test_training_rewrite_quantizes_the_folded_weights():
    graph, x, out, loss, *_ = _build('resource')
    quantize.create_training_graph(graph)
    wq = graph.get_operation_by_name('net/block/weights_quant/FakeQuantWithMinMaxVars')
    assert wq.inputs[0].op.name == 'net/block/mul_fold'
    assert [c.name for c in wq.outputs[0].consumers()] == ['net/block/Conv2D_Fold']
    # The unfolded convolution only feeds the batch statistics; it is not quantized.
    conv = graph.get_operation_by_name('net/block/Conv2D')
    assert conv.inputs[1].op.type == 'ReadVariableOp'
    assert len(_run(graph, out, x)) == 4
