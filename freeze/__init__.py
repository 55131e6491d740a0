"""A standalone toolkit for TF1 graphs: freeze, convert to TFLite, verify, refuse unsafe graphs.

It imports nothing from the project that uses it and works on any TF1 graph.

Modules:
  errors: `ToolkitError` and its kinds (each carries a one-line message and an exit status).
  freeze_graph: `freeze_session`, GraphDef reading (``.pb`` and ``.pbtxt``) and writing.
  sources: `load_source` (``.pb``/``.pbtxt``, checkpoint + ``.meta``, SavedModel) and
    `make_inference_graph` (training graph -> frozen inference graph).
  tflite: the TFLiteConverter v1 paths (``from_session``, ``from_frozen_graph``,
    ``toco_convert``) and the float / dynamic / int8 / uint8 modes.
  verify: checks that an integer ``.tflite`` computes in integers, loads and agrees.
  export: `export_graph` (verified conversion) and `write_export` (model + record as a pair).
  safety: the op allow-list and the tensor size bounds for untrusted graphs.
  fileio: atomic publishing of file groups.
"""

from freeze.errors import (ExportError, FreezeError, ToolkitError, UnsafeGraphError,
                           UsageError, VerificationError)

# The rest loads TensorFlow: imported on first use, so that the error types stay cheap.
_LAZY = {
    'ExportRecord': 'freeze.export', 'export_graph': 'freeze.export',
    'read_export_record': 'freeze.export', 'write_export': 'freeze.export',
    'freeze_session': 'freeze.freeze_graph', 'read_graph_def': 'freeze.freeze_graph',
    'write_graph_def': 'freeze.freeze_graph', 'FrozenGraph': 'freeze.sources',
    'load_source': 'freeze.sources', 'make_inference_graph': 'freeze.sources',
    'convert_frozen_graph': 'freeze.tflite', 'convert_graph_def': 'freeze.tflite',
    'convert_session': 'freeze.tflite', 'toco_convert': 'freeze.tflite',
}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


__all__ = ['ToolkitError', 'UsageError', 'FreezeError', 'ExportError', 'UnsafeGraphError',
           'VerificationError'] + sorted(_LAZY)
