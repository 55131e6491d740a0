"""The project's own error types.

Library code raises these with a one-line message that says what is wrong and how to fix it.
The command line turns them into that line on stderr and the exit status below; anything else
is a bug and keeps its traceback.
"""


class GraphModelsError(Exception):
    """A user-facing error: bad data, a missing checkpoint, an impossible request.

    Attributes:
      exit_code: the process exit status the CLI uses for it (1: the input is wrong).
    """

    exit_code = 1


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
    """Training was stopped by Ctrl-C after saving a checkpoint (exit status 130)."""

    exit_code = 130
