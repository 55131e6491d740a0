"""Batch-norm folding, as TF 1.15's ``contrib/quantize/python/fold_batch_norms.py`` did it.

A ``Conv2D``, ``DepthwiseConv2dNative`` or ``MatMul`` followed by batch norm (fused
``FusedBatchNorm*``, with a ``Reshape`` around it for ``MatMul``, or unfused as built by
``tf.nn.batch_normalization``), optionally with a ``BatchToSpaceND`` (atrous) and an
``Identity`` between them, becomes, in the layer's scope:

* eval: ``mul_fold = w * gamma / sqrt(moving_var + eps)``, ``<Layer>_Fold`` and
  ``add_fold = conv + beta - moving_mean * gamma / sqrt(moving_var + eps)``;
* training: the weights are folded with the *moving* variance (what inference will use:
  ``correction_mult`` then ``mul_fold``); ``post_conv_mul`` multiplies by
  ``sqrt(moving_var + eps) / sqrt(batch_var + eps)`` and ``add_fold`` adds the batch-statistics
  bias, so the layer computes batch norm with batch statistics. From the quantization step
  ``freeze_bn_delay`` on, the correction is 1, ``correction_add`` shifts the bias to the moving
  statistics, and the moving-average updates get decay 0 (``freeze_moving_mean``,
  ``freeze_moving_var``): the statistics stop moving.

The original layer and batch-norm op stay in a training graph, where they compute the batch
statistics and the moving-average updates; their normalised output is no longer read.
"""

import dataclasses
from typing import List, Optional, Tuple

from graph_models.quantize._tf import tf, v1
from graph_models.quantize import common

FUSED_TYPES = frozenset({'FusedBatchNorm', 'FusedBatchNormV2', 'FusedBatchNormV3'})
LAYER_TYPES = frozenset({'Conv2D', 'DepthwiseConv2dNative', 'MatMul'})
_GRADIENT = 'GraphModelsFoldedFusedBatchNormGrad'


@tf.RegisterGradient(_GRADIENT)
def _folded_batch_norm_grad(op, *grads):
    """Gradient of a training ``FusedBatchNorm*`` whose batch mean/variance feed the fold.

    The stock gradient ignores the mean and variance outputs; the fold reads them, so their
    gradients flow to the input here (the variance output carries Bessel's correction).
    """
    x = op.inputs[0]
    mean = op.outputs[1]
    n = tf.cast(tf.size(x), tf.float32) / tf.cast(tf.size(mean), tf.float32)
    dx = tf.zeros_like(x)
    if grads[1] is not None:
        dx += grads[1] / n
    if grads[2] is not None:
        dx += 2.0 * grads[2] * (x - mean) / (n - 1.0)
    return [dx] + [None] * (len(op.inputs) - 1)


class FoldError(ValueError):
    """A batch norm cannot be folded (its moving statistics are not found)."""


@dataclasses.dataclass
class _BatchNorm:
    layer_op: tf.Operation          # Conv2D / DepthwiseConv2dNative / MatMul
    batch_to_space: Optional[tf.Operation]
    output: tf.Tensor               # the tensor the folded layer replaces
    gamma: tf.Tensor
    beta: tf.Tensor
    mean: tf.Tensor                 # batch mean in training, moving mean in eval
    variance: tf.Tensor             # population variance (training) or moving variance
    epsilon: float
    is_training: bool
    moving_mean: Optional[tf.Tensor] = None
    moving_variance: Optional[tf.Tensor] = None
    decay_mean: Optional[tf.Tensor] = None   # the (1 - momentum) factor of each update
    decay_variance: Optional[tf.Tensor] = None
    fused_op: Optional[tf.Operation] = None


def _producer(tensor: tf.Tensor, types) -> Optional[tf.Operation]:
    return tensor.op if tensor.op.type in types else None


def _layer_before(tensor: tf.Tensor) -> Tuple[Optional[tf.Operation], Optional[tf.Operation]]:
    """Walks back over Identity / Reshape (MatMul) / BatchToSpaceND to the layer op."""
    op = tensor.op
    if op.type == 'Identity':
        op = op.inputs[0].op
    if op.type == 'Reshape':
        op = op.inputs[0].op
    b2s = None
    if op.type == 'BatchToSpaceND':
        b2s, op = op, op.inputs[0].op
    if op.type in LAYER_TYPES:
        return op, b2s
    return None, None


def _moving_update(batch_stat: tf.Tensor) -> Tuple[Optional[tf.Tensor], Optional[tf.Tensor]]:
    """``(moving - batch_stat) * decay``: returns the moving value and the decay tensor."""
    for sub in common.consumers(batch_stat):
        if sub.type != 'Sub' or sub.inputs[1] is not batch_stat and \
                sub.inputs[1].name != batch_stat.name:
            continue
        moving = sub.inputs[0]
        if not common.is_variable_read(moving) and moving.op.type != 'ReadVariableOp':
            continue
        for mul in common.consumers(sub.outputs[0]):
            if mul.type == 'Mul':
                other = [t for t in mul.inputs if t.name != sub.outputs[0].name]
                return moving, (other[0] if other else None)
        return moving, None
    return None, None


def _find_fused(graph: tf.Graph) -> List[_BatchNorm]:
    found = []
    for bn in graph.get_operations():
        if bn.type not in FUSED_TYPES:
            continue
        layer, b2s = _layer_before(bn.inputs[0])
        if layer is None:
            continue
        output = bn.outputs[0]
        reshapes = [c for c in common.consumers(output) if c.type == 'Reshape']
        if layer.type == 'MatMul':
            if len(reshapes) != 1:
                continue
            output = reshapes[0].outputs[0]
        if not common.consumers(output):
            continue  # Already folded (or unused).
        training = bn.get_attr('is_training')
        match = _BatchNorm(layer, b2s, output, bn.inputs[1], bn.inputs[2], bn.inputs[3],
                           bn.inputs[4], bn.get_attr('epsilon'), training, fused_op=bn)
        if training:
            match.mean = bn.outputs[1]
            match.moving_mean, match.decay_mean = _moving_update(bn.outputs[1])
            match.moving_variance, match.decay_variance = _moving_update(bn.outputs[2])
        found.append(match)
    return found


def _other_input(op: tf.Operation, tensor: tf.Tensor) -> Optional[tf.Tensor]:
    names = [t.name for t in op.inputs]
    if tensor.name not in names or len(names) != 2:
        return None
    return op.inputs[1 - names.index(tensor.name)]


def _find_unfused(graph: tf.Graph) -> List[_BatchNorm]:
    """``x * inv + (beta - mean * inv)`` with ``inv = rsqrt(var + eps) [* gamma]``."""
    found = []
    for layer in graph.get_operations():
        if layer.type not in LAYER_TYPES:
            continue
        outs = [layer]
        outs += [c for c in common.consumers(layer.outputs[0]) if c.type == 'BatchToSpaceND']
        outs += [c for o in list(outs) for c in common.consumers(o.outputs[0])
                 if c.type == 'Identity']
        for out in outs:
            for scale in common.consumers(out.outputs[0]):
                match = _match_unfused(layer, out, scale)
                if match is not None:
                    found.append(match)
    return found


def _match_unfused(layer, out, scale) -> Optional[_BatchNorm]:
    if scale.type != 'Mul':
        return None
    inv = _other_input(scale, out.outputs[0])
    if inv is None:
        return None
    gamma = None
    rsqrt = _producer(inv, {'Rsqrt'})
    if rsqrt is None and inv.op.type == 'Mul':
        for i in (0, 1):
            if inv.op.inputs[i].op.type == 'Rsqrt':
                rsqrt, gamma = inv.op.inputs[i].op, inv.op.inputs[1 - i]
    if rsqrt is None or rsqrt.inputs[0].op.type not in ('Add', 'AddV2'):
        return None
    var_add = rsqrt.inputs[0].op
    const = [t for t in var_add.inputs if t.op.type == 'Const']
    if len(const) != 1:
        return None
    epsilon = float(tf.get_static_value(const[0]))
    variance = _other_input(var_add, const[0])
    for add in common.consumers(scale.outputs[0]):
        if add.type not in ('Add', 'AddV2'):
            continue
        shift = _other_input(add, scale.outputs[0])
        if shift is None or shift.op.type not in ('Sub', 'Neg'):
            continue
        mean_mul = shift.op.inputs[-1].op
        if mean_mul.type != 'Mul' or _other_input(mean_mul, inv) is None:
            continue
        if not common.consumers(add.outputs[0]):
            return None
        mean = _other_input(mean_mul, inv)
        beta = shift.op.inputs[0] if shift.op.type == 'Sub' else None
        training = not common.is_variable_read(variance)
        channels = int(layer.outputs[0].shape[-1])
        if gamma is None:
            gamma = tf.ones([channels])
        if beta is None:
            beta = tf.zeros([channels])
        b2s = out if out.type == 'BatchToSpaceND' else (
            out.inputs[0].op if out.inputs[0].op.type == 'BatchToSpaceND' else None)
        match = _BatchNorm(layer, b2s, add.outputs[0], gamma, beta, mean, variance, epsilon,
                           training)
        if training:
            match.moving_mean, match.decay_mean = _moving_update(mean)
            match.moving_variance, match.decay_variance = _moving_update(variance)
        return match
    return None


def _clone_layer(layer: tf.Operation, x: tf.Tensor, weights: tf.Tensor,
                 b2s: Optional[tf.Operation]) -> tf.Tensor:
    name = layer.name.rsplit('/', 1)[-1] + '_Fold'
    if layer.type == 'MatMul':
        out = tf.raw_ops.MatMul(a=x, b=weights, transpose_a=layer.get_attr('transpose_a'),
                                transpose_b=layer.get_attr('transpose_b'), name=name)
    else:
        op = tf.raw_ops.Conv2D if layer.type == 'Conv2D' else tf.raw_ops.DepthwiseConv2dNative
        attrs = dict(strides=layer.get_attr('strides'), padding=layer.get_attr('padding'),
                     data_format=layer.get_attr('data_format'),
                     dilations=layer.get_attr('dilations'),
                     explicit_paddings=layer.get_attr('explicit_paddings'))
        out = op(input=x, filter=weights, name=name, **attrs)
    if b2s is not None:
        out = tf.raw_ops.BatchToSpaceND(input=out, block_shape=b2s.inputs[1],
                                        crops=b2s.inputs[2],
                                        name=b2s.name.rsplit('/', 1)[-1] + '_Fold')
    return out


def _shape_for_weights(layer: tf.Operation, weights: tf.Tensor, per_channel: tf.Tensor,
                       name: str) -> tf.Tensor:
    if layer.type == 'DepthwiseConv2dNative':
        shape = weights.shape.as_list()
        return tf.reshape(per_channel, [shape[2], shape[3]], name=name)
    return per_channel


def _fold(match: _BatchNorm, freeze_bn_delay: Optional[int]) -> tf.Operation:
    layer = match.layer_op
    x, weights = layer.inputs[0], layer.inputs[1]
    if layer.type == 'MatMul' and layer.get_attr('transpose_b'):
        raise FoldError(f'cannot fold {layer.name}: transposed MatMul weights')
    context = common.context_of(layer.name)
    graph = layer.graph
    with graph.name_scope(context + '/' if context else None), tf.device(layer.device):
        eps = match.epsilon
        variance = match.variance
        if match.is_training and match.fused_op is not None:
            # FusedBatchNorm's batch variance carries Bessel's correction; the layer
            # normalised with the population variance.
            n = tf.cast(tf.size(match.fused_op.inputs[0]), tf.float32) / tf.cast(
                tf.size(match.mean), tf.float32)
            variance = tf.multiply(match.fused_op.outputs[2], (n - 1.0) / n,
                                   name='Undo_Bessel_Correction')
        multiplier = match.gamma * tf.math.rsqrt(variance + eps)
        bias = tf.subtract(match.beta, match.mean * multiplier, name='bias')
        folded_weights = weights
        recip = offset = None
        if match.is_training:
            scale, recip, offset = _corrections(match, variance, context, freeze_bn_delay)
            folded_weights = tf.multiply(
                weights, _shape_for_weights(layer, weights, scale, 'correction_reshape'),
                name='correction_mult')
        folded_weights = tf.multiply(
            folded_weights, _shape_for_weights(layer, weights, multiplier, 'scale_reshape'),
            name='mul_fold')
        out = _clone_layer(layer, x, folded_weights, match.batch_to_space)
        clone = out.op if match.batch_to_space is None else out.op.inputs[0].op
        if recip is not None:
            out = tf.multiply(recip, out, name='post_conv_mul')
            out = tf.add(out, offset, name='correction_add')
        out = tf.add(out, bias, name='add_fold')
    common.reroute(match.output, out)
    if match.fused_op is not None and match.is_training:
        # pylint: disable=protected-access
        match.fused_op._set_attr('_gradient_op_type',
                                 tf.compat.v1.AttrValue(s=_GRADIENT.encode()))
    return clone


def _corrections(match: _BatchNorm, variance: tf.Tensor, context: str,
                 freeze_bn_delay: Optional[int]):
    if match.moving_mean is None or match.moving_variance is None:
        raise FoldError(
            f'cannot fold the batch norm after {match.layer_op.name}: no moving-average update '
            '(moving - batch_stat) * decay of its batch mean and variance was found')
    with tf.name_scope('batch_norm_correction'):
        recip_sigma_mv = tf.math.rsqrt(match.moving_variance + match.epsilon)
        recip_sigma = tf.math.rsqrt(variance + match.epsilon)
        scale = tf.identity(tf.divide(recip_sigma_mv, recip_sigma, name='scale_compute'),
                            name='correction_scale')
        recip = tf.math.reciprocal(scale, name='reciprocal_compute')
        offset = tf.multiply(match.gamma, match.mean * recip_sigma
                             - match.moving_mean * recip_sigma_mv, name='offset_compute')
        if freeze_bn_delay is None:
            return scale, recip, tf.zeros_like(offset, name='correction_offset')
        frozen = tf.greater_equal(common.quantization_step(match.layer_op.graph),
                                  freeze_bn_delay, name='use_moving_average')
        for decay, name in ((match.decay_mean, 'freeze_moving_mean'),
                            (match.decay_variance, 'freeze_moving_var')):
            if decay is not None:
                users = common.consumers(decay)
                frozen_decay = tf.where(frozen, tf.zeros_like(decay), decay, name=name)
                common.reroute(decay, frozen_decay, users)
        recip = tf.where(frozen, tf.ones_like(recip), recip, name='correction_recip')
        offset = tf.where(frozen, offset, tf.zeros_like(offset), name='correction_offset')
    return scale, recip, offset


def fold_batch_norms(graph: tf.Graph, *, is_training: bool,
                     freeze_bn_delay: Optional[int] = None) -> Tuple[List[tf.Operation],
                                                                      List[str]]:
    """Folds every batch norm after a layer in ``graph``, in place.

    Returns:
      The folded layer ops (``<Layer>_Fold``) and the names of the original layer ops (which, in a
      training graph, now only feed the batch statistics).

    Raises:
      FoldError: a training batch norm whose moving statistics cannot be found.
    """
    folded, originals = [], []
    with graph.as_default():
        for match in _find_fused(graph) + _find_unfused(graph):
            if match.is_training and not is_training:
                # A training-mode batch norm in an eval rewrite: fold the moving statistics.
                if match.moving_mean is None or match.moving_variance is None:
                    raise FoldError(f'cannot fold the batch norm after {match.layer_op.name}: '
                                    'its moving statistics are not found')
                match.is_training, match.fused_op = False, None
                match.mean, match.variance = match.moving_mean, match.moving_variance
            folded.append(_fold(match, freeze_bn_delay))
            originals.append(match.layer_op.name)
    return folded, originals
