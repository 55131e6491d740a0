"""Finds the layers the rewrite quantizes, with TF 1.15's patterns and precedence.

A layer is a ``Conv2D``, ``MatMul`` or ``DepthwiseConv2dNative`` whose weight input is a
variable's value (reference ``VariableV2``/``Identity`` or resource ``ReadVariableOp``) or
folded weights (``mul_fold``). After it, in order, all optional:

* ``BatchToSpaceND`` (atrous convolution: SpaceToBatchND -> conv -> BatchToSpaceND);
* a bias add (``BiasAdd``/``Add``/``AddV2`` reading the layer), or the folded batch-norm tail
  ``post_conv_mul`` -> ``correction_add`` -> ``add_fold``, optionally then an ``Identity``;
* a bypass ``Add``/``AddV2`` (residual connection);
* an activation ``Relu``/``Relu6``/``Identity``;
* a post-activation bypass ``Add``/``AddV2``.

Precedence (largest match wins, each layer matched once): post-activation bypass, activation,
a final bias add (logits), a convolution feeding another convolution (separable), and, our
addition, a layer with none of these (for example a bias-less ``MatMul`` giving the logits).
"""

import dataclasses
from typing import Iterable, List, Optional, Set

from graph_models.quantize._tf import tf
from graph_models.quantize import common

QUANTIZABLE_TYPES = frozenset({'Conv2D', 'MatMul', 'DepthwiseConv2dNative'})
RELU_TYPES = frozenset({'Relu', 'Relu6'})
ACTIVATION_TYPES = RELU_TYPES | {'Identity'}
ADD_TYPES = frozenset({'Add', 'AddV2'})
BIAS_TYPES = ADD_TYPES | {'BiasAdd'}


@dataclasses.dataclass
class LayerMatch:
    """One matched layer. ``activation_op`` is the op whose output gets ``act_quant``."""

    layer_op: tf.Operation
    weight_tensor: Optional[tf.Tensor]
    activation_op: Optional[tf.Operation]
    bypass_op: Optional[tf.Operation] = None
    post_activation_bypass_op: Optional[tf.Operation] = None
    bias_add_op: Optional[tf.Operation] = None


def weight_input(op: tf.Operation) -> Optional[tf.Tensor]:
    """The weight tensor of a layer op, or None when neither input is a weight."""
    # The second input first: for MatMul(x, W) the weight is ``b`` (TF 1.15 matched unordered).
    for tensor in (op.inputs[1], op.inputs[0]):
        if common.is_variable_read(tensor):
            return tensor
        if tensor.op.type == 'Mul' and tensor.op.name.endswith('mul_fold'):
            return tensor
    return None


def _consumers_of(ops: Iterable[tf.Operation], types) -> List[tf.Operation]:
    out = []
    for op in ops:
        out.extend(c for c in common.consumers(op.outputs[0]) if c.type in types)
    return out


def _folded_bias_adds(layer_output: tf.Operation) -> List[tf.Operation]:
    """``Mul`` (post_conv_mul) -> ``Add`` (correction_add) -> ``Add`` (add_fold)."""
    adds = []
    for mul in _consumers_of([layer_output], {'Mul'}):
        for correction in _consumers_of([mul], ADD_TYPES):
            adds.extend(_consumers_of([correction], ADD_TYPES))
    return adds


def _match_layer(op: tf.Operation, weights: tf.Tensor, stage: str) -> Optional[LayerMatch]:
    """Matches ``op`` for one precedence stage, or returns None."""
    b2s = _consumers_of([op], {'BatchToSpaceND'})
    layer_output = b2s[0] if b2s else op
    bias_adds = _consumers_of([layer_output], BIAS_TYPES)
    folded_adds = _folded_bias_adds(layer_output)
    identities = _consumers_of(folded_adds, {'Identity'})
    pre_activation = bias_adds + folded_adds + identities
    bypasses = _consumers_of(pre_activation, ADD_TYPES)

    def bias_of(pre: tf.Operation) -> tf.Operation:
        return pre.inputs[0].op if pre in identities else pre

    candidates = []  # (activation, bypass, bias add)
    for pre in pre_activation:
        for act in _consumers_of([pre], ACTIVATION_TYPES):
            candidates.append((act, None, bias_of(pre)))
    for bypass in bypasses:
        inputs = {t.name for t in bypass.inputs}
        pre = next(p for p in pre_activation if p.outputs[0].name in inputs)
        for act in _consumers_of([bypass], ACTIVATION_TYPES):
            candidates.append((act, bypass, bias_of(pre)))
    for act in _consumers_of([op], ACTIVATION_TYPES):
        candidates.append((act, None, None))

    if stage == 'post_activation_bypass':
        for act, bypass, bias in candidates:
            for post in _consumers_of([act], ADD_TYPES):
                return LayerMatch(op, weights, act, bypass, post, bias)
        return None
    if stage == 'activation':
        if candidates:
            act, bypass, bias = candidates[0]
            return LayerMatch(op, weights, act, bypass, None, bias)
        return None
    if stage == 'final':
        final = (bias_adds + folded_adds)
        return LayerMatch(op, weights, final[0]) if final else None
    if stage == 'separable':
        for consumer in common.consumers(layer_output.outputs[0]):
            if consumer.type in QUANTIZABLE_TYPES and \
                    weight_input(consumer) is not layer_output.outputs[0]:
                return LayerMatch(op, weights, op)
        return None
    # Our addition: a bare layer (no bias, no activation): quantize its output.
    return LayerMatch(op, weights, layer_output)


STAGES = ('post_activation_bypass', 'activation', 'final', 'separable', 'bare')


def find_layers(graph: tf.Graph, skip: Set[str] = frozenset()) -> List[LayerMatch]:
    """Every layer to quantize, in TF 1.15's precedence; ``skip``: layer op names to ignore
    (the unfolded convolutions that only feed a folded batch norm's statistics)."""
    layers = [(op, weight_input(op)) for op in graph.get_operations()
              if op.type in QUANTIZABLE_TYPES and op.name not in skip
              and not op.name.startswith('gradients')]
    layers = [(op, w) for op, w in layers if w is not None]
    matches, matched = [], set()
    for stage in STAGES:
        for op, weights in layers:
            if op.name in matched:
                continue
            match = _match_layer(op, weights, stage)
            if match is not None:
                matched.add(op.name)
                matches.append(match)
    return matches
