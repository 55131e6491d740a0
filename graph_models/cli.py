"""The ``graph-models`` command: parses flags, calls the library, turns errors into one line.

Exit status: 0 on success, 2 for usage errors (bad flags or values), 1 for other user errors
(missing or corrupt data, missing checkpoint, ...), 130 when interrupted. ``--debug`` shows the
traceback of a user error.
"""

import argparse
import sys
import traceback
from typing import Callable, List, Optional

from graph_models import __version__
from graph_models.errors import GraphModelsError

PROG = 'graph-models'


# ---------------------------------------------------------------------------------------------
# Argument types: each rejects a bad value with a usage error (exit status 2).


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}') from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f'must be a positive integer, got {value}')
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected an integer >= 0, got {text!r}') from None
    if value < 0:
        raise argparse.ArgumentTypeError(f'must be >= 0, got {value}')
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a positive number, got {text!r}') from None
    if not value > 0 or value == float('inf'):
        raise argparse.ArgumentTypeError(f'must be a positive number, got {text}')
    return value


def rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a rate in [0, 1), got {text!r}') from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f'must be in [0, 1), got {text}')
    return value


def bits(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a bit width from 2 to 16, got {text!r}') \
            from None
    if not 2 <= value <= 16:
        raise argparse.ArgumentTypeError(f'must be from 2 to 16, got {value}')
    return value


def int_list(text: str) -> List[int]:
    try:
        values = [int(v) for v in text.split(',') if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'expected comma-separated positive integers such as 512,256, got {text!r}') from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f'expected positive integers such as 512,256, got '
                                         f'{text!r}')
    return values


# ---------------------------------------------------------------------------------------------
# Subcommands


def _add_train_parser(subparsers) -> None:
    from graph_models.data import DATASET_NAMES
    from graph_models.nets_factory import MODELS

    p = subparsers.add_parser(
        'train', help='train a model under a tf.compat.v1.Session',
        description='Train an MLP or CNN graph, evaluating on the test set, writing TensorBoard '
                    'logs and checkpoints after every epoch.')
    g = p.add_argument_group('model')
    g.add_argument('--model', default='mlp', choices=list(MODELS),
                   help='; '.join(f'{k}: {v.description}' for k, v in MODELS.items()))
    g.add_argument('--hidden-sizes', type=int_list, metavar='N[,N...]',
                   help='MLP hidden layer sizes (default: the preset\'s)')
    g.add_argument('--dropout', type=rate, default=0.0, metavar='RATE',
                   help='dropout rate after hidden layers, training graph only (default 0)')
    g.add_argument('--batch-norm', action='store_true',
                   help='CNN: batch norm after each convolution')
    g = p.add_argument_group('data')
    g.add_argument('--dataset', default='mnist', choices=list(DATASET_NAMES))
    g.add_argument('--data-dir', metavar='DIR',
                   help='folder with the four IDX files (.gz or raw) or a Keras .npz; default: '
                        'the cache folder ($GRAPH_MODELS_DATA/<dataset>), else download')
    g.add_argument('--no-download', action='store_true',
                   help='never download; fail if the data is not on this machine')
    g.add_argument('--limit', type=positive_int, metavar='N',
                   help='use only the first N training examples (quick runs)')
    g = p.add_argument_group('training')
    g.add_argument('--epochs', type=positive_int, default=5)
    g.add_argument('--batch-size', type=positive_int, default=100)
    g.add_argument('--learning-rate', type=positive_float, default=1e-3, metavar='LR',
                   help='Adam learning rate (default 0.001)')
    g.add_argument('--seed', type=non_negative_int, default=0)
    g = p.add_argument_group('quantization-aware training')
    g.add_argument('--quantize', action='store_true',
                   help='rewrite the training graph with fake quantization '
                        '(create_training_graph); evaluation uses create_eval_graph')
    g.add_argument('--quant-delay', type=non_negative_int, default=0, metavar='N',
                   help='global step from which fake quantization is active (default 0)')
    g.add_argument('--weight-bits', type=bits, default=8, metavar='B', help='default 8')
    g.add_argument('--activation-bits', type=bits, default=8, metavar='B', help='default 8')
    g.add_argument('--symmetric', action='store_true', help='symmetric quantization ranges')
    g.add_argument('--freeze-bn-delay', type=non_negative_int, metavar='N',
                   help='CNN with --batch-norm: global step from which folded batch norm uses '
                        'the moving statistics')
    g.add_argument('--resume-from-float', metavar='CKPT',
                   help='start a --quantize run from a float checkpoint (folder or prefix) of '
                        'the same model')
    g = p.add_argument_group('outputs')
    g.add_argument('--run-name', metavar='NAME',
                   help='name of the run\'s folders (default: <model>-<dataset>)')
    g.add_argument('--log-dir', default='logs', metavar='DIR',
                   help='TensorBoard logs go to DIR/<run>/{train,eval} (default logs)')
    g.add_argument('--checkpoint-dir', default='checkpoints', metavar='DIR',
                   help='checkpoints and run_config.json go to DIR/<run> (default checkpoints)')
    g.add_argument('--keep-checkpoints', type=positive_int, default=5, metavar='N',
                   help='keep the last N checkpoints (default 5)')
    g.add_argument('--save-every-steps', type=positive_int, metavar='K',
                   help='also save a checkpoint every K steps')
    g.add_argument('--summary-every-steps', type=positive_int, default=50, metavar='K',
                   help='write training summaries every K steps (default 50)')
    mode = g.add_mutually_exclusive_group()
    mode.add_argument('--resume', action='store_true',
                      help='continue the run from its latest checkpoint')
    # (--resume-from-float is checked against --resume by the library, with a clear message.)
    mode.add_argument('--overwrite', action='store_true',
                      help='delete the run\'s checkpoints and logs and start again')
    g.add_argument('--no-progress', action='store_true', help='no progress bar')
    p.set_defaults(handler=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from graph_models.data import load_dataset
    from graph_models.errors import ConfigError
    from graph_models.nets_factory import ModelConfig
    from graph_models.quantize import QuantizationConfig
    from graph_models.run_config import RunConfig
    from graph_models.train import train_and_eval

    quantization = None
    if args.quantize:
        quantization = QuantizationConfig(
            weight_bits=args.weight_bits, activation_bits=args.activation_bits,
            symmetric=args.symmetric, quant_delay=args.quant_delay,
            freeze_bn_delay=args.freeze_bn_delay)
    else:
        given = [flag for flag, value in (('--quant-delay', args.quant_delay),
                                          ('--weight-bits', args.weight_bits != 8),
                                          ('--activation-bits', args.activation_bits != 8),
                                          ('--symmetric', args.symmetric),
                                          ('--freeze-bn-delay', args.freeze_bn_delay is not None),
                                          ('--resume-from-float', args.resume_from_float))
                 if value]
        if given:
            raise ConfigError(f'{given[0]} only applies with --quantize')
    model = ModelConfig(name=args.model, hidden_sizes=args.hidden_sizes,
                        dropout_rate=args.dropout, batch_norm=args.batch_norm)
    data = load_dataset(args.dataset, args.data_dir, download=not args.no_download,
                        limit=args.limit)
    run = RunConfig(model=model, dataset=args.dataset, epochs=args.epochs,
                    batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed,
                    limit=args.limit, data_source=data.source, quantization=quantization)
    print(f'{args.model} on {args.dataset}: {len(data.train_labels)} training and '
          f'{len(data.test_labels)} test examples from {data.source}', flush=True)
    result = train_and_eval(run, data, run_name=args.run_name, log_dir=args.log_dir,
                            checkpoint_dir=args.checkpoint_dir,
                            keep_checkpoints=args.keep_checkpoints,
                            save_every_steps=args.save_every_steps,
                            summary_every_steps=args.summary_every_steps, resume=args.resume,
                            overwrite=args.overwrite, resume_from_float=args.resume_from_float,
                            progress=not args.no_progress and sys.stderr.isatty(),
                            log=lambda line: print(line, flush=True))
    final = result.final
    if final is not None:
        print(f'test accuracy {final.test_accuracy:.4f} after {final.epoch} epochs '
              f'(step {result.global_step})')
    print(f'checkpoint: {result.checkpoint_path}')
    print(f'TensorBoard: tensorboard --logdir {args.log_dir}')
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description='TensorFlow 1 graph-mode MNIST models on TF 2.21: train, '
                               'quantize, freeze, export to TFLite, evaluate.')
    parser.add_argument('--version', action='version', version=f'%(prog)s {__version__}')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of errors')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    _add_train_parser(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except GraphModelsError as e:
        if args.debug:
            traceback.print_exc()
        print(f'{PROG} {args.command}: error: {e}', file=sys.stderr)
        return e.exit_code
    except OSError as e:
        # Unwritable folders, a full disk: the operating system's words name file and cause.
        if args.debug:
            traceback.print_exc()
        where = f' ({e.filename})' if e.filename else ''
        print(f'{PROG} {args.command}: error: {e.strerror or e}{where}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f'{PROG} {args.command}: interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
