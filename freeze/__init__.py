"""Freezing checkpoints into GraphDefs and exporting them to TensorFlow Lite.

Modules:
  freeze_graph: `freeze_session` (the classic utility) and `freeze_checkpoint` (checkpoint folder
    -> frozen inference GraphDef), GraphDef reading and writing.
  tflite: the TFLiteConverter v1 paths (``from_session``, ``from_frozen_graph``,
    ``toco_convert``) and the float / dynamic / int8 / uint8 modes.
  export: one call from a checkpoint or a frozen ``.pb`` to a ``.tflite`` with its record.
"""

from freeze.freeze_graph import FreezeError, freeze_checkpoint, freeze_session
from freeze.export import export_checkpoint, export_frozen_graph, write_export
from freeze.tflite import ExportError, convert_frozen_graph, convert_session, toco_convert

__all__ = ['FreezeError', 'ExportError', 'freeze_session', 'freeze_checkpoint',
           'export_checkpoint', 'export_frozen_graph', 'write_export', 'convert_session',
           'convert_frozen_graph', 'toco_convert']
