"""The discovery frames: API JSON in, DataFrames with stable columns and dtypes out.

Every builder takes the JSON objects as the API (or a STAC source) serves them and returns a
:class:`pandas.DataFrame` (a :class:`geopandas.GeoDataFrame` in EPSG:4326 when rows have a
footprint); an empty input gives an empty frame with the same columns, never ``None``.

:func:`items_frame` follows stac-geoparquet's layout (``stac_geoparquet.to_geodataframe``): one
row per item with its ``assets``, ``links`` and ``bbox`` as they are, and every property as a
column of its own, so ``stac_geoparquet.to_item_collection(frame)`` gives the items back.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = [
    "COLLECTION_COLUMNS",
    "DATASET_COLUMNS",
    "ITEM_COLUMNS",
    "MODEL_COLUMNS",
    "TAG_COLUMNS",
    "collections_frame",
    "datasets_frame",
    "geometries",
    "items_frame",
    "models_frame",
    "timestamps",
]

log = logging.getLogger(__name__)

JSON = dict[str, Any]
CRS = "EPSG:4326"

#: Columns of :func:`datasets` (``geometry`` last), and their kinds.
DATASET_COLUMNS: dict[str, str] = {
    "id": "str",
    "title": "str",
    "tags": "list",
    "doi": "str",
    "citation": "str",
    "registry_url": "str",
    "license": "str",
    "source_collections": "list",
    "label_collections": "list",
    "date_added": "datetime",
    "date_modified": "datetime",
    "metadata_only_reason": "str",
}
#: Columns of :func:`tags`.
TAG_COLUMNS: dict[str, str] = {"tag": "str", "datasets": "int"}
#: Columns of :func:`collections` (``geometry`` last).
COLLECTION_COLUMNS: dict[str, str] = {
    "id": "str",
    "title": "str",
    "description": "str",
    "license": "str",
    "keywords": "list",
    "types": "list",
    "doi": "str",
    "start_datetime": "datetime",
    "end_datetime": "datetime",
    "dataset": "str",
}
#: Fixed columns of :func:`items`, in stac-geoparquet's order; the other item properties follow.
ITEM_COLUMNS: dict[str, str] = {
    "type": "string",
    "stac_version": "string",
    "stac_extensions": "list",
    "id": "string",
    "geometry": "geometry",
    "bbox": "list",
    "links": "list",
    "assets": "dict",
    "collection": "string",
    "datetime": "timestamp",
    "start_datetime": "timestamp",
    "end_datetime": "timestamp",
}
#: Item properties read as timestamps (UTC, nanoseconds), as stac-geoparquet reads them.
TIMESTAMP_PROPERTIES = frozenset(
    {"datetime", "start_datetime", "end_datetime", "created", "updated", "expires"}
    | {"published", "unpublished"}
)
#: Columns of :func:`models`.
MODEL_COLUMNS: dict[str, str] = {
    "id": "str",
    "title": "str",
    "description": "str",
    "license": "str",
    "doi": "str",
    "citation": "str",
    "architecture": "str",
    "prediction_type": "str",
    "learning_approach": "str",
    "training_processor_type": "str",
    "training_os": "str",
    "training_data": "list",
    "training_dataset": "str",
    "inferencing_image": "str",
    "start_datetime": "datetime",
    "end_datetime": "datetime",
}

_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


# --------------------------------------------------------------------------------------------
# column builders


def _series(values: Sequence[Any], kind: str) -> pd.Series:
    """One column of ``kind`` (str, list, datetime, int, float) with a stable dtype."""
    if kind == "str":
        return pd.Series(values, dtype="str")
    if kind == "datetime":
        return _datetimes(values)
    if kind == "int":
        return pd.Series(values, dtype="int64")
    if kind == "float":
        return pd.Series(values, dtype="float64")
    return pd.Series(list(values), dtype=object)


def _datetimes(values: Sequence[Any]) -> pd.Series:
    """ISO 8601 strings (``Z``, ``+00:00``, ``+0200``...) → tz-aware UTC; bad/missing → NaT."""
    raw = pd.Series(values, dtype=object)
    parsed = pd.to_datetime(raw, utc=True, format="ISO8601", errors="coerce")
    return parsed.astype("datetime64[us, UTC]")


def make_frame(
    columns: Mapping[str, str],
    data: Mapping[str, Sequence[Any]],
    geometry: np.ndarray[Any, Any] | None = None,
) -> pd.DataFrame:
    """A frame of ``columns`` (name → kind) from ``data``, with ``geometry`` last if given."""
    cols: dict[str, Any] = {name: _series(data[name], kind) for name, kind in columns.items()}
    if geometry is None:
        return pd.DataFrame(cols)
    cols["geometry"] = gpd.GeoSeries(geometry, crs=CRS)
    frame: pd.DataFrame = gpd.GeoDataFrame(cols, geometry="geometry", crs=CRS)
    return frame


def geometries(geoms: Sequence[Any]) -> np.ndarray[Any, Any]:
    """GeoJSON geometry dicts (or ``None``) → array of shapely geometries, vectorised.

    Single-ring-or-more ``Polygon`` geometries (the usual STAC item footprint) are built with
    :func:`shapely.linearrings`/:func:`shapely.polygons` from one coordinate array; anything else
    goes through :func:`shapely.from_geojson`. Invalid geometries become ``None``.
    """
    n = len(geoms)
    out = np.full(n, None, dtype=object)
    poly_rows: list[int] = []
    other_rows: list[int] = []
    for i, g in enumerate(geoms):
        if isinstance(g, Mapping):
            if g.get("type") == "Polygon" and g.get("coordinates"):
                poly_rows.append(i)
            else:
                other_rows.append(i)
    if poly_rows:
        built = _polygons([geoms[i]["coordinates"] for i in poly_rows])
        if built is None:
            other_rows.extend(poly_rows)
        else:
            out[poly_rows] = built
    if other_rows:
        import json

        texts = [json.dumps(geoms[i]) for i in other_rows]
        out[other_rows] = shapely.from_geojson(texts, on_invalid="ignore")
    return out


def _polygons(all_coords: Sequence[Any]) -> np.ndarray[Any, Any] | None:
    """Polygon coordinate lists → polygons, or ``None`` when the fast path cannot be used."""
    points: list[Any] = []
    ring_len: list[int] = []
    ring_count: list[int] = []
    extend, add_ring, add_poly = points.extend, ring_len.append, ring_count.append
    try:
        for rings in all_coords:
            for ring in rings:
                extend(ring)
                add_ring(len(ring))
            add_poly(len(rings))
        flat = np.fromiter(itertools.chain.from_iterable(points), dtype=float)
    except (TypeError, ValueError):
        return None
    if flat.size != 2 * len(points) or min(ring_len, default=0) < 4:
        return None  # 3-D or malformed coordinates: let GEOS judge them one by one
    try:
        rings_arr = shapely.linearrings(
            flat.reshape(-1, 2), indices=np.repeat(np.arange(len(ring_len)), ring_len)
        )
        result: np.ndarray[Any, Any] = shapely.polygons(
            rings_arr, indices=np.repeat(np.arange(len(ring_count)), ring_count)
        )
    except (ValueError, shapely.errors.GEOSException):
        return None
    return result


def _bbox_geometry(bbox: Any) -> Any:
    """A STAC bbox (4 or 6 numbers, ``west > east`` across the antimeridian) → a box or None."""
    if not isinstance(bbox, Sequence) or len(bbox) not in (4, 6):
        return None
    try:
        vals = [float(v) for v in bbox]
    except (TypeError, ValueError):
        return None
    if len(vals) == 6:
        vals = [vals[0], vals[1], vals[3], vals[4]]
    if not all(math.isfinite(v) for v in vals):
        return None
    west, south, east, north = vals
    if west > east:
        return shapely.multipolygons(
            [shapely.box(west, south, 180.0, north), shapely.box(-180.0, south, east, north)]
        )
    return shapely.box(west, south, east, north)


def _strip_markdown(text: Any) -> str | None:
    """``"[CC-BY-4.0](https://...)"`` → ``"CC-BY-4.0"``."""
    if not isinstance(text, str):
        return None
    return _MD_LINK.sub(r"\1", text).strip() or None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# --------------------------------------------------------------------------------------------
# datasets and tags


def _dataset_licence(record: Mapping[str, Any]) -> str | None:
    licences: list[str] = []
    for c in record.get("collections") or ():
        lic = _strip_markdown(c.get("license")) if isinstance(c, Mapping) else None
        if lic and lic not in licences:
            licences.append(lic)
    return ", ".join(licences) if licences else None


def _collections_of_type(record: Mapping[str, Any], kind: str) -> list[str]:
    return [
        str(c["id"])
        for c in record.get("collections") or ()
        if isinstance(c, Mapping) and "id" in c and kind in (c.get("types") or ())
    ]


def datasets_frame(records: Sequence[Mapping[str, Any]]) -> gpd.GeoDataFrame:
    """Build the :func:`datasets` frame from dataset records (JSON objects of ``/datasets``)."""
    data: dict[str, list[Any]] = {name: [] for name in DATASET_COLUMNS}
    for r in records:
        data["id"].append(r.get("id"))
        data["title"].append(_str_or_none(r.get("title")))
        data["tags"].append([t for t in r.get("tags") or () if isinstance(t, str)])
        data["doi"].append(_str_or_none(r.get("doi")))
        data["citation"].append(_str_or_none(r.get("citation")))
        data["registry_url"].append(_str_or_none(r.get("registry")))
        data["license"].append(_dataset_licence(r))
        data["source_collections"].append(_collections_of_type(r, "source_imagery"))
        data["label_collections"].append(_collections_of_type(r, "labels"))
        data["date_added"].append(r.get("date_added"))
        data["date_modified"].append(r.get("date_modified"))
        data["metadata_only_reason"].append(_str_or_none(r.get("metadata_only_reason")) or None)
    geometry = geometries([r.get("bbox") for r in records])
    frame = make_frame(DATASET_COLUMNS, data, geometry)
    assert isinstance(frame, gpd.GeoDataFrame)
    return frame


# --------------------------------------------------------------------------------------------
# collections


def _interval(record: Mapping[str, Any]) -> tuple[Any, Any]:
    try:
        first = record["extent"]["temporal"]["interval"][0]
        return first[0], first[1]
    except (KeyError, IndexError, TypeError):
        return None, None


def _spatial_bbox(record: Mapping[str, Any]) -> Any:
    try:
        boxes = record["extent"]["spatial"]["bbox"]
    except (KeyError, TypeError):
        return None
    if isinstance(boxes, Sequence) and boxes and isinstance(boxes[0], Sequence):
        return boxes[0]
    return boxes  # a flat [w, s, e, n] from a non-conforming server


def collections_frame(
    records: Sequence[Mapping[str, Any]],
    types: Mapping[str, Sequence[str]] | None = None,
    owners: Mapping[str, str] | None = None,
) -> gpd.GeoDataFrame:
    """Build the :func:`collections` frame from STAC Collection JSON objects.

    ``types``/``owners`` map collection ids to their types and dataset (from dataset records).
    """
    types = types or {}
    owners = owners or {}
    data: dict[str, list[Any]] = {name: [] for name in COLLECTION_COLUMNS}
    boxes = []
    for r in records:
        cid = r.get("id")
        data["id"].append(cid)
        data["title"].append(_str_or_none(r.get("title")))
        data["description"].append(_str_or_none(r.get("description")))
        data["license"].append(_strip_markdown(r.get("license")))
        data["keywords"].append([k for k in r.get("keywords") or () if isinstance(k, str)])
        data["types"].append(list(types.get(str(cid), ())))
        data["doi"].append(_str_or_none(r.get("sci:doi")))
        start, end = _interval(r)
        data["start_datetime"].append(start)
        data["end_datetime"].append(end)
        data["dataset"].append(owners.get(str(cid)))
        boxes.append(_bbox_geometry(_spatial_bbox(r)))
    geometry = np.empty(len(boxes), dtype=object)
    geometry[:] = boxes
    frame = make_frame(COLLECTION_COLUMNS, data, geometry)
    assert isinstance(frame, gpd.GeoDataFrame)
    return frame


def types_and_owners(
    records: Iterable[Mapping[str, Any]],
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """From dataset records: collection id → its types, and collection id → its dataset."""
    types: dict[str, list[str]] = {}
    owners: dict[str, str] = {}
    for r in records:
        for c in r.get("collections") or ():
            if not isinstance(c, Mapping) or not isinstance(c.get("id"), str):
                continue
            known = types.setdefault(c["id"], [])
            known.extend(t for t in c.get("types") or () if t not in known)
            owners.setdefault(c["id"], str(r.get("id")))
    return types, owners


# --------------------------------------------------------------------------------------------
# items


def items_frame(features: Sequence[Mapping[str, Any]]) -> gpd.GeoDataFrame:
    """Build the :func:`items` frame from STAC Item JSON objects, in stac-geoparquet's layout.

    One row per item: the top-level fields as columns (``assets``, ``links``, ``bbox`` and
    ``stac_extensions`` as they are, ``geometry`` as shapely geometries in EPSG:4326), then
    every property as a column of its own (timestamps as ``datetime64[ns, UTC]``). A property
    named like a top-level field cannot be a column: it is left out with a logged warning.
    """
    n = len(features)
    top: dict[str, list[Any]] = {
        k: [None] * n for k in ITEM_COLUMNS if k != "geometry" and k not in TIMESTAMP_PROPERTIES
    }
    props: dict[str, list[Any]] = {k: [None] * n for k in ITEM_COLUMNS if k in TIMESTAMP_PROPERTIES}
    geoms: list[Any] = [None] * n
    for i, f in enumerate(features):
        for k, v in f.items():
            if k == "geometry":
                geoms[i] = v
            elif k != "properties":
                column = top.get(k)
                if column is None:
                    column = top[k] = [None] * n
                column[i] = v
        p = f.get("properties")
        if isinstance(p, Mapping):
            for k, v in p.items():
                column = props.get(k)
                if column is None:
                    column = props[k] = [None] * n
                column[i] = v
    clashes = [k for k in props if k in top or k in ("geometry", "properties")]
    for k in clashes:
        log.warning("item property %r has the name of a top-level field; left out", k)
        del props[k]
    cols: dict[str, Any] = {}
    for k, values in top.items():
        kind = ITEM_COLUMNS.get(k)
        cols[k] = pd.array(values, dtype="string") if kind == "string" else _objects(values)
    for k, values in props.items():
        cols[k] = timestamps(values) if k in TIMESTAMP_PROPERTIES else pd.Series(values)
    cols["geometry"] = gpd.GeoSeries(geometries(geoms), crs=CRS)
    order = [*ITEM_COLUMNS, *(k for k in cols if k not in ITEM_COLUMNS)]
    frame = gpd.GeoDataFrame({k: cols[k] for k in order}, geometry="geometry", crs=CRS)
    return frame


def _objects(values: Sequence[Any]) -> pd.Series:
    """A column of Python objects (lists, dicts) kept as they are."""
    cells = np.empty(len(values), dtype=object)
    cells[:] = list(values)
    return pd.Series(cells, dtype=object)


def timestamps(values: Sequence[Any]) -> pd.Series:
    """ISO 8601 strings → ``datetime64[ns, UTC]`` (stac-geoparquet's unit); bad/missing → NaT."""
    parsed = pd.to_datetime(
        pd.Series(values, dtype=object), utc=True, format="ISO8601", errors="coerce"
    )
    return parsed.astype("datetime64[ns, UTC]")


# --------------------------------------------------------------------------------------------
# models


def _link_hrefs(record: Mapping[str, Any], rel: str) -> list[str]:
    return [
        str(link["href"])
        for link in record.get("links") or ()
        if isinstance(link, Mapping) and link.get("rel") == rel and link.get("href")
    ]


_MODEL_PROPERTIES = {
    "architecture": "ml-model:architecture",
    "prediction_type": "ml-model:prediction_type",
    "learning_approach": "ml-model:learning_approach",
    "training_processor_type": "ml-model:training-processor-type",
    "training_os": "ml-model:training-os",
}


def models_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Build the :func:`models` frame from ML-model STAC Items (JSON)."""
    data: dict[str, list[Any]] = {name: [] for name in MODEL_COLUMNS}
    for r in records:
        p = r.get("properties")
        p = p if isinstance(p, Mapping) else {}
        data["id"].append(r.get("id"))
        data["title"].append(_str_or_none(p.get("title")))
        data["description"].append(_str_or_none(p.get("description")))
        data["license"].append(_strip_markdown(p.get("license")))
        data["doi"].append(_str_or_none(p.get("sci:doi")))
        data["citation"].append(_str_or_none(p.get("sci:citation")))
        for column, prop in _MODEL_PROPERTIES.items():
            data[column].append(_str_or_none(p.get(prop)))
        data["training_data"].append(_link_hrefs(r, "ml-model:train-data"))
        ds = _link_hrefs(r, "mlhub:training-dataset")
        data["training_dataset"].append(ds[0] if ds else None)
        image = _link_hrefs(r, "ml-model:inferencing-image")
        data["inferencing_image"].append(image[0] if image else None)
        data["start_datetime"].append(p.get("start_datetime") or p.get("datetime"))
        data["end_datetime"].append(p.get("end_datetime") or p.get("datetime"))
    return make_frame(MODEL_COLUMNS, data)
