"""The Keras versions of the graph models (Keras 3 as shipped with TF 2.21), for comparison.

==============  ============================================================  ==============
name            layers                                                        parameters
==============  ============================================================  ==============
``mlp_small``   Dense 128 ReLU, Dropout 0.2, Dense 10 softmax                 101,770
``mlp``         Dense 512 ReLU, Dense 10 softmax                              407,050
``mlp_deep``    Dense 512 ReLU, Dense 512 ReLU, Dense 10 softmax              669,706
``cnn``         the graph CNN's conv stack                                    93,322
``resnet50v2``  resize to 32x32x1, ``keras.applications.ResNet50V2``          (reference row)
==============  ============================================================  ==============

The layers come from `graph_models.nets.architectures`, the table the graph builders read too, and
each twin exists in the three Keras styles (`KERAS_STYLES`). Layers are named like the graph's
scopes (``fc1``, ``conv1``, ``logits``, ...) and use the same
initializers (Glorot-uniform kernels, zero biases), so `copy_graph_weights` can start a Keras
twin from exactly the graph's initial values. Only the framework then differs.
"""

import contextlib
import io
import warnings
from typing import Dict, Optional

import numpy as np

from graph_models.nets import architectures
from graph_models._tf import tf
from graph_models.errors import ConfigError
from graph_models.nets.precision import FLOAT32, MIXED_BFLOAT16, check_precision

KERAS_MODELS = ('mlp_small', 'mlp', 'mlp_deep', 'cnn', 'resnet50v2')
# The Keras seeds' dropout; the graph twin gets the same rate in comparisons.
SEED_DROPOUT = {'mlp_small': 0.2}
INPUT_SHAPES = dict(architectures.INPUT_SHAPES, resnet50v2=(28, 28, 1))


KERAS_STYLES = ('functional', 'sequential', 'subclassed')


@contextlib.contextmanager
def keras_precision(precision: str, keras_module=None):
    """Keras' global dtype policy for ``precision`` inside the block; the previous one after.

    ``float32`` leaves the policy alone; ``mixed_bfloat16`` sets Keras' ``mixed_bfloat16``
    policy (bfloat16 compute, float32 variables). Layers take the global policy when they are
    created, so building a model inside the block is enough: it keeps its policy after the
    block restores the global one, and nothing leaks to other models.
    """
    check_precision(precision)
    keras = keras_module
    if keras is None:
        import keras
    if precision != MIXED_BFLOAT16:
        yield
        return
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(MIXED_BFLOAT16)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _keras_layers(name: str, num_classes: int, rate: float, keras_module=None,
                  precision: str = FLOAT32):
    """The Keras layers of a seed model, built from the shared `architectures` table.

    The last layer applies softmax (the graph's logits layer is linear; its softmax is the
    ``output`` op), so the twin outputs probabilities like the graph's inference output. Under
    ``mixed_bfloat16`` the last Dense layer is linear and a float32 ``Activation`` layer
    (``softmax``) follows, as Keras' mixed precision guide advises (the graph's loss and
    softmax stay float32 too).
    """
    keras = keras_module
    if keras is None:
        import keras
    built = []
    mixed = precision == MIXED_BFLOAT16
    specs = architectures.layer_specs(name, num_classes, dropout_rate=rate)
    for spec in specs:
        init = dict(kernel_initializer='glorot_uniform', bias_initializer='zeros')
        if spec.kind == 'conv':
            built.append(keras.layers.Conv2D(spec.size, spec.kernel, activation='relu',
                                             name=spec.name, **init))
        elif spec.kind == 'pool':
            built.append(keras.layers.MaxPooling2D(spec.size, name=spec.name))
        elif spec.kind == 'flatten':
            built.append(keras.layers.Flatten(name=spec.name))
        elif spec.kind == 'dense':
            last = spec is specs[-1]
            activation = 'relu' if spec.relu else ('softmax' if last and not mixed else None)
            built.append(keras.layers.Dense(spec.size, activation=activation, name=spec.name,
                                            **init))
            if last and mixed:
                built.append(keras.layers.Activation('softmax', dtype='float32',
                                                     name='softmax'))
        elif spec.kind == 'dropout':
            built.append(keras.layers.Dropout(spec.rate, name=spec.name))
    return built


def _subclassed_class(keras):
    class SeedModel(keras.Model):
        """A subclassed ``keras.Model`` applying the table's layers in order."""

        def __init__(self, seed_layers, **kwargs):
            super().__init__(**kwargs)
            self.seed_layers = list(seed_layers)

        def call(self, inputs, training=False):
            net = inputs
            for layer in self.seed_layers:
                net = layer(net, training=training) if isinstance(
                    layer, keras.layers.Dropout) else layer(net)
            return net

    return SeedModel


def build_keras_model(name: str, num_classes: int = 10, *, seed: int = 0,
                      dropout_rate: Optional[float] = None, style: str = 'functional',
                      keras_module=None, precision: str = FLOAT32):
    """Builds a Keras twin (uncompiled) in one of the three Keras styles.

    Args:
      name: one of `KERAS_MODELS`.
      num_classes: output classes.
      seed: seed of the initializers and dropout.
      dropout_rate: overrides the seed's dropout (only ``mlp_small`` has one by default).
      style: ``functional`` (``keras.Model(inputs, outputs)``), ``sequential``
        (``keras.Sequential``) or ``subclassed`` (a ``keras.Model`` subclass with ``call``);
        the three have the same layers, names, parameters and numerics. ``resnet50v2`` is
        functional only.
      keras_module: the Keras package to build with (default ``keras``, Keras 3; the QAT
        comparison passes ``tf_keras``, which TFMOT needs).
      precision: ``float32``, or ``mixed_bfloat16``: the layers are built under Keras'
        ``mixed_bfloat16`` policy (`keras_precision`; the global policy is restored after)
        with a float32 softmax. The weights are float32 either way, so ``get_weights`` of a
        mixed twin fits a float32 twin of the same style.

    Returns:
      A built ``keras.Model`` taking the same input layout as the graph model (flat 784 for the
      MLPs, 28x28x1 for the CNN and ResNet) and returning softmax probabilities.

    Raises:
      ConfigError: for an unknown model or style.
    """
    keras = keras_module
    if keras is None:
        import keras
    if name not in KERAS_MODELS:
        raise ConfigError(f'no Keras twin named {name!r}; choose one of '
                          f'{", ".join(KERAS_MODELS)}')
    if style not in KERAS_STYLES:
        raise ConfigError(f'unknown Keras style {style!r}; choose one of '
                          f'{", ".join(KERAS_STYLES)}')
    keras.utils.set_random_seed(seed)
    if name == 'resnet50v2':
        if style != 'functional':
            raise ConfigError('resnet50v2 exists only as a functional Keras model')
        inputs = keras.Input(INPUT_SHAPES[name], name='Input')
        net = keras.layers.Resizing(32, 32, name='resize')(inputs)
        base = keras.applications.ResNet50V2(weights=None, input_shape=(32, 32, 1),
                                             classes=num_classes, include_top=True)
        return keras.Model(inputs, base(net), name=name)
    rate = SEED_DROPOUT.get(name, 0.0) if dropout_rate is None else dropout_rate
    if precision != FLOAT32 and name == 'resnet50v2':
        raise ConfigError('resnet50v2 is a float32 reference row only')
    with keras_precision(precision, keras):
        seed_layers = _keras_layers(name, num_classes, rate, keras, precision)
    shape = INPUT_SHAPES[name]
    if style == 'functional':
        inputs = keras.Input(shape, name='Input')
        net = inputs
        for layer in seed_layers:
            net = layer(net)
        return keras.Model(inputs, net, name=name)
    if style == 'sequential':
        return keras.Sequential([keras.Input(shape, name='Input')] + seed_layers, name=name)
    model = _subclassed_class(keras)(seed_layers, name=name)
    model(np.zeros((1,) + shape, np.float32))  # Builds the weights.
    return model


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
