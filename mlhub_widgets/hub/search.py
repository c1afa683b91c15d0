"""STAC API Item Search (``GET``/``POST /search``) over every collection the hub serves.

Parameters (STAC API 1.0.0 Item Search): ``collections``, ``ids``, ``bbox`` (4 or 6 numbers:
GET ``"w,s,e,n"``, POST an array; west > east crosses the antimeridian), ``intersects`` (a GeoJSON
geometry; for ``GET`` a JSON string), ``datetime`` (an RFC 3339 date-time, or an interval
``a/b`` with one open end ``..`` or empty), ``limit`` (at least 1; more than 10,000 is served as
10,000; default 10) and the paging ``token`` of a ``next``/``previous`` link; and the
``fields``, ``sortby`` and ``query`` extensions (see :mod:`.extensions`). ``bbox`` and
``intersects`` exclude each other. CQL2 ``filter`` is not implemented and answers 400; other
unknown parameters are ignored. Every malformed value answers 400 with a one-line description.

Semantics: an item matches ``bbox``/``intersects`` when its **geometry** intersects the box or
geometry (shapely; items without a geometry never match a spatial query), and ``datetime`` when
its ``datetime`` instant, or its ``start_datetime``/``end_datetime`` range, overlaps the query
interval (ends inclusive). Results come collection by collection (in ``/collections`` order, or
the order given in ``collections``), items in collection order, unless ``sortby`` says otherwise.

Spatial matching is vectorised: item geometry bounds (numpy) pre-select candidates, candidates
whose bounds lie inside the query geometry match without more work (their geometry does too), and
only the rest are tested exactly, parsing just their geometry. ``query`` conditions are checked
last, on the remaining candidates only.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from .errors import HTTPError
from .extensions import (
    Condition,
    FieldsSpec,
    SortKey,
    conditions_from_json,
    conditions_from_text,
    fields_from_json,
    fields_from_text,
    matches_all,
    sort_value,
    sortby_from_json,
    sortby_from_text,
)
from .items import ItemSource

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "HTTPError",
    "Matches",
    "SearchQuery",
    "find_matches",
    "limit_of",
    "match_source",
    "parse_bbox",
    "parse_interval",
    "query_from_get",
    "query_from_post",
    "rfc3339_instant",
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
#: GET parameters repeated in paging links, and those that select the results (the cache key).
ECHOED = (
    "collections",
    "ids",
    "bbox",
    "intersects",
    "datetime",
    "limit",
    "fields",
    "sortby",
    "query",
)
SELECTING = ("collections", "ids", "bbox", "intersects", "datetime", "sortby", "query")
UNSUPPORTED = ("filter", "filter-lang", "filter-crs")


# -- parameter parsing ---------------------------------------------------------------------------


def parse_bbox(
    value: str | Sequence[Any], *, allow_antimeridian: bool = False
) -> tuple[float, float, float, float]:
    """A 2-D ``(west, south, east, north)`` from ``"a,b,c,d"`` or a list of 4 or 6 numbers.

    Longitudes must lie in [-180, 180], latitudes in [-90, 90], south <= north (and, with 6
    numbers, min height <= max height); west > east only with ``allow_antimeridian``.
    """
    shown = value if isinstance(value, str) else json.dumps(value)
    if isinstance(value, str):
        try:
            vals = [float(v) for v in value.split(",")]
        except ValueError:
            raise HTTPError(
                400, f"Invalid bbox {shown}: expected 4 or 6 comma-separated numbers"
            ) from None
    elif isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        vals = [float(v) for v in value]
    else:
        raise HTTPError(400, f"Invalid bbox {shown}: expected an array of 4 or 6 numbers")
    if len(vals) not in (4, 6) or not all(math.isfinite(v) for v in vals):
        raise HTTPError(400, f"Invalid bbox {shown}: expected 4 or 6 numbers")
    if len(vals) == 6:
        if vals[2] > vals[5]:
            raise HTTPError(400, f"Invalid bbox {shown}: min height above max height")
        vals = [vals[0], vals[1], vals[3], vals[4]]
    w, s, e, n = vals
    if not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= 90 and -90 <= n <= 90):
        raise HTTPError(400, f"Invalid bbox {shown}: outside [-180, -90, 180, 90]")
    if s > n:
        raise HTTPError(400, f"Invalid bbox {shown}: south ({s:g}) is greater than north ({n:g})")
    if w > e and not allow_antimeridian:
        raise HTTPError(400, f"Invalid bbox {shown}: west ({w:g}) is greater than east ({e:g})")
    return (w, s, e, n)


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
)


def rfc3339_instant(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 ``date-time`` (``ValueError`` for anything else).

    A time and a zone (``Z`` or ``+hh:mm``) are required; ``:60`` is a leap second.
    """
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise ValueError(text)
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    leap = second == 60
    when = datetime(year, month, day, hour, minute, 59 if leap else second, tzinfo=UTC)
    zone = m.group(8)
    offset = 0
    if zone not in ("Z", "z"):
        hh, mm = int(zone[1:3]), int(zone[4:6])
        if hh > 23 or mm > 59:
            raise ValueError(text)
        offset = (hh * 3600 + mm * 60) * (1 if zone[0] == "+" else -1)
    frac = float(m.group(7)) if m.group(7) else 0.0
    return when.timestamp() + leap + frac - offset


def _instant(text: str, whole: str) -> float:
    try:
        return rfc3339_instant(text)
    except ValueError:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            reason = "a date needs a time and a zone, e.g. 2020-01-01T00:00:00Z"
        elif re.search(r"\d \d{2}:?\d{2}$", text):
            reason = "a '+' must be sent as %2B in a URL"
        elif _RFC3339.fullmatch(text) is None:
            reason = "expected an RFC 3339 date-time such as 2020-01-01T00:00:00Z"
        else:
            reason = "no such date or time"
        part = f"{text!r}: " if text != whole else ""
        raise HTTPError(400, f"Invalid datetime {whole!r}: {part}{reason}") from None


def parse_interval(text: str) -> tuple[float, float]:
    """``(start, end)`` epoch seconds of a STAC ``datetime`` parameter (open ends: +-inf).

    An RFC 3339 date-time is the instant itself; ``a/b`` an interval whose ends are date-times
    or open (``..`` or empty), but not both open; ``a`` must not be after ``b``.
    """
    parts = text.split("/")
    if len(parts) > 2:
        raise HTTPError(400, f"Invalid datetime {text!r}: at most one '/'")
    if len(parts) == 1:
        if text in ("", ".."):
            raise HTTPError(400, f"Invalid datetime {text!r}: expected a date-time or an interval")
        t = _instant(text, text)
        return t, t
    a, b = parts
    open_a, open_b = a in ("", ".."), b in ("", "..")
    if open_a and open_b:
        raise HTTPError(400, f"Invalid datetime {text!r}: an interval needs at least one end")
    lo = float("-inf") if open_a else _instant(a, text)
    hi = float("inf") if open_b else _instant(b, text)
    if lo > hi:
        raise HTTPError(400, f"Invalid datetime {text!r}: the start is after the end")
    return lo, hi


@dataclass
class SearchQuery:
    """A parsed search request.

    ``echo`` holds the parameters to repeat in paging links (GET: query pairs; POST: the body);
    ``key`` identifies the result set (everything but ``limit``, ``token`` and ``fields``).
    """

    method: str
    collections: list[str] | None = None
    ids: list[str] | None = None
    geometry: BaseGeometry | None = None
    interval: tuple[float, float] | None = None
    limit: int = DEFAULT_LIMIT
    token: str | None = None
    fields: FieldsSpec | None = None
    sortby: tuple[SortKey, ...] = ()
    conditions: tuple[Condition, ...] = ()
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


def limit_of(value: Any) -> int:
    """A ``limit`` value: an integer of at least 1, capped at :data:`MAX_LIMIT`."""
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)
        limit = int(value)
    except (TypeError, ValueError):
        raise HTTPError(400, f"Invalid limit {value!r}: expected an integer") from None
    if limit < 1:
        raise HTTPError(400, f"Invalid limit {value!r}: must be at least 1")
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
    if bbox is not None and intersects is not None:
        raise HTTPError(400, "Only one of bbox and intersects may be given")
    if bbox is not None:
        q.geometry = _bbox_geometry(parse_bbox(bbox, allow_antimeridian=True))
    elif intersects is not None:
        q.geometry = _geometry_of(intersects)
    if dt is not None:
        if not isinstance(dt, str):
            raise HTTPError(400, f"Invalid datetime {json.dumps(dt)}: expected a string")
        q.interval = parse_interval(dt)
    return q


def _no_filter(names: Any) -> None:
    for name in UNSUPPORTED:
        if name in names:
            raise HTTPError(400, f"{name} (CQL2) is not supported by this hub; use query instead")


def query_from_get(query: dict[str, list[str]]) -> SearchQuery:
    """A :class:`SearchQuery` from the query parameters of ``GET /search``."""

    def last(name: str) -> str:
        return query.get(name, [""])[-1]

    _no_filter(query)
    q = SearchQuery("GET")
    if last("collections"):
        q.collections = _names(last("collections"), "collections")
    if last("ids"):
        q.ids = _names(last("ids"), "ids")
    if last("limit"):
        q.limit = limit_of(last("limit"))
    q.token = last("token") or None
    if "fields" in query:
        q.fields = fields_from_text(last("fields"))
    if last("sortby"):
        q.sortby = sortby_from_text(last("sortby"))
    if last("query"):
        q.conditions = conditions_from_text(last("query"))
    intersects: Any = None
    if last("intersects"):
        try:
            intersects = json.loads(last("intersects"))
        except ValueError:
            raise HTTPError(400, "Invalid intersects: expected a GeoJSON geometry") from None
    q.echo_pairs = [(name, last(name)) for name in ECHOED if name in query]
    q.key = json.dumps([last(n) for n in SELECTING])
    return _finish(q, last("bbox") or None, intersects, last("datetime") or None)


def query_from_post(body: bytes) -> SearchQuery:
    """A :class:`SearchQuery` from the JSON body of ``POST /search``."""
    try:
        obj = json.loads(body or b"{}")
    except ValueError:
        raise HTTPError(400, "Invalid JSON body") from None
    if not isinstance(obj, dict):
        raise HTTPError(400, "Invalid JSON body: expected an object")
    _no_filter(obj)
    q = SearchQuery("POST")
    if obj.get("collections") is not None:
        q.collections = _names(obj["collections"], "collections")
    if obj.get("ids") is not None:
        q.ids = _names(obj["ids"], "ids")
    if obj.get("limit") is not None:
        q.limit = limit_of(obj["limit"])
    token = obj.get("token")
    if token is not None and not isinstance(token, str):
        raise HTTPError(400, f"Invalid pagination token {token}")
    q.token = token or None
    if "fields" in obj:
        q.fields = fields_from_json(obj["fields"])
    if obj.get("sortby") is not None:
        q.sortby = sortby_from_json(obj["sortby"])
    if obj.get("query") is not None:
        q.conditions = conditions_from_json(obj["query"])
    bbox = obj.get("bbox")
    if bbox is not None and not isinstance(bbox, list):
        raise HTTPError(
            400, f"Invalid bbox {json.dumps(bbox)}: expected an array of 4 or 6 numbers"
        )
    q.echo_body = {k: v for k, v in obj.items() if k not in ("token", "key")}
    q.key = json.dumps([obj.get(n) for n in SELECTING], sort_keys=True)
    return _finish(q, bbox, obj.get("intersects"), obj.get("datetime"))


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
    found = np.flatnonzero(mask).astype(np.int64)
    if q.conditions and len(found):
        props = source.properties([int(i) for i in found])
        keep = np.fromiter((matches_all(q.conditions, p) for p in props), bool, len(found))
        found = found[keep]
    return found


@dataclass(frozen=True)
class Matches:
    """The results of a search, in result order: item ``pos[k]`` of ``collections[col[k]]``."""

    collections: tuple[str, ...]
    col: np.ndarray[Any, np.dtype[np.int32]]
    pos: IntArray

    def __len__(self) -> int:
        return len(self.pos)

    def runs(self, start: int, stop: int) -> list[tuple[str, list[int]]]:
        """Results ``start..stop-1`` as ``(collection, positions)`` runs, in result order."""
        out: list[tuple[str, list[int]]] = []
        for c, p in zip(self.col[start:stop].tolist(), self.pos[start:stop].tolist(), strict=True):
            cid = self.collections[c]
            if out and out[-1][0] == cid:
                out[-1][1].append(p)
            else:
                out.append((cid, [p]))
        return out


def find_matches(
    q: SearchQuery, collection_ids: Sequence[str], source_of: Callable[[str], ItemSource]
) -> Matches:
    """Match ``q`` in each collection (in order), then apply its ``sortby``."""
    found = [(cid, match_source(source_of(cid), q)) for cid in collection_ids]
    found = [(cid, p) for cid, p in found if len(p)]
    cols = tuple(cid for cid, _ in found)
    col = np.concatenate(
        [np.full(len(p), i, dtype=np.int32) for i, (_, p) in enumerate(found)]
        or [np.zeros(0, dtype=np.int32)]
    )
    pos = np.concatenate([p for _, p in found] or [np.zeros(0, dtype=np.int64)])
    if q.sortby and len(pos) > 1:
        order = _sort_order(q.sortby, found, source_of)
        col, pos = col[order], pos[order]
    return Matches(cols, col, pos)


def _sort_order(
    keys: Sequence[SortKey],
    found: list[tuple[str, IntArray]],
    source_of: Callable[[str], ItemSource],
) -> IntArray:
    """The permutation of the concatenated results that ``keys`` ask for (stable)."""
    columns: list[list[Any]] = []
    props: list[JSON] = []
    if any(k.path[0] == "properties" for k in keys):
        for cid, positions in found:
            props += source_of(cid).properties([int(i) for i in positions])
    for k in keys:
        if k.path == ("id",):
            values: list[Any] = []
            for cid, positions in found:
                ids = source_of(cid).ids()
                values += [(1, ids[int(i)]) for i in positions]
        elif k.path == ("collection",):
            values = [(1, cid) for cid, positions in found for _ in range(len(positions))]
        else:
            name = k.path[1]
            values = [sort_value(name, p.get(name)) for p in props]
        columns.append(values)
    order = list(range(sum(len(p) for _, p in found)))
    for k, values in zip(reversed(keys), reversed(columns), strict=True):
        present = [i for i in order if values[i] is not None]
        missing = [i for i in order if values[i] is None]
        present.sort(key=values.__getitem__, reverse=k.descending)
        order = present + missing
    return np.asarray(order, dtype=np.int64)


class MatchCache:
    """Recent search results (:class:`Matches`) per query key."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._data: OrderedDict[str, Matches] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Matches | None:
        """The cached result of ``key``, if any."""
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
            return hit

    def put(self, key: str, value: Matches) -> None:
        """Remember ``value`` for ``key`` (dropping the least recently used)."""
        with self._lock:
            self._data[key] = value
            while len(self._data) > self._size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._data.clear()
