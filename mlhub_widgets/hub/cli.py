"""Command line of the hub: ``mlhub hub`` and ``python -m mlhub_widgets.hub`` (one and the same).

``mlhub hub ARGS`` hands ``ARGS`` to :func:`main`, so both have this parser, this help and these
exit statuses: 0 after Ctrl-C or SIGTERM, 1 when the hub cannot start (e.g. a port in use, one
``mlhub hub: error:`` line), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from .faults import FaultConfig

__all__ = ["add_arguments", "build_parser", "main", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the hub's options to ``parser`` (for a ``hub`` subcommand of a larger CLI)."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback)")
    parser.add_argument("--port", type=int, default=0, help="API port (default: any free port)")
    parser.add_argument(
        "--storage-port", type=int, default=0, help="storage port (default: any free port)"
    )
    parser.add_argument(
        "--s3-port", type=int, default=0, help="S3 endpoint port (default: any free port)"
    )
    parser.add_argument(
        "--data", default=None, metavar="DIR", help="data directory (default: the bundled sample)"
    )
    parser.add_argument(
        "--require-key",
        default=None,
        metavar="KEY",
        help="answer 401 to protected routes without it",
    )
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="delay added to every response"
    )
    parser.add_argument(
        "--connect-latency-ms",
        type=float,
        default=0.0,
        help="extra delay on the first request of each connection",
    )
    parser.add_argument(
        "--error-rate", type=float, default=0.0, help="fraction of asset requests answered 5xx/429"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random faults")
    parser.add_argument(
        "--cache-dir",
        default=None,
        metavar="DIR",
        help="where built catalogue tarballs are kept across restarts "
        "(default: $MLHUB_HUB_CACHE or a folder in the temp dir)",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="keep built catalogue tarballs in memory only"
    )
    parser.add_argument(
        "--warm",
        action="store_true",
        help="build every catalogue tarball and item index before printing the URLs",
    )


def build_parser() -> argparse.ArgumentParser:
    """The stand-alone parser of ``python -m mlhub_widgets.hub``."""
    parser = argparse.ArgumentParser(
        prog="mlhub hub",
        description="Serve an MLHub-compatible API, blob store and S3 endpoint on loopback "
        "until Ctrl-C.",
    )
    add_arguments(parser)
    return parser


def run(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Start a hub from parsed ``args``, print its URLs, and serve until ``stop`` or Ctrl-C."""
    from .server import Hub

    faults = FaultConfig(
        latency_ms=args.latency_ms,
        connect_latency_ms=args.connect_latency_ms,
        error_rate=args.error_rate,
        seed=args.seed,
    )
    hub = Hub(
        args.data,
        host=args.host,
        port=args.port,
        storage_port=args.storage_port,
        s3_port=getattr(args, "s3_port", 0),
        require_key=args.require_key,
        faults=faults,
        cache_dir=False if getattr(args, "no_cache", False) else getattr(args, "cache_dir", None),
    )
    hub.start()
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():  # before the URLs are printed
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if getattr(args, "warm", False):
            hub.warm()
        print(f"MLHub API:  {hub.url}", flush=True)
        print(f"storage:    {hub.storage_url}", flush=True)
        print(f"S3:         {hub.s3_url}  (buckets: radiantearth, scratch)", flush=True)
        ids = hub.dataset_ids()
        print(f"datasets ({len(ids)}): {', '.join(ids)}", flush=True)
        if args.require_key:
            print("API key required on items, catalog and archive routes", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        hub.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``mlhub hub [--host H] [--port N] [--storage-port N] [--data DIR] [--require-key KEY]``."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    try:
        return run(args)
    except OSError as exc:  # a port in use, an unreadable --data folder
        message = str(exc.strerror or exc)  # without "[Errno 98]"
        if exc.filename is not None:
            message = f"{message}: {exc.filename}"
        print(f"mlhub hub: error: {message}", file=sys.stderr, flush=True)
        return 1
