"""Publishing output files so that a reader never sees half a file or a mismatched pair.

`publish` writes every file of a group under temporary names in the destination folder, fsyncs
them, then renames them into place. The group's members are renamed in a fixed order, the
primary file last, and each member's content names the others (the export record holds the
model's digest), so a reader that checks the digest never accepts a mismatched pair. A failure
at any point removes every temporary file; temporary files left by a killed process (``kill -9``)
are removed by the next `publish` into the same folder.
"""

import os
import tempfile
import time
from typing import Sequence, Tuple

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
            clean_stale_temporaries(path)
            folder = os.path.dirname(os.path.abspath(path))
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=_prefix(path), suffix=TEMP_SUFFIX)
            temps.append((tmp, path))
            with os.fdopen(fd, 'wb') as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, _default_mode())
        for tmp, path in reversed(temps):
            os.replace(tmp, path)
    finally:
        for tmp, _ in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)


def atomic_write(path: str, content: bytes) -> None:
    """Writes one file atomically (see `publish`)."""
    publish([(path, content)])
