"""The one table of the seed architectures, read by the graph builders and the Keras twins.

The graph builders (`graph_models.nets.mlp`, `graph_models.nets.cnn`) and the three Keras styles
(`graph_models.nets.keras_twins`) all build their layers from `layer_specs`, so a change to an
architecture here changes every version of it at once. This module imports no TensorFlow.

Layer names are the graph's variable scopes (``fc1``, ``conv1``, ``logits``, ...); the graph
builders turn them into ``<model>/<layer>/weights`` etc., names the tests pin.
"""

import dataclasses
from typing import Dict, Optional, Sequence, Tuple

# Hidden layer sizes of the MLP presets.
MLP_HIDDEN: Dict[str, Tuple[int, ...]] = {
    'mlp': (512,),
    'mlp_small': (128,),
    'mlp_deep': (512, 512),
}

# The CNN's convolution stack: (layer, filters, kernel size, max-pool layer after it or None).
# VALID padding, stride 1, 2x2 max-pooling.
CNN_CONVS: Tuple[Tuple[str, int, int, Optional[str]], ...] = (
    ('conv1', 32, 3, 'pool1'),
    ('conv2', 64, 3, 'pool2'),
    ('conv3', 64, 3, None),
)
# The CNN's hidden dense layers after the flatten: (layer, units).
CNN_DENSE: Tuple[Tuple[str, int], ...] = (('fc1', 64),)

INPUT_SHAPES: Dict[str, Tuple[int, ...]] = {
    'mlp': (784,), 'mlp_small': (784,), 'mlp_deep': (784,), 'cnn': (28, 28, 1)}
FAMILIES: Dict[str, str] = {'mlp': 'mlp', 'mlp_small': 'mlp', 'mlp_deep': 'mlp', 'cnn': 'cnn'}
# One line per model for ``--help`` (the command line lists them without importing TensorFlow).
DESCRIPTIONS: Dict[str, str] = {
    'mlp': '784-512-10 MLP (TF1 reference)',
    'mlp_small': '784-128-10 MLP',
    'mlp_deep': '784-512-512-10 MLP',
    'cnn': 'conv32-pool-conv64-pool-conv64-fc64-fc10 CNN',
}


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One layer of a seed architecture.

    Attributes:
      kind: ``conv``, ``pool``, ``flatten``, ``dense`` or ``dropout``.
      name: the layer's name (the graph's variable scope).
      size: filters (conv), units (dense) or pool size (pool); 0 otherwise.
      kernel: convolution kernel size; 0 otherwise.
      relu: whether a ReLU follows (conv, dense); the ``logits`` layer is linear.
      rate: dropout rate (dropout only).
    """

    kind: str
    name: str
    size: int = 0
    kernel: int = 0
    relu: bool = True
    rate: float = 0.0


def layer_specs(name: str, num_classes: int = 10, *,
                hidden_sizes: Optional[Sequence[int]] = None,
                dropout_rate: float = 0.0) -> Tuple[LayerSpec, ...]:
    """The layers of a seed model, in order (the input is not a layer).

    Dropout layers appear only when ``dropout_rate > 0`` (graph: training graph only).

    Args:
      name: ``mlp``, ``mlp_small``, ``mlp_deep`` or ``cnn``.
      num_classes: units of the linear ``logits`` layer.
      hidden_sizes: MLP hidden sizes; None takes the preset's (`MLP_HIDDEN`).
      dropout_rate: dropout after each hidden dense layer.

    Returns:
      A tuple of `LayerSpec`.

    Raises:
      KeyError: for an unknown model name.
    """
    specs = []
    if FAMILIES[name] == 'cnn':
        for layer, filters, kernel, pool in CNN_CONVS:
            specs.append(LayerSpec('conv', layer, filters, kernel))
            if pool:
                specs.append(LayerSpec('pool', pool, 2))
        specs.append(LayerSpec('flatten', 'flatten'))
        hidden = CNN_DENSE
    else:
        sizes = MLP_HIDDEN[name] if hidden_sizes is None else tuple(hidden_sizes)
        hidden = tuple((f'fc{i}', units) for i, units in enumerate(sizes, start=1))
    for i, (layer, units) in enumerate(hidden, start=1):
        specs.append(LayerSpec('dense', layer, units))
        if dropout_rate > 0:
            specs.append(LayerSpec('dropout', f'dropout{i}', rate=dropout_rate))
    specs.append(LayerSpec('dense', 'logits', num_classes, relu=False))
    return tuple(specs)


def parameter_count(name: str, num_classes: int = 10, *,
                    hidden_sizes: Optional[Sequence[int]] = None) -> int:
    """Trainable parameters of a seed model (no batch norm), computed from the table alone."""
    shape = INPUT_SHAPES[name]
    total = 0
    for spec in layer_specs(name, num_classes, hidden_sizes=hidden_sizes):
        if spec.kind == 'conv':
            total += spec.kernel * spec.kernel * shape[-1] * spec.size + spec.size
            shape = (shape[0] - spec.kernel + 1, shape[1] - spec.kernel + 1, spec.size)
        elif spec.kind == 'pool':
            shape = (shape[0] // spec.size, shape[1] // spec.size, shape[2])
        elif spec.kind == 'flatten':
            size = 1
            for d in shape:
                size *= d
            shape = (size,)
        elif spec.kind == 'dense':
            total += shape[-1] * spec.size + spec.size
            shape = (spec.size,)
    return total
