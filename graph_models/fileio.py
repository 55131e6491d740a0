"""Atomic file writes: a reader never sees half a file, a failed write leaves nothing behind."""

import contextlib
import os
import tempfile
from typing import IO, Iterator


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_open(path: str, mode: str = 'wb') -> Iterator[IO]:
    """Opens a temporary file beside ``path`` and renames it over ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched. The file gets the
    usual permissions (0666 less the umask), not ``mkstemp``'s private 0600.

    Args:
      path: the final file path; its folder must exist.
      mode: ``'wb'`` or ``'w'``.

    Yields:
      The open temporary file.
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path) + '.',
                               suffix='.tmp')
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write(path: str, content: bytes) -> None:
    """Writes ``content`` to ``path`` atomically (see `atomic_open`)."""
    with atomic_open(path, 'wb') as f:
        f.write(content)
