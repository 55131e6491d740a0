"""``graph-models freeze``: any model source -> frozen inference GraphDef."""

from graph_models.commands.flags import (add_output_flag, add_source_argument, add_source_flags,
                                         positive_int, print_line, source_kwargs,
                                         source_path)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        'freeze', help='checkpoint, .meta, SavedModel or .pb -> frozen inference GraphDef',
        description='Freeze a model into an inference GraphDef: our run folders are rebuilt '
                    'from run_config.json (the quantization eval rewrite for QAT runs); a TF1 '
                    'checkpoint with its .meta, a SavedModel or a .pb/.pbtxt loses what only '
                    'training needs (optimizer, summaries, savers, dropout switches).')
    add_source_argument(p, 'checkpoint', 'run folder or prefix, TF1 checkpoint prefix (.meta '
                                         'beside it), SavedModel folder, or .pb/.pbtxt')
    add_output_flag(p, 'default: frozen_graph.pb beside the source')
    p.add_argument('--batch-size', type=positive_int, default=1,
                   help='static batch of the model, also replacing a batch the graph fixed for '
                        'training ([100, 784] -> [1, 784])')
    p.add_argument('--pbtxt', action='store_true', help='also write a text .pbtxt beside it')
    p.add_argument('--float', action='store_true',
                   help='for a QAT checkpoint: freeze its float graph instead of the eval graph')
    add_source_flags(p)
    p.set_defaults(handler=run)


def run(args) -> int:
    from graph_models.export import describe_frozen, freeze_model
    source = source_path(args.checkpoint, args.source_options)
    frozen, written = freeze_model(source, args.output, batch_size=args.batch_size,
                                   float_graph=args.float, pbtxt=args.pbtxt,
                                   **source_kwargs(args))
    print_line(describe_frozen(frozen, written[0]))
    return 0
