"""The read-only bucket of the hub's S3 origin: every dataset in Source Cooperative's layout.

Bucket ``radiantearth`` holds, for each dataset with a catalogue, its static STAC catalogue and
its asset bytes under ``<dataset_id>/``, as ``aws s3 sync s3://radiantearth/<dataset>/ DIR``
finds them on Source Cooperative::

    <dataset>/catalog.json                               the documents the storage origin serves
    <dataset>/<collection>/collection.json               under catalogs/<dataset>/ (see .static),
    <dataset>/<collection>/<item>/<item>.json            with asset hrefs made relative
    <dataset>/<path in the dataset folder>               real files of a folder dataset
    <dataset>/<collection>/<item>/asset_<k>.<ext>        synthetic datasets' generated assets
    <dataset>/<path after "mlhub/">                      other generated assets

A catalogue in the bucket refers to its assets by relative hrefs, so a copy of the prefix is a
self-contained catalogue; object bytes are exactly what the storage origin serves. Each
dataset's listing (keys, sizes, ETags: MD5 of the bytes, or S3's multipart form over 8 MiB parts
for objects above 8 MiB) is built on first use, off the event loop, and kept; documents are
re-rendered on demand when they fell out of a 64 MiB cache. Listing pages are kept too (32 MiB,
by request parameters): a client listing a prefix again gets the same bytes without a rebuild.
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from .http import FileBody
from .s3_store import S3Object, multipart_etag
from .s3_xml import ListWalk
from .static import PREFIX as STATIC_PREFIX
from .static import StaticCatalogs
from .storage import Blob, StorageRoutes
from .store import Store
from .synth import Body


class DatasetsHub(Protocol):
    """What the datasets bucket needs from the :class:`~.server.Hub` (the server module imports
    this one, so the bucket names what it uses instead of importing the hub)."""

    @property
    def store(self) -> Store: ...
    @property
    def static(self) -> StaticCatalogs: ...
    @property
    def storage(self) -> StorageRoutes: ...
    @property
    def storage_url(self) -> str: ...


__all__ = ["DATASETS_BUCKET", "DatasetBucket", "DatasetIndex"]

DATASETS_BUCKET = "radiantearth"
#: Objects above this size get a multipart ETag over parts of this size (``aws s3 cp``'s default).
PART_SIZE = 8 * 1024 * 1024
DOC_CACHE_BYTES = 64 * 1024 * 1024
PAGE_CACHE_BYTES = 32 * 1024 * 1024


@dataclass
class DatasetIndex:
    """The objects of one dataset prefix: sorted keys and their records."""

    keys: list[str]
    objects: dict[str, S3Object]


def s3_etag(blob: Blob) -> str:
    """The S3 ETag of a blob's bytes: quoted MD5, or multipart form over 8 MiB parts."""
    if blob.size <= PART_SIZE:
        if blob.md5:
            return f'"{base64.b64decode(blob.md5).hex()}"'
        return f'"{hashlib.md5(blob.read()).hexdigest()}"'
    digests = []
    body = blob.body
    for first in range(0, blob.size, PART_SIZE):
        last = min(blob.size, first + PART_SIZE) - 1
        h = hashlib.md5()
        if isinstance(body, FileBody):
            with open(body.path, "rb") as fh:
                fh.seek(first)
                h.update(fh.read(last - first + 1))
        else:
            for chunk in body.chunks(first, last):
                h.update(chunk)
        digests.append(h.digest())
    return multipart_etag(digests)


class DatasetBucket:
    """The ``radiantearth`` bucket of one :class:`Hub` (read-only)."""

    name = DATASETS_BUCKET

    def __init__(self, hub: DatasetsHub) -> None:
        self.hub = hub
        self.store = hub.store
        self._indexes: dict[str, DatasetIndex] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._docs: OrderedDict[str, bytes] = OrderedDict()
        self._doc_bytes = 0
        self._pattern: re.Pattern[str] | None = None
        self._pages: OrderedDict[tuple[object, ...], bytes] = OrderedDict()
        self._page_bytes = 0
        self._ids: list[str] | None = None  # the store's datasets do not change once loaded
        self._id_set: frozenset[str] = frozenset()

    # -- layout --------------------------------------------------------------------------------

    def dataset_ids(self) -> list[str]:
        """Datasets in the bucket, in key order of their prefixes."""
        if self._ids is None:
            found = (d for d, ds in self.store.datasets.items() if ds.has_catalog)
            self._ids = sorted(found, key=lambda d: d + "/")
            self._id_set = frozenset(self._ids)
        return self._ids

    def has_dataset(self, ds_id: str) -> bool:
        """Whether ``<ds_id>/`` is a prefix of the bucket."""
        if self._ids is None:
            self.dataset_ids()
        return ds_id in self._id_set

    def key_for(self, ds_id: str, path: str) -> tuple[str, bool] | None:
        """``(key, is an asset)`` of storage ``path`` referenced by dataset ``ds_id``'s
        catalogue, or None when the path has no place in the bucket."""
        if path.startswith(STATIC_PREFIX):
            return path[len(STATIC_PREFIX) :], False
        if path.startswith("files/"):
            return path[len("files/") :], True
        spec = self.store.synthetic_spec(path)
        if spec is not None:
            return f"{spec.dataset_id}/{path[len(spec.prefix) :]}", True
        if path.startswith("mlhub/") and not path.startswith(
            ("mlhub/catalogs/", "mlhub/archives/")
        ):
            return f"{ds_id}/{path[len('mlhub/') :]}", True
        return None

    # -- indexes -------------------------------------------------------------------------------

    def ready(self, ds_id: str) -> bool:
        """Whether the listing of ``ds_id`` is built (so requests on it are quick)."""
        return ds_id in self._indexes

    def index(self, ds_id: str) -> DatasetIndex:
        """The listing of ``ds_id``, built on first use (renders every document: seconds for
        100,000 objects; call it off the event loop)."""
        hit = self._indexes.get(ds_id)
        if hit is not None:
            return hit
        with self._lock:
            lock = self._locks.setdefault(ds_id, threading.Lock())
        with lock:
            hit = self._indexes.get(ds_id)
            if hit is None:
                hit = self._build(ds_id)
                self._indexes[ds_id] = hit
            return hit

    def _build(self, ds_id: str) -> DatasetIndex:
        objects: dict[str, S3Object] = {}
        assets: dict[str, str] = {}
        for rel, blob in self.hub.static.documents(ds_id):
            key = f"{ds_id}/{rel}"
            data = self._bucket_document(ds_id, key, blob, assets)
            self._cache_doc(key, data)
            objects[key] = S3Object(
                len(data),
                f'"{hashlib.md5(data).hexdigest()}"',
                blob.last_modified,
                blob.content_type,
                source=STATIC_PREFIX + key,
            )
        storage = self.hub.storage
        for key, path in assets.items():
            if key in objects:
                raise RuntimeError(
                    f"bucket layout of {ds_id}: asset {path} and a catalogue document both "
                    f"map to key {key}"
                )
            asset = self._asset_object(path, storage.versions.get(path, 0))
            if asset is not None:  # a dangling href stays dangling, as on the storage origin
                objects[key] = asset
        return DatasetIndex(sorted(objects), objects)

    def _asset_object(self, path: str, version: int) -> S3Object | None:
        blob = self.hub.storage.asset_blob(path)
        if blob is None:
            return None
        return S3Object(
            blob.size,
            s3_etag(blob),
            blob.last_modified,
            blob.content_type,
            source=path,
            version=version,
        )

    # -- documents -----------------------------------------------------------------------------

    def _bucket_document(self, ds_id: str, key: str, blob: Blob, assets: dict[str, str]) -> bytes:
        """A static catalogue document with hrefs to the storage origin made relative."""
        data = blob.read()
        if not blob.content_type.startswith("application/json"):
            return data
        if self._pattern is None:
            self._pattern = re.compile('"' + re.escape(self.hub.storage_url) + r'([^"\\]*)"')
        base = posixpath.dirname(key) + "/"

        def relative(match: re.Match[str]) -> str:
            found = self.key_for(ds_id, match.group(1))
            if found is None:
                return match.group(0)
            target, is_asset = found
            if is_asset:
                assets.setdefault(target, match.group(1))
            if target.startswith(base):
                return '"' + target[len(base) :] + '"'
            return '"' + posixpath.relpath(target, base) + '"'

        return self._pattern.sub(relative, data.decode("utf-8")).encode("utf-8")

    def _cache_doc(self, key: str, data: bytes) -> None:
        with self._lock:
            if key in self._docs:
                return
            self._docs[key] = data
            self._doc_bytes += len(data)
            while self._doc_bytes > DOC_CACHE_BYTES:
                _, old = self._docs.popitem(last=False)
                self._doc_bytes -= len(old)

    def _document(self, key: str) -> bytes | None:
        with self._lock:
            hit = self._docs.get(key)
        if hit is not None:
            return hit
        blob = self.hub.static.blob(STATIC_PREFIX + key)
        if blob is None:
            return None
        data = self._bucket_document(key.partition("/")[0], key, blob, {})
        self._cache_doc(key, data)
        return data

    # -- objects -------------------------------------------------------------------------------

    def lookup(self, key: str) -> S3Object | None:
        """The object at ``key`` (its dataset's index must be built), current after
        ``Hub.change_asset``."""
        ds_id = key.partition("/")[0]
        index = self._indexes.get(ds_id)
        if index is None:
            raise LookupError(f"the index of {ds_id} is not built")
        obj = index.objects.get(key)
        if obj is None or not obj.source or obj.source.startswith(STATIC_PREFIX):
            return obj
        version = self.hub.storage.versions.get(obj.source, 0)
        if version != obj.version:
            fresh = self._asset_object(obj.source, version)
            if fresh is None:
                return None
            index.objects[key] = obj = fresh
        return obj

    def body(self, obj: S3Object) -> Body | FileBody | None:
        """The bytes of a dataset object (None if they vanished)."""
        if obj.source.startswith(STATIC_PREFIX):
            data = self._document(obj.source[len(STATIC_PREFIX) :])
            return None if data is None else Body.of(data)
        blob = self.hub.storage.asset_blob(obj.source)
        return None if blob is None else blob.body

    def body_cheap(self, obj: S3Object) -> bool:
        """Whether :meth:`body` answers without rendering (so it may run on the event loop)."""
        if obj.source.startswith(STATIC_PREFIX):
            return obj.source[len(STATIC_PREFIX) :] in self._docs
        return True

    # -- listing -------------------------------------------------------------------------------

    def page(self, params: tuple[object, ...]) -> bytes | None:
        """A listing page answered before for the same request parameters."""
        with self._lock:
            hit = self._pages.get(params)
            if hit is not None:
                self._pages.move_to_end(params)
            return hit

    def keep_page(self, params: tuple[object, ...], data: bytes) -> None:
        """Remember a listing page (dropped when an asset changes: see :meth:`asset_changed`)."""
        with self._lock:
            if params in self._pages or len(data) > PAGE_CACHE_BYTES // 8:
                return
            self._pages[params] = data
            self._page_bytes += len(data)
            while self._page_bytes > PAGE_CACHE_BYTES:
                _, old = self._pages.popitem(last=False)
                self._page_bytes -= len(old)

    def asset_changed(self) -> None:
        """Forget listing pages: an asset got new bytes (``Hub.change_asset``)."""
        with self._lock:
            self._pages.clear()
            self._page_bytes = 0

    def needed(self, walk: ListWalk) -> list[str]:
        """Datasets whose index a listing needs and that are not built yet."""
        blocks = walk.plan([d + "/" for d in self.dataset_ids()])
        return [b[:-1] for b, whole in blocks if not whole and not self.ready(b[:-1])]

    def fill(self, walk: ListWalk) -> None:
        """Fill a listing page (every index it needs must be built: see :meth:`needed`)."""
        for block, whole in walk.plan([d + "/" for d in self.dataset_ids()]):
            if whole:  # one common prefix stands for the whole dataset
                go = walk.feed([block])
            else:
                index = self._indexes[block[:-1]]
                go = walk.feed(index.keys, index)
            if not go:
                return
