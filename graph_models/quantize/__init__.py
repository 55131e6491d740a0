"""Quantization-aware training: TF 1.15's ``tf.contrib.quantize`` for any TF1 graph on TF 2.21.

``create_training_graph`` / ``create_eval_graph`` (and their ``experimental_`` variants) rewrite
a finished forward graph **in place**, after the model and loss are built and before the
optimizer's ``minimize()``. A graph that already has optimizer (``Apply*``) ops raises
`QuantizeError` (a ``ValueError``, as TF 1.15 raised). Rewrite before creating a ``Session``
for the graph. A second call on a rewritten graph (or scope) changes nothing.

The modules follow contrib/quantize:

* `graph_models.quantize.fold`: batch-norm folding (``fold_batch_norms.py``);
* `graph_models.quantize.matching`: which layers are quantized (``quantize.py``'s patterns);
* `graph_models.quantize.rewrite`: where the fake-quant ops go (``quantize.py``);
* `graph_models.quantize.quant_ops`: the fake-quant ops and their ranges (``quant_ops.py``);
* `graph_models.quantize.common`: graph helpers and the ``fake_quantization_step`` counter;
* `graph_models.quantize.errors`: `QuantizeError`, `QuantizeConfigError`.

Inserted, per matched layer (``<ctx>`` is the layer op's scope): ``<ctx>/weights_quant``
(last-value range, narrow range), ``<ctx>/act_quant`` after the activation (or after the bias
add, or the bare layer), ``<ctx>/conv_quant`` before a bypass ``Add`` and
``<parent ctx>/act_quant`` after it, ``<parent ctx>/add_quant`` after a bypass not followed by a
ReLU, ``<scope of Add>/post_activation_bypass_quant`` after an ``Add`` following the activation,
and ``<op>/activation_<Type>_quant`` after ``Add``/``Mul`` ops combining quantized tensors.
Activation ranges are a zero-debiased moving average (decay 0.999) of each batch's range. The
delay (``<scope>/activate_quant``, ``<scope>/delayed_quant``) counts TF 1.15's
``fake_quantization_step``, incremented once per run of the graph.

The range variables (``<s>/min``, ``<s>/max`` and, for moving averages, TF 1.15's zero-debias
state ``<s>/<s>/min/biased``, ``<s>/<s>/min/local_step``, ``<s>/<s>/max/biased``,
``<s>/<s>/max/local_step``, for example ``conv/act_quant/conv/act_quant/min/biased``) are
global, non-trainable, named as TF 1.15 named them, so ``tf.compat.v1.train.Saver`` checkpoints
restore both ways between TF 1.15's rewrite and ours. ``activation_<Type>_quant`` ranges stay
asymmetric under ``symmetric=True``, as in TF 1.15.

Our additions to TF 1.15: a placeholder named ``Input`` gets ``input_quant`` with the fixed
range [0, 1] (an exported model then takes 8-bit pixels, ``real = q / 255``); every range
variable is also in the ``quantization_variables`` collection (export and restores find them
there); a layer with neither bias nor activation (a bias-less ``MatMul`` giving the logits) is
quantized too. The QAT reference in the documentation lists every deliberate difference.

The toolkit stands alone, like ``freeze``: it imports TensorFlow and nothing else of
``graph_models`` (its errors are its own, `QuantizeError` and `QuantizeConfigError`, both
``ValueError``s), so it rewrites any TF1 graph, ours or not.
"""

import dataclasses
from typing import Dict, List, Optional

from graph_models.quantize._tf import tf, v1
from graph_models.quantize.errors import QuantizeConfigError, QuantizeError
from graph_models.quantize import common, fold, matching, quant_ops, rewrite
from graph_models.quantize.common import QUANTIZATION_STEP, QUANTIZATION_VARIABLES
from graph_models.quantize.quant_ops import EMA_DECAY
from graph_models.quantize.rewrite import (ACT_QUANT, ADD_QUANT, CONV_QUANT,
                                           POST_ACTIVATION_BYPASS_QUANT, WEIGHTS_QUANT)

INPUT_QUANT = 'input_quant'
# The input placeholder that gets ``input_quant`` by default: the name our graphs give it
# (`graph_models.nets.graphs.INPUT`; a test pins the two together).
INPUT = 'Input'

# TF 1.15's list: a graph with any of these has its optimizer already.
_TRAINING_OP_PREFIXES = ('Apply', 'ResourceApply', 'SparseApply', 'ResourceSparseApply')


@dataclasses.dataclass(frozen=True)
class QuantizationConfig:
    """Settings of quantization-aware training, as stored in the run config.

    Attributes:
      weight_bits: bits of the weights' fake quantization (2 to 8 for TFLite export).
      activation_bits: bits of the activations' and input's fake quantization.
      symmetric: symmetric ranges (``min = -max``) instead of learned asymmetric ones.
      quant_delay: quantization step (graph runs) from which the fake quantization is active.
      freeze_bn_delay: quantization step from which folded batch norm uses the moving statistics
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
                raise QuantizeConfigError(f'{name.replace("_", " ")} must be from 2 to 16, got '
                                  f'{getattr(self, name)}')
        if self.quant_delay < 0:
            raise QuantizeConfigError(f'quant delay must be >= 0, got {self.quant_delay}')
        if self.freeze_bn_delay is not None and self.freeze_bn_delay < 0:
            raise QuantizeConfigError(f'freeze batch norm delay must be >= 0, got '
                              f'{self.freeze_bn_delay}')

    def training_rewrite(self):
        """The rewrite `graph_models.nets.graphs.build_training_graph` takes."""
        return lambda graph: experimental_create_training_graph(
            graph, weight_bits=self.weight_bits, activation_bits=self.activation_bits,
            symmetric=self.symmetric, quant_delay=self.quant_delay,
            freeze_bn_delay=self.freeze_bn_delay)

    def eval_rewrite(self):
        """The rewrite `graph_models.nets.graphs.build_inference_graph` takes."""
        return lambda graph: experimental_create_eval_graph(
            graph, weight_bits=self.weight_bits, activation_bits=self.activation_bits,
            symmetric=self.symmetric)

    def to_dict(self) -> Dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Dict) -> 'QuantizationConfig':
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise QuantizeConfigError(f'unknown quantization settings {sorted(unknown)}')
        return cls(**d)


# ---------------------------------------------------------------------------------------------
# Public API (TF 1.15's signatures)


def create_training_graph(input_graph: Optional[tf.Graph] = None, quant_delay: int = 0) -> None:
    """Rewrites a training graph in place for 8-bit quantization-aware training.

    Args:
      input_graph: the graph to rewrite; the default graph when None.
      quant_delay: number of graph runs (``fake_quantization_step``) before the fake
        quantization is active.

    Raises:
      QuantizeError: if the graph already has optimizer ops, or a batch norm cannot be folded.
    """
    _create_graph(input_graph, is_training=True, quant_delay=quant_delay)


def create_eval_graph(input_graph: Optional[tf.Graph] = None) -> None:
    """Rewrites an inference graph in place with 8-bit fake quantization (no range updates).

    Args:
      input_graph: the graph to rewrite; the default graph when None.

    Raises:
      QuantizeError: see `create_training_graph`.
    """
    _create_graph(input_graph, is_training=False)


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
      quant_delay: quantization step from which the fake quantization is active.
      freeze_bn_delay: quantization step from which folded batch norm uses (and stops
        updating) the moving statistics; None: never.
      scope: only quantize layers whose ops are in this scope.

    Raises:
      QuantizeError: see `create_training_graph`.
    """
    _create_graph(input_graph, is_training=True, weight_bits=weight_bits,
                  activation_bits=activation_bits, symmetric=symmetric,
                  quant_delay=quant_delay, freeze_bn_delay=freeze_bn_delay, scope=scope)


def experimental_create_eval_graph(input_graph: Optional[tf.Graph] = None,
                                   weight_bits: int = 8, activation_bits: int = 8,
                                   symmetric: bool = False, quant_delay: Optional[int] = None,
                                   scope: Optional[str] = None) -> None:
    """`create_eval_graph` with every setting exposed (``quant_delay`` as TF 1.15 took it).

    Raises:
      QuantizeError: see `create_training_graph`.
    """
    _create_graph(input_graph, is_training=False, weight_bits=weight_bits,
                  activation_bits=activation_bits, symmetric=symmetric,
                  quant_delay=quant_delay, scope=scope)


def fold_batch_norms(input_graph: Optional[tf.Graph] = None, *, is_training: bool,
                     freeze_bn_delay: Optional[int] = None) -> List[tf.Operation]:
    """Folds every batch norm after a Conv2D/depthwise/MatMul in place (no quantization).

    The quantization rewrite calls this first; alone it gives the float folded graph.

    Args:
      input_graph: the graph; the default graph when None.
      is_training: fold a training graph (batch statistics with corrections) or an inference
        graph (moving statistics).
      freeze_bn_delay: training only: quantization step from which moving statistics are
        used and no longer updated.

    Returns:
      The folded layer ops (for example ``<scope>/Conv2D_Fold``).

    Raises:
      QuantizeError: if a batch norm's moving statistics cannot be found.
    """
    graph = input_graph or v1.get_default_graph()
    try:
        return fold.fold_batch_norms(graph, is_training=is_training,
                                     freeze_bn_delay=freeze_bn_delay)[0]
    except fold.FoldError as e:
        raise QuantizeError(str(e)) from None


def quantized_activation_tensors(graph: tf.Graph) -> List[tf.Tensor]:
    """The outputs of every activation and input fake-quant op of a rewritten graph."""
    return [op.outputs[0] for op in graph.get_operations()
            if op.type in ('FakeQuantWithMinMaxVars', 'FakeQuantWithMinMaxArgs')
            and (f'/{ACT_QUANT}/' in op.name or op.name.startswith(ACT_QUANT + '/')
                 or op.name.startswith(INPUT_QUANT + '/'))]


# ---------------------------------------------------------------------------------------------
# The rewrite


def _check_for_training_ops(graph: tf.Graph) -> None:
    found = sorted({op.type for op in graph.get_operations()
                    if op.type.startswith(_TRAINING_OP_PREFIXES)})
    if found:
        raise QuantizeError(
            'the quantization rewrite must run after the loss is built and before the '
            f"optimizer's minimize(); the graph already has training ops {found}")


def _create_graph(input_graph, *, is_training, weight_bits=8, activation_bits=8,
                  symmetric=False, quant_delay=None, freeze_bn_delay=None, scope=None):
    graph = input_graph or v1.get_default_graph()
    _check_for_training_ops(graph)
    with graph.as_default():
        try:
            _, originals = fold.fold_batch_norms(graph, is_training=is_training,
                                                 freeze_bn_delay=freeze_bn_delay)
        except fold.FoldError as e:
            raise QuantizeError(str(e)) from None
        quantizer = rewrite.Quantizer(graph, is_training=is_training, weight_bits=weight_bits,
                                      activation_bits=activation_bits, symmetric=symmetric,
                                      quant_delay=quant_delay, scope=scope)
        for match in matching.find_layers(graph, skip=set(originals) | _stats_layers(graph)):
            quantizer.quantize_layer(match)
        quantizer.quantize_activation_layers()
        _quantize_input(graph, quantizer, activation_bits, scope)


def _stats_layers(graph: tf.Graph) -> set:
    """Layers of an earlier rewrite that only feed a folded batch norm's statistics."""
    skip = set()
    for op in graph.get_operations():
        if op.type in fold.LAYER_TYPES and any(
                c.type in fold.FUSED_TYPES and not common.consumers(c.outputs[0])
                for c in common.consumers(op.outputs[0])):
            skip.add(op.name)
    return skip


def _quantize_input(graph, quantizer, bits, scope):
    """Our addition: fixed [0, 1] fake quantization on a placeholder named ``Input``."""
    try:
        op = graph.get_operation_by_name(INPUT)
    except KeyError:
        return
    if op.type not in ('Placeholder', 'PlaceholderWithDefault') or (
            scope and not INPUT.startswith(scope)):
        return
    tensor = op.outputs[0]
    if common.followed_by_fake_quant(tensor) or tensor.dtype != tf.float32:
        return
    users = common.consumers(tensor)
    with graph.name_scope(None), tf.name_scope(INPUT_QUANT + '/'):
        quant = tf.quantization.fake_quant_with_min_max_args(
            tensor, min=0.0, max=1.0, num_bits=bits, name='FakeQuantWithMinMaxArgs')
        if quantizer.is_training and quantizer.quant_delay and quantizer.quant_delay > 0:
            quant = quant_ops.delayed(quant, tensor, common.quantization_step(graph),
                                      quantizer.quant_delay, INPUT_QUANT)
    common.reroute(tensor, quant, users)
