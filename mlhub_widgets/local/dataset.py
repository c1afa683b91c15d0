"""A downloaded dataset, ready for training: :func:`open_local` and :class:`LocalDataset`.

``mlhub download`` leaves a self-contained STAC catalogue under ``{output_dir}/{dataset}/``
whose asset hrefs point at the downloaded files (:mod:`mlhub_widgets.download.local_catalog`).
:class:`LocalDataset` reads it once (a walk of its JSON documents through the child and item
links, via :mod:`.storage`) and answers the questions asked before every training loop:

* :attr:`LocalDataset.catalog` — the catalogue as pystac objects, asset hrefs absolute paths;
* :meth:`LocalDataset.items` — every asset with its local path and whether the file is there;
* :meth:`LocalDataset.pairs` — one row per label item with its source items, resolved through
  the label extension's ``source`` links, and the local files of both;
* :meth:`LocalDataset.to_xarray` — a lazy cube of raster assets through odc-stac
  (:mod:`.cube`).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd
import pystac

from ..discovery.frames import CRS, geometries, timestamps
from ..types import BBoxLike, DatetimeLike
from . import storage

if TYPE_CHECKING:
    import xarray

__all__ = ["ASSET_COLUMNS", "PAIR_COLUMNS", "LocalDataset", "open_local"]

log = logging.getLogger(__name__)

JSON = dict[str, Any]

#: Columns of :meth:`LocalDataset.items` (``geometry`` last).
ASSET_COLUMNS = [
    "collection",
    "item",
    "asset",
    "path",
    "present",
    "href",
    "type",
    "roles",
    "title",
    "datetime",
    "start_datetime",
    "end_datetime",
    "geometry",
]
#: Columns of :meth:`LocalDataset.pairs` (``geometry`` last).
PAIR_COLUMNS = [
    "collection",
    "id",
    "datetime",
    "start_datetime",
    "end_datetime",
    "label_assets",
    "source_ids",
    "source_collections",
    "source_datetimes",
    "source_assets",
    "missing_assets",
    "unresolved_sources",
    "geometry",
]
_API_ITEM = re.compile(r"/collections/([^/]+)/items/([^/?#]+)/?$")


@dataclass(frozen=True)
class Document:
    """One item or collection of the catalogue: the file it was read from and its JSON."""

    href: str
    doc: JSON
    collection: str

    @property
    def id(self) -> str:
        """The document's ``id``."""
        return str(self.doc.get("id"))

    def properties(self) -> Mapping[str, Any]:
        """The item's ``properties`` ({} for a collection)."""
        props = self.doc.get("properties")
        return props if isinstance(props, Mapping) else {}

    def assets(self) -> Iterator[tuple[str, JSON, str]]:
        """``(key, asset, resolved href)`` of each asset with an ``href``."""
        for key, asset in (self.doc.get("assets") or {}).items():
            if isinstance(asset, dict) and isinstance(asset.get("href"), str):
                yield str(key), asset, storage.join(self.href, asset["href"])

    def is_label(self) -> bool:
        """Whether the item declares the label extension (or has ``label:`` properties)."""
        if any("/label/" in str(e) for e in self.doc.get("stac_extensions") or ()):
            return True
        return "label:type" in self.properties()

    def links(self, rel: str) -> list[str]:
        """The hrefs of the document's links of relation ``rel``."""
        return [
            str(link["href"])
            for link in self.doc.get("links") or ()
            if isinstance(link, Mapping) and link.get("rel") == rel and link.get("href")
        ]


def open_local(path: str | os.PathLike[str]) -> LocalDataset:
    """Open a downloaded dataset: the folder ``mlhub download`` wrote (``{output_dir}/{dataset}``)
    or its ``catalog.json``.

    Raises:
        FileNotFoundError: no catalogue there. ValueError: not a local path: an object-storage
            prefix (``s3://``...) is not read; copy it to a folder first (``mlhub sync``).
    """
    return LocalDataset(storage.normalise_root(path))


class LocalDataset:
    """A dataset on disk, read from its local STAC catalogue (see the module docstring).

    Create it with :func:`open_local`. Documents the catalogue links to but that cannot be read
    (a file deleted since, a link off this machine) are listed in :attr:`unreadable` and
    logged, not silently dropped.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self.unreadable: list[str] = []
        self._catalog_doc = json.loads(storage.read_bytes(root))
        self._collections: dict[str, Document] = {}
        self._items: list[Document] = []
        self._walk()

    # -- reading ---------------------------------------------------------------------------
    def _read(self, href: str) -> JSON | None:
        try:
            doc = json.loads(storage.read_bytes(href))
        except (OSError, ValueError) as exc:
            log.warning("%s: cannot read %s (%s)", self.root, href, exc)
            self.unreadable.append(href)
            return None
        return doc if isinstance(doc, dict) else None

    def _walk(self) -> None:
        todo: list[tuple[str, JSON, str | None]] = [(self.root, self._catalog_doc, None)]
        seen = {self.root}
        while todo:
            href, doc, parent_collection = todo.pop(0)
            owner = parent_collection
            if doc.get("type") == "Collection":
                owner = str(doc.get("id"))
                self._collections[owner] = Document(href, doc, owner)
            for rel in ("child", "item"):
                for link in Document(href, doc, owner or "").links(rel):
                    target = storage.join(href, link)
                    if target in seen:
                        continue
                    seen.add(target)
                    if storage.is_remote(target):
                        log.warning("%s: %s link %s is not local; skipped", self.root, rel, link)
                        self.unreadable.append(target)
                        continue
                    child = self._read(target)
                    if child is None:
                        continue
                    if rel == "child":
                        todo.append((target, child, owner))
                    else:
                        cid = child.get("collection")
                        cid = cid if isinstance(cid, str) and cid else owner or self.id
                        self._items.append(Document(target, child, cid))

    @property
    def id(self) -> str:
        """The catalogue's id (the dataset)."""
        return str(self._catalog_doc.get("id"))

    @property
    def title(self) -> str | None:
        """The catalogue's title."""
        title = self._catalog_doc.get("title")
        return title if isinstance(title, str) else None

    @property
    def collections(self) -> list[str]:
        """The ids of the catalogue's collections, in link order."""
        return list(self._collections)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return (
            f"LocalDataset({self.id!r}, {len(self._collections)} collections, "
            f"{len(self._items)} items, root={self.root!r})"
        )

    def documents(self, collection: str | None = None) -> list[Document]:
        """The items read from the catalogue (of one collection), in walk order.

        Raises:
            KeyError: ``collection`` is not in the catalogue.
        """
        if collection is None:
            return list(self._items)
        self._check_collection(collection)
        return [d for d in self._items if d.collection == collection]

    def _check_collection(self, collection: str) -> None:
        known = {d.collection for d in self._items} | set(self._collections)
        if collection not in known:
            raise KeyError(
                f"collection {collection!r} is not in {self.id}; it has: {', '.join(sorted(known))}"
            )

    # -- pystac ----------------------------------------------------------------------------
    @functools.cached_property
    def catalog(self) -> pystac.Catalog:
        """The catalogue as pystac objects (every item read), asset hrefs absolute local paths.

        Read through :class:`.storage.DatasetStacIO`: nothing is fetched from the network.
        """
        catalog = pystac.Catalog.from_file(self.root, stac_io=storage.DatasetStacIO())
        catalog.make_all_asset_hrefs_absolute()
        return catalog

    def stac_items(self, collection: str | None = None) -> list[pystac.Item]:
        """The items (of one collection) as :class:`pystac.Item` objects with absolute local
        asset hrefs, read from the documents (no second pass over the files)."""
        out = []
        for d in self.documents(collection):
            item = pystac.Item.from_dict(d.doc, href=d.href, migrate=False, preserve_dict=True)
            item.make_asset_hrefs_absolute()
            out.append(item)
        return out

    # -- frames ----------------------------------------------------------------------------
    def items(self, collection: str | None = None) -> gpd.GeoDataFrame:
        """Every asset of the items (of one collection) and of the collections: one row each.

        Returns:
            Columns ``collection, item`` (None for a collection's own asset), ``asset`` (the
            key), ``path`` (the local file, None when the href is remote), ``present`` (the file
            is on disk), ``href`` (as resolved), ``type, roles, title``, the item's
            ``datetime, start_datetime, end_datetime`` (UTC) and ``geometry`` (EPSG:4326).
        """
        docs = self.documents(collection)
        owners = [self._collections[c] for c in self._collections if collection in (None, c)]
        rows: dict[str, list[Any]] = {c: [] for c in ASSET_COLUMNS}
        for d in [*owners, *docs]:
            is_item = d.doc.get("type") == "Feature"
            props = d.properties()
            for key, asset, href in d.assets():
                path = None if storage.is_remote(href) else str(storage.local_path(href))
                rows["collection"].append(d.collection)
                rows["item"].append(d.id if is_item else None)
                rows["asset"].append(key)
                rows["path"].append(path)
                rows["present"].append(path is not None and storage.exists(path))
                rows["href"].append(href)
                rows["type"].append(asset.get("type"))
                rows["roles"].append(list(asset.get("roles") or []))
                rows["title"].append(asset.get("title"))
                rows["datetime"].append(props.get("datetime"))
                rows["start_datetime"].append(props.get("start_datetime"))
                rows["end_datetime"].append(props.get("end_datetime"))
                rows["geometry"].append(d.doc.get("geometry") if is_item else None)
        return _frame(rows)

    def _source_index(self) -> tuple[dict[str, Document], dict[tuple[str, str], Document]]:
        by_path = {os.path.normcase(d.href): d for d in self._items}
        by_id = {(d.collection, d.id): d for d in self._items}
        return by_path, by_id

    def _resolve_source(
        self,
        label: Document,
        href: str,
        by_path: Mapping[str, Document],
        by_id: Mapping[tuple[str, str], Document],
    ) -> Document | None:
        """The item a ``source`` link points at: by file, else by ``collections/{c}/items/{i}``
        in a URL (a catalogue written from a STAC API keeps API links)."""
        target = storage.join(label.href, href)
        if not storage.is_remote(target):
            return by_path.get(os.path.normcase(target))
        m = _API_ITEM.search(target)
        if m:
            return by_id.get((m.group(1), m.group(2)))
        return None

    def pairs(self, collection: str | None = None) -> gpd.GeoDataFrame:
        """One row per label item (of one collection) with its source items and local files.

        Sources are the items the label extension's ``source`` links point at, in link order.

        Returns:
            Columns ``collection, id, datetime, start_datetime, end_datetime`` (of the label
            item, UTC), ``label_assets`` (asset key → local path, files on disk only),
            ``source_ids``, ``source_collections``, ``source_datetimes`` (lists, one entry per
            source item), ``source_assets`` (a list of asset key → local path, files on disk
            only), ``missing_assets`` (``"item/key"`` of the label's and sources' assets whose
            file is not on disk), ``unresolved_sources`` (``source`` hrefs that are not items
            of this catalogue) and ``geometry`` (the label item's, EPSG:4326).
        """
        by_path, by_id = self._source_index()
        rows: dict[str, list[Any]] = {c: [] for c in PAIR_COLUMNS}
        for label in self.documents(collection):
            if not label.is_label():
                continue
            missing: list[str] = []
            sources: list[Document] = []
            unresolved: list[str] = []
            for href in label.links("source"):
                found = self._resolve_source(label, href, by_path, by_id)
                if found is None:
                    unresolved.append(href)
                else:
                    sources.append(found)
            props = label.properties()
            rows["collection"].append(label.collection)
            rows["id"].append(label.id)
            rows["datetime"].append(props.get("datetime"))
            rows["start_datetime"].append(props.get("start_datetime"))
            rows["end_datetime"].append(props.get("end_datetime"))
            rows["label_assets"].append(_present_files(label, missing))
            rows["source_ids"].append([s.id for s in sources])
            rows["source_collections"].append([s.collection for s in sources])
            rows["source_datetimes"].append(
                list(timestamps([s.properties().get("datetime") for s in sources]))
            )
            rows["source_assets"].append([_present_files(s, missing) for s in sources])
            rows["missing_assets"].append(missing)
            rows["unresolved_sources"].append(unresolved)
            rows["geometry"].append(label.doc.get("geometry"))
        return _frame(rows)

    # -- arrays ----------------------------------------------------------------------------
    def to_xarray(
        self,
        collection: str,
        assets: str | Sequence[str] | None = None,
        *,
        bbox: BBoxLike | None = None,
        datetime: DatetimeLike = None,
        **load_kwargs: Any,
    ) -> xarray.Dataset:
        """A lazy (dask) cube of a collection's raster assets, through ``odc.stac.load``.

        See :func:`mlhub_widgets.local.cube.load_cube` (needs the ``xarray`` extra).
        """
        from .cube import load_cube

        return load_cube(
            self.stac_items(collection),
            collection,
            assets,
            bbox=bbox,
            datetime=datetime,
            **load_kwargs,
        )


def _present_files(doc: Document, missing: list[str]) -> dict[str, str]:
    """Asset key → local path of the document's assets whose file is on disk; the others are
    added to ``missing`` as ``"item/key"``."""
    out: dict[str, str] = {}
    for key, _asset, href in doc.assets():
        if storage.exists(href):
            out[key] = str(storage.local_path(href))
        else:
            missing.append(f"{doc.id}/{key}")
    return out


def _frame(rows: Mapping[str, list[Any]]) -> gpd.GeoDataFrame:
    cols: dict[str, Any] = {}
    for name, values in rows.items():
        if name == "geometry":
            continue
        if name in ("datetime", "start_datetime", "end_datetime"):
            cols[name] = timestamps(values)
        elif name in ("collection", "item", "id", "asset", "path", "href", "type", "title"):
            cols[name] = pd.Series(values, dtype=object if name in ("item", "path") else "str")
        elif name == "present":
            cols[name] = pd.Series(values, dtype=bool)
        else:
            cols[name] = pd.Series(values, dtype=object)
    cols["geometry"] = gpd.GeoSeries(geometries(rows["geometry"]), crs=CRS)
    return gpd.GeoDataFrame(cols, geometry="geometry", crs=CRS)
