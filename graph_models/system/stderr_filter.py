"""An fd-level filter for TensorFlow's start-up and converter chatter on stderr (CLI only).

TensorFlow's C++ code writes some lines straight to file descriptor 2 while it is imported,
before ``TF_CPP_MIN_LOG_LEVEL`` takes effect ("All log messages before absl::InitializeLog()",
"oneDNN custom operations are on"); the TFLite converter and LiteRT print their own
("fully_quantize: 0, ...", "Created TensorFlow Lite XNNPACK delegate"). Python cannot silence
them, so the command line points fd 2 at a pipe before TensorFlow loads and a thread copies
every line but these to the real stderr. ``graph-models --verbose`` skips the filter. Library
code never uses this module.
"""

import os
import re
import sys
import threading
from typing import Optional

# Lines dropped without --verbose. glog-style INFO/WARNING lines (I0000 00:00:... file.cc:12])
# are chatter; ERROR/FATAL lines are kept.
NOISE = re.compile(
    rb'^(WARNING: All log messages before absl::InitializeLog\(\) is called'
    rb'|[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] '
    rb'|.*oneDNN custom operations are on'
    # The second line of cpu_feature_guard's INFO message (shown at TF_CPP_MIN_LOG_LEVEL=0).
    rb'|To enable the following instructions: .* rebuild TensorFlow with the appropriate'
    # The full `tensorflow` wheel probes for CUDA when a session lists its devices.
    rb'|E\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ cuda_(platform|executor|diagnostics)\.cc:\d+\] '
    rb'|\s*fully_quantize: \d'
    rb'|INFO: Created TensorFlow Lite XNNPACK delegate'
    rb'|.*Init node \S+ doesn\'t exist in graph'
    # A full --log-dir: TensorBoard's writer thread logs it; training reports it in one line.
    rb'|ERROR:tensorflow:EventFileWriter writer thread error'
    rb'|\tFailed to flush \d+ events to'
    rb'|E\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ events_writer\.cc:\d+\] )')


def is_noise(line: bytes) -> bool:
    """Whether a stderr line is known TensorFlow/LiteRT chatter."""
    return NOISE.match(line) is not None


class StderrFilter:
    """Routes file descriptor 2 through a pipe whose reader drops `is_noise` lines.

    Attributes:
      was_tty: whether stderr was a terminal before the redirection (for progress bars).
    """

    def __init__(self):
        self.was_tty = sys.stderr.isatty()
        self._saved: Optional[int] = None
        self._thread: Optional[threading.Thread] = None

    def start(self) -> 'StderrFilter':
        sys.stderr.flush()
        self._saved = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self._thread = threading.Thread(target=self._pump, args=(read_end, self._saved),
                                        name='stderr-filter', daemon=True)
        self._thread.start()
        return self

    @staticmethod
    def _pump(read_end: int, out: int) -> None:
        pending = b''
        while True:
            try:
                chunk = os.read(read_end, 65536)
            except OSError:
                break
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b'\n')
            for line in lines:
                if not is_noise(line):
                    _write_all(out, line + b'\n')
            if b'\r' in pending:  # A progress bar redraws its line: pass it on at once.
                head, _, pending = pending.rpartition(b'\r')
                _write_all(out, head + b'\r')
        if pending and not is_noise(pending):
            _write_all(out, pending)
        os.close(read_end)

    def stop(self) -> None:
        """Puts the real stderr back and waits for the pending lines to be written."""
        if self._saved is None:
            return
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self._saved, 2)  # Drops the pipe's last write end: the reader sees EOF.
        self._thread.join(timeout=5)
        os.close(self._saved)
        self._saved = None


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            written = os.write(fd, data)
        except OSError:
            return
        data = data[written:]
