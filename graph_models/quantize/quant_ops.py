"""Fake-quant ops with their range variables: last-value (weights) and zero-debiased moving
average (activations), as TF 1.15's ``contrib/quantize/python/quant_ops.py`` defined them."""

from typing import Tuple

from graph_models.quantize._tf import tf, v1
from graph_models.quantize.common import QUANTIZATION_VARIABLES

EMA_DECAY = 0.999


def _range_variable(name: str, value: float) -> tf.Variable:
    return v1.get_variable(name, shape=[], dtype=tf.float32,
                           initializer=v1.constant_initializer(value), trainable=False,
                           collections=[v1.GraphKeys.GLOBAL_VARIABLES, QUANTIZATION_VARIABLES])


def _batch_range(inputs: tf.Tensor, bits: int, narrow_range: bool,
                 symmetric: bool) -> Tuple[tf.Tensor, tf.Tensor]:
    batch_min = tf.reduce_min(inputs, name='BatchMin')
    batch_max = tf.reduce_max(inputs, name='BatchMax')
    if symmetric:
        # Two's complement: the negative side is one step longer unless the range is narrow.
        ratio = -1.0 if narrow_range else -((1 << bits) - 2) / (1 << bits)
        return (tf.minimum(batch_min, batch_max / ratio),
                tf.maximum(batch_max, batch_min * ratio))
    # TFLite needs 0.0 inside every range.
    return tf.minimum(batch_min, 0.0), tf.maximum(batch_max, 0.0)


def _debiased_ema(var: tf.Variable, value: tf.Tensor, decay: float, name: str) -> tf.Tensor:
    """``var = biased / (1 - decay**n)`` with ``biased`` the EMA started at 0 (TF 1.15's
    ``assign_moving_average(zero_debias=True)``): the first update gives the batch range
    itself, not a step of 0.1% from the initial value.

    The state's names are TF 1.15's, so checkpoints restore both ways: its ``_zero_debias``
    opens a variable scope named after the variable's full name inside the quantizer's scope
    ``<s>``, giving ``<s>/<s>/min/biased`` and ``<s>/<s>/min/local_step`` (``max`` alike).
    Runs written before this used ``<s>/min/biased``; see
    `graph_models.training.checkpoints.legacy_range_state_name`.
    """
    with v1.variable_scope(var.op.name, auxiliary_name_scope=False):
        biased = v1.get_variable('biased', shape=[], dtype=tf.float32,
                                 initializer=v1.zeros_initializer(), trainable=False,
                                 collections=[v1.GraphKeys.GLOBAL_VARIABLES,
                                              QUANTIZATION_VARIABLES])
        local_step = v1.get_variable('local_step', shape=[], dtype=tf.float32,
                                     initializer=v1.zeros_initializer(), trainable=False,
                                     collections=[v1.GraphKeys.GLOBAL_VARIABLES,
                                                  QUANTIZATION_VARIABLES])
    with tf.name_scope(name):
        new_biased = v1.assign_sub(biased, (biased - value) * (1.0 - decay))
        steps = v1.assign_add(local_step, 1.0)
        return v1.assign(var, new_biased / (1.0 - tf.pow(decay, steps)))


def last_value_quantize(inputs: tf.Tensor, scope: str, *, is_training: bool, bits: int,
                        narrow_range: bool, symmetric: bool, init_min: float = -6.0,
                        init_max: float = 6.0) -> tf.Tensor:
    """Fake quantization whose range is the last batch's range (weights).

    Creates ``<scope>/min``, ``<scope>/max`` and ``<scope>/FakeQuantWithMinMaxVars``
    (``scope`` made unique when taken).
    """
    with v1.variable_scope(None, default_name=scope, values=[inputs]):
        min_var = _range_variable('min', init_min)
        max_var = _range_variable('max', init_max)
        if is_training:
            range_min, range_max = _batch_range(inputs, bits, narrow_range, symmetric)
            min_value = v1.assign(min_var, range_min, name='AssignMinLast')
            max_value = v1.assign(max_var, range_max, name='AssignMaxLast')
        else:
            min_value, max_value = min_var.read_value(), max_var.read_value()
        return tf.quantization.fake_quant_with_min_max_vars(
            inputs, min_value, max_value, num_bits=bits, narrow_range=narrow_range,
            name='FakeQuantWithMinMaxVars')


def moving_avg_quantize(inputs: tf.Tensor, scope: str, *, is_training: bool, bits: int,
                        narrow_range: bool, symmetric: bool, init_min: float = -6.0,
                        init_max: float = 6.0, ema_decay: float = EMA_DECAY) -> tf.Tensor:
    """Fake quantization whose range is a zero-debiased moving average of batch ranges
    (activations); ops ``<scope>/AssignMinEma``, ``<scope>/AssignMaxEma``."""
    with v1.variable_scope(None, default_name=scope, values=[inputs]):
        min_var = _range_variable('min', init_min)
        max_var = _range_variable('max', init_max)
        if is_training:
            range_min, range_max = _batch_range(inputs, bits, narrow_range, symmetric)
            min_value = _debiased_ema(min_var, range_min, ema_decay, 'AssignMinEma')
            max_value = _debiased_ema(max_var, range_max, ema_decay, 'AssignMaxEma')
        else:
            min_value, max_value = min_var.read_value(), max_var.read_value()
        return tf.quantization.fake_quant_with_min_max_vars(
            inputs, min_value, max_value, num_bits=bits, narrow_range=narrow_range,
            name='FakeQuantWithMinMaxVars')


def delayed(quant: tf.Tensor, inputs: tf.Tensor, step: tf.Tensor, quant_delay: int,
            scope: str) -> tf.Tensor:
    """Float ``inputs`` until ``step >= quant_delay``, then ``quant``.

    TF 1.15 used ``cond`` (Switch/Merge); under TF 2's control flow that is a function call per
    op, so this is a Select with the same predicate ``<scope>/activate_quant`` and the name
    ``<scope>/delayed_quant``. Both branches are computed: the ranges learn during the delay.
    """
    active = tf.greater_equal(step, quant_delay, name=scope + '/activate_quant')
    return tf.where(active, quant, inputs, name=scope + '/delayed_quant')
