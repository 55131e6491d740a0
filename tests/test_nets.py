"""Every registered model, in a fresh graph: tensor names, variables, shapes, parameter counts.

Graphs are built inside explicit ``tf.Graph()`` contexts, which is graph mode whatever the
process-wide eager setting (the Keras side of the project needs eager left on).
"""

import pytest

from graph_models.nets import graphs
from graph_models.nets import factory
from graph_models._tf import tf, v1
from graph_models.errors import ConfigError
from graph_models.nets.factory import MODELS, ModelConfig

# The full set of variable names and shapes of each model: these are public (checkpoints).
EXPECTED_VARIABLES = {
    'mlp': {'mlp/fc1/weights': [784, 512], 'mlp/fc1/biases': [512],
            'mlp/logits/weights': [512, 10], 'mlp/logits/biases': [10]},
    'mlp_small': {'mlp_small/fc1/weights': [784, 128], 'mlp_small/fc1/biases': [128],
                  'mlp_small/logits/weights': [128, 10], 'mlp_small/logits/biases': [10]},
    'mlp_deep': {'mlp_deep/fc1/weights': [784, 512], 'mlp_deep/fc1/biases': [512],
                 'mlp_deep/fc2/weights': [512, 512], 'mlp_deep/fc2/biases': [512],
                 'mlp_deep/logits/weights': [512, 10], 'mlp_deep/logits/biases': [10]},
    'cnn': {'cnn/conv1/weights': [3, 3, 1, 32], 'cnn/conv1/biases': [32],
            'cnn/conv2/weights': [3, 3, 32, 64], 'cnn/conv2/biases': [64],
            'cnn/conv3/weights': [3, 3, 64, 64], 'cnn/conv3/biases': [64],
            'cnn/fc1/weights': [576, 64], 'cnn/fc1/biases': [64],
            'cnn/logits/weights': [64, 10], 'cnn/logits/biases': [10]},
}
EXPECTED_PARAMETERS = {'mlp': 407_050, 'mlp_small': 101_770, 'mlp_deep': 669_706,
                       'cnn': 93_322}
EXPECTED_END_POINTS = {
    'mlp': {'fc1': [None, 512], 'logits': [None, 10]},
    'mlp_small': {'fc1': [None, 128], 'logits': [None, 10]},
    'mlp_deep': {'fc1': [None, 512], 'fc2': [None, 512], 'logits': [None, 10]},
    'cnn': {'conv1': [None, 26, 26, 32], 'pool1': [None, 13, 13, 32],
            'conv2': [None, 11, 11, 64], 'pool2': [None, 5, 5, 64],
            'conv3': [None, 3, 3, 64], 'flatten': [None, 576], 'fc1': [None, 64],
            'logits': [None, 10]},
}


def _forward_op_types(graph, output):
    """Op types of the subgraph that ``output`` depends on."""
    sub = v1.graph_util.extract_sub_graph(graph.as_graph_def(), [output])
    return {node.op for node in sub.node}


def test_registry_is_what_the_docs_say():
    assert set(MODELS) == set(EXPECTED_VARIABLES)


@pytest.mark.parametrize('name', sorted(MODELS))
def test_model_names_shapes_and_parameters(name):
    config = ModelConfig(name)
    with tf.Graph().as_default() as graph:
        model = graphs.build_model(config, is_training=True)
        assert model.inputs.name == 'Input:0'
        assert model.inputs.op.type == 'Placeholder'
        assert model.inputs.shape.as_list() == [None, *config.input_shape]
        assert model.logits.name == 'Logits:0'
        assert model.output.name == 'Output:0' and model.output.op.type == 'Softmax'
        assert model.output.shape.as_list() == [None, 10]
        variables = {v.op.name: v.shape.as_list() for v in v1.global_variables()}
        assert variables == EXPECTED_VARIABLES[name]
        assert {v.op.name for v in v1.trainable_variables()} == set(variables)
        assert factory.count_parameters(v1.trainable_variables()) == \
            EXPECTED_PARAMETERS[name]
        assert {k: t.shape.as_list() for k, t in model.end_points.items()} == \
            EXPECTED_END_POINTS[name]
        ops = {op.name for op in graph.get_operations()}
        for layer in EXPECTED_END_POINTS[name]:
            if layer.startswith(('fc', 'logits')):
                assert f'{name}/{layer}/MatMul' in ops and f'{name}/{layer}/BiasAdd' in ops
            if layer.startswith('conv'):
                assert f'{name}/{layer}/Conv2D' in ops and f'{name}/{layer}/Relu' in ops


@pytest.mark.parametrize('name', sorted(MODELS))
def test_inference_graph_fixed_batch_and_no_dropout(name):
    config = ModelConfig(name, dropout_rate=0.5)
    graph, model = graphs.build_inference_graph(config, batch_size=1)
    assert model.inputs.shape.as_list() == [1, *config.input_shape]
    assert model.output.shape.as_list() == [1, 10]
    # What the output depends on (initializers aside) has no random op at all.
    assert not _forward_op_types(graph, 'Output') & {'RandomUniform', 'RandomStandardNormal'}
    assert not [op for op in graph.get_operations() if 'dropout' in op.name.lower()]
    # The training graph of the same config does have dropout on its forward path.
    train_graph, _ = graphs.build_training_graph(config, learning_rate=1e-3, seed=0)
    assert 'RandomUniform' in _forward_op_types(train_graph, 'Output')


def test_training_graph_names():
    graph, t = graphs.build_training_graph(ModelConfig('mlp'), learning_rate=1e-3, seed=0)
    for name in ('Input:0', 'Labels:0', 'Logits:0', 'Output:0', 'loss:0', 'accuracy:0',
                 'learning_rate:0', 'global_step:0'):
        assert graph.get_tensor_by_name(name) is not None
    assert t.labels.dtype == tf.int64 and t.labels.shape.as_list() == [None]
    assert t.train_op.name == 'train_op'
    assert graphs.TENSOR_NAMES == {'input': 'Input', 'labels': 'Labels', 'logits': 'Logits',
                                   'output': 'Output'}


def test_cnn_batch_norm_variables_and_updates():
    config = ModelConfig('cnn', batch_norm=True)
    with tf.Graph().as_default():
        graphs.build_model(config, is_training=True)
        names = {v.op.name for v in v1.global_variables()}
        for layer in ('conv1', 'conv2', 'conv3'):
            assert f'cnn/{layer}/biases' not in names
            for v in ('gamma', 'beta', 'moving_mean', 'moving_variance'):
                assert f'cnn/{layer}/BatchNorm/{v}' in names
        assert len(v1.get_collection(v1.GraphKeys.UPDATE_OPS)) == 6
        trainable = {v.op.name for v in v1.trainable_variables()}
        assert 'cnn/conv1/BatchNorm/moving_mean' not in trainable
    with tf.Graph().as_default():
        graphs.build_model(config, is_training=False)
        assert not v1.get_collection(v1.GraphKeys.UPDATE_OPS)


def test_custom_hidden_sizes():
    config = ModelConfig('mlp', hidden_sizes=[256, 64])
    with tf.Graph().as_default():
        graphs.build_model(config, is_training=False)
        assert factory.count_parameters(v1.trainable_variables()) == \
            784 * 256 + 256 + 256 * 64 + 64 + 64 * 10 + 10


@pytest.mark.parametrize('kwargs,message', [
    (dict(name='resnet'), 'unknown model'),
    (dict(name='cnn', hidden_sizes=[10]), 'hidden sizes apply to the MLP'),
    (dict(name='mlp', batch_norm=True), 'batch norm applies to the CNN'),
    (dict(name='mlp', dropout_rate=1.0), r'dropout rate must be in \[0, 1\)'),
    (dict(name='mlp', hidden_sizes=[0]), 'positive'),
])
def test_bad_model_configs(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**kwargs)


def test_model_config_round_trip():
    config = ModelConfig('mlp_deep', dropout_rate=0.2)
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert config.hidden_sizes == (512, 512)
