"""The project's own error types.

Library code raises these with a one-line message that says what is wrong and how to fix it.
The command line turns them into that line on stderr and the exit status below; anything else
is a bug and keeps its traceback.
"""

import sys

# One implementation each, shared with the freeze toolkit.
from freeze.errors import ToolkitError, one_line, tf_error_reason  # noqa: F401


class GraphModelsError(Exception):
    """A user-facing error: bad data, a missing checkpoint, an impossible request.

    The message (``str(e)``) speaks the library's language (arguments, folders); advice in terms
    of command-line flags goes in ``cli_message``, which the CLI prints instead when given.

    Args:
      message: what is wrong and how to fix it, for library callers.
      cli_message: the same for command-line users (naming flags), or None.

    Attributes:
      exit_code: the process exit status the CLI uses for it (1: the input is wrong).
      cli_message: see Args.
    """

    exit_code = 1

    def __init__(self, *args, cli_message: str = None):
        super().__init__(*args)
        self.cli_message = cli_message

    def for_cli(self) -> str:
        """The line the command line prints."""
        return self.cli_message or str(self)


def abridged(text: str, limit: int = 300) -> str:
    """``text`` cut in the middle to about ``limit`` characters: input quoted in a message (a
    path from a file, a name) may be megabytes long."""
    if len(text) <= limit:
        return text
    return f'{text[:limit * 2 // 3]}...{text[-(limit // 3):]} ({len(text):,} characters)'


class ConfigError(GraphModelsError):
    """A bad argument or flag value (a usage error, exit status 2)."""

    exit_code = 2


class DataError(GraphModelsError):
    """A dataset file is missing, truncated, corrupt or inconsistent."""


class CheckpointError(GraphModelsError):
    """A checkpoint folder or run config is missing, unreadable or does not fit the model."""


class TrainingError(GraphModelsError):
    """Training cannot go on (for example the loss became NaN or infinite)."""


class TrainingInterrupted(GraphModelsError):
    """Training was stopped by a signal after saving a checkpoint.

    Exit status 130 for SIGINT (Ctrl-C), 143 for SIGTERM, as shells report them.
    """

    def __init__(self, message: str, exit_code: int = 130, *, cli_message: str = None):
        super().__init__(message, cli_message=cli_message)
        self.exit_code = exit_code


class Terminated(BaseException):
    """Raised in the main thread by the SIGTERM handler that training installs."""


def user_errors() -> tuple:
    """Every error type with a one-line user message and an ``exit_code``.

    Ours, the freeze toolkit's and, once it is loaded, the quantize toolkit's: both toolkits
    stand alone with their own error types, and importing ``graph_models.quantize`` loads
    TensorFlow, which the command line must not do before it needs to. A quantize error can
    only have been raised once its module was loaded.
    """
    quantize_errors = sys.modules.get('graph_models.quantize.errors')
    extra = (quantize_errors.QuantizeError,) if quantize_errors is not None else ()
    return (GraphModelsError, ToolkitError) + extra
