"""The command line's SIGINT/SIGTERM handlers and the state training shares with them.

Imports no TensorFlow. The handlers raise `KeyboardInterrupt` / `Terminated` in the main thread
until the command has begun to stop (training is writing its interrupt checkpoint, an error
line is being printed, or the command is done and only the interpreter's shutdown is left).
From then on a further signal is only noted: raising again would replace the one line already
decided on, and the default action would end the process with -15 instead of the status it
reported.
"""

import signal
import sys
import threading
from typing import Dict, Optional

from graph_models.errors import Terminated

_stopping = False
# Whether a handler raised: a signal's exception can interrupt TensorFlow while it builds an
# object (an eager context's cache deleter during start-up), whose __del__ then fails at
# garbage collection with an "Exception ignored in ..." traceback after our one line.
_signalled = False
_previous_unraisable_hook = None


def _unraisable_hook(unraisable) -> None:
    """Drops the unraisable exceptions that follow a signal (half-built objects' __del__);
    passes every other one to the previous hook."""
    if _signalled:
        return
    (_previous_unraisable_hook or sys.__unraisablehook__)(unraisable)


def begin_stopping() -> None:
    """From now on the command line's handlers only note a signal."""
    global _stopping
    _stopping = True


def handler(signum, frame) -> None:
    """SIGTERM raises `Terminated`, SIGINT `KeyboardInterrupt`, unless the command stops."""
    global _signalled
    if _stopping:
        return
    _signalled = True
    if signum == signal.SIGTERM:
        raise Terminated()
    raise KeyboardInterrupt()


def install() -> Dict[int, object]:
    """Installs `handler` for SIGINT and SIGTERM (main thread only); returns the previous
    handlers."""
    global _stopping, _signalled, _previous_unraisable_hook
    if threading.current_thread() is not threading.main_thread():
        return {}
    _stopping = _signalled = False
    _previous_unraisable_hook = sys.unraisablehook
    sys.unraisablehook = _unraisable_hook
    return {signum: signal.signal(signum, handler) for signum in (signal.SIGTERM, signal.SIGINT)}


def restore(previous: Dict[int, object]) -> None:
    """Puts back the handlers `install` returned (an in-process call of the command line)."""
    global _stopping, _signalled
    for signum, previous_handler in previous.items():
        signal.signal(signum, previous_handler if previous_handler is not None
                      else signal.SIG_DFL)
    if previous and sys.unraisablehook is _unraisable_hook:
        sys.unraisablehook = _previous_unraisable_hook or sys.__unraisablehook__
    _stopping = _signalled = False


def interrupt_in(error: BaseException) -> Optional[BaseException]:
    """The `KeyboardInterrupt` or `Terminated` that ``error`` is or hides, else None.

    A handler that raises while C code is calling back into Python (TensorFlow's ``nest``
    flattening imports a module) surfaces as ``SystemError: ... returned a result with an
    exception set``, the signal's exception being its cause.
    """
    if isinstance(error, (KeyboardInterrupt, Terminated)):
        return error
    if isinstance(error, SystemError):
        cause = error.__cause__ or error.__context__
        if isinstance(cause, (KeyboardInterrupt, Terminated)):
            return cause
    return None
