"""``inspect`` for any model: a ``.tflite`` (tensors, ops, Edge TPU check) or a TF graph source.

The library decides what the path is (`graph_models.evaluate.is_tflite`); the command prints
the lines and exits with the status returned here.
"""

import collections
from typing import List, Sequence, Tuple

from graph_models.errors import ConfigError


def describe_graph_def(graph_def, name: str) -> List[str]:
    """Node count, inputs (placeholders) and op counts of a GraphDef."""
    placeholders = [n.name for n in graph_def.node if n.op.startswith('Placeholder')]
    counts = collections.Counter(n.op for n in graph_def.node)
    return [f'{name}: frozen GraphDef, {len(graph_def.node)} nodes',
            f'inputs: {", ".join(placeholders) or "none"}',
            'ops: ' + ', '.join(f'{k} x{v}' for k, v in sorted(counts.items()))]


def inspect_model(path: str, *, edgetpu: bool = False, allow_unsafe_ops: bool = False,
                  tag_set: Sequence[str] = ('serve',), signature_def=None
                  ) -> Tuple[List[str], int]:
    """Describes a model; returns ``(lines, exit status)`` (1: not Edge TPU ready).

    Raises:
      ConfigError: ``edgetpu`` for a TF graph (it applies to a ``.tflite``).
    """
    from graph_models.evaluate import is_tflite
    if is_tflite(path):
        from graph_models.inspect_tflite import edgetpu_blockers, format_info, inspect_file
        info = inspect_file(path)
        from freeze.metadata import format_metadata
        from graph_models.evaluate import read_tflite
        from graph_models.labels import read_model_metadata
        lines = [format_info(info, path),
                 format_metadata(read_model_metadata(read_tflite(path), path))]
        if not edgetpu:
            return lines, 0
        blockers = edgetpu_blockers(info)
        if not blockers:
            return lines + ['Edge TPU: ready (every tensor 8-bit, static shapes, all ops '
                            'supported)'], 0
        return lines + [f'Edge TPU: not ready ({len(blockers)} blockers)'] + \
            [f'  {line}' for line in blockers], 1
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
    from graph_models.run_export import load_model
    frozen = load_model(path, tag_set=tag_set, signature_def=signature_def,
                        allow_unsafe_ops=allow_unsafe_ops)
    lines = describe_graph_def(frozen.graph_def, f'{path} ({frozen.source_kind})')
    lines[1] = 'inputs: ' + ', '.join(f'{n} {frozen.input_shapes[n]}' for n in frozen.inputs)
    lines.insert(2, f'outputs: {", ".join(frozen.outputs)}')
    return lines, 0
