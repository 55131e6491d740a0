"""``graph-models train``: train a model under a Session, alone or as a cluster task."""

import argparse
import os

from graph_models.nets.architectures import DESCRIPTIONS  # The table: no TensorFlow.
from graph_models.commands.flags import (add_data_flags, bits, int_list, non_negative_int,
                                         positive_float, positive_int, print_line, rate)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        'train', help='train a model under a tf.compat.v1.Session',
        description='Train an MLP or CNN graph, evaluating on the test set, writing TensorBoard '
                    'logs and checkpoints after every epoch.')
    g = p.add_argument_group('model')
    g.add_argument('--model', default='mlp', choices=list(DESCRIPTIONS),
                   help='; '.join(f'{k}: {v}' for k, v in DESCRIPTIONS.items()))
    g.add_argument('--hidden-sizes', type=int_list, metavar='N[,N...]',
                   help='MLP hidden layer sizes (default: the preset\'s)')
    g.add_argument('--dropout', type=rate, default=0.0, metavar='RATE',
                   help='dropout rate after hidden layers, training graph only (default 0)')
    g.add_argument('--batch-norm', action='store_true',
                   help='CNN: batch norm after each convolution')
    g = p.add_argument_group('data')
    add_data_flags(g, dataset_default='mnist',
                   data_dir_help='folder with the four IDX files (.gz or raw) or a Keras .npz; '
                                 'default: the cache folder ($GRAPH_MODELS_DATA/<dataset>), '
                                 'else download')
    g.add_argument('--no-download', action='store_true',
                   help='never download; fail if the data is not on this machine')
    g.add_argument('--limit', type=positive_int, metavar='N',
                   help='use only the first N training examples (quick runs)')
    g = p.add_argument_group('training')
    g.add_argument('--epochs', type=positive_int, default=5, help='training epochs')
    g.add_argument('--batch-size', type=positive_int, default=100,
                   help='examples per training step')
    g.add_argument('--learning-rate', type=positive_float, default=1e-3, metavar='LR',
                   help='Adam learning rate (default 0.001)')
    g.add_argument('--seed', type=non_negative_int, default=0,
                   help='seed of the initial weights, batch order and dropout')
    g = p.add_argument_group('quantization-aware training')
    g.add_argument('--quantize', action='store_true',
                   help='rewrite the training graph with fake quantization '
                        '(create_training_graph); evaluation uses create_eval_graph')
    g.add_argument('--quant-delay', type=non_negative_int, default=0, metavar='N',
                   help='training step (TF 1.15\'s fake_quantization_step, one per run of the '
                        'training graph) from which fake quantization is active (default 0)')
    g.add_argument('--weight-bits', type=bits, default=8, metavar='B',
                   help='bits per weight in the fake-quant ops: fewer bits, a coarser grid '
                        '(8 is what int8 TFLite export and the Edge TPU use)')
    g.add_argument('--activation-bits', type=bits, default=8, metavar='B',
                   help='bits per activation in the fake-quant ops (8 for int8 export)')
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
    g.add_argument('--job-name', choices=['ps', 'worker'],
                   help='this task\'s job in a TF cluster (ps or worker)')
    g.add_argument('--task-index', type=non_negative_int, metavar='N',
                   help='this task\'s index in its job')
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
    g.add_argument('--pictures-every-epochs', type=positive_int, metavar='N',
                   help='draw the evaluation pictures (confusion matrix, mistakes) into the '
                        'eval log every N epochs (default: after the last epoch; drawing '
                        'costs about an MLP epoch)')
    g.add_argument('--xla', action='store_true',
                   help='XLA JIT compilation of the training step (recorded in run_config.json)')
    g.add_argument('--precision', default='float32', choices=['float32', 'mixed_bfloat16'],
                   help='compute precision of the training step (recorded in run_config.json): '
                        'mixed_bfloat16 computes products in bfloat16 on CPUs with '
                        'avx512_bf16 or amx_bf16; variables, checkpoints and exports stay '
                        'float32 (default float32)')
    g.add_argument('--steps-per-run', type=positive_int, default=1, metavar='K',
                   help='run up to K training steps per Session call between summary and '
                        'checkpoint steps (recorded in run_config.json; default 1)')
    mode = g.add_mutually_exclusive_group()
    mode.add_argument('--resume', action='store_true',
                      help='continue the run from its latest checkpoint (a cluster chief: if '
                           'there is one, else start the run, so a restarted task rejoins)')
    # (--resume-from-float is checked against --resume by the library, with a clear message.)
    mode.add_argument('--overwrite', action='store_true',
                      help='delete the run\'s checkpoints and logs and start again')
    g.add_argument('--no-progress', action='store_true', help='no progress bar')
    p.set_defaults(handler=_run_train)



def _run_train(args: argparse.Namespace) -> int:
    from graph_models.training.distributed import ClusterConfig, run_parameter_server
    cluster = ClusterConfig.from_sources(args.cluster_spec, args.job_name, args.task_index,
                                         os.environ)
    if cluster is not None:
        args.hard_exit = True  # See main(): TF's gRPC server can hang at interpreter exit.
    if cluster is not None and cluster.job_name == 'ps':
        return run_parameter_server(cluster, log=print_line)
    from graph_models.errors import ConfigError
    if cluster is None and args.sync_replicas:
        raise ConfigError('--sync-replicas applies to cluster training (--cluster-spec)')
    for flag, value in (('--histogram-every-steps', args.histogram_every_steps),
                        ('--pictures-every-epochs', args.pictures_every_epochs)):
        if cluster is not None and value is not None:
            raise ConfigError(f'{flag} is for single-process training (a cluster chief writes '
                              'its summaries through its hooks); leave it out with '
                              '--cluster-spec')
    for flag, value in (('--precision', args.precision != 'float32' and args.precision),
                        ('--steps-per-run', args.steps_per_run != 1 and args.steps_per_run)):
        if cluster is not None and value:
            raise ConfigError(f'{flag} {value} is for single-process training (cluster workers '
                              'run one float32 step per call); leave it out with --cluster-spec')
    from graph_models.data import load_dataset
    from graph_models.training.loop import check_run_name, check_text
    from graph_models.nets.factory import ModelConfig
    from graph_models.quantize import QuantizationConfig
    from graph_models.training.run_config import RunConfig
    from graph_models.training.train import train_and_eval

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
    # Checked before the data loads (seconds): a bad name or path fails at once.
    if args.run_name is not None:
        check_run_name(args.run_name)
    check_text(args.checkpoint_dir, '--checkpoint-dir')
    check_text(args.log_dir, '--log-dir')
    model = ModelConfig(name=args.model, hidden_sizes=args.hidden_sizes,
                        dropout_rate=args.dropout, batch_norm=args.batch_norm)
    data_dir = args.data_dir
    if args.resume and data_dir is None:
        data_dir = _recorded_data_dir(os.path.join(args.checkpoint_dir, args.run_name),
                                      args.dataset)
    data = load_dataset(args.dataset, data_dir, download=not args.no_download,
                        limit=args.limit)
    run = RunConfig(model=model, dataset=args.dataset, epochs=args.epochs,
                    batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed,
                    limit=args.limit, data_source=data.source, quantization=quantization,
                    xla=args.xla, precision=args.precision,
                    steps_per_run=args.steps_per_run)
    print_line(f'{args.model} on {args.dataset}: {len(data.train_labels)} training and '
               f'{len(data.test_labels)} test examples from {data.source}')
    if cluster is not None:
        return _run_cluster_worker(args, run, data, cluster)
    result = train_and_eval(run, data, run_name=args.run_name, log_dir=args.log_dir,
                            checkpoint_dir=args.checkpoint_dir,
                            keep_checkpoints=args.keep_checkpoints,
                            save_every_steps=args.save_every_steps,
                            summary_every_steps=args.summary_every_steps,
                            histogram_every_steps=args.histogram_every_steps,
                            pictures_every_epochs=args.pictures_every_epochs, resume=args.resume,
                            overwrite=args.overwrite, resume_from_float=args.resume_from_float,
                            progress=not args.no_progress and args.stderr_is_tty,
                            log=print_line)
    final = result.final
    if final is not None:
        print_line(f'test accuracy {final.test_accuracy:.4f} after {final.epoch} epochs '
                   f'(step {result.global_step})')
    print_line(f'checkpoint: {result.checkpoint_path}')
    print_line(f'TensorBoard: tensorboard --logdir {args.log_dir}')
    return 0


def _recorded_data_dir(run_folder: str, dataset: str):
    """The data folder a run to resume recorded, or None (no such run: training says so)."""
    from graph_models.errors import CheckpointError
    from graph_models.training.run_config import read_run_config, run_config_path
    if not os.path.isfile(run_config_path(run_folder)):
        return None
    try:
        return read_run_config(run_folder).recorded_data_dir(dataset)
    except CheckpointError:
        return None  # Resuming reads the run config again and reports it.


def _run_cluster_worker(args, run, data, cluster) -> int:
    import os
    from graph_models.training.distributed import TEST_KILL_ENV, LIFE_ENV, kill_step, train_worker
    from graph_models.errors import ConfigError
    if args.resume_from_float:
        raise ConfigError('--resume-from-float is for single-process training')
    kill_at_step = kill_step(os.environ.get(TEST_KILL_ENV, ''), cluster.name,
                             int(os.environ.get(LIFE_ENV, '0') or 0))
    result = train_worker(run, data, cluster, run_name=args.run_name, log_dir=args.log_dir,
                          checkpoint_dir=args.checkpoint_dir, sync_replicas=args.sync_replicas,
                          save_every_steps=args.save_every_steps,
                          summary_every_steps=args.summary_every_steps,
                          keep_checkpoints=args.keep_checkpoints, overwrite=args.overwrite,
                          resume=args.resume, kill_at_step=kill_at_step,
                          log=print_line)
    print_line(f'{result.task}: {result.local_steps} local steps on {result.shard_examples} '
               f'examples in {result.seconds:.1f} s, global step {result.global_step}')
    if result.test_accuracy is not None:
        print_line(f'test accuracy {result.test_accuracy:.4f}; checkpoint folder '
                   f'{result.checkpoint_dir}')
    return 0
