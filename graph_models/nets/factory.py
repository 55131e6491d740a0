"""One factory from model names to graph-building functions, slim's ``nets_factory`` style.

Registered models:

=============  =====================  ===========================================
name           input                  network
=============  =====================  ===========================================
``mlp``        ``[batch, 784]``       784-512-10 (the TF1 reference), 407,050 params
``mlp_small``  ``[batch, 784]``       784-128-10, 101,770 params
``mlp_deep``   ``[batch, 784]``       784-512-512-10, 669,706 params
``cnn``        ``[batch, 28, 28, 1]`` the Keras seed's conv stack, 93,322 params
=============  =====================  ===========================================

A `ModelConfig` names a model and its options (hidden sizes, dropout, batch norm); it is what
the run config stores so that export can rebuild the same network. The layers themselves come
from `graph_models.nets.architectures`, the table the Keras twins read too.
"""

import dataclasses
import functools
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from graph_models.nets import architectures
from graph_models.nets import cnn
from graph_models.nets import mlp
from graph_models.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A registered model.

    Attributes:
      builder: ``(inputs, num_classes, is_training, scope, **options) -> (logits,
        end_points)``.
      input_shape: shape of one example (without the batch dimension).
      family: ``mlp`` or ``cnn``; decides which options apply.
      hidden_sizes: default hidden layer sizes of an MLP preset.
      description: one line for ``--help``.
    """

    builder: Callable[..., Any]
    input_shape: Tuple[int, ...]
    family: str
    hidden_sizes: Tuple[int, ...] = ()
    description: str = ''


_A = architectures
_BUILDERS = {'mlp': mlp.mlp, 'cnn': cnn.cnn}  # Per family.
MODELS: Dict[str, ModelSpec] = {
    name: ModelSpec(_BUILDERS[_A.FAMILIES[name]], _A.INPUT_SHAPES[name], _A.FAMILIES[name],
                    _A.MLP_HIDDEN.get(name, ()), description)
    for name, description in _A.DESCRIPTIONS.items()
}

MODEL_NAMES = tuple(MODELS)


# Largest MLP layer accepted (a 784 x 65536 float32 layer is already 205 MB).
MAX_HIDDEN_UNITS = 1 << 16


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Which network to build and with which options.

    Attributes:
      name: a registered model name (see `MODELS`).
      num_classes: number of output classes.
      hidden_sizes: MLP hidden layer sizes; None takes the preset's.
      dropout_rate: training-graph dropout rate in ``[0, 1)``.
      batch_norm: CNN only: batch norm after each convolution.
    """

    name: str = 'mlp'
    num_classes: int = 10
    hidden_sizes: Optional[Tuple[int, ...]] = None
    dropout_rate: float = 0.0
    batch_norm: bool = False

    def __post_init__(self):
        if self.name not in MODELS:
            raise ConfigError(f'unknown model {self.name!r}; choose one of '
                              f'{", ".join(MODEL_NAMES)}')
        spec = MODELS[self.name]
        if self.num_classes < 2:
            raise ConfigError(f'num_classes must be at least 2, got {self.num_classes}')
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ConfigError(f'dropout rate must be in [0, 1), got {self.dropout_rate}')
        if self.hidden_sizes is not None:
            if spec.family != 'mlp':
                mlps = ', '.join(n for n in MODEL_NAMES if MODELS[n].family == 'mlp')
                what = f'hidden sizes apply to the MLP models ({mlps}), not {self.name!r}'
                raise ConfigError(f'{what}: leave hidden_sizes unset for it, or choose an MLP '
                                  'model',
                                  cli_message=f'{what}: drop --hidden-sizes, or choose an MLP '
                                              'model with --model')
            given = list(self.hidden_sizes)
            # Whole numbers only, and at most MAX_HIDDEN_UNITS: a run_config.json saying 1e20
            # must be refused here, not overflow (or exhaust memory) while the graph is built.
            if not given or not all(isinstance(s, int) and not isinstance(s, bool)
                                    or (isinstance(s, float) and s.is_integer())
                                    for s in given):
                raise ConfigError(f'hidden sizes must be positive integers, got {given}')
            sizes = tuple(int(s) for s in given)
            if min(sizes) <= 0 or max(sizes) > MAX_HIDDEN_UNITS:
                raise ConfigError(f'hidden sizes must be positive integers of at most '
                                  f'{MAX_HIDDEN_UNITS:,}, got {given}')
            object.__setattr__(self, 'hidden_sizes', sizes)
        elif spec.family == 'mlp':
            object.__setattr__(self, 'hidden_sizes', spec.hidden_sizes)
        if self.batch_norm and spec.family != 'cnn':
            raise ConfigError(f'batch norm applies to the CNN, not {self.name!r}')

    @property
    def spec(self) -> ModelSpec:
        return MODELS[self.name]

    @property
    def input_shape(self) -> Tuple[int, ...]:
        """Shape of one input example, without the batch dimension."""
        return self.spec.input_shape

    def builder_options(self) -> Dict[str, Any]:
        """Keyword options for the model's builder."""
        if self.spec.family == 'mlp':
            return {'hidden_sizes': self.hidden_sizes, 'dropout_rate': self.dropout_rate}
        return {'batch_norm': self.batch_norm, 'dropout_rate': self.dropout_rate}

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d['hidden_sizes'] = list(self.hidden_sizes) if self.hidden_sizes is not None else None
        return d

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> 'ModelConfig':
        """Rebuilds a config written by `to_dict` (unknown keys are an error)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise ConfigError(f'unknown model settings {sorted(unknown)}')
        d = dict(d)
        if d.get('hidden_sizes') is not None:
            d['hidden_sizes'] = tuple(d['hidden_sizes'])
        return cls(**d)


def get_network_fn(config: ModelConfig, is_training: bool) -> Callable[..., Any]:
    """Returns the network function of a model config.

    Args:
      config: the `ModelConfig`.
      is_training: whether to build the training variant (dropout, batch statistics).

    Returns:
      ``network_fn(inputs, scope=config.name) -> (logits, end_points)``; it has the attribute
      ``input_shape``.
    """
    fn = functools.partial(config.spec.builder, num_classes=config.num_classes,
                           is_training=is_training, **config.builder_options())

    @functools.wraps(config.spec.builder)
    def network_fn(inputs, scope: Optional[str] = None):
        return fn(inputs, scope=scope or config.name)

    network_fn.input_shape = config.input_shape
    return network_fn


def count_parameters(variables: Sequence[Any]) -> int:
    """Total number of scalar values in ``variables`` (TF variables with static shapes)."""
    total = 0
    for var in variables:
        size = 1
        for dim in var.shape:
            size *= int(dim)
        total += size
    return total
