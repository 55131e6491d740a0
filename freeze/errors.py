"""The toolkit's own error types (it stands alone: it knows nothing of the project using it).

Every error carries a one-line message that says what is wrong and how to fix it, and the exit
status a command line should use for it.
"""

import re


class ToolkitError(Exception):
    """Base of every error the ``freeze`` toolkit raises on bad input.

    Attributes:
      exit_code: 1 when the input is wrong, 2 for a bad request (usage error).
    """

    exit_code = 1


class UsageError(ToolkitError):
    """A request that cannot be honoured as given (bad mode, missing data...)."""

    exit_code = 2


class FreezeError(ToolkitError):
    """A graph cannot be loaded or frozen as asked (unknown tensor, stateful op left...)."""


class ExportError(ToolkitError):
    """The converter refused the graph, or the request cannot be converted."""


class UnsafeGraphError(ToolkitError):
    """A graph has ops outside the allow-list, or declares tensors that are too large."""


class VerificationError(ToolkitError):
    """A converted model is not what was asked for (float compute in an integer model...)."""


def tf_error_reason(message: str) -> str:
    """The informative line of a TensorFlow op error's multi-line message, at most 300 chars.

    TF 2 prefixes the cause with "Graph execution error:" and a node trace; the cause itself is
    the line before ``[[{{node ...}}]]``, for example ``...ckpt.data...; No space left on
    device``.
    """
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if line.startswith('[[') and index > 0:
            cause = lines[index - 1]
            return cause.split('; ', 1)[-1] if '; ' in cause else cause
    meaningful = [line for line in lines if not line.startswith(('Graph execution error',
                                                                  'Detected at node', 'File ',
                                                                  'Node:'))]
    return (meaningful or lines or ['unknown TensorFlow error'])[0][:300]


_CONTROL = re.compile('[\x00-\x1f\x7f]')


def one_line(text: str) -> str:
    """``text`` with its control characters written as escapes (``\\n``, ``\\t``, ``\\x1b``).

    A path or tensor name may hold a newline (or a terminal escape): printed as is, it would
    split a result or error line in two, and a script reading one line per result would read
    a wrong one.
    """
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
