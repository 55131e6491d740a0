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
import errno
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


# Room in a 255-byte file name for the dot, the writer's pid, mkstemp's letters and the suffix.
_NAME_ROOM = 200


def _prefix(path: str) -> str:
    """The start of every temporary name of ``path``: the file name, cut so that the whole
    temporary name fits where the final name (up to 255 bytes) does."""
    name = os.path.basename(path)
    while len(os.fsencode(name)) > _NAME_ROOM:
        name = name[:-1]
    return '.' + name + '.'


def _writer_gone(name: str, prefix: str) -> bool:
    """Whether the process that made temporary ``name`` (``<prefix><pid>-XXXX.tmp``) is dead."""
    pid = name[len(prefix):].split('-', 1)[0]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # Alive, someone else's.
        return False
    return False


def clean_stale_temporaries(path: str, max_age: float = STALE_SECONDS) -> int:
    """Removes temporary files of ``path`` that a killed writer left; returns how many."""
    folder = os.path.dirname(os.path.abspath(path))
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    now = time.time()
    prefix = _prefix(path)
    for name in names:
        if name.startswith(prefix) and name.endswith(TEMP_SUFFIX):
            full = os.path.join(folder, name)
            try:
                # A dead writer's at once (its pid is in the name), any other once it is old.
                if _writer_gone(name, prefix) or now - os.path.getmtime(full) >= max_age:
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
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, 'Is a directory; give a file name', path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'{_prefix(path)}{os.getpid()}-',
                               suffix=TEMP_SUFFIX)
    with os.fdopen(fd, mode) as f:
        yield f, tmp
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, _default_mode())


@contextlib.contextmanager
def _naming(path: str) -> Iterator[None]:
    """An `OSError` while writing ``path`` names ``path``, not the temporary file."""
    try:
        yield
    except OSError as e:
        ours = e.filename is None or \
            os.path.basename(os.fsdecode(e.filename)).startswith(_prefix(path))
        if e.errno is None or not ours:  # Not a write of ours (a download's own error...).
            raise
        raise type(e)(e.errno, e.strerror, path) from None


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
            with _naming(path), _temporary(path) as (f, tmp):
                temps.append((tmp, path))
                f.write(content)
        for tmp, path in reversed(temps):
            with _naming(path):
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
        with _naming(path):
            with _temporary(path, mode) as (f, tmp):
                yield f
            os.replace(tmp, path)
    finally:
        _remove(tmp)


def atomic_write(path: str, content: bytes) -> None:
    """Writes one file atomically (see `publish`)."""
    publish([(path, content)])
