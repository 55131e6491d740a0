"""``graph-models export``: any model source -> verified ``.tflite`` with its export record."""

from graph_models.commands.flags import (add_data_flags, add_source_flags, input_range,
                                         positive_int, source_kwargs)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        'export', help='any TF1 model -> verified .tflite (TFLiteConverter v1)',
        description='Convert a run folder, TF1 checkpoint + .meta, SavedModel or frozen '
                    '.pb/.pbtxt to TensorFlow Lite. int8/uint8 models are verified (integer '
                    'compute only, weights with zero point 0, run in LiteRT with and without '
                    'XNNPACK, agree with the TF graph); a model that fails is not written.')
    p.add_argument('source', metavar='SOURCE',
                   help='a run folder or checkpoint prefix written by train, a TF1 checkpoint '
                        'prefix with its .meta, a SavedModel folder, or a frozen .pb/.pbtxt')
    p.add_argument('--quantize', choices=['float', 'dynamic', 'int8', 'uint8'], default='float',
                   help='float; dynamic (int8 weights); int8/uint8 fully integer (fake-quant '
                        'ranges of a QAT graph, or post-training from --data-dir for a float '
                        'graph)')
    p.add_argument('-o', '--output', metavar='PATH',
                   help='default: model_<mode>.tflite beside the source')
    p.add_argument('--batch-size', type=positive_int, default=1, help='static batch (1)')
    add_data_flags(p, dataset_help='post-training int8: representative data (default: the '
                                   'run\'s, else what --data-dir holds)',
                   data_dir_help='where that dataset is')
    p.add_argument('--calibrate', action='store_true',
                   help='int8/uint8: calibrate every range from --data-dir (post-training), '
                        'also for a graph whose fake-quant ranges miss some layers')
    p.add_argument('--input-range', type=input_range, default=(0.0, 1.0), metavar='MIN,MAX',
                   help='real range of the input values, for the quantized input statistics '
                        '(default 0,1); recorded in the export record')
    p.add_argument('--no-metadata', action='store_true',
                   help='do not embed TFLite metadata (name, normalization, labels file; '
                        'embedded by default for our runs and for other sources with --dataset)')
    add_source_flags(p)
    p.set_defaults(handler=run)


def run(args) -> int:
    from graph_models.run_export import export_to_file
    record, output = export_to_file(
        args.source, args.output, args.quantize, metadata=not args.no_metadata,
        batch_size=args.batch_size, dataset=args.dataset, data_dir=args.data_dir,
        calibrate=args.calibrate, input_range=args.input_range, **source_kwargs(args))
    verified = ', verified' if record.verified else ''
    print(f'{output}: {len(record.model):,} bytes, {args.quantize} ({record.quantization}, '
          f'{record.graph} graph{verified}), exported in {record.seconds:.2f} s')
    return 0
