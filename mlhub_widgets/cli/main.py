"""The ``mlhub`` command line: the parser and :func:`main`.

Each command group registers its subcommands in its own module (``add_commands``); the commands
import what they need when they run. Exit status: 0 success, 1 the operation failed (e.g. some
assets failed), 2 bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .._version import __version__
from ..exceptions import MLHubException, ProfileError
from . import demo, discovery, download, profiles, sync
from .options import Handler, UsageError, print_error


def build_parser() -> argparse.ArgumentParser:
    """The full ``mlhub`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="mlhub",
        description="Find and download Earth-observation ML training data (Radiant MLHub API).",
    )
    parser.add_argument("--version", action="version", version=f"mlhub_widgets {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    profiles.add_commands(sub)
    demo.add_hub_command(sub)
    discovery.add_commands(sub)
    download.add_commands(sub)
    sync.add_commands(sub)
    demo.add_demo_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``mlhub`` command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help/--version (0) or bad usage (2)
        return int(exc.code or 0)
    if args.verbose:
        logging.basicConfig(
            level=logging.DEBUG if args.verbose > 1 else logging.INFO,
            format="%(levelname)s %(name)s: %(message)s",
        )
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except (UsageError, ValueError, TypeError, ProfileError) as exc:
        print_error(str(exc))
        return 2
    except MLHubException as exc:
        print_error(str(exc))
        return 1
    except KeyboardInterrupt:
        print_error("interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
