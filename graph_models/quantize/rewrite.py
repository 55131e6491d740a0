"""The quantization rewrite proper: fake-quant ops around every matched layer, as TF 1.15's
``contrib/quantize/python/quantize.py`` placed them."""

from typing import Optional, Sequence, Set

from graph_models.quantize._tf import tf
from graph_models.quantize import common, matching, quant_ops

WEIGHTS_QUANT = 'weights_quant'
ACT_QUANT = 'act_quant'
CONV_QUANT = 'conv_quant'
ADD_QUANT = 'add_quant'
POST_ACTIVATION_BYPASS_QUANT = 'post_activation_bypass_quant'

# Add/Mul outputs quantized when they combine already-quantized tensors (activation_<Type>_quant).
_VALID_SRC_TYPES = frozenset({'Add', 'AddV2', 'Mul'})
_PASS_THROUGH_TYPES = frozenset({'Reshape', 'Identity', 'BatchToSpaceND', 'SpaceToBatchND'})


class Quantizer:
    """Inserts fake-quant ops with TF 1.15's names, ranges, update and delay."""

    def __init__(self, graph: tf.Graph, *, is_training: bool, weight_bits: int,
                 activation_bits: int, symmetric: bool, quant_delay: Optional[int],
                 scope: Optional[str], ema_decay: float = quant_ops.EMA_DECAY):
        self.graph = graph
        self.is_training = is_training
        self.weight_bits = weight_bits
        self.activation_bits = activation_bits
        self.symmetric = symmetric
        self.quant_delay = quant_delay
        self.ema_decay = ema_decay
        self.scope = scope + '/' if scope and not scope.endswith('/') else scope
        self.quantized: Set[str] = set()
        self.weight_quants = {}  # variable op name -> its weights_quant output

    def insert(self, context: str, name: str, producer: tf.Operation,
               consumers: Sequence[tf.Operation], *, moving_avg: bool, bits: int,
               narrow_range: bool = False, init_min: float = -6.0, init_max: float = 6.0,
               producer_scope: Optional[str] = None, consumer_scope: Optional[str] = None,
               symmetric: Optional[bool] = None) -> Optional[tf.Tensor]:
        """Fake-quantizes ``producer``'s output for ``consumers`` at ``<context>/<name>``.

        ``symmetric`` overrides the rewrite's setting (None: the rewrite's).

        Returns:
          The quantized tensor, or None when nothing was inserted.
        """
        if producer_scope and not producer.name.startswith(producer_scope):
            return None
        if consumer_scope:
            consumers = [c for c in consumers if c.name.startswith(consumer_scope)]
            if not consumers:
                return None
        inputs = producer.outputs[0]
        if common.followed_by_fake_quant(inputs):
            return None  # Shared weights, overlapping bypass matches, a second rewrite.
        make = quant_ops.moving_avg_quantize if moving_avg else quant_ops.last_value_quantize
        kwargs = dict(ema_decay=self.ema_decay) if moving_avg else {}
        with self.graph.name_scope(None):
            quant = make(inputs, common.join(context, name), is_training=self.is_training,
                         bits=bits, narrow_range=narrow_range,
                         symmetric=self.symmetric if symmetric is None else symmetric,
                         init_min=init_min, init_max=init_max, **kwargs)
            if self.quant_delay and self.quant_delay > 0:
                quant = quant_ops.delayed(quant, inputs, common.quantization_step(self.graph),
                                          self.quant_delay, common.context_of(quant.op.name))
        changed = common.reroute(inputs, quant, consumers)
        if changed < len(consumers):
            raise ValueError('no inputs quantized for ops: ' +
                             ', '.join(c.name for c in consumers))
        self.quantized.add(producer.name)
        return quant

    def _quantize_weights(self, context: str, weights: tf.Tensor) -> None:
        """One ``weights_quant`` per variable: a resource variable read again by another layer
        (each ``tf.matmul`` reads it anew) reuses the first read's fake quantization."""
        var = _variable_of(weights)
        users = common.consumers(weights)
        if self.scope:
            users = [c for c in users if c.name.startswith(self.scope)]
            if not users:
                return  # TF 1.15: weights are quantized only for layers inside the scope.
        if var is not None and var in self.weight_quants:
            common.reroute(weights, self.weight_quants[var], users)
            return
        quant = self.insert(context, WEIGHTS_QUANT, weights.op, users, moving_avg=False,
                            bits=self.weight_bits, narrow_range=True)
        if quant is not None and var is not None:
            self.weight_quants[var] = quant

    def quantize_layer(self, match: matching.LayerMatch) -> None:
        context = common.context_of(match.layer_op.name)
        if match.weight_tensor is not None:
            self._quantize_weights(context, match.weight_tensor)
        add_context = common.context_of(context) if match.bypass_op is not None else context
        if match.activation_op is not None:
            self.insert(add_context, ACT_QUANT, match.activation_op,
                        common.consumers(match.activation_op.outputs[0]), moving_avg=True,
                        bits=self.activation_bits, init_min=0.0, producer_scope=self.scope)
        if match.bypass_op is not None and match.bias_add_op is not None:
            self.insert(context, CONV_QUANT, match.bias_add_op,
                        common.consumers(match.bias_add_op.outputs[0]), moving_avg=True,
                        bits=self.activation_bits, producer_scope=self.scope,
                        consumer_scope=self.scope)
            # An activation after the Add is fused into it at inference: no add_quant then.
            bypass_consumers = common.consumers(match.bypass_op.outputs[0])
            if not any(c.type in matching.RELU_TYPES for c in bypass_consumers):
                self.insert(add_context, ADD_QUANT, match.bypass_op, bypass_consumers,
                            moving_avg=True, bits=self.activation_bits,
                            producer_scope=self.scope, consumer_scope=self.scope)
        post = match.post_activation_bypass_op
        if post is not None:
            post_consumers = common.consumers(post.outputs[0])
            if not any(c.type in matching.RELU_TYPES for c in post_consumers):
                self.insert(common.context_of(post.name), POST_ACTIVATION_BYPASS_QUANT, post,
                            post_consumers, moving_avg=True, bits=self.activation_bits,
                            producer_scope=self.scope)

    def quantize_activation_layers(self) -> None:
        """``activation_<Type>_quant`` after Add/Mul ops that combine quantized tensors.

        Always asymmetric: TF 1.15's ``_QuantizeActivationLayers`` does not pass ``symmetric``
        on, and matching it keeps the ranges (and checkpoints) interchangeable.
        """
        for op in self.graph.get_operations():
            if self._quantizable_src(op, set()):
                self.insert(op.name, f'activation_{op.type}_quant', op,
                            common.consumers(op.outputs[0]), moving_avg=True,
                            bits=self.activation_bits, producer_scope=self.scope,
                            symmetric=False)

    def _quantizable_src(self, op: tf.Operation, visiting: Set[str]) -> bool:
        if op.name in self.quantized or op.type not in _VALID_SRC_TYPES or op.name in visiting:
            return False
        if op.name.startswith('gradients') or '_quant/' in op.name:
            return False  # Our own range updates (AssignMinEma/...) are not activations.
        visiting = visiting | {op.name}
        outputs = common.consumers(op.outputs[0])
        if len(outputs) == 1 and outputs[0].type in matching.RELU_TYPES:
            return False  # The activation that follows is quantized instead.
        for tensor in op.inputs:
            src = tensor.op
            while src.type in _PASS_THROUGH_TYPES:
                src = src.inputs[0].op
            if src.type in common.FAKE_QUANT_TYPES or src.name.endswith('delayed_quant'):
                return True
            if src.type in _VALID_SRC_TYPES and any(
                    self._quantizable_src(t.op, visiting) for t in src.inputs):
                return True
        return False


def _variable_of(weights: tf.Tensor) -> Optional[str]:
    """The variable op behind a weight read (resource handle or reference variable)."""
    op = weights.op
    if op.type == 'ReadVariableOp':
        return op.inputs[0].op.name
    if op.type == 'Identity' and op.inputs[0].op.type in ('VariableV2', 'Variable'):
        return op.inputs[0].op.name
    return None
