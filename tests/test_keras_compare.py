"""Keras twins (parameters, same start as the graph), summary, and the compare report."""

import json
import os

import numpy as np
import pytest

from graph_models import cli
from graph_models.research import compare
from graph_models.nets import keras_twins
from graph_models.nets import summary_table
from graph_models import data as data_lib
from graph_models.nets import graphs
from graph_models._tf import v1
from graph_models.nets.factory import ModelConfig
from graph_models.training.scoring import softmax_cross_entropy

from conftest import synthetic_dataset, write_idx_folder

TWINS = ['mlp_small', 'mlp', 'mlp_deep', 'cnn']


@pytest.mark.parametrize('name', TWINS)
def test_twin_has_the_graph_parameter_count_and_summary_totals(name, capsys):
    model = keras_twins.build_keras_model(name)
    _, trainable, non_trainable = summary_table.layer_table(ModelConfig(name))
    assert keras_twins.count_parameters(model) == trainable
    assert non_trainable == 0
    model.summary()
    keras_text = capsys.readouterr().out
    assert f'Total params: {trainable:,}' in keras_text
    assert cli.main(['summary', '--model', name]) == 0
    ours = capsys.readouterr().out
    assert f'Total params: {trainable:,}' in ours and f'Trainable params: {trainable:,}' in ours


def test_summary_rows_and_batch_norm_counts():
    rows, trainable, non_trainable = summary_table.layer_table(ModelConfig('cnn', batch_norm=True))
    assert [r[0] for r in rows] == ['Input', 'conv1', 'pool1', 'conv2', 'pool2', 'conv3',
                                    'flatten', 'fc1', 'logits']
    assert rows[1] == ('conv1', '(None, 26, 26, 32)', 288 + 4 * 32)
    assert non_trainable == 2 * (32 + 64 + 64)  # Moving mean and variance.
    assert sum(r[2] for r in rows) == trainable + non_trainable


@pytest.mark.parametrize('name', ['mlp_small', 'cnn'])
def test_twin_starts_from_the_graph_initial_weights(name):
    config = ModelConfig(name)
    values = compare.initial_values(config, seed=3, learning_rate=1e-3)
    model = keras_twins.build_keras_model(name, dropout_rate=0.0)
    assert keras_twins.copy_graph_weights(model, values, scope=name) == (
        2 if name == 'mlp_small' else 5)
    images = data_lib.to_float(synthetic_dataset(8, 2).train_images, config.input_shape)
    graph, tensors = graphs.build_inference_graph(config, batch_size=None)
    with graph.as_default(), v1.Session(graph=graph) as session:
        for var in v1.trainable_variables():
            var.load(values[var.op.name], session)
        expected = session.run(tensors.output, {tensors.inputs: images})
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, atol=1e-5)


def test_compare_quick_writes_complete_reports(tmp_path, capsys):
    data = synthetic_dataset(600, 200)
    data.source = write_idx_folder(tmp_path / 'data', data)
    out = tmp_path / 'cmp'
    assert cli.main(['compare', '--model', 'mlp_small', '--data-dir', data.source, '--quick',
                     '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert '| training examples/s |' in printed
    report = json.loads((out / 'report.json').read_text())
    for side in ('graph', 'keras'):
        assert set(report[side]) == {f.name for f in
                                     compare.dataclasses.fields(compare.SideResult)}
        for key, value in report[side].items():
            if key != 'framework':
                assert value is not None and value > 0, (side, key)
    assert report['graph']['parameters'] == report['keras']['parameters'] == 101_770
    assert report['train_examples'] == 500 and report['epochs'] == 1
    assert 0.0 <= report['agreement_top1'] <= 1.0
    assert '| test accuracy (int8 .tflite) |' in (out / 'report.md').read_text()
    assert (out / 'report.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert os.path.getsize(out / 'report.png') > 10_000


@pytest.mark.slow
def test_resnet50v2_reference_smoke():
    import keras
    model = keras_twins.build_keras_model('resnet50v2')
    keras_twins.compile_like_graph(model)
    data = synthetic_dataset(8, 2)
    images = data_lib.to_float(data.train_images, (28, 28, 1))
    history = model.fit(images, data.train_labels, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history['loss'][0])
    assert model.output_shape == (None, 10)
    keras.backend.clear_session()


def test_softmax_cross_entropy_matches_definition():
    logits = np.array([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]])
    loss, accuracy = softmax_cross_entropy(logits, np.array([0, 2]))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert loss == pytest.approx(-(np.log(p[0, 0]) + np.log(p[1, 2])) / 2)
    assert accuracy == 0.5


def test_fit_timer_times_training_and_validation_apart():
    import keras
    model = keras_twins.build_keras_model('mlp_small', dropout_rate=0.0)
    keras_twins.compile_like_graph(model)
    data = synthetic_dataset(60, 40)
    x = data_lib.to_float(data.train_images, (784,))
    test_x = data_lib.to_float(data.test_images, (784,))
    timer = keras_twins.fit_timer()
    model.fit(x, data.train_labels, batch_size=20, epochs=2, verbose=0, callbacks=[timer],
              validation_data=(test_x, data.test_labels))
    assert len(timer.epoch_seconds) == 2 and all(s > 0 for s in timer.epoch_seconds)
    assert timer.eval_seconds > 0
    plain = keras_twins.fit_timer()
    model.fit(x, data.train_labels, batch_size=20, epochs=3, verbose=0, callbacks=[plain])
    assert len(plain.epoch_seconds) == 3 and plain.eval_seconds == 0.0
    keras.backend.clear_session()


def test_compare_gives_keras_the_graph_per_epoch_evaluation(tmp_path, monkeypatch):
    import keras
    calls = []
    original = keras.Model.fit

    def recording_fit(self, *args, **kwargs):
        calls.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, 'fit', recording_fit)
    data = synthetic_dataset(200, 120)
    data.source = write_idx_folder(tmp_path / 'data', data)
    report = compare.compare('mlp_small', data, str(tmp_path / 'cmp'), epochs=2,
                             log=lambda line: None)
    assert len(calls) == 2  # One fit per epoch (the graph's batch order).
    for kwargs in calls:
        val_x, val_y = kwargs['validation_data']
        assert val_x.shape == (120, 784) and list(val_y) == list(data.test_labels)
        assert kwargs['validation_batch_size'] == 1000
    for side in ('graph', 'keras'):
        assert 0 < report[side]['train_seconds'] < report[side]['wall_seconds']
        assert report[side]['eval_seconds'] > 0
