"""TensorBoard: evaluation pictures after each epoch; QAT range scalars quant_ranges/<layer>/*."""

import io

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator

from graph_models.nets_factory import ModelConfig
from graph_models.quantize import QuantizationConfig
from graph_models.run_config import RunConfig
from graph_models.train import train_and_eval

from conftest import synthetic_dataset


@pytest.fixture(scope='module')
def qat_logs(tmp_path_factory):
    root = tmp_path_factory.mktemp('tbpic')
    run = RunConfig(model=ModelConfig('mlp_small'), dataset='fashion_mnist', epochs=2,
                    batch_size=50, quantization=QuantizationConfig())
    train_and_eval(run, synthetic_dataset(200, 60, name='fashion_mnist'), run_name='qat',
                   log_dir=str(root / 'logs'), checkpoint_dir=str(root / 'ckpt'),
                   progress=False, log=lambda line: None)
    acc = event_accumulator.EventAccumulator(
        str(root / 'logs' / 'qat' / 'eval'),
        size_guidance={event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0})
    acc.Reload()
    return acc


def test_eval_pictures_each_epoch(qat_logs):
    assert 'pictures/confusion_matrix' in qat_logs.Tags()['images']
    events = qat_logs.Images('pictures/confusion_matrix')
    assert [e.step for e in events] == [4, 8]
    image = Image.open(io.BytesIO(events[-1].encoded_image_string))
    assert image.width >= 400 and image.height >= 400
    pixels = np.asarray(image.convert('L'))
    assert pixels.std() > 10  # Not blank.


def test_quant_range_scalars(qat_logs):
    scalars = set(qat_logs.Tags()['scalars'])
    for layer in ('fc1', 'logits'):
        for end in ('min', 'max'):
            assert f'quant_ranges/mlp_small/{layer}/weights_quant/{end}' in scalars
    act = sorted(t for t in scalars if t.startswith('quant_ranges/') and 'act_quant' in t)
    assert act, scalars
    low = qat_logs.Scalars('quant_ranges/mlp_small/fc1/weights_quant/min')
    high = qat_logs.Scalars('quant_ranges/mlp_small/fc1/weights_quant/max')
    assert [e.step for e in low] == [4, 8]
    assert low[-1].value < 0 < high[-1].value
