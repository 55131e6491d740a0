"""Freezing checkpoints into GraphDefs and exporting them to TensorFlow Lite.

Filled by the export work (``freeze_session``, ``freeze_checkpoint``, the TFLiteConverter v1
paths); importable now so that the package layout is stable.
"""
