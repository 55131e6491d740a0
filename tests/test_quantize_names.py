"""Issue 19 item 8: the rewrite's variables carry TF 1.15's names, so QAT checkpoints restore
both ways between graphs TF 1.15's contrib/quantize built and graphs ours built; checkpoints
of our earlier runs (``<s>/min/biased``) still restore."""

import numpy as np
import pytest

from graph_models import quantize
from graph_models.training import restore
from graph_models._tf import tf, v1

# Every variable create_training_graph adds, spelled out as TF 1.15 names them: the quantizer's
# variable scope <s> holds min/max; assign_moving_average(zero_debias=True) opens a variable
# scope named after the variable's full name inside <s>, hence <s>/<s>/min/biased.
CONV_ADDED = [
    'conv/act_quant/conv/act_quant/max/biased',
    'conv/act_quant/conv/act_quant/max/local_step',
    'conv/act_quant/conv/act_quant/min/biased',
    'conv/act_quant/conv/act_quant/min/local_step',
    'conv/act_quant/max',
    'conv/act_quant/min',
    'conv/weights_quant/max',
    'conv/weights_quant/min',
]
MLP_ADDED = [
    'fc1/act_quant/fc1/act_quant/max/biased',
    'fc1/act_quant/fc1/act_quant/max/local_step',
    'fc1/act_quant/fc1/act_quant/min/biased',
    'fc1/act_quant/fc1/act_quant/min/local_step',
    'fc1/act_quant/max',
    'fc1/act_quant/min',
    'fc1/weights_quant/max',
    'fc1/weights_quant/min',
    'fc2/act_quant/fc2/act_quant/max/biased',
    'fc2/act_quant/fc2/act_quant/max/local_step',
    'fc2/act_quant/fc2/act_quant/min/biased',
    'fc2/act_quant/fc2/act_quant/min/local_step',
    'fc2/act_quant/max',
    'fc2/act_quant/min',
    'fc2/weights_quant/max',
    'fc2/weights_quant/min',
]


def _conv_graph():
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 8, 8, 3], name='x')
        with v1.variable_scope('conv'):
            w = v1.get_variable('weights', [3, 3, 3, 4])
            b = v1.get_variable('biases', [4], initializer=v1.zeros_initializer())
            out = tf.nn.relu6(tf.nn.bias_add(tf.nn.conv2d(x, w, 1, 'SAME'), b))
    return graph, x, out, ['conv/biases', 'conv/weights']


def _mlp_graph():
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 12], name='x')
        net = x
        for name, units in (('fc1', 8), ('fc2', 4)):
            with v1.variable_scope(name):
                w = v1.get_variable('weights', [net.shape[-1], units])
                b = v1.get_variable('biases', [units], initializer=v1.zeros_initializer())
                net = tf.nn.bias_add(tf.matmul(net, w), b)
                if name == 'fc1':
                    net = tf.nn.relu(net)
        out = tf.nn.softmax(net, name='probs')
    return graph, x, out, ['fc1/biases', 'fc1/weights', 'fc2/biases', 'fc2/weights']


GRAPHS = {'conv_relu6': (_conv_graph, CONV_ADDED), 'mlp': (_mlp_graph, MLP_ADDED)}


def _rewritten(name):
    build, added = GRAPHS[name]
    graph, x, out, model_vars = build()
    quantize.create_training_graph(graph)
    return graph, x, out, model_vars, added


def _names(graph):
    with graph.as_default():
        return sorted(v.op.name for v in v1.global_variables())


@pytest.mark.parametrize('name', GRAPHS)
def test_training_rewrite_adds_tf115_variable_names(name):
    graph, _, _, model_vars, added = _rewritten(name)
    assert _names(graph) == sorted(model_vars + added)


def _run_once(graph, x, session):
    """Runs every fake quant once (updating the ranges and their zero-debias state)."""
    shape = [2] + x.shape.as_list()[1:]
    quants = [op.outputs[0] for op in graph.get_operations()
              if op.type == 'FakeQuantWithMinMaxVars']
    session.run(quants, {x: np.random.default_rng(0).normal(0, 1, shape).astype(np.float32)})


def _tf115_checkpoint(path, names, values):
    """A checkpoint written by plain variables named exactly as TF 1.15 names them."""
    graph = tf.Graph()
    with graph.as_default():
        variables = [v1.Variable(values[n], name=n) for n in names]
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            return v1.train.Saver(variables).save(session, str(path))


@pytest.mark.parametrize('name', GRAPHS)
def test_tf115_named_checkpoint_restores_both_ways(tmp_path, name):
    graph, x, out, model_vars, added = _rewritten(name)
    with graph.as_default():
        variables = {v.op.name: v for v in v1.global_variables()}
        saver = v1.train.Saver()
    rng = np.random.default_rng(1)
    values = {n: rng.normal(0, 1, variables[n].shape.as_list()).astype(np.float32)
              for n in variables}
    # TF 1.15 -> ours.
    prefix = _tf115_checkpoint(tmp_path / 'tf115' / 'model.ckpt', model_vars + added, values)
    with v1.Session(graph=graph) as session:
        saver.restore(session, prefix)
        for n, var in variables.items():
            np.testing.assert_array_equal(session.run(var), values[n])
        _run_once(graph, x, session)
        ours = saver.save(session, str(tmp_path / 'ours' / 'model.ckpt'))
        trained = {n: session.run(var) for n, var in variables.items()}
    assert trained[added[1]] == values[added[1]] + 1  # A local_step counted the run.
    # Ours -> TF 1.15: a graph of plain variables with TF 1.15's names.
    plain = tf.Graph()
    with plain.as_default():
        plain_vars = [v1.Variable(np.zeros_like(values[n]), name=n) for n in model_vars + added]
        with v1.Session() as session:
            v1.train.Saver(plain_vars).restore(session, ours)
            for var in plain_vars:
                np.testing.assert_array_equal(session.run(var), trained[var.op.name])


def test_checkpoint_of_an_earlier_run_restores_old_range_state_names(tmp_path):
    """Our runs before the rename saved ``<s>/min/biased``; the one restore path maps them."""
    graph, x, out, model_vars, added = _rewritten('conv_relu6')
    with graph.as_default():
        variables = {v.op.name: v for v in v1.global_variables()}
    old = {n: n.replace('conv/act_quant/conv/act_quant/', 'conv/act_quant/') for n in variables}
    assert old['conv/act_quant/conv/act_quant/min/biased'] == 'conv/act_quant/min/biased'
    rng = np.random.default_rng(2)
    values = {old[n]: rng.normal(0, 1, v.shape.as_list()).astype(np.float32)
              for n, v in variables.items()}
    prefix = _tf115_checkpoint(tmp_path / 'old' / 'model.ckpt', sorted(values), values)
    graph.finalize()  # As a resumed training's graph is: the restore may add no ops.
    with v1.Session(graph=graph) as session:
        with graph.as_default():
            restore.restore_variables(session, prefix, list(variables.values()))
        for n, var in variables.items():
            np.testing.assert_array_equal(session.run(var), values[old[n]])


def test_symmetric_leaves_activation_add_mul_quant_asymmetric():
    """As TF 1.15: ``symmetric`` is not passed to ``_QuantizeActivationLayers``."""
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 4], name='x')
        branches = []
        for name in ('a', 'b'):
            with v1.variable_scope(name):
                w = v1.get_variable('weights', initializer=tf.eye(4))
                branches.append(tf.nn.relu(tf.matmul(x, w)))
        tf.multiply(branches[0], branches[1], name='gate')
    quantize.experimental_create_training_graph(graph, symmetric=True)
    with graph.as_default(), v1.Session() as session:
        session.run(v1.global_variables_initializer())
        gate = graph.get_tensor_by_name('gate/activation_Mul_quant/FakeQuantWithMinMaxVars:0')
        session.run(gate, {x: np.full([1, 4], 2.0, np.float32)})
        ranges = {v.op.name: v for v in v1.global_variables()}
        low, high = session.run([ranges['gate/activation_Mul_quant/min'],
                                 ranges['gate/activation_Mul_quant/max']])
        a_low, a_high = session.run([ranges['a/act_quant/min'], ranges['a/act_quant/max']])
    assert (low, high) == (0.0, pytest.approx(4.0, rel=1e-3))  # Asymmetric, widened to 0.
    assert a_low < 0 and a_high == pytest.approx(2.0, rel=1e-3)  # The layers: symmetric.


def _rename_checkpoint(prefix, rename):
    """Rewrites a checkpoint in place with every variable renamed by ``rename``."""
    reader = tf.train.load_checkpoint(prefix)
    names = sorted(reader.get_variable_to_shape_map())
    graph = tf.Graph()
    with graph.as_default():
        variables = [v1.Variable(reader.get_tensor(n), name=rename(n)) for n in names]
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            v1.train.Saver(variables).save(session, prefix, write_meta_graph=False)
    return {rename(n): reader.get_tensor(n) for n in names}


@pytest.mark.slow
def test_run_with_old_range_state_names_resumes_evaluates_and_exports(tmp_path, tiny_data):
    """A QAT run written before the rename (``<s>/min/biased``) resumes, evaluates and
    exports; its next checkpoint carries TF 1.15's names."""
    import re
    from graph_models import export
    from graph_models.training.scoring import Evaluator
    from graph_models.nets.factory import ModelConfig
    from graph_models.quantize import QuantizationConfig
    from graph_models.training.run_config import RunConfig, read_run_config
    from graph_models.training.train import train_and_eval
    kwargs = dict(run_name='old', log_dir=str(tmp_path / 'logs'),
                  checkpoint_dir=str(tmp_path / 'ckpt'), progress=False, log=lambda line: None)

    def run(epochs):
        return RunConfig(dataset=tiny_data.name, model=ModelConfig('mlp_small'), epochs=epochs,
                         batch_size=50, quantization=QuantizationConfig())

    first = train_and_eval(run(1), tiny_data, **kwargs)
    old = _rename_checkpoint(first.checkpoint_path, lambda n: re.sub(
        r'^(.+)/\1/(min|max)/(biased|local_step)$', r'\1/\2/\3', n))
    assert 'mlp_small/fc1/act_quant/min/biased' in old
    assert not [n for n in old if '/act_quant/mlp_small/' in n]
    evaluator = Evaluator.for_run(read_run_config(first.checkpoint_dir))
    assert evaluator.restore(first.checkpoint_path) == 8
    evaluator.close()
    record = export.export_checkpoint(first.checkpoint_path, 'int8')
    assert record.verified
    resumed = train_and_eval(run(2), tiny_data, resume=True, **kwargs)
    assert resumed.global_step == 16
    saved = tf.train.load_checkpoint(resumed.checkpoint_path).get_variable_to_shape_map()
    step = 'mlp_small/fc1/act_quant/mlp_small/fc1/act_quant/max/local_step'
    assert tf.train.load_checkpoint(resumed.checkpoint_path).get_tensor(step) == \
        old['mlp_small/fc1/act_quant/max/local_step'] + 8
    assert 'mlp_small/fc1/act_quant/min/biased' not in saved
