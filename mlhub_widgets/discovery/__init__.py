"""Discovery as DataFrames: datasets, tags, collections, items and models in one call each.

Every function returns a :class:`pandas.DataFrame` (a :class:`geopandas.GeoDataFrame` in
EPSG:4326 when rows have a footprint) built straight from the API's JSON, with stable columns
and dtypes (the builders are in :mod:`.frames`): an empty result is an empty frame with the same
columns, never ``None``. :func:`item_collection` gives the items of :func:`items` as a
:class:`pystac.ItemCollection`, and :mod:`.export` writes them as GeoJSON or stac-geoparquet.

>>> import mlhub_widgets as mw
>>> mw.datasets(tags="crop type")[["id", "title"]]          # doctest: +SKIP
>>> mw.items("ref_african_crops_kenya_02_source", limit=None)  # doctest: +SKIP

Each function takes ``session=`` or ``api_key=``/``profile=``/``root_url=`` like
:func:`~mlhub_widgets.get_session`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd
import pystac

from ..config.session import Session
from ..exceptions import EntityDoesNotExist
from ..mlhub import client
from ..types import BBoxLike, DatasetLike, DatetimeLike, IntersectsLike
from .frames import (
    COLLECTION_COLUMNS,
    DATASET_COLUMNS,
    ITEM_COLUMNS,
    JSON,
    MODEL_COLUMNS,
    TAG_COLUMNS,
    collections_frame,
    datasets_frame,
    items_frame,
    make_frame,
    models_frame,
    types_and_owners,
)

if TYPE_CHECKING:
    from ..sources import Source, SourceLike

__all__ = [
    "COLLECTION_COLUMNS",
    "DATASET_COLUMNS",
    "ITEM_COLUMNS",
    "MODEL_COLUMNS",
    "TAG_COLUMNS",
    "collections",
    "collections_frame",
    "datasets",
    "datasets_frame",
    "fetch_collections",
    "item_collection",
    "items",
    "items_frame",
    "models",
    "models_frame",
    "resolve_dataset",
    "tags",
]

log = logging.getLogger(__name__)


def _source(source: SourceLike) -> Source:
    """A :class:`~mlhub_widgets.sources.Source` from a source, URL or path."""
    from ..sources import open_source

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
    frame = make_frame(
        TAG_COLUMNS, {"tag": [t for t, _ in ordered], "datasets": [c for _, c in ordered]}
    )
    return frame


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
        kinds, in_dataset = types_and_owners(src_sets)
        return collections_frame([src.modified(c) for c in src_cols], kinds, in_dataset)
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
    types, owners = types_and_owners(dataset_records)
    return collections_frame(records, types, owners)


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

    The frame has stac-geoparquet's layout (``stac_geoparquet.to_geodataframe``), so
    ``stac_geoparquet.to_item_collection(frame)`` turns it back into items.

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
        Columns ``type, stac_version, stac_extensions (list), id, geometry`` (EPSG:4326),
        ``bbox`` (list), ``links`` (list of link objects), ``assets`` (asset key → asset
        object: ``href``, ``type``, ``roles``, ``title``, ``file:size``, ``file:checksum``...),
        ``collection``, ``datetime, start_datetime, end_datetime`` (UTC), then one column per
        other item property (e.g. ``gsd``, ``platform``, ``eo:bands``).

    Raises:
        TypeError, ValueError: invalid ``bbox``/``intersects``/``datetime``/``limit``.
        EntityDoesNotExist: the collection does not exist.
        AuthenticationError: the items endpoint needs an API key.
    """
    features = _item_features(
        collection_id,
        bbox=bbox,
        intersects=intersects,
        datetime=datetime,
        limit=limit,
        page_size=page_size,
        progress=progress,
        source=source,
        session=session,
        session_kwargs={"api_key": api_key, "profile": profile, "root_url": root_url},
    )
    return items_frame(features)


def item_collection(
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
) -> pystac.ItemCollection:
    """The STAC Items of a collection as a :class:`pystac.ItemCollection`.

    Takes the arguments of :func:`items` and fetches the same items; each is kept whole (links,
    assets, properties) and as served (no migration of its extensions), ready for odc-stac,
    stackstac or stac-geoparquet (:func:`~mlhub_widgets.to_geoparquet`). ``.to_dict()`` is a
    GeoJSON FeatureCollection (pystac writes its own ``stac_version``, 1.1.0).
    """
    features = _item_features(
        collection_id,
        bbox=bbox,
        intersects=intersects,
        datetime=datetime,
        limit=limit,
        page_size=page_size,
        progress=progress,
        source=source,
        session=session,
        session_kwargs={"api_key": api_key, "profile": profile, "root_url": root_url},
    )
    found = [pystac.Item.from_dict(f, migrate=False, preserve_dict=False) for f in features]
    return pystac.ItemCollection(found, clone_items=False)


def _item_features(
    collection_id: str | Any,
    *,
    bbox: BBoxLike | None,
    intersects: IntersectsLike | None,
    datetime: DatetimeLike,
    limit: int | None,
    page_size: int | None,
    progress: bool,
    source: SourceLike | None,
    session: Session | None,
    session_kwargs: Mapping[str, str | None],
) -> list[JSON]:
    """The item JSON objects :func:`items` and :func:`item_collection` are made of."""
    from ..filters import AssetFilter

    if not isinstance(collection_id, str):
        coll_session = getattr(collection_id, "session", None)
        if session is None and not any(session_kwargs.values()):
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
    s = client.resolve_session(session, **session_kwargs)

    features: list[JSON] = []
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
    return features


def _source_items(
    src: Source, collection_id: str, filt: Any, limit: int | None, progress: bool
) -> list[JSON]:
    """The items of :func:`items` from a :class:`~mlhub_widgets.sources.Source` (streamed)."""
    features: list[JSON] = []
    bar: Any = None
    try:
        for n, item in enumerate(src.iter_items(collection_id, filt, limit=limit), 1):
            features.append(src.modified(item))  # e.g. signed hrefs (open_source(modifier=))
            if bar is None and progress and n == 1000:
                from tqdm.auto import tqdm

                bar = tqdm(total=limit, unit="item", desc="items", leave=False)
                bar.update(n)
            elif bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return features


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
