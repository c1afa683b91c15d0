"""STAC API Item Search (``GET``/``POST /search``) over every collection the hub serves.

Parameters (STAC API 1.0.0 Item Search): ``collections``, ``ids``, ``bbox`` (4 or 6 numbers;
west > east crosses the antimeridian), ``intersects`` (a GeoJSON geometry; for ``GET`` a JSON
string), ``datetime`` (a single instant, ``a/b``, open ends ``..`` or empty; a bare date is the
whole day), ``limit`` (1..10000, default 10) and the paging ``token`` of a ``next``/``previous``
link. ``bbox`` and ``intersects`` exclude each other. Other parameters are ignored.

Semantics: an item matches ``bbox``/``intersects`` when its **geometry** intersects the box or
geometry (shapely; items without a geometry never match a spatial query), and ``datetime`` when
its ``datetime`` instant, or its ``start_datetime``/``end_datetime`` range, overlaps the query
interval (ends inclusive). Results come collection by collection (in ``/collections`` order, or
the order given in ``collections``), items in collection order.

Spatial matching is vectorised: item geometry bounds (numpy) pre-select candidates, candidates
whose bounds lie inside the query geometry match without more work (their geometry does too), and
only the rest are tested exactly, parsing just their geometry.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from .items import ItemSource, parse_time

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "HTTPError",
    "SearchQuery",
    "match_source",
    "parse_bbox",
    "parse_interval",
    "query_from_get",
    "query_from_post",
]

JSON = dict[str, Any]
IntArray = np.ndarray[Any, np.dtype[np.int64]]

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 10
GEOMETRY_TYPES = frozenset(
    {
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
    }
)


class HTTPError(Exception):
    """Raised by route code to answer ``{"detail": detail}`` with ``status``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


# -- parameter parsing ---------------------------------------------------------------------------


def parse_bbox(
    text: str | Sequence[Any], *, allow_antimeridian: bool = False
) -> tuple[float, float, float, float]:
    """A 2-D ``(west, south, east, north)`` from ``"a,b,c,d"`` or a list (4 or 6 numbers)."""
    shown = text if isinstance(text, str) else json.dumps(text)
    try:
        parts = text.split(",") if isinstance(text, str) else list(text)
        if any(isinstance(v, bool) for v in parts):
            raise ValueError(shown)
        vals = [float(v) for v in parts]
    except (TypeError, ValueError):
        raise HTTPError(400, f"Invalid bbox {shown}") from None
    if len(vals) == 6:
        vals = [vals[0], vals[1], vals[3], vals[4]]
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        raise HTTPError(400, f"Invalid bbox {shown}")
    if vals[1] > vals[3] or (vals[0] > vals[2] and not allow_antimeridian):
        raise HTTPError(400, f"Invalid bbox {shown}")
    return (vals[0], vals[1], vals[2], vals[3])


def parse_interval(text: str) -> tuple[float, float]:
    """``(start, end)`` epoch seconds of a STAC ``datetime`` parameter (open ends: +-inf)."""
    try:
        if "/" in text:
            a, b = text.split("/", 1)
            lo = float("-inf") if a.strip() in ("", "..") else _instant(a, end=False)
            hi = float("inf") if b.strip() in ("", "..") else _instant(b, end=True)
        else:
            if text.strip() in ("", ".."):
                raise ValueError(text)
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


@dataclass
class SearchQuery:
    """A parsed search request.

    ``echo`` holds the parameters to repeat in paging links (GET: query pairs; POST: the body).
    """

    method: str
    collections: list[str] | None = None
    ids: list[str] | None = None
    geometry: BaseGeometry | None = None
    interval: tuple[float, float] | None = None
    limit: int = DEFAULT_LIMIT
    token: str | None = None
    echo_pairs: list[tuple[str, str]] = field(default_factory=list)
    echo_body: JSON = field(default_factory=dict)
    key: str = ""

    def start(self) -> int:
        """The index of the first result of the requested page."""
        if not self.token:
            return 0
        kind, _, ref = self.token.partition(":")
        if kind not in ("next", "prev") or not ref.isdigit():
            raise HTTPError(400, f"Invalid pagination token {self.token}")
        return int(ref)


def _limit(value: Any) -> int:
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)
        limit = int(value)
    except (TypeError, ValueError):
        raise HTTPError(400, "limit must be an integer") from None
    if limit < 1:
        raise HTTPError(400, "limit must be at least 1")
    return min(limit, MAX_LIMIT)


def _geometry_of(obj: Any) -> BaseGeometry:
    if not isinstance(obj, dict) or obj.get("type") not in GEOMETRY_TYPES:
        raise HTTPError(400, "Invalid intersects: expected a GeoJSON geometry")
    try:
        geom = shape(obj)
    except Exception:  # shapely raises several types for bad coordinates
        raise HTTPError(400, "Invalid intersects: expected a GeoJSON geometry") from None
    if geom.is_empty:
        raise HTTPError(400, "Invalid intersects: empty geometry")
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    return geom


def _bbox_geometry(box: tuple[float, float, float, float]) -> BaseGeometry:
    w, s, e, n = box
    if w > e:  # crosses the antimeridian
        return shapely.MultiPolygon([shapely.box(w, s, 180.0, n), shapely.box(-180.0, s, e, n)])
    return shapely.box(w, s, e, n)


def _names(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        return [v for v in (p.strip() for p in value.split(",")) if v]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise HTTPError(400, f"Invalid {what}: expected a list of strings")


def _finish(q: SearchQuery, bbox: Any, intersects: Any, dt: Any) -> SearchQuery:
    if bbox not in (None, "", []) and intersects not in (None, ""):
        raise HTTPError(400, "Only one of bbox and intersects may be given")
    if bbox not in (None, "", []):
        q.geometry = _bbox_geometry(parse_bbox(bbox, allow_antimeridian=True))
    elif intersects not in (None, ""):
        q.geometry = _geometry_of(intersects)
    if dt not in (None, ""):
        if not isinstance(dt, str):
            raise HTTPError(400, f"Invalid datetime {dt}")
        q.interval = parse_interval(dt)
    return q


def query_from_get(query: dict[str, list[str]]) -> SearchQuery:
    """A :class:`SearchQuery` from the query parameters of ``GET /search``."""

    def last(name: str) -> str:
        return query.get(name, [""])[-1]

    q = SearchQuery("GET")
    if last("collections"):
        q.collections = _names(last("collections"), "collections")
    if last("ids"):
        q.ids = _names(last("ids"), "ids")
    if last("limit"):
        q.limit = _limit(last("limit"))
    q.token = last("token") or None
    intersects: Any = None
    if last("intersects"):
        try:
            intersects = json.loads(last("intersects"))
        except ValueError:
            raise HTTPError(400, "Invalid intersects: expected a GeoJSON geometry") from None
    q.echo_pairs = [
        (name, last(name))
        for name in ("collections", "ids", "bbox", "intersects", "datetime", "limit")
        if last(name)
    ]
    q.key = json.dumps([last(n) for n in ("collections", "ids", "bbox", "intersects", "datetime")])
    return _finish(q, last("bbox") or None, intersects, last("datetime") or None)


def query_from_post(body: bytes) -> SearchQuery:
    """A :class:`SearchQuery` from the JSON body of ``POST /search``."""
    try:
        obj = json.loads(body or b"{}")
    except ValueError:
        raise HTTPError(400, "Invalid JSON body") from None
    if not isinstance(obj, dict):
        raise HTTPError(400, "Invalid JSON body: expected an object")
    q = SearchQuery("POST")
    if obj.get("collections") is not None:
        q.collections = _names(obj["collections"], "collections")
    if obj.get("ids") is not None:
        q.ids = _names(obj["ids"], "ids")
    if obj.get("limit") is not None:
        q.limit = _limit(obj["limit"])
    token = obj.get("token")
    if token is not None and not isinstance(token, str):
        raise HTTPError(400, f"Invalid pagination token {token}")
    q.token = token or None
    q.echo_body = {k: v for k, v in obj.items() if k not in ("token", "key")}
    q.key = json.dumps(
        [obj.get(n) for n in ("collections", "ids", "bbox", "intersects", "datetime")],
        sort_keys=True,
    )
    return _finish(q, obj.get("bbox"), obj.get("intersects"), obj.get("datetime"))


# -- matching ------------------------------------------------------------------------------------


def _intersects(query: BaseGeometry, geom: JSON | None) -> bool:
    if not geom:
        return False
    try:
        g = shape(geom)
        if g.is_empty:
            return False
        try:
            return bool(query.intersects(g))
        except shapely.errors.GEOSException:
            return bool(query.intersects(shapely.make_valid(g)))
    except Exception:  # unreadable item geometry: it cannot match
        return False


def match_source(source: ItemSource, q: SearchQuery) -> IntArray:
    """Positions (ascending) of the items of ``source`` matching ``q``'s filters."""
    n = len(source)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    mask = np.ones(n, dtype=bool)
    if q.ids is not None:
        mask[:] = False
        for iid in q.ids:
            pos = source.position(iid)
            if pos is not None:
                mask[pos] = True
    if q.interval is not None or q.geometry is not None:
        arrays = source.arrays()
        if q.interval is not None:
            lo, hi = q.interval
            iv = arrays.interval
            with np.errstate(invalid="ignore"):
                mask &= (iv[:, 0] <= hi) & (iv[:, 1] >= lo)
        if q.geometry is not None:
            qx0, qy0, qx1, qy1 = q.geometry.bounds
            b = arrays.bounds
            with np.errstate(invalid="ignore"):
                mask &= (b[:, 0] <= qx1) & (b[:, 2] >= qx0) & (b[:, 1] <= qy1) & (b[:, 3] >= qy0)
            cand = np.flatnonzero(mask)
            if len(cand):
                shapely.prepare(q.geometry)
                cb = b[cand]
                solid = (cb[:, 2] > cb[:, 0]) & (cb[:, 3] > cb[:, 1])
                inside = np.zeros(len(cand), dtype=bool)
                if solid.any():
                    boxes = shapely.box(cb[solid, 0], cb[solid, 1], cb[solid, 2], cb[solid, 3])
                    inside[solid] = shapely.covers(q.geometry, boxes)
                for j in np.flatnonzero(~inside):
                    i = int(cand[j])
                    if not _intersects(q.geometry, source.geometry(i)):
                        mask[i] = False
    return np.flatnonzero(mask).astype(np.int64)


class MatchCache:
    """Recent search results: ``[(collection id, positions), ...]`` per query key."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._data: OrderedDict[str, list[tuple[str, IntArray]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> list[tuple[str, IntArray]] | None:
        """The cached result of ``key``, if any."""
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
            return hit

    def put(self, key: str, value: list[tuple[str, IntArray]]) -> None:
        """Remember ``value`` for ``key`` (dropping the least recently used)."""
        with self._lock:
            self._data[key] = value
            while len(self._data) > self._size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._data.clear()
