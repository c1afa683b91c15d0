"""A STAC API (``/collections``, ``/search``) as a :class:`Source`, through pystac-client.

Spatial and temporal filters go to ``/search`` (``bbox``, ``intersects``, ``datetime``,
``collections``) and pages are followed by pystac-client as the consumer reads; each item is also
checked locally with the same :class:`~mlhub_widgets.filters.AssetFilter` semantics the other
sources use (a no-op for a conforming server), so all sources select the same items.

A STAC API has collections but no datasets. Collections that share a DOI (``sci:doi``) form one
dataset named after the longest common prefix of their ids (``nasa_marine_debris_source`` +
``nasa_marine_debris_labels`` → ``nasa_marine_debris``); every other collection is a dataset of
its own, named like the collection. A collection id is accepted wherever a dataset id is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ..net.http import Credentials
from ..net.settings import NetworkSettings
from .base import JSON, Source, dataset_record

if TYPE_CHECKING:
    from pystac_client import Client

    from ..filters import AssetFilter

__all__ = ["StacApiSource", "search_params"]

DEFAULT_PAGE_SIZE = 500


def search_params(flt: AssetFilter | None) -> dict[str, Any]:
    """``/search`` keyword arguments (``bbox``/``intersects``/``datetime``) for a filter.

    A bbox across the antimeridian (``west > east``) is sent as its latitude band; the exact
    test is then done locally, as for the MLHub items endpoint.
    """
    if flt is None:
        return {}
    out: dict[str, Any] = {}
    if flt.bbox is not None:
        w, s, e, n = flt.bbox
        out["bbox"] = [-180.0, s, 180.0, n] if w > e else [w, s, e, n]
    if flt.intersects is not None:
        import shapely

        out["intersects"] = shapely.geometry.mapping(flt.intersects)
    if flt.datetime is not None:
        out["datetime"] = flt.datetime.to_stac()
    return out


def _common_prefix(ids: Sequence[str]) -> str:
    first, last = min(ids), max(ids)  # the common prefix of all is that of these two
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n].rstrip("_-. ")


class StacApiSource(Source):
    """A STAC API: collections from ``/collections``, items from ``/search``.

    Args:
        url: the API's landing page.
        headers: extra HTTP headers (e.g. ``Authorization``), sent to the API's origin only.
        method: ``"GET"`` or ``"POST"`` for ``/search`` (POST by default, as pystac-client).
        page_size: items per ``/search`` page.
        timeout: seconds without an answer before a request is retried.
        network: proxy, TLS, timeouts and retries (replaces ``timeout``).
        modifier: called on each item before a user sees it, as pystac-client's
            ``modifier`` (e.g. ``planetary_computer.sign_inplace``).
    """

    kind: ClassVar = "stac-api"
    has_tags: ClassVar[bool] = False
    server_side_filters: ClassVar[bool] = True

    def __init__(
        self,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        method: Literal["GET", "POST"] = "POST",
        page_size: int = DEFAULT_PAGE_SIZE,
        timeout: float = 60.0,
        network: NetworkSettings | None = None,
        modifier: Callable[[Any], Any] | None = None,
    ) -> None:
        from pystac_client import Client

        from .stac_api_io import NetStacApiIO

        self.url = url if url.endswith("/") else url + "/"
        self.method = method
        self.page_size = page_size
        self.network = network or NetworkSettings(read_timeout=timeout)
        self.modifier = modifier
        self._credentials = Credentials.for_url(self.url, headers=headers) if headers else None
        io = NetStacApiIO(self.network, self._credentials)
        self.client: Client = Client.open(self.url, stac_io=io)
        if not self.client.conforms_to("ITEM_SEARCH") and self.client.get_single_link("search"):
            # a /search link without the conformance class: trust the link
            self.client.add_conforms_to("ITEM_SEARCH")
        self._lock = threading.Lock()
        self._collections: list[JSON] | None = None
        self._datasets: dict[str, tuple[JSON, list[str]]] | None = None

    # -- collections and datasets --------------------------------------------------------------
    def list_collections(self, dataset_id: str | None = None) -> list[JSON]:
        """Collections from ``/collections`` (cached), all or those of one dataset."""
        with self._lock:
            cols = self._collections
        if cols is None:
            cols = [c.to_dict(transform_hrefs=False) for c in self.client.get_collections()]
            with self._lock:
                self._collections = cols
        if dataset_id is None:
            return list(cols)
        by_id = {str(c.get("id")): c for c in cols}
        groups = self._groups()
        if dataset_id in groups:
            return [by_id[cid] for cid in groups[dataset_id][1] if cid in by_id]
        if dataset_id in by_id:
            return [by_id[dataset_id]]
        raise self._missing("Dataset", dataset_id)

    def refresh(self) -> None:
        """Forget the cached collections and datasets."""
        with self._lock:
            self._collections = None
            self._datasets = None

    def _groups(self) -> dict[str, tuple[JSON, list[str]]]:
        with self._lock:
            if self._datasets is not None:
                return self._datasets
        cols = self.list_collections()
        by_doi: dict[str, list[JSON]] = {}
        order: list[tuple[str, list[JSON]]] = []
        for col in cols:
            doi = col.get("sci:doi")
            if isinstance(doi, str) and doi:
                if doi not in by_doi:
                    by_doi[doi] = []
                    order.append((doi, by_doi[doi]))
                by_doi[doi].append(col)
            else:
                order.append(("", [col]))
        out: dict[str, tuple[JSON, list[str]]] = {}
        cids = {str(c.get("id")) for c in cols}
        for _, group in order:
            ids = [str(c.get("id")) for c in group]
            name = _common_prefix(ids) if len(group) > 1 else ids[0]
            if len(group) > 1 and (len(name) < 3 or name in out or name in cids - set(ids)):
                parts = [[c] for c in group]  # no sensible shared name: one dataset each
            else:
                parts = [group]
            for part in parts:
                pid = name if len(part) > 1 else str(part[0].get("id"))
                rec = dataset_record(pid, part)
                rec["license"] = part[0].get("license")
                out[pid] = (rec, [str(c.get("id")) for c in part])
        with self._lock:
            self._datasets = out
        return out

    def list_datasets(self) -> list[JSON]:
        """Datasets: collections grouped by DOI (see the module docstring)."""
        return [dict(rec) for rec, _ in self._groups().values()]

    def get_dataset(self, dataset_id: str) -> JSON:
        """A dataset by id, or a one-collection dataset by collection id."""
        hit = self._groups().get(dataset_id)
        if hit is not None:
            return dict(hit[0])
        for col in self.list_collections():
            if col.get("id") == dataset_id:
                return dataset_record(dataset_id, [col])
        raise self._missing("Dataset", dataset_id)

    def get_collection(self, collection_id: str) -> JSON:
        """One collection by id."""
        for col in self.list_collections():
            if col.get("id") == collection_id:
                return col
        raise self._missing("Collection", collection_id)

    # -- items ---------------------------------------------------------------------------------
    def iter_items(
        self,
        collection_ids: str | Sequence[str],
        flt: AssetFilter | None = None,
        *,
        limit: int | None = None,
    ) -> Iterator[JSON]:
        """``/search`` over the collections with the filter's bbox/intersects/datetime; pages
        are fetched as the consumer reads."""
        ids = [collection_ids] if isinstance(collection_ids, str) else list(collection_ids)
        known = {str(c.get("id")) for c in self.list_collections()}
        for cid in ids:
            if cid not in known:
                raise self._missing("Collection", cid)
        if not ids:
            return
        accept = None
        if flt is not None and not (
            flt.bbox is None and flt.intersects is None and flt.datetime is None
        ):
            accept = flt.item_matches
        size = self.page_size if limit is None else max(1, min(self.page_size, limit))
        search = self.client.search(
            method=self.method,
            collections=ids,
            limit=size,
            max_items=None,
            **search_params(flt),
        )
        left = limit
        for item in search.items_as_dicts():
            if accept is not None and not accept(item):
                continue
            yield item
            if left is not None:
                left -= 1
                if left <= 0:
                    return

    def credentials(self) -> list[Credentials]:
        """The API's headers, for its own origin only."""
        return [self._credentials] if self._credentials is not None else []
