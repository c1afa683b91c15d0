"""The API origin: MLHub's JSON endpoints under ``/mlhub/v1/``, a STAC API 1.0.0.

Shapes, status codes and error texts follow the recorded responses of the real API (see
``shared/fixtures/mlhub-api``): bare arrays for ``/datasets`` and ``/models``, an object for
``/collections``, GeoJSON FeatureCollections with ``context`` and ``next``/``previous`` links for
items, 303 redirects to the storage origin for catalogue and archive downloads, and FastAPI-style
``{"detail": ...}`` errors. The caller's key is never echoed into a link. Where the recorded
shape breaks STAC API or OGC API - Features the hub follows the standards (docs/stac-api.md):
item lists and items are ``application/geo+json``, an items page's ``self`` link is the page,
malformed parameters answer 400 ``{"code", "description"}``, and the landing page links the
OpenAPI description (:mod:`.openapi`).
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import numpy as np

from .errors import HTTPError
from .http import Request, Response
from .items import ItemSource
from .openapi import OPENAPI_TYPE, openapi_document, service_doc_html
from .search import (
    DEFAULT_LIMIT,
    MatchCache,
    SearchQuery,
    find_matches,
    limit_of,
    parse_bbox,
    parse_interval,
    query_from_get,
    query_from_post,
)
from .storage import Blob
from .store import API_PLACEHOLDER, JSON, NO_COLLECTIONS_REASON, Store
from .synth import Body

__all__ = ["CONFORMANCE", "NO_KEY_DETAIL", "ApiHub", "ApiRoutes", "HTTPError"]


class ApiHub(Protocol):
    """What the API routes need from the :class:`~.server.Hub` they serve (the hub's server
    module imports this one, so the routes name what they use instead of importing the hub)."""

    @property
    def store(self) -> Store: ...
    @property
    def url(self) -> str: ...
    @property
    def storage_url(self) -> str: ...
    @property
    def require_key(self) -> str | None: ...
    def rewrite(self, text: str) -> str: ...
    async def catalog_blob_async(self, ds_id: str) -> Blob: ...
    async def estimated_size_async(self, ds_id: str) -> int: ...


NO_KEY_DETAIL = "Must provide API key or Bearer token to access this route."
GZIP_MIN = 1400
#: Conformance classes the hub implements, added to the recorded landing page's list (whose
#: older beta classes, core, features, item search with fields, sort and query, it honours too).
CONFORMANCE = (
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/item-search#fields",
    "https://api.stacspec.org/v1.0.0/item-search#sort",
    "https://api.stacspec.org/v1.0.0/item-search#query",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
)
JSON_TYPE = "application/json"
GEOJSON_TYPE = "application/geo+json"


def json_bytes(obj: Any) -> bytes:
    """Compact JSON, as FastAPI writes it."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class _Static:
    """A cached JSON body with its gzip form (computed once, on first use)."""

    __slots__ = ("gz", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.gz: bytes | None = None


class ApiRoutes:
    """Routes of the API origin, bound to one :class:`~.server.Hub`."""

    def __init__(self, hub: ApiHub) -> None:
        self.hub = hub
        self.store = hub.store
        self._static: dict[str, _Static] = {}
        self._filtered: dict[tuple[str, str, str], np.ndarray[Any, np.dtype[np.int64]]] = {}
        self._searches = MatchCache()

    # -- helpers -------------------------------------------------------------------------------

    def rewrite(self, text: str) -> str:
        """Replace recorded roots and placeholders with this hub's URLs."""
        return self.hub.rewrite(text)

    def _json(
        self,
        req: Request,
        status: int,
        raw: bytes,
        cache: _Static | None = None,
        media: str = JSON_TYPE,
    ) -> Response:
        headers = [("Content-Type", media)]
        body = raw
        if len(raw) >= GZIP_MIN and "gzip" in req.headers.get("accept-encoding", ""):
            if cache is not None:
                if cache.gz is None:
                    cache.gz = gzip.compress(raw, 6, mtime=0)
                body = cache.gz
            else:
                body = gzip.compress(raw, 5, mtime=0)
            headers += [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")]
        if req.method == "HEAD":
            return Response(status, headers, None, length=len(body))
        return Response(status, headers, Body.of(body))

    def _static_json(self, req: Request, key: str, build: Any, media: str = JSON_TYPE) -> Response:
        entry = self._static.get(key)
        if entry is None:
            entry = _Static(self.rewrite(json.dumps(build(), separators=(",", ":"))).encode())
            self._static[key] = entry
        return self._json(req, 200, entry.raw, entry, media)

    def error(self, req: Request, status: int, detail: str) -> Response:
        """An error response: STAC API ``{"code", "description"}`` for 400s, else ``{"detail"}``.

        The recorded API answered FastAPI-style ``{"detail": ...}`` (kept for every status it
        was recorded with); malformed STAC parameters answer as the STAC API specifies.
        """
        if status == 400:
            return self._json(req, 400, json_bytes({"code": "BadRequest", "description": detail}))
        return self._json(req, status, json_bytes({"detail": detail}))

    def _authorized(self, req: Request) -> bool:
        required = self.hub.require_key
        if required is None:
            return True
        keys = req.query.get("key")
        if keys and keys[-1] == required:
            return True
        auth = req.headers.get("authorization", "")
        return auth.startswith("Bearer ") and auth[7:].strip() == required

    # -- dispatch ------------------------------------------------------------------------------

    def handle(self, req: Request, sub: str) -> Response | Awaitable[Response]:
        """Answer ``req``; ``sub`` is the path below the API root (no leading slash)."""
        parts = [p for p in sub.split("/") if p] if sub else []
        if req.method not in ("GET", "HEAD") and not (req.method == "POST" and parts == ["search"]):
            return self.error(req, 405, "Method Not Allowed")
        try:
            return self._route(req, parts)
        except HTTPError as exc:
            return self.error(req, exc.status, exc.detail)

    def _route(self, req: Request, parts: list[str]) -> Response | Awaitable[Response]:
        if not parts:
            return self._static_json(req, "/", self._landing)
        head, n = parts[0], len(parts)
        if head == "conformance" and n == 1:
            return self._static_json(req, "conformance", lambda: {"conformsTo": self._conforms()})
        if head == "openapi.json" and n == 1:
            return self._static_json(req, "openapi", openapi_document, OPENAPI_TYPE)
        if head == "api.html" and n == 1:
            return self._service_doc(req)
        if head == "search" and n == 1:
            if not self._authorized(req):
                raise HTTPError(401, NO_KEY_DETAIL)
            return self._search(req)
        if head == "datasets":
            if n == 1:
                return self._datasets(req)
            if parts[1] == "doi" and n >= 3:
                return self._dataset_by_doi(req, "/".join(parts[2:]))
            if n == 2:
                return self._dataset(req, parts[1])
        elif head == "collections":
            if n == 1:
                return self._static_json(req, "collections", self._collections)
            if parts[1] not in self.store.collections:
                raise HTTPError(404, f"Collection {parts[1]} does not exist.")
            if n == 2:
                cid = parts[1]
                return self._static_json(req, f"c/{cid}", lambda: self.store.collections[cid])
            if parts[2] == "items" and n in (3, 4):
                if not self._authorized(req):
                    raise HTTPError(401, NO_KEY_DETAIL)
                if n == 3:
                    return self._items(req, parts[1])
                return self._item(req, parts[1], parts[3])
        elif head == "models":
            if n == 1:
                return self._static_json(req, "models", lambda: self.store.models)
            if n == 2:
                return self._model(req, parts[1])
        elif head == "catalog" and n in (2, 3):
            if not self._authorized(req):
                raise HTTPError(401, NO_KEY_DETAIL)
            return self._catalog(req, parts[1], info=n == 3 and parts[2] == "info")
        elif head == "archive" and n in (2, 3):
            if not self._authorized(req):
                raise HTTPError(401, NO_KEY_DETAIL)
            return self._archive(req, parts[1], info=n == 3 and parts[2] == "info")
        raise HTTPError(404, "Not Found")

    # -- endpoints -----------------------------------------------------------------------------

    def _landing(self) -> JSON:
        base = {k: v for k, v in self.store.landing.items() if k != "links"}
        if not base:
            base = {
                "type": "Catalog",
                "id": "mlhub-widgets-hub",
                "title": "mlhub_widgets bundled hub",
                "description": "MLHub-compatible API served by mlhub_widgets",
                "stac_version": "1.0.0",
            }
        base["conformsTo"] = self._conforms()
        root = API_PLACEHOLDER
        links: list[JSON] = [
            {"rel": "self", "type": "application/json", "href": root},
            {"rel": "root", "type": "application/json", "href": root},
            {"rel": "data", "type": "application/json", "href": f"{root}collections"},
            {
                "rel": "conformance",
                "type": "application/json",
                "title": "STAC/WFS3 conformance classes implemented by this server",
                "href": f"{root}conformance",
            },
            {
                "rel": "service-desc",
                "type": OPENAPI_TYPE,
                "title": "OpenAPI 3.0 description of this API",
                "href": f"{root}openapi.json",
            },
            {
                "rel": "service-doc",
                "type": "text/html",
                "title": "This API's endpoints as a web page",
                "href": f"{root}api.html",
            },
            {
                "rel": "search",
                "type": "application/geo+json",
                "title": "STAC search",
                "href": f"{root}search",
                "method": "GET",
            },
            {
                "rel": "search",
                "type": "application/geo+json",
                "title": "STAC search",
                "href": f"{root}search",
                "method": "POST",
            },
        ]
        links += [
            {"rel": "child", "type": "application/json", "href": f"{root}collections/{cid}"}
            for cid in self.store.collections
        ]
        base["links"] = links
        return base

    def _service_doc(self, req: Request) -> Response:
        entry = self._static.get("api.html")
        if entry is None:
            text = service_doc_html(json.loads(self.rewrite(json.dumps(openapi_document()))))
            entry = self._static["api.html"] = _Static(text.encode())
        return self._json(req, 200, entry.raw, entry, "text/html; charset=utf-8")

    def _conforms(self) -> list[str]:
        recorded = [str(c) for c in self.store.landing.get("conformsTo") or []]
        return recorded + [c for c in CONFORMANCE if c not in recorded]

    def _collections(self) -> JSON:
        root = API_PLACEHOLDER
        return {
            "collections": list(self.store.collections.values()),
            "links": [
                {"rel": "root", "type": "application/json", "href": root},
                {"rel": "parent", "type": "application/json", "href": root},
                {"rel": "self", "type": "application/json", "href": f"{root}collections"},
            ],
        }

    def _datasets(self, req: Request) -> Response:
        tags = req.query.get("tags", [])
        texts = [t.lower() for t in req.query.get("text", []) if t.strip()]
        if not tags and not texts:
            return self._static_json(req, "datasets", self.store.dataset_records)
        out = [rec for rec in self.store.dataset_records() if _matches(rec, tags, texts)]
        return self._json(req, 200, self.rewrite(json.dumps(out, separators=(",", ":"))).encode())

    def _dataset(self, req: Request, ds_id: str) -> Response:
        if ds_id not in self.store.datasets:
            raise HTTPError(404, f"Dataset {ds_id} does not exist.")
        return self._static_json(req, f"d/{ds_id}", lambda: _record(self, ds_id))

    def _dataset_by_doi(self, req: Request, doi: str) -> Response:
        for rec in self.store.dataset_records():
            if isinstance(rec.get("doi"), str) and rec["doi"].lower() == doi.lower():
                return self._dataset(req, rec["id"])
        raise HTTPError(404, f"Dataset with DOI {doi} does not exist.")

    def _model(self, req: Request, model_id: str) -> Response:
        for model in self.store.models:
            if model.get("id") == model_id:
                return self._static_json(req, f"m/{model_id}", lambda found=model: found)
        raise HTTPError(404, f"Model {model_id} does not exist.")

    def _offload(self, req: Request, work: Callable[[], Response]) -> Awaitable[Response]:
        """Run ``work`` in the hub's thread pool (indexing must not block the event loop)."""

        async def run() -> Response:
            try:
                return await asyncio.get_running_loop().run_in_executor(None, work)
            except HTTPError as exc:
                return self.error(req, exc.status, exc.detail)

        return run()

    def _item(self, req: Request, cid: str, item_id: str) -> Response | Awaitable[Response]:
        def work() -> Response:
            source = self.store.items(cid)
            idx = source.position(item_id)
            if idx is None:
                raise HTTPError(404, f"Item {item_id} in Collection {cid} does not exist.")
            ((_, text),) = source.api_page([idx])
            return self._json(req, 200, self.rewrite(text).encode(), media=GEOJSON_TYPE)

        if self.store.items_loaded(cid) and self.store.items(cid).ready(item_id=item_id):
            return work()
        return self._offload(req, work)

    def _items(self, req: Request, cid: str) -> Response | Awaitable[Response]:
        q = req.query
        limit = limit_of(q["limit"][-1]) if q.get("limit", [""])[-1] else DEFAULT_LIMIT
        bbox_s = q.get("bbox", [""])[-1]
        dt_s = q.get("datetime", [""])[-1]
        if bbox_s:
            parse_bbox(bbox_s)
        if dt_s:
            parse_interval(dt_s)
        token = q.get("token", [""])[-1]
        ref = token.partition(":")[2] if token else None

        def work() -> Response:
            return self._items_page(req, cid, limit, bbox_s, dt_s, token)

        if self.store.items_loaded(cid) and self.store.items(cid).ready(
            arrays=bool(bbox_s or dt_s), item_id=ref
        ):
            return work()
        return self._offload(req, work)

    def _items_page(
        self, req: Request, cid: str, limit: int, bbox_s: str, dt_s: str, token: str
    ) -> Response:
        source = self.store.items(cid)
        matched = self._matching(source, bbox_s, dt_s)
        total = len(source) if matched is None else len(matched)
        start = 0
        if token:
            kind, _, ref = token.partition(":")
            pos = source.position(ref) if kind in ("next", "prev") else None
            if pos is not None and matched is not None:
                at = int(np.searchsorted(matched, pos))
                pos = at if at < len(matched) and int(matched[at]) == pos else None
            if pos is None:
                raise HTTPError(400, f"Invalid pagination token {token}")
            start = pos + 1 if kind == "next" else max(0, pos - limit)
        stop = min(total, start + limit)
        positions = range(start, stop) if matched is None else [int(i) for i in matched[start:stop]]
        page = source.api_page(positions)
        root = self.hub.url
        base = f"{root}collections/{cid}"
        keep: list[tuple[str, str]] = [("limit", str(limit))] if "limit" in req.query else []
        if bbox_s:
            keep.append(("bbox", bbox_s))
        if dt_s:
            keep.append(("datetime", dt_s))
        requested = urlencode([*keep, ("token", token)] if token else keep, quote_via=quote)
        # The recorded pages' links, in their order, except that "self" is this page (the
        # recorded API pointed it at the collection) and every page link is GeoJSON.
        links: list[JSON] = [
            {"rel": "items", "type": GEOJSON_TYPE, "href": f"{base}/items"},
            {"rel": "parent", "type": JSON_TYPE, "href": root},
            {"rel": "root", "type": JSON_TYPE, "href": root},
            {
                "rel": "self",
                "type": GEOJSON_TYPE,
                "href": f"{base}/items" + (f"?{requested}" if requested else ""),
            },
        ]
        if stop < total and page:
            nxt = urlencode([*keep, ("token", f"next:{page[-1][0]}")], quote_via=quote)
            links.append(_page_link("next", f"{base}/items?{nxt}"))
        if start > 0 and page:
            prv = urlencode([*keep, ("token", f"prev:{page[0][0]}")], quote_via=quote)
            links.append(_page_link("previous", f"{base}/items?{prv}"))
        context = json.dumps({"limit": limit, "matched": total, "returned": len(page)})
        features = self.rewrite(",".join(text for _, text in page))
        links_s = json.dumps(links)
        text = (
            f'{{"type":"FeatureCollection","numberMatched":{total},"numberReturned":{len(page)},'
            f'"context":{context},"features":[{features}],"links":{links_s}}}'
        )
        return self._json(req, 200, text.encode(), media=GEOJSON_TYPE)

    def _matching(
        self, source: ItemSource, bbox_s: str, dt_s: str
    ) -> np.ndarray[Any, np.dtype[np.int64]] | None:
        """Positions of the items passing the ``/items`` filters (None: all of them)."""
        if not bbox_s and not dt_s:
            return None
        key = (source.collection_id, bbox_s, dt_s)
        hit = self._filtered.get(key)
        if hit is not None:
            return hit
        arrays = source.arrays()
        mask = np.ones(len(source), dtype=bool)
        with np.errstate(invalid="ignore"):
            if bbox_s:
                x0, y0, x1, y1 = parse_bbox(bbox_s)
                b = arrays.bbox
                mask &= (b[:, 0] <= x1) & (b[:, 2] >= x0) & (b[:, 1] <= y1) & (b[:, 3] >= y0)
            if dt_s:
                lo, hi = parse_interval(dt_s)
                t = arrays.interval
                mask &= (t[:, 0] <= hi) & (t[:, 1] >= lo)
        idx = np.flatnonzero(mask).astype(np.int64)
        if len(self._filtered) > 256:
            self._filtered.clear()
        self._filtered[key] = idx
        return idx

    # -- search --------------------------------------------------------------------------------

    def _search(self, req: Request) -> Awaitable[Response]:
        if req.method == "POST":
            query = query_from_post(req.body)
        else:
            query = query_from_get(req.query)
        query.start()  # validate the token before any work
        return self._offload(req, lambda: self._search_page(req, query))

    def search_collections(self, wanted: list[str] | None) -> list[str]:
        """The collections a search covers, in result order."""
        if wanted is not None:
            return list(dict.fromkeys(wanted))
        ids = dict.fromkeys(self.store.collections)
        ids.update(dict.fromkeys(self.store.collection_dataset))
        return list(ids)

    def _search_page(self, req: Request, q: SearchQuery) -> Response:
        matched = self._searches.get(q.key)
        if matched is None:
            wanted = self.search_collections(q.collections)
            matched = find_matches(q, wanted, self.store.items)
            self._searches.put(q.key, matched)
        total = len(matched)
        start = q.start()
        stop = min(total, start + q.limit)
        texts: list[str] = []
        for cid, positions in matched.runs(start, stop):
            texts += [text for _, text in self.store.items(cid).api_page(positions)]
        if q.fields is not None:
            spec = q.fields
            texts = [json.dumps(spec.apply(json.loads(t)), separators=(",", ":")) for t in texts]
        root = self.hub.url
        links: list[JSON] = [
            {"rel": "root", "type": JSON_TYPE, "href": root},
            {"rel": "self", "type": GEOJSON_TYPE, "href": f"{root}search"},
        ]
        if stop < total:
            links.append(self._search_link(q, "next", f"next:{stop}"))
        if start > 0 and texts:
            links.append(self._search_link(q, "previous", f"prev:{max(0, start - q.limit)}"))
        body = (
            '{{"type":"FeatureCollection","numberMatched":{n},"numberReturned":{k},'
            '"context":{{"limit":{lim},"matched":{n},"returned":{k}}},'
            '"features":[{f}],"links":{links}}}'
        ).format(
            n=total,
            k=len(texts),
            lim=q.limit,
            f=self.rewrite(",".join(texts)),
            links=json.dumps(links),
        )
        return self._json(req, 200, body.encode(), media=GEOJSON_TYPE)

    def _search_link(self, q: SearchQuery, rel: str, token: str) -> JSON:
        href = f"{self.hub.url}search"
        if q.method == "POST":
            return {
                "rel": rel,
                "type": GEOJSON_TYPE,
                "method": "POST",
                "href": href,
                "body": {**q.echo_body, "token": token},
                "merge": False,
            }
        query = urlencode([*q.echo_pairs, ("token", token)], quote_via=quote)
        return {
            "rel": rel,
            "type": GEOJSON_TYPE,
            "method": "GET",
            "href": f"{href}?{query}",
        }

    def _catalog(self, req: Request, ds_id: str, *, info: bool) -> Response | Awaitable[Response]:
        ds = self.store.datasets.get(ds_id)
        if ds is None:
            raise HTTPError(404, f"Dataset {ds_id} does not exist.")
        if not ds.has_catalog:
            raise HTTPError(404, f"Dataset {ds_id} has no STAC catalogue. {NO_COLLECTIONS_REASON}")
        if not info:
            location = f"{self.hub.storage_url}mlhub/catalogs/{ds_id}.tar.gz"
            return Response(303, [("Location", location)], None)

        async def answer() -> Response:
            blob = await self.hub.catalog_blob_async(ds_id)
            estimate = ds.recorded_info.get("estimated_dataset_size")
            if not isinstance(estimate, int):
                estimate = await self.hub.estimated_size_async(ds_id)
            body = {
                "dataset": ds_id,
                "stac_catalog_size": blob.body.size,
                "estimated_dataset_size": estimate,
            }
            return self._json(req, 200, json_bytes(body))

        return answer()

    def _archive(self, req: Request, cid: str, *, info: bool) -> Response:
        path = self.store.archives.get(cid)
        if info:
            if path is not None:
                ds = self.store.dataset_for_collection(cid)
                types: list[str] = []
                if ds is not None:
                    for c in ds.record.get("collections") or []:
                        if c.get("id") == cid:
                            types = list(c.get("types") or [])
                body: JSON = {
                    "collection": cid,
                    "dataset": ds.id if ds else None,
                    "size": path.stat().st_size,
                    "types": types,
                }
                return self._json(req, 200, json_bytes(body))
            if cid in self.store.archive_info:
                return self._json(req, 200, json_bytes(self.store.archive_info[cid]))
            raise HTTPError(404, f"No archive found for collection {cid}")
        if path is None:
            raise HTTPError(404, f"No archive found for collection {cid}")
        location = f"{self.hub.storage_url}mlhub/archives/{cid}.tar.gz"
        return Response(303, [("Location", location)], None)


def _page_link(rel: str, href: str) -> JSON:
    return {"rel": rel, "type": GEOJSON_TYPE, "method": "GET", "href": href}


def _record(routes: ApiRoutes, ds_id: str) -> JSON:
    for rec in routes.store.dataset_records():
        if rec["id"] == ds_id:
            return rec
    raise HTTPError(404, f"Dataset {ds_id} does not exist.")


def _matches(rec: JSON, tags: list[str], texts: list[str]) -> bool:
    rec_tags = [str(t) for t in rec.get("tags") or []]
    if any(tag not in rec_tags for tag in tags):
        return False
    if not texts:
        return True
    contact = rec.get("creator_contact") or {}
    haystack = "\n".join(
        str(v)
        for v in (
            rec.get("id"),
            rec.get("title"),
            rec.get("description"),
            rec.get("citation"),
            rec.get("doi"),
            *rec_tags,
            *(contact.values() if isinstance(contact, dict) else ()),
        )
        if v
    ).lower()
    return any(t in haystack for t in texts)
