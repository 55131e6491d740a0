"""``graph-models compare``: the graph model and its Keras twin, trained side by side."""

from graph_models.commands.flags import (add_data_flags, non_negative_int, positive_int,
                                         print_line)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        'compare', help='train the graph model and its Keras twin side by side',
        description='Train a graph model and its Keras twin from the same initial weights on '
                    'the same batches; export both; report accuracy, speed, size and latency.')
    p.add_argument('--model', default='mlp', choices=['mlp_small', 'mlp', 'mlp_deep', 'cnn'],
                   help='model name')
    add_data_flags(p, dataset_default='mnist')
    p.add_argument('--epochs', type=positive_int, default=5, help='training epochs')
    p.add_argument('--batch-size', type=positive_int, default=100,
                   help='examples per training step')
    p.add_argument('--seed', type=non_negative_int, default=0,
                   help='seed of the initial weights, batch order and dropout')
    p.add_argument('--out', metavar='DIR', help='run folder (default runs/compare-MODEL-DATASET)')
    p.add_argument('--quick', action='store_true',
                   help='500 training examples, 1 epoch, 500 test examples')
    p.add_argument('--seeds', type=positive_int, default=1,
                   help='number of seeds (SEED, SEED+1, ...): mean ± std, paired difference '
                        'with 95%% interval, per-seed agreement')
    p.add_argument('--keras-style', default='functional',
                   choices=['functional', 'sequential', 'subclassed'],
                   help='how the Keras twin is written')
    p.add_argument('--precision', default='float32', choices=['float32', 'mixed_bfloat16'],
                   help='training precision of both sides: the graph\'s bfloat16 rewrite and '
                        'Keras\' mixed_bfloat16 policy (CPUs with avx512_bf16 or amx_bf16; '
                        'default float32)')
    p.add_argument('--quantize', action='store_true',
                   help='compare QAT instead: our graph rewrite vs Keras QAT '
                        '(tensorflow-model-optimization, pip install -e .[keras-qat])')
    p.add_argument('--quant-delay', type=non_negative_int, default=None, metavar='STEPS',
                   help='QAT steps before fake quantization starts, both sides '
                        '(default: one epoch)')
    p.set_defaults(handler=run)


def run(args) -> int:
    from graph_models.research import compare
    from graph_models.errors import TrainingInterrupted
    out = args.out or compare.default_out_dir(args.model, args.dataset)
    try:
        return _compare(args, out)
    except TrainingInterrupted as e:
        # Training's own line says "run the same command with --resume": compare has no
        # --resume, it starts its runs afresh.
        name = 'SIGTERM' if e.exit_code == 143 else 'SIGINT'
        raise TrainingInterrupted(f'{name} during the comparison: no new report written; run '
                                  f'compare again to start over (it replaces {out})',
                                  exit_code=e.exit_code) from None


def _compare(args, out: str) -> int:
    from graph_models.research import compare
    from graph_models.data import load_dataset
    data = load_dataset(args.dataset, args.data_dir)
    common = dict(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                  quick=args.quick, log=print_line)
    if args.quantize:
        if args.precision != 'float32':
            from graph_models.errors import ConfigError
            raise ConfigError('compare --quantize runs float32 (Keras QAT has no bfloat16 '
                              'policy); leave out --precision')
        from graph_models.research import keras_qat
        report = keras_qat.compare_qat(args.model, data, out, quant_delay=args.quant_delay,
                                         **common)
        print(keras_qat.markdown_table(report))
        print_line(f'reports: {out}/report.json, report.md')
        return 0
    report = compare.compare(args.model, data, out, seeds=args.seeds,
                             keras_style=args.keras_style, precision=args.precision, **common)
    print(compare.markdown_table(report))
    print_line(f'reports: {out}/report.json, report.md, report.png')
    return 0
