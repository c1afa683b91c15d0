"""The discovery commands: a discovery frame printed as a table, CSV, GeoJSON or GeoParquet.

Registered by :mod:`.discovery`; argparse namespaces in, exit status out.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from ..config.session import Session
from ..discovery import collections, datasets, item_collection, items_frame, models
from ..discovery.export import (
    frame_feature_collection,
    plain_value,
    to_geoparquet,
    write_frame_parquet,
)
from ..exceptions import EntityDoesNotExist
from ..mlhub import client
from ..mlhub.dataset import Dataset
from ..units import human_bytes
from .options import UsageError, parse_bbox_arg, source_kwargs

_TABLE_COLUMNS = {
    "datasets": ["id", "title", "tags", "doi", "license"],
    "collections": ["id", "dataset", "types", "license", "start_datetime", "end_datetime"],
    "items": ["id", "datetime", "start_datetime", "end_datetime", "assets"],
    "models": ["id", "title", "architecture", "prediction_type", "license"],
}


def _cell_text(value: Any, sep: str) -> Any:
    """A list or mapping cell as text: scalars joined by ``sep``, objects as JSON."""
    if isinstance(value, Mapping):
        return json.dumps(plain_value(value), ensure_ascii=False)
    if isinstance(value, list) and all(not isinstance(v, Mapping | list) for v in value):
        return sep.join(map(str, value))
    if isinstance(value, list):
        return json.dumps(plain_value(value), ensure_ascii=False)
    return value


def render(frame: pd.DataFrame, kind: str, fmt: str) -> str:
    """Render a discovery frame as ``table`` (a readable subset), ``csv``, ``json`` (records)
    or ``geojson`` (a FeatureCollection) text."""
    if fmt == "json":
        records = [
            {col: plain_value(val) for col, val in zip(frame.columns, row, strict=True)}
            for row in frame.itertuples(index=False, name=None)
        ]
        return json.dumps(records, indent=2, ensure_ascii=False)
    if fmt == "geojson":
        return json.dumps(frame_feature_collection(frame), indent=2, ensure_ascii=False)
    if fmt == "csv":
        out = pd.DataFrame(frame).copy()
        for col in out.columns:
            if col == "geometry":
                out[col] = [None if g is None else g.wkt for g in frame["geometry"]]
            elif out[col].dtype == object:
                out[col] = [_cell_text(v, ";") for v in out[col]]
        text: str = out.to_csv(index=False)
        return text
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}; use table, csv, geojson or parquet")
    if frame.empty:
        return f"(no {kind})"
    wanted = [c for c in _TABLE_COLUMNS.get(kind, list(frame.columns)) if c in frame.columns]
    if kind == "items":
        wanted += [c for c in ("platform", "gsd") if c in frame.columns]
    view = pd.DataFrame(frame[wanted]).copy()
    for col in view.columns:
        if col == "assets":  # the asset keys
            view[col] = [", ".join(v) if isinstance(v, Mapping) else "-" for v in view[col]]
        elif view[col].dtype == object:
            view[col] = [", ".join(map(str, v)) if isinstance(v, list) else v for v in view[col]]
        elif str(view[col].dtype).startswith("datetime64"):
            view[col] = ["-" if pd.isna(v) else v.strftime("%Y-%m-%d") for v in view[col]]
    table: str = view.to_string(index=False, max_colwidth=48, na_rep="-")
    return table + f"\n({len(frame)} {kind})"


def _emit(args: Any, text: str) -> None:
    """Print ``text``, or write it to ``--output``."""
    output = getattr(args, "output", None)
    if output:
        Path(output).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    else:
        print(text)


def _emit_parquet(args: Any, write: Callable[[Path], Any]) -> None:
    """``write(path)`` to ``--output``, or through a temporary file to a redirected stdout."""
    output = getattr(args, "output", None)
    if output:
        write(Path(output))
        return
    if sys.stdout.isatty():
        raise UsageError("--format parquet is binary: give --output FILE or redirect stdout")
    with tempfile.TemporaryDirectory(prefix="mlhub-") as tmp:
        path = Path(tmp) / "out.parquet"
        write(path)
        sys.stdout.flush()
        with open(path, "rb") as fh:
            shutil.copyfileobj(fh, sys.stdout.buffer)
        sys.stdout.buffer.flush()


def _emit_frame(args: Any, frame: pd.DataFrame, kind: str) -> None:
    if args.format == "parquet":
        _emit_parquet(args, lambda path: write_frame_parquet(frame, path))
    else:
        _emit(args, render(frame, kind, args.format))


def _cli_session(args: Any) -> Session:
    return client.resolve_session(
        None,
        api_key=getattr(args, "api_key", None),
        profile=getattr(args, "profile", None),
        root_url=getattr(args, "root_url", None),
    )


def _cli_where(args: Any) -> dict[str, Any]:
    """``{"source": …}`` for ``--source``, else ``{"session": …}``."""
    return source_kwargs(args) or {"session": _cli_session(args)}


def cli_datasets(args: Any) -> int:
    """``mlhub datasets``: list datasets (filtered by ``--tags``/``--text``)."""
    frame = datasets(args.tags, args.text, **_cli_where(args))
    _emit_frame(args, frame, "datasets")
    return 0


def cli_collections(args: Any) -> int:
    """``mlhub collections``: list collections (of ``--dataset``)."""
    frame = collections(args.dataset, **_cli_where(args))
    _emit_frame(args, frame, "collections")
    return 0


def cli_items(args: Any) -> int:
    """``mlhub items COLLECTION``: list a collection's items."""
    bbox = parse_bbox_arg(args.bbox) if args.bbox else None
    limit = None if args.all else args.limit
    found = item_collection(
        args.collection,
        bbox=bbox,
        datetime=args.datetime,
        limit=limit,
        progress=sys.stderr.isatty(),
        **_cli_where(args),
    )
    if args.format == "parquet":
        _emit_parquet(args, lambda path: to_geoparquet(found, path))
    elif args.format == "geojson":
        feature_collection = found.to_dict(transform_hrefs=False)
        _emit(args, json.dumps(feature_collection, indent=2, ensure_ascii=False))
    else:
        frame = items_frame([item.to_dict(transform_hrefs=False) for item in found])
        _emit(args, render(frame, "items", args.format))
    return 0


def cli_models(args: Any) -> int:
    """``mlhub models``: list ML models."""
    frame = models(session=_cli_session(args))
    _emit(args, render(frame, "models", args.format))
    return 0


def _archive_note(session: Session, collection_id: str, size: int | None) -> tuple[str, int]:
    """What ``mlhub archive`` would get for a collection, and the bytes it would download.

    ``archive/{id}/info`` lists the archive; ``archive/{id}`` (answered with a redirect, not
    followed) says whether its file is there: both must agree before a size is shown.
    """
    if size is None:
        return "no archive", 0
    try:
        session.get(f"archive/{collection_id}", allow_redirects=False)
    except EntityDoesNotExist:
        return f"listed as {human_bytes(size)}, but the server has no file for it", 0
    return human_bytes(size), size


def cli_info(args: Any) -> int:
    """``mlhub info DATASET``: a dataset's summary, collections by type and sizes."""
    session = _cli_session(args)
    ds = Dataset.fetch(args.dataset, session=session)
    colls = list(ds.collections)
    with ThreadPoolExecutor(max_workers=4) as pool:
        notes = pool.map(lambda c: _archive_note(session, c.id, c.archive_size), colls)
        try:
            catalog, estimate = ds.stac_catalog_size, ds.estimated_dataset_size
        except EntityDoesNotExist:
            catalog = estimate = None
        archive = dict(zip((c.id for c in colls), notes, strict=True))
    archives = sum(size for _, size in archive.values())
    frame = ds.to_frame()
    lines = [
        f"{ds.id}: {ds.title}",
        f"  DOI:        {ds.doi or '-'}",
        f"  Licence:    {frame['license'].iloc[0] if pd.notna(frame['license'].iloc[0]) else '-'}",
        f"  Registry:   {ds.registry_url or '-'}",
        f"  Tags:       {', '.join(ds.tags) or '-'}",
        f"  Status:     {ds.status or '-'}",
        f"  Added:      {ds.date_added.date() if ds.date_added else '-'}"
        f"   modified: {ds.date_modified.date() if ds.date_modified else '-'}",
        f"  Citation:   {ds.citation or '-'}",
        "  Sizes:",
        f"    STAC catalogue:      {human_bytes(catalog)}",
        f"    estimated assets:    {human_bytes(estimate)}",
        f"    collection archives: {human_bytes(archives) if archives else 'none'}",
    ]
    by_type = ds.collections
    for title, group in (("Source imagery", by_type.source_imagery), ("Labels", by_type.labels)):
        lines.append(f"  {title} collections ({len(group)}):")
        lines += [f"    {c.id}  ({archive[c.id][0]})" for c in group]
    untyped = [c for c in colls if not c.types]
    if untyped:
        lines.append(f"  Other collections ({len(untyped)}):")
        lines += [f"    {c.id}  ({archive[c.id][0]})" for c in untyped]
    print("\n".join(lines))
    return 0
