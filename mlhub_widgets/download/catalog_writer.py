"""A local copy of a streamed dataset, in the MLHub catalogue layout.

When the download engine indexes a dataset from a :class:`~mlhub_widgets.sources.Source` (no
tarball), it writes what streams by as a self-contained static catalogue, laid out as an unpacked
MLHub catalogue archive::

    {output_dir}/{dataset}/catalog.json
    {output_dir}/{dataset}/{collection}/collection.json
    {output_dir}/{dataset}/{collection}/{item}/{item}.json

Structural links (root, parent, collection, self, child, item) are relative; other links stay
absolute (they point at the source). Given the folder the assets are saved to, asset hrefs point
at the files there, the source's href kept as the alternate, exactly as
:func:`~.local_catalog.localize_catalog` would rewrite them (which then has nothing to do);
without it they stay absolute. Path components go through
:func:`mlhub_widgets.download.paths.safe_component`, so no id can escape the folder. Collections are
written when their items are done and the catalogue last, so a complete ``catalog.json`` means
a complete copy. Files are written by a helper thread behind a bounded queue (creating a folder
per item is slow on some file systems; the walk does not wait for it).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..sources.base import JSON, DatasetEntry
from .local_catalog import encode_json, localized_copy
from .paths import safe_component

__all__ = ["LocalCatalogWriter"]

#: Files handed to the helper thread at once.
_BATCH = 64

_STRUCTURAL = frozenset({"root", "parent", "collection", "self", "child", "item"})


def _other_links(doc: Mapping[str, Any]) -> list[JSON]:
    return [
        dict(link)
        for link in doc.get("links") or ()
        if isinstance(link, Mapping) and link.get("rel") not in _STRUCTURAL
    ]


def _link(rel: str, href: str) -> JSON:
    return {"rel": rel, "href": href, "type": "application/json"}


class LocalCatalogWriter:
    """Writes :class:`DatasetEntry` objects under ``output_dir`` (see the module docstring).

    Args:
        output_dir: the download's catalogue folder parent (``{output_dir}``).
        dataset_id: the dataset (its folder name).
        asset_dir: where the assets are saved (``{asset_dir}/{dataset}``), or None to keep the
            source's asset hrefs.
    """

    def __init__(self, output_dir: Path, dataset_id: str, asset_dir: Path | None = None) -> None:
        self.output_dir = Path(output_dir)
        self.dataset_id = dataset_id
        self.asset_dir = None if asset_dir is None else os.fspath(asset_dir)
        self.root = self.output_dir / safe_component(dataset_id)
        # batches of files: one wake-up of the helper thread per batch, not per file
        self._queue: queue.Queue[list[tuple[Path, bytes]] | None] = queue.Queue(maxsize=32)
        self._batch: list[tuple[Path, bytes]] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="mlhub-catalog-copy", daemon=True)
        self._thread.start()
        self.catalog: JSON | None = None
        self.children: list[str] = []
        self._collection: tuple[str, JSON] | None = None
        self._items: list[str] = []

    @property
    def catalog_name(self) -> str:
        """The catalogue's path relative to ``output_dir``."""
        return f"{self.root.name}/catalog.json"

    def add(self, entry: DatasetEntry) -> None:
        """Write (or remember, for catalogues and collections) one entry."""
        if entry.kind == "catalog":
            self.catalog = dict(entry.data)
        elif entry.kind == "collection":
            self._end_collection()
            cid = safe_component(str(entry.data.get("id")))
            self._collection = (cid, dict(entry.data))
            self._items = []
        elif entry.kind == "item":
            self._item(entry.data)

    def _item(self, item: JSON) -> None:
        iid = safe_component(str(item.get("id")))
        cid = self._collection[0] if self._collection is not None else None
        if cid is None:
            cid = safe_component(str(item.get("collection") or "items"))
        out = {k: v for k, v in item.items() if k != "links"}
        out["links"] = [
            _link("root", "../../catalog.json"),
            _link("collection", "../collection.json"),
            _link("parent", "../collection.json"),
            _link("self", f"{iid}.json"),
            *_other_links(item),
        ]
        self._write(self.root / cid / iid / f"{iid}.json", out)
        self._items.append(iid)

    def _end_collection(self) -> None:
        if self._collection is None:
            return
        cid, col = self._collection
        out = {k: v for k, v in col.items() if k != "links"}
        out["links"] = [
            _link("root", "../catalog.json"),
            _link("parent", "../catalog.json"),
            *(_link("item", f"{iid}/{iid}.json") for iid in self._items),
            _link("self", "collection.json"),
            *_other_links(col),
        ]
        self._write(self.root / cid / "collection.json", out)
        self.children.append(cid)
        self._collection = None
        self._items = []

    def close(self) -> Path:
        """Write the last collection and the catalogue; returns the catalogue's path.

        Raises:
            OSError: a file could not be written.
        """
        self._end_collection()
        self._flush()
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        cat = dict(self.catalog or {"type": "Catalog", "id": self.root.name, "description": ""})
        cat.setdefault("stac_version", "1.0.0")
        cat["links"] = [
            _link("root", "catalog.json"),
            *(_link("child", f"{cid}/collection.json") for cid in self.children),
            _link("self", "catalog.json"),
            *_other_links(cat),
        ]
        path = self.root / "catalog.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")  # last and atomic: it marks a complete copy
        tmp.write_bytes(encode_json(cat))
        os.replace(tmp, path)
        return path

    def abort(self) -> None:
        """Stop the helper thread without writing the catalogue (no-op after :meth:`close`)."""
        if self._thread.is_alive():
            self._error = self._error or OSError("the local catalogue copy was abandoned")
            self._queue.put(None)
            self._thread.join()

    def _write(self, path: Path, doc: JSON) -> None:
        if self._error is not None:
            raise self._error
        if self.asset_dir is not None:
            # a copy: the asset dicts are shared with the index (which needs the source's hrefs)
            local = localized_copy(doc, str(path), self.output_dir, self.asset_dir, self.dataset_id)
            doc = doc if local is None else local
        self._batch.append((path, encode_json(doc)))
        if len(self._batch) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._batch:
            self._queue.put(self._batch)
            self._batch = []

    def _drain(self) -> None:
        made: set[Path] = set()
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            for path, data in batch:
                if self._error is not None:
                    break
                try:
                    if path.parent not in made:
                        os.makedirs(path.parent, exist_ok=True)
                        made.add(path.parent)
                    with open(path, "wb") as fh:
                        fh.write(data)
                except OSError as exc:
                    self._error = exc
