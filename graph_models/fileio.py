"""Output files: the ``freeze`` toolkit's atomic writes, and output folders with a clear error.

A reader never sees half a file and a failed write leaves nothing behind (`freeze.fileio`, the
one implementation; this module adds only the project's error for a folder it cannot create).
"""

import os

from freeze.fileio import atomic_open, atomic_write  # noqa: F401  (re-exported)
from graph_models.errors import GraphModelsError


def ensure_folder(folder: str) -> None:
    """Creates ``folder`` (and its parents) if needed.

    Raises:
      GraphModelsError: if it cannot be created; the message names the folder and the cause.
    """
    folder = os.path.abspath(folder)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise GraphModelsError(f'cannot create folder {folder} ({e.strerror}); choose another '
                               'output path') from None


def ensure_parent(path: str) -> None:
    """Creates the folder of the file ``path`` if needed (see `ensure_folder`)."""
    ensure_folder(os.path.dirname(os.path.abspath(path)))
