"""Runs a TF 1.x program the way ``python SCRIPT.py`` ran it under TF 1.15.

Same ``sys.argv`` (``argv[0]`` is the script path), ``__name__ == '__main__'``, the working
directory unchanged, the script's folder first on ``sys.path``; ``sys.exit`` codes become the
exit status, an exception prints the traceback Python would print (from the script's frame on)
and gives status 1.
"""

import os
import sys
import traceback
from typing import Optional, Sequence

from graph_models.errors import ConfigError, Terminated


def _exit_status(e: SystemExit) -> int:
    """The status ``python`` exits with for ``sys.exit(code)``."""
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def print_script_traceback(e: BaseException, script: str) -> None:
    """Prints ``e``'s traceback from the script's first frame on, as Python would."""
    script = os.path.realpath(script)
    tb = e.__traceback__
    while tb is not None and os.path.realpath(tb.tb_frame.f_code.co_filename) != script:
        tb = tb.tb_next
    sys.stdout.flush()
    traceback.print_exception(type(e), e, tb)  # No script frame (SyntaxError): none shown.
    sys.stderr.flush()


def run_script(script: str, args: Sequence[str] = (), *, data_dir: Optional[str] = None) -> int:
    """Runs ``script`` with ``args`` in TF 1.x mode; returns its exit status.

    Args:
      script: path of the Python program.
      args: its command-line arguments (``sys.argv[1:]``).
      data_dir: a folder with IDX files every dataset loader reads instead of the network.

    Returns:
      0, the ``sys.exit`` status, or 1 when the script raised (its traceback printed).

    Raises:
      ConfigError: the script does not exist or is not a file (before anything runs).
    """
    import runpy
    if not os.path.isfile(script):
        raise ConfigError(f"can't open file {script!r}: "
                          f"{'is a directory' if os.path.isdir(script) else 'no such file'}")
    if data_dir is not None and not os.path.isdir(data_dir):
        raise ConfigError(f'data folder {data_dir} does not exist',
                          cli_message=f'--data-dir {data_dir} does not exist')
    from graph_models.tf1.switch import install
    install(data_dir=data_dir)
    sys.argv = [script] + list(args)
    sys.path.insert(0, os.path.dirname(os.path.realpath(script)))
    try:
        runpy.run_path(script, run_name='__main__')
    except SystemExit as e:
        return _exit_status(e)
    except (KeyboardInterrupt, Terminated):
        raise  # Signals end the run with the CLI's one line and status 130 / 143.
    except BaseException as e:  # pylint: disable=broad-except
        print_script_traceback(e, script)
        return 1
    finally:
        sys.stdout.flush()
    return 0
