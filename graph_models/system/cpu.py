"""What the CPU can do, from the text of ``/proc/cpuinfo``.

One reader for the library (the ``mixed_bfloat16`` check, `graph_models.nets.precision`) and the
benchmark harness (which names the machine in every result).
"""

from typing import Dict, Optional

CPUINFO_PATH = '/proc/cpuinfo'
# /proc/cpuinfo flags that decide which kernels (and so which int8/float ranking) a CPU gets.
ISA_FLAGS = {'avx2': 'avx2', 'fma': 'fma', 'avx512f': 'avx512f', 'avx512bw': 'avx512bw',
             'avx512_vnni': 'avx512_vnni', 'avx_vnni': 'avx_vnni', 'avx512_bf16': 'avx512_bf16',
             'amx_tile': 'amx_tile', 'amx_int8': 'amx_int8', 'amx_bf16': 'amx_bf16'}


def cpu_info(cpuinfo_text: str) -> Dict:
    """CPU model and ISA features from the text of ``/proc/cpuinfo``.

    Returns:
      ``{'cpu': model name, 'isa': {feature: bool}, 'vnni': bool, 'amx': bool,
      'bf16': bool}``; ``bf16`` is native bfloat16 products (AVX512_BF16 or AMX_BF16).
    """
    cpu, flags = 'unknown', set()
    for line in cpuinfo_text.splitlines():
        key, _, value = line.partition(':')
        key = key.strip()
        if key == 'model name' and cpu == 'unknown':
            cpu = value.strip()
        elif key == 'flags' and not flags:
            flags = set(value.split())
    isa = {name: flag in flags for name, flag in ISA_FLAGS.items()}
    return {'cpu': cpu, 'isa': isa, 'vnni': isa['avx512_vnni'] or isa['avx_vnni'],
            'amx': isa['amx_int8'] or isa['amx_tile'],
            'bf16': isa['avx512_bf16'] or isa['amx_bf16']}


def read_cpuinfo(path: str = CPUINFO_PATH) -> Optional[str]:
    """The text of ``/proc/cpuinfo``, or None where there is none (not Linux)."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None
