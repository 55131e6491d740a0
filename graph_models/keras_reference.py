"""The Keras versions of the graph models (Keras 3 as shipped with TF 2.21), for comparison.

==============  ============================================================  ==============
name            layers                                                        parameters
==============  ============================================================  ==============
``mlp_small``   Flatten, Dense 128 ReLU, Dropout 0.2, Dense 10 softmax        101,770
``mlp``         Dense 512 ReLU, Dense 10 softmax                              407,050
``mlp_deep``    Dense 512 ReLU, Dense 512 ReLU, Dense 10 softmax              669,706
``cnn``         the graph CNN's conv stack                                    93,322
``resnet50v2``  resize to 32x32x1, ``keras.applications.ResNet50V2``          (reference row)
==============  ============================================================  ==============

Layers are named like the graph's scopes (``fc1``, ``conv1``, ``logits``, ...) and use the same
initializers (Glorot-uniform kernels, zero biases), so `copy_graph_weights` can start a Keras
twin from exactly the graph's initial values. Only the framework then differs.
"""

import contextlib
import io
import warnings
from typing import Dict, Optional

import numpy as np

from graph_models._tf import tf
from graph_models.errors import ConfigError

KERAS_MODELS = ('mlp_small', 'mlp', 'mlp_deep', 'cnn', 'resnet50v2')
# The Keras seeds' dropout; the graph twin gets the same rate in comparisons.
SEED_DROPOUT = {'mlp_small': 0.2}
INPUT_SHAPES = {'mlp_small': (784,), 'mlp': (784,), 'mlp_deep': (784,), 'cnn': (28, 28, 1),
                'resnet50v2': (28, 28, 1)}


def _dense(units, name, activation='relu'):
    import keras
    return keras.layers.Dense(units, activation=activation, name=name,
                              kernel_initializer='glorot_uniform', bias_initializer='zeros')


def build_keras_model(name: str, num_classes: int = 10, *, seed: int = 0,
                      dropout_rate: Optional[float] = None):
    """Builds a Keras twin (uncompiled).

    Args:
      name: one of `KERAS_MODELS`.
      num_classes: output classes.
      seed: seed of the initializers and dropout.
      dropout_rate: overrides the seed's dropout (only ``mlp_small`` has one by default).

    Returns:
      A ``keras.Model`` taking the same input layout as the graph model (flat 784 for the MLPs,
      28x28x1 for the CNN and ResNet) and returning softmax probabilities.
    """
    import keras
    if name not in KERAS_MODELS:
        raise ConfigError(f'no Keras twin named {name!r}; choose one of '
                          f'{", ".join(KERAS_MODELS)}')
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(INPUT_SHAPES[name], name='Input')
    if name == 'resnet50v2':
        net = keras.layers.Resizing(32, 32, name='resize')(inputs)
        base = keras.applications.ResNet50V2(weights=None, input_shape=(32, 32, 1),
                                             classes=num_classes, include_top=True)
        return keras.Model(inputs, base(net), name=name)
    rate = SEED_DROPOUT.get(name, 0.0) if dropout_rate is None else dropout_rate
    if name == 'cnn':
        net = inputs
        for layer, filters, pool in (('conv1', 32, 'pool1'), ('conv2', 64, 'pool2'),
                                     ('conv3', 64, None)):
            net = keras.layers.Conv2D(filters, 3, activation='relu', name=layer,
                                      kernel_initializer='glorot_uniform',
                                      bias_initializer='zeros')(net)
            if pool:
                net = keras.layers.MaxPooling2D(2, name=pool)(net)
        net = keras.layers.Flatten(name='flatten')(net)
        hidden = [('fc1', 64)]
    else:
        net = keras.layers.Flatten(name='flatten')(inputs) if name == 'mlp_small' else inputs
        sizes = {'mlp_small': (128,), 'mlp': (512,), 'mlp_deep': (512, 512)}[name]
        hidden = [(f'fc{i}', units) for i, units in enumerate(sizes, start=1)]
    for i, (layer, units) in enumerate(hidden, start=1):
        net = _dense(units, layer)(net)
        if rate > 0:
            net = keras.layers.Dropout(rate, name=f'dropout{i}')(net)
    outputs = _dense(num_classes, 'logits', activation='softmax')(net)
    return keras.Model(inputs, outputs, name=name)


def compile_like_graph(model, learning_rate: float = 1e-3) -> None:
    """Adam with TF1's ``AdamOptimizer`` defaults, sparse cross-entropy, accuracy."""
    import keras
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.9, beta_2=0.999,
                                                  epsilon=1e-8),
                  loss='sparse_categorical_crossentropy', metrics=['accuracy'])


def fit_timer():
    """A Keras callback timing ``fit`` with the training-throughput definition of the project.

    ``epoch_seconds`` holds, per epoch, the time from the epoch's start (its data iterator
    included) to the end of its last training batch; ``eval_seconds`` sums the validation
    runs, which are timed apart (the graph's per-epoch test evaluation is too).
    """
    import time
    import keras

    class FitTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epoch_seconds = []
            self.eval_seconds = 0.0
            self._began = self._test_began = None

        def _end_epoch(self, now):
            if self._began is not None:
                self.epoch_seconds.append(now - self._began)
                self._began = None

        def on_epoch_begin(self, epoch, logs=None):
            self._began = time.perf_counter()

        def on_test_begin(self, logs=None):  # Right after the epoch's last training batch.
            now = time.perf_counter()
            self._end_epoch(now)
            self._test_began = now

        def on_test_end(self, logs=None):
            self.eval_seconds += time.perf_counter() - self._test_began

        def on_epoch_end(self, epoch, logs=None):  # Epochs without validation.
            self._end_epoch(time.perf_counter())

    return FitTimer()


def copy_graph_weights(model, values: Dict[str, np.ndarray], scope: str) -> int:
    """Loads graph variable values (``<scope>/<layer>/weights|biases``) into a Keras twin.

    Args:
      model: the Keras twin (layers named like the graph's).
      values: graph variable name -> value.
      scope: the graph model's scope (its model name).

    Returns:
      The number of layers copied.

    Raises:
      ConfigError: if a Keras layer with weights has no graph counterpart.
    """
    copied = 0
    for layer in model.layers:
        if not layer.weights:
            continue
        key = f'{scope}/{layer.name}'
        if f'{key}/weights' not in values:
            raise ConfigError(f'the graph has no {key}/weights for Keras layer {layer.name}')
        layer.set_weights([values[f'{key}/weights'], values[f'{key}/biases']])
        copied += 1
    return copied


def count_parameters(model) -> int:
    """Total parameters, as ``model.summary()`` reports them."""
    return int(sum(np.prod(w.shape) for w in model.weights))


def to_tflite(model, mode: str = 'float', representative=None) -> bytes:
    """``tf.lite.TFLiteConverter.from_keras_model``: float, or post-training int8.

    Args:
      model: the trained Keras model.
      mode: ``float`` or ``int8`` (full integer with int8 input and output).
      representative: the representative dataset generator for ``int8``.

    Returns:
      The ``.tflite`` flatbuffer.
    """
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode == 'int8':
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    elif mode != 'float':
        raise ConfigError(f'Keras export supports float and int8, not {mode!r}')
    # The Keras exporter prints its SavedModel signature to stdout; keep ours clean.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return converter.convert()
