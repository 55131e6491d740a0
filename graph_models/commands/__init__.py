"""The ``graph-models`` subcommands, one module each.

Each module has ``add_parser(subparsers)``, which declares the command's flags and sets its
handler; the handler parses nothing else, calls one library function and prints its result.
Building the parsers imports no TensorFlow (``graph-models --help`` answers at once); handlers
import the library when they run. `graph_models.cli` assembles the parsers in `COMMANDS` order
and turns errors into one line.
"""

# Module names, in the order ``graph-models --help`` lists the commands.
COMMANDS = ('train', 'freeze', 'export', 'eval', 'predict', 'inspect', 'compare', 'summary',
            'cluster_local', 'run')
