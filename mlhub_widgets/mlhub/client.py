"""Low-level MLHub API client: plain functions returning JSON-like ``dict``/``list`` values.

Same function names, arguments and return types as ``radiant_mlhub.client`` 0.5.5. Users import
them from :mod:`mlhub_widgets.client`, which adds ``download_collection_archive`` (it runs the
download engine, a layer above this module)::

    from mlhub_widgets.client import list_datasets, get_dataset, list_collection_items

Differences that users notice (all fixes of the peer's bugs):

* Every function also takes ``root_url=`` and ``session=`` (an explicit
  :class:`~mlhub_widgets.config.session.Session` wins over ``api_key``/``profile``/``root_url``
  and lets many calls share one connection pool).
* A missing entity raises :class:`~mlhub_widgets.exceptions.EntityDoesNotExist` *at once* (404
  is never retried) with a message naming it, e.g. ``Dataset 'xyz' does not exist.``
* :func:`get_dataset` really falls back between id and DOI, as the peer's docstring promised.
* :func:`list_collection_items` never asks the server for more items than ``limit`` needs.
* Arguments are validated before any request (clear :class:`TypeError`/:class:`ValueError`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from ..config.session import Session, get_session
from ..exceptions import EntityDoesNotExist, MLHubResponseError

__all__ = [
    "check_limit",
    "get_catalog_info",
    "get_collection",
    "get_collection_archive_info",
    "get_collection_item",
    "get_dataset",
    "get_dataset_by_doi",
    "get_dataset_by_id",
    "get_model_by_id",
    "iter_item_pages",
    "list_collection_items",
    "list_collections",
    "list_datasets",
    "list_models",
    "looks_like_doi",
    "next_href",
    "normalise_doi",
    "resolve_session",
]

JSON = dict[str, Any]
T = TypeVar("T")

#: Items per request when the caller does not choose (the API's own default is only 10).
DEFAULT_PAGE_SIZE = 1000

_DOI_RE = re.compile(r"^10\.\d{3,9}/\S+$")
_DOI_PREFIXES = ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "doi:")


# --------------------------------------------------------------------------------------------
# helpers shared with discovery.py and models.py


def resolve_session(
    session: Session | None = None,
    *,
    api_key: str | None = None,
    profile: str | None = None,
    root_url: str | None = None,
) -> Session:
    """Return ``session`` if given, else a new one from :func:`~mlhub_widgets.get_session`."""
    if session is not None:
        if not isinstance(session, Session):
            raise TypeError(
                f"session must be an mlhub_widgets.Session, got {type(session).__name__}"
            )
        return session
    return get_session(api_key=api_key, profile=profile, root_url=root_url)


# `object`: it checks what a user passed, so it must take anything
def check_id(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, got {type(value).__name__} {value!r}")
    value = value.strip()
    if not value:
        raise ValueError(f"{what} must not be empty")
    return value


def _segment(value: str) -> str:
    """Percent-encode one URL path segment (a ``/`` in an id must not become a separator)."""
    return quote(value, safe="")


# `object`: it checks what a user passed, so it must take anything
def str_list(value: object, what: str) -> list[str] | None:
    """Normalise ``None`` / a string / an iterable of strings to ``None`` or a list of strings.

    Raises:
        TypeError: ``value`` (or one of its elements) is not a string.
        ValueError: an element is an empty string.
    """
    if value is None:
        return None
    if isinstance(value, str):
        values = [value]
    elif isinstance(value, bytes | bytearray | Mapping) or not isinstance(value, Iterable):
        raise TypeError(
            f"{what} must be a string or a list of strings, got {type(value).__name__} {value!r}"
        )
    else:
        values = list(value)
    out = []
    for v in values:
        if not isinstance(v, str):
            raise TypeError(f"every {what} value must be a string, got {type(v).__name__} {v!r}")
        if not v.strip():
            raise ValueError(f"{what} values must not be empty strings")
        out.append(v)
    return out


def normalise_doi(value: str) -> str:
    """Strip a ``https://doi.org/`` or ``doi:`` prefix and surrounding space from a DOI."""
    text = value.strip()
    lower = text.lower()
    for prefix in _DOI_PREFIXES:
        if lower.startswith(prefix):
            return text[len(prefix) :].strip()
    return text


def looks_like_doi(value: str) -> bool:
    """True for ``10.<registrant>/<suffix>`` (optionally with a ``doi:``/``doi.org`` prefix)."""
    return bool(_DOI_RE.match(normalise_doi(value)))


def _get(session: Session, path: str, what: str, params: Any = None) -> Any:
    """GET ``path`` as JSON; a 404 becomes ``EntityDoesNotExist`` whose message is ``what``."""
    try:
        return session.get_json(path, params=params)
    except EntityDoesNotExist as exc:
        raise _renamed(exc, what) from None


def _renamed(exc: EntityDoesNotExist, message: str) -> EntityDoesNotExist:
    return EntityDoesNotExist(exc.status_code, exc.method, exc.url, exc.detail, message=message)


def _expect(body: Any, kind: type[T], what: str, url: str) -> T:
    if not isinstance(body, kind):
        raise MLHubResponseError(
            f"Expected {what} from {url} but got {type(body).__name__}", url=url
        )
    return body


# --------------------------------------------------------------------------------------------
# datasets


def list_datasets(
    *,
    tags: str | Iterable[str] | None = None,
    text: str | Iterable[str] | None = None,
    api_key: str | None = None,
    profile: str | None = None,
    root_url: str | None = None,
    session: Session | None = None,
) -> list[JSON]:
    """List datasets (``GET /datasets``), optionally filtered by the server.

    Args:
        tags: a tag or tags; a dataset matches when it has **all** of them, ignoring case
            (matched here, not by the server, whose match is exact).
        text: a phrase or phrases searched in titles and descriptions by the server; a dataset
            matches when it contains **any** of them.
        api_key, profile, root_url: passed to :func:`~mlhub_widgets.get_session`.
        session: an existing session (wins over the three above).

    Returns:
        The dataset records (JSON objects) in the server's order.

    Raises:
        TypeError: ``tags``/``text`` is not a string or an iterable of strings.
    """
    tag_list = str_list(tags, "tags")
    text_list = str_list(text, "text")
    s = resolve_session(session, api_key=api_key, profile=profile, root_url=root_url)
    params = [("text", t) for t in text_list or ()]
    body = s.get_json("datasets", params=params or None)
    records = _expect(body, list, "a list of datasets", s.url_for("datasets"))
    if not tag_list:
        return records
    return [r for r in records if isinstance(r, dict) and has_tags(r.get("tags"), tag_list)]


# `object`: it reads a dataset record's tags from the server's JSON, whatever they are
def has_tags(record_tags: object, wanted: Iterable[str]) -> bool:
    """True when ``record_tags`` (a list) holds every tag of ``wanted``, ignoring case."""
    have: set[str] = set()
    if isinstance(record_tags, list | tuple):
        have = {t.casefold() for t in record_tags if isinstance(t, str)}
    return all(t.casefold() in have for t in wanted)


def get_dataset_by_id(
    dataset_id: str,
    *,
    api_key: str | None = None,
    profile: str | None = None,
    root_url: str | None = None,
    session: Session | None = None,
) -> JSON:
    """Fetch one dataset by id (``GET /datasets/{id}``).

    Raises:
        EntityDoesNotExist: no dataset has this id (raised at once, never retried).
    """
    dataset_id = check_id(dataset_id, "dataset_id")
    s = resolve_session(session, api_key=api_key, profile=profile, root_url=root_url)
    body = _get(s, f"datasets/{_segment(dataset_id)}", f"Dataset '{dataset_id}' does not exist.")
    return _expect(body, dict, "a dataset object", s.url_for(f"datasets/{dataset_id}"))


def get_dataset_by_doi(
    dataset_doi: str,
    *,
    api_key: str | None = None,
    profile: str | None = None,
    root_url: str | None = None,
    session: Session | None = None,
) -> JSON:
    """Fetch one dataset by DOI (``GET /datasets/doi/{doi}``).

    ``https://doi.org/...`` and ``doi:...`` forms are accepted.

    Raises:
        EntityDoesNotExist: no dataset has this DOI.
    """
    doi = normalise_doi(check_id(dataset_doi, "dataset_doi"))
    s = resolve_session(session, api_key=api_key, profile=profile, root_url=root_url)
    path = f"datasets/doi/{quote(doi, safe='/')}"
    body = _get(s, path, f"Dataset with DOI '{doi}' does not exist.")
    return _expect(body, dict, "a dataset object", s.url_for(path))


def get_dataset(
    dataset_id_or_doi: str,
    *,
    api_key: str | None = None,
    profile: str | None = None,
    root_url: str | None = None,
    session: Session | None = None,
) -> JSON:
    """Fetch one dataset by id or DOI.

    A value that looks like a DOI (``10.NNNN/suffix``, optionally prefixed by ``doi:`` or
    ``https://doi.org/``) is looked up by DOI, anything else by id. When the id lookup answers
    404 and the value could still be a DOI (it contains a ``/``, which an id never does, e.g. a
    DOI with an unusual prefix), the DOI lookup is tried too. (radiant_mlhub's docstring
    promised this fallback but its code never did it.)

    Raises:
        EntityDoesNotExist: neither lookup found a dataset.
    """
    value = check_id(dataset_id_or_doi, "dataset_id_or_doi")
    s = resolve_session(session, api_key=api_key, profile=profile, root_url=root_url)
    by_doi = looks_like_doi(value)
    if by_doi:
        return get_dataset_by_doi(value, session=s)
    try:
        return get_dataset_by_id(value, session=s)
    except EntityDoesNotExist as exc:
        if "/" not in value:
            raise
        try:
            return get_dataset_by_doi(value, session=s)
        except EntityDoesNotExist:
            raise _renamed(
                exc, f"Dataset '{value}' does not exist (looked up as an id and as a DOI)."
            ) from None


def get_catalog_info(
    dataset_id: str,
    *,
    api_key: str | None = None,
    profile: str | None = None,
    root_url: str | None = None,
    session: Session | None = None,
) -> JSON:
    """Size information on a dataset's STAC catalogue (``GET /catalog/{id}/info``).

    Returns:
        ``{"dataset": ..., "stac_catalog_size": <bytes>, "estimated_dataset_size": <bytes>}``.

    Raises:
        EntityDoesNotExist: the dataset (or its catalogue) does not exist.
    """
    dataset_id = check_id(dataset_id, "dataset_id")
    s = resolve_session(session, api_key=api_key, profile=profile, root_url=root_url)
    path = f"catalog/{_segment(dataset_id)}/info"
    body = _get(s, path, f"Catalog of dataset '{dataset_id}' does not exist.")
    return _expect(body, dict, "catalog info", s.url_for(path))


# --------------------------------------------------------------------------------------------
# collections


def list_collections(
    *,
    api_key: str | None = None,
    profile: str | None = None,
    root_url: str | None = None,
    session: Session | None = None,
) -> list[JSON]:
    """List every collection (``GET /collections``), following ``next`` links if the server pages.

    Returns:
        STAC Collection objects (JSON).
    """
    s = resolve_session(session, api_key=api_key, profile=profile, root_url=root_url)
    out: list[JSON] = []
    for page in s.paginate("collections"):
        if isinstance(page, list):  # tolerate a bare array
            out.extend(page)
            continue
        page = _expect(page, dict, "a collections object", s.url_for("collections"))
        out.extend(page.get("collections") or [])
    return out


def get_collection(
    collection_id: str,
    *,
    api_key: str | None = None,
    profile: str | None = None,
    root_url: str | None = None,
    session: Session | None = None,
) -> JSON:
    """Fetch one STAC Collection (``GET /collections/{id}``).

    Raises:
        EntityDoesNotExist: no collection has this id.
    """
    collection_id = check_id(collection_id, "collection_id")
    s = resolve_session(session, api_key=api_key, profile=profile, root_url=root_url)
    path = f"collections/{_segment(collection_id)}"
    body = _get(s, path, f"Collection '{collection_id}' does not exist.")
    return _expect(body, dict, "a collection object", s.url_for(path))


def _with_query(url: str, limit: int, persist: list[tuple[str, str]]) -> str:
    """``url`` with ``limit`` set, any echoed ``key`` removed (the session adds its own) and the
    ``persist`` parameters added when the link does not carry them already."""
    parts = urlsplit(url)
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k not in ("limit", "key")
    ]
    present = {k for k, _ in query}
    query.insert(0, ("limit", str(limit)))
    query += [(k, v) for k, v in persist if k not in present]
    return urlunsplit(parts._replace(query=urlencode(query)))


def iter_item_pages(
    session: Session,
    collection_id: str,
    *,
    limit: int | None,
    page_size: int | None = None,
    params: Iterable[tuple[str, str]] = (),
    accept: Callable[[JSON], bool] | None = None,
) -> Iterator[tuple[list[JSON], JSON]]:
    """Yield ``(features, page)`` for ``GET /collections/{id}/items`` and its ``next`` pages.

    Every request asks for at most the number of items still needed (``limit`` query parameter
    = ``min(page_size, remaining)``), so a limit never makes the server produce items that are
    then thrown away. ``params`` (e.g. ``bbox``, ``datetime``) are sent with the first request
    and added to ``next`` links that lack them. ``accept`` drops items client-side (they do not
    count towards ``limit``). The yielded feature lists never exceed ``limit`` in total.
    """
    cid = check_id(collection_id, "collection_id")
    size = DEFAULT_PAGE_SIZE if page_size is None else page_size
    remaining = limit
    persist = list(params)
    url = session.url_for(f"collections/{_segment(cid)}/items")
    seen: set[str] = set()
    first = True
    while remaining is None or remaining > 0:
        want = size if remaining is None else min(size, remaining)
        if first:
            try:
                page = session.get_json(url, params=[("limit", str(want)), *persist])
            except EntityDoesNotExist as exc:
                raise _renamed(exc, f"Collection '{cid}' does not exist.") from None
            first = False
        else:
            page = session.get_json(_with_query(url, want, persist))
        page = _expect(page, dict, "an item collection", url)
        raw_features = page.get("features") or []
        if not isinstance(raw_features, list):
            raise MLHubResponseError(f"'features' is not a list in the page from {url}", url=url)
        features = raw_features
        if accept is not None:
            features = [f for f in features if accept(f)]
        if remaining is not None:
            features = features[:remaining]
            remaining -= len(features)
        yield features, page
        nxt = next_href(page)
        if nxt is None or not raw_features:
            return
        if nxt in seen:
            raise MLHubResponseError(f"Pagination loop at {nxt}", url=nxt)
        seen.add(nxt)
        url = nxt


def next_href(page: Mapping[str, Any]) -> str | None:
    """The ``href`` of a page's first ``rel="next"`` link, or ``None``."""
    for link in page.get("links") or ():
        if isinstance(link, Mapping) and link.get("rel") == "next" and link.get("href"):
            return str(link["href"])
    return None


# `object`: it checks what a user passed, so it must take anything
def check_limit(value: object, what: str, *, allow_none: bool = True) -> int | None:
    """Validate a ``limit`` (>= 0) or ``page_size`` (> 0) argument; ``None`` passes."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be a positive integer or None, got {value!r}")
    if value < 0 or (what == "page_size" and value == 0):
        raise ValueError(f"{what} must be {'positive' if what == 'page_size' else '>= 0'}")
    return value


def list_collection_items(
    collection_id: str,
    *,
    page_size: int | None = None,
    extensions: str | Iterable[str] | None = None,
    limit: int | None = 10,
    api_key: str | None = None,
    profile: str | None = None,
    root_url: str | None = None,
    session: Session | None = None,
) -> Iterator[JSON]:
    """Yield the STAC Items of a collection (``GET /collections/{id}/items`` + ``next`` pages).

    Pages are fetched lazily as the generator is consumed.

    Args:
        collection_id: the collection.
        page_size: items per request (default: ``min(limit, 1000)``); no request ever asks for
            more items than are still needed to reach ``limit``.
        extensions: only items implementing these STAC extensions (server-side filter).
        limit: the maximum number of items (default 10, as in radiant_mlhub); ``None`` for all.

    Raises:
        TypeError, ValueError: bad arguments (raised at the call, before any request).
        EntityDoesNotExist: the collection does not exist (when iteration starts).
        AuthenticationError: the endpoint needs an API key.
    """
    cid = check_id(collection_id, "collection_id")
    lim = check_limit(limit, "limit")
    size = check_limit(page_size, "page_size")
    ext = str_list(extensions, "extensions") or []
    s = resolve_session(session, api_key=api_key, profile=profile, root_url=root_url)

    def generate() -> Iterator[JSON]:
        pairs = [("extensions", e) for e in ext]
        for features, _page in iter_item_pages(s, cid, limit=lim, page_size=size, params=pairs):
            yield from features

    return generate()


def get_collection_item(
    collection_id: str,
    item_id: str,
    *,
    api_key: str | None = None,
    profile: str | None = None,
    root_url: str | None = None,
    session: Session | None = None,
) -> JSON:
    """Fetch one STAC Item (``GET /collections/{cid}/items/{item_id}``).

    Raises:
        EntityDoesNotExist: the item (or its collection) does not exist.
    """
    cid = check_id(collection_id, "collection_id")
    iid = check_id(item_id, "item_id")
    s = resolve_session(session, api_key=api_key, profile=profile, root_url=root_url)
    path = f"collections/{_segment(cid)}/items/{_segment(iid)}"
    body = _get(s, path, f"Item '{iid}' does not exist in collection '{cid}'.")
    return _expect(body, dict, "an item", s.url_for(path))


def get_collection_archive_info(
    archive_id: str,
    *,
    api_key: str | None = None,
    profile: str | None = None,
    root_url: str | None = None,
    session: Session | None = None,
) -> JSON:
    """Information on a collection archive (``GET /archive/{id}/info``).

    Returns:
        ``{"collection": ..., "dataset": ..., "size": <bytes>, "types": [...]}``.

    Raises:
        EntityDoesNotExist: there is no archive for this collection (or it is still being
            generated).
    """
    aid = check_id(archive_id, "archive_id")
    s = resolve_session(session, api_key=api_key, profile=profile, root_url=root_url)
    path = f"archive/{_segment(aid)}/info"
    body = _get(s, path, f"Archive '{aid}' does not exist (or is still being generated).")
    return _expect(body, dict, "archive info", s.url_for(path))


# --------------------------------------------------------------------------------------------
# models


def list_models(
    *,
    api_key: str | None = None,
    profile: str | None = None,
    root_url: str | None = None,
    session: Session | None = None,
) -> list[JSON]:
    """List ML models (``GET /models``) as STAC Items (JSON)."""
    s = resolve_session(session, api_key=api_key, profile=profile, root_url=root_url)
    body = s.get_json("models")
    if isinstance(body, dict) and isinstance(body.get("features"), list):
        return list(body["features"])  # tolerate a FeatureCollection
    return _expect(body, list, "a list of models", s.url_for("models"))


def get_model_by_id(
    model_id: str,
    *,
    api_key: str | None = None,
    profile: str | None = None,
    root_url: str | None = None,
    session: Session | None = None,
) -> JSON:
    """Fetch one ML model (``GET /models/{id}``) as a STAC Item (JSON).

    Raises:
        EntityDoesNotExist: no model has this id.
    """
    mid = check_id(model_id, "model_id")
    s = resolve_session(session, api_key=api_key, profile=profile, root_url=root_url)
    path = f"models/{_segment(mid)}"
    body = _get(s, path, f"Model '{mid}' does not exist.")
    return _expect(body, dict, "a model", s.url_for(path))
