"""``mlhub hub`` and ``mlhub demo``: the bundled hub, alone or with the explorer in Voila.

Both go through :mod:`mlhub_widgets.demo`, the one client-side module that starts the hub.
"""

from __future__ import annotations

import argparse


def add_hub_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "hub",
        help="run the bundled MLHub-compatible hub",
        description="Serve the bundled sample data (or --data DIR) as an MLHub-compatible API "
        "on loopback, until Ctrl-C.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="API port (default: a free port)")
    p.add_argument("--storage-port", type=int, default=0, help="storage port (default: free)")
    p.add_argument("--data", help="data directory to serve (default: bundled sample)")
    p.add_argument("--require-key", help="answer 401 unless this key is sent")
    p.set_defaults(handler=_cmd_hub)


def _cmd_hub(args: argparse.Namespace) -> int:
    from ..demo import run_hub

    argv = ["--host", args.host, "--port", str(args.port)]
    argv += ["--storage-port", str(args.storage_port)]
    if args.data:
        argv += ["--data", args.data]
    if args.require_key:
        argv += ["--require-key", args.require_key]
    return run_hub(argv)


def add_demo_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """demo (the explorer on the bundled hub)."""
    p = sub.add_parser(
        "demo",
        help="open the explorer in Voila against the bundled hub",
        description="Start the bundled hub on 127.0.0.1 and serve notebooks/01-explorer.ipynb "
        "with Voila, printing both URLs. Ctrl-C stops both.",
    )
    p.add_argument("--port", type=int, default=8866, help="Voila port (default 8866)")
    p.add_argument("--data", help="data directory for the hub (default: bundled sample)")
    p.add_argument("--no-voila", action="store_true", help="only run the hub")
    p.set_defaults(handler=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    return run_demo(port=args.port, data_dir=args.data, voila=not args.no_voila)
