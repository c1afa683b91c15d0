"""The API origin: MLHub's JSON endpoints under ``/mlhub/v1/``.

Shapes, status codes and error texts follow the recorded responses of the real API (see
``shared/fixtures/mlhub-api``): bare arrays for ``/datasets`` and ``/models``, an object for
``/collections``, GeoJSON FeatureCollections with ``context`` and ``next``/``previous`` links for
items, 303 redirects to the storage origin for catalogue and archive downloads, and FastAPI-style
``{"detail": ...}`` errors. The caller's key is never echoed into a link.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from .http import Request, Response
from .store import API_PLACEHOLDER, JSON, parse_time
from .synth import Body

if TYPE_CHECKING:
    from .server import Hub

__all__ = ["NO_KEY_DETAIL", "ApiRoutes"]

NO_KEY_DETAIL = "Must provide API key or Bearer token to access this route."
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 10
GZIP_MIN = 1400
_JSON_CT = ("Content-Type", "application/json")


def json_bytes(obj: Any) -> bytes:
    """Compact JSON, as FastAPI writes it."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class HTTPError(Exception):
    """Raised by route code to answer ``{"detail": detail}`` with ``status``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class _Static:
    """A cached JSON body with its gzip form (computed once, on first use)."""

    __slots__ = ("gz", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.gz: bytes | None = None


class ApiRoutes:
    """Routes of the API origin, bound to one :class:`Hub`."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.store = hub.store
        self._static: dict[str, _Static] = {}
        self._item_text: dict[tuple[str, int], str] = {}
        self._filtered: dict[tuple[str, str, str], list[int]] = {}

    # -- helpers -------------------------------------------------------------------------------

    def rewrite(self, text: str) -> str:
        """Replace recorded roots and placeholders with this hub's URLs."""
        return self.hub.rewrite(text)

    def _json(
        self, req: Request, status: int, raw: bytes, cache: _Static | None = None
    ) -> Response:
        headers = [_JSON_CT]
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

    def _static_json(self, req: Request, key: str, build: Any) -> Response:
        entry = self._static.get(key)
        if entry is None:
            entry = _Static(self.rewrite(json.dumps(build(), separators=(",", ":"))).encode())
            self._static[key] = entry
        return self._json(req, 200, entry.raw, entry)

    def error(self, req: Request, status: int, detail: str) -> Response:
        """A FastAPI-style error response."""
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
        if req.method not in ("GET", "HEAD"):
            return self.error(req, 405, "Method Not Allowed")
        parts = [p for p in sub.split("/") if p] if sub else []
        try:
            return self._route(req, parts)
        except HTTPError as exc:
            return self.error(req, exc.status, exc.detail)

    def _route(self, req: Request, parts: list[str]) -> Response | Awaitable[Response]:
        if not parts:
            return self._static_json(req, "/", self._landing)
        head, n = parts[0], len(parts)
        if head == "conformance" and n == 1:
            return self._static_json(
                req, "conformance", lambda: {"conformsTo": self.store.landing.get("conformsTo", [])}
            )
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
                "conformsTo": [],
            }
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
        ]
        links += [
            {"rel": "child", "type": "application/json", "href": f"{root}collections/{cid}"}
            for cid in self.store.collections
        ]
        base["links"] = links
        return base

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

    def _item_json(self, cid: str, idx: int) -> str:
        key = (cid, idx)
        text = self._item_text.get(key)
        if text is None:
            item = self.store.items(cid).items[idx]
            text = self.rewrite(json.dumps(item, separators=(",", ":")))
            if len(self._item_text) > 200_000:
                self._item_text.clear()
            self._item_text[key] = text
        return text

    def _item(self, req: Request, cid: str, item_id: str) -> Response:
        col = self.store.items(cid)
        idx = col.index.get(item_id)
        if idx is None:
            raise HTTPError(404, f"Item {item_id} in Collection {cid} does not exist.")
        return self._json(req, 200, self._item_json(cid, idx).encode())

    def _items(self, req: Request, cid: str) -> Response:
        q = req.query
        try:
            limit = int(q.get("limit", [str(DEFAULT_LIMIT)])[-1])
        except ValueError:
            raise HTTPError(400, "limit must be an integer") from None
        if limit < 1:
            raise HTTPError(400, "limit must be at least 1")
        limit = min(limit, MAX_LIMIT)
        bbox_s = q.get("bbox", [""])[-1]
        dt_s = q.get("datetime", [""])[-1]
        matched = self._matching(cid, bbox_s, dt_s)
        col = self.store.items(cid)
        token = q.get("token", [""])[-1]
        start = 0
        if token:
            kind, _, ref = token.partition(":")
            pos = {i: p for p, i in enumerate(matched)}.get(col.index.get(ref, -1))
            if kind not in ("next", "prev") or pos is None:
                raise HTTPError(400, f"Invalid pagination token {token}")
            start = pos + 1 if kind == "next" else max(0, pos - limit)
        page = matched[start : start + limit]
        root = self.hub.url
        base = f"{root}collections/{cid}"
        keep: list[tuple[str, str]] = [("limit", str(limit))] if "limit" in q else []
        if bbox_s:
            keep.append(("bbox", bbox_s))
        if dt_s:
            keep.append(("datetime", dt_s))
        links: list[JSON] = [
            {"rel": "items", "type": "application/geo+json", "href": f"{base}/items"},
            {"rel": "parent", "type": "application/json", "href": root},
            {"rel": "root", "type": "application/json", "href": root},
            {"rel": "self", "type": "application/json", "href": base},
        ]
        if start + limit < len(matched) and page:
            nxt = urlencode(
                [*keep, ("token", f"next:{col.items[page[-1]]['id']}")], quote_via=quote
            )
            links.append(
                {
                    "rel": "next",
                    "type": "application/json",
                    "method": "GET",
                    "href": f"{base}/items?{nxt}",
                }
            )
        if start > 0 and page:
            prv = urlencode([*keep, ("token", f"prev:{col.items[page[0]]['id']}")], quote_via=quote)
            links.append(
                {
                    "rel": "previous",
                    "type": "application/json",
                    "method": "GET",
                    "href": f"{base}/items?{prv}",
                }
            )
        context = json.dumps({"limit": limit, "matched": len(matched), "returned": len(page)})
        text = '{{"type":"FeatureCollection","context":{},"features":[{}],"links":{}}}'.format(
            context,
            ",".join(self._item_json(cid, i) for i in page),
            json.dumps(links),
        )
        return self._json(req, 200, text.encode())

    def _matching(self, cid: str, bbox_s: str, dt_s: str) -> list[int]:
        key = (cid, bbox_s, dt_s)
        hit = self._filtered.get(key)
        if hit is not None:
            return hit
        col = self.store.items(cid)
        idx = list(range(len(col.items)))
        if bbox_s:
            box = _parse_bbox(bbox_s)
            idx = [
                i
                for i in idx
                if (b := col.bboxes[i]) is not None
                and b[0] <= box[2]
                and b[2] >= box[0]
                and b[1] <= box[3]
                and b[3] >= box[1]
            ]
        if dt_s:
            lo, hi = _parse_interval(dt_s)
            idx = [
                i for i in idx if (t := col.intervals[i]) is not None and t[0] <= hi and t[1] >= lo
            ]
        if len(self._filtered) > 256:
            self._filtered.clear()
        self._filtered[key] = idx
        return idx

    def _catalog(self, req: Request, ds_id: str, *, info: bool) -> Response | Awaitable[Response]:
        ds = self.store.datasets.get(ds_id)
        if ds is None or not ds.has_catalog:
            raise HTTPError(404, f"Dataset {ds_id} does not exist.")
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


def _parse_bbox(text: str) -> tuple[float, float, float, float]:
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        raise HTTPError(400, f"Invalid bbox {text}") from None
    if len(vals) == 6:
        vals = [vals[0], vals[1], vals[3], vals[4]]
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        raise HTTPError(400, f"Invalid bbox {text}")
    if vals[0] > vals[2] or vals[1] > vals[3]:
        raise HTTPError(400, f"Invalid bbox {text}")
    return (vals[0], vals[1], vals[2], vals[3])


def _parse_interval(text: str) -> tuple[float, float]:
    try:
        if "/" in text:
            a, b = text.split("/", 1)
            lo = float("-inf") if a in ("", "..") else _instant(a, end=False)
            hi = float("inf") if b in ("", "..") else _instant(b, end=True)
        else:
            lo = _instant(text, end=False)
            hi = _instant(text, end=True)
    except ValueError:
        raise HTTPError(400, f"Invalid datetime {text}") from None
    if lo > hi:
        raise HTTPError(400, f"Invalid datetime {text}")
    return lo, hi


def _instant(text: str, *, end: bool) -> float:
    t = text.strip()
    if len(t) == 10:  # a bare date stands for the whole day
        start = parse_time(t + "T00:00:00Z")
        return start + 86_399.999 if end else start
    return parse_time(t)
