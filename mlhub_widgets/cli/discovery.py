"""``mlhub datasets|collections|items|models|info``: the argument parsers.

The commands themselves are in :mod:`.discovery_commands`, imported when one runs: it needs
pandas and geopandas, which ``mlhub --help`` or ``mlhub download`` should not load.
"""

from __future__ import annotations

import argparse

from .options import Handler, add_session_options, add_source_option


def _discovery(name: str) -> Handler:
    """A handler of :mod:`.discovery_commands`, imported (with pandas, geopandas) only when run."""

    def run(args: argparse.Namespace) -> int:
        from . import discovery_commands

        handler: Handler = getattr(discovery_commands, name)
        return handler(args)

    return run


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """datasets, collections, items, models, info (see mlhub_widgets.discovery)."""

    def fmt(p: argparse.ArgumentParser, parquet: str) -> None:
        p.add_argument(
            "--format",
            choices=("table", "csv", "geojson", "parquet"),
            default="table",
            help=f"output format: a table, CSV, a GeoJSON FeatureCollection or {parquet} "
            "(parquet needs --output or a redirected stdout)",
        )
        p.add_argument(
            "-o", "--output", metavar="FILE", help="write to FILE instead of standard output"
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
    fmt(p, "GeoParquet")
    add_session_options(p)
    add_source_option(p)
    p.set_defaults(handler=_discovery("cli_datasets"))

    p = sub.add_parser("collections", help="list collections (of one dataset)")
    p.add_argument("--dataset", metavar="ID_OR_DOI", help="only this dataset's collections")
    fmt(p, "GeoParquet")
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
    fmt(p, "stac-geoparquet")
    add_session_options(p)
    add_source_option(p)
    p.set_defaults(handler=_discovery("cli_items"))

    p = sub.add_parser("models", help="list ML models")
    p.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="output format"
    )
    add_session_options(p)
    p.set_defaults(handler=_discovery("cli_models"))

    p = sub.add_parser("info", help="a dataset's collections, sizes, licence and citation")
    p.add_argument("dataset", metavar="DATASET", help="dataset id or DOI")
    add_session_options(p)
    p.set_defaults(handler=_discovery("cli_info"))
