"""What several commands share: checked argument types and the flag groups they all take.

Every type turns a bad value into an `argparse.ArgumentTypeError` (a usage error, exit status 2)
that says what was expected. Nothing here imports TensorFlow: building the parser stays fast.
"""

import argparse
import math
from typing import Callable, List, Optional, Sequence, Tuple

# Integer flags end up in int32 shapes and int64 steps: bigger values are refused at parse time.
MAX_INT = 2 ** 31 - 1
UNSAFE_HELP = ('TF1 sources (.pb/.pbtxt, checkpoint + .meta, SavedModel): accept ops outside '
               'the pure math/NN allow-list (file access, Python calls); only for graphs you '
               'trust (our run folders need no check)')
# tflite_convert's --inference_type values -> our --quantize modes.
INFERENCE_TYPES = {'FLOAT': 'float', 'QUANTIZED_UINT8': 'uint8', 'INT8': 'int8',
                   'QUANTIZED_INT8': 'int8'}
# tflite_convert / freeze_graph spellings of SOURCE and of -o.
SOURCE_ALIASES = ('--input_file', '--graph_def_file', '--saved_model_dir', '--input_graph',
                  '--input_checkpoint', '--input_meta_graph', '--input_saved_model_dir')
OUTPUT_ALIASES = ('--output_file', '--output_graph')


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
    """Flags that say how to read a model source (every kind: run, .meta, SavedModel, .pb).

    Each also takes the spelling of tflite_convert and freeze_graph (``--input_arrays``,
    ``--output_node_names``, ``--saved_model_tag_set``...), whose values may be
    comma-separated.
    """
    g = p.add_argument_group('model source (TF1 checkpoint + .meta, SavedModel, .pb/.pbtxt)')
    g.add_argument('--input-arrays', '--input_arrays', nargs='+', metavar='NAME',
                   help='input op names (default: the placeholders the outputs need)')
    g.add_argument('--output-arrays', '--output_arrays', '--output_node_names', nargs='+',
                   metavar='NAME',
                   help='output op names (default: the softmax, else the prediction the '
                        'metrics and loss read, else the one sink)')
    if shapes:
        g.add_argument('--input-shapes', '--input_shapes', type=int_list, metavar='D,D,...',
                       help='static shape of the (first) input, for example 1,784')
    g.add_argument('--tag-set', '--saved_model_tag_set', '--saved_model_tags', default='serve',
                   metavar='TAGS',
                   help='SavedModel: comma-separated MetaGraph tags (default serve)')
    g.add_argument('--signature-def', '--saved_model_signature_key', metavar='KEY',
                   help='SavedModel: signature (default serving_default or the only one)')
    g.add_argument('--allow-unsafe-ops', action='store_true', help=UNSAFE_HELP)


def add_source_argument(p, dest: str, help_text: str) -> None:
    """The positional SOURCE, and its tflite_convert/freeze_graph spellings (`SOURCE_ALIASES`);
    read it with `source_path`."""
    p.add_argument(dest, metavar='SOURCE', nargs='?', help=help_text)
    p.add_argument(*SOURCE_ALIASES, dest='source_options', action='append', metavar='PATH',
                   help='tflite_convert/freeze_graph spellings of SOURCE')


def add_output_flag(p, help_text: str) -> None:
    """``-o``/``--output`` and its tflite_convert/freeze_graph spellings (`OUTPUT_ALIASES`)."""
    p.add_argument('-o', '--output', *OUTPUT_ALIASES, metavar='PATH', help=help_text)


def source_path(positional: Optional[str], options: Optional[Sequence[str]]) -> str:
    """The one model source given, as SOURCE or as ``--input_checkpoint`` and its kin.

    A checkpoint prefix and its ``.meta`` (freeze_graph's ``--input_checkpoint`` with
    ``--input_meta_graph``) name one source: the prefix.

    Raises:
      ConfigError: no source, or two different ones.
    """
    from graph_models.errors import ConfigError
    given = ([positional] if positional else []) + list(options or [])
    distinct = {}
    for path in given:
        prefix = path[:-len('.meta')] if path.endswith('.meta') else path
        if prefix not in distinct or not path.endswith('.meta'):
            distinct[prefix] = path
    if not distinct:
        raise ConfigError('no model source: give SOURCE (a checkpoint prefix with its .meta, a '
                          'SavedModel folder or a .pb/.pbtxt)')
    if len(distinct) > 1:
        first, second = list(distinct.values())[:2]
        raise ConfigError(f'two model sources, {first} and {second}: give one (a checkpoint '
                          'prefix reads its graph from the .meta beside it, so freeze_graph\'s '
                          '--input_graph is not needed with --input_checkpoint)')
    return next(iter(distinct.values()))


def inference_type(text: str) -> str:
    """tflite_convert's ``--inference_type`` as our ``--quantize`` mode."""
    mode = INFERENCE_TYPES.get(text.upper())
    if mode is None:
        raise argparse.ArgumentTypeError(f'expected one of {", ".join(INFERENCE_TYPES)}, got '
                                         f'{text!r}; or use --quantize '
                                         'float/dynamic/int8/uint8')
    return mode


def first_float(text: str) -> float:
    """tflite_convert's per-input ``--mean_values``/``--std_dev_values``: one input's value."""
    values = [v for v in text.split(',') if v.strip()]
    if len(values) != 1:
        raise argparse.ArgumentTypeError(f'expected one value (integer export takes one input), '
                                         f'got {text!r}')
    try:
        value = float(values[0])
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number, got {text!r}') from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f'expected a finite number, got {text!r}')
    return value


def stats_input_range(mean: Optional[float], std: Optional[float],
                      mode: str) -> Optional[Tuple[float, float]]:
    """``--mean_values``/``--std_dev_values`` as our ``--input-range``, or None if not given.

    tflite_convert's ``real = (q - mean) / std`` over the integer input's values (``q`` in
    [0, 255] for uint8, [-128, 127] for int8) gives the real range.

    Raises:
      ConfigError: one without the other, a zero std, or a float export.
    """
    from graph_models.errors import ConfigError
    if mean is None and std is None:
        return None
    if mean is None or std is None:
        raise ConfigError('--mean_values and --std_dev_values go together; or give the real '
                          'input range with --input-range MIN,MAX')
    if std == 0:
        raise ConfigError('--std_dev_values must not be 0; or give the real input range with '
                          '--input-range MIN,MAX')
    if mode not in ('int8', 'uint8'):
        raise ConfigError('--mean_values/--std_dev_values describe a quantized input: add '
                          '--quantize int8 or uint8 (--inference_type INT8/QUANTIZED_UINT8), '
                          'or give the real input range with --input-range MIN,MAX')
    q_low, q_high = (0, 255) if mode == 'uint8' else (-128, 127)
    low, high = sorted(((q_low - mean) / std, (q_high - mean) / std))
    return low, high


def _names(values: Optional[Sequence[str]]) -> Optional[List[str]]:
    """Op names given as separate words or comma-separated (tflite_convert's way)."""
    if values is None:
        return None
    return [name for value in values for name in value.split(',') if name]


def source_kwargs(args: argparse.Namespace) -> dict:
    """The library's keyword arguments for the flags of `add_source_flags`."""
    return dict(input_arrays=_names(args.input_arrays),
                output_arrays=_names(args.output_arrays),
                input_shapes=getattr(args, 'input_shapes', None), tag_set=tag_set(args.tag_set),
                signature_def=args.signature_def, allow_unsafe_ops=args.allow_unsafe_ops)


def tag_set(text: str) -> Tuple[str, ...]:
    """``--tag-set`` as the tuple of tags."""
    return tuple(t for t in text.split(',') if t)


def print_line(line: str) -> None:
    """Prints one result or progress line, flushed at once (the ``log`` callback of long-running
    library calls); a control character in it (a path's newline) is printed as an escape."""
    from graph_models.errors import one_line
    print(one_line(line), flush=True)
