"""``graph-models cluster-local``: run ``train`` as a ps/worker cluster on 127.0.0.1."""

import argparse

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
    from graph_models.cluster_local import run_cluster_local
    return run_cluster_local(args.train_args, workers=args.workers, ps=args.ps,
                             timeout=args.timeout, max_restarts=args.max_restarts)
