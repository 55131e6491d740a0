"""What several commands share: checked argument types and the flag groups they all take.

Every type turns a bad value into an `argparse.ArgumentTypeError` (a usage error, exit status 2)
that says what was expected. Nothing here imports TensorFlow: building the parser stays fast.
"""

import argparse
import math
from typing import Callable, List, Tuple

# Integer flags end up in int32 shapes and int64 steps: bigger values are refused at parse time.
MAX_INT = 2 ** 31 - 1
UNSAFE_HELP = ('.pb only: accept ops outside the pure math/NN allow-list (file access, Python '
               'calls); only for graphs you trust')


def checked(convert: Callable[[str], float], expected: str, rule: str,
            valid: Callable[[float], bool], maximum: int = None) -> Callable[[str], float]:
    """An argparse type: ``convert(text)``, then ``valid(value)``, then ``value <= maximum``.

    Args:
      convert: ``int`` or ``float``.
      expected: what the text should be, for text ``convert`` rejects ("a positive integer").
      rule: what the value must be, for a value ``valid`` rejects ("a positive integer").
      valid: the range check.
      maximum: the largest value accepted, or None.

    Returns:
      The type function for ``add_argument(type=...)``.
    """
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected {expected}, got {text!r}') from None
        if not valid(value):
            raise argparse.ArgumentTypeError(f'must be {rule}, got {text}')
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f'must be at most {maximum:,}, got {text}')
        return value
    return parse


positive_int = checked(int, 'a positive integer', 'a positive integer', lambda v: v > 0, MAX_INT)
non_negative_int = checked(int, 'an integer >= 0', '>= 0', lambda v: v >= 0, MAX_INT)
positive_float = checked(float, 'a positive number', 'a positive number',
                         lambda v: 0 < v < math.inf)  # NaN fails too.
rate = checked(float, 'a rate in [0, 1)', 'in [0, 1)', lambda v: 0.0 <= v < 1.0)
bits = checked(int, 'a bit width from 2 to 16', 'from 2 to 16', lambda v: 2 <= v <= 16)


def int_list(text: str) -> List[int]:
    """``N[,N...]``: positive integers (layer sizes, a shape)."""
    try:
        values = [int(v) for v in text.split(',') if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'expected comma-separated positive integers such as 512,256, got {text!r}') from None
    if not values or min(values) <= 0 or max(values) > MAX_INT:
        raise argparse.ArgumentTypeError(f'expected positive integers such as 512,256, got '
                                         f'{text!r}')
    return values


def input_range(text: str) -> Tuple[float, float]:
    """``MIN,MAX`` with MIN < MAX (the real range of a model's inputs)."""
    try:
        low, high = (float(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected MIN,MAX such as -1,1, got {text!r}') \
            from None
    if not (low < high) or math.inf in (abs(low), abs(high)):
        raise argparse.ArgumentTypeError(f'expected finite MIN < MAX, got {text!r}')
    return low, high


def add_data_flags(p, *, dataset_default: str = None, dataset_help: str = 'dataset name',
                   data_dir_help: str = 'folder with the dataset files (default: the usual '
                                        'places, download if missing)') -> None:
    """``--dataset`` (the known names) and ``--data-dir``."""
    from graph_models.data import DATASET_NAMES  # numpy only, no TensorFlow.
    p.add_argument('--dataset', default=dataset_default, choices=list(DATASET_NAMES),
                   help=dataset_help)
    p.add_argument('--data-dir', metavar='DIR', help=data_dir_help)


def add_source_flags(p, *, shapes: bool = True) -> None:
    """Flags that say how to read a model source (every kind: run, .meta, SavedModel, .pb)."""
    g = p.add_argument_group('model source (TF1 checkpoint + .meta, SavedModel, .pb/.pbtxt)')
    g.add_argument('--input-arrays', nargs='+', metavar='NAME',
                   help='input op names (default: the placeholders the outputs need)')
    g.add_argument('--output-arrays', nargs='+', metavar='NAME',
                   help='output op names (default: the softmax, else the one sink)')
    if shapes:
        g.add_argument('--input-shapes', type=int_list, metavar='D,D,...',
                       help='static shape of the (first) input, for example 1,784')
    g.add_argument('--tag-set', default='serve', metavar='TAGS',
                   help='SavedModel: comma-separated MetaGraph tags (default serve)')
    g.add_argument('--signature-def', metavar='KEY',
                   help='SavedModel: signature (default serving_default or the only one)')
    g.add_argument('--allow-unsafe-ops', action='store_true', help=UNSAFE_HELP)


def source_kwargs(args: argparse.Namespace) -> dict:
    """The library's keyword arguments for the flags of `add_source_flags`."""
    return dict(input_arrays=args.input_arrays, output_arrays=args.output_arrays,
                input_shapes=getattr(args, 'input_shapes', None), tag_set=tag_set(args.tag_set),
                signature_def=args.signature_def, allow_unsafe_ops=args.allow_unsafe_ops)


def tag_set(text: str) -> Tuple[str, ...]:
    """``--tag-set`` as the tuple of tags."""
    return tuple(t for t in text.split(',') if t)


def print_line(line: str) -> None:
    """The ``log`` callback of long-running library calls: one line, flushed at once."""
    print(line, flush=True)
