"""The ``mlhub`` command line.

Each area of the package registers its subcommands in its own ``_add_*`` function below; the
command implementations live in the modules they belong to. Exit status: 0 success, 1 the
operation failed (e.g. some assets failed), 2 bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import profiles
from ._version import __version__
from .exceptions import MLHubException, ProfileError
from .redact import mask_key

Handler = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """Bad arguments detected after parsing (exit status 2)."""


def _err(message: str) -> None:
    print(f"mlhub: error: {message}", file=sys.stderr)


def add_session_options(parser: argparse.ArgumentParser) -> None:
    """``--profile``, ``--api-key`` and ``--root-url`` for commands that talk to the API."""
    group = parser.add_argument_group("connection")
    group.add_argument("--profile", help="profile in the profiles file (default: MLHUB_PROFILE)")
    group.add_argument("--api-key", help="API key (default: MLHUB_API_KEY or the profile)")
    group.add_argument("--root-url", help="API root URL (default: MLHUB_ROOT_URL or profile)")


def add_source_option(parser: argparse.ArgumentParser) -> None:
    """``--source`` / ``--source-kind``: a STAC catalogue or STAC API instead of the MLHub API."""
    group = parser.add_argument_group("other STAC sources")
    group.add_argument(
        "--source",
        metavar="URL_OR_PATH",
        help="a static STAC catalogue (folder, catalog.json path or URL) or a STAC API URL "
        "instead of the MLHub API",
    )
    group.add_argument(
        "--source-kind",
        choices=("static", "stac-api", "mlhub"),
        help="what --source is (default: detected)",
    )


def source_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``{"source": Source}`` when ``--source`` was given, else ``{}``."""
    where = getattr(args, "source", None)
    if not where:
        return {}
    from .sources import open_source

    return {"source": open_source(where, kind=getattr(args, "source_kind", None))}


def session_kwargs(args: argparse.Namespace) -> dict[str, str | None]:
    """The ``get_session`` keyword arguments given on the command line."""
    return {
        "api_key": getattr(args, "api_key", None),
        "profile": getattr(args, "profile", None),
        "root_url": getattr(args, "root_url", None),
    }


# ---------------------------------------------------------------------------- profiles
def _cmd_configure(args: argparse.Namespace) -> int:
    path = profiles.profiles_path()
    name = args.profile or profiles.DEFAULT_PROFILE
    key = args.api_key
    if not key:
        if sys.stdin.isatty():
            key = getpass.getpass("API Key: ")
        else:
            key = sys.stdin.readline()
    key = (key or "").strip()
    if not key:
        raise UsageError("no API key given")
    existing = {p.name: p for p in profiles.list_profiles(path)}
    if name in existing and not args.force:
        old = mask_key(existing[name].api_key)
        if sys.stdin.isatty():
            answer = input(f"Overwrite existing API key {old} of profile '{name}'? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("Aborted; profile unchanged.", file=sys.stderr)
                return 1
    written = profiles.save_profile(name, key, args.root_url, path)
    print(f"Wrote profile '{name}' to {written}")
    return 0


def _cmd_profiles(args: argparse.Namespace) -> int:
    path = profiles.profiles_path()
    found = profiles.list_profiles(path)
    if not found:
        print(f"No profiles in {path} (create one with: mlhub configure)")
        return 0
    width = max(len(p.name) for p in found)
    for p in found:
        root = p.root_url or "(default root URL)"
        print(f"{p.name:<{width}}  {mask_key(p.api_key)}  {root}")
    return 0


def _add_profile_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "configure",
        help="save an API key to a profile",
        description="Save an API key (and optionally a root URL) to a profile in "
        "$MLHUB_HOME/profiles (mode 0600). Without --api-key the key is read from a hidden "
        "prompt, or from the first line of standard input when it is not a terminal.",
    )
    p.add_argument("--profile", help="profile name (default: default)")
    p.add_argument("--api-key", help="the key (prefer the prompt: keeps it out of shell history)")
    p.add_argument("--root-url", help="API root URL to store with the profile")
    p.add_argument("--force", action="store_true", help="overwrite an existing key without asking")
    p.set_defaults(handler=_cmd_configure)

    p = sub.add_parser("profiles", help="list profiles with masked keys")
    p.set_defaults(handler=_cmd_profiles)


# ---------------------------------------------------------------------------- hub
def _add_hub_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    from . import hub

    argv = ["--host", args.host, "--port", str(args.port)]
    argv += ["--storage-port", str(args.storage_port)]
    if args.data:
        argv += ["--data", args.data]
    if args.require_key:
        argv += ["--require-key", args.require_key]
    return hub.main(argv)


# ---------------------------------------------------------------------------- discovery
def _discovery(name: str) -> Handler:
    """A handler that imports mlhub_widgets.discovery (pandas, geopandas) only when run."""

    def run(args: argparse.Namespace) -> int:
        from . import discovery

        handler: Handler = getattr(discovery, name)
        return handler(args)

    return run


def _add_discovery_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """datasets, collections, items, models, info (see mlhub_widgets.discovery)."""

    def fmt(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--format", choices=("table", "csv", "json"), default="table", help="output format"
        )

    p = sub.add_parser("datasets", help="list datasets (filter by tags or text)")
    p.add_argument(
        "--tags",
        nargs="+",
        action="extend",
        metavar="TAG",
        help="datasets having all these tags (quote tags with spaces)",
    )
    p.add_argument(
        "--text",
        nargs="+",
        action="extend",
        metavar="PHRASE",
        help="datasets containing any of these phrases",
    )
    fmt(p)
    add_session_options(p)
    add_source_option(p)
    p.set_defaults(handler=_discovery("cli_datasets"))

    p = sub.add_parser("collections", help="list collections (of one dataset)")
    p.add_argument("--dataset", metavar="ID_OR_DOI", help="only this dataset's collections")
    fmt(p)
    add_session_options(p)
    add_source_option(p)
    p.set_defaults(handler=_discovery("cli_collections"))

    p = sub.add_parser("items", help="list the items of a collection")
    p.add_argument("collection", metavar="COLLECTION")
    p.add_argument(
        "--bbox",
        metavar="W,S,E,N",
        help="bounding box in degrees (EPSG:4326); write --bbox=-10,5,0,8 if W is negative",
    )
    p.add_argument("--datetime", metavar="A/B", help="date, datetime or interval A/B (.. = open)")
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--limit", type=int, default=100, metavar="N", help="at most N items (default 100)"
    )
    group.add_argument("--all", action="store_true", help="every item")
    fmt(p)
    add_session_options(p)
    add_source_option(p)
    p.set_defaults(handler=_discovery("cli_items"))

    p = sub.add_parser("models", help="list ML models")
    fmt(p)
    add_session_options(p)
    p.set_defaults(handler=_discovery("cli_models"))

    p = sub.add_parser("info", help="a dataset's collections, sizes, licence and citation")
    p.add_argument("dataset", metavar="DATASET", help="dataset id or DOI")
    add_session_options(p)
    p.set_defaults(handler=_discovery("cli_info"))


# ---------------------------------------------------------------------------- download
def _add_download_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """download, archive (see mlhub_widgets.download)."""
    p = sub.add_parser(
        "download",
        help="download a dataset's catalogue and (filtered) assets",
        description="Download the STAC catalogue of DATASET_ID and its assets (resumable: run "
        "it again to continue or to retry failed assets). Exit status 0 when every selected "
        "asset is on disk, 1 when some failed (their list is printed), 2 for bad arguments.",
    )
    p.add_argument("dataset_id", metavar="DATASET_ID")
    p.add_argument("-o", "--output-dir", default=".", help="folder for the catalogue (default .)")
    p.add_argument("--asset-output-dir", help="folder for the assets (default: --output-dir)")
    area = p.add_mutually_exclusive_group()
    area.add_argument(
        "--bbox", help="W,S,E,N in degrees (EPSG:4326); write --bbox=-87.6,5.9,... for a negative W"
    )
    area.add_argument("--intersects", metavar="FILE", help="GeoJSON file with the area")
    p.add_argument("--datetime", help="START[/END] (ISO 8601; '..' for open ends)")
    p.add_argument(
        "--collection-filter",
        metavar="JSON_OR_FILE",
        help='{"collection_id": ["asset_key", ...]} as JSON text or a JSON file',
    )
    p.add_argument("--catalog-only", action="store_true", help="only the catalogue")
    p.add_argument("--if-exists", choices=("resume", "skip", "overwrite"), default="resume")
    p.add_argument("--workers", type=int, help="concurrent transfers (default 64)")
    p.add_argument(
        "--estimate", action="store_true", help="print what the filters select; download nothing"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    add_session_options(p)
    add_source_option(p)
    p.set_defaults(handler=_cmd_download)

    p = sub.add_parser(
        "archive",
        help="download a collection archive (.tar.gz)",
        description="Download the archive of COLLECTION_ID (resumable, verified).",
    )
    p.add_argument("collection_id", metavar="COLLECTION_ID")
    p.add_argument("-o", "--output-dir", default=".", help="folder (default .)")
    p.add_argument("--if-exists", choices=("resume", "skip", "overwrite"), default="resume")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_session_options(p)
    p.set_defaults(handler=_cmd_archive)


def _json_arg(value: str, what: str) -> Any:
    import json
    from pathlib import Path

    text = value
    if not value.lstrip().startswith(("{", "[")):
        path = Path(value).expanduser()
        if not path.is_file():
            raise UsageError(f"{what}: {value!r} is neither JSON nor a readable file")
        text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{what}: invalid JSON ({exc})") from None


def _download_filters(args: argparse.Namespace) -> dict[str, Any]:
    bbox: list[float] | None = None
    if args.bbox:
        try:
            bbox = [float(v) for v in args.bbox.replace(" ", "").split(",")]
        except ValueError:
            raise UsageError(f"--bbox must be W,S,E,N numbers, got {args.bbox!r}") from None
    datetime: object = None
    if args.datetime:
        datetime = tuple(args.datetime.split("/", 1)) if "/" in args.datetime else args.datetime
        if isinstance(datetime, tuple):
            datetime = tuple(None if v in ("", "..") else v for v in datetime)
    return {
        "bbox": bbox,
        "intersects": _json_arg(args.intersects, "--intersects") if args.intersects else None,
        "datetime": datetime,
        "collection_filter": _json_arg(args.collection_filter, "--collection-filter")
        if args.collection_filter
        else None,
    }


def _session_args(args: argparse.Namespace) -> dict[str, Any]:
    return {**session_kwargs(args), **source_kwargs(args)}


def _cmd_download(args: argparse.Namespace) -> int:
    from .download import download_dataset, plan_download
    from .exceptions import DownloadError

    filters = _download_filters(args)
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.estimate:
        plan = plan_download(
            args.dataset_id,
            args.output_dir,
            asset_output_dir=args.asset_output_dir,
            **filters,
            **_session_args(args),
        )
        print(plan)
        return 0
    try:
        summary = download_dataset(
            args.dataset_id,
            args.output_dir,
            asset_output_dir=args.asset_output_dir,
            catalog_only=args.catalog_only,
            if_exists=args.if_exists,
            workers=args.workers,
            progress=not args.quiet,
            **filters,
            **_session_args(args),
        )
    except DownloadError as exc:
        _err(str(exc))
        if exc.report is not None:
            print(f"failed assets: {exc.report}", file=sys.stderr)
        return 1
    print(summary)
    return 0


def _cmd_archive(args: argparse.Namespace) -> int:
    from .download import download_archive

    path = download_archive(
        args.collection_id,
        args.output_dir,
        if_exists=args.if_exists,
        progress=not args.quiet,
        **_session_args(args),
    )
    print(path)
    return 0


# ---------------------------------------------------------------------------- demo
def _add_demo_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    from .demo import run_demo

    return run_demo(port=args.port, data_dir=args.data, voila=not args.no_voila)


# ---------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    """The full ``mlhub`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="mlhub",
        description="Find and download Earth-observation ML training data (Radiant MLHub API).",
    )
    parser.add_argument("--version", action="version", version=f"mlhub_widgets {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_profile_commands(sub)
    _add_hub_commands(sub)
    _add_discovery_commands(sub)
    _add_download_commands(sub)
    _add_demo_commands(sub)
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
        _err(str(exc))
        return 2
    except MLHubException as exc:
        _err(str(exc))
        return 1
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
