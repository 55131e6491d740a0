"""``graph-models summary``: the Keras-like layer table of a model preset or a trained run."""

from graph_models.nets.architectures import FAMILIES  # The table: no TensorFlow.
from graph_models.commands.flags import int_list


def add_parser(subparsers) -> None:
    p = subparsers.add_parser('summary', help='Keras-like layer table of a graph model or run',
                              description='The layer table of a model preset, or of a trained '
                                          'run (read from its run_config.json).')
    p.add_argument('run_folder', nargs='?', metavar='RUN_FOLDER',
                   help='a trained run\'s checkpoint folder (its run_config.json gives the '
                        'model; --model, --hidden-sizes and --batch-norm are then ignored)')
    p.add_argument('--model', default='mlp', choices=list(FAMILIES), help='model (default mlp)')
    p.add_argument('--hidden-sizes', type=int_list, metavar='N[,N...]',
                   help='MLP hidden layer sizes (default: the preset\'s)')
    p.add_argument('--batch-norm', action='store_true', help='CNN with batch norm (default off)')
    p.set_defaults(handler=run)


def run(args) -> int:
    from graph_models.nets import summary_table
    from graph_models.training import run_config
    if args.run_folder:
        print(run_config.format_run(args.run_folder))
        return 0
    from graph_models.nets.factory import ModelConfig
    print(summary_table.format_table(ModelConfig(args.model, hidden_sizes=args.hidden_sizes,
                                                 batch_norm=args.batch_norm)))
    return 0
