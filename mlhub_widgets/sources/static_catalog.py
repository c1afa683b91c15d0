"""A static STAC catalogue (a folder, an HTTP(S) URL to ``catalog.json``, or a ``catalog.json``
in an object store: ``s3://``, ``gs://``, ``az://``) as a :class:`Source`.

Datasets and collections are read from the catalogue's structure:

* a root **Collection** is one dataset of one collection;
* a root **Catalog** whose children are Collections (an unpacked MLHub catalogue archive:
  ``<dataset>/catalog.json`` → ``<collection>/collection.json`` → items) is one dataset;
* a root Catalog whose children are Catalogs presents each child catalogue as a dataset (its
  Collections, found through nested catalogues, are the dataset's collections); Collections
  directly under such a root form one more dataset, named after the root.

A catalogue's dataset id is the name of the folder holding its ``catalog.json`` when that name is
the catalogue id up to ``-``/``_`` and case (MLHub archives: folder ``nasa_marine_debris``, id
``nasa-marine-debris``), else the catalogue id.

Items are read by walking ``item`` links (and ``child`` links below collections) with a thread
pool: documents are fetched concurrently over keep-alive connections, a bounded window ahead of
the consumer, and yielded in link order as they arrive — memory stays bounded however large the
catalogue. Filters are applied client-side.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from ..exceptions import MLHubException, MLHubWarning
from ..net.http import Credentials
from ..net.objects import check_local_path, is_object_url
from ..net.settings import NetworkSettings
from .base import JSON, DatasetEntry, Source, dataset_record
from .fetch import JsonReader, is_remote, is_url, resolve_href

if TYPE_CHECKING:
    from ..filters import AssetFilter

__all__ = ["StaticCatalogSource"]

MAX_DEPTH = 16
_NORMALISE = re.compile(r"[-_\s]+")


@dataclass
class _Dataset:
    id: str
    catalog: JSON
    href: str
    collections: list[tuple[JSON, str]] = field(default_factory=list)
    record: JSON = field(default_factory=dict)


@dataclass
class _Structure:
    datasets: dict[str, _Dataset]
    collections: dict[str, tuple[JSON, str, str]]  # id -> (collection, href, dataset id)


def _links(doc: Mapping[str, Any], rel: str) -> list[str]:
    return [
        str(link["href"])
        for link in doc.get("links") or ()
        if isinstance(link, Mapping) and link.get("rel") == rel and link.get("href")
    ]


def _is_collection(doc: Mapping[str, Any]) -> bool:
    return doc.get("type") == "Collection" or ("extent" in doc and "license" in doc)


def _same_name(a: str, b: str) -> bool:
    return _NORMALISE.sub("_", a).lower() == _NORMALISE.sub("_", b).lower()


def _dataset_id(doc: Mapping[str, Any], href: str) -> str:
    doc_id = str(doc.get("id") or "")
    path = urlsplit(href).path if is_remote(href) else href.replace(os.sep, "/")
    parts = [p for p in path.split("/") if p]
    if (
        len(parts) >= 2
        and parts[-1] == "catalog.json"
        and (not doc_id or _same_name(parts[-2], doc_id))
    ):
        return parts[-2]
    return doc_id or (parts[-2] if len(parts) >= 2 else "catalog")


def _visit_key(href: str) -> str:
    """What identifies a document in a walk: its URL without the fragment, or its path."""
    if is_url(href):
        return href.partition("#")[0]
    return os.path.normcase(os.path.normpath(href))


def _absolute(doc: Mapping[str, Any], href: str) -> JSON:
    """A copy of ``doc`` whose link and asset hrefs are absolute (the ``self`` link set).

    Documents are parsed JSON, so links and assets are plain dicts; this runs once per item
    of a walk, hence the fast path for plain relative names (``x.json``, ``sub/x.tif``).
    """
    plain_base = None
    if "?" not in href and "#" not in href:
        plain_base = href[: href.rfind("/") + 1] if is_remote(href) else None
        if plain_base is None and os.sep == "/":
            plain_base = href[: href.rfind("/") + 1] or None

    def fix(h: str) -> str:
        plain = h and h[0] not in "./?#" and ":" not in h and "/." not in h
        if plain_base is not None and plain:
            return plain_base + h
        try:
            return resolve_href(h, href)
        except ValueError:  # an href that does not parse: the download fails that asset
            return h

    out = dict(doc)
    links = []
    has_self = False
    for link in doc.get("links") or ():
        if type(link) is not dict:
            continue
        link = link.copy()
        rel = link.get("rel")
        if rel == "self":
            has_self = True
            link["href"] = href
        elif type(link.get("href")) is str:
            link["href"] = fix(link["href"])
        links.append(link)
    if not has_self:
        links.append({"rel": "self", "href": href, "type": "application/json"})
    out["links"] = links
    assets = doc.get("assets")
    if type(assets) is dict:
        new_assets: JSON = {}
        for key, asset in assets.items():
            if type(asset) is dict and type(asset.get("href")) is str:
                asset = asset.copy()
                asset["href"] = fix(asset["href"])
            new_assets[str(key)] = asset
        out["assets"] = new_assets
    return out


class StaticCatalogSource(Source):
    """A static STAC catalogue read from a folder, a file, an HTTP(S) URL or an object store.

    Args:
        href: ``catalog.json``/``collection.json`` URL or path, or a folder holding one; an
            object-store prefix (``s3://bucket/dataset/``) means its ``catalog.json``.
        workers: documents fetched concurrently during a walk.
        headers: extra HTTP request headers (e.g. ``Authorization`` for a private store),
            sent only to the catalogue's origin.
        timeout: seconds without an answer before a request is retried.
        network: proxy, TLS, timeouts and retries (replaces ``timeout``).
        modifier: called on each item before a user sees it, as pystac-client's
            ``modifier`` (see :attr:`Source.modifier`).
        storage_options: options of the object stores the catalogue and its assets are read
            from (credentials, endpoint, ``skip_signature``...; see
            :mod:`mlhub_widgets.net.objects`).
    """

    kind: ClassVar = "static"
    has_tags: ClassVar[bool] = False
    server_side_filters: ClassVar[bool] = False

    def __init__(
        self,
        href: str | os.PathLike[str],
        *,
        workers: int = 8,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
        network: NetworkSettings | None = None,
        modifier: Callable[[Any], Any] | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        text = os.fspath(href)
        if is_object_url(text):
            if not text.endswith(".json"):
                text = text.rstrip("/") + "/catalog.json"
        elif not is_url(text):
            if text.startswith("file://"):
                text = resolve_href(text, "/")
            check_local_path(text, "catalogue")
            path = Path(text).expanduser().resolve()
            if path.is_dir():
                for name in ("catalog.json", "collection.json"):
                    if (path / name).is_file():
                        path = path / name
                        break
                else:
                    raise FileNotFoundError(f"no catalog.json or collection.json in {path}")
            if not path.is_file():
                raise FileNotFoundError(f"STAC catalogue not found: {path}")
            text = str(path)
        elif text.endswith("/"):
            text += "catalog.json"
        if workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        self.url = text
        self.workers = workers
        self.network = network or NetworkSettings(read_timeout=timeout)
        self.modifier = modifier
        self._credentials = (
            Credentials.for_url(self.url, headers=headers) if headers and is_url(self.url) else None
        )
        self.storage_options = dict(storage_options or {})
        self.reader = JsonReader(
            network=self.network,
            credentials=self._credentials,
            storage_options=self.storage_options,
        )
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._structure: _Structure | None = None

    # -- plumbing ------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """What a copy in another interpreter needs (the download's index process): the
        catalogue, its settings and the structure read so far; no lock and no threads."""
        state = self.__dict__.copy()
        state["_lock"] = state["_pool"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def item_links(self, dataset_id: str) -> int | None:
        """How many item links the dataset's collections hold (what a walk will fetch, at
        least), or None when a collection also links to child catalogues (not read yet)."""
        total = 0
        for col, _href in self._dataset(dataset_id).collections:
            if _links(col, "child"):
                return None
            total += len(_links(col, "item"))
        return total

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="mlhub-stac-walk")
            return self._pool

    def credentials(self) -> list[Credentials]:
        """The catalogue's headers, for its own origin only."""
        return [self._credentials] if self._credentials is not None else []

    def close(self) -> None:
        """Stop the worker threads (they come back on next use)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def fetch_many(self, hrefs: Iterable[str]) -> Iterator[tuple[str, Any]]:
        """``(href, document)`` for each href, in order, fetched concurrently a bounded window
        (``4 × workers`` documents) ahead of the consumer."""
        pool = self._executor()
        window: deque[tuple[str, Future[Any]]] = deque()
        limit = self.workers * 4
        try:
            for href in hrefs:
                window.append((href, pool.submit(self.reader.read, href)))
                if len(window) >= limit:
                    first, fut = window.popleft()
                    yield first, fut.result()
            while window:
                first, fut = window.popleft()
                yield first, fut.result()
        finally:
            for _, fut in window:
                fut.cancel()

    # -- structure -----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Forget the cached structure (datasets and collections); re-read on next use."""
        with self._lock:
            self._structure = None

    def _struct(self) -> _Structure:
        with self._lock:
            if self._structure is not None:
                return self._structure
        built = self._build()
        with self._lock:
            self._structure = built
        return built

    def _children(self, doc: JSON, href: str, visited: set[str]) -> list[tuple[JSON, str]]:
        """The child documents of ``doc`` not visited yet in this walk (fetched concurrently).

        A child link to a document already visited (a link cycle, or the same child linked
        twice) is not followed: that branch ends with an :class:`MLHubWarning`."""
        hrefs = []
        for link in _links(doc, "child"):
            child = resolve_href(link, href)
            key = _visit_key(child)
            if key in visited:
                warnings.warn(
                    f"STAC catalogue {href} links to {child}, which this walk has already "
                    "visited (a link cycle or a repeated link); not following it again",
                    MLHubWarning,
                    stacklevel=2,
                )
                continue
            visited.add(key)
            hrefs.append(child)
        return [(_absolute(d, h), h) for h, d in self.fetch_many(hrefs)]

    def _collections_below(
        self, doc: JSON, href: str, visited: set[str], depth: int = 0
    ) -> list[tuple[JSON, str]]:
        out: list[tuple[JSON, str]] = []
        if depth > MAX_DEPTH:
            return out
        for child, child_href in self._children(doc, href, visited):
            if _is_collection(child):
                out.append((child, child_href))
            else:
                out.extend(self._collections_below(child, child_href, visited, depth + 1))
        return out

    def _build(self) -> _Structure:
        root = _absolute(self.reader.read(self.url), self.url)
        datasets: dict[str, _Dataset] = {}
        visited = {_visit_key(self.url)}
        if _is_collection(root):
            cid = str(root.get("id"))
            datasets[cid] = _Dataset(cid, root, self.url, [(root, self.url)])
        else:
            children = self._children(root, self.url, visited)
            cols = [(c, h) for c, h in children if _is_collection(c)]
            cats = [(c, h) for c, h in children if not _is_collection(c)]
            if cols or not cats:
                rid = _dataset_id(root, self.url)
                datasets[rid] = _Dataset(rid, root, self.url, cols)
            for cat, cat_href in cats:
                did = _dataset_id(cat, cat_href)
                if did in datasets:
                    did = f"{did}_{len(datasets)}"
                below = self._collections_below(cat, cat_href, visited)
                datasets[did] = _Dataset(did, cat, cat_href, below)
        collections: dict[str, tuple[JSON, str, str]] = {}
        for ds in datasets.values():
            for col, href in ds.collections:
                collections.setdefault(str(col.get("id")), (col, href, ds.id))
            cat = ds.catalog
            ds.record = dataset_record(
                ds.id,
                [c for c, _ in ds.collections],
                title=cat.get("title") if isinstance(cat.get("title"), str) else None,
                description=cat.get("description")
                if isinstance(cat.get("description"), str)
                else None,
                keywords=cat.get("keywords") or (),
            )
            ds.record["license"] = cat.get("license")
        return _Structure(datasets, collections)

    # -- Source API ----------------------------------------------------------------------------
    def list_datasets(self) -> list[JSON]:
        """One record per dataset (see the module docstring for what a dataset is)."""
        return [dict(ds.record) for ds in self._struct().datasets.values()]

    def get_dataset(self, dataset_id: str) -> JSON:
        """A dataset record by dataset id, or a one-collection dataset by collection id."""
        st = self._struct()
        ds = st.datasets.get(dataset_id)
        if ds is not None:
            return dict(ds.record)
        if dataset_id in st.collections:
            return dataset_record(dataset_id, [st.collections[dataset_id][0]])
        raise self._missing("Dataset", dataset_id)

    def list_collections(self, dataset_id: str | None = None) -> list[JSON]:
        """Collections (with absolute hrefs), all or those of one dataset."""
        st = self._struct()
        if dataset_id is None:
            return [col for col, _, _ in st.collections.values()]
        ds = st.datasets.get(dataset_id)
        if ds is None:
            if dataset_id in st.collections:
                return [st.collections[dataset_id][0]]
            raise self._missing("Dataset", dataset_id)
        return [col for col, _ in ds.collections]

    def get_collection(self, collection_id: str) -> JSON:
        """One collection by id."""
        hit = self._struct().collections.get(collection_id)
        if hit is None:
            raise self._missing("Collection", collection_id)
        return hit[0]

    def iter_items(
        self,
        collection_ids: str | Sequence[str],
        flt: AssetFilter | None = None,
        *,
        limit: int | None = None,
    ) -> Iterator[JSON]:
        """Walk the collections' item links concurrently; filter client-side."""
        ids = [collection_ids] if isinstance(collection_ids, str) else list(collection_ids)
        st = self._struct()
        for cid in ids:
            if cid not in st.collections:
                raise self._missing("Collection", cid)
        accept = None
        if flt is not None and not (
            flt.bbox is None and flt.intersects is None and flt.datetime is None
        ):
            accept = flt.item_matches
        left = limit
        for cid in ids:
            col, href, _ = st.collections[cid]
            for item in self.walk(col, href):
                if accept is not None and not accept(item):
                    continue
                yield item
                if left is not None:
                    left -= 1
                    if left <= 0:
                        return

    def walk(
        self,
        node: JSON,
        href: str,
        *,
        collection_id: str | None = None,
        depth: int = 0,
        visited: set[str] | None = None,
    ) -> Iterator[JSON]:
        """Every item below a collection or catalogue document (its item links first, then its
        child catalogues, depth first), with absolute hrefs and ``collection`` set.

        Each child document is walked once: a child link back to a document the walk has
        visited (a cycle) ends that branch with an :class:`MLHubWarning`."""
        if visited is None:
            visited = {_visit_key(href)}
        cid = str(node.get("id")) if _is_collection(node) else collection_id
        item_hrefs = (resolve_href(h, href) for h in _links(node, "item"))
        for item_href, doc in self.fetch_many(item_hrefs):
            if not isinstance(doc, Mapping) or doc.get("type") != "Feature":
                raise MLHubException(f"{item_href} is not a STAC item")
            item = _absolute(doc, item_href)
            if cid is not None and not item.get("collection"):
                item["collection"] = cid
            yield item
        if depth >= MAX_DEPTH or not _links(node, "child"):
            return
        for child, child_href in self._children(node, href, visited):
            yield from self.walk(
                child, child_href, collection_id=cid, depth=depth + 1, visited=visited
            )

    def _dataset(self, dataset_id: str) -> _Dataset:
        """The dataset (a collection id is a dataset of that one collection)."""
        st = self._struct()
        ds = st.datasets.get(dataset_id)
        if ds is None:
            if dataset_id not in st.collections:
                raise self._missing("Dataset", dataset_id)
            col, href, _ = st.collections[dataset_id]
            ds = _Dataset(dataset_id, col, href, [(col, href)])
        return ds

    def iter_dataset(
        self, dataset_id: str, flt: AssetFilter | None = None
    ) -> Iterator[DatasetEntry]:
        """The dataset's catalogue, then each collection and all its items (unfiltered: the
        download engine filters them and keeps the rest in its index)."""
        ds = self._dataset(dataset_id)
        yield DatasetEntry("catalog", f"{dataset_id}/catalog.json", ds.catalog, ds.href)
        for col, href in ds.collections:
            cid = str(col.get("id"))
            yield DatasetEntry("collection", f"{dataset_id}/{cid}/collection.json", col, href)
            for item in self.walk(col, href):
                iid = str(item.get("id"))
                yield DatasetEntry("item", f"{dataset_id}/{cid}/{iid}/{iid}.json", item)
