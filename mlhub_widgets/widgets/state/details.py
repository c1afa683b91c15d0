"""What the dataset view shows: plain values from a dataset record and its collections."""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Iterator
from typing import Any

from ...exceptions import MLHubException
from .filters import _plain

log = logging.getLogger(__name__)


def dataset_detail(dataset: Any, collections: Any) -> dict[str, Any]:
    """Plain values for the detail view (fetched in the worker: rendering does no I/O)."""
    catalog_size = estimated_size = None
    try:
        catalog_size = dataset.stac_catalog_size
        estimated_size = dataset.estimated_dataset_size
    except MLHubException as exc:  # a dataset without catalogue info still shows its record
        log.info("no catalogue info for %s: %s", dataset.id, exc)
    colls = []
    for row in _iter_rows(collections):
        colls.append(
            {
                "id": str(row.id),
                "title": _text(row.title),
                "types": list(row.types) if isinstance(row.types, list) else [],
                "license": _text(row.license),
                "start": _to_date(row.start_datetime),
                "end": _to_date(row.end_datetime),
            }
        )
    return {
        "id": dataset.id,
        "title": dataset.title or dataset.id,
        "description": dataset.description or "",
        "citation": dataset.citation or "",
        "doi": dataset.doi or "",
        "registry_url": dataset.registry_url or "",
        "tags": list(dataset.tags),
        "collections": colls,
        "stac_catalog_size": catalog_size,
        "estimated_dataset_size": estimated_size,
    }


def _text(value: Any) -> str:
    """A cell as text: missing values (None, NaN) become ``""``."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def _iter_rows(frame: Any) -> Iterator[Any]:
    if frame is None:
        return iter(())
    return frame.itertuples(index=False)  # type: ignore[no-any-return]


def dataset_footprint(results: Any, dataset_id: str, collections: Any) -> dict[str, Any] | None:
    from shapely.geometry import mapping
    from shapely.ops import unary_union

    for row in _iter_rows(results):
        if getattr(row, "id", None) == dataset_id and getattr(row, "geometry", None) is not None:
            geom = row.geometry
            if not geom.is_empty:
                return _plain(mapping(geom))  # type: ignore[no-any-return]
    geoms = [
        row.geometry
        for row in _iter_rows(collections)
        if getattr(row, "geometry", None) is not None and not row.geometry.is_empty
    ]
    if not geoms:
        return None
    return _plain(mapping(unary_union(geoms)))  # type: ignore[no-any-return]


def _to_date(value: Any) -> _dt.date | None:
    if value is None:
        return None
    try:
        import pandas as pd

        if pd.isna(value):
            return None
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    return ts.date()


def temporal_extent(collections: Any) -> tuple[_dt.date | None, _dt.date | None]:
    starts: list[_dt.date] = []
    ends: list[_dt.date] = []
    for row in _iter_rows(collections):
        s = _to_date(getattr(row, "start_datetime", None))
        e = _to_date(getattr(row, "end_datetime", None))
        if s is not None:
            starts.append(s)
        if e is not None:
            ends.append(e)
    return (min(starts) if starts else None, max(ends) if ends else None)
