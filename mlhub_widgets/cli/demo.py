"""``mlhub hub`` and ``mlhub demo``: the bundled hub, alone or with the explorer in Voila.

Both go through :mod:`mlhub_widgets.demo`, the one client-side module that starts the hub.
``mlhub hub`` is ``python -m mlhub_widgets.hub``: everything after ``hub`` goes to the hub's own
parser (:mod:`mlhub_widgets.hub.cli`), so the two commands are one, with one ``--help``.
"""

from __future__ import annotations

import argparse
import errno
import socket

from .options import UsageError

DEFAULT_VOILA_PORT = 8866


def add_hub_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """hub (the bundled MLHub-compatible server; its options are the hub's own)."""
    p = sub.add_parser(
        "hub",
        add_help=False,  # `mlhub hub --help` is the hub parser's help
        help="run the bundled MLHub-compatible hub (mlhub hub --help for its options)",
    )
    p.set_defaults(handler=_cmd_hub, takes_rest=True)


def _cmd_hub(args: argparse.Namespace) -> int:
    from ..demo import run_hub

    try:
        return run_hub(args.rest)
    except SystemExit as exc:  # the hub parser's --help (0) or a usage error (2)
        return int(exc.code or 0)


def add_demo_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """demo (the explorer on the bundled hub)."""
    p = sub.add_parser(
        "demo",
        help="open the explorer in Voila against the bundled hub",
        description="Start the bundled hub on 127.0.0.1 and serve notebooks/01-explorer.ipynb "
        "with Voila, printing both URLs once they answer. Ctrl-C stops both. A busy --port is "
        "refused (exit status 2); --port 0 takes any free port.",
    )
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_VOILA_PORT,
        help=f"Voila port on 127.0.0.1 (default {DEFAULT_VOILA_PORT}; 0: any free port)",
    )
    p.add_argument("--data", help="data directory for the hub (default: bundled sample)")
    p.add_argument("--no-voila", action="store_true", help="only run the hub")
    p.set_defaults(handler=_cmd_demo)


def free_port(port: int, host: str = "127.0.0.1") -> int:
    """``port`` if a server can listen on it now (any free port for 0), else a UsageError.

    Checked the way Voila's server (tornado) binds: with ``SO_REUSEADDR``, so a port in
    ``TIME_WAIT`` counts as free and only a port someone listens on is refused.
    """
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {port}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(
                    f"port {port} on {host} is already in use (another `mlhub demo` or Voila?); "
                    f"choose another with --port, e.g. `mlhub demo --port {port + 1}`, "
                    "or `--port 0` for any free port"
                ) from None
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        chosen: int = sock.getsockname()[1]
        return chosen


def _cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    port = free_port(args.port) if not args.no_voila else args.port
    return run_demo(port=port, data_dir=args.data, voila=not args.no_voila)
