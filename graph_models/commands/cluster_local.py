"""``graph-models cluster-local``: run ``train`` as a ps/worker cluster on 127.0.0.1."""

import argparse
import contextlib
import io
import os
from typing import List, Optional

from graph_models.commands.flags import non_negative_int, positive_float, positive_int


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        'cluster-local', help='run "train" as a ps/worker cluster on 127.0.0.1',
        description='Start ps and worker tasks of "graph-models train" as local subprocesses '
                    'on free loopback ports; restart a task that fails (at most --max-restarts '
                    'times) and stop them all when the chief ends. Example: graph-models '
                    'cluster-local --workers 2 --ps 1 -- train --model mlp --epochs 5')
    p.add_argument('--workers', type=positive_int, default=2, help='number of worker tasks')
    p.add_argument('--ps', type=positive_int, default=1,
                   help='number of parameter-server tasks')
    p.add_argument('--timeout', type=positive_float, metavar='SECONDS',
                   help='seconds before the whole cluster is stopped (default: none)')
    p.add_argument('--max-restarts', type=non_negative_int, default=3, metavar='N',
                   help='restart a failed task at most N times, then stop the cluster and '
                        'exit 1 (a lost chief or ps restarts every task from the latest '
                        'checkpoint; 0: stop at the first failure)')
    p.add_argument('train_args', nargs=argparse.REMAINDER,
                   help='-- train [train flags]')
    p.set_defaults(handler=run)


def run(args) -> int:
    from graph_models.training.cluster_local import run_cluster_local
    return run_cluster_local(args.train_args, workers=args.workers, ps=args.ps,
                             timeout=args.timeout, max_restarts=args.max_restarts,
                             run_folder=run_folder(args.train_args))


def run_folder(args: List[str]) -> Optional[str]:
    """The run's checkpoint folder ``<--checkpoint-dir>/<run name>`` named by ``train`` flags.

    Returns None when the flags do not parse (the tasks then report the usage error).
    """
    args = list(args)
    if args[:1] == ['--']:
        args = args[1:]
    if args[:1] == ['train']:
        args = args[1:]
    from graph_models.commands import train as train_command
    from graph_models.training.run_config import default_run_name
    parser = argparse.ArgumentParser(add_help=False)
    train_command.add_parser(parser.add_subparsers())
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            ns, _ = parser.parse_known_args(['train', *args])
    except SystemExit:
        return None
    name = ns.run_name if ns.run_name is not None else default_run_name(
        ns.model, ns.dataset, ns.quantize)
    return os.path.join(ns.checkpoint_dir, name)
