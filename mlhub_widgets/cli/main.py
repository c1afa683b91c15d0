"""The ``mlhub`` command line: the parser and :func:`main`.

Each command group registers its subcommands in its own module (``add_commands``); the commands
import what they need when they run.

Every error ends the command with one ``mlhub: error: …`` line on stderr (no traceback) and
an exit status:

* 0 success;
* 1 the operation failed: the server or the network answered an error, some assets failed
  (``err_report.csv`` is printed), or a file or folder could not be written (``OSError``);
* 2 bad arguments or configuration (unusable values, profiles, settings, a busy port);
* 130 interrupted (Ctrl-C);
* 141 (128 + SIGPIPE) the reader of standard output closed it, as ``mlhub datasets | head``
  does: the command stops quietly, like any Unix tool killed by SIGPIPE.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import sys
from collections.abc import Sequence

from .._version import __version__
from ..exceptions import MLHubException, ProfileError
from . import demo, discovery, download, profiles, sync
from .options import Handler, UsageError, describe_os_error, print_error

#: Exit status when standard output was closed by its reader (128 + SIGPIPE).
EXIT_STDOUT_CLOSED = 141


def build_parser() -> argparse.ArgumentParser:
    """The full ``mlhub`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="mlhub",
        description="Find and download Earth-observation ML training data (Radiant MLHub API).",
        epilog="Exit status: 0 success, 1 the operation failed, 2 bad arguments or "
        "configuration, 130 interrupted, 141 standard output closed by its reader.",
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
        # ``mlhub hub`` hands everything after its name to the hub's own parser
        args, rest = parser.parse_known_args(argv)
        if rest and not getattr(args, "takes_rest", False):
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
    except SystemExit as exc:  # argparse: --help/--version (0) or bad usage (2)
        return int(exc.code or 0)
    args.rest = rest
    if args.verbose:
        logging.basicConfig(
            level=logging.DEBUG if args.verbose > 1 else logging.INFO,
            format="%(levelname)s %(name)s: %(message)s",
        )
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    return run_handler(handler, args)


def run_handler(handler: Handler, args: argparse.Namespace) -> int:
    """Run one command, turning every expected error into one ``mlhub: error:`` line."""
    try:
        status = handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except BrokenPipeError as exc:
        if _stdout_closed():
            return EXIT_STDOUT_CLOSED
        print_error(describe_os_error(exc))
        return 1
    except (UsageError, ValueError, TypeError, ProfileError) as exc:
        # ValueError includes the configuration errors (ConfigurationError, NoAssetsSelected)
        print_error(str(exc))
        return 2
    except MLHubException as exc:
        print_error(str(exc))
        return 1
    except OSError as exc:
        print_error(describe_os_error(exc))
        return 1
    except KeyboardInterrupt:
        print_error("interrupted")
        return 130


def _stdout_closed() -> bool:
    """Whether standard output is a pipe whose reader has gone; if so, silence it.

    The recipe of the Python documentation (``signal`` module, "Note on SIGPIPE"): point the
    file descriptor at ``/dev/null`` so that the interpreter's final flush raises nothing.
    """
    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        closed = any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no real file descriptor (e.g. captured)
        return False
    if closed:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    return closed


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
