"""The shared architecture table and the three Keras styles of each seed model."""

import numpy as np
import pytest

from graph_models.nets import architectures
from graph_models.research import compare
from graph_models.nets import keras_twins
from graph_models.nets import summary_table
from graph_models import data as data_lib
from graph_models.nets import graphs
from graph_models._tf import v1
from graph_models.nets.factory import MODELS, ModelConfig

from conftest import synthetic_dataset

SEEDS = ['mlp_small', 'mlp', 'mlp_deep', 'cnn']


@pytest.mark.parametrize('name', SEEDS)
def test_table_drives_graph_layers_and_counts(name):
    config = ModelConfig(name)
    rows, trainable, _ = summary_table.layer_table(config)
    specs = architectures.layer_specs(name)
    assert [r[0] for r in rows[1:]] == [s.name for s in specs]
    assert trainable == architectures.parameter_count(name)
    assert MODELS[name].input_shape == architectures.INPUT_SHAPES[name]


def test_table_pins_the_published_counts():
    counts = {n: architectures.parameter_count(n) for n in SEEDS}
    assert counts == {'mlp_small': 101_770, 'mlp': 407_050, 'mlp_deep': 669_706,
                      'cnn': 93_322}
    names = [s.name for s in architectures.layer_specs('cnn', dropout_rate=0.5)]
    assert names == ['conv1', 'pool1', 'conv2', 'pool2', 'conv3', 'flatten', 'fc1',
                     'dropout1', 'logits']


def test_changing_the_table_changes_graph_and_keras(monkeypatch):
    monkeypatch.setitem(architectures.MLP_HIDDEN, 'mlp_small', (64,))
    model = keras_twins.build_keras_model('mlp_small', style='sequential')
    assert keras_twins.count_parameters(model) == 784 * 64 + 64 + 64 * 10 + 10
    # nets_factory read the preset at import time; the builder itself reads the table.
    config = ModelConfig('mlp_small', hidden_sizes=(64,))
    assert summary_table.layer_table(config)[1] == keras_twins.count_parameters(model)


@pytest.mark.parametrize('name', SEEDS)
def test_three_styles_same_parameters_and_outputs(name):
    config = ModelConfig(name)
    values = compare.initial_values(config, seed=5, learning_rate=1e-3)
    images = data_lib.to_float(synthetic_dataset(16, 2).train_images, config.input_shape)
    outputs = {}
    for style in keras_twins.KERAS_STYLES:
        model = keras_twins.build_keras_model(name, style=style, dropout_rate=0.3)
        assert keras_twins.count_parameters(model) == architectures.parameter_count(name)
        assert [l.name for l in model.layers if l.weights] == [
            s.name for s in architectures.layer_specs(name) if s.kind in ('conv', 'dense')]
        keras_twins.copy_graph_weights(model, values, scope=name)
        outputs[style] = np.asarray(model(images, training=False))
    graph, tensors = graphs.build_inference_graph(config, batch_size=None)
    with graph.as_default(), v1.Session(graph=graph) as session:
        for var in v1.trainable_variables():
            var.load(values[var.op.name], session)
        expected = session.run(tensors.output, {tensors.inputs: images})
    # The three Keras styles run the same Keras ops on the same weights: equal up to float32
    # summation order (1e-6 on probabilities in [0, 1]). Against the TF1 graph (different
    # kernels, oneDNN on or off) 1e-5, as in test_keras_compare.
    for style in ('sequential', 'subclassed'):
        np.testing.assert_allclose(outputs[style], outputs['functional'], atol=1e-6)
    np.testing.assert_allclose(outputs['functional'], expected, atol=1e-5)
    assert outputs['functional'].shape == (16, 10)


def test_unknown_style_is_a_config_error():
    from graph_models.errors import ConfigError
    with pytest.raises(ConfigError, match='unknown Keras style'):
        keras_twins.build_keras_model('mlp', style='lambda')
