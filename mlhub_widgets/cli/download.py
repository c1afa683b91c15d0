"""``mlhub download`` and ``mlhub archive``: datasets and collection archives to disk."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..download.defaults import DEFAULT_WORKERS
from .options import (
    UsageError,
    add_session_options,
    add_source_option,
    parse_bbox_arg,
    print_error,
    session_kwargs,
    source_kwargs,
    storage_options,
)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """download, archive (see mlhub_widgets.download)."""
    p = sub.add_parser(
        "download",
        help="download a dataset's catalogue and (filtered) assets",
        description="Download the STAC catalogue of DATASET_ID and its assets (resumable: run "
        "it again to continue or to retry failed assets). Exit status 0 when every selected "
        "asset is on disk, 1 when some failed (their list is printed), 2 for bad arguments.",
    )
    p.add_argument("dataset_id", metavar="DATASET_ID")
    p.add_argument(
        "-o",
        "--output-dir",
        default=".",
        help="folder for the catalogue (default .), or an object-store prefix (s3://b/p)",
    )
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
    p.add_argument(
        "--workers",
        type=int,
        help=f"concurrent transfers (default {DEFAULT_WORKERS}; with --dask: per Dask task)",
    )
    p.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run the transfers on a Dask cluster: a scheduler address (tcp://host:8786) or "
        "local:N for N local worker processes; the asset folder must be the same path on every "
        "worker (needs the 'distributed' extra)",
    )
    p.add_argument(
        "--estimate",
        action="store_true",
        help="print what the filters select and its size; writes nothing to the output folders "
        "(the catalogue is read in a temporary folder, removed afterwards)",
    )
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress (default: bars on a terminal, else a line every few seconds)",
    )
    add_session_options(p)
    add_source_option(p)
    p.add_argument(
        "--output-storage-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of the object store written to (-o s3://...)",
    )
    p.set_defaults(handler=_cmd_download)

    p = sub.add_parser(
        "archive",
        help="download a collection archive (.tar.gz)",
        description="Download the archive of COLLECTION_ID (resumable, verified).",
    )
    p.add_argument("collection_id", metavar="COLLECTION_ID")
    p.add_argument(
        "-o", "--output-dir", default=".", help="folder (default .) or object-store prefix"
    )
    p.add_argument("--if-exists", choices=("resume", "skip", "overwrite"), default="resume")
    p.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar (none unless on a terminal)"
    )
    add_session_options(p)
    p.add_argument(
        "--output-storage-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of the object store written to (-o s3://...)",
    )
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
    bbox = parse_bbox_arg(args.bbox) if args.bbox else None
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


def _storage_args(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "storage_options": storage_options(args),
        "output_storage_options": storage_options(args, "output_storage_option"),
    }


def _cmd_download(args: argparse.Namespace) -> int:
    from ..download import download_dataset, plan_download
    from ..exceptions import DownloadError

    filters = _download_filters(args)
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.estimate:
        import tempfile

        # plan_download keeps the catalogue and the index for the download that usually
        # follows; an estimate from the shell writes nothing where the user pointed
        with tempfile.TemporaryDirectory(prefix="mlhub-estimate-") as scratch:
            plan = plan_download(
                args.dataset_id,
                scratch,
                **filters,
                **_session_args(args),
                storage_options=storage_options(args),
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
            cluster=args.dask,
            **filters,
            **_session_args(args),
            **_storage_args(args),
        )
    except DownloadError as exc:
        print_error(str(exc))
        if exc.report is not None:
            print(f"failed assets: {exc.report}", file=sys.stderr)
        return 1
    print(summary)
    return 0


def _cmd_archive(args: argparse.Namespace) -> int:
    from ..download import download_archive

    path = download_archive(
        args.collection_id,
        args.output_dir,
        if_exists=args.if_exists,
        progress=not args.quiet and sys.stderr.isatty(),
        output_storage_options=storage_options(args, "output_storage_option"),
        **_session_args(args),
    )
    print(path)
    return 0
