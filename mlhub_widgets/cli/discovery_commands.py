"""The discovery commands: a discovery frame printed as a table, CSV or JSON.

Registered by :mod:`.discovery`; argparse namespaces in, exit status out.
"""

from __future__ import annotations

import json
import math
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import shapely

from ..config.session import Session
from ..discovery import collections, datasets, items, models
from ..exceptions import EntityDoesNotExist
from ..mlhub import client
from ..mlhub.dataset import Dataset
from .options import source_kwargs

_TABLE_COLUMNS = {
    "datasets": ["id", "title", "tags", "doi", "license"],
    "collections": ["id", "dataset", "types", "license", "start_datetime", "end_datetime"],
    "items": ["id", "datetime", "start_datetime", "end_datetime", "asset_keys"],
    "models": ["id", "title", "architecture", "prediction_type", "license"],
}


def human_size(n: float | None) -> str:
    """``263582`` → ``"263.6 kB"`` (decimal units); ``None`` → ``"unknown"``."""
    if n is None:
        return "unknown"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover - loop always returns


def _plain(value: Any) -> Any:
    """A JSON-friendly version of one cell."""
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.isoformat().replace("+00:00", "Z")
    if isinstance(value, shapely.Geometry):
        return shapely.geometry.mapping(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def render(frame: pd.DataFrame, kind: str, fmt: str) -> str:
    """Render a discovery frame as ``table`` (a readable subset), ``csv`` or ``json`` text."""
    if fmt == "json":
        records = [
            {col: _plain(val) for col, val in zip(frame.columns, row, strict=True)}
            for row in frame.itertuples(index=False, name=None)
        ]
        return json.dumps(records, indent=2, ensure_ascii=False)
    if fmt == "csv":
        out = pd.DataFrame(frame).copy()
        for col in out.columns:
            if col == "geometry":
                out[col] = [None if g is None else g.wkt for g in frame["geometry"]]
            elif out[col].dtype == object:
                out[col] = [";".join(map(str, v)) if isinstance(v, list) else v for v in out[col]]
        text: str = out.to_csv(index=False)
        return text
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}; use table, csv or json")
    if frame.empty:
        return f"(no {kind})"
    wanted = [c for c in _TABLE_COLUMNS.get(kind, list(frame.columns)) if c in frame.columns]
    if kind == "items":
        wanted += [c for c in ("platform", "gsd") if c in frame.columns]
    view = pd.DataFrame(frame[wanted]).copy()
    for col in view.columns:
        if view[col].dtype == object:
            view[col] = [", ".join(map(str, v)) if isinstance(v, list) else v for v in view[col]]
        elif str(view[col].dtype).startswith("datetime64"):
            view[col] = ["-" if pd.isna(v) else v.strftime("%Y-%m-%d") for v in view[col]]
    table: str = view.to_string(index=False, max_colwidth=48, na_rep="-")
    return table + f"\n({len(frame)} {kind})"


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
    print(render(frame, "datasets", args.format))
    return 0


def cli_collections(args: Any) -> int:
    """``mlhub collections``: list collections (of ``--dataset``)."""
    frame = collections(args.dataset, **_cli_where(args))
    print(render(frame, "collections", args.format))
    return 0


def _parse_bbox_arg(text: str) -> list[float]:
    parts = [p for p in text.replace(" ", "").split(",") if p]
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"--bbox must be W,S,E,N numbers, got {text!r}") from None


def cli_items(args: Any) -> int:
    """``mlhub items COLLECTION``: list a collection's items."""
    bbox = _parse_bbox_arg(args.bbox) if args.bbox else None
    limit = None if args.all else args.limit
    frame = items(
        args.collection,
        bbox=bbox,
        datetime=args.datetime,
        limit=limit,
        progress=sys.stderr.isatty(),
        **_cli_where(args),
    )
    print(render(frame, "items", args.format))
    return 0


def cli_models(args: Any) -> int:
    """``mlhub models``: list ML models."""
    frame = models(session=_cli_session(args))
    print(render(frame, "models", args.format))
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
        return f"listed as {human_size(size)}, but the server has no file for it", 0
    return human_size(size), size


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
        f"    STAC catalogue:      {human_size(catalog)}",
        f"    estimated assets:    {human_size(estimate)}",
        f"    collection archives: {human_size(archives) if archives else 'none'}",
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
