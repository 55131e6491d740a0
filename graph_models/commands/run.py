"""``graph-models run``: a TF 1.x program, unchanged, on TensorFlow 2.21."""

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        'run', help='run an unchanged TF 1.x program (import tensorflow as tf is TF 1.x)',
        description='Run SCRIPT.py as "python SCRIPT.py ARGS" ran it under TF 1.15: '
                    '"import tensorflow as tf" is tf.compat.v1 in graph mode with tf.contrib '
                    '(quantize, slim, layers, framework, lite, rnn), tf.layers and tf.keras on '
                    'Keras 2, input_data and "import keras" (Keras 2). The script\'s output, '
                    'tracebacks and exit status are its own. Flags of run come before SCRIPT; '
                    'everything after it is the script\'s.')
    p.add_argument('--data-dir', metavar='DIR',
                   help='a folder with the MNIST IDX files that every dataset loader of the '
                        'program (input_data.read_data_sets, keras.datasets load_data) reads '
                        'instead of the network; nothing is downloaded')
    p.add_argument('--report', action='store_true',
                   help='print at the end (stderr) which TF 1.x and contrib APIs the program '
                        'used and what each was mapped to')
    p.add_argument('script', metavar='SCRIPT', help='the TF 1.x program (a .py file)')
    p.add_argument('script_args', nargs=argparse.REMAINDER, metavar='ARGS',
                   help='the program\'s own arguments')
    p.set_defaults(handler=run)


def run(args) -> int:
    import os
    import sys
    from graph_models.errors import ConfigError
    if not os.path.isfile(args.script):  # Before TensorFlow loads: an answer at once.
        raise ConfigError(f"can't open file {args.script!r}: "
                          f"{'is a directory' if os.path.isdir(args.script) else 'no such file'}")
    if args.data_dir is not None and not os.path.isdir(args.data_dir):
        raise ConfigError(f'--data-dir {args.data_dir} does not exist; give the folder that '
                          'holds the MNIST IDX files')
    from graph_models.tf1 import report, runner
    noise_filter = getattr(args, 'noise_filter', None)
    if noise_filter is not None:
        # TF's start-up chatter (import, the CUDA probe of the full wheel) went through the
        # filter; the program's own stderr must not: the real stderr from here on.
        from freeze._tf import tf
        tf.config.list_physical_devices('GPU')
        noise_filter.stop()
    try:
        return runner.run_script(args.script, args.script_args, data_dir=args.data_dir)
    finally:
        if args.report:
            sys.stdout.flush()
            print(report.format_report(), file=sys.stderr)
