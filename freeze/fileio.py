"""Publishing output files so that a reader never sees half a file or a mismatched pair.

`publish` writes every file of a group under temporary names in the destination folder, fsyncs
them, then renames them into place. The group's members are renamed in a fixed order, the
primary file last, and each member's content names the others (the export record holds the
model's digest), so a reader that checks the digest never accepts a mismatched pair. A failure
at any point removes every temporary file; temporary files left by a killed process (``kill -9``)
are removed by the next `publish` into the same folder. `atomic_write` publishes one file;
`atomic_open` is the same for a file written piece by piece.
"""

import contextlib
import os
import tempfile
import time
from typing import IO, Iterator, Optional, Sequence, Tuple

TEMP_SUFFIX = '.tmp'
# Leftovers older than this are from dead writers, never from one still writing.
STALE_SECONDS = 60.0


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _prefix(path: str) -> str:
    return '.' + os.path.basename(path) + '.'


def clean_stale_temporaries(path: str, max_age: float = STALE_SECONDS) -> int:
    """Removes temporary files of ``path`` that a killed writer left; returns how many."""
    folder = os.path.dirname(os.path.abspath(path))
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    now = time.time()
    for name in names:
        if name.startswith(_prefix(path)) and name.endswith(TEMP_SUFFIX):
            full = os.path.join(folder, name)
            try:
                if now - os.path.getmtime(full) >= max_age:
                    os.unlink(full)
                    removed += 1
            except OSError:
                pass
    return removed


@contextlib.contextmanager
def _temporary(path: str, mode: str = 'wb') -> Iterator[Tuple[IO, str]]:
    """Yields an open temporary file beside ``path`` and its name; on success it is flushed,
    fsynced and given the usual permissions (0666 less the umask, not ``mkstemp``'s 0600).
    The caller renames or removes it."""
    clean_stale_temporaries(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=_prefix(path), suffix=TEMP_SUFFIX)
    with os.fdopen(fd, mode) as f:
        yield f, tmp
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, _default_mode())


def _remove(tmp: Optional[str]) -> None:
    if tmp is not None and os.path.exists(tmp):
        os.unlink(tmp)


def publish(files: Sequence[Tuple[str, bytes]]) -> None:
    """Writes ``(path, content)`` pairs as one group; the first pair is published last.

    Args:
      files: the files; their folders must exist.

    Raises:
      OSError: if a write fails; then no temporary file is left and no destination is touched.
    """
    temps = []
    try:
        for path, content in files:
            with _temporary(path) as (f, tmp):
                temps.append((tmp, path))
                f.write(content)
        for tmp, path in reversed(temps):
            os.replace(tmp, path)
    finally:
        for tmp, _ in temps:
            _remove(tmp)


@contextlib.contextmanager
def atomic_open(path: str, mode: str = 'wb') -> Iterator[IO]:
    """Opens a temporary file beside ``path`` and renames it over ``path`` on success.

    For content written piece by piece (a download, a text file); on any exception the
    temporary file is removed and ``path`` is untouched.

    Args:
      path: the final file path; its folder must exist.
      mode: ``'wb'`` or ``'w'``.

    Yields:
      The open temporary file.
    """
    tmp = None
    try:
        with _temporary(path, mode) as (f, tmp):
            yield f
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def atomic_write(path: str, content: bytes) -> None:
    """Writes one file atomically (see `publish`)."""
    publish([(path, content)])
