"""``python -m mlhub_widgets.hub``: run the bundled hub until Ctrl-C."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
