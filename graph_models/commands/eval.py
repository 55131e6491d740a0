"""``graph-models eval``: test accuracy of a ``.tflite`` or of any TF1 model."""

from graph_models.commands.flags import (add_data_flags, add_source_flags, positive_int,
                                         print_line, source_kwargs)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        'eval', help='test accuracy of a .tflite or any TF1 model',
        description='Score a model on the test set; a .tflite runs in the LiteRT interpreter '
                    'and, when its export record names its source, is compared with that TF '
                    'graph.')
    p.add_argument('model', metavar='MODEL',
                   help='.tflite, run folder, TF1 checkpoint, SavedModel, or .pb/.pbtxt')
    add_data_flags(p, dataset_help='default: the checkpoint\'s, else mnist')
    p.add_argument('--force-dataset', action='store_true',
                   help='score on --dataset even when the model was trained on another one')
    p.add_argument('--limit', type=positive_int, metavar='N', help='first N test examples')
    p.add_argument('--latency', action='store_true',
                   help='.tflite: also the median batch latency (LiteRT, one thread)')
    p.add_argument('--edgetpu', action='store_true',
                   help='.tflite: also check the Edge TPU requirements (exit 1 if not ready)')
    p.add_argument('--report', metavar='DIR',
                   help='also write confusion_matrix.png, mistakes.png (most confident '
                        'mistakes) and per_class.json (precision, recall) here (default: none)')
    add_source_flags(p)
    p.set_defaults(handler=run)


def run(args) -> int:
    from graph_models.litert.evaluate import evaluate_model
    report = evaluate_model(args.model, dataset=args.dataset, data_dir=args.data_dir,
                            limit=args.limit, latency=args.latency, edgetpu=args.edgetpu,
                            report_dir=args.report, force_dataset=args.force_dataset,
                            **source_kwargs(args))
    for line in report.lines():
        print_line(line)
    return 0 if report.ok else 1
