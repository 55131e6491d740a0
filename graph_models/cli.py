"""The ``graph-models`` command: parses flags, calls the library, turns errors into one line.

Exit status: 0 on success, 2 for usage errors (bad flags or values), 1 for other user errors
(missing or corrupt data, missing checkpoint, ...), 130 when interrupted. ``--debug`` shows the
traceback of a user error.
"""

import argparse
import os
import signal
import sys
import threading
import traceback
from typing import Callable, List, Optional

from graph_models import __version__
from graph_models.errors import USER_ERRORS, GraphModelsError

PROG = 'graph-models'
# Integer flags end up in int32 shapes and int64 steps: bigger values are refused at parse time.
MAX_INT = 2 ** 31 - 1
UNSAFE_HELP = ('.pb only: accept ops outside the pure math/NN allow-list (file access, Python '
               'calls); only for graphs you trust')


# ---------------------------------------------------------------------------------------------
# Argument types: each rejects a bad value with a usage error (exit status 2).


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}') from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f'must be a positive integer, got {value}')
    if value > MAX_INT:
        raise argparse.ArgumentTypeError(f'must be at most {MAX_INT:,}, got {text}')
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected an integer >= 0, got {text!r}') from None
    if value < 0:
        raise argparse.ArgumentTypeError(f'must be >= 0, got {value}')
    if value > MAX_INT:
        raise argparse.ArgumentTypeError(f'must be at most {MAX_INT:,}, got {text}')
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
    if not values or min(values) <= 0 or max(values) > MAX_INT:
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
                   help='training step (TF 1.15\'s fake_quantization_step, one per run of the '
                        'training graph) from which fake quantization is active (default 0)')
    g.add_argument('--weight-bits', type=bits, default=8, metavar='B', help='default 8')
    g.add_argument('--activation-bits', type=bits, default=8, metavar='B', help='default 8')
    g.add_argument('--symmetric', action='store_true', help='symmetric quantization ranges')
    g.add_argument('--freeze-bn-delay', type=non_negative_int, metavar='N',
                   help='CNN with --batch-norm: training step (fake_quantization_step) from which '
                        'folded batch norm uses, and stops updating, the moving statistics')
    g.add_argument('--resume-from-float', metavar='CKPT',
                   help='start a --quantize run from a float checkpoint (folder or prefix) of '
                        'the same model')
    g = p.add_argument_group('cluster (TensorFlow distributed runtime)')
    g.add_argument('--cluster-spec', metavar='FILE',
                   help='JSON {"ps": ["host:port", ...], "worker": [...]} (or set TF_CONFIG)')
    g.add_argument('--job-name', choices=['ps', 'worker'])
    g.add_argument('--task-index', type=non_negative_int, metavar='N')
    g.add_argument('--sync-replicas', action='store_true',
                   help='synchronous updates (SyncReplicasOptimizer); default asynchronous')
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
                   help='write training scalars every K steps (default 50)')
    g.add_argument('--histogram-every-steps', type=positive_int, metavar='K',
                   help='write weight and activation histograms every K steps (default: at '
                        'the end of each epoch; they cost more than a training step)')
    g.add_argument('--xla', action='store_true',
                   help='XLA JIT compilation of the training step (recorded in run_config.json)')
    mode = g.add_mutually_exclusive_group()
    mode.add_argument('--resume', action='store_true',
                      help='continue the run from its latest checkpoint')
    # (--resume-from-float is checked against --resume by the library, with a clear message.)
    mode.add_argument('--overwrite', action='store_true',
                      help='delete the run\'s checkpoints and logs and start again')
    g.add_argument('--no-progress', action='store_true', help='no progress bar')
    p.set_defaults(handler=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    import os
    from graph_models.distributed import ClusterConfig, run_parameter_server
    cluster = ClusterConfig.from_sources(args.cluster_spec, args.job_name, args.task_index,
                                         os.environ)
    if cluster is not None:
        args.hard_exit = True  # See main(): TF's gRPC server can hang at interpreter exit.
    if cluster is not None and cluster.job_name == 'ps':
        return run_parameter_server(cluster, log=lambda line: print(line, flush=True))
    if cluster is None and args.sync_replicas:
        from graph_models.errors import ConfigError
        raise ConfigError('--sync-replicas applies to cluster training (--cluster-spec)')
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
                    limit=args.limit, data_source=data.source, quantization=quantization,
                    xla=args.xla)
    print(f'{args.model} on {args.dataset}: {len(data.train_labels)} training and '
          f'{len(data.test_labels)} test examples from {data.source}', flush=True)
    if cluster is not None:
        return _run_cluster_worker(args, run, data, cluster)
    result = train_and_eval(run, data, run_name=args.run_name, log_dir=args.log_dir,
                            checkpoint_dir=args.checkpoint_dir,
                            keep_checkpoints=args.keep_checkpoints,
                            save_every_steps=args.save_every_steps,
                            summary_every_steps=args.summary_every_steps,
                            histogram_every_steps=args.histogram_every_steps, resume=args.resume,
                            overwrite=args.overwrite, resume_from_float=args.resume_from_float,
                            progress=not args.no_progress and args.stderr_is_tty,
                            log=lambda line: print(line, flush=True))
    final = result.final
    if final is not None:
        print(f'test accuracy {final.test_accuracy:.4f} after {final.epoch} epochs '
              f'(step {result.global_step})')
    print(f'checkpoint: {result.checkpoint_path}')
    print(f'TensorBoard: tensorboard --logdir {args.log_dir}')
    return 0


def _run_cluster_worker(args, run, data, cluster) -> int:
    from graph_models.distributed import train_worker
    from graph_models.errors import ConfigError
    if args.resume or args.resume_from_float:
        raise ConfigError('--resume and --resume-from-float are for single-process training')
    result = train_worker(run, data, cluster, run_name=args.run_name, log_dir=args.log_dir,
                          checkpoint_dir=args.checkpoint_dir, sync_replicas=args.sync_replicas,
                          save_every_steps=args.save_every_steps,
                          summary_every_steps=args.summary_every_steps,
                          keep_checkpoints=args.keep_checkpoints, overwrite=args.overwrite,
                          log=lambda line: print(line, flush=True))
    print(f'{result.task}: {result.local_steps} local steps on {result.shard_examples} '
          f'examples in {result.seconds:.1f} s, global step {result.global_step}')
    if result.test_accuracy is not None:
        print(f'test accuracy {result.test_accuracy:.4f}; checkpoint folder '
              f'{result.checkpoint_dir}')
    return 0


def _add_cluster_local_parser(subparsers) -> None:
    p = subparsers.add_parser(
        'cluster-local', help='run "train" as a ps/worker cluster on 127.0.0.1',
        description='Start ps and worker tasks of "graph-models train" as local subprocesses '
                    'on free loopback ports; stop them all when the chief ends or any task '
                    'fails. Example: graph-models cluster-local --workers 2 --ps 1 -- train '
                    '--model mlp --epochs 5')
    p.add_argument('--workers', type=positive_int, default=2)
    p.add_argument('--ps', type=positive_int, default=1)
    p.add_argument('--timeout', type=positive_float, metavar='SECONDS')
    p.add_argument('train_args', nargs=argparse.REMAINDER,
                   help='-- train [train flags]')
    p.set_defaults(handler=_run_cluster_local)


def _run_cluster_local(args) -> int:
    from graph_models.cluster_local import run_cluster_local
    return run_cluster_local(args.train_args, workers=args.workers, ps=args.ps,
                             timeout=args.timeout)


def input_range(text: str):
    """``MIN,MAX`` with MIN < MAX (the real range of a model's inputs)."""
    try:
        low, high = (float(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected MIN,MAX such as -1,1, got {text!r}') \
            from None
    if not (low < high) or float('inf') in (abs(low), abs(high)):
        raise argparse.ArgumentTypeError(f'expected finite MIN < MAX, got {text!r}')
    return low, high


def _add_source_flags(p, *, shapes: bool = True) -> None:
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


def _source_kwargs(args) -> dict:
    shapes = None
    if getattr(args, 'input_shapes', None):
        first = (args.input_arrays or ['Input'])[0]
        shapes = {first: args.input_shapes}
    return dict(input_arrays=args.input_arrays, output_arrays=args.output_arrays,
                input_shapes=shapes, tag_set=tuple(t for t in args.tag_set.split(',') if t),
                signature_def=args.signature_def, allow_unsafe_ops=args.allow_unsafe_ops)


def _add_freeze_parser(subparsers) -> None:
    p = subparsers.add_parser(
        'freeze', help='checkpoint, .meta, SavedModel or .pb -> frozen inference GraphDef',
        description='Freeze a model into an inference GraphDef: our run folders are rebuilt '
                    'from run_config.json (the quantization eval rewrite for QAT runs); a TF1 '
                    'checkpoint with its .meta, a SavedModel or a .pb/.pbtxt loses what only '
                    'training needs (optimizer, summaries, savers, dropout switches).')
    p.add_argument('checkpoint', metavar='SOURCE',
                   help='run folder or prefix, TF1 checkpoint prefix (.meta beside it), '
                        'SavedModel folder, or .pb/.pbtxt')
    p.add_argument('-o', '--output', metavar='PATH',
                   help='default: frozen_graph.pb beside the source')
    p.add_argument('--batch-size', type=positive_int, default=1, help='static batch (1)')
    p.add_argument('--pbtxt', action='store_true', help='also write a text .pbtxt beside it')
    p.add_argument('--float', action='store_true',
                   help='for a QAT checkpoint: freeze its float graph instead of the eval graph')
    _add_source_flags(p)
    p.set_defaults(handler=_run_freeze)


def _run_freeze(args) -> int:
    from graph_models.run_export import freeze_model
    frozen, written = freeze_model(args.checkpoint, args.output, batch_size=args.batch_size,
                                   float_graph=args.float, pbtxt=args.pbtxt,
                                   **_source_kwargs(args))
    kind = 'QAT eval' if frozen.fake_quantized else 'float'
    inputs = ', '.join(f'{n} {frozen.input_shapes[n]}' for n in frozen.inputs)
    print(f'{written[0]}: {kind} graph of {frozen.source}, {len(frozen.graph_def.node)} nodes, '
          f'input {inputs}, outputs {", ".join(frozen.outputs)}')
    return 0


def _ensure_parent(path: str) -> None:
    import os
    from graph_models.errors import GraphModelsError
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise GraphModelsError(f'cannot create folder {folder} ({e.strerror}); choose another '
                               'output path') from None


def _add_export_parser(subparsers) -> None:
    from graph_models.data import DATASET_NAMES
    p = subparsers.add_parser(
        'export', help='any TF1 model -> verified .tflite (TFLiteConverter v1)',
        description='Convert a run folder, TF1 checkpoint + .meta, SavedModel or frozen '
                    '.pb/.pbtxt to TensorFlow Lite. int8/uint8 models are verified (integer '
                    'compute only, weights with zero point 0, run in LiteRT with and without '
                    'XNNPACK, agree with the TF graph); a model that fails is not written.')
    p.add_argument('source', metavar='SOURCE')
    p.add_argument('--quantize', choices=['float', 'dynamic', 'int8', 'uint8'], default='float',
                   help='float; dynamic (int8 weights); int8/uint8 fully integer (fake-quant '
                        'ranges of a QAT graph, or post-training from --data-dir for a float '
                        'graph)')
    p.add_argument('-o', '--output', metavar='PATH',
                   help='default: model_<mode>.tflite beside the source')
    p.add_argument('--batch-size', type=positive_int, default=1, help='static batch (1)')
    p.add_argument('--dataset', choices=list(DATASET_NAMES),
                   help='post-training int8: representative data (default: the run\'s, else '
                        'what --data-dir holds)')
    p.add_argument('--data-dir', metavar='DIR', help='where that dataset is')
    p.add_argument('--calibrate', action='store_true',
                   help='int8/uint8: calibrate every range from --data-dir (post-training), '
                        'also for a graph whose fake-quant ranges miss some layers')
    p.add_argument('--input-range', type=input_range, default=(0.0, 1.0), metavar='MIN,MAX',
                   help='real range of the input values, for the quantized input statistics '
                        '(default 0,1); recorded in the export record')
    p.add_argument('--no-metadata', action='store_true',
                   help='do not embed TFLite metadata (name, normalization, labels file; '
                        'embedded by default for our runs and for other sources with --dataset)')
    _add_source_flags(p)
    p.set_defaults(handler=_run_export)


def _run_export(args) -> int:
    from graph_models.run_export import export_to_file
    record, output = export_to_file(
        args.source, args.output, args.quantize, metadata=not args.no_metadata,
        batch_size=args.batch_size, dataset=args.dataset, data_dir=args.data_dir,
        calibrate=args.calibrate, input_range=args.input_range, **_source_kwargs(args))
    verified = ', verified' if record.verified else ''
    print(f'{output}: {len(record.model):,} bytes, {args.quantize} ({record.quantization}, '
          f'{record.graph} graph{verified}), exported in {record.seconds:.2f} s')
    return 0


def _add_eval_parser(subparsers) -> None:
    from graph_models.data import DATASET_NAMES
    p = subparsers.add_parser(
        'eval', help='test accuracy of a .tflite or any TF1 model',
        description='Score a model on the test set; a .tflite runs in the LiteRT interpreter '
                    'and, when its export record names its source, is compared with that TF '
                    'graph.')
    p.add_argument('model', metavar='MODEL',
                   help='.tflite, run folder, TF1 checkpoint, SavedModel, or .pb/.pbtxt')
    p.add_argument('--dataset', choices=list(DATASET_NAMES),
                   help='default: the checkpoint\'s, else mnist')
    p.add_argument('--data-dir', metavar='DIR')
    p.add_argument('--limit', type=positive_int, metavar='N', help='first N test examples')
    p.add_argument('--latency', action='store_true',
                   help='.tflite: also the median batch latency (LiteRT, one thread)')
    p.add_argument('--edgetpu', action='store_true',
                   help='.tflite: also check the Edge TPU requirements (exit 1 if not ready)')
    p.add_argument('--report', metavar='DIR',
                   help='also write confusion_matrix.png, mistakes.png (most confident '
                        'mistakes) and per_class.json (precision, recall) here (default: none)')
    _add_source_flags(p)
    p.set_defaults(handler=_run_eval)


def _run_eval(args) -> int:
    from graph_models.evaluate import evaluate_model
    report = evaluate_model(args.model, dataset=args.dataset, data_dir=args.data_dir,
                            limit=args.limit, latency=args.latency, edgetpu=args.edgetpu,
                            report_dir=args.report, **_source_kwargs(args))
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1


def _add_predict_parser(subparsers) -> None:
    p = subparsers.add_parser('predict', help='classify digit images with any model',
                              description='Flatten transparency onto white, grayscale, resize '
                                          'to the model input, invert light backgrounds, '
                                          'normalize, and classify. Class names come from the '
                                          'model\'s metadata (labels file) when it has one.')
    p.add_argument('images', metavar='IMAGE_OR_DIR', help='an image file or a folder of them')
    p.add_argument('--model', required=True, metavar='MODEL',
                   help='.tflite, run folder, TF1 checkpoint, SavedModel, or .pb/.pbtxt')
    p.add_argument('--top-k', type=positive_int, default=1, metavar='K',
                   help='print the K most likely classes per image (default 1)')
    p.add_argument('--json', action='store_true',
                   help='print one JSON document (path, label, index, probability) instead '
                        'of text')
    p.add_argument('--grid', metavar='OUT.png',
                   help='also draw the images with their predictions into this PNG '
                        '(default: none)')
    _add_source_flags(p)
    p.set_defaults(handler=_run_predict)


def _run_predict(args) -> int:
    from graph_models.predict import predict_images
    from graph_models.predict_output import format_predictions
    result = predict_images(args.images, args.model, **_source_kwargs(args))
    print(format_predictions(result.paths, result.probabilities, result.class_names,
                             top_k=args.top_k, as_json=args.json))
    if args.grid:
        from graph_models import pictures
        from graph_models.fileio import atomic_write
        _ensure_parent(args.grid)
        atomic_write(args.grid, pictures.prediction_grid(result.pixels, result.probabilities,
                                                         class_names=result.class_names))
        if not args.json:
            print(f'grid: {args.grid}')
    return 0


def _add_inspect_parser(subparsers) -> None:
    p = subparsers.add_parser('inspect', help='inputs, outputs, ops of a .tflite; Edge TPU check',
                              description='Describe a .tflite (or a TF graph source); --edgetpu '
                                          'checks a .tflite against the Coral Edge TPU model '
                                          'requirements (exit 1 if not ready).')
    p.add_argument('model', metavar='MODEL', help='.tflite (or a .pb/.pbtxt, .meta, SavedModel)')
    p.add_argument('--edgetpu', action='store_true')
    p.add_argument('--allow-unsafe-ops', action='store_true', help=UNSAFE_HELP)
    p.add_argument('--tag-set', default='serve', metavar='TAGS', help='SavedModel tags')
    p.add_argument('--signature-def', metavar='KEY', help='SavedModel signature')
    p.set_defaults(handler=_run_inspect)


def _run_inspect(args) -> int:
    from graph_models.inspect_model import inspect_model
    lines, status = inspect_model(args.model, edgetpu=args.edgetpu,
                                  allow_unsafe_ops=args.allow_unsafe_ops,
                                  tag_set=tuple(t for t in args.tag_set.split(',') if t),
                                  signature_def=args.signature_def)
    for line in lines:
        print(line)
    return status


def _add_compare_parser(subparsers) -> None:
    from graph_models.data import DATASET_NAMES
    p = subparsers.add_parser(
        'compare', help='train the graph model and its Keras twin side by side',
        description='Train a graph model and its Keras twin from the same initial weights on '
                    'the same batches; export both; report accuracy, speed, size and latency.')
    p.add_argument('--model', default='mlp', choices=['mlp_small', 'mlp', 'mlp_deep', 'cnn'])
    p.add_argument('--dataset', default='mnist', choices=list(DATASET_NAMES))
    p.add_argument('--data-dir', metavar='DIR')
    p.add_argument('--epochs', type=positive_int, default=5)
    p.add_argument('--batch-size', type=positive_int, default=100)
    p.add_argument('--seed', type=non_negative_int, default=0)
    p.add_argument('--out', metavar='DIR', help='run folder (default runs/compare-MODEL-DATASET)')
    p.add_argument('--quick', action='store_true',
                   help='500 training examples, 1 epoch, 500 test examples')
    p.add_argument('--seeds', type=positive_int, default=1,
                   help='number of seeds (SEED, SEED+1, ...): mean ± std, paired difference '
                        'with 95%% interval, per-seed agreement')
    p.add_argument('--keras-style', default='functional',
                   choices=['functional', 'sequential', 'subclassed'],
                   help='how the Keras twin is written')
    p.add_argument('--quantize', action='store_true',
                   help='compare QAT instead: our graph rewrite vs Keras QAT '
                        '(tensorflow-model-optimization, pip install -e .[keras-qat])')
    p.add_argument('--quant-delay', type=non_negative_int, default=None, metavar='STEPS',
                   help='QAT steps before fake quantization starts, both sides '
                        '(default: one epoch)')
    p.set_defaults(handler=_run_compare)


def _run_compare(args) -> int:
    from graph_models.compare import compare, default_out_dir, markdown_table
    from graph_models.data import load_dataset
    data = load_dataset(args.dataset, args.data_dir)
    out = args.out or default_out_dir(args.model, args.dataset)
    _ensure_parent(out + '/report.json')
    if args.quantize:
        from graph_models import compare_qat
        report = compare_qat.compare_qat(
            args.model, data, out, epochs=args.epochs, batch_size=args.batch_size,
            seed=args.seed, quant_delay=args.quant_delay, quick=args.quick,
            log=lambda line: print(line, flush=True))
        print(compare_qat.markdown_table(report))
        print(f'reports: {out}/report.json, report.md')
        return 0
    report = compare(args.model, data, out, epochs=args.epochs, batch_size=args.batch_size,
                     seed=args.seed, seeds=args.seeds, keras_style=args.keras_style,
                     quick=args.quick, log=lambda line: print(line, flush=True))
    print(markdown_table(report))
    print(f'reports: {out}/report.json, report.md, report.png')
    return 0


def _add_summary_parser(subparsers) -> None:
    from graph_models.architectures import FAMILIES as MODELS  # The table: no TensorFlow.
    p = subparsers.add_parser('summary', help='Keras-like layer table of a graph model or run',
                              description='The layer table of a model preset, or of a trained '
                                          'run (read from its run_config.json).')
    p.add_argument('run_folder', nargs='?', metavar='RUN_FOLDER',
                   help='a trained run\'s checkpoint folder (its run_config.json gives the '
                        'model; --model, --hidden-sizes and --batch-norm are then ignored)')
    p.add_argument('--model', default='mlp', choices=list(MODELS), help='model (default mlp)')
    p.add_argument('--hidden-sizes', type=int_list, metavar='N[,N...]',
                   help='MLP hidden layer sizes (default: the preset\'s)')
    p.add_argument('--batch-norm', action='store_true', help='CNN with batch norm (default off)')
    p.set_defaults(handler=_run_summary)


def _run_summary(args) -> int:
    from graph_models.nets_factory import ModelConfig
    from graph_models.summary import format_table
    if args.run_folder:
        from graph_models.summary import format_run
        print(format_run(args.run_folder))
        return 0
    print(format_table(ModelConfig(args.model, hidden_sizes=args.hidden_sizes,
                                   batch_norm=args.batch_norm)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description='TensorFlow 1 graph-mode MNIST models on TF 2.21: train, '
                               'quantize, freeze, export to TFLite, evaluate.')
    parser.add_argument('--version', action='version', version=f'%(prog)s {__version__}')
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of errors')
    parser.add_argument('--verbose', action='store_true',
                        help='also show TensorFlow\'s and LiteRT\'s own log lines (hidden by '
                             'default)')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    _add_train_parser(subparsers)
    _add_freeze_parser(subparsers)
    _add_export_parser(subparsers)
    _add_eval_parser(subparsers)
    _add_predict_parser(subparsers)
    _add_inspect_parser(subparsers)
    _add_compare_parser(subparsers)
    _add_summary_parser(subparsers)
    _add_cluster_local_parser(subparsers)
    for sub in subparsers.choices.values():  # --verbose also after the command.
        sub.add_argument('--verbose', action='store_true', default=argparse.SUPPRESS,
                         help='also show TensorFlow\'s and LiteRT\'s own log lines')
    _complete_help(parser)
    return parser


# Help for arguments whose parser functions give none (kept here, one place, so every flag has
# help text without touching each parser function).
_MISSING_HELP = {
    'dataset': 'dataset name',
    'epochs': 'training epochs',
    'batch_size': 'examples per training step',
    'seed': 'seed of the initial weights, batch order and dropout',
    'job_name': 'this task\'s job in a TF cluster (ps or worker)',
    'task_index': 'this task\'s index in its job',
    'source': 'a checkpoint folder (or prefix) written by train, or a frozen .pb',
    'input_arrays': '.pb: input op names',
    'output_arrays': '.pb: output op names',
    'data_dir': 'folder with the dataset files (default: the usual places, download if missing)',
    'edgetpu': 'check the Coral Edge TPU model requirements; exit 1 if not ready',
    'model': 'model name',
    'workers': 'number of worker tasks',
    'ps': 'number of parameter-server tasks',
    'timeout': 'seconds before the whole cluster is stopped (default: none)',
}


class _DefaultsHelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to every flag's help that does not name its default."""

    def _get_help_string(self, action):
        text = action.help or ''
        # Identity checks: a default of 0 is a value to show (0 == False).
        if (action.option_strings and action.default is not None
                and action.default is not False and action.default != argparse.SUPPRESS
                and 'default' not in text.lower()):
            text += ' (default: %(default)s)'
        return text


def _complete_help(parser: argparse.ArgumentParser) -> None:
    """Gives every argument help text and every subcommand the defaults formatter."""
    for action in parser._actions:  # pylint: disable=protected-access
        if isinstance(action, argparse._SubParsersAction):  # pylint: disable=protected-access
            for sub in action.choices.values():
                sub.formatter_class = _DefaultsHelpFormatter
                _complete_help(sub)
        elif not action.help and action.dest in _MISSING_HELP:
            action.help = _MISSING_HELP[action.dest]


def _command_name(argv: List[str]) -> str:
    """The subcommand named in ``argv`` (for messages before parsing is done)."""
    return next((a for a in argv if not a.startswith('-')), '')


def _raise_terminated(signum, frame):
    from graph_models.errors import Terminated
    raise Terminated()


def _install_signal_handlers() -> dict:
    """SIGTERM raises `Terminated`, SIGINT `KeyboardInterrupt`, from the very start.

    Installed whatever the inherited disposition (a background job starts with SIGINT
    ignored), so a signal during start-up (TensorFlow's import takes seconds) still ends in one
    line and exit status 143/130. Returns the previous handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signal.SIGTERM: signal.signal(signal.SIGTERM, _raise_terminated),
            signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler)}


def _thread_excepthook(hook_args) -> None:
    """No traceback for TensorBoard's writer thread: the next ``FileWriter`` call in the main
    thread re-raises its error, and training turns that into one line."""
    if hook_args.thread is not None and hook_args.thread.name == 'EventLoggerThread':
        return
    sys.__excepthook__(hook_args.exc_type, hook_args.exc_value, hook_args.exc_traceback)


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the command line; returns the exit status.

    Without ``--verbose``, a command run as a process (``argv`` None) prints only its own lines:
    stderr passes through `graph_models.noise.StderrFilter`, set up before TensorFlow loads.
    """
    from graph_models.errors import Terminated
    words = sys.argv[1:] if argv is None else list(argv)
    options = words[:words.index('--')] if '--' in words else words
    verbose = '--verbose' in options
    noise_filter = None
    if argv is None and not verbose:
        from graph_models.noise import StderrFilter
        noise_filter = StderrFilter().start()
    previous = _install_signal_handlers()
    previous_thread_hook = threading.excepthook
    threading.excepthook = _thread_excepthook
    if argv is None and os.environ.get('GRAPH_MODELS_CLUSTER_PARENT', '').isdigit():
        # A task of "cluster-local": die with it, even while TensorFlow is still importing.
        from graph_models.cluster_local import watch_parent
        watch_parent(int(os.environ['GRAPH_MODELS_CLUSTER_PARENT']))
    command = _command_name(options)
    args = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = args.command
        args.stderr_is_tty = noise_filter.was_tty if noise_filter else sys.stderr.isatty()
        handler: Callable[[argparse.Namespace], int] = args.handler
        status = handler(args)
        if argv is None and getattr(args, 'hard_exit', False):
            # A cluster task is done, but the tf.distribute.Server it started can block
            # interpreter shutdown once its peers are gone: flush and leave now.
            sys.stdout.flush()
            if noise_filter is not None:
                noise_filter.stop()
            sys.stderr.flush()
            os._exit(status)
        return status
    except USER_ERRORS as e:
        if args is not None and args.debug:
            traceback.print_exc()
        # Our errors may carry a command-line wording; the freeze toolkit's have one message.
        text = e.for_cli() if isinstance(e, GraphModelsError) else str(e)
        print(f'{PROG} {command}: error: {text}', file=sys.stderr)
        return e.exit_code
    except OSError as e:
        # Unwritable folders, a full disk: the operating system's words name file and cause.
        if args is not None and args.debug:
            traceback.print_exc()
        where = f' ({e.filename})' if e.filename else ''
        print(f'{PROG} {command}: error: {e.strerror or e}{where}', file=sys.stderr)
        return 1
    except OverflowError as e:
        # A number too large for the int64/float32 it ends up in (for example a huge flag).
        if args is not None and args.debug:
            traceback.print_exc()
        print(f'{PROG} {command}: error: a value is too large ({e}); use a smaller one',
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f'{PROG} {command}: interrupted (SIGINT)', file=sys.stderr)
        return 130
    except Terminated:
        print(f'{PROG} {command}: terminated (SIGTERM)', file=sys.stderr)
        return 143
    finally:
        threading.excepthook = previous_thread_hook
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        if noise_filter is not None:
            try:
                sys.stdout.flush()
            except (OSError, ValueError):
                pass
            noise_filter.stop()


if __name__ == '__main__':
    sys.exit(main())
