"""TensorBoard: evaluation pictures (after the last epoch, or every N epochs); QAT range scalars
quant_ranges/<layer>/* after every epoch."""

import io

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator

from graph_models.nets.factory import ModelConfig
from graph_models.quantize import QuantizationConfig
from graph_models.training.run_config import RunConfig
from graph_models.training.train import train_and_eval

from conftest import synthetic_dataset


@pytest.fixture(scope='module')
def qat_logs(tmp_path_factory):
    root = tmp_path_factory.mktemp('tbpic')
    run = RunConfig(model=ModelConfig('mlp_small'), dataset='fashion_mnist', epochs=2,
                    batch_size=50, quantization=QuantizationConfig())
    train_and_eval(run, synthetic_dataset(200, 60, name='fashion_mnist'), run_name='qat',
                   log_dir=str(root / 'logs'), checkpoint_dir=str(root / 'ckpt'),
                   pictures_every_epochs=1, progress=False, log=lambda line: None)
    return _eval_events(root / 'logs' / 'qat' / 'eval')


def _eval_events(folder):
    acc = event_accumulator.EventAccumulator(
        str(folder),
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


def test_pictures_by_default_only_after_the_last_epoch(tmp_path):
    """Drawing costs about an MLP epoch: by default only the final model is drawn, while the
    test scalars stay per epoch; an epoch count that is not a multiple still ends drawn."""
    run = RunConfig(model=ModelConfig('mlp_small'), dataset='fashion_mnist', epochs=3,
                    batch_size=50)
    data = synthetic_dataset(100, 60, name='fashion_mnist')
    for name, every, steps in (('default', None, [6]), ('every2', 2, [4, 6])):
        train_and_eval(run, data, run_name=name, log_dir=str(tmp_path / 'logs'),
                       checkpoint_dir=str(tmp_path / 'ckpt'), pictures_every_epochs=every,
                       progress=False, log=lambda line: None)
        events = _eval_events(tmp_path / 'logs' / name / 'eval')
        # (pictures/mistakes follows the same cadence but is left out when nothing is wrong.)
        assert [e.step for e in events.Images('pictures/confusion_matrix')] == steps, name
        assert [e.step for e in events.Scalars('accuracy')] == [2, 4, 6]


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
