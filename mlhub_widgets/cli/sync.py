"""``mlhub sync SRC -o DEST``: copy an object-store prefix (or upload a folder), no catalogue."""

from __future__ import annotations

import argparse
import sys

from .options import UsageError, add_storage_options, print_error, storage_options


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """sync (see mlhub_widgets.download.prefix_sync)."""
    p = sub.add_parser(
        "sync",
        help="copy an object-store prefix (or upload a folder), without a catalogue",
        description="Copy every object below SRC (s3://, gs://, az:// prefix, or a local folder "
        "to upload) to DEST (a folder or an object-store prefix), keeping the layout: parallel, "
        "verified (size; the MD5 ETag of single-part S3 objects), resumable. Run it again to "
        "copy only what is missing or changed. Exit status 0 when everything is there, 1 when "
        "some objects failed, 2 for bad arguments.",
    )
    p.add_argument("src", metavar="SRC", help="s3://bucket/prefix/ (gs://, az://) or a folder")
    p.add_argument(
        "-o", "--output-dir", default=".", metavar="DEST", help="folder or prefix (default .)"
    )
    p.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="copy only paths (below SRC) matching one of these globs; repeatable",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="do not copy paths matching these globs (after --include); repeatable",
    )
    p.add_argument("--if-exists", choices=("resume", "skip", "overwrite"), default="resume")
    p.add_argument(
        "--workers", type=int, help="concurrent transfers (default 64; with --dask: per Dask task)"
    )
    p.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run the transfers on a Dask cluster: a scheduler address (tcp://host:8786) or "
        "local:N for N local worker processes; every worker reads SRC and writes DEST (needs "
        "the 'distributed' extra)",
    )
    p.add_argument(
        "--no-etag-checksums",
        action="store_true",
        help="do not check S3 objects against their MD5 ETag (SSE-KMS/SSE-C buckets)",
    )
    p.add_argument(
        "--estimate", action="store_true", help="print what would be copied; copy nothing"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    add_storage_options(p, output=True)
    p.set_defaults(handler=_cmd_sync)


def _cmd_sync(args: argparse.Namespace) -> int:
    from ..download import plan_sync, sync
    from ..exceptions import DownloadError

    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    common = {
        "include": args.include,
        "exclude": args.exclude,
        "storage_options": storage_options(args),
        "output_storage_options": storage_options(args, "output_storage_option"),
    }
    if args.estimate:
        print(plan_sync(args.src, args.output_dir, **common))
        return 0
    try:
        summary = sync(
            args.src,
            args.output_dir,
            if_exists=args.if_exists,
            workers=args.workers,
            etag_checksums=not args.no_etag_checksums,
            progress=not args.quiet,
            cluster=args.dask,
            **common,
        )
    except DownloadError as exc:
        print_error(str(exc))
        if exc.report is not None:
            print(f"failed objects: {exc.report}", file=sys.stderr)
        return 1
    print(summary)
    return 0
