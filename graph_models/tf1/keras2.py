"""Standalone ``import keras`` and ``tf.keras`` in TF 1.x mode: Keras 2 (tf-keras) in graph mode.

The target is tf-keras' v1 API (``tf_keras.api._v1.keras``), which is what TF 1.15's ``tf.keras``
was: ``keras.backend.get_session``, and the legacy optimizers (``keras.optimizers.RMSprop`` is
``tf_keras.optimizers.legacy.RMSprop``, the kind that works in graph mode). Standalone ``keras``
also has Keras 2's submodules (``keras.layers.core``, ``keras.utils.np_utils``, ...: the whole
public module; ``keras.engine`` and ``keras.backend.tensorflow_backend``) and Keras 2's defaults
where tf.keras' differ (``Adadelta`` learning rate 1.0, ``Adagrad`` 0.01); ``tf.keras`` keeps
TF 1.15's. ``load_data`` of ``keras.datasets.mnist`` and ``fashion_mnist`` reads through
`graph_models.data` (the ``--data-dir`` folder of ``graph-models run`` when given, never the
network then; otherwise what Keras had downloaded into ``~/.keras/datasets`` first) and returns
Keras' classic ``(x_train, y_train), (x_test, y_test)`` uint8 arrays; under ``--data-dir`` the
other loaders (``cifar10``, ``imdb``, ...) raise instead of downloading.
"""

import importlib
import os
from typing import Optional, Tuple

import numpy as np

from graph_models.tf1.module import Override, ProxyModule, data_dir

KERAS_V1 = 'tf_keras.api._v1.keras'


def keras_cache(dataset: str, path: Optional[str] = None) -> Optional[str]:
    """What Keras 2's ``load_data`` had downloaded before: ``$KERAS_HOME/datasets/mnist.npz``
    (or ``path`` there) or the ``fashion-mnist`` folder (``KERAS_HOME`` defaults to ``~/.keras``);
    None when it is not there."""
    home = os.environ.get('KERAS_HOME') or os.path.join(os.path.expanduser('~'), '.keras')
    cache = os.path.join(home, 'datasets')
    if dataset == 'mnist':
        candidate = os.path.join(cache, path or 'mnist.npz')
        return candidate if os.path.isfile(candidate) else None
    candidate = os.path.join(cache, 'fashion-mnist')
    names = ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz',
             't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')
    if all(os.path.isfile(os.path.join(candidate, n)) for n in names):
        return candidate
    return None


def load_data(dataset: str = 'mnist', path: Optional[str] = None) -> Tuple[
        Tuple[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]:
    """``keras.datasets.<dataset>.load_data()``: uint8 images ``[N, 28, 28]``, uint8 labels.

    Reads the ``--data-dir`` folder under ``graph-models run --data-dir``; otherwise what Keras
    had downloaded into its cache (`keras_cache`), else `graph_models.data`'s cache or download.

    Args:
      dataset: ``mnist`` or ``fashion_mnist``.
      path: Keras' ``path`` argument (``mnist.npz`` in the Keras cache, or an absolute path).

    Returns:
      ``(x_train, y_train), (x_test, y_test)``.
    """
    from graph_models import data as data_lib
    folder = data_dir()
    if folder is None:
        folder = keras_cache(dataset, path)
    loaded = data_lib.load_dataset(dataset, folder, download=folder is None)
    return ((loaded.train_images, loaded.train_labels.astype(np.uint8)),
            (loaded.test_images, loaded.test_labels.astype(np.uint8)))


def _dataset_proxy(import_name: str, dataset: str, target) -> ProxyModule:
    def loader(path=None, cache_dir=None):  # Keras' signature; the files come from data_lib.
        del cache_dir
        return load_data(dataset, path if dataset == 'mnist' else None)

    loader.__name__ = 'load_data'
    loader.__doc__ = load_data.__doc__
    return ProxyModule(import_name, target, f'tf_keras.datasets.{dataset}',
                       overrides={'load_data': Override(
                           lambda: loader, f'graph_models.tf1.keras2.load_data({dataset!r})')})


# Keras' other datasets, which load_data downloads: under --data-dir (offline) they refuse.
_DOWNLOADED_DATASETS = ('cifar10', 'cifar100', 'imdb', 'reuters', 'boston_housing')


def _offline_dataset_proxy(import_name: str, dataset: str, target) -> ProxyModule:
    def loader(*args, **kwargs):
        if data_dir() is not None:
            from graph_models.errors import DataError
            raise DataError(f'{import_name}.load_data() downloads {dataset}, and graph-models '
                            f'run --data-dir {data_dir()} reads MNIST / Fashion-MNIST IDX files '
                            'only (nothing is downloaded); run without --data-dir to let Keras '
                            'download it')
        return target.load_data(*args, **kwargs)

    loader.__name__ = 'load_data'
    loader.__doc__ = getattr(target.load_data, '__doc__', None)
    return ProxyModule(import_name, target, f'tf_keras.datasets.{dataset}',
                       overrides={'load_data': Override(lambda: loader,
                                                        f'tf_keras.datasets.{dataset}.load_data '
                                                        '(offline under --data-dir: refused)')})


def keras_proxy(import_name: str) -> ProxyModule:
    """The Keras 2 module a TF 1.x program sees as ``import_name`` (``keras``, ``tf.keras``)."""
    keras = importlib.import_module(KERAS_V1)

    def datasets():
        sets = {name: Override(lambda name=name: _dataset_proxy(
                    f'{import_name}.datasets.{name}', name, getattr(keras.datasets, name)),
                    f'tf_keras.datasets.{name} (graph_models.data)')
                for name in ('mnist', 'fashion_mnist')}
        sets.update({name: Override(lambda name=name: _offline_dataset_proxy(
                         f'{import_name}.datasets.{name}', name, getattr(keras.datasets, name)),
                         f'tf_keras.datasets.{name}')
                     for name in _DOWNLOADED_DATASETS})
        return ProxyModule(f'{import_name}.datasets', keras.datasets, 'tf_keras.datasets',
                           overrides=sets)

    overrides = {'datasets': Override(datasets, 'tf_keras.datasets')}
    if import_name == 'keras':
        overrides.update(_standalone_overrides(keras))
    return ProxyModule(import_name, keras, 'tf_keras', overrides=overrides)


# Standalone Keras 2's submodules that programs import from (``from keras.layers.core import
# Dense, Dropout``, ``from keras.utils import np_utils``): each is the whole public module.
_LAYER_MODULES = ('core', 'convolutional', 'pooling', 'normalization', 'recurrent',
                  'advanced_activations', 'merge', 'embeddings', 'noise', 'wrappers', 'local')
_UTILS_MODULES = ('np_utils', 'generic_utils', 'data_utils', 'vis_utils', 'layer_utils')

# Standalone Keras 2's optimizer defaults where tf.keras' differ (tf-keras' legacy optimizers
# have TF's): Keras 2.0-2.3 had Adadelta(lr=1.0) and Adagrad(lr=0.01).
_KERAS2_LEARNING_RATES = {'Adadelta': 1.0, 'Adagrad': 0.01}


def _keras2_optimizer(base, default_learning_rate: float):
    """``base`` (a tf-keras legacy optimizer) with standalone Keras 2's default learning rate."""
    def __init__(self, learning_rate=default_learning_rate, *args, **kwargs):
        base.__init__(self, learning_rate, *args, **kwargs)

    return type(base.__name__, (base,), {'__init__': __init__, '__module__': base.__module__,
                                         '__doc__': base.__doc__})


def _standalone_overrides(keras):
    def alias(name, target, mapped_to):
        return Override(lambda: ProxyModule(name, target, mapped_to), mapped_to)

    layers = Override(lambda: ProxyModule(
        'keras.layers', keras.layers, 'tf_keras.layers',
        overrides={m: alias(f'keras.layers.{m}', keras.layers, 'tf_keras.layers')
                   for m in _LAYER_MODULES}), 'tf_keras.layers')
    utils = Override(lambda: ProxyModule(
        'keras.utils', keras.utils, 'tf_keras.utils',
        overrides={m: alias(f'keras.utils.{m}', keras.utils, 'tf_keras.utils')
                   for m in _UTILS_MODULES}), 'tf_keras.utils')
    optimizers = Override(lambda: ProxyModule(
        'keras.optimizers', keras.optimizers, 'tf_keras.optimizers',
        overrides={name: Override(
            lambda name=name, lr=lr: _keras2_optimizer(getattr(keras.optimizers, name), lr),
            f'tf_keras.optimizers.legacy.{name} (Keras 2 default learning_rate={lr})')
            for name, lr in _KERAS2_LEARNING_RATES.items()}), 'tf_keras.optimizers')
    # keras.backend.tensorflow_backend (K.tensorflow_backend._get_available_gpus()) and
    # keras.engine (Layer, InputSpec; .topology, .training) of Keras 2.0-2.2.
    backend = Override(lambda: ProxyModule(
        'keras.backend', keras.backend, 'tf_keras.backend',
        overrides={'tensorflow_backend': Override(lambda: ProxyModule(
            'keras.backend.tensorflow_backend', keras.backend, 'tf_keras.backend',
            overrides={'_get_available_gpus': Override(lambda: _available_gpus,
                                                       'tf.config.list_logical_devices')}),
            'tf_keras.backend')}), 'tf_keras.backend')
    engine_names = {'Model': Override(lambda: keras.models.Model, 'tf_keras.models.Model'),
                    'get_source_inputs': Override(lambda: keras.utils.get_source_inputs,
                                                  'tf_keras.utils.get_source_inputs')}

    def engine_module(name):
        return ProxyModule(name, keras.layers, 'tf_keras.layers', overrides=engine_names)

    engine = Override(lambda: ProxyModule(
        'keras.engine', keras.layers, 'tf_keras.layers',
        overrides={**engine_names,
                   **{m: Override(lambda m=m: engine_module(f'keras.engine.{m}'),
                                  'tf_keras.layers, tf_keras.models.Model')
                      for m in ('topology', 'training', 'base_layer', 'network',
                                'input_layer', 'sequential')}}),
        'tf_keras.layers, tf_keras.models.Model')
    return {'layers': layers, 'utils': utils, 'optimizers': optimizers, 'backend': backend,
            'engine': engine}


def _available_gpus():
    """Keras 2's ``K.tensorflow_backend._get_available_gpus()``: ``/device:GPU:N`` names."""
    from freeze._tf import tf
    return [d.name for d in tf.config.list_logical_devices('GPU')]
