"""The ``graph-models`` command: parses flags, calls the library, turns errors into one line.

Each command's flags and handler live in `graph_models.commands`; this module assembles them,
runs the chosen handler and owns what every command shares: signals, the stderr noise filter,
and the translation of errors into one line on stderr and an exit status.

Exit status: 0 on success, 2 for usage errors (bad flags or values), 1 for other user errors
(missing or corrupt data, missing checkpoint, ...), 130 when interrupted (143 for SIGTERM),
141 when the reader of stdout left (`| head`), quietly.
``--debug`` shows the traceback of a user error.
"""

import argparse
import importlib
import logging
import os
import re
import sys
import threading
import traceback
from typing import Callable, List, Optional, Tuple

from graph_models import __version__
from graph_models.system import signals
from graph_models.commands import COMMANDS
from graph_models.errors import GraphModelsError, Terminated, abridged, one_line, user_errors

PROG = 'graph-models'


# One example per command, shown at the end of its --help (a command without one shows none).
EXAMPLES = {
    'train': 'graph-models train --model cnn --epochs 5 --data-dir DATA --run-name cnn1\n'
             'graph-models train --model mlp --quantize --run-name mlp-qat',
    'freeze': 'graph-models freeze checkpoints/mlp-mnist -o frozen.pb --pbtxt',
    'export': 'graph-models export checkpoints/mlp-mnist --quantize int8\n'
              'graph-models export model.ckpt --input-arrays x --output-arrays probs',
    'eval': 'graph-models eval checkpoints/mlp-mnist/model_int8.tflite --latency',
    'predict': 'graph-models predict digits/ --model checkpoints/mlp-mnist/model_float.tflite',
    'inspect': 'graph-models inspect checkpoints/mlp-mnist/model_int8.tflite --edgetpu',
    'compare': 'graph-models compare --model mlp --quick',
    'summary': 'graph-models summary --model cnn --batch-norm',
    'cluster-local': 'graph-models cluster-local --workers 2 -- --model mlp --epochs 1',
    'run': 'graph-models run --data-dir DATA mnist_deep.py --max_steps 200\n'
           'graph-models run --report train.py',
}
_EXAMPLES_HEADING = 'example:'
# "(default 8)", "default 8": written "(default: 8)" like the ones the formatter adds.
_DEFAULT_WORDING = re.compile(r'\(default ([^:)][^)]*)\)|^default ([^:].*)$')


class _DefaultsHelpFormatter(argparse.HelpFormatter):
    """Writes every flag's default one way, ``(default: X)``, adding it where the help does not
    name it; keeps the example lines of the epilog as they are."""

    def _get_help_string(self, action):
        text = _DEFAULT_WORDING.sub(lambda m: f'(default: {m.group(1) or m.group(2)})',
                                    action.help or '')
        # Identity checks: a default of 0 is a value to show (0 == False).
        if (action.option_strings and action.default is not None
                and action.default is not False and action.default != argparse.SUPPRESS
                and 'default' not in text.lower()):
            text += ' (default: %(default)s)'
        return text

    def _fill_text(self, text, width, indent):
        if text.startswith(_EXAMPLES_HEADING):
            return ''.join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class _Parser(argparse.ArgumentParser):
    """A usage error is one line naming the help to read, not the whole usage text."""

    # The command named on the line, for errors the top-level parser reports about it
    # ("unrecognized arguments" after the command's own flags).
    command_hint = ''

    def error(self, message):
        command = self.prog[len(PROG):].strip() or self.command_hint
        where = f'{PROG} {command}' if command else PROG
        self.exit(2, f'{where}: error: {message}; see {where} --help\n')


def build_parser() -> argparse.ArgumentParser:
    """The ``graph-models`` parser: global flags, then each command of `COMMANDS` (its module's
    ``add_parser``). Imports no TensorFlow."""
    parser = _Parser(
        prog=PROG, description='TensorFlow 1 graph-mode MNIST models on TF 2.21: train, '
                               'quantize, freeze, export to TFLite, evaluate.')
    parser.add_argument('--version', action='version', version=f'%(prog)s {__version__}')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of errors')
    parser.add_argument('--verbose', action='store_true',
                        help='also show TensorFlow\'s and LiteRT\'s own log lines (hidden by '
                             'default)')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    for name in COMMANDS:
        importlib.import_module(f'graph_models.commands.{name}').add_parser(subparsers)
    for name, sub in subparsers.choices.items():
        # Defaults shown; --debug and --verbose also after the command; an example.
        sub.formatter_class = _DefaultsHelpFormatter
        sub.add_argument('--debug', action='store_true', default=argparse.SUPPRESS,
                         help='show the full traceback of errors (default: off)')
        sub.add_argument('--verbose', action='store_true', default=argparse.SUPPRESS,
                         help='also show TensorFlow\'s and LiteRT\'s own log lines (default: '
                              'off)')
        if sub.epilog is None and name in EXAMPLES:
            sub.epilog = f'{_EXAMPLES_HEADING}\n' + ''.join(
                f'  {line}\n' for line in EXAMPLES[name].splitlines())
    return parser


def _error_line(e: Exception) -> Tuple[str, int]:
    """The one-line message and the exit status of an error the user can fix."""
    if isinstance(e, GraphModelsError):
        return e.for_cli(), e.exit_code  # Worded in flags when it carries such a wording.
    if isinstance(e, user_errors()):
        return str(e), e.exit_code  # The freeze and quantize toolkits'.
    if isinstance(e, UnicodeDecodeError):
        return (f'a file that should be text is not UTF-8 ({e.reason} at byte {e.start}); '
                'restore the file or pass another'), 1
    if isinstance(e, UnicodeError):
        # A path or name TensorFlow cannot encode (bytes that are not UTF-8, or a non-ASCII
        # path under a C locale, which Python then holds as surrogates).
        shown = repr(e.object[e.start:e.end]) if isinstance(e.object, str) else ''
        return (f'a path or name holds characters that cannot be encoded ({shown}: '
                f'{e.reason}); use UTF-8 paths and names under a UTF-8 locale '
                '(LC_ALL=C.UTF-8)'), 1
    if isinstance(e, OverflowError):
        # A number too large for the int64/float32 it ends up in (for example a huge flag).
        return f'a value is too large ({e}); use a smaller one', 2
    # OSError: unwritable folders, a full disk: the operating system's words name file and cause.
    return f'{e.strerror or e}' + (f' ({e.filename})' if e.filename else ''), 1


def _usable_streams() -> None:
    """Makes stdout and stderr safe to write whatever the process was given.

    A closed stdout (``cmd >&-``) leaves ``sys.stdout`` None, and a later ``open`` would get
    file descriptor 1: point it at ``/dev/null``. A path with bytes that are not UTF-8 reaches
    Python as surrogates, which a strict stream cannot print: write those as backslash
    escapes.
    """
    for fd, name in ((1, 'stdout'), (2, 'stderr')):
        if getattr(sys, name) is None:
            null = os.open(os.devnull, os.O_WRONLY)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            setattr(sys, name, open(fd, 'w', closefd=False))
        stream = getattr(sys, name)
        if getattr(stream, 'errors', None) == 'strict' and hasattr(stream, 'reconfigure'):
            stream.reconfigure(errors='backslashreplace')  # (The C locale's surrogateescape
            # already writes such a path back as the bytes it came from.)


def _drop_stdout() -> None:
    """Points file descriptor 1 at ``/dev/null`` (its reader is gone)."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass


def _command_name(argv: List[str]) -> str:
    """The subcommand named in ``argv`` (for messages before parsing is done)."""
    return next((a for a in argv if not a.startswith('-')), '')


def _thread_excepthook(hook_args) -> None:
    """No traceback for TensorBoard's writer thread: the next ``FileWriter`` call in the main
    thread re-raises its error, and training turns that into one line."""
    if hook_args.thread is not None and hook_args.thread.name == 'EventLoggerThread':
        return
    sys.__excepthook__(hook_args.exc_type, hook_args.exc_value, hook_args.exc_traceback)


def _quiet_tensorflow(process: bool) -> Callable[[], None]:
    """Quiets TensorFlow for one command; returns what puts the logger's level back.

    In a process of its own (``process``), ``TF_CPP_MIN_LOG_LEVEL`` is set to 2 before
    TensorFlow loads unless the user set it (an empty value counts as unset); what the C++ code
    prints at a lower level is left to `graph_models.system.stderr_filter`. TensorFlow's Python
    logger is held at ERROR, without its "Object was never used" blocks, while the command runs, and in a
    process of its own until the process ends: an interrupted cluster worker's graph is
    garbage-collected at interpreter exit, after the command, and each op it never ran would
    log its block then. Importing the library changes neither.
    """
    if process and not os.environ.get('TF_CPP_MIN_LOG_LEVEL', '').strip():
        os.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'
    logger = logging.getLogger('tensorflow')  # What tf.get_logger() returns, without TF.
    level = logger.level
    logger.setLevel(logging.ERROR)
    never_used = _NeverUsedFilter()
    logger.addFilter(never_used)

    def restore() -> None:
        if process:
            return  # The process ends with the command: quiet through its shutdown too.
        logger.setLevel(level)
        logger.removeFilter(never_used)
    return restore


class _NeverUsedFilter(logging.Filter):
    """Drops TensorFlow's "Object was never used" blocks (tf_should_use, logged at ERROR).

    An interrupted command (a cluster worker hit by SIGINT) garbage-collects ops it built but
    never ran, and each prints a 12-line block that is no error of the user's.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return 'Object was never used (type' not in str(record.msg)


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the command line; returns the exit status.

    Without ``--verbose``, a command run as a process (``argv`` None) prints only its own lines:
    stderr passes through `graph_models.system.stderr_filter.StderrFilter`, set up before
    TensorFlow loads
    (``run`` stops it once TensorFlow has started, before the user's program runs).
    """
    if argv is None:
        _usable_streams()
    words = sys.argv[1:] if argv is None else list(argv)
    options = words[:words.index('--')] if '--' in words else words
    verbose = '--verbose' in options
    noise_filter = None
    restore_logger = lambda: None  # noqa: E731
    if not verbose:
        restore_logger = _quiet_tensorflow(process=argv is None)
    if argv is None and not verbose:
        from graph_models.system.stderr_filter import StderrFilter
        noise_filter = StderrFilter().start()
    if argv is None:
        # Our own process: TensorFlow's start-up without the Keras 3 it would load eagerly
        # (0.8 s); a command that uses Keras imports it when it does.
        from graph_models.system.tf_startup import defer_keras
        defer_keras()
    # From the very start, whatever the inherited disposition (a background job starts with
    # SIGINT ignored): a signal during TensorFlow's import still ends in one line.
    previous = signals.install()
    previous_thread_hook = threading.excepthook
    threading.excepthook = _thread_excepthook
    if argv is None and os.environ.get('GRAPH_MODELS_CLUSTER_PARENT', '').isdigit():
        # A task of "cluster-local": die with it, even while TensorFlow is still importing.
        from graph_models.training.cluster_local import watch_parent
        watch_parent(int(os.environ['GRAPH_MODELS_CLUSTER_PARENT']))
    command = _command_name(options)
    args = None
    try:
        parser = build_parser()
        if command in COMMANDS or command.replace('-', '_') in COMMANDS:
            parser.command_hint = command
        args = parser.parse_args(argv)
        command = args.command
        args.stderr_is_tty = noise_filter.was_tty if noise_filter else sys.stderr.isatty()
        args.noise_filter = noise_filter  # `run` hands the real stderr back to its program.
        handler: Callable[[argparse.Namespace], int] = args.handler
        status = handler(args)
        if argv is None and (getattr(args, 'hard_exit', False) or command != 'run'):
            # The command's work is done and its files are closed: leave without the
            # interpreter's shutdown, which tears TensorFlow down for 0.5-0.8 s (and a cluster
            # task's tf.distribute.Server can block it once its peers are gone). Not after
            # `run`: a user's program may leave files for the shutdown to flush.
            sys.stdout.flush()
            if noise_filter is not None:
                noise_filter.stop()
            sys.stderr.flush()
            os._exit(status)
        return status
    except BrokenPipeError:
        # The reader of stdout left (`graph-models inspect m.tflite | head -1`): that is how a
        # pipe ends, not an error. Stop quietly, with the status of a tool SIGPIPE ended; the
        # rest of stdout goes nowhere, so the interpreter's last flush cannot fail either.
        signals.begin_stopping()
        _drop_stdout()
        return 141
    except (*user_errors(), OSError, OverflowError, UnicodeError) as e:  # Evaluated when raised.
        signals.begin_stopping()
        if args is not None and args.debug:
            traceback.print_exc()
        text, status = _error_line(e)
        # The whole line capped too: any message may quote a megabyte of hostile input.
        # One line even when it quotes a path or name holding a newline.
        print(f'{PROG} {command}: error: {one_line(abridged(text, 4000))}', file=sys.stderr)
        return status
    except (KeyboardInterrupt, Terminated, SystemError) as e:
        signals.begin_stopping()
        interrupt = signals.interrupt_in(e)
        if interrupt is None:
            raise
        if isinstance(interrupt, Terminated):
            print(f'{PROG} {command}: terminated (SIGTERM)', file=sys.stderr)
            return 143
        print(f'{PROG} {command}: interrupted (SIGINT)', file=sys.stderr)
        return 130
    finally:
        restore_logger()
        threading.excepthook = previous_thread_hook
        if argv is None:
            # A process: the status is decided; a signal during shutdown is only noted.
            signals.begin_stopping()
        else:
            signals.restore(previous)
        if noise_filter is not None:
            try:
                sys.stdout.flush()
            except (OSError, ValueError):
                pass
            noise_filter.stop()
        if argv is None:
            _hold_signals()


def _hold_signals() -> None:
    """Ignores SIGINT and SIGTERM for the rest of the process: the status is decided.

    The interpreter's shutdown (TensorFlow's teardown, about 0.7 s) puts the default handlers
    back, and a signal then killed the process with -15 or -2 and no line, after a command
    that had succeeded and said so. An ignored signal is left ignored by the shutdown (blocking
    it would not do: TensorFlow's threads do not block it, and one of them would take it).
    """
    import signal
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(signum, signal.SIG_IGN)
        except (OSError, ValueError):
            pass


if __name__ == '__main__':
    sys.exit(main())
