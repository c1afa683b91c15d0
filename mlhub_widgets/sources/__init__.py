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
from collections.abc import Callable, Mapping
from typing import Any

from ..exceptions import EntityDoesNotExist, MLHubException, TLSVerificationError
from ..net.http import Credentials
from ..net.objects import head_object, is_object_url
from ..net.retry import RetryPolicy
from ..net.settings import NetworkSettings
from ..net.tls import VerifySetting
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


def detect_kind(
    url_or_path: str | os.PathLike[str],
    *,
    network: NetworkSettings | None = None,
    headers: dict[str, str] | None = None,
) -> SourceKind:
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
        return "static"  # a folder, a file or an object store: they hold static catalogues
    if text.split("?", 1)[0].endswith(".json"):
        return "static"
    root = text if text.endswith("/") else text + "/"
    base = network or NetworkSettings()
    quick = base.with_(read_timeout=min(base.read_timeout, 15.0), retry=RetryPolicy(2))
    reader = JsonReader(
        network=quick, credentials=Credentials.for_url(root, headers=headers) if headers else None
    )
    try:
        landing = reader.read(root)
    except TLSVerificationError:
        raise
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
    raise MLHubException(f"no MLHub API, STAC API or STAC catalogue answers at {text}")


def open_source(
    url_or_path: str | os.PathLike[str] | Source | None = None,
    *,
    kind: str | None = None,
    headers: dict[str, str] | None = None,
    modifier: Callable[[Any], Any] | None = None,
    proxy: str | bool | None = None,
    verify: VerifySetting = True,
    network: NetworkSettings | None = None,
    storage_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> Source:
    """Open a source of datasets: the MLHub API, a static STAC catalogue or a STAC API.

    Args:
        url_or_path: an MLHub API root, a STAC API landing page, a ``catalog.json`` URL, a
            folder/file of a static catalogue, or a static catalogue in an object store
            (``s3://bucket/prefix/catalog.json``, or the prefix holding it; ``gs://``,
            ``az://`` too). ``None`` opens the configured MLHub API
            (``MLHUB_ROOT_URL``/profile). A :class:`Source` is returned as it is.
        kind: ``"mlhub"``, ``"static"`` or ``"stac-api"``; detected when omitted (see
            :func:`detect_kind`).
        headers: HTTP headers for the source (``Authorization``...); they go to the source's
            origin only, never to another host, also across redirects.
        modifier: called on every item (and collection) dict before you see it, changing it
            in place, as pystac-client's ``modifier``: ``planetary_computer.sign_inplace``
            works unchanged. Downloads call it for each asset just before fetching it, and once
            more when a signed URL is refused or has expired.
        proxy: a proxy URL for every request, ``False`` for none, ``None`` (default) for
            ``HTTP(S)_PROXY``/``ALL_PROXY``/``NO_PROXY``.
        verify: ``True``, a CA bundle path to trust as well, or ``False`` (with a warning).
        network: complete network settings (replaces ``proxy`` and ``verify``).
        storage_options: for object stores (the catalogue's and the assets' ``s3://``,
            ``gs://``, ``az://`` URLs): credentials, ``endpoint``, ``region``,
            ``skip_signature`` for public buckets... (see :mod:`mlhub_widgets.net.objects`);
            each cloud's environment variables apply too.
        **options: passed to the implementation: ``session``/``api_key``/``profile`` for
            :class:`MLHubApiSource`, ``workers`` for :class:`StaticCatalogSource`,
            ``method``/``page_size`` for :class:`StacApiSource`.

    Raises:
        ValueError: an unknown ``kind``.
        FileNotFoundError: a local catalogue that does not exist.
        UnsupportedURLError: a URL scheme the package does not read (``ftp://``...).
        EntityDoesNotExist: no ``catalog.json`` at an object-store prefix (a prefix without a
            catalogue is copied with :func:`mlhub_widgets.sync`).
        MLHubException: nothing usable answers at the URL.
    """
    if isinstance(url_or_path, Source):
        return url_or_path
    if network is None:
        network = NetworkSettings(proxy=proxy, verify=verify)
    network.proxies()  # a bad proxy setting fails here, with its one-line reason
    if kind is not None:
        resolved = _ALIASES.get(kind.lower().strip())
        if resolved is None:
            raise ValueError(f"kind must be one of {', '.join(_KINDS)}; got {kind!r}")
    elif url_or_path is None:
        resolved = "mlhub"
    else:
        resolved = detect_kind(url_or_path, network=network, headers=headers)
    source: Source
    if resolved == "mlhub":
        root = None if url_or_path is None else os.fspath(url_or_path)
        if headers:
            raise ValueError("headers= is for STAC sources; the MLHub API takes api_key=")
        source = MLHubApiSource(root_url=root, network=network, **options)
    elif url_or_path is None:
        raise ValueError(f"a {resolved} source needs a URL or path")
    elif resolved == "static":
        text = os.fspath(url_or_path)
        source = StaticCatalogSource(
            text, headers=headers, network=network, storage_options=storage_options, **options
        )
        if is_object_url(source.url):
            _check_catalogue_object(source.url, storage_options, network)
    else:
        source = StacApiSource(os.fspath(url_or_path), headers=headers, network=network, **options)
    source.modifier = modifier
    source.storage_options = dict(storage_options or {})
    return source


def _check_catalogue_object(
    url: str, storage_options: Mapping[str, Any] | None, network: NetworkSettings
) -> None:
    """One HEAD: a missing catalogue (or bucket, or access) is told now, in one line."""
    try:
        head_object(url, storage_options=storage_options, network=network)
    except EntityDoesNotExist as exc:
        if "bucket" in str(exc):
            raise
        prefix = url.rsplit("/", 1)[0] + "/"
        raise EntityDoesNotExist(
            404,
            "HEAD",
            url,
            None,
            message=f"no STAC catalogue at {url}; to copy the objects of {prefix} without a "
            f"catalogue, use: mlhub sync {prefix} -o DEST (or mlhub_widgets.sync)",
        ) from None
