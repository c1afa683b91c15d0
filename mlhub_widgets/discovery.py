"""Discovery as DataFrames: datasets, tags, collections, items and models in one call each.

Every function returns a :class:`pandas.DataFrame` (a :class:`geopandas.GeoDataFrame` in
EPSG:4326 when rows have a footprint) built straight from the API's JSON, with stable columns
and dtypes: an empty result is an empty frame with the same columns, never ``None``.

>>> import mlhub_widgets as mw
>>> mw.datasets(tags="crop type")[["id", "title"]]          # doctest: +SKIP
>>> mw.items("ref_african_crops_kenya_02_source", limit=None)  # doctest: +SKIP

Each function takes ``session=`` or ``api_key=``/``profile=``/``root_url=`` like
:func:`~mlhub_widgets.get_session`.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .config.session import Session
from .exceptions import EntityDoesNotExist
from .mlhub import client
from .types import BBoxLike, DatasetLike, DatetimeLike, IntersectsLike

if TYPE_CHECKING:
    from .sources import Source, SourceLike

__all__ = [
    "COLLECTION_COLUMNS",
    "DATASET_COLUMNS",
    "ITEM_COLUMNS",
    "MODEL_COLUMNS",
    "TAG_COLUMNS",
    "collections",
    "datasets",
    "items",
    "models",
    "tags",
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
#: Fixed columns of :func:`items`; scalar item properties follow, then ``geometry``.
ITEM_COLUMNS: dict[str, str] = {
    "id": "str",
    "collection": "str",
    "datetime": "datetime",
    "start_datetime": "datetime",
    "end_datetime": "datetime",
    "asset_keys": "list",
}
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
_SCALARS = (str, int, float, bool)


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


def _frame(
    columns: Mapping[str, str],
    data: Mapping[str, Sequence[Any]],
    geometry: np.ndarray[Any, Any] | None = None,
    extra: Mapping[str, Sequence[Any]] | None = None,
) -> pd.DataFrame:
    cols: dict[str, Any] = {name: _series(data[name], kind) for name, kind in columns.items()}
    for name, values in (extra or {}).items():
        cols[name] = pd.Series(values)
    if geometry is None:
        return pd.DataFrame(cols)
    cols["geometry"] = gpd.GeoSeries(geometry, crs=CRS)
    frame: pd.DataFrame = gpd.GeoDataFrame(cols, geometry="geometry", crs=CRS)
    return frame


def _geometries(geoms: Sequence[Any]) -> np.ndarray[Any, Any]:
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
    geometry = _geometries([r.get("bbox") for r in records])
    frame = _frame(DATASET_COLUMNS, data, geometry)
    assert isinstance(frame, gpd.GeoDataFrame)
    return frame


def _source(source: SourceLike) -> Source:
    """A :class:`~mlhub_widgets.sources.Source` from a source, URL or path."""
    from .sources import open_source

    return open_source(source)


def datasets(
    tags: str | Iterable[str] | None = None,
    text: str | Iterable[str] | None = None,
    *,
    source: SourceLike | None = None,
    session: Session | None = None,
    api_key: str | None = None,
    profile: str | None = None,
    root_url: str | None = None,
) -> gpd.GeoDataFrame:
    """All datasets (or those matching ``tags``/``text``) as a GeoDataFrame, one row each.

    Args:
        tags: a tag or list of tags; a dataset must have **all** of them (ignoring case:
            ``"Crop Type"`` finds the datasets tagged ``crop type``).
        text: a phrase or list of phrases; a dataset must contain **any** of them (in its
            title or description). Both filters are applied by the server.
        source: a :class:`~mlhub_widgets.sources.Source` (or a URL/path for
            :func:`~mlhub_widgets.open_source`) instead of the MLHub API session. For a STAC
            catalogue or API, ``tags`` also match collection/catalogue keywords and both filters
            are applied locally.

    Returns:
        Columns ``id, title, tags (list), doi, citation, registry_url, license,
        source_collections (list), label_collections (list), date_added, date_modified
        (UTC), metadata_only_reason, geometry`` (the dataset footprint, EPSG:4326).
        ``metadata_only_reason`` is the server's reason why a dataset cannot be downloaded
        (no STAC catalogue), when its record gives one; None otherwise.

    Raises:
        TypeError: a tag or phrase is not a string.
    """
    if source is not None:
        src = _source(source)
        records = src.search_datasets(client.str_list(tags, "tag"), client.str_list(text, "text"))
        return datasets_frame(records)
    records = client.list_datasets(
        tags=tags, text=text, session=session, api_key=api_key, profile=profile, root_url=root_url
    )
    return datasets_frame(records)


def tags(
    *,
    source: SourceLike | None = None,
    session: Session | None = None,
    api_key: str | None = None,
    profile: str | None = None,
    root_url: str | None = None,
) -> pd.DataFrame:
    """Every dataset tag with the number of datasets carrying it.

    With a ``source`` whose datasets have no tags (STAC catalogues and APIs), their keywords
    are counted instead.

    Returns:
        Columns ``tag``, ``datasets``; sorted by count (descending), then tag.
    """
    if source is not None:
        src = _source(source)
        records = src.list_datasets()
        if not src.has_tags:
            records = [{"tags": r.get("keywords") or ()} for r in records]
    else:
        records = client.list_datasets(
            session=session, api_key=api_key, profile=profile, root_url=root_url
        )
    counts: Counter[str] = Counter()
    for r in records:
        counts.update({t for t in r.get("tags") or () if isinstance(t, str)})
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    frame = _frame(
        TAG_COLUMNS, {"tag": [t for t, _ in ordered], "datasets": [c for _, c in ordered]}
    )
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
    frame = _frame(COLLECTION_COLUMNS, data, geometry)
    assert isinstance(frame, gpd.GeoDataFrame)
    return frame


def _types_and_owners(
    records: Iterable[Mapping[str, Any]],
) -> tuple[dict[str, list[str]], dict[str, str]]:
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


def fetch_collections(
    session: Session, collection_ids: Sequence[str], *, what: str = "dataset"
) -> list[JSON]:
    """Fetch collections concurrently, in order; ones that do not exist are skipped (logged)."""

    def one(cid: str) -> JSON | None:
        try:
            return client.get_collection(cid, session=session)
        except EntityDoesNotExist:
            log.warning("collection %r of the %s does not exist on the server; skipped", cid, what)
            return None

    if len(collection_ids) <= 1:
        found = [one(c) for c in collection_ids]
    else:
        with ThreadPoolExecutor(max_workers=min(8, len(collection_ids))) as pool:
            found = list(pool.map(one, collection_ids))
    return [c for c in found if c is not None]


def resolve_dataset(
    dataset: str | DatasetLike | Mapping[str, Any], session: Session
) -> Mapping[str, Any]:
    """A dataset record from an id, a DOI, a :class:`~mlhub_widgets.Dataset` or a record."""
    raw = getattr(dataset, "raw", None)
    if isinstance(raw, Mapping):
        return raw
    if isinstance(dataset, Mapping):
        return dataset
    if isinstance(dataset, str):
        return client.get_dataset(dataset, session=session)
    raise TypeError(
        f"dataset must be an id, a DOI or a Dataset, got {type(dataset).__name__} {dataset!r}"
    )


def collections(
    dataset: str | DatasetLike | None = None,
    *,
    source: SourceLike | None = None,
    session: Session | None = None,
    api_key: str | None = None,
    profile: str | None = None,
    root_url: str | None = None,
) -> gpd.GeoDataFrame:
    """All collections, or those of one dataset, as a GeoDataFrame.

    Args:
        dataset: a dataset id, DOI or :class:`~mlhub_widgets.Dataset`; restricts the
            rows to that dataset's collections, in the dataset's order (collections the dataset
            lists but the server does not know are skipped with a logged warning).
        source: a :class:`~mlhub_widgets.sources.Source` (or a URL/path) instead of the MLHub
            API session.

    Returns:
        Columns ``id, title, description, license, keywords (list), types (list of
        "source_imagery"/"labels", from the dataset records), doi, start_datetime,
        end_datetime (UTC), dataset, geometry`` (the spatial extent box, EPSG:4326).
    """
    if source is not None:
        src = _source(source)
        if dataset is None:
            src_cols, src_sets = src.list_collections(), src.list_datasets()
        else:
            ds_id = str(getattr(dataset, "id", dataset))
            src_sets = [src.get_dataset(ds_id)]
            src_cols = src.list_collections(ds_id)
        kinds, in_dataset = _types_and_owners(src_sets)
        return collections_frame(src_cols, kinds, in_dataset)
    if dataset is not None and session is None and not (api_key or profile or root_url):
        session = getattr(dataset, "session", None)
    s = client.resolve_session(session, api_key=api_key, profile=profile, root_url=root_url)
    dataset_records: Sequence[Mapping[str, Any]]
    if dataset is None:
        with ThreadPoolExecutor(max_workers=2) as pool:
            colls = pool.submit(client.list_collections, session=s)
            dsets = pool.submit(client.list_datasets, session=s)
            records, dataset_records = colls.result(), dsets.result()
    else:
        record = resolve_dataset(dataset, s)
        dataset_records = [record]
        ids = [
            c["id"]
            for c in record.get("collections") or ()
            if isinstance(c, Mapping) and isinstance(c.get("id"), str)
        ]
        records = fetch_collections(s, ids, what=f"dataset {record.get('id')!r}")
    types, owners = _types_and_owners(dataset_records)
    return collections_frame(records, types, owners)


# --------------------------------------------------------------------------------------------
# items


def items_frame(features: Sequence[Mapping[str, Any]]) -> gpd.GeoDataFrame:
    """Build the :func:`items` frame from STAC Item JSON objects (no pystac objects involved).

    Scalar properties (strings, numbers, booleans) and lists of scalars become columns named as
    the property; properties holding objects (e.g. ``eo:bands``) are left out.
    """
    n = len(features)
    ids: list[Any] = [None] * n
    colls: list[Any] = [None] * n
    dts: list[Any] = [None] * n
    starts: list[Any] = [None] * n
    ends: list[Any] = [None] * n
    keys: list[Any] = [None] * n
    geoms: list[Any] = [None] * n
    props: dict[str, list[Any]] = {}
    complex_keys: set[str] = set()
    reserved = {"datetime", "start_datetime", "end_datetime", "id", "collection", "geometry"}
    for i, f in enumerate(features):
        ids[i] = f.get("id")
        colls[i] = f.get("collection")
        geoms[i] = f.get("geometry")
        assets = f.get("assets")
        keys[i] = list(assets) if isinstance(assets, Mapping) else []
        p = f.get("properties")
        if not isinstance(p, Mapping):
            continue
        dts[i] = p.get("datetime")
        starts[i] = p.get("start_datetime")
        ends[i] = p.get("end_datetime")
        for k, v in p.items():
            if k in reserved:
                continue
            if (
                v is not None
                and not isinstance(v, _SCALARS)
                and not (isinstance(v, list) and all(isinstance(x, _SCALARS) for x in v))
            ):
                complex_keys.add(k)
                continue
            col = props.get(k)
            if col is None:
                col = props[k] = [None] * n
            col[i] = v
    for k in complex_keys:
        props.pop(k, None)
    data = {
        "id": ids,
        "collection": colls,
        "datetime": dts,
        "start_datetime": starts,
        "end_datetime": ends,
        "asset_keys": keys,
    }
    frame = _frame(ITEM_COLUMNS, data, _geometries(geoms), extra=props)
    assert isinstance(frame, gpd.GeoDataFrame)
    return frame


def _bbox_param(*values: float) -> str:
    return ",".join(repr(v) for v in values)


def _more_to_come(page: Mapping[str, Any], limit: int | None, have: int) -> bool:
    return (limit is None or have < limit) and client.next_href(page) is not None


def _progress_bar(page: Mapping[str, Any], limit: int | None, *, filtered: bool) -> Any:
    """A tqdm bar sized by the server's ``context.matched`` (capped by ``limit``) if known."""
    from tqdm.auto import tqdm

    context = page.get("context")
    matched = context.get("matched") if isinstance(context, Mapping) else None
    total = matched if isinstance(matched, int) and not filtered else None
    if limit is not None:
        total = limit if total is None else min(total, limit)
    return tqdm(total=total, unit="item", desc="items", leave=False)


def items(
    collection_id: str | Any,
    *,
    bbox: BBoxLike | None = None,
    intersects: IntersectsLike | None = None,
    datetime: DatetimeLike = None,
    limit: int | None = 100,
    page_size: int | None = None,
    progress: bool = True,
    source: SourceLike | None = None,
    session: Session | None = None,
    api_key: str | None = None,
    profile: str | None = None,
    root_url: str | None = None,
) -> gpd.GeoDataFrame:
    """The STAC Items of a collection as a GeoDataFrame, one row per item.

    Args:
        collection_id: the collection id (or a :class:`~mlhub_widgets.Collection`).
        bbox: ``[west, south, east, north]`` (EPSG:4326; ``west > east`` crosses the
            antimeridian); filtered by the server and checked against each item's geometry.
        intersects: a GeoJSON geometry/Feature/FeatureCollection, shapely geometry or
            GeoDataFrame; its bounding box is sent to the server as a prefilter and each item's
            geometry is then tested locally (the MLHub items endpoint has no ``intersects``).
        datetime: a datetime, date, ``"2019-06"``, ``"A/B"`` interval or ``(start, end)`` pair
            (see :func:`mlhub_widgets.filters.validate_datetime`); filtered by the server.
        limit: the maximum number of items (default 100); ``None`` fetches all of them with a
            progress bar. No request asks the server for more items than are still needed.
        page_size: items per request (default 1000).
        progress: show a progress bar when more than one page is needed.
        source: a :class:`~mlhub_widgets.sources.Source` (or a URL/path) instead of the MLHub
            API session: a STAC API filters on the server (``/search``), a static catalogue is
            walked and filtered locally.

    Returns:
        Columns ``id, collection, datetime, start_datetime, end_datetime`` (UTC),
        ``asset_keys`` (list), one column per scalar item property (e.g. ``gsd``,
        ``platform``) and ``geometry`` (EPSG:4326).

    Raises:
        TypeError, ValueError: invalid ``bbox``/``intersects``/``datetime``/``limit``.
        EntityDoesNotExist: the collection does not exist.
        AuthenticationError: the items endpoint needs an API key.
    """
    from .filters import AssetFilter

    if not isinstance(collection_id, str):
        coll_session = getattr(collection_id, "session", None)
        if session is None and not (api_key or profile or root_url):
            session = coll_session
        collection_id = getattr(collection_id, "id", collection_id)
    lim = client.check_limit(limit, "limit")
    size = client.check_limit(page_size, "page_size") or client.DEFAULT_PAGE_SIZE
    filt = AssetFilter.build(bbox=bbox, intersects=intersects, datetime=datetime)
    params = filt.to_query_params()
    params.pop("intersects", None)  # the MLHub items endpoint has no intersects: prefilter by bbox
    if filt.intersects is not None:
        params["bbox"] = _bbox_param(*(float(v) for v in filt.intersects.bounds))
    elif filt.bbox is not None and filt.bbox[0] > filt.bbox[2]:
        # across the antimeridian: the server gets the latitude band, items are tested here
        params["bbox"] = _bbox_param(-180.0, filt.bbox[1], 180.0, filt.bbox[3])
    accept: Callable[[JSON], bool] | None = None
    if filt.bbox is not None or filt.intersects is not None or filt.datetime is not None:
        accept = filt.item_matches
    if source is not None:
        return _source_items(_source(source), collection_id, filt, lim, progress)
    s = client.resolve_session(session, api_key=api_key, profile=profile, root_url=root_url)

    features: list[Mapping[str, Any]] = []
    bar: Any = None
    try:
        for page_features, page in client.iter_item_pages(
            s, collection_id, limit=lim, page_size=size, params=params.items(), accept=accept
        ):
            features.extend(page_features)
            if bar is None and progress and _more_to_come(page, lim, len(features)):
                bar = _progress_bar(page, lim, filtered=accept is not None)
            if bar is not None:
                bar.update(len(page_features))
    finally:
        if bar is not None:
            bar.close()
    return items_frame(features)


def _source_items(
    src: Source, collection_id: str, filt: Any, limit: int | None, progress: bool
) -> gpd.GeoDataFrame:
    """:func:`items` from a :class:`~mlhub_widgets.sources.Source` (streamed, then framed)."""
    features: list[Mapping[str, Any]] = []
    bar: Any = None
    try:
        for n, item in enumerate(src.iter_items(collection_id, filt, limit=limit), 1):
            features.append(item)
            if bar is None and progress and n == 1000:
                from tqdm.auto import tqdm

                bar = tqdm(total=limit, unit="item", desc="items", leave=False)
                bar.update(n)
            elif bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return items_frame(features)


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
    return _frame(MODEL_COLUMNS, data)


def models(
    *,
    session: Session | None = None,
    api_key: str | None = None,
    profile: str | None = None,
    root_url: str | None = None,
) -> pd.DataFrame:
    """All ML models as a DataFrame, one row per model.

    Returns:
        Columns ``id, title, description, license, doi, citation, architecture,
        prediction_type, learning_approach, training_processor_type, training_os`` (from the
        ``ml-model:*`` properties), ``training_data`` (list of ``ml-model:train-data`` link
        hrefs), ``training_dataset``, ``inferencing_image`` (link hrefs) and
        ``start_datetime``/``end_datetime`` (UTC).
    """
    records = client.list_models(
        session=session, api_key=api_key, profile=profile, root_url=root_url
    )
    return models_frame(records)
