"""``python -m mlhub_widgets.cli``: the ``mlhub`` command."""

import sys

from .main import main

sys.exit(main())
