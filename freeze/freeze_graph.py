"""Freezing: variables to constants, only what the outputs need; reading and writing GraphDefs.

`freeze_session` is the classic utility for any Session. `read_graph_def` reads binary ``.pb``
and text ``.pbtxt`` files alike (what ``freeze --pbtxt`` writes is readable by every command).
"""

import difflib
import hashlib
import os
from typing import Iterable, List, Optional, Sequence

from freeze._tf import tf, v1
from freeze.errors import FreezeError
from freeze.fileio import atomic_write

FROZEN_GRAPH_FILE = 'frozen_graph.pb'
# A GraphDef larger than this is refused before parsing (protobuf's own limit is 2 GB).
MAX_GRAPH_BYTES = 1 << 30

# Op types that must not survive in a frozen inference graph.
_STATEFUL_PREFIXES = ('Variable', 'VarHandle', 'ReadVariable', 'Assign', 'Apply', 'ResourceApply',
                      'ResourceSparseApply', 'Save', 'Restore', 'MergeV2Checkpoints', 'Random',
                      'TruncatedNormal', 'Multinomial', 'Queue', 'FIFOQueue', 'Iterator',
                      'StatelessRandom')
_SUMMARY_SUFFIX = 'Summary'


def op_name(name: str) -> str:
    """``'x:0'`` and ``'^x'`` -> ``'x'``."""
    return name.lstrip('^').split(':')[0]


def bypass_identities(graph_def, keep: Iterable[str]):
    """The graph with chains of ``Identity`` ops bypassed: consumers read their source directly.

    A long chain of identities costs the TFLite converter more than linear time (a chain of
    20,000 took 119 s to convert); removing them here takes one pass. Kept: the ops named in
    ``keep`` (inputs, outputs), identities with control inputs, and identities that something
    waits on through a control edge (``tf.cond``'s branch pivots: their dead-ness matters).

    Args:
      graph_def: a GraphDef (not modified).
      keep: names of ops that must stay.

    Returns:
      A new GraphDef, or ``graph_def`` itself when nothing is bypassed.
    """
    keep = set(keep)
    waited_on = {op_name(i) for node in graph_def.node for i in node.input if i.startswith('^')}
    source = {node.name: node.input[0] for node in graph_def.node
              if node.op == 'Identity' and len(node.input) == 1
              and not node.input[0].startswith('^')
              and node.name not in keep and node.name not in waited_on}
    if not source:
        return graph_def
    resolved = {}

    def resolve(name: str) -> str:
        """The tensor the identity ``name`` passes on, following the chain once (iteratively:
        a chain may be far deeper than Python's recursion limit)."""
        chain, seen, tensor = [], set(), name
        while True:
            base = tensor.split(':')[0]
            if base in resolved:
                tensor = resolved[base]
                break
            if base not in source or base in seen or tensor not in (base, base + ':0'):
                break
            chain.append(base)
            seen.add(base)
            tensor = source[base]
        for link in chain:
            resolved[link] = tensor
        return tensor

    out = v1.GraphDef()
    out.CopyFrom(graph_def)
    del out.node[:]
    for node in graph_def.node:
        if node.name in source:
            continue
        copy = out.node.add()
        copy.CopyFrom(node)
        for k, name in enumerate(copy.input):
            if name.split(':')[0] in source and not name.startswith('^'):
                copy.input[k] = resolve(name)
    return out


def _available_names(graph_def) -> List[str]:
    """Names worth suggesting: inputs and ops nothing else consumes (likely outputs)."""
    consumed = {op_name(i) for node in graph_def.node for i in node.input}
    return [n.name for n in graph_def.node
            if n.op == 'Placeholder' or (n.name not in consumed and n.op not in (
                'NoOp', 'Const', 'VarHandleOp', 'VariableV2') and not n.op.startswith(
                    _STATEFUL_PREFIXES) and 'save' not in n.name.lower())]


def check_output_names(graph_def, output_names: Iterable[str]) -> List[str]:
    """Returns the op names of ``output_names``; raises `FreezeError` for unknown ones.

    Args:
      graph_def: the graph to look in.
      output_names: tensor or op names (``Output`` or ``Output:0``).

    Raises:
      FreezeError: naming the unknown name, close matches and the graph's likely inputs and
        outputs.
    """
    ops = {node.name for node in graph_def.node}
    names = [op_name(n) for n in output_names]
    for name in names:
        if name not in ops:
            close = difflib.get_close_matches(name, ops, n=3)
            hint = f'did you mean {", ".join(close)}? ' if close else ''
            available = _available_names(graph_def)[:15]
            raise FreezeError(f'no op named {name!r} in the graph; {hint}inputs and outputs '
                              f'available: {", ".join(available)}')
    return names


def freeze_session(session: v1.Session, keep_var_names: Optional[Sequence[str]] = None,
                   output_names: Optional[Sequence[str]] = None,
                   clear_devices: bool = True) -> tf.compat.v1.GraphDef:
    """Freezes the state of a session into a pruned ``GraphDef``.

    Variables become constants holding their current values, and only the ops the outputs need
    are kept.

    Args:
      session: the Session whose graph and variable values are frozen.
      keep_var_names: variables to leave as variables (by op name); None converts all.
      output_names: output op or tensor names; default ``['Output']``.
      clear_devices: drop device placements so the graph loads anywhere.

    Returns:
      The frozen ``GraphDef``.

    Raises:
      FreezeError: if an output name does not exist (the message lists likely names).
    """
    graph = session.graph
    graph_def = graph.as_graph_def()
    names = check_output_names(graph_def, output_names or ['Output'])
    if clear_devices:
        for node in graph_def.node:
            node.device = ''
    with graph.as_default():
        return v1.graph_util.convert_variables_to_constants(
            session, graph_def, names,
            variable_names_blacklist=list(keep_var_names) if keep_var_names else None)


def stateful_ops(graph_def) -> List[str]:
    """``name (type)`` of each variable, optimizer, summary, saver, random or queue op."""
    return [f'{node.name} ({node.op})' for node in graph_def.node
            if node.op.startswith(_STATEFUL_PREFIXES) or node.op.endswith(_SUMMARY_SUFFIX)]


def graph_digest(graph_def) -> str:
    """SHA-256 of a GraphDef's deterministic serialization (identifies the graph converted)."""
    return hashlib.sha256(graph_def.SerializeToString(deterministic=True)).hexdigest()


def write_graph_def(graph_def, path: str, as_text: bool = False) -> None:
    """Writes a ``GraphDef`` as binary ``.pb`` (or text ``.pbtxt``) atomically."""
    from google.protobuf import text_format
    content = (text_format.MessageToString(graph_def).encode() if as_text
               else graph_def.SerializeToString())
    atomic_write(path, content)


def read_graph_def(path: str) -> tf.compat.v1.GraphDef:
    """Reads a frozen ``GraphDef``: binary ``.pb``, or text ``.pbtxt`` (by content).

    Raises:
      FreezeError: if the file is missing, not a regular file, too large, empty or not a
        GraphDef.
    """
    from google.protobuf import text_format
    from google.protobuf.message import DecodeError
    try:
        if not os.path.isfile(path):
            raise FreezeError(f'no graph file at {path}' if not os.path.exists(path) else
                              f'{path} is not a regular file; pass a .pb or .pbtxt file')
        if os.path.getsize(path) > MAX_GRAPH_BYTES:
            raise FreezeError(f'{path} is larger than {MAX_GRAPH_BYTES >> 20} MB; not a graph '
                              'this tool handles')
        with open(path, 'rb') as f:
            content = f.read()
    except OSError as e:
        raise FreezeError(f'cannot read {path}: {e.strerror}') from None
    graph_def = tf.compat.v1.GraphDef()
    text = path.endswith('.pbtxt') or content.lstrip()[:5] == b'node '
    try:
        if text:
            text_format.Parse(content.decode('utf-8'), graph_def)
        else:
            graph_def.ParseFromString(content)
    except (DecodeError, RuntimeWarning, ValueError, text_format.ParseError,
            UnicodeDecodeError, RecursionError) as e:
        kind = 'text GraphDef (.pbtxt)' if text else 'frozen GraphDef (.pb)'
        # Python's text parser recurses once per nesting level: a few KB can exhaust it.
        why = 'nested too deeply' if isinstance(e, RecursionError) else str(e)[:200]
        raise FreezeError(f'{path} is not a {kind} file ({why})') from None
    if not graph_def.node:
        raise FreezeError(f'{path} holds no graph (empty or not a GraphDef .pb file)')
    check_const_contents(graph_def, path)
    return graph_def


def check_const_contents(graph_def, source: str) -> None:
    """Raises `FreezeError` for a ``Const`` whose packed data does not match its shape.

    TensorFlow finds out only when the graph runs or converts, and then prints dozens of
    optimizer error lines (tens of E0000 lines, a 140-line traceback) before failing.
    """
    nodes = list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]
    for node in nodes:
        if node.op != 'Const' or 'value' not in node.attr:
            continue
        tensor = node.attr['value'].tensor
        if not tensor.tensor_content:
            continue
        try:
            dtype = tf.as_dtype(tensor.dtype)
        except TypeError:
            continue  # An unknown dtype: left to TensorFlow's own error.
        if dtype == tf.string or not dtype.size:
            continue
        shape = [d.size for d in tensor.tensor_shape.dim]
        count = 1
        for d in shape:
            count *= max(d, 0)
        if len(tensor.tensor_content) != count * dtype.size:
            raise FreezeError(f'{source} is corrupt: {node.name} (Const) holds '
                              f'{len(tensor.tensor_content):,} bytes of data, its shape {shape} '
                              f'of {dtype.name} needs {count * dtype.size:,}')
