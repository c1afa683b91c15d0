"""Discovery results in the formats other tools read: GeoJSON and (stac-)GeoParquet.

* :func:`to_geoparquet` writes STAC Items as stac-geoparquet (through the ``stac-geoparquet``
  package, so stac-geoparquet, DuckDB, GDAL and geopandas read the file back);
* :func:`write_frame_parquet` writes any discovery frame as GeoParquet (geopandas);
* :func:`frame_feature_collection` turns any discovery frame into a GeoJSON FeatureCollection.

GeoParquet needs the optional packages ``pyarrow`` and ``stac-geoparquet``
(``pip install 'mlhub_widgets[geoparquet]'``).
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pystac
import shapely

from ..exceptions import MissingDependencyError

__all__ = [
    "frame_feature_collection",
    "plain_value",
    "require",
    "to_geoparquet",
    "write_frame_parquet",
]

JSON = dict[str, Any]


def require(module: str, extra: str) -> Any:
    """Import an optional dependency, or raise :class:`MissingDependencyError` naming the
    extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"this needs the optional package {module.split('.')[0]!r}: "
            f"pip install 'mlhub_widgets[{extra}]' ({exc})"
        ) from None


def _item_dict(item: pystac.Item | Mapping[str, Any]) -> JSON:
    if isinstance(item, pystac.Item):
        return item.to_dict(transform_hrefs=False)
    return dict(item)


def to_geoparquet(
    items: pystac.ItemCollection | pd.DataFrame | Iterable[pystac.Item | Mapping[str, Any]],
    path: str | os.PathLike[str],
    *,
    collections: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Write STAC Items as a stac-geoparquet file (created or replaced); returns its path.

    Args:
        items: a :class:`pystac.ItemCollection` (e.g. from
            :func:`~mlhub_widgets.item_collection`), pystac Items, Item JSON objects, or a
            frame of :func:`~mlhub_widgets.items` (turned back into items by stac-geoparquet's
            ``to_item_collection``).
        path: the ``.parquet`` file to write.
        collections: collection id → Collection JSON, stored in the file's metadata as
            stac-geoparquet specifies.

    Raises:
        MissingDependencyError: ``pyarrow`` or ``stac-geoparquet`` is not installed.
        ValueError: there are no items (a Parquet file needs a schema).
    """
    arrow = require("stac_geoparquet.arrow", "geoparquet")
    if isinstance(items, pd.DataFrame):
        if "assets" not in items.columns or "id" not in items.columns:
            raise ValueError(
                "to_geoparquet takes STAC items: a frame of mw.items() (with its 'id' and "
                "'assets' columns), an ItemCollection, pystac Items or Item JSON objects"
            )
        found: Iterable[pystac.Item | Mapping[str, Any]]
        found = require("stac_geoparquet", "geoparquet").to_item_collection(items)
    else:
        found = items
    dicts = [_item_dict(i) for i in found]
    if not dicts:
        raise ValueError("no items to write: a stac-geoparquet file needs at least one item")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {}
    if collections:
        kwargs["collections"] = {k: dict(v) for k, v in collections.items()}
    arrow.parse_stac_items_to_parquet(dicts, output_path=out, schema="FullFile", **kwargs)
    return out


def write_frame_parquet(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a discovery frame as GeoParquet (plain Parquet without a geometry column).

    Raises:
        MissingDependencyError: ``pyarrow`` is not installed.
    """
    require("pyarrow", "geoparquet")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out, index=False)
    return out


def plain_value(value: Any) -> Any:
    """One cell as JSON: timestamps as ISO 8601 (``Z``), geometries as GeoJSON, NaN/NaT as
    ``None``, numpy scalars as Python numbers, containers recursively."""
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.isoformat().replace("+00:00", "Z")
    if isinstance(value, shapely.Geometry):
        return shapely.geometry.mapping(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [plain_value(v) for v in value]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def frame_feature_collection(frame: pd.DataFrame) -> JSON:
    """A discovery frame as a GeoJSON FeatureCollection: one Feature per row, its ``geometry``
    (``null`` without one) and every other column as a property."""
    columns = [c for c in frame.columns if c != "geometry"]
    has_geometry = "geometry" in frame.columns
    features = []
    for i in range(len(frame)):
        row = frame.iloc[i]
        geom = row["geometry"] if has_geometry else None
        features.append(
            {
                "type": "Feature",
                "geometry": None if geom is None or geom.is_empty else plain_value(geom),
                "properties": {c: plain_value(row[c]) for c in columns},
            }
        )
    return {"type": "FeatureCollection", "features": features}
