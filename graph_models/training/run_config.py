"""The run config: the JSON contract between training and export.

Training writes ``run_config.json`` beside its checkpoints before the first step. It holds
everything needed to rebuild the right graph from a checkpoint folder alone: the model and its
options, the input shape, the tensor names, the training hyperparameters and dataset, and the
package and TensorFlow versions that wrote it. Export never guesses.

Example::

    {
      "format_version": 1,
      "model": {"name": "mlp", "num_classes": 10, "hidden_sizes": [512],
                "dropout_rate": 0.0, "batch_norm": false},
      "input_shape": [784],
      "tensor_names": {"input": "Input", "labels": "Labels", "logits": "Logits",
                       "output": "Output"},
      "dataset": "mnist", "data_source": "/data/mnist", "limit": null,
      "epochs": 5, "batch_size": 100, "learning_rate": 0.001, "seed": 0,
      "quantization": {"weight_bits": 8, "activation_bits": 8, "symmetric": false,
                       "quant_delay": 0, "freeze_bn_delay": null},
      "xla": false, "precision": "float32", "steps_per_run": 1,
      "package_version": "0.1.0", "tensorflow_version": "2.21.0"
    }
"""

import dataclasses
import json
import math
import os
from typing import Any, Dict, List, Optional

from graph_models import __version__
from graph_models._tf import tf
from graph_models.fileio import atomic_open
from graph_models.errors import CheckpointError, ConfigError
from graph_models.nets.graphs import TENSOR_NAMES
from graph_models.nets import precision as precision_lib
from graph_models.nets.factory import ModelConfig
from graph_models.nets.summary_table import format_table
from graph_models.quantize import QuantizationConfig

RUN_CONFIG_FILE = 'run_config.json'
MAX_INT = 2 ** 31 - 1
# A run config is a few hundred bytes; refuse to parse megabytes of it.
MAX_RUN_CONFIG_BYTES = 1 << 20
FORMAT_VERSION = 1

# Settings that may change when a run is resumed; everything else must match the checkpoint.
RESUMABLE_CHANGES = ('epochs', 'data_source', 'xla', 'precision', 'steps_per_run')


def default_run_name(model: str, dataset: str, quantized: bool) -> str:
    """``<model>-<dataset>[-qat]``: the folder name of a run given no ``--run-name``."""
    return f'{model}-{dataset}' + ('-qat' if quantized else '')


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The settings of one training run.

    Attributes:
      model: the network.
      dataset: ``mnist`` or ``fashion_mnist``.
      epochs: number of passes over the training data.
      batch_size: examples per training step.
      learning_rate: Adam learning rate.
      seed: seed of initialization, dropout and data order.
      limit: number of training examples used (None: all).
      data_source: folder or file the data came from (informational).
      quantization: quantization-aware training settings, or None for a float run.
      xla: XLA JIT compilation of the training step (``--xla``); a speed setting only.
      precision: compute precision of the training session, ``float32`` or
        ``mixed_bfloat16`` (`graph_models.nets.precision`); variables and checkpoints are float32
        either way. Run configs written before this field read as ``float32``.
      steps_per_run: training steps per ``Session.run`` between summary and checkpoint
        steps (`graph_models.training.multistep`); a speed setting only. Not with ``quantization``.
    """

    model: ModelConfig = ModelConfig()
    dataset: str = 'mnist'
    epochs: int = 5
    batch_size: int = 100
    learning_rate: float = 1e-3
    seed: int = 0
    limit: Optional[int] = None
    data_source: Optional[str] = None
    quantization: Optional[QuantizationConfig] = None
    xla: bool = False
    precision: str = precision_lib.FLOAT32
    steps_per_run: int = 1

    def __post_init__(self):
        precision_lib.check_precision(self.precision)
        for name in ('epochs', 'batch_size', 'seed', 'limit', 'steps_per_run'):
            value = getattr(self, name)
            if value is None and name == 'limit':
                continue
            # Whole numbers that fit an int32 (a JSON 1e20 or "5" must not reach the graph).
            if isinstance(value, bool) or not isinstance(value, int) or \
                    not -MAX_INT <= value <= MAX_INT:
                raise ConfigError(f'{name.replace("_", " ")} must be an integer of at most '
                                  f'{MAX_INT:,}, got {value!r}')
        if not isinstance(self.learning_rate, (int, float)) or \
                isinstance(self.learning_rate, bool) or not math.isfinite(self.learning_rate):
            raise ConfigError(f'learning rate must be a finite number, got '
                              f'{self.learning_rate!r}')
        for name in ('epochs', 'batch_size', 'steps_per_run'):
            if getattr(self, name) <= 0:
                raise ConfigError(f'{name.replace("_", " ")} must be positive, got '
                                  f'{getattr(self, name)}')
        if not self.learning_rate > 0:
            raise ConfigError(f'learning rate must be positive, got {self.learning_rate}')
        if self.limit is not None and self.limit <= 0:
            raise ConfigError(f'limit must be a positive number of examples, got {self.limit}')
        if self.steps_per_run > 1 and self.quantization is not None:
            # The quantization rewrite edits the single step's graph; the loop body has none.
            raise ConfigError(f'steps per run {self.steps_per_run} does not apply to a '
                              'quantized run; use 1 with quantization',
                              cli_message=f'--steps-per-run {self.steps_per_run} does not '
                                          'apply with --quantize; leave it out')

    def run_name(self, name: Optional[str] = None) -> str:
        """The run's folder name: ``name`` when given, else ``<model>-<dataset>[-qat]``.

        The one place the default run name is made (single-process training, cluster workers
        and the command line all ask here).
        """
        if name is not None:  # An empty name is checked (and refused) like any other.
            return name
        return default_run_name(self.model.name, self.dataset, self.quantization is not None)

    def to_dict(self) -> Dict[str, Any]:
        """The JSON-ready dictionary, with the format and version fields."""
        d = dataclasses.asdict(self)
        d['model'] = self.model.to_dict()
        d['quantization'] = self.quantization.to_dict() if self.quantization else None
        return {
            'format_version': FORMAT_VERSION,
            **d,
            'input_shape': list(self.model.input_shape),
            'tensor_names': dict(TENSOR_NAMES),
            'package_version': __version__,
            'tensorflow_version': tf.__version__,
        }

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> 'RunConfig':
        """Rebuilds a run config from `to_dict`'s output.

        Raises:
          ConfigError: if a field is missing, unknown or invalid.
        """
        version = d.get('format_version')
        if version != FORMAT_VERSION:
            raise ConfigError(f'run config format version {version!r} is not supported (this '
                              f'is graph-models {__version__}, format {FORMAT_VERSION})')
        fields = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in fields}
        if 'model' not in kwargs:
            raise ConfigError('run config has no "model" entry')
        kwargs['model'] = ModelConfig.from_dict(kwargs['model'])
        if kwargs.get('quantization') is not None:
            kwargs['quantization'] = QuantizationConfig.from_dict(kwargs['quantization'])
        return cls(**kwargs)

    def recorded_data_dir(self, dataset: Optional[str] = None) -> Optional[str]:
        """Where this run's data came from, for a command that reads the run again.

        Every command that reads a run (eval, export, ``train --resume``) uses it unless told
        otherwise (``--data-dir``), so an offline machine never tries a download.

        Args:
          dataset: the dataset the command asks for (None: the run's own).

        Returns:
          The recorded folder or file, or None when ``dataset`` is another dataset or the
          source is no longer there (then the usual search applies).
        """
        if dataset not in (None, self.dataset) or not self.data_source:
            return None
        return self.data_source if os.path.exists(self.data_source) else None

    def differences(self, other: 'RunConfig') -> List[str]:
        """Names of the fields (other than `RESUMABLE_CHANGES`) where two configs differ."""
        return [f.name for f in dataclasses.fields(self)
                if f.name not in RESUMABLE_CHANGES
                and getattr(self, f.name) != getattr(other, f.name)]


def run_config_path(folder: str) -> str:
    return os.path.join(folder, RUN_CONFIG_FILE)


def write_run_config(folder: str, config: RunConfig) -> str:
    """Writes ``run_config.json`` into ``folder`` atomically; returns its path."""
    os.makedirs(folder, exist_ok=True)
    path = run_config_path(folder)
    with atomic_open(path, 'w') as f:
        json.dump(config.to_dict(), f, indent=2)
        f.write('\n')
    return path


def read_run_config(path: str) -> RunConfig:
    """Reads a run config from a checkpoint folder or a ``run_config.json`` path.

    Args:
      path: the checkpoint folder (or a checkpoint prefix inside it), or the JSON file.

    Returns:
      The `RunConfig`.

    Raises:
      CheckpointError: if there is no run config or it cannot be parsed.
    """
    if os.path.isdir(path):
        json_path = run_config_path(path)
    elif path.endswith('.json'):
        json_path = path
    else:  # A checkpoint prefix such as checkpoints/run/model.ckpt-100.
        json_path = run_config_path(os.path.dirname(path) or '.')
    if not os.path.isfile(json_path):
        raise CheckpointError(f'no {RUN_CONFIG_FILE} at {json_path}: pass a checkpoint folder '
                              'written by "graph-models train"')
    try:
        if os.path.getsize(json_path) > MAX_RUN_CONFIG_BYTES:
            raise ValueError(f'larger than {MAX_RUN_CONFIG_BYTES:,} bytes')
        with open(json_path, 'rb') as f:
            data = json.loads(f.read())
        if not isinstance(data, dict):
            raise ValueError('not a JSON object')
        return RunConfig.from_dict(data)
    except RecursionError:  # JSON nested thousands of levels deep.
        raise CheckpointError(f'{json_path} is not a valid run config (nested too deeply); '
                              're-run training or restore the file') from None
    except (ValueError, TypeError, AttributeError, OverflowError) as e:
        raise CheckpointError(f'{json_path} is not a valid run config ({e}); re-run training '
                              'or restore the file') from None
    except ConfigError as e:
        raise CheckpointError(f'{json_path}: {e}') from None


def find_run_config(folder: str) -> str:
    """The ``run_config.json`` of a run folder: in it, or in its only run subfolder.

    Raises:
      CheckpointError: if there is none, or several runs to choose from.
    """
    import os
    from graph_models.errors import CheckpointError
    from graph_models.training.run_config import RUN_CONFIG_FILE
    if not os.path.isdir(folder):
        raise CheckpointError(f'{folder} is not a folder')
    direct = os.path.join(folder, RUN_CONFIG_FILE)
    if os.path.isfile(direct):
        return direct
    found = sorted(os.path.join(folder, d, RUN_CONFIG_FILE) for d in os.listdir(folder)
                   if os.path.isfile(os.path.join(folder, d, RUN_CONFIG_FILE)))
    if len(found) == 1:
        return found[0]
    if not found:
        raise CheckpointError(f'{folder} holds no {RUN_CONFIG_FILE} (nor does any folder in it); '
                              'it is not a trained run')
    raise CheckpointError(f'{folder} holds {len(found)} runs; name one of: '
                          + ', '.join(os.path.dirname(p) for p in found))


def format_run(folder: str) -> str:
    """The layer table of a trained run, headed by its training settings."""
    from graph_models.training.run_config import read_run_config
    path = find_run_config(folder)
    run = read_run_config(path)
    quant = 'float'
    if run.quantization:
        q = run.quantization
        quant = (f'QAT {q.weight_bits}-bit weights, {q.activation_bits}-bit activations, '
                 f'quant delay {q.quant_delay}')
    header = [f'run: {path}',
              f'dataset {run.dataset}, {run.epochs} epochs, batch {run.batch_size}, '
              f'learning rate {run.learning_rate:g}, seed {run.seed}, {quant}']
    return '\n'.join(header) + '\n' + format_table(run.model)
