"""``inspect`` for any model: a ``.tflite`` (tensors, ops, Edge TPU check) or a TF graph source.

The library decides what the path is (`graph_models.litert.model_file.is_tflite`); the command
prints
the lines and exits with the status returned here.
"""

import collections
from typing import List, Sequence, Tuple

from graph_models.errors import ConfigError, one_line
from graph_models.litert.model_file import ModelInfo, read_model_info, read_tflite


def describe_graph_def(graph_def, name: str) -> List[str]:
    """Node count, inputs (placeholders) and op counts of a GraphDef, one line each (names
    read from the file with their control characters escaped)."""
    placeholders = [n.name for n in graph_def.node if n.op.startswith('Placeholder')]
    counts = collections.Counter(n.op for n in graph_def.node)
    return [one_line(line) for line in (
        f'{name}: frozen GraphDef, {len(graph_def.node)} nodes',
        f'inputs: {", ".join(placeholders) or "none"}',
        'ops: ' + ', '.join(f'{k} x{v}' for k, v in sorted(counts.items())))]


def inspect_model(path: str, *, edgetpu: bool = False, allow_unsafe_ops: bool = False,
                  tag_set: Sequence[str] = ('serve',), signature_def=None
                  ) -> Tuple[List[str], int]:
    """Describes a model; returns ``(lines, exit status)`` (1: not Edge TPU ready).

    Raises:
      ConfigError: ``edgetpu`` for a TF graph (it applies to a ``.tflite``).
    """
    from graph_models.litert.model_file import is_tflite
    if is_tflite(path):
        from graph_models.litert.model_file import edgetpu_blockers
        from graph_models.litert.inspect import format_info, inspect_file
        info = inspect_file(path)
        from freeze.metadata import format_metadata
        from graph_models.litert.model_file import read_tflite
        from graph_models.litert.labels import read_model_metadata
        # One line per entry: the command prints each as one line.
        lines = (format_info(info, path).split('\n') +
                 format_metadata(read_model_metadata(read_tflite(path), path)).split('\n'))
        if not edgetpu:
            return lines, 0
        blockers = edgetpu_blockers(info)
        if not blockers:
            return lines + ['Edge TPU: ready (every tensor 8-bit, static shapes, all ops '
                            'supported)'], 0
        return lines + [f'Edge TPU: not ready ({len(blockers)} blockers)'] + \
            [one_line(f'  {line}') for line in blockers], 1
    if edgetpu:
        raise ConfigError(f'--edgetpu checks a .tflite model; {path} is a TF graph: export it '
                          'with "graph-models export --quantize int8" first')
    from freeze import safety, sources
    from freeze.freeze_graph import read_graph_def
    if sources.source_kind(path) == sources.FROZEN_GRAPH:
        graph_def = read_graph_def(path)
        safety.check_graph_safety(graph_def, path, allow_unsafe_ops)
        safety.check_graph_size(graph_def, path)
        return describe_graph_def(graph_def, path), 0
    from graph_models.export import load_model
    frozen = load_model(path, tag_set=tag_set, signature_def=signature_def,
                        allow_unsafe_ops=allow_unsafe_ops)
    lines = describe_graph_def(frozen.graph_def, f'{path} ({frozen.source_kind})')
    lines[1] = 'inputs: ' + ', '.join(f'{n} {frozen.input_shapes[n]}' for n in frozen.inputs)
    lines.insert(2, f'outputs: {", ".join(frozen.outputs)}')
    return lines, 0


def inspect_file(path: str) -> ModelInfo:
    """Reads and parses a ``.tflite`` file (see `read_model_info`)."""
    return read_model_info(read_tflite(path), path)


def format_info(info: ModelInfo, path: str) -> str:
    """The human-readable report of ``graph-models inspect``: lines joined by newlines, the
    path and the names read from the file with their control characters escaped."""
    def tensor_line(t):
        quant = (f' scale {t.scale[0]:.6g} zero point {t.zero_point[0] if t.zero_point else 0}'
                 if t.scale else '')
        return f'  {t.name}: shape {t.shape} {t.dtype.lower()}{quant}'
    lines = [f'{path}: {info.size_bytes:,} bytes, {len(info.ops)} ops, '
             f'{len(info.tensors)} tensors', 'inputs:']
    lines += [tensor_line(t) for t in info.inputs]
    lines += ['outputs:'] + [tensor_line(t) for t in info.outputs]
    lines += ['ops: ' + ', '.join(f'{k} x{v}' for k, v in sorted(info.op_counts().items()))]
    lines += ['tensor dtypes: ' + ', '.join(f'{k.lower()} x{v}'
                                            for k, v in sorted(info.dtype_counts().items()))]
    return '\n'.join(one_line(line) for line in lines)
