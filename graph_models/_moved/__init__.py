"""Module paths of release 0.1, kept for one more release; each warns and forwards.

``graph_models/__init__.py`` appends this folder to the package's ``__path__``, so
``import graph_models.train`` still finds ``graph_models/_moved/train.py``, which warns with a
``DeprecationWarning`` naming the new path and then holds the new modules' names.
"""

import importlib
import sys
import warnings
from typing import Sequence

# Old module -> the modules its names are in now (tests/test_layout.py pins the list).
MOVED = {'graph_models.cpuinfo': ['graph_models.system.cpu'], 'graph_models.signals': ['graph_models.system.signals'], 'graph_models.noise': ['graph_models.system.stderr_filter'], 'graph_models.layers': ['graph_models.nets.layers'], 'graph_models.mlp': ['graph_models.nets.mlp'], 'graph_models.cnn': ['graph_models.nets.cnn'], 'graph_models.architectures': ['graph_models.nets.architectures'], 'graph_models.architectures_graph': ['graph_models.nets.layers'], 'graph_models.nets_factory': ['graph_models.nets.factory'], 'graph_models.graphs': ['graph_models.nets.graphs'], 'graph_models.keras_reference': ['graph_models.nets.keras_twins'], 'graph_models.summary': ['graph_models.nets.summary_table', 'graph_models.training.run_config'], 'graph_models.precision': ['graph_models.nets.precision'], 'graph_models.run_config': ['graph_models.training.run_config'], 'graph_models.loop': ['graph_models.training.loop'], 'graph_models.train': ['graph_models.training.train'], 'graph_models.evaluator': ['graph_models.training.scoring'], 'graph_models.checkpoints': ['graph_models.training.checkpoints'], 'graph_models.restore': ['graph_models.training.restore'], 'graph_models.tb_summaries': ['graph_models.training.tensorboard'], 'graph_models.tb_pictures': ['graph_models.training.tensorboard'], 'graph_models.multistep': ['graph_models.training.multistep'], 'graph_models.distributed': ['graph_models.training.distributed'], 'graph_models.cluster_local': ['graph_models.training.cluster_local'], 'graph_models.run_export': ['graph_models.export'], 'graph_models.labels': ['graph_models.litert.labels', 'graph_models.export'], 'graph_models.evaluate': ['graph_models.litert.evaluate', 'graph_models.litert.model_file'], 'graph_models.eval_report': ['graph_models.litert.evaluate', 'graph_models.pictures'], 'graph_models.inspect_model': ['graph_models.litert.inspect'], 'graph_models.inspect_tflite': ['graph_models.litert.model_file', 'graph_models.litert.inspect'], 'graph_models.predict': ['graph_models.litert.predict'], 'graph_models.predict_output': ['graph_models.litert.predict'], 'graph_models.compare': ['graph_models.research.compare'], 'graph_models.compare_qat': ['graph_models.research.keras_qat'], 'graph_models.stats': ['graph_models.research.statistics']}


def forward(old: str, new: Sequence[str]) -> None:
    """Warns that ``old`` moved, then gives module ``old`` every name of the ``new`` modules.

    Args:
      old: the deprecated module's name (its ``__name__``).
      new: the modules that hold its contents now (their names are copied, first one first).
    """
    where = ' and '.join(new)
    # stacklevel 3: the line that imported the old path (import machinery frames are skipped).
    warnings.warn(f'{old} moved to {where}; import it from there (the old path will be '
                  'removed in the next release)', DeprecationWarning, stacklevel=3)
    namespace = sys.modules[old].__dict__
    for name in reversed(list(new)):
        module = importlib.import_module(name)
        namespace.update({key: value for key, value in vars(module).items()
                          if not (key.startswith('__') and key.endswith('__'))})
