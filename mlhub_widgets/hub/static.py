"""Static STAC catalogues on the storage origin: ``{storage_url}catalogs/{dataset_id}/...``.

Every dataset with a catalogue is browsable as a static STAC catalogue, the same documents as in
its catalogue tarball, one URL each::

    {storage_url}catalogs/{dataset_id}/catalog.json                       root Catalog
    {storage_url}catalogs/{dataset_id}/{collection}/collection.json       child Collections
    {storage_url}catalogs/{dataset_id}/{collection}/{item}/{item}.json    Items

Links between them are relative (as in the tarball), so any STAC reader can walk them from the
root (``pystac.Catalog.from_file(hub.static_catalog_url("nasa_marine_debris"))``); asset hrefs
are absolute URLs of the storage origin. Folder and generated datasets are rendered on request
(item by item, lazily, from ``items.jsonl`` too); prebuilt ``catalog.tar.gz`` datasets are
served member by member from the tarball (read once, on first use), with relative asset hrefs
made absolute — other files in the tarball are served at their place too.
"""

from __future__ import annotations

import json
import posixpath
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, Protocol

from . import synth
from .items import is_relative_href, tar_item_text
from .storage import Blob, blob_of
from .store import DatasetSource, Store, record_mtime

__all__ = ["PREFIX", "StaticCatalogs", "StaticHub"]

PREFIX = "catalogs/"
CACHE_BYTES = 64 * 1024 * 1024
JSON_TYPE = "application/json"


class StaticHub(Protocol):
    """What the static catalogues need from the :class:`~.server.Hub` they serve (the hub's
    server module imports this one, so it names what it uses instead of importing the hub)."""

    @property
    def store(self) -> Store: ...
    @property
    def storage_url(self) -> str: ...
    def rewrite(self, text: str) -> str: ...


class StaticCatalogs:
    """Resolves ``catalogs/...`` storage paths to blobs, for one :class:`~.server.Hub`."""

    def __init__(self, hub: StaticHub) -> None:
        self.hub = hub
        self.store = hub.store
        self._members: dict[str, tuple[str, dict[str, tuple[float, bytes]]]] = {}
        self._cache: OrderedDict[str, Blob] = OrderedDict()
        self._cache_bytes = 0
        self._lock = threading.Lock()

    def url(self, ds_id: str) -> str:
        """The root ``catalog.json`` URL of a dataset."""
        return f"{self.hub.storage_url}{PREFIX}{ds_id}/catalog.json"

    def blob(self, path: str) -> Blob | None:
        """The blob at storage ``path`` (``catalogs/<dataset>/<rel>``), or None."""
        with self._lock:
            hit = self._cache.get(path)
            if hit is not None:
                self._cache.move_to_end(path)
                return hit
        ds_id, _, rel = path[len(PREFIX) :].partition("/")
        ds = self.store.datasets.get(ds_id)
        if ds is None or not ds.has_catalog or not rel or posixpath.normpath(rel) != rel:
            return None
        if ds.tarball is not None:
            blob = self._tar_member(ds, rel)
        else:
            blob = self._folder_document(ds, rel)
        if blob is not None:
            with self._lock:
                if path not in self._cache and blob.size <= CACHE_BYTES // 4:
                    self._cache[path] = blob
                    self._cache_bytes += blob.size
                    while self._cache_bytes > CACHE_BYTES:
                        _, old = self._cache.popitem(last=False)
                        self._cache_bytes -= old.size
        return blob

    def documents(self, ds_id: str) -> Iterator[tuple[str, Blob]]:
        """Every document of the dataset's static catalogue: ``(path below its root, blob)``.

        The same bytes :meth:`blob` serves, made in bulk (items are rendered in batches, not
        one lookup each). Prebuilt tarballs yield all their files.
        """
        ds = self.store.datasets[ds_id]
        if ds.tarball is not None:
            _, index = self._index(ds)
            for rel in index:
                blob = self.blob(f"{PREFIX}{ds_id}/{rel}")
                if blob is not None:
                    yield rel, blob
            return
        root = self.blob(f"{PREFIX}{ds_id}/catalog.json")
        if root is None:
            return
        yield "catalog.json", root
        mtime = record_mtime(ds)
        links = json.loads(root.read()).get("links") or []
        for link in links:
            if not isinstance(link, dict) or link.get("rel") != "child":
                continue
            rel = posixpath.normpath(str(link.get("href", "")))
            collection = self.blob(f"{PREFIX}{ds_id}/{rel}")
            if collection is None:
                continue
            yield rel, collection
            cid = rel.split("/", 1)[0]
            for r in self.store.items(cid).iter_rendered(rewrite=self.hub.rewrite):
                text = tar_item_text(r).encode("utf-8")
                yield f"{cid}/{r.id}/{r.id}.json", blob_of(text, JSON_TYPE, mtime)

    def cheap(self, path: str) -> bool:
        """Whether :meth:`blob` of ``path`` is quick (no indexing), so it may run on the loop."""
        if path in self._cache:
            return True
        ds_id, _, rel = path[len(PREFIX) :].partition("/")
        ds = self.store.datasets.get(ds_id)
        if ds is None:
            return True
        if ds.tarball is not None:
            return ds_id in self._members
        parts = rel.split("/")
        if len(parts) == 3:
            return self.store.items_loaded(parts[0]) and self.store.items(parts[0]).ready(
                item_id=parts[1]
            )
        return parts == ["catalog.json"]

    # -- folder datasets -----------------------------------------------------------------------

    def _folder_document(self, ds: DatasetSource, rel: str) -> Blob | None:
        mtime = record_mtime(ds)
        parts = rel.split("/")
        text: str | None = None
        if parts == ["catalog.json"]:
            text = self.store.catalog_text(ds)
        elif len(parts) in (2, 3):
            cid = parts[0]
            if cid not in self.store.catalog_collections(ds):
                return None
            source = self.store.items(cid)
            if len(parts) == 2 and parts[1] == "collection.json":
                text = self.store.collection_text(ds, cid, list(source.ids()))
            elif len(parts) == 3 and parts[2] == f"{parts[1]}.json":
                pos = source.position(parts[1])
                if pos is None:
                    return None
                (r,) = source.rendered(pos, pos + 1)
                text = tar_item_text(r)
        if text is None:
            return None
        return blob_of(self.hub.rewrite(text).encode("utf-8"), JSON_TYPE, mtime)

    # -- tarball datasets ----------------------------------------------------------------------

    def _index(self, ds: DatasetSource) -> tuple[str, dict[str, tuple[float, bytes]]]:
        """``(root folder, {path below it: (mtime, bytes)})`` of a prebuilt tarball."""
        hit = self._members.get(ds.id)
        if hit is not None:
            return hit
        members = [(i, d) for i, d in self.store.tar_members(ds) if d is not None and i.isfile()]
        roots = [i.name for i, _ in members if posixpath.basename(i.name) == "catalog.json"]
        root = posixpath.dirname(min(roots, key=lambda n: (n.count("/"), n))) if roots else ""
        prefix = f"{root}/" if root else ""
        index = {
            i.name[len(prefix) :]: (float(i.mtime), d)
            for i, d in members
            if i.name.startswith(prefix)
        }
        self._members[ds.id] = (root, index)
        return root, index

    def _tar_member(self, ds: DatasetSource, rel: str) -> Blob | None:
        _, index = self._index(ds)
        entry = index.get(rel)
        if entry is None:
            return None
        mtime, data = entry
        if not rel.endswith(".json"):
            return blob_of(data, synth.media_type_for(rel), mtime)
        try:
            text = self.hub.rewrite(data.decode("utf-8"))
            obj = json.loads(text)
        except ValueError:
            return blob_of(data, JSON_TYPE, mtime)
        if isinstance(obj, dict) and self._absolute_assets(obj, ds.id, rel):
            text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
        return blob_of(text.encode("utf-8"), JSON_TYPE, mtime)

    def _absolute_assets(self, obj: dict[str, Any], ds_id: str, rel: str) -> bool:
        """Make relative asset hrefs of a STAC object absolute; whether any changed."""
        assets = obj.get("assets")
        if not isinstance(assets, dict):
            return False
        base = posixpath.dirname(rel)
        changed = False
        for asset in assets.values():
            href = asset.get("href") if isinstance(asset, dict) else None
            if isinstance(href, str) and href and is_relative_href(href):
                target = posixpath.normpath(posixpath.join(base, href))
                if not target.startswith("../"):
                    asset["href"] = f"{self.hub.storage_url}{PREFIX}{ds_id}/{target}"
                    changed = True
        return changed
