"""Sources of datasets: the MLHub API, static STAC catalogues and STAC APIs.

>>> import mlhub_widgets as mw
>>> src = mw.open_source("/data/nasa_marine_debris")           # doctest: +SKIP
>>> mw.datasets(source=src)                                    # doctest: +SKIP
>>> mw.download_dataset("nasa_marine_debris", "data", source=src)  # doctest: +SKIP

:func:`open_source` picks the implementation from what the URL or path answers; pass ``kind``
to choose. Every :class:`Source` gives discovery, the download engine and the explorer the same
things: dataset records, STAC collections, filtered item streams and whole-dataset streams.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..exceptions import MLHubException
from .base import (
    DatasetEntry,
    Source,
    SourceKind,
    SourceLike,
    collection_types,
    dataset_record,
)
from .fetch import JsonReader, is_url
from .mlhub_api import MLHubApiSource
from .stac_api import StacApiSource
from .static_catalog import StaticCatalogSource

__all__ = [
    "DatasetEntry",
    "MLHubApiSource",
    "Source",
    "SourceKind",
    "SourceLike",
    "StacApiSource",
    "StaticCatalogSource",
    "collection_types",
    "dataset_record",
    "detect_kind",
    "open_source",
]

_KINDS = ("mlhub", "static", "stac-api")
_ALIASES = {
    "mlhub": "mlhub",
    "mlhub-api": "mlhub",
    "api": "mlhub",
    "static": "static",
    "catalog": "static",
    "catalogue": "static",
    "stac-api": "stac-api",
    "stac_api": "stac-api",
    "stacapi": "stac-api",
}


def _has_search(landing: Any) -> bool:
    if not isinstance(landing, dict):
        return False
    if any(
        isinstance(link, dict) and link.get("rel") == "search"
        for link in landing.get("links") or ()
    ):
        return True
    return any("item-search" in str(c) for c in landing.get("conformsTo") or ())


def detect_kind(url_or_path: str | os.PathLike[str]) -> SourceKind:
    """Which kind of source answers at ``url_or_path``.

    A local path or a ``.json`` URL is a static catalogue. Otherwise the landing page is read:
    a server that also answers ``/datasets`` with a list is the MLHub API; one with a
    ``search`` link (or the item-search conformance class) is a STAC API; a STAC Catalog or
    Collection document is a static catalogue.

    Raises:
        MLHubException: nothing STAC-like answers there.
    """
    text = os.fspath(url_or_path)
    if not is_url(text):
        return "static"
    if text.split("?", 1)[0].endswith(".json"):
        return "static"
    root = text if text.endswith("/") else text + "/"
    reader = JsonReader(max_attempts=2, timeout=15.0)
    try:
        try:
            landing = reader.read(root)
        except MLHubException:
            landing = None
        try:
            datasets = reader.read(root + "datasets")
        except MLHubException:
            datasets = None
        if isinstance(datasets, list):
            return "mlhub"
        if _has_search(landing):
            return "stac-api"
        if isinstance(landing, dict) and landing.get("type") in ("Catalog", "Collection"):
            return "static"
        try:
            reader.read(root + "catalog.json")
            return "static"
        except MLHubException:
            pass
    finally:
        reader.close()
    raise MLHubException(f"no MLHub API, STAC API or STAC catalogue answers at {text}")


def open_source(
    url_or_path: str | os.PathLike[str] | Source | None = None,
    *,
    kind: str | None = None,
    **options: Any,
) -> Source:
    """Open a source of datasets: the MLHub API, a static STAC catalogue or a STAC API.

    Args:
        url_or_path: an MLHub API root, a STAC API landing page, a ``catalog.json`` URL, or a
            folder/file of a static catalogue. ``None`` opens the configured MLHub API
            (``MLHUB_ROOT_URL``/profile). A :class:`Source` is returned as it is.
        kind: ``"mlhub"``, ``"static"`` or ``"stac-api"``; detected when omitted (see
            :func:`detect_kind`).
        **options: passed to the implementation: ``session``/``api_key``/``profile`` for
            :class:`MLHubApiSource`, ``workers``/``headers`` for
            :class:`StaticCatalogSource`, ``headers``/``method``/``page_size`` for
            :class:`StacApiSource`.

    Raises:
        ValueError: an unknown ``kind``.
        FileNotFoundError: a local catalogue that does not exist.
        MLHubException: nothing usable answers at the URL.
    """
    if isinstance(url_or_path, Source):
        return url_or_path
    if kind is not None:
        resolved = _ALIASES.get(kind.lower().strip())
        if resolved is None:
            raise ValueError(f"kind must be one of {', '.join(_KINDS)}; got {kind!r}")
    elif url_or_path is None:
        resolved = "mlhub"
    else:
        resolved = detect_kind(url_or_path)
    if resolved == "mlhub":
        root = None if url_or_path is None else os.fspath(url_or_path)
        return MLHubApiSource(root_url=root, **options)
    if url_or_path is None:
        raise ValueError(f"a {resolved} source needs a URL or path")
    if resolved == "static":
        target = url_or_path if is_url(os.fspath(url_or_path)) else Path(url_or_path)
        return StaticCatalogSource(target, **options)
    return StacApiSource(os.fspath(url_or_path), **options)
