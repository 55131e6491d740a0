"""Freezing and TFLite export: round trips, converter paths, integer models, predict, inspect."""

import os

import numpy as np
import pytest

from freeze import tflite
from graph_models import export as export
from graph_models import export as freeze_graph
from graph_models import cli
from graph_models.litert import evaluate
from graph_models.nets import graphs
from graph_models import data as data_lib
from graph_models._tf import tf, v1
from graph_models.errors import CheckpointError, ConfigError
from graph_models.litert.model_file import edgetpu_blockers, read_model_info
from graph_models.nets.factory import ModelConfig
from graph_models.quantize import QuantizationConfig
from graph_models.training.run_config import RunConfig, read_run_config
from graph_models.training.train import train_and_eval

from conftest import synthetic_dataset, write_idx_folder


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Tiny float and QAT checkpoints of the MLP and the CNN, on synthetic data."""
    root = tmp_path_factory.mktemp('export')
    data = synthetic_dataset(400, 100)
    data_dir = write_idx_folder(root / 'data', data)
    data.source = data_dir
    runs = {}
    for name, config, quantization in (
            ('mlp', ModelConfig('mlp_small'), None),
            ('mlp_qat', ModelConfig('mlp_small'), QuantizationConfig()),
            ('cnn', ModelConfig('cnn'), None),
            ('cnn_qat', ModelConfig('cnn', batch_norm=True), QuantizationConfig())):
        run = RunConfig(model=config, epochs=2, batch_size=50, quantization=quantization,
                        data_source=data_dir)
        runs[name] = train_and_eval(run, data, run_name=name, log_dir=str(root / 'logs'),
                                    checkpoint_dir=str(root / 'ckpt'), progress=False,
                                    log=lambda line: None).checkpoint_dir
    return runs, data, root


def _images(data, shape, n=16):
    return data_lib.to_float(data.test_images[:n], shape)


def test_freeze_session_round_trip_and_bad_name(trained):
    runs, data, _ = trained
    session, model = freeze_graph.build_restored_inference_graph(
        RunConfig(model=ModelConfig('mlp_small')), tf.train.latest_checkpoint(runs['mlp']),
        batch_size=None)
    images = _images(data, (784,))
    expected = session.run(model.output, {model.inputs: images})
    graph_def = freeze_graph.freeze_session(session, output_names=['Output:0'])
    types = {node.op for node in graph_def.node}
    assert not {t for t in types if 'Variable' in t} and 'Const' in types
    got = evaluate.frozen_graph_probabilities(graph_def, images)
    # Same weights, but the frozen graph is optimized anew (constant folding, oneDNN fusing
    # MatMul+BiasAdd or not), so float32 sums over 784 inputs may be reordered: about
    # sqrt(784) x 6e-8 relative on logits of size ~10, i.e. ~1e-5 absolute at most on the
    # probabilities (softmax is 1-Lipschitz). AVX-512 oneDNN measured 2.4e-7.
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()
    with pytest.raises(freeze_graph.FreezeError) as e:
        freeze_graph.freeze_session(session, output_names=['Ouptut'])
    assert "no op named 'Ouptut'" in str(e.value) and 'Output' in str(e.value)
    assert 'Input' in str(e.value)
    session.close()


@pytest.mark.parametrize('name', ['mlp', 'mlp_qat', 'cnn', 'cnn_qat'])
def test_freeze_checkpoint_is_clean(trained, name):
    runs, _, _ = trained
    frozen = freeze_graph.freeze_checkpoint(runs[name])
    assert freeze_graph.stateful_ops(frozen.graph_def) == []
    names = {node.name for node in frozen.graph_def.node}
    assert {'Input', 'Output', 'Logits'} <= names
    assert frozen.quantized == name.endswith('qat')
    inputs = [n for n in frozen.graph_def.node if n.name == 'Input'][0]
    assert inputs.attr['shape'].shape.dim[0].size == 1


def test_float_tflite_matches_the_graph_on_all_three_paths(trained, tmp_path):
    runs, data, _ = trained
    for name, shape in (('mlp', (784,)), ('cnn', (28, 28, 1))):
        images = _images(data, shape)
        frozen = freeze_graph.freeze_checkpoint(runs[name])
        expected = evaluate.frozen_graph_probabilities(frozen.graph_def, images)
        record = export.export_checkpoint(runs[name], 'float')  # from_session
        pb = str(tmp_path / f'{name}.pb')
        freeze_graph.write_graph_def(frozen.graph_def, pb)
        from_pb = tflite.convert_frozen_graph(pb, ['Input'], ['Output'])
        graph = tf.Graph()
        with graph.as_default():
            v1.import_graph_def(frozen.graph_def, name='')
        toco = tflite.toco_convert(frozen.graph_def, [graph.get_tensor_by_name('Input:0')],
                                   [graph.get_tensor_by_name('Output:0')])
        for model in (record.model, from_pb, toco):
            lite = evaluate.LiteModel(model)
            assert lite.input['name'] == 'Input' and lite.output['name'] == 'Output'
            np.testing.assert_allclose(lite.probabilities(images), expected, atol=1e-5)
        assert 'FAKE_QUANT' not in read_model_info(record.model).ops


def _converted_graph(checkpoint, record):
    """The frozen TF graph exactly as the converter saw it (symmetrized ranges included)."""
    run = read_run_config(checkpoint)
    session, _ = freeze_graph.build_restored_inference_graph(
        run, tf.train.latest_checkpoint(checkpoint), quantized=record.graph == 'qat_eval')
    if record.symmetrized_weights:
        layers = {'mlp_small': 2, 'cnn': 5}[run.model.name]  # One weight range per layer.
        assert export.symmetrize_weight_ranges(session) == layers
    graph_def = freeze_graph.freeze_session(session)
    session.close()
    return graph_def


@pytest.mark.parametrize('name,mode,shape', [
    ('mlp_qat', 'int8', [1, 784]), ('mlp_qat', 'uint8', [1, 784]),
    ('cnn_qat', 'int8', [1, 28, 28, 1]), ('cnn_qat', 'uint8', [1, 28, 28, 1]),
    ('mlp', 'int8', [1, 784]), ('cnn', 'int8', [1, 28, 28, 1])])
def test_full_integer_models(trained, name, mode, shape):
    runs, data, _ = trained
    record = export.export_checkpoint(runs[name], mode)
    assert record.quantization == ('qat' if name.endswith('qat') else 'post_training')
    assert record.symmetrized_weights == (name.endswith('qat') and mode == 'int8')
    info = read_model_info(record.model)
    assert info.inputs[0].dtype == mode.upper() and info.outputs[0].dtype == mode.upper()
    assert info.inputs[0].shape == shape and info.inputs[0].shape_signature == shape
    assert info.inputs[0].name == 'Input' and info.outputs[0].name == 'Output'
    assert set(info.dtype_counts()) <= {'INT8', 'UINT8', 'INT32'}
    assert edgetpu_blockers(info) == []  # Includes: int8 weights have zero point 0.
    # The integer model computes what its TF graph computes (QAT eval graph, or float graph).
    lite = evaluate.LiteModel(record.model)
    images = _images(data, tuple(shape[1:]), n=100)
    reference = evaluate.frozen_graph_probabilities(_converted_graph(runs[name], record), images)
    result = evaluate.score(lite.probabilities(images), data.test_labels[:100], reference)
    assert result.agreement >= 0.95
    assert result.mean_abs_diff < 0.05


def test_dynamic_range_model(trained):
    runs, _, _ = trained
    info = read_model_info(export.export_checkpoint(runs['mlp'], 'dynamic').model)
    assert info.inputs[0].dtype == 'FLOAT32'
    assert 'INT8' in info.dtype_counts()  # The weights.


def test_export_errors_leave_no_file(trained, tmp_path, capsys):
    runs, _, root = trained
    with pytest.raises(CheckpointError, match='holds no checkpoint'):
        export.export_checkpoint(str(tmp_path), 'float')
    with pytest.raises(ConfigError, match='uint8 export needs a quantization-aware'):
        export.export_checkpoint(runs['mlp'], 'uint8')
    # A corrupt checkpoint: its data file cut short.
    broken = tmp_path / 'broken'
    broken.mkdir()
    for f in os.listdir(runs['mlp']):
        content = open(os.path.join(runs['mlp'], f), 'rb').read()
        (broken / f).write_bytes(content[:100] if '.data-' in f else content)
    output = tmp_path / 'out' / 'model.tflite'
    status = cli.main(['export', str(broken), '-o', str(output)])
    assert status == 1
    err = capsys.readouterr().err
    assert err.startswith('graph-models export: error:') and err.count('\n') == 1
    assert not output.exists()
    assert not (tmp_path / 'out').exists() or not os.listdir(tmp_path / 'out')
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    assert cli.main(['export', runs['mlp'], '-o', str(blocker / 'model.tflite')]) == 1
    assert 'cannot create folder' in capsys.readouterr().err


def test_cli_freeze_export_eval_inspect(trained, tmp_path, capsys):
    runs, _, root = trained
    data_dir = str(root / 'data')
    pb = tmp_path / 'frozen.pb'
    assert cli.main(['freeze', runs['cnn_qat'], '-o', str(pb), '--pbtxt']) == 0
    assert pb.is_file() and (tmp_path / 'frozen.pbtxt').is_file()
    model = tmp_path / 'model_int8.tflite'
    assert cli.main(['export', runs['cnn_qat'], '--quantize', 'int8', '-o', str(model)]) == 0
    assert (tmp_path / 'model_int8.tflite.json').is_file()
    capsys.readouterr()
    assert cli.main(['eval', str(model), '--data-dir', data_dir, '--latency']) == 0
    out = capsys.readouterr().out
    assert 'accuracy' in out and 'agreement with the TF graph' in out and 'latency' in out
    assert cli.main(['eval', str(pb), '--data-dir', data_dir]) == 0
    assert cli.main(['eval', runs['cnn_qat'], '--data-dir', data_dir]) == 0
    assert cli.main(['inspect', str(model), '--edgetpu']) == 0
    out = capsys.readouterr().out
    assert 'Input: shape [1, 28, 28, 1] int8' in out and 'Edge TPU: ready' in out
    float_model = tmp_path / 'float.tflite'
    assert cli.main(['export', runs['cnn'], '-o', str(float_model)]) == 0
    capsys.readouterr()
    assert cli.main(['inspect', str(float_model), '--edgetpu']) == 1
    assert 'is FLOAT32, not 8-bit quantized' in capsys.readouterr().out
    # A frozen .pb from elsewhere with a dynamic batch: fixed by --input-shapes.
    pb_model = tmp_path / 'pb.tflite'
    assert cli.main(['export', str(pb), '--quantize', 'uint8', '--input-shapes', '1,28,28,1',
                     '-o', str(pb_model)]) == 0
    assert read_model_info(pb_model.read_bytes()).inputs[0].dtype == 'UINT8'


def test_not_a_tflite_file(tmp_path, capsys):
    bogus = tmp_path / 'model.tflite'
    bogus.write_bytes(b'\x00' * 64)
    assert cli.main(['inspect', str(bogus)]) == 1
    assert 'no FlatBuffer with the TFL3 identifier' in capsys.readouterr().err
    assert cli.main(['eval', str(tmp_path / 'missing.tflite')]) == 1


def test_predict_png_of_a_known_digit(trained, tmp_path, capsys):
    from PIL import Image
    runs, data, _ = trained
    model = tmp_path / 'model.tflite'
    assert cli.main(['export', runs['mlp_qat'], '--quantize', 'uint8', '-o', str(model)]) == 0
    folder = tmp_path / 'digits'
    folder.mkdir()
    labels = {}
    for i in range(3):
        digit = data.train_images[i]
        # Dark ink on white paper, at twice the size: predict must invert and resize.
        Image.fromarray(255 - digit).resize((56, 56)).save(folder / f'digit{i}.png')
        labels[f'digit{i}.png'] = int(data.train_labels[i])
    capsys.readouterr()
    assert cli.main(['predict', str(folder), '--model', str(model)]) == 0
    for line in capsys.readouterr().out.strip().splitlines():
        path, rest = line.split(': ')
        assert int(rest.split()[0]) == labels[os.path.basename(path)]
    assert cli.main(['predict', str(tmp_path / 'none.png'), '--model', str(model)]) == 1
    (tmp_path / 'bad.png').write_bytes(b'not an image')
    assert cli.main(['predict', str(tmp_path / 'bad.png'), '--model', str(model)]) == 1
    assert 'not a readable image' in capsys.readouterr().err


def test_input_stats():
    assert tflite.input_stats('uint8') == (0.0, 255.0)
    assert tflite.input_stats('int8') == (-128.0, 255.0)
    assert graphs.INPUT == 'Input'
