"""Quantization-aware training: TF 1.15 ``tf.contrib.quantize`` semantics on TF 2.21 graphs.

``create_training_graph`` / ``create_eval_graph`` (and their ``experimental_`` variants) rewrite
a finished forward graph **in place**. They must run after the model and loss are built and
before the optimizer's ``minimize()``; calling them on a graph that already has gradient or
optimizer ops raises `QuantizeError`. Rewrite before creating a ``Session`` for the graph: a
session that has already run a graph does not see in-place changes to its existing ops.

What the rewrite does, in order:

1. **Batch-norm folding.** Every ``Conv2D``/``DepthwiseConv2dNative`` followed by a
   ``FusedBatchNorm*`` is replaced by a convolution with folded weights
   ``w * gamma / sqrt(moving_variance + eps)`` (``<layer>/mul_fold``, ``<layer>/Conv2D_Fold``)
   and a folded bias (``<layer>/add_fold``). While training, a correction
   ``sqrt(moving_var + eps) / sqrt(batch_var + eps)`` (``<layer>/post_conv_mul``) and the
   batch-statistics bias make the layer compute exactly batch norm with batch statistics; from
   global step ``freeze_bn_delay`` on, the correction is 1 and the bias uses the moving
   statistics. The eval graph folds with the moving statistics. The original convolution stays
   in the training graph only to compute the batch statistics and the moving-average updates.
2. **Layer matching.** A layer is ``MatMul``, ``Conv2D`` or ``DepthwiseConv2dNative``, then
   optionally the fold correction ``Mul``, then ``BiasAdd``/``Add``/``AddV2``, then optionally
   ``Relu``/``Relu6`` (or an ``Identity`` inside the layer's scope). A layer that ends in its bias
   add (the logits) is matched too, so the logits are quantized and the converter can emit an
   integer output.
3. **Weights.** ``<layer>/weights_quant/FakeQuantWithMinMaxVars`` between the weights and the
   layer op: per-tensor range from the current weight values, widened to include 0
   (``weights_quant/min``, ``weights_quant/max``), ``narrow_range=True``, asymmetric unless
   ``symmetric=True``.
4. **Activations.** ``<layer>/act_quant/FakeQuantWithMinMaxVars`` after the activation (after the
   bias add for the final layer). Its range lives in the non-trainable variables
   ``act_quant/min`` and ``act_quant/max``, initialised to [0, 6] after ReLU and [-6, 6]
   elsewhere, and updated in training by an exponential moving average (decay 0.999) of each
   batch's range (widened to include 0).
5. **Input.** A placeholder named ``Input`` gets ``input_quant/FakeQuantWithMinMaxArgs`` with the
   fixed range [0, 1], so an exported model takes 8-bit images directly (``real = q / 255``).

``quant_delay``: until the global step (``tf.compat.v1.train.get_global_step()``, the counter
the optimizer increments; created if missing) reaches ``quant_delay``, every inserted
``.../delayed_quant`` selects the float tensor, so the graph computes exactly the float model
(the activation ranges are still learned meanwhile). From that step on, the quantized tensors
flow. The eval graph has no delay and no update ops: its fake-quant ops read the learned ranges.

The range variables are global, non-trainable and in the ``quantization_variables`` collection
(TF 1.15 used ``MOVING_AVERAGE_VARIABLES``; we keep them apart from batch-norm statistics), so
``tf.compat.v1.train.Saver`` saves and restores them with the checkpoint.
"""

import dataclasses
from typing import Dict, List, Optional, Sequence, Set

from graph_models._tf import tf, v1
from graph_models.errors import ConfigError, GraphModelsError
from graph_models.graphs import INPUT

WEIGHTS_QUANT = 'weights_quant'
ACT_QUANT = 'act_quant'
INPUT_QUANT = 'input_quant'
QUANTIZATION_VARIABLES = 'quantization_variables'
EMA_DECAY = 0.999

_QUANTIZABLE_TYPES = {'Conv2D', 'MatMul', 'DepthwiseConv2dNative'}
_CONV_TYPES = {'Conv2D', 'DepthwiseConv2dNative'}
_BATCH_NORM_TYPES = {'FusedBatchNorm', 'FusedBatchNormV2', 'FusedBatchNormV3'}
_BIAS_TYPES = {'BiasAdd', 'Add', 'AddV2'}
_RELU_TYPES = {'Relu', 'Relu6'}
_ACTIVATION_TYPES = _RELU_TYPES | {'Identity'}


class QuantizeError(GraphModelsError):
    """The graph cannot be rewritten (wrong time, already rewritten, unknown structure)."""


@dataclasses.dataclass(frozen=True)
class QuantizationConfig:
    """Settings of quantization-aware training, as stored in the run config.

    Attributes:
      weight_bits: bits of the weights' fake quantization (2 to 8 for TFLite export).
      activation_bits: bits of the activations' and input's fake quantization.
      symmetric: symmetric ranges (``min = -max``) instead of learned asymmetric ones.
      quant_delay: global step from which the fake quantization is active.
      freeze_bn_delay: global step from which folded batch norm uses the moving statistics
        (None: never during training).
    """

    weight_bits: int = 8
    activation_bits: int = 8
    symmetric: bool = False
    quant_delay: int = 0
    freeze_bn_delay: Optional[int] = None

    def __post_init__(self):
        for name in ('weight_bits', 'activation_bits'):
            if not 2 <= getattr(self, name) <= 16:
                raise ConfigError(f'{name.replace("_", " ")} must be from 2 to 16, got '
                                  f'{getattr(self, name)}')
        if self.quant_delay < 0:
            raise ConfigError(f'quant delay must be >= 0, got {self.quant_delay}')
        if self.freeze_bn_delay is not None and self.freeze_bn_delay < 0:
            raise ConfigError(f'freeze batch norm delay must be >= 0, got '
                              f'{self.freeze_bn_delay}')

    def training_rewrite(self):
        """The rewrite `graph_models.graphs.build_training_graph` takes."""
        return lambda graph: experimental_create_training_graph(
            graph, weight_bits=self.weight_bits, activation_bits=self.activation_bits,
            symmetric=self.symmetric, quant_delay=self.quant_delay,
            freeze_bn_delay=self.freeze_bn_delay)

    def eval_rewrite(self):
        """The rewrite `graph_models.graphs.build_inference_graph` takes."""
        return lambda graph: experimental_create_eval_graph(
            graph, weight_bits=self.weight_bits, activation_bits=self.activation_bits,
            symmetric=self.symmetric)

    def to_dict(self) -> Dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Dict) -> 'QuantizationConfig':
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f'unknown quantization settings {sorted(unknown)}')
        return cls(**d)


# ---------------------------------------------------------------------------------------------
# Public API


def create_training_graph(input_graph: Optional[tf.Graph] = None, quant_delay: int = 0) -> None:
    """Rewrites a training graph in place for 8-bit quantization-aware training.

    Args:
      input_graph: the graph to rewrite; the default graph when None.
      quant_delay: global step from which the fake quantization is active.

    Raises:
      QuantizeError: if the graph already has gradient or optimizer ops, or was rewritten
        before.
    """
    experimental_create_training_graph(input_graph, quant_delay=quant_delay)


def create_eval_graph(input_graph: Optional[tf.Graph] = None) -> None:
    """Rewrites an inference graph in place with 8-bit fake quantization (no updates).

    Args:
      input_graph: the graph to rewrite; the default graph when None.

    Raises:
      QuantizeError: if the graph was rewritten before.
    """
    experimental_create_eval_graph(input_graph)


def experimental_create_training_graph(input_graph: Optional[tf.Graph] = None,
                                       weight_bits: int = 8, activation_bits: int = 8,
                                       symmetric: bool = False, quant_delay: int = 0,
                                       freeze_bn_delay: Optional[int] = None,
                                       scope: Optional[str] = None) -> None:
    """`create_training_graph` with every setting exposed.

    Args:
      input_graph: the graph to rewrite; the default graph when None.
      weight_bits: bits for weights.
      activation_bits: bits for activations and the input.
      symmetric: symmetric instead of asymmetric ranges.
      quant_delay: global step from which the fake quantization is active.
      freeze_bn_delay: global step from which folded batch norm uses moving statistics.
      scope: only rewrite ops whose names start with this scope.

    Raises:
      QuantizeError: see `create_training_graph`.
    """
    _rewrite(input_graph, is_training=True, weight_bits=weight_bits,
             activation_bits=activation_bits, symmetric=symmetric, quant_delay=quant_delay,
             freeze_bn_delay=freeze_bn_delay, scope=scope)


def experimental_create_eval_graph(input_graph: Optional[tf.Graph] = None,
                                   weight_bits: int = 8, activation_bits: int = 8,
                                   symmetric: bool = False, quant_delay: Optional[int] = None,
                                   scope: Optional[str] = None) -> None:
    """`create_eval_graph` with every setting exposed.

    Args:
      input_graph: the graph to rewrite; the default graph when None.
      weight_bits: bits for weights.
      activation_bits: bits for activations and the input.
      symmetric: symmetric instead of asymmetric ranges.
      quant_delay: accepted for symmetry with the training call; an eval graph is always
        quantized.
      scope: only rewrite ops whose names start with this scope.

    Raises:
      QuantizeError: see `create_eval_graph`.
    """
    del quant_delay  # The eval graph always computes the quantized model.
    _rewrite(input_graph, is_training=False, weight_bits=weight_bits,
             activation_bits=activation_bits, symmetric=symmetric, quant_delay=0,
             freeze_bn_delay=None, scope=scope)


def fold_batch_norms(input_graph: Optional[tf.Graph] = None, *, is_training: bool,
                     freeze_bn_delay: Optional[int] = None,
                     scope: Optional[str] = None) -> List[tf.Operation]:
    """Folds every convolution + ``FusedBatchNorm*`` pair in place (no quantization).

    The quantization rewrite calls this first; alone it gives the float folded graph.

    Args:
      input_graph: the graph; the default graph when None.
      is_training: fold a training graph (batch statistics with corrections) or an inference
        graph (moving statistics).
      freeze_bn_delay: training only: global step from which moving statistics are used.
      scope: only fold ops whose names start with this scope.

    Returns:
      The folded convolution ops (``<layer>/Conv2D_Fold``).

    Raises:
      QuantizeError: if a batch norm's moving statistics cannot be found.
    """
    graph = input_graph or v1.get_default_graph()
    with graph.as_default():
        return [_fold_one(bn, is_training, freeze_bn_delay)
                for bn in _batch_norms_to_fold(graph, scope)]


# ---------------------------------------------------------------------------------------------
# The rewrite


def _rewrite(input_graph, *, is_training, weight_bits, activation_bits, symmetric, quant_delay,
             freeze_bn_delay, scope):
    graph = input_graph or v1.get_default_graph()
    names = [op.name for op in graph.get_operations()]
    if any(n.endswith('/' + WEIGHTS_QUANT + '/FakeQuantWithMinMaxVars') for n in names):
        raise QuantizeError('the graph is already quantized: call the rewrite once per graph')
    if is_training:
        optimizer_ops = [op.name for op in graph.get_operations()
                         if op.type.startswith(('Apply', 'ResourceApply', 'ResourceSparseApply'))
                         or op.name.startswith('gradients')]
        if optimizer_ops:
            raise QuantizeError(
                'create_training_graph must run after the loss is built and before the '
                f'optimizer\'s minimize(); the graph already has {optimizer_ops[0]!r}')
    with graph.as_default():
        global_step = v1.train.get_or_create_global_step()
        folded = fold_batch_norms(graph, is_training=is_training,
                                  freeze_bn_delay=freeze_bn_delay, scope=scope)
        stats_convs = {fold.name.replace('Conv2D_Fold', '').rstrip('/') for fold in folded}
        quantizer = _Quantizer(is_training=is_training, symmetric=symmetric,
                               quant_delay=quant_delay, global_step=global_step)
        for layer in _find_layers(graph, scope, stats_convs):
            quantizer.insert(layer.weights, [layer.op], layer.context + '/' + WEIGHTS_QUANT,
                             moving_average=False, bits=weight_bits, narrow_range=True,
                             init_range=(-6.0, 6.0))
            after_relu = layer.activation is not None and layer.activation.type in _RELU_TYPES
            output = (layer.activation or layer.bias).outputs[0]
            quantizer.insert(output, _consumers(output), layer.context + '/' + ACT_QUANT,
                             moving_average=True, bits=activation_bits, narrow_range=False,
                             init_range=(0.0, 6.0) if after_relu else (-6.0, 6.0))
        inputs = [op for op in graph.get_operations()
                  if op.type in ('Placeholder', 'PlaceholderWithDefault') and op.name == INPUT]
        if inputs and (scope is None or INPUT.startswith(scope)):
            quantizer.insert_fixed(inputs[0].outputs[0], INPUT_QUANT, 0.0, 1.0, activation_bits)


@dataclasses.dataclass
class _Layer:
    op: tf.Operation            # MatMul / Conv2D / DepthwiseConv2dNative
    weights: tf.Tensor          # its weight input
    bias: tf.Operation          # the bias add (or folded bias add)
    activation: Optional[tf.Operation]
    context: str                # the layer's scope, for example 'cnn/conv1'


def _context(op: tf.Operation) -> str:
    return op.name.rsplit('/', 1)[0] if '/' in op.name else ''


def _consumers(tensor: tf.Tensor) -> List[tf.Operation]:
    return list(tensor.consumers())


def _single_consumer(op: tf.Operation, types: Set[str]) -> Optional[tf.Operation]:
    consumers = _consumers(op.outputs[0])
    if len(consumers) == 1 and consumers[0].type in types:
        return consumers[0]
    return None


def _in_scope(op: tf.Operation, scope: Optional[str]) -> bool:
    return scope is None or op.name.startswith(scope)


def _find_layers(graph: tf.Graph, scope: Optional[str], skip_contexts: Set[str]) -> List[_Layer]:
    """Matches layer op -> [fold Mul] -> bias add -> [activation] chains."""
    layers = []
    for op in graph.get_operations():
        if op.type not in _QUANTIZABLE_TYPES or not _in_scope(op, scope):
            continue
        context = _context(op)
        # The original convolution of a folded batch norm only feeds the statistics.
        if context in skip_contexts and not op.name.endswith('Conv2D_Fold'):
            continue
        node = op
        correction = _single_consumer(node, {'Mul'})
        if correction is not None and correction.name.endswith('post_conv_mul'):
            node = correction
        bias = _single_consumer(node, _BIAS_TYPES)
        if bias is None:
            continue
        activation = _single_consumer(bias, _ACTIVATION_TYPES)
        if activation is not None and activation.type == 'Identity' and \
                _context(activation) != context:
            activation = None  # An Identity outside the layer (like ``Logits``) is no activation.
        layers.append(_Layer(op, op.inputs[1], bias, activation, context))
    return layers


def _reroute(old: tf.Tensor, new: tf.Tensor, consumers: Sequence[tf.Operation]) -> None:
    """Makes ``consumers`` read ``new`` wherever they read ``old``."""
    for consumer in consumers:
        for index, tensor in enumerate(consumer.inputs):
            if tensor.name == old.name:
                consumer._update_input(index, new)  # pylint: disable=protected-access


def _quant_variable(name: str, value: float) -> tf.Variable:
    return v1.get_variable(name, shape=[], dtype=tf.float32,
                           initializer=v1.constant_initializer(value), trainable=False,
                           collections=[v1.GraphKeys.GLOBAL_VARIABLES, QUANTIZATION_VARIABLES])


class _Quantizer:
    """Inserts fake-quant ops, with their range variables, updates and delay."""

    def __init__(self, *, is_training, symmetric, quant_delay, global_step):
        self.is_training = is_training
        self.symmetric = symmetric
        self.quant_delay = quant_delay
        self.global_step = global_step

    def _range(self, tensor, bits, narrow_range):
        batch_min = tf.reduce_min(tensor, name='BatchMin')
        batch_max = tf.reduce_max(tensor, name='BatchMax')
        if self.symmetric:
            # Two's complement: the negative side is one step longer unless the range is narrow.
            ratio = -1.0 if narrow_range else -((1 << bits) - 2) / (1 << bits)
            return (tf.minimum(batch_min, batch_max / ratio),
                    tf.maximum(batch_max, batch_min * ratio))
        # TFLite needs 0.0 inside every range.
        return tf.minimum(batch_min, 0.0), tf.maximum(batch_max, 0.0)

    def insert(self, tensor, consumers, scope_name, *, moving_average, bits, narrow_range,
               init_range):
        consumers = list(consumers)
        with v1.variable_scope(scope_name):
            min_var = _quant_variable('min', init_range[0])
            max_var = _quant_variable('max', init_range[1])
            if self.is_training:
                range_min, range_max = self._range(tensor, bits, narrow_range)
                if moving_average:
                    new_min = v1.assign_sub(min_var, (min_var - range_min) * (1.0 - EMA_DECAY),
                                            name='AssignMinEma')
                    new_max = v1.assign_sub(max_var, (max_var - range_max) * (1.0 - EMA_DECAY),
                                            name='AssignMaxEma')
                else:
                    new_min = v1.assign(min_var, range_min, name='AssignMinLast')
                    new_max = v1.assign(max_var, range_max, name='AssignMaxLast')
            else:
                new_min, new_max = min_var.read_value(), max_var.read_value()
            quant = tf.quantization.fake_quant_with_min_max_vars(
                tensor, new_min, new_max, num_bits=bits, narrow_range=narrow_range,
                name='FakeQuantWithMinMaxVars')
            quant = self._delay(tensor, quant)
        _reroute(tensor, quant, consumers)

    def insert_fixed(self, tensor, scope_name, low, high, bits):
        consumers = _consumers(tensor)
        with tf.name_scope(scope_name + '/'):
            quant = tf.quantization.fake_quant_with_min_max_args(
                tensor, min=low, max=high, num_bits=bits, name='FakeQuantWithMinMaxArgs')
            quant = self._delay(tensor, quant)
        _reroute(tensor, quant, consumers)

    def _delay(self, float_tensor, quant):
        if not (self.is_training and self.quant_delay > 0):
            return quant
        active = tf.greater_equal(self.global_step, self.quant_delay, name='activate_quant')
        return tf.where(active, quant, float_tensor, name='delayed_quant')


# ---------------------------------------------------------------------------------------------
# Batch-norm folding


def _batch_norms_to_fold(graph, scope):
    return [op for op in graph.get_operations()
            if op.type in _BATCH_NORM_TYPES and _in_scope(op, scope)
            and op.inputs[0].op.type in _CONV_TYPES and _consumers(op.outputs[0])]


def _moving_statistics(bn: tf.Operation):
    """The moving mean and variance read by (or belonging to) a batch-norm op."""
    if not bn.get_attr('is_training'):
        return bn.inputs[3], bn.inputs[4]
    bn_scope = _context(bn)
    found = {}
    for var in v1.global_variables():
        for stat in ('moving_mean', 'moving_variance'):
            if var.op.name == f'{bn_scope}/{stat}':
                found[stat] = var
    if len(found) != 2:
        raise QuantizeError(f'cannot fold {bn.name}: no {bn_scope}/moving_mean and '
                            f'{bn_scope}/moving_variance variables next to it')
    return found['moving_mean'].read_value(), found['moving_variance'].read_value()


def _fold_one(bn: tf.Operation, is_training: bool, freeze_bn_delay: Optional[int]):
    conv = bn.inputs[0].op
    context = _context(conv)
    x, weights = conv.inputs[0], conv.inputs[1]
    gamma, beta = bn.inputs[1], bn.inputs[2]
    epsilon = bn.get_attr('epsilon')
    moving_mean, moving_var = _moving_statistics(bn)
    with tf.name_scope(context + '/' if context else None):
        moving_std = tf.sqrt(moving_var + epsilon, name='moving_std')
        scale = gamma / moving_std
        if conv.type == 'DepthwiseConv2dNative':
            in_channels, multiplier = weights.shape[2], weights.shape[3]
            scale_w = tf.reshape(scale, [in_channels, multiplier])
        else:
            scale_w = scale
        folded_weights = tf.multiply(weights, scale_w, name='mul_fold')
        attrs = dict(strides=conv.get_attr('strides'), padding=conv.get_attr('padding'),
                     dilations=conv.get_attr('dilations'),
                     data_format=conv.get_attr('data_format').decode())
        if conv.type == 'DepthwiseConv2dNative':
            folded = tf.nn.depthwise_conv2d(x, folded_weights, strides=attrs['strides'],
                                            padding=attrs['padding'],
                                            dilations=attrs['dilations'][1:3],
                                            data_format=attrs['data_format'],
                                            name='Conv2D_Fold')
        else:
            folded = tf.nn.conv2d(x, folded_weights, name='Conv2D_Fold', **attrs)
        moving_bias = tf.subtract(beta, moving_mean * scale, name='moving_bias')
        if not is_training:
            out = tf.add(folded, moving_bias, name='add_fold')
        else:
            # The unfolded convolution gives the batch statistics batch norm would use.
            batch_mean, batch_var = tf.nn.moments(bn.inputs[0], axes=[0, 1, 2],
                                                  name='batch_moments')
            batch_std = tf.sqrt(batch_var + epsilon, name='batch_std')
            correction = moving_std / batch_std
            bias = beta - batch_mean * gamma / batch_std
            if freeze_bn_delay is not None:
                use_moving = tf.greater_equal(v1.train.get_or_create_global_step(),
                                              freeze_bn_delay, name='freeze_bn')
                correction = tf.where(use_moving, tf.ones_like(correction), correction)
                bias = tf.where(use_moving, moving_bias, bias)
            out = tf.multiply(folded, correction, name='post_conv_mul')
            out = tf.add(out, bias, name='add_fold')
    _reroute(bn.outputs[0], out, _consumers(bn.outputs[0]))
    return folded.op


def quantized_activation_tensors(graph: tf.Graph) -> List[tf.Tensor]:
    """The outputs of every activation and input fake-quant op of a rewritten graph."""
    return [op.outputs[0] for op in graph.get_operations()
            if op.type in ('FakeQuantWithMinMaxVars', 'FakeQuantWithMinMaxArgs')
            and (f'/{ACT_QUANT}/' in op.name or op.name.startswith(INPUT_QUANT + '/'))]
