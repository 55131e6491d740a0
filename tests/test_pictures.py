"""Pictures (predict --grid, eval --report, compare report), labels through metadata, top-k JSON.

One tiny Fashion-MNIST-named run (synthetic bars) is trained, exported with metadata, inspected,
evaluated and used for predictions, so the class names travel from the dataset to the output.
"""

import io
import json

import numpy as np
import pytest
from PIL import Image

from graph_models import cli, data as data_lib, pictures

from conftest import synthetic_dataset, write_idx_folder

FASHION = list(data_lib.CLASS_NAMES['fashion_mnist'])


def _png_pixels(path):
    with Image.open(path) as image:
        return np.asarray(image.convert('RGB'))


def _assert_real_png(path, min_width, min_height):
    pixels = _png_pixels(path)
    height, width, _ = pixels.shape
    assert width >= min_width and height >= min_height, (width, height)
    # Not a blank canvas: many pixels differ from the background colour, and there is ink.
    background = pixels[0, 0]
    assert (np.abs(pixels.astype(int) - background).sum(-1) > 60).mean() > 0.02
    return pixels


@pytest.fixture(scope='module')
def fashion_run(tmp_path_factory):
    root = tmp_path_factory.mktemp('pictures')
    data = synthetic_dataset(500, 120, name='fashion_mnist')
    data_dir = write_idx_folder(root / 'data', data)
    ckpt = root / 'ckpt'
    assert cli.main(['train', '--model', 'mlp_small', '--dataset', 'fashion_mnist',
                     '--data-dir', data_dir, '--epochs', '2', '--no-progress',
                     '--checkpoint-dir', str(ckpt), '--log-dir', str(root / 'logs')]) == 0
    model = root / 'model.tflite'
    ckpt = ckpt / 'mlp_small-fashion_mnist'
    assert cli.main(['export', str(ckpt), '-o', str(model)]) == 0
    images_dir = root / 'images'
    images_dir.mkdir()
    for i in range(6):
        Image.fromarray(data.test_images[i]).save(images_dir / f'{i}_{data.test_labels[i]}.png')
    return {'root': root, 'data': data, 'data_dir': data_dir, 'ckpt': ckpt, 'model': model,
            'images': images_dir}


def test_class_names():
    assert data_lib.class_names('fashion_mnist')[9] == 'Ankle boot'
    assert data_lib.class_names('mnist') == [str(k) for k in range(10)]


def test_export_embeds_labels_and_inspect_shows_them(fashion_run, capsys):
    from freeze.metadata import read_metadata
    info = read_metadata(fashion_run['model'].read_bytes())
    assert info.labels == FASHION and info.name == 'mlp_small-fashion_mnist'
    assert 'Fashion-MNIST' in info.description
    capsys.readouterr()
    assert cli.main(['inspect', str(fashion_run['model'])]) == 0
    out = capsys.readouterr().out
    assert 'metadata: mlp_small-fashion_mnist' in out and 'Ankle boot' in out
    assert 'normalized (x - [0.0]) / [255.0]' in out


def test_predict_reads_labels_from_metadata_top_k_json_and_grid(fashion_run, capsys):
    capsys.readouterr()
    grid = fashion_run['root'] / 'grid.png'
    assert cli.main(['predict', str(fashion_run['images']), '--model',
                     str(fashion_run['model']), '--top-k', '3', '--json', '--grid',
                     str(grid)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc['predictions']) == 6
    for item in doc['predictions']:
        best = item['top_k']
        assert len(best) == 3 and best[0]['probability'] >= best[1]['probability']
        assert all(b['label'] == FASHION[b['index']] for b in best)
    # The bars are learnable: most predictions name the file's true class.
    right = sum(p['top_k'][0]['index'] == int(p['path'].rsplit('_', 1)[1][0])
                for p in doc['predictions'])
    assert right >= 4
    _assert_real_png(grid, 600, 200)
    assert cli.main(['predict', str(fashion_run['images'] / '0_'
                                    f"{fashion_run['data'].test_labels[0]}.png"),
                     '--model', str(fashion_run['model'])]) == 0
    line = capsys.readouterr().out.strip()
    assert any(f': {name} (confidence ' in line for name in FASHION), line


def test_eval_report(fashion_run, capsys):
    report = fashion_run['root'] / 'report'
    assert cli.main(['eval', str(fashion_run['model']), '--data-dir', fashion_run['data_dir'],
                     '--dataset', 'fashion_mnist', '--report', str(report)]) == 0
    metrics = json.loads((report / 'per_class.json').read_text())
    assert [c['name'] for c in metrics['classes']] == FASHION
    matrix = np.array(metrics['confusion_matrix'])
    assert matrix.sum() == 120 and metrics['examples'] == 120
    for c in metrics['classes']:
        k = c['index']
        assert c['support'] == matrix[k].sum()
        if c['recall'] is not None:
            assert c['recall'] == pytest.approx(matrix[k, k] / matrix[k].sum())
    printed = capsys.readouterr().out
    accuracy = float(printed.split('accuracy ')[1].split()[0])
    assert metrics['accuracy'] == pytest.approx(accuracy, abs=1e-4)
    _assert_real_png(report / 'confusion_matrix.png', 400, 400)


def test_grid_marks_mistakes_in_red():
    images = synthetic_dataset(4, 2).train_images
    probs = np.eye(10)[[0, 1, 2, 3]] * 0.9 + 0.01
    truth = np.array([0, 1, 2, 9])  # The last one is a mistake.
    png = pictures.prediction_grid(images, probs, truth, FASHION, columns=4)
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert('RGB')).astype(int)
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
    green = (pixels[..., 1] > 100) & (pixels[..., 0] < 60) & (pixels[..., 2] < 60)
    assert red.sum() > 100 and green.sum() > 100
    # The red frame is in the rightmost quarter (the fourth image).
    assert red[:, : pixels.shape[1] * 3 // 4].sum() < red.sum() * 0.2
    assert pictures.worst_mistakes(probs, truth).tolist() == [3]
    with pytest.raises(ValueError):
        pictures.prediction_grid(images[:0], probs[:0])


def test_per_class_metrics_known_input():
    matrix = pictures.confusion_matrix(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 1]), 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [0, 1, 0]]
    m = pictures.per_class_metrics(matrix, ['a', 'b', 'c'])
    assert m['classes'][1] == {'index': 1, 'name': 'b', 'precision': 0.5, 'recall': 1.0,
                               'support': 2}
    assert m['classes'][2]['precision'] is None and m['classes'][2]['recall'] == 0.0
    assert m['accuracy'] == pytest.approx(0.6)


def test_png_size_reads_the_header():
    """TensorBoard image summaries carry the size; it is read from IHDR, checked against PIL."""
    png = pictures.confusion_matrix_png(np.eye(3, dtype=np.int64) * 5, ['a', 'b', 'c'])
    assert pictures.png_size(png) == Image.open(io.BytesIO(png)).size
    with pytest.raises(ValueError, match='not a PNG image'):
        pictures.png_size(b'GIF89a' + bytes(30))
