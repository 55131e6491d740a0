"""Compute precision of a training session: ``float32`` or ``mixed_bfloat16``.

``mixed_bfloat16`` turns on grappler's oneDNN bfloat16 auto-mixed-precision rewrite for the
training session. The rewrite only changes compute dtypes inside the session: it casts the
inputs of products (matmuls, convolutions) and the element-wise ops between them to bfloat16
and casts back where a float32 op reads them. Variables, their updates, checkpoints, the
inference graph, frozen graphs and exports all stay float32, so nothing downstream changes.
Ops the rewrite does not list as bfloat16-safe (FakeQuantWithMinMaxVars among them, and the
loss and softmax) keep float32.

Without native bfloat16 products (AVX512_BF16 or AMX_BF16) oneDNN emulates them, which is
slower than float32, so `check_supported` refuses the setting there.
"""

from typing import Dict, Optional, Tuple

from graph_models.system.cpu import cpu_info
from graph_models.errors import ConfigError

FLOAT32 = 'float32'
MIXED_BFLOAT16 = 'mixed_bfloat16'
PRECISIONS = (FLOAT32, MIXED_BFLOAT16)
# The CPU flags (any one suffices) that give native bfloat16 products.
BFLOAT16_FLAGS = ('avx512_bf16', 'amx_bf16')


def check_precision(precision: str) -> None:
    """Raises `ConfigError` unless ``precision`` is one of `PRECISIONS`."""
    if precision not in PRECISIONS:
        raise ConfigError(f'precision must be one of {", ".join(PRECISIONS)}, got '
                          f'{precision!r}')


def onednn_enabled() -> bool:
    """Whether TensorFlow's oneDNN optimizations are on (``TF_ENABLE_ONEDNN_OPTS`` not 0)."""
    import os
    return os.environ.get('TF_ENABLE_ONEDNN_OPTS', '1').strip().lower() not in ('0', 'false')


def check_supported(precision: str, cpuinfo_text: Optional[str],
                    onednn: Optional[bool] = None) -> None:
    """Refuses ``mixed_bfloat16`` on a CPU without native bfloat16 products.

    Args:
      precision: one of `PRECISIONS`.
      cpuinfo_text: the text of ``/proc/cpuinfo`` (`graph_models.system.cpu.read_cpuinfo`); None
        where there is none, which is refused for ``mixed_bfloat16`` too (nothing shows the
        feature).
      onednn: whether oneDNN is on (None: `onednn_enabled`). The bfloat16 rewrite is oneDNN's:
        without it the run would silently compute in float32.

    Raises:
      ConfigError: ``precision`` is unknown, or ``mixed_bfloat16`` on a CPU without
        AVX512_BF16 or AMX_BF16 (named in the message).
    """
    check_precision(precision)
    if precision != MIXED_BFLOAT16:
        return
    if cpuinfo_text is None:
        problem = ('mixed_bfloat16 needs a CPU with avx512_bf16 or amx_bf16 and there is no '
                   '/proc/cpuinfo to show one; use ')
    else:
        info = cpu_info(cpuinfo_text)
        if info['bf16']:
            if onednn_enabled() if onednn is None else onednn:
                return
            problem = ('mixed_bfloat16 is oneDNN\'s bfloat16 rewrite, which '
                       'TF_ENABLE_ONEDNN_OPTS=0 turns off (the run would compute in float32); '
                       'unset it, or use ')
            raise ConfigError(problem + "precision='float32'",
                              cli_message=problem + '--precision float32')
        problem = (f'mixed_bfloat16 needs avx512_bf16 or amx_bf16, which this CPU '
                   f'({info["cpu"]}) lacks (bfloat16 would be emulated, slower than float32); '
                   'use ')
    raise ConfigError(problem + "precision='float32'",
                      cli_message=problem + '--precision float32')


def apply_precision(config, precision: str):
    """Sets ``precision`` on a ``tf.compat.v1.ConfigProto`` in place; returns it.

    ``float32`` leaves the config as it is; ``mixed_bfloat16`` turns on grappler's
    ``auto_mixed_precision_onednn_bfloat16`` rewrite.
    """
    check_precision(precision)
    if precision == MIXED_BFLOAT16:
        from tensorflow.core.protobuf import rewriter_config_pb2
        config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = \
            rewriter_config_pb2.RewriterConfig.ON
    return config


def node_dtypes(run_metadata) -> Dict[str, Tuple[str, Optional[str]]]:
    """The ops a session really ran and their compute dtypes, after grappler's rewrites.

    Args:
      run_metadata: a ``RunMetadata`` filled by a ``Session.run`` with
        ``RunOptions(output_partition_graphs=True)``.

    Returns:
      node name -> ``(op type, dtype name)``; the dtype is the node's ``T`` attribute (a
      Cast's ``DstT``), None for ops without one (FakeQuantWithMinMaxVars is float32 only).
    """
    from graph_models._tf import tf
    nodes = {}
    for graph_def in run_metadata.partition_graphs:
        for node in graph_def.node:
            key = 'DstT' if node.op == 'Cast' else 'T'
            dtype = tf.as_dtype(node.attr[key].type).name if key in node.attr else None
            nodes[node.name] = (node.op, dtype)
    return nodes
