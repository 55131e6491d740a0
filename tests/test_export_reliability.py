"""Issue 12 items 6, 8, 9, 10 for export, eval and predict: paired outputs, one-line errors for
hostile models and images, checked restores, records tied to the graph they were made from."""

import json
import os
import signal
import time

import numpy as np
import pytest

from freeze import fileio
from freeze.export import read_export_record
from freeze.errors import ExportError
from graph_models import cli
from graph_models._tf import tf, v1
from graph_models.errors import CheckpointError
from graph_models.nets.factory import ModelConfig
from graph_models.training.run_config import RunConfig
from graph_models.training.scoring import Evaluator
from graph_models.training.train import train_and_eval

from conftest import synthetic_dataset, write_idx_folder


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp('rel')
    data = synthetic_dataset(200, 50)
    data_dir = write_idx_folder(root / 'data', data)
    out = {'root': root, 'data_dir': data_dir, 'data': data}
    for name, seed, hidden in (('a', 0, None), ('b', 1, None), ('narrow', 0, [64])):
        run = RunConfig(model=ModelConfig('mlp_small', hidden_sizes=hidden), epochs=1,
                        batch_size=50, seed=seed, data_source=data_dir)
        out[name] = train_and_eval(run, data, run_name=name, log_dir=str(root / 'logs'),
                                   checkpoint_dir=str(root / 'ckpt'), progress=False,
                                   log=lambda line: None).checkpoint_dir
    return out


def _one_line_error(capsys, command, status=1):
    assert cli.main(command) == status
    err = capsys.readouterr().err
    assert err.startswith(f'graph-models {command[0]}: error:') and err.count('\n') == 1, err
    return err


def test_publish_is_all_or_nothing(tmp_path, monkeypatch):
    model, record = tmp_path / 'm.tflite', tmp_path / 'm.tflite.json'
    fileio.publish([(str(model), b'old model'), (str(record), b'old record')])
    real_replace = os.replace
    calls = []

    def failing_replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, 'No space left on device')
        real_replace(src, dst)
    monkeypatch.setattr(os, 'replace', failing_replace)
    with pytest.raises(OSError):
        fileio.publish([(str(model), b'new model'), (str(record), b'new record')])
    monkeypatch.setattr(os, 'replace', real_replace)
    # The record went first; the model stayed old; no temporary file is left.
    assert calls[0] == str(record) and model.read_bytes() == b'old model'
    assert sorted(os.listdir(tmp_path)) == ['m.tflite', 'm.tflite.json']


def test_kill_9_leftovers_are_cleaned_by_the_next_export(runs, tmp_path, capsys):
    output = tmp_path / 'model.tflite'
    stale = tmp_path / '.model.tflite.abc123.tmp'
    stale.write_bytes(b'half a model')
    old = time.time() - 3600
    os.utime(stale, (old, old))
    fresh = tmp_path / '.model.tflite.json.fresh1.tmp'  # A writer still at work: kept.
    fresh.write_bytes(b'{')
    assert cli.main(['export', runs['a'], '-o', str(output)]) == 0
    assert not stale.exists() and fresh.exists()
    assert sorted(f for f in os.listdir(tmp_path) if not f.startswith('.')) == [
        'model.tflite', 'model.tflite.json']


def test_record_of_another_model_is_not_paired(runs, tmp_path):
    output = tmp_path / 'model.tflite'
    assert cli.main(['export', runs['a'], '-o', str(output)]) == 0
    content = output.read_bytes()
    assert read_export_record(str(output), content)['source_kind'] == 'checkpoint'
    output.write_bytes(content + b'\0')  # The model changed after the record was written.
    assert read_export_record(str(output), output.read_bytes()) is None


def test_malformed_export_record_is_one_line(runs, tmp_path, capsys):
    output = tmp_path / 'model.tflite'
    assert cli.main(['export', runs['a'], '-o', str(output)]) == 0
    for content in ('{not json', '[1, 2]', '{"source": 3}', '\xff'):
        (tmp_path / 'model.tflite.json').write_text(content, errors='surrogateescape')
        err = _one_line_error(capsys, ['eval', str(output), '--data-dir', runs['data_dir']])
        assert 'is not a valid export record' in err
    with pytest.raises(ExportError):
        read_export_record(str(output))


def test_record_pointing_at_another_checkpoint_gives_no_agreement(runs, tmp_path, capsys):
    """Issue 12 item 10: the record's source must be the graph that was converted."""
    output = tmp_path / 'model.tflite'
    assert cli.main(['export', runs['a'], '-o', str(output)]) == 0
    record_path = tmp_path / 'model.tflite.json'
    record = json.loads(record_path.read_text())
    assert len(record['graph_sha256']) == 64
    capsys.readouterr()
    assert cli.main(['eval', str(output), '--data-dir', runs['data_dir']]) == 0
    assert 'agreement with the TF graph: 1.0000' in capsys.readouterr().out
    record['source'] = tf.train.latest_checkpoint(runs['b'])  # Same model, other weights.
    record_path.write_text(json.dumps(record))
    assert cli.main(['eval', str(output), '--data-dir', runs['data_dir']]) == 0
    out = capsys.readouterr().out
    assert 'agreement with the TF graph: not measured' in out and 'digest differs' in out
    assert 'top-1' not in out


def test_eval_of_unfitting_or_truncated_checkpoints_is_one_line(runs, tmp_path, capsys):
    # Another model's checkpoint under this run's config (hidden 64 against 128).
    other = tmp_path / 'other'
    other.mkdir()
    for f in os.listdir(runs['narrow']):
        if f != 'run_config.json':
            (other / f).write_bytes(open(os.path.join(runs['narrow'], f), 'rb').read())
    (other / 'run_config.json').write_text(
        open(os.path.join(runs['a'], 'run_config.json')).read())
    err = _one_line_error(capsys, ['eval', str(other), '--data-dir', runs['data_dir']])
    assert 'shape [784, 64], the model needs [784, 128]' in err
    # Truncated .data: OutOfRangeError / DataLossError inside restore.
    broken = tmp_path / 'broken'
    broken.mkdir()
    for f in os.listdir(runs['a']):
        content = open(os.path.join(runs['a'], f), 'rb').read()
        (broken / f).write_bytes(content[:100] if '.data-' in f else content)
    err = _one_line_error(capsys, ['eval', str(broken), '--data-dir', runs['data_dir']])
    assert 'broken' in err


def test_evaluator_checks_shapes_before_restoring(runs):
    run = RunConfig(model=ModelConfig('mlp_small', hidden_sizes=[64]))
    evaluator = Evaluator.for_run(run)
    with pytest.raises(CheckpointError, match='written for a different model'):
        evaluator.restore(tf.train.latest_checkpoint(runs['a']))
    assert evaluator.restore(tf.train.latest_checkpoint(runs['narrow'])) > 0
    evaluator.close()


def test_eval_of_a_pb_with_another_input_shape(runs, tmp_path, capsys):
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 32, 32, 3], name='image')
        tf.nn.softmax(tf.reduce_mean(x, [1, 2]) @ tf.ones([3, 10]), name='scores')
    pb = tmp_path / 'rgb.pb'
    pb.write_bytes(graph.as_graph_def().SerializeToString())
    err = _one_line_error(capsys, ['eval', str(pb), '--data-dir', runs['data_dir']], 2)
    assert 'takes examples of shape [32, 32, 3], mnist has [28, 28]' in err


def _converted(fn):
    return tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()],
                                                           fn).convert()


def test_hostile_tflite_models_are_one_line(runs, tmp_path, capsys):
    from PIL import Image
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / 'd.png')

    @tf.function(input_signature=[])
    def no_inputs():
        return tf.constant([[0.1, 0.9]])

    @tf.function(input_signature=[tf.TensorSpec([1, 784], tf.float32, name='pixelsabc')])
    def failing(x):  # Gather index out of bounds for pixels of 1.0 (white).
        return tf.gather(tf.constant([1.0, 2.0]), tf.cast(x * 10.0, tf.int32))[:, :10]

    models = {'noinputs': _converted(no_inputs), 'failing': _converted(failing)}
    good = _converted(tf.function(lambda x: tf.nn.softmax(x[:, :10]), input_signature=[
        tf.TensorSpec([1, 784], tf.float32, name='pixelsabc')]))
    name = b'pixelsabc'
    assert good.count(name) >= 1
    models['nonutf8'] = good.replace(name, b'pixel\xff\xfe\xfd\xfc')
    for label, content in models.items():
        path = tmp_path / f'{label}.tflite'
        path.write_bytes(content)
        for command in (['eval', str(path), '--data-dir', runs['data_dir']],
                        ['predict', str(tmp_path / 'd.png'), '--model', str(path)]):
            if label == 'failing' and command[0] == 'predict':
                digit = np.zeros((28, 28), np.uint8)
                digit[8:20, 8:20] = 255  # Pixels of 1.0 after the MNIST-style scaling.
                Image.fromarray(digit).save(tmp_path / 'd.png')
            err = _one_line_error(capsys, command)
            assert 'model' in err


def test_decompression_bomb_png_is_refused(runs, tmp_path, capsys):
    from PIL import Image
    model = tmp_path / 'm.tflite'
    assert cli.main(['export', runs['a'], '-o', str(model)]) == 0
    Image.new('1', (10000, 5000)).save(tmp_path / 'bomb.png')  # 50 Mpixel in a few kB.
    assert os.path.getsize(tmp_path / 'bomb.png') < 200_000
    err = _one_line_error(capsys, ['predict', str(tmp_path / 'bomb.png'), '--model',
                                   str(model)])
    assert '10000x5000 pixels' in err


def test_fifo_named_png_does_not_hang_predict(runs, tmp_path, capsys):
    model = tmp_path / 'm.tflite'
    assert cli.main(['export', runs['a'], '-o', str(model)]) == 0
    fifo = tmp_path / 'x.png'
    os.mkfifo(fifo)

    def timeout(signum, frame):
        raise AssertionError('predict hung on a FIFO')
    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(20)
    try:
        err = _one_line_error(capsys, ['predict', str(fifo), '--model', str(model)])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert 'not a regular file' in err


def test_predict_flattens_transparency_onto_white(tmp_path):
    from PIL import Image
    from graph_models.litert.predict import load_digit
    # A black digit drawn on a transparent background whose hidden color is black.
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[8:20, 12:16, 3] = 255
    Image.fromarray(rgba, 'RGBA').save(tmp_path / 't.png')
    pixels = load_digit(str(tmp_path / 't.png'))
    # White background, inverted: background 0, the stroke bright.
    assert pixels[0, 0] == pytest.approx(0.0, abs=1e-6)
    assert pixels[14, 14] == pytest.approx(1.0, abs=1e-6)


def test_predict_with_our_checkpoint_and_its_frozen_graph(runs, tmp_path, capsys):
    from PIL import Image
    data = runs['data']
    for i in range(3):
        Image.fromarray(255 - data.test_images[i]).save(tmp_path / f'd{i}.png')
    pb = tmp_path / 'frozen.pb'
    assert cli.main(['freeze', runs['a'], '-o', str(pb)]) == 0
    capsys.readouterr()
    outputs = []
    for model in (runs['a'], str(pb)):
        assert cli.main(['predict', str(tmp_path), '--model', model]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and outputs[0].count('\n') == 3
