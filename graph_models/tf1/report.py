"""Which TF 1.x names a program used and what each was mapped to (``graph-models run --report``).

The proxy modules of `graph_models.tf1.module` call `record` on every attribute a program reads
from them; `format_report` aggregates the accesses by name.
"""

import collections
from typing import Dict, List, Tuple

_USES: Dict[str, Tuple[str, int]] = collections.OrderedDict()


def record(name: str, mapped_to: str) -> None:
    """Counts one access of the TF 1.x name ``name`` (e.g. ``tf.placeholder``)."""
    _, count = _USES.get(name, (mapped_to, 0))
    _USES[name] = (mapped_to, count + 1)


def uses() -> List[Tuple[str, str, int]]:
    """``(name, mapped_to, count)`` of every recorded name, sorted by name."""
    return [(name, mapped, count) for name, (mapped, count) in sorted(_USES.items())]


def reset() -> None:
    """Forgets what was recorded."""
    _USES.clear()


def format_report() -> str:
    """The report: one line per TF 1.x name (contrib names first), with its target and count."""
    rows = uses()
    if not rows:
        return 'TF 1.x APIs used: none (the program read nothing through tensorflow or keras)'
    contrib = [r for r in rows if '.contrib.' in r[0]]
    rest = [r for r in rows if '.contrib.' not in r[0]]
    width = max(len(name) for name, _, _ in rows)
    lines = [f'TF 1.x APIs used: {len(rows)} names ({len(contrib)} from tf.contrib)']
    for name, mapped, count in contrib + rest:
        lines.append(f'  {name:<{width}}  -> {mapped}  (x{count})')
    return '\n'.join(lines)
