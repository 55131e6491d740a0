"""``graph-models export``: any model source -> verified ``.tflite`` with its export record."""

import argparse

from graph_models.commands.flags import (add_data_flags, add_output_flag, add_source_argument,
                                         add_source_flags, first_float, inference_type,
                                         input_range, positive_int, print_line, source_kwargs,
                                         source_path, stats_input_range)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        'export', help='any TF1 model -> verified .tflite (TFLiteConverter v1)',
        description='Convert a run folder, TF1 checkpoint + .meta, SavedModel or frozen '
                    '.pb/.pbtxt to TensorFlow Lite. int8/uint8 models are verified (integer '
                    'compute only, weights with zero point 0, run in LiteRT with and without '
                    'XNNPACK, agree with the TF graph); a model that fails is not written.')
    add_source_argument(p, 'source', 'a run folder or checkpoint prefix written by train, a TF1 '
                                     'checkpoint prefix with its .meta, a SavedModel folder, or '
                                     'a frozen .pb/.pbtxt')
    p.add_argument('--quantize', choices=['float', 'dynamic', 'int8', 'uint8'], default='float',
                   help='float; dynamic (int8 weights); int8/uint8 fully integer (fake-quant '
                        'ranges of a QAT graph, or post-training from --data-dir for a float '
                        'graph)')
    p.add_argument('--inference_type', type=inference_type, dest='quantize',
                   default=argparse.SUPPRESS, metavar='TYPE',
                   help='tflite_convert spelling of --quantize: FLOAT, QUANTIZED_UINT8 (uint8), '
                        'INT8 (int8)')
    add_output_flag(p, 'default: model_<mode>.tflite beside the source')
    p.add_argument('--batch-size', type=positive_int, default=1,
                   help='static batch of the model, also replacing a batch the graph fixed for '
                        'training ([100, 784] -> [1, 784])')
    add_data_flags(p, dataset_help='post-training int8: representative data (default: the '
                                   'run\'s, else what --data-dir holds)',
                   data_dir_help='where that dataset is')
    p.add_argument('--calibrate', action='store_true',
                   help='int8/uint8: calibrate every range from --data-dir (post-training), '
                        'also for a graph whose fake-quant ranges miss some layers')
    p.add_argument('--input-range', type=input_range, metavar='MIN,MAX',
                   help='real range of the input values, for the quantized input statistics '
                        '(default: the range of the graph\'s own input fake-quant op, else '
                        '0,1); recorded in the export record')
    p.add_argument('--mean_values', type=first_float, metavar='MEAN',
                   help='tflite_convert\'s input statistics, with --std_dev_values: the input '
                        'range is (q - MEAN) / STD over the integer input values q')
    p.add_argument('--std_dev_values', type=first_float, metavar='STD',
                   help='see --mean_values')
    p.add_argument('--no-metadata', action='store_true',
                   help='do not embed TFLite metadata (name, normalization, labels file; '
                        'embedded by default for our runs and for other sources with --dataset)')
    add_source_flags(p)
    p.set_defaults(handler=run)


def run(args) -> int:
    from graph_models.errors import ConfigError
    from graph_models.export import export_to_file
    source = source_path(args.source, args.source_options)
    requested = args.input_range
    stats = stats_input_range(args.mean_values, args.std_dev_values, args.quantize)
    if stats is not None and requested is not None:
        raise ConfigError('--input-range and --mean_values/--std_dev_values both give the input '
                          'range: keep one')
    record, output = export_to_file(
        source, args.output, args.quantize, metadata=not args.no_metadata,
        batch_size=args.batch_size, dataset=args.dataset, data_dir=args.data_dir,
        calibrate=args.calibrate, input_range=stats or requested, **source_kwargs(args))
    # The verifier compares with the graph it converted: say so when its weight ranges were
    # widened (eval's agreement is with the graph as trained).
    reference = ('the TF graph with symmetric weight ranges' if record.symmetrized_weights
                 else 'the TF graph')
    verified = (f', verified: mean |diff| {record.verify_mean_abs_diff:.4f} from {reference}'
                if record.verified else '')
    for note in record.notes:
        print_line(note)
    print_line(f'{output}: {len(record.model):,} bytes, {args.quantize} ({record.quantization}, '
          f'{record.graph} graph{verified}), exported in {record.seconds:.2f} s')
    return 0
