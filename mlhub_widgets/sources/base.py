"""The :class:`Source` protocol: what discovery, the download engine and the explorer need.

A source lists *datasets* (records shaped like the MLHub ``/datasets`` ones), lists STAC
*collections*, iterates STAC *items* with spatial/temporal filters (server-side where the source
can, client-side otherwise) and streams a whole dataset as :class:`DatasetEntry` objects so the
download engine can index it without a catalogue tarball. Every item and collection is a plain
JSON ``dict`` (no pystac objects cross this boundary); asset hrefs are absolute.
"""

from __future__ import annotations

import functools
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self, TypeAlias

from ..exceptions import EntityDoesNotExist
from ..net.http import Credentials
from ..net.settings import NetworkSettings

if TYPE_CHECKING:
    from ..filters import AssetFilter

__all__ = [
    "JSON",
    "DatasetEntry",
    "Source",
    "SourceKind",
    "SourceLike",
    "collection_types",
    "dataset_record",
    "matches_search",
]

JSON = dict[str, Any]
SourceKind = Literal["mlhub", "static", "stac-api"]
EntryKind = Literal["catalog", "collection", "item"]

#: Keys of an MLHub dataset record (``/datasets``); sources fill the ones they know. Also in
#: hub/store.py: the hub and the client import nothing from each other (the API's record).
DATASET_KEYS = (
    "id",
    "bbox",
    "citation",
    "collections",
    "creator_contact",
    "date_added",
    "date_modified",
    "description",
    "documentation_link",
    "doi",
    "publications",
    "registry",
    "status",
    "tags",
    "title",
    "tools_applications",
    "tutorials",
)


@dataclass(frozen=True, slots=True)
class DatasetEntry:
    """One JSON document of a dataset, as :meth:`Source.iter_dataset` streams it.

    Shaped like :class:`mlhub_widgets.download.catalog_archive.CatalogEntry` (``kind``, ``name``,
    ``path``, ``data``, ``size``) so the download engine consumes both the same way.

    Attributes:
        kind: ``"catalog"`` (once, first), ``"collection"`` (before its items) or ``"item"``.
        name: the document's path in the MLHub catalogue layout:
            ``<dataset>/catalog.json``, ``<dataset>/<collection>/collection.json``,
            ``<dataset>/<collection>/<item>/<item>.json``.
        data: the parsed document; items carry their ``collection`` id and absolute hrefs.
        href: where the document was read from (URL or file path), if known.
    """

    kind: EntryKind
    name: str
    data: JSON
    href: str | None = None
    path: None = None
    size: int = 0


_LABEL_EXT = re.compile(r"/label/", re.IGNORECASE)


def collection_types(collection: Mapping[str, Any]) -> list[str]:
    """``["labels"]`` for a label collection (id or ``label`` extension), else
    ``["source_imagery"]`` — the MLHub record's collection types, guessed from STAC."""
    cid = str(collection.get("id", "")).lower()
    exts = [str(e) for e in collection.get("stac_extensions") or ()]
    if "label" in cid or any(_LABEL_EXT.search(e) or e == "label" for e in exts):
        return ["labels"]
    summaries = collection.get("summaries")
    if isinstance(summaries, Mapping) and any(str(k).startswith("label:") for k in summaries):
        return ["labels"]
    return ["source_imagery"]


def _bbox_polygon(box: Sequence[float]) -> list[list[list[float]]]:
    vals = [float(v) for v in box]
    if len(vals) == 6:
        vals = [vals[0], vals[1], vals[3], vals[4]]
    w, s, e, n = vals
    return [[[w, s], [w, n], [e, n], [e, s], [w, s]]]


def dataset_record(
    dataset_id: str,
    collections: Sequence[Mapping[str, Any]],
    *,
    title: str | None = None,
    description: str | None = None,
    keywords: Iterable[str] = (),
    tags: Iterable[str] = (),
) -> JSON:
    """An MLHub-style dataset record built from STAC collections (and their catalogue).

    ``collections`` carry ``id``, ``types``, ``license``; ``bbox`` is the MultiPolygon of the
    collections' spatial extents; DOI and citation come from ``sci:*`` when all collections
    agree. ``keywords`` is the union of the catalogue's and the collections' keywords.
    """
    rec: JSON = {k: None for k in DATASET_KEYS}
    boxes: list[list[list[list[float]]]] = []
    kw: list[str] = [k for k in keywords if isinstance(k, str)]
    dois: set[str] = set()
    citations: set[str] = set()
    listed = []
    for col in collections:
        listed.append(
            {
                "id": str(col.get("id")),
                "types": collection_types(col),
                "license": col.get("license"),
            }
        )
        try:
            for box in col["extent"]["spatial"]["bbox"][:1]:
                if isinstance(box, Sequence) and len(box) in (4, 6):
                    boxes.append(_bbox_polygon([float(v) for v in box]))
        except (KeyError, TypeError, IndexError, ValueError):
            pass
        for k in col.get("keywords") or ():
            if isinstance(k, str) and k not in kw:
                kw.append(k)
        if isinstance(col.get("sci:doi"), str):
            dois.add(col["sci:doi"])
        if isinstance(col.get("sci:citation"), str):
            citations.add(col["sci:citation"])
    first = collections[0] if collections else {}
    rec.update(
        {
            "id": dataset_id,
            "title": title or first.get("title") or description or dataset_id,
            "description": description or first.get("description"),
            "collections": listed,
            "tags": [t for t in tags if isinstance(t, str)],
            "keywords": kw,
            "status": "ready",
            "doi": dois.pop() if len(dois) == 1 else None,
            "citation": citations.pop() if len(citations) == 1 else None,
            "bbox": {"type": "MultiPolygon", "coordinates": boxes} if boxes else None,
        }
    )
    return rec


def matches_search(
    record: Mapping[str, Any], tags: Sequence[str] | None, texts: Sequence[str] | None
) -> bool:
    """MLHub ``/datasets`` search semantics, client-side: **all** ``tags`` (ignoring case,
    matched against tags and keywords) and **any** of ``texts`` (case-insensitive substring of
    id, title, description, citation, DOI, tags or keywords)."""
    have = {str(t) for t in (record.get("tags") or ())} | {
        str(k) for k in (record.get("keywords") or ())
    }
    folded = {h.casefold() for h in have}
    if tags and any(t.casefold() not in folded for t in tags):
        return False
    wanted = [t.lower() for t in texts or () if t.strip()]
    if not wanted:
        return True
    haystack = "\n".join(
        str(v)
        for v in (
            record.get("id"),
            record.get("title"),
            record.get("description"),
            record.get("citation"),
            record.get("doi"),
            *have,
        )
        if v
    ).lower()
    return any(t in haystack for t in wanted)


def sign_href(modifier: Callable[[Any], Any], href: str) -> str:
    """``href`` signed by a pystac-client ``modifier``: the modifier is called on a minimal
    item holding the href as its only asset (in place, or returning a new item)."""
    item: JSON = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "asset",
        "geometry": None,
        "properties": {},
        "links": [],
        "assets": {"asset": {"href": href}},
    }
    result = modifier(item)
    signed = result if isinstance(result, dict) else item
    new = signed.get("assets", {}).get("asset", {}).get("href")
    return new if isinstance(new, str) and new else href


class Source(ABC):
    """Where datasets, collections and items come from.

    Implementations: :class:`~mlhub_widgets.sources.MLHubApiSource` (the MLHub API),
    :class:`~mlhub_widgets.sources.StaticCatalogSource` (a static STAC catalogue, folder or
    URL) and :class:`~mlhub_widgets.sources.StacApiSource` (a STAC API with ``/search``).
    Open one with :func:`mlhub_widgets.open_source`. Sources are thread-safe for reading and
    usable as context managers (:meth:`close` releases connections and threads).
    """

    #: ``"mlhub"``, ``"static"`` or ``"stac-api"``.
    kind: ClassVar[SourceKind]
    #: Whether datasets carry curated tags (else the explorer offers a keyword filter).
    has_tags: ClassVar[bool] = False
    #: Whether bbox/intersects/datetime are applied by the server.
    server_side_filters: ClassVar[bool] = False

    url: str
    #: proxy, TLS, timeouts and retries of every request made for this source, assets included
    network: NetworkSettings = NetworkSettings()
    #: options of the object stores (``s3://``, ``gs://``, ``az://``) its documents and assets
    #: are read from: credentials, endpoint, ``skip_signature``... (see
    #: :mod:`mlhub_widgets.net.objects`)
    storage_options: Mapping[str, Any] = MappingProxyType({})
    #: called on each item (and collection) dict before a user sees it, in place, as
    #: pystac-client's ``modifier`` (e.g. ``planetary_computer.sign_inplace``); the download
    #: engine calls it for each asset right before fetching it (:meth:`signer`)
    modifier: Callable[[Any], Any] | None = None

    # -- network -------------------------------------------------------------------------------
    def credentials(self) -> list[Credentials]:
        """What may be sent with requests for this source's documents and assets, per origin
        (headers given to :func:`~mlhub_widgets.open_source` go to the source's origin only)."""
        return []

    def modified(self, obj: JSON) -> JSON:
        """``obj`` after :attr:`modifier` (which changes it in place, or returns a new one)."""
        if self.modifier is None:
            return obj
        result = self.modifier(obj)
        return result if isinstance(result, dict) else obj

    def signer(self) -> Callable[[str], str] | None:
        """A function giving a freshly signed form of one asset href, or None when this source
        has no :attr:`modifier`. The download engine calls it before each request for an asset
        and once more when a signed URL is refused (401/403) or has expired. It holds only the
        modifier, so it pickles (to Dask workers) whenever the modifier does."""
        if self.modifier is None:
            return None
        return functools.partial(sign_href, self.modifier)

    # -- datasets ------------------------------------------------------------------------------
    @abstractmethod
    def list_datasets(self) -> list[JSON]:
        """Every dataset as an MLHub-style record: ``id``, ``title``, ``description``,
        ``tags``, ``keywords``, ``bbox`` (geometry), ``collections`` (``types``, ``license``)."""

    def search_datasets(
        self, tags: Sequence[str] | None = None, text: Sequence[str] | None = None
    ) -> list[JSON]:
        """Datasets with **all** ``tags`` (or keywords) and **any** ``text`` phrase."""
        return [r for r in self.list_datasets() if matches_search(r, tags, text)]

    def get_dataset(self, dataset_id: str) -> JSON:
        """One dataset record by id (a collection id names a one-collection dataset).

        Raises:
            EntityDoesNotExist: no such dataset.
        """
        for rec in self.list_datasets():
            if rec.get("id") == dataset_id:
                return rec
        for col in self.list_collections():
            if col.get("id") == dataset_id:
                return dataset_record(dataset_id, [col])
        raise self._missing("Dataset", dataset_id)

    # -- collections ---------------------------------------------------------------------------
    @abstractmethod
    def list_collections(self, dataset_id: str | None = None) -> list[JSON]:
        """STAC Collection JSON objects: all of them, or those of one dataset (in its order)."""

    def get_collection(self, collection_id: str) -> JSON:
        """One collection by id.

        Raises:
            EntityDoesNotExist: no such collection.
        """
        for col in self.list_collections():
            if col.get("id") == collection_id:
                return col
        raise self._missing("Collection", collection_id)

    def dataset_collection_ids(self, dataset_id: str) -> list[str]:
        """Ids of the collections of a dataset, in the record's order."""
        rec = self.get_dataset(dataset_id)
        return [str(c["id"]) for c in rec.get("collections") or () if isinstance(c, Mapping)]

    # -- items ---------------------------------------------------------------------------------
    @abstractmethod
    def iter_items(
        self,
        collection_ids: str | Sequence[str],
        flt: AssetFilter | None = None,
        *,
        limit: int | None = None,
    ) -> Iterator[JSON]:
        """Stream the items of one or more collections that pass ``flt`` (its spatial and
        temporal part; server-side when :attr:`server_side_filters`), at most ``limit``.

        Items are yielded as they arrive, with bounded memory; each has ``collection`` set.
        """

    def iter_dataset(
        self, dataset_id: str, flt: AssetFilter | None = None
    ) -> Iterator[DatasetEntry]:
        """Stream a dataset for the download engine: one ``catalog`` entry, then for each
        collection its ``collection`` entry followed by its items.

        With ``flt``, sources that filter on the server only return matching items; the others
        return every item (the engine filters them and keeps the rest in its index).
        """
        rec = self.get_dataset(dataset_id)
        cids = [str(c["id"]) for c in rec.get("collections") or () if isinstance(c, Mapping)]
        catalog: JSON = {
            "type": "Catalog",
            "id": dataset_id,
            "stac_version": "1.0.0",
            "title": rec.get("title"),
            "description": rec.get("description") or rec.get("title") or dataset_id,
            "links": [],
        }
        yield DatasetEntry("catalog", f"{dataset_id}/catalog.json", catalog, self.url)
        wanted = flt if self.server_side_filters else None
        for col in self.list_collections(dataset_id):
            cid = str(col.get("id"))
            if cid not in cids:
                continue
            yield DatasetEntry("collection", f"{dataset_id}/{cid}/collection.json", col)
            for item in self.iter_items([cid], wanted):
                iid = str(item.get("id"))
                yield DatasetEntry("item", f"{dataset_id}/{cid}/{iid}/{iid}.json", item)

    # -- misc ----------------------------------------------------------------------------------
    def describe(self) -> str:
        """A one-line description for people (``"static STAC catalogue at …"``)."""
        names = {"mlhub": "MLHub API", "static": "static STAC catalogue", "stac-api": "STAC API"}
        return f"{names[self.kind]} at {self.url}"

    def fingerprint(self, flt: AssetFilter | None = None) -> str:
        """Identifies what :meth:`iter_dataset` returns (source and server-side filters), so a
        stored download index is reused only for the same source and filters."""
        parts = [self.kind, self.url]
        if flt is not None and self.server_side_filters:
            parts.append(repr(sorted(flt.to_query_params().items())))
        return "|".join(parts)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and worker threads (the source stays usable: they reopen)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"

    def _missing(self, what: str, ident: str) -> EntityDoesNotExist:
        return EntityDoesNotExist(
            404,
            "GET",
            self.url,
            None,
            message=f"{what} '{ident}' does not exist in the {self.describe()}.",
        )


SourceLike: TypeAlias = Source | str | os.PathLike[str]
"""A :class:`Source`, or the URL or path :func:`~mlhub_widgets.open_source` opens."""
