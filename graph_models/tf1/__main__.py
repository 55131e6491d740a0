"""``python -m graph_models.tf1 [--data-dir DIR] [--report] SCRIPT.py [ARGS...]``: the same as
``graph-models run`` (importing this package already switched the process into TF 1.x mode)."""

import sys

from graph_models import cli

if __name__ == '__main__':
    sys.exit(cli.main(['run'] + sys.argv[1:]))
