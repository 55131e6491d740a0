"""``python -m graph_models ...`` is the ``graph-models`` command."""

import sys

from graph_models.cli import main

sys.exit(main())
