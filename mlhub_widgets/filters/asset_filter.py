"""Download and discovery filters: validated once, applied to STAC items many times.

This module is the single place where the ``bbox``, ``intersects``, ``datetime`` and
``collection_filter`` arguments of downloads and searches are checked and applied. Every check
raises :class:`ValueError` (a value of the right kind that is wrong) or :class:`TypeError` (a value
of the wrong kind) with a message meant to be shown to a notebook user as is.

Semantics:

* **bbox** is ``[west, south, east, north]`` in EPSG:4326 degrees. ``west > east`` means the box
  crosses the antimeridian (e.g. ``[170, -20, -170, -10]`` spans 170°E..180° and -180°..-170°).
  A 3-D STAC bbox ``[west, south, zmin, east, north, zmax]`` is accepted; the heights are dropped.
* **intersects** is any GeoJSON Geometry, Feature or FeatureCollection (the union of its
  features), a shapely geometry or an object with ``__geo_interface__`` (e.g. a GeoDataFrame in
  EPSG:4326), or the same as a JSON string. It is used in planar lon/lat as given.
* **datetime** bounds are inclusive and in UTC. A ``date`` (or ``"2018-12-15"``) is the whole UTC
  day, ``"2018-12"`` the whole month, ``"2018"`` the whole year; a single datetime is one instant.
  Naive datetimes are rejected (add ``tzinfo=datetime.timezone.utc``). An interval open at both
  ends (``"../.."`` or ``(None, None)``) means no date filter.
* Items are tested by their **geometry** (their ``bbox`` only as a fast prefilter; items without
  geometry fall back to the bbox; items with neither never match a spatial filter). Items with
  ``start_datetime``/``end_datetime`` match when that range overlaps the filter range; items with
  only ``datetime`` match when it lies in the range; items with no readable date never match a
  datetime filter. :meth:`AssetFilter.explain` and :class:`FilterStats` say why an item was left
  out, so callers can report e.g. "120 items skipped: no date".
* Collection-level assets (not inside an item) are only subject to ``collection_filter``.
"""

from __future__ import annotations

import calendar
import enum
import importlib
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from datetime import date as _date
from datetime import datetime as _datetime
from datetime import time as _time
from decimal import Decimal
from numbers import Real
from typing import TYPE_CHECKING, Any, TypeAlias


class _LazyModule:
    """Stands for a module in this module's namespace until first used.

    The first attribute access imports the module and puts it in this module's globals in place
    of the stand-in, so later uses are plain global lookups (the per-item code stays fast).
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self._name)
        globals()[self._name] = module
        return getattr(module, attr)


# shapely (which loads numpy) is imported on first use, not here: a filter without bbox or
# intersects never builds a geometry, and importing it would slow down ``import
# mlhub_widgets.download`` and every ``mlhub`` command (tests/test_imports.py checks this).
# dateutil is imported in the rare paths that need it, for the same reason.
if TYPE_CHECKING:
    import shapely
    from shapely.geometry.base import BaseGeometry
else:
    shapely = _LazyModule("shapely")

BBox: TypeAlias = tuple[float, float, float, float]
"""``(west, south, east, north)`` in EPSG:4326 degrees."""

__all__ = [
    "AssetFilter",
    "BBox",
    "DateRange",
    "Exclusion",
    "FilterStats",
    "validate_bbox",
    "validate_collection_filter",
    "validate_datetime",
    "validate_intersects",
]

_UTC = UTC
_EPOCH = _datetime(1970, 1, 1, tzinfo=_UTC)
_ONE_US = timedelta(microseconds=1)
_END_OF_DAY = _time(23, 59, 59, 999999)


# --------------------------------------------------------------------------------------------
# small helpers


def _is_number(value: object) -> bool:
    """A real number that is not a bool (``True`` is an int in Python, never a coordinate)."""
    return isinstance(value, Real) and not isinstance(value, bool)


def _check_number(value: object, what: str) -> None:
    """TypeError unless ``value`` is a real number (bools and strings are not)."""
    if not (_is_number(value) or isinstance(value, Decimal)):
        raise TypeError(f"{what} must be a number, got {type(value).__name__} {_short_repr(value)}")


def _as_float(value: object, what: str) -> float:
    """A finite float from a real number (bools and strings are TypeErrors)."""
    _check_number(value, what)
    try:
        result = float(value)  # type: ignore[arg-type]
    except (OverflowError, ValueError):  # 10**400, Decimal("sNaN")
        raise ValueError(
            f"{what} must be a finite number in coordinate range, got {_short_repr(value)}"
        ) from None
    if not math.isfinite(result):
        raise ValueError(f"{what} must be a finite number, got {result}")
    return result


def _fmt_num(value: float) -> str:
    """Shortest exact text for a coordinate: ``-87.561``, ``10``."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _short_repr(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _list_valid(values: Iterable[str], limit: int = 25) -> str:
    ordered = sorted(values)
    if not ordered:
        return "(none)"
    shown = ", ".join(repr(v) for v in ordered[:limit])
    if len(ordered) > limit:
        shown += f", … and {len(ordered) - limit} more"
    return shown


# --------------------------------------------------------------------------------------------
# bbox


def validate_bbox(bbox: object) -> BBox:
    """Check a ``[west, south, east, north]`` box in EPSG:4326 and return it as a float tuple.

    ``west > east`` is allowed and means the box crosses the antimeridian. A 3-D STAC bbox
    (6 numbers: ``[west, south, zmin, east, north, zmax]``) is accepted and its heights dropped.

    Raises:
        TypeError: not a sequence, or an element is not a real number (bools and strings too).
        ValueError: wrong length, NaN/infinite values, longitude outside [-180, 180], latitude
            outside [-90, 90], ``south > north`` or ``zmin > zmax``.
    """
    if not isinstance(bbox, list | tuple) and hasattr(bbox, "tolist"):
        bbox = bbox.tolist()  # numpy arrays, pandas Series
    if isinstance(bbox, str | bytes | bytearray | Mapping) or not isinstance(bbox, Sequence):
        raise TypeError(
            "bbox must be a list of 4 numbers [west, south, east, north], "
            f"got {type(bbox).__name__} {_short_repr(bbox)}"
        )
    values = list(bbox)
    if len(values) not in (4, 6):
        raise ValueError(
            "bbox must have 4 numbers [west, south, east, north] "
            f"(or 6 for a 3-D box), got {len(values)}: {_short_repr(values)}"
        )
    for i, v in enumerate(values):  # all types first, so the error kind does not depend on order
        _check_number(v, f"bbox element {i}")
    floats = [_as_float(v, f"bbox element {i}") for i, v in enumerate(values)]
    if len(floats) == 6:
        west, south, zmin, east, north, zmax = floats
        if zmin > zmax:
            raise ValueError(
                f"3-D bbox [west, south, zmin, east, north, zmax] has zmin {_fmt_num(zmin)} "
                f"greater than zmax {_fmt_num(zmax)}"
            )
    else:
        west, south, east, north = floats
    for name, v in (("west", west), ("east", east)):
        if not -180.0 <= v <= 180.0:
            raise ValueError(
                f"bbox {name} longitude {_fmt_num(v)} is outside [-180, 180]; "
                "bbox is [west, south, east, north] in degrees (EPSG:4326)"
            )
    for name, v in (("south", south), ("north", north)):
        if not -90.0 <= v <= 90.0:
            raise ValueError(
                f"bbox {name} latitude {_fmt_num(v)} is outside [-90, 90]; "
                "bbox is [west, south, east, north] in degrees (EPSG:4326)"
            )
    if south > north:
        raise ValueError(
            f"bbox south {_fmt_num(south)} is greater than north {_fmt_num(north)}; "
            "bbox is [west, south, east, north]"
        )
    return (west, south, east, north)


def _bbox_envelopes(west: float, south: float, east: float, north: float) -> list[BBox]:
    """One envelope, or two when the box crosses the antimeridian (west > east)."""
    if west <= east:
        return [(west, south, east, north)]
    return [(west, south, 180.0, north), (-180.0, south, east, north)]


def _rect(west: float, south: float, east: float, north: float) -> BaseGeometry:
    """A box as a valid geometry: a point or a segment when it has no width or height."""
    if west == east and south == north:
        return shapely.Point(west, south)
    if west == east or south == north:
        return shapely.LineString([(west, south), (east, north)])
    return shapely.box(west, south, east, north)


# --------------------------------------------------------------------------------------------
# intersects

_GEOMETRY_TYPES = frozenset(
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


_REPROJECT_HINT = " (EPSG:4326; reproject e.g. a GeoDataFrame with .to_crs(4326))"


def _check_position(pos: object, where: str) -> list[float]:
    if not isinstance(pos, list | tuple):
        raise ValueError(
            f"{where}: a position must be [longitude, latitude], got {_short_repr(pos)}"
        )
    if len(pos) not in (2, 3):
        raise ValueError(
            f"{where}: a position must have 2 or 3 numbers [longitude, latitude(, height)], "
            f"got {len(pos)}: {_short_repr(pos)}"
        )
    try:
        out = [_as_float(v, f"{where}: coordinate") for v in pos]
    except TypeError as exc:
        raise ValueError(str(exc)) from None
    lon, lat = out[0], out[1]
    if not -180.0 <= lon <= 180.0:
        raise ValueError(
            f"{where}: longitude {_fmt_num(lon)} is outside [-180, 180]; coordinates must be "
            "[longitude, latitude] in degrees" + _REPROJECT_HINT
        )
    if not -90.0 <= lat <= 90.0:
        raise ValueError(
            f"{where}: latitude {_fmt_num(lat)} is outside [-90, 90]; coordinates must be "
            "[longitude, latitude] in degrees" + _REPROJECT_HINT
        )
    return [lon, lat]


def _check_positions(seq: object, where: str, minimum: int, what: str) -> list[list[float]]:
    if not isinstance(seq, list | tuple):
        raise ValueError(f"{where}: {what} must be a list of positions, got {_short_repr(seq)}")
    if len(seq) < minimum:
        raise ValueError(f"{where}: {what} needs at least {minimum} positions, got {len(seq)}")
    return [_check_position(p, where) for p in seq]


def _check_polygon(rings: object, where: str) -> list[list[list[float]]]:
    if not isinstance(rings, list | tuple):
        raise ValueError(f"{where}: Polygon coordinates must be a list of rings")
    if not rings:
        raise ValueError(f"{where}: Polygon is empty (no rings)")
    out = []
    for i, ring in enumerate(rings):
        pts = _check_positions(ring, where, 4, f"ring {i}")
        if pts[0] != pts[-1]:
            raise ValueError(
                f"{where}: ring {i} is not closed: its first position {pts[0]} differs from its "
                f"last {pts[-1]} (GeoJSON rings must repeat the first position at the end)"
            )
        out.append(pts)
    return out


def _clean_geojson_geometry(obj: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Check one GeoJSON Geometry object and return a 2-D copy of it."""
    gtype = obj.get("type")
    if gtype not in _GEOMETRY_TYPES:
        raise ValueError(
            f"{where}: unknown GeoJSON type {_short_repr(gtype)}; expected a Geometry "
            f"({', '.join(sorted(_GEOMETRY_TYPES))}), a Feature or a FeatureCollection"
        )
    if gtype == "GeometryCollection":
        members = obj.get("geometries")
        if not isinstance(members, list | tuple):
            raise ValueError(f"{where}: GeometryCollection needs a 'geometries' list")
        if not members:
            raise ValueError(f"{where}: GeometryCollection is empty")
        parts = []
        for i, m in enumerate(members):
            if not isinstance(m, Mapping):
                raise ValueError(f"{where}: geometries[{i}] is not a GeoJSON object")
            parts.append(_clean_geojson_geometry(m, f"{where}.geometries[{i}]"))
        return {"type": gtype, "geometries": parts}
    if "coordinates" not in obj:
        raise ValueError(f"{where}: {gtype} has no 'coordinates'")
    coords = obj["coordinates"]
    where = f"{where} ({gtype})"
    if gtype == "Point":
        clean: Any = _check_position(coords, where)
    elif gtype in ("MultiPoint", "LineString", "MultiLineString", "MultiPolygon"):
        if not isinstance(coords, list | tuple):
            raise ValueError(f"{where}: coordinates must be a list, got {_short_repr(coords)}")
        if not coords:
            raise ValueError(f"{where}: geometry is empty (no coordinates)")
        if gtype == "MultiPoint":
            clean = [_check_position(p, where) for p in coords]
        elif gtype == "LineString":
            clean = _check_positions(coords, where, 2, "a LineString")
        elif gtype == "MultiLineString":
            clean = [_check_positions(line, where, 2, f"line {i}") for i, line in enumerate(coords)]
        else:
            clean = [_check_polygon(poly, f"{where} polygon {i}") for i, poly in enumerate(coords)]
    else:  # Polygon
        clean = _check_polygon(coords, where)
    return {"type": gtype, "coordinates": clean}


def _check_shapely(geom: BaseGeometry, where: str) -> BaseGeometry:
    if geom.is_empty:
        raise ValueError(f"{where}: the geometry is empty")
    minx, miny, maxx, maxy = (float(v) for v in geom.bounds)
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
        raise ValueError(f"{where}: the geometry has coordinates that are not finite numbers")
    if minx < -180.0 or maxx > 180.0 or miny < -90.0 or maxy > 90.0:
        raise ValueError(
            f"{where}: coordinates outside longitude [-180, 180] / latitude [-90, 90] "
            f"(bounds {[_fmt_num(v) for v in (minx, miny, maxx, maxy)]}); the geometry must be "
            "in degrees" + _REPROJECT_HINT
        )
    geom = shapely.force_2d(geom)
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        raise ValueError(
            f"{where}: the geometry is not valid ({reason}); fix it, e.g. with "
            "shapely.make_valid(geometry)"
        )
    return geom


def _geometry_from_mapping(obj: Mapping[str, Any], where: str) -> BaseGeometry:
    gtype = obj.get("type")
    if gtype == "Feature":
        geom = obj.get("geometry")
        if geom is None:
            raise ValueError(f"{where}: the Feature has no geometry (geometry is null or missing)")
        if not isinstance(geom, Mapping):
            raise ValueError(f"{where}: the Feature's geometry is not a GeoJSON object")
        return _geometry_from_mapping(geom, f"{where}.geometry")
    if gtype == "FeatureCollection":
        features = obj.get("features")
        if not isinstance(features, list | tuple):
            raise ValueError(f"{where}: FeatureCollection needs a 'features' list")
        geoms = []
        for i, feat in enumerate(features):
            if not isinstance(feat, Mapping) or feat.get("type") != "Feature":
                raise ValueError(f"{where}: features[{i}] is not a GeoJSON Feature")
            if feat.get("geometry") is None:
                continue  # valid GeoJSON: a feature without location
            geoms.append(_geometry_from_mapping(feat, f"{where}.features[{i}]"))
        if not geoms:
            raise ValueError(f"{where}: FeatureCollection has no feature with a geometry")
        if len(geoms) == 1:
            return geoms[0]
        return _check_shapely(shapely.union_all(geoms), where)
    clean = _clean_geojson_geometry(obj, where)
    try:
        geom = shapely.geometry.shape(clean)
    except (ValueError, TypeError, shapely.errors.ShapelyError) as exc:
        raise ValueError(f"{where}: cannot build the geometry: {exc}") from None
    return _check_shapely(geom, where)


def validate_intersects(geom: object) -> BaseGeometry:
    """Turn an area of interest into a valid 2-D shapely geometry in EPSG:4326.

    Accepts a GeoJSON Geometry, Feature or FeatureCollection (the union of its features) as a
    dict or JSON string, a shapely geometry, or any object with ``__geo_interface__``.

    Raises:
        TypeError: an object that is none of these.
        ValueError: malformed or empty GeoJSON, unclosed rings, invalid (e.g. self-intersecting)
            geometry, or coordinates outside longitude/latitude range.
    """
    where = "intersects"
    if isinstance(geom, shapely.geometry.base.BaseGeometry):
        return _check_shapely(geom, where)
    if isinstance(geom, str | bytes):
        try:
            geom = json.loads(geom)
        except ValueError as exc:
            raise ValueError(f"{where}: the string is not valid GeoJSON text: {exc}") from None
    elif not isinstance(geom, Mapping) and hasattr(geom, "__geo_interface__"):
        geom = geom.__geo_interface__
    if not isinstance(geom, Mapping):
        raise TypeError(
            "intersects must be a GeoJSON Geometry, Feature or FeatureCollection (dict or JSON "
            f"text), a shapely geometry or an object with __geo_interface__, got "
            f"{type(geom).__name__}"
        )
    return _geometry_from_mapping(geom, where)


# --------------------------------------------------------------------------------------------
# datetime


def _to_utc(value: _datetime, what: str) -> _datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{what} {value.isoformat()} has no timezone; make it timezone-aware, e.g. "
            f"{value.replace(tzinfo=None)!r}.replace(tzinfo=datetime.timezone.utc) or "
            "datetime(…, tzinfo=datetime.timezone.utc)"
        )
    try:
        return value.astimezone(_UTC)
    except OverflowError:
        raise ValueError(
            f"{what} {value.isoformat()} is out of range once converted to UTC"
        ) from None


def _format_utc(value: _datetime) -> str:
    return value.astimezone(_UTC).replace(tzinfo=None).isoformat() + "Z"


@dataclass(frozen=True)
class DateRange:
    """An inclusive UTC time range; ``None`` is an open end.

    ``DateRange(t, t)`` is a single instant. Both ends are timezone-aware (UTC) datetimes.
    """

    start: _datetime | None
    end: _datetime | None

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            v = getattr(self, name)
            if v is None:
                continue
            if not isinstance(v, _datetime):
                raise TypeError(
                    f"DateRange.{name} must be a datetime or None, got {type(v).__name__}"
                )
            object.__setattr__(self, name, _to_utc(v, f"DateRange.{name}"))
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError(
                f"the end of the date range ({_format_utc(self.end)}) is before its start "
                f"({_format_utc(self.start)})"
            )

    @property
    def is_open(self) -> bool:
        """True when both ends are open (no constraint at all)."""
        return self.start is None and self.end is None

    def to_stac(self) -> str:
        """STAC API ``datetime`` text: ``"A/B"`` (``..`` = open end), or ``"A"`` for an instant."""
        if self.start is not None and self.start == self.end:
            return _format_utc(self.start)
        a = ".." if self.start is None else _format_utc(self.start)
        b = ".." if self.end is None else _format_utc(self.end)
        return f"{a}/{b}"

    def __str__(self) -> str:
        return self.to_stac()


_YEAR_RE = re.compile(r"[0-9]{4}")
_MONTH_RE = re.compile(r"[0-9]{4}-[0-9]{2}")
_DAY_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{8}")


def _day_range(d: _date) -> tuple[_datetime, _datetime]:
    return (
        _datetime.combine(d, _time(0), tzinfo=_UTC),
        _datetime.combine(d, _END_OF_DAY, tzinfo=_UTC),
    )


def _parse_user_text(text: str, what: str) -> tuple[_datetime, _datetime]:
    """A date/datetime string → the (first, last) instant it denotes."""
    s = text.strip()
    try:
        if _YEAR_RE.fullmatch(s):
            year = int(s)
            return _day_range(_date(year, 1, 1))[0], _day_range(_date(year, 12, 31))[1]
        if _MONTH_RE.fullmatch(s):
            year, month = int(s[:4]), int(s[5:7])
            first = _date(year, month, 1)
            last = _date(year, month, calendar.monthrange(year, month)[1])
            return _day_range(first)[0], _day_range(last)[1]
        if _DAY_RE.fullmatch(s):
            return _day_range(_date.fromisoformat(s))
    except ValueError as exc:
        raise ValueError(f"{what} {text!r} is not a valid date: {exc}") from None
    parsed: _datetime | None = None
    try:
        parsed = _datetime.fromisoformat(s)
    except ValueError:
        from dateutil.parser import isoparse

        try:
            parsed = isoparse(s)
        except Exception:  # a third-party parser: any failure means "not a date"
            parsed = None
    if parsed is None:
        raise ValueError(
            f"{what} {text!r} is not an ISO 8601 date or datetime; use e.g. '2018-12-15', "
            "'2018-12-15T10:30:00Z' or an interval '2018-01-01/2018-12-31' ('..' for an open end)"
        )
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(
            f"{what} {text!r} has no timezone; add 'Z' for UTC (e.g. '{s}Z') or an offset "
            "such as '+02:00'"
        )
    utc = _to_utc(parsed, what)
    return utc, utc


def _parse_bound(value: object, what: str) -> tuple[_datetime, _datetime] | None:
    """One end of a range (or a single value): returns its (first, last) instants or None."""
    if value is None:
        return None
    if isinstance(value, _datetime):
        utc = _to_utc(value, what)
        return utc, utc
    if isinstance(value, _date):
        return _day_range(value)
    if isinstance(value, str):
        if value.strip() in ("", ".."):
            return None
        return _parse_user_text(value, what)
    raise TypeError(
        f"{what} must be a timezone-aware datetime, a date, an ISO 8601 string or None, "
        f"got {type(value).__name__} {_short_repr(value)}"
    )


def _range_from_pair(start: object, end: object) -> DateRange:
    lo = _parse_bound(start, "datetime start")
    hi = _parse_bound(end, "datetime end")
    return DateRange(None if lo is None else lo[0], None if hi is None else hi[1])


def validate_datetime(value: object) -> DateRange:
    """Turn a datetime filter into an inclusive UTC :class:`DateRange`.

    Accepts an aware ``datetime`` (one instant), a ``date`` (the whole UTC day), an ISO 8601
    string (``"2018-12-15"`` = whole day, ``"2018-12"`` = month, ``"2018"`` = year,
    ``"2018-12-15T00:00:00Z"`` = instant), a STAC interval ``"A/B"`` (``..`` or empty = open),
    a ``(start, end)`` pair of those (``None`` = open) or a :class:`DateRange`.

    Raises:
        TypeError: a value of another type (numbers, bools, …).
        ValueError: naive datetimes or strings without timezone, unparseable strings, end
            before start, pairs that are not of length 2.
    """
    if isinstance(value, DateRange):
        return value
    if isinstance(value, str):
        if "/" in value:
            parts = value.split("/")
            if len(parts) != 2:
                raise ValueError(
                    f"datetime interval {value!r} must be 'start/end' with exactly one '/'"
                )
            return _range_from_pair(parts[0], parts[1])
        if value.strip() in ("", ".."):
            raise ValueError(
                f"datetime {value!r} is empty; pass None for no date filter, or an interval "
                "such as '2018-01-01/..'"
            )
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise ValueError(
                f"a datetime range must be a (start, end) pair, got {len(value)} values"
            )
        return _range_from_pair(value[0], value[1])
    bound = _parse_bound(value, "datetime")
    if bound is None:  # None: no constraint
        return DateRange(None, None)
    return DateRange(bound[0], bound[1])


# Parsing of item dates: cached, because catalogues repeat the same timestamps thousands of times.
_ItemSpan: TypeAlias = tuple[int, int]  # microseconds since the epoch, inclusive
_ITEM_DATE_CACHE: dict[str, _ItemSpan | None] = {}
_ITEM_DATE_CACHE_MAX = 100_000


def _us(value: _datetime) -> int:
    return (value - _EPOCH) // _ONE_US


def _parse_item_date(text: str) -> _ItemSpan | None:
    """An item's datetime string → (first, last) microseconds, or None when unreadable.

    Lenient, as catalogues are: a missing timezone is read as UTC (STAC requires UTC), a bare
    date is the whole day. Never raises.
    """
    try:
        return _ITEM_DATE_CACHE[text]
    except KeyError:
        pass
    span: _ItemSpan | None
    try:
        if len(text) <= 10 and _DAY_RE.fullmatch(text):
            lo, hi = _day_range(_date.fromisoformat(text))
            span = (_us(lo), _us(hi))
        else:
            try:
                dt = _datetime.fromisoformat(text)
            except ValueError:
                from dateutil.parser import isoparse

                dt = isoparse(text)  # odd but readable forms, e.g. 24:00:00
            if dt.tzinfo is None or dt.utcoffset() is None:
                dt = dt.replace(tzinfo=_UTC)
            t = _us(dt)
            span = (t, t)
    except Exception:  # unreadable item dates never stop a download
        span = None
    if len(_ITEM_DATE_CACHE) >= _ITEM_DATE_CACHE_MAX:
        _ITEM_DATE_CACHE.clear()
    _ITEM_DATE_CACHE[text] = span
    return span


# --------------------------------------------------------------------------------------------
# collection filter


def validate_collection_filter(
    cf: object, available: Mapping[str, Iterable[str]] | None = None
) -> dict[str, frozenset[str] | None]:
    """Check ``{collection_id: [asset_key, ...]}``; an empty list or None means all asset keys.

    With ``available`` (collection id → its asset keys), unknown collection ids or asset keys
    raise a :class:`ValueError` listing the valid ones. An empty mapping is returned as ``{}``
    (:class:`AssetFilter` treats it as "no collection filter", as radiant_mlhub does).

    Raises:
        TypeError: not a mapping, a non-string id/key, or a bare string instead of a list.
        ValueError: empty ids/keys, or ids/keys not in ``available``.
    """
    if not isinstance(cf, Mapping):
        raise TypeError(
            "collection_filter must be a dict like {'collection_id': ['asset_key', ...]} "
            f"(an empty list means all assets), got {type(cf).__name__}"
        )
    avail: dict[str, frozenset[str]] | None = None
    if available is not None:
        avail = {cid: frozenset(keys) for cid, keys in available.items()}
    out: dict[str, frozenset[str] | None] = {}
    for cid, keys in cf.items():
        if not isinstance(cid, str):
            raise TypeError(
                f"collection_filter keys must be collection ids (str), got {type(cid).__name__} "
                f"{_short_repr(cid)}"
            )
        if not cid.strip():
            raise ValueError("collection_filter has an empty collection id")
        if avail is not None and cid not in avail:
            raise ValueError(
                f"collection_filter: unknown collection {cid!r}; valid collections: "
                f"{_list_valid(avail)}"
            )
        if keys is None:
            out[cid] = None
            continue
        if isinstance(keys, str | bytes):
            raise TypeError(
                f"collection_filter[{cid!r}] must be a list of asset keys, got the string "
                f"{keys!r}; did you mean [{keys!r}]?"
            )
        if isinstance(keys, Mapping) or not isinstance(keys, Iterable):
            raise TypeError(
                f"collection_filter[{cid!r}] must be a list of asset keys (or an empty list for "
                f"all assets), got {type(keys).__name__}"
            )
        key_set: set[str] = set()
        for key in keys:
            if not isinstance(key, str):
                raise TypeError(
                    f"collection_filter[{cid!r}]: asset keys must be strings, got "
                    f"{type(key).__name__} {_short_repr(key)}"
                )
            if not key.strip():
                raise ValueError(f"collection_filter[{cid!r}] has an empty asset key")
            key_set.add(key)
        if avail is not None:
            unknown = key_set - avail[cid]
            if unknown:
                raise ValueError(
                    f"collection_filter[{cid!r}]: unknown asset key(s) {_list_valid(unknown)}; "
                    f"valid asset keys of {cid!r}: {_list_valid(avail[cid])}"
                )
        out[cid] = frozenset(key_set) if key_set else None
    return out


# --------------------------------------------------------------------------------------------
# the filter


class Exclusion(enum.Enum):
    """Why :meth:`AssetFilter.item_matches` rejected an item."""

    NO_LOCATION = "the item has neither a geometry nor a bbox, and a spatial filter is set"
    OUTSIDE_AREA = "the item's geometry does not intersect the area of interest"
    NO_DATE = (
        "the item has no date (no datetime, start_datetime or end_datetime) "
        "and a datetime filter is set"
    )
    BAD_DATE = "the item's date cannot be read, and a datetime filter is set"
    OUTSIDE_DATES = "the item's date is outside the datetime range"


@dataclass
class FilterStats:
    """Counts of matched and excluded items, filled by :meth:`AssetFilter.item_matches`."""

    matched: int = 0
    excluded: Counter[Exclusion] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return self.matched + sum(self.excluded.values())

    def summary(self) -> str:
        """E.g. ``"9 items matched; excluded: 1403 outside the area, 2 without a date"``."""
        labels = {
            Exclusion.NO_LOCATION: "without geometry or bbox",
            Exclusion.OUTSIDE_AREA: "outside the area",
            Exclusion.NO_DATE: "without a date",
            Exclusion.BAD_DATE: "with an unreadable date",
            Exclusion.OUTSIDE_DATES: "outside the dates",
        }
        parts = [f"{n} {labels[reason]}" for reason, n in self.excluded.items() if n]
        text = f"{self.matched} items matched"
        return text + ("; excluded: " + ", ".join(parts) if parts else "")


def _item_envelopes(raw: object) -> list[BBox] | None:
    """An item bbox as 1-2 envelopes (2 across the antimeridian), None if unusable."""
    if not isinstance(raw, list | tuple):
        return None
    n = len(raw)
    if n == 4:
        w, s, e, nn = raw
    elif n == 6:
        w, s, _, e, nn, _ = raw
    else:
        return None
    _num = (int, float)  # JSON numbers; not bool (an int), Decimal or strings
    if not (type(w) in _num and type(s) in _num and type(e) in _num and type(nn) in _num):
        return None
    if not (s <= nn):
        return None
    if w <= e:
        return [(w, s, e, nn)]
    if w > e:
        return _bbox_envelopes(w, s, e, nn)
    return None  # NaN


def _item_geometry(raw: object) -> BaseGeometry | None:
    """Build an item's geometry quickly; None when it is missing or malformed (never raises)."""
    if not isinstance(raw, Mapping):
        return None
    try:
        if raw.get("type") == "Polygon":
            rings = raw["coordinates"]
            if len(rings) == 1:
                geom = shapely.polygons(rings[0])
            else:
                geom = shapely.polygons(rings[0], holes=rings[1:])
        else:
            geom = shapely.geometry.shape(raw)
    except Exception:  # untrusted catalogue content never stops a download
        return None
    if not isinstance(geom, shapely.geometry.base.BaseGeometry) or geom.is_empty:
        return None
    return geom


class _Spatial:
    """The prepared spatial part of a filter (built once per AssetFilter)."""

    __slots__ = ("boxes", "geom", "is_bbox")

    def __init__(self, bbox: BBox | None, intersects: BaseGeometry | None) -> None:
        if bbox is not None:
            self.is_bbox = True
            self.boxes = _bbox_envelopes(*bbox)
            parts = [_rect(*b) for b in self.boxes]
            self.geom = parts[0] if len(parts) == 1 else shapely.union_all(parts)
        elif intersects is not None:
            self.is_bbox = False
            bounds = tuple(float(v) for v in intersects.bounds)
            self.boxes = [(bounds[0], bounds[1], bounds[2], bounds[3])]
            # a copy, so preparing does not touch the caller's object
            self.geom = shapely.from_wkb(shapely.to_wkb(intersects))
        else:
            raise ValueError("a spatial filter needs a bbox or an intersects geometry")
        shapely.prepare(self.geom)
        self.geom.intersects(shapely.Point(0, 0))  # build GEOS' lazy index before threads use it

    def check(self, item: Mapping[str, Any]) -> Exclusion | None:
        envs = _item_envelopes(item.get("bbox"))
        if envs is not None:
            overlaps = False
            inside = True
            for iw, is_, ie, in_ in envs:
                env_hit = False
                for qw, qs, qe, qn in self.boxes:
                    if iw <= qe and ie >= qw and is_ <= qn and in_ >= qs:
                        env_hit = True
                        if not (qw <= iw and ie <= qe and qs <= is_ and in_ <= qn):
                            inside = False
                if env_hit:
                    overlaps = True
                else:
                    inside = False
            if not overlaps:
                return Exclusion.OUTSIDE_AREA
            if self.is_bbox:
                if inside:
                    return None  # the item's bbox, hence its geometry, lies inside the box
            elif len(envs) == 1:
                # one cheap box test often decides without building the item's geometry
                env_geom = _rect(*envs[0])
                try:
                    if not self.geom.intersects(env_geom):
                        return Exclusion.OUTSIDE_AREA
                    if self.geom.contains(env_geom):
                        return None
                except shapely.errors.ShapelyError:
                    pass  # an absurd bbox: let the geometry decide
        geom = _item_geometry(item.get("geometry"))
        if geom is not None:
            try:
                return None if self.geom.intersects(geom) else Exclusion.OUTSIDE_AREA
            except shapely.errors.ShapelyError:
                pass  # a broken item geometry: judge it by its bbox below
        if envs is None:
            return Exclusion.NO_LOCATION
        if self.is_bbox:
            return None  # envelopes overlap (tested above) and the query is a box
        try:
            hit = any(self.geom.intersects(_rect(*e)) for e in envs)
        except shapely.errors.ShapelyError:
            return Exclusion.NO_LOCATION
        return None if hit else Exclusion.OUTSIDE_AREA


def _dates_check(props: object, lo: float, hi: float) -> Exclusion | None:
    if not isinstance(props, Mapping):
        return Exclusion.NO_DATE
    start = props.get("start_datetime")
    end = props.get("end_datetime")
    single = props.get("datetime")
    bad = False
    s_span: _ItemSpan | None = None
    e_span: _ItemSpan | None = None
    item_lo: float
    item_hi: float
    if start is not None or end is not None:
        if isinstance(start, str):
            s_span = _parse_item_date(start)
        if isinstance(end, str):
            e_span = _parse_item_date(end)
        bad = (start is not None and s_span is None) or (end is not None and e_span is None)
    if s_span is not None and e_span is not None:
        item_lo, item_hi = s_span[0], e_span[1]
    else:
        d_span = _parse_item_date(single) if isinstance(single, str) else None
        if d_span is not None:
            item_lo, item_hi = d_span
        elif s_span is not None:  # open-ended item: started, no end given
            item_lo, item_hi = s_span[0], math.inf
        elif e_span is not None:
            item_lo, item_hi = -math.inf, e_span[1]
        else:
            return Exclusion.BAD_DATE if bad or single is not None else Exclusion.NO_DATE
    if item_lo > item_hi:
        return Exclusion.BAD_DATE
    if item_lo <= hi and item_hi >= lo:
        return None
    return Exclusion.OUTSIDE_DATES


@dataclass(frozen=True)
class AssetFilter:
    """Validated download/discovery filters, applied item by item while a catalogue streams in.

    Build it with :meth:`build` (which validates raw user input); the constructor validates too.
    ``bbox`` and ``intersects`` are mutually exclusive, as in radiant_mlhub.
    """

    bbox: BBox | None = None
    intersects: BaseGeometry | None = None
    datetime: DateRange | None = None
    collection_filter: dict[str, frozenset[str] | None] | None = None
    _spatial: _Spatial | None = field(default=None, init=False, repr=False, compare=False)
    _lo: float = field(default=-math.inf, init=False, repr=False, compare=False)
    _hi: float = field(default=math.inf, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.bbox is not None and self.intersects is not None:
            raise ValueError(
                "bbox and intersects cannot be used together; pass only one area of interest"
            )
        setattr_ = object.__setattr__
        if self.bbox is not None:
            setattr_(self, "bbox", validate_bbox(self.bbox))
        if self.intersects is not None:
            setattr_(self, "intersects", validate_intersects(self.intersects))
        if self.datetime is not None:
            dr = validate_datetime(self.datetime)
            setattr_(self, "datetime", None if dr.is_open else dr)
        if self.collection_filter is not None:
            cf = validate_collection_filter(self.collection_filter)
            setattr_(self, "collection_filter", cf or None)
        if self.bbox is not None or self.intersects is not None:
            setattr_(self, "_spatial", _Spatial(self.bbox, self.intersects))
        if self.datetime is not None:
            if self.datetime.start is not None:
                setattr_(self, "_lo", _us(self.datetime.start))
            if self.datetime.end is not None:
                setattr_(self, "_hi", _us(self.datetime.end))

    @classmethod
    def build(
        cls,
        *,
        bbox: object = None,
        intersects: object = None,
        datetime: object = None,
        collection_filter: object = None,
        available: Mapping[str, Iterable[str]] | None = None,
    ) -> AssetFilter:
        """Validate raw user input (see the ``validate_*`` functions) and build the filter.

        ``available`` (collection id → asset keys) makes unknown ids/keys in
        ``collection_filter`` an error. ``None`` for any argument means "no such filter".
        """
        if bbox is not None and intersects is not None:
            raise ValueError(
                "bbox and intersects cannot be used together; pass only one area of interest"
            )
        cf = None
        if collection_filter is not None:
            cf = validate_collection_filter(collection_filter, available) or None
        dr = None
        if datetime is not None:
            dr = validate_datetime(datetime)
            dr = None if dr.is_open else dr
        return cls(
            bbox=None if bbox is None else validate_bbox(bbox),
            intersects=None if intersects is None else validate_intersects(intersects),
            datetime=dr,
            collection_filter=cf,
        )

    # -- collections and assets ------------------------------------------------------------

    def wants_collection(self, collection_id: str) -> bool:
        """Whether any asset of this collection can be selected."""
        return self.collection_filter is None or collection_id in self.collection_filter

    def wants_asset(self, collection_id: str, asset_key: str) -> bool:
        """Whether the collection filter selects this asset key of this collection."""
        cf = self.collection_filter
        if cf is None:
            return True
        if collection_id not in cf:
            return False
        keys = cf[collection_id]
        return keys is None or asset_key in keys

    # -- items -------------------------------------------------------------------------------

    def _check(self, item: Mapping[str, Any]) -> Exclusion | None:
        if self._spatial is not None:
            reason = self._spatial.check(item)
            if reason is not None:
                return reason
        if self.datetime is not None:
            return _dates_check(item.get("properties"), self._lo, self._hi)
        return None

    def item_matches(self, item: Mapping[str, Any], stats: FilterStats | None = None) -> bool:
        """Whether a STAC item (parsed JSON) passes the spatial and temporal filters.

        Does not look at the collection filter (use :meth:`wants_asset`). Malformed item
        content never raises; it just does not match. Pass ``stats`` to count the reasons.
        """
        if not isinstance(item, Mapping):
            raise TypeError(f"item must be a STAC item dict, got {type(item).__name__}")
        reason = self._check(item)
        if stats is not None:
            if reason is None:
                stats.matched += 1
            else:
                stats.excluded[reason] += 1
        return reason is None

    def exclusion(self, item: Mapping[str, Any]) -> Exclusion | None:
        """The :class:`Exclusion` reason for an item, or None when it matches."""
        if not isinstance(item, Mapping):
            raise TypeError(f"item must be a STAC item dict, got {type(item).__name__}")
        return self._check(item)

    def explain(self, item: Mapping[str, Any]) -> str | None:
        """A sentence saying why the item is excluded, or None when it matches."""
        reason = self.exclusion(item)
        if reason is None:
            return None
        item_id = item.get("id")
        prefix = f"item {item_id!r}: " if isinstance(item_id, str) else ""
        return prefix + reason.value

    def select_assets(self, item: Mapping[str, Any], collection_id: str | None = None) -> list[str]:
        """The asset keys of ``item`` that this filter selects (empty if the item is excluded).

        ``collection_id`` defaults to the item's ``collection`` field.
        """
        cid = collection_id if collection_id is not None else item.get("collection")
        if not isinstance(cid, str) or not self.wants_collection(cid):
            return []
        if not self.item_matches(item):
            return []
        assets = item.get("assets")
        if not isinstance(assets, Mapping):
            return []
        return [k for k in assets if isinstance(k, str) and self.wants_asset(cid, k)]

    # -- reporting ---------------------------------------------------------------------------

    def is_empty(self) -> bool:
        """True when no filter is set (everything is selected)."""
        return (
            self.bbox is None
            and self.intersects is None
            and self.datetime is None
            and self.collection_filter is None
        )

    def describe(self) -> str:
        """A one-line human summary, for messages such as "no asset matched <describe()>"."""
        parts = []
        if self.bbox is not None:
            text = "bbox=[" + ", ".join(_fmt_num(v) for v in self.bbox) + "]"
            if self.bbox[0] > self.bbox[2]:
                text += " (crosses the antimeridian)"
            parts.append(text)
        if self.intersects is not None:
            b = ", ".join(_fmt_num(float(v)) for v in self.intersects.bounds)
            parts.append(f"intersects={self.intersects.geom_type} within [{b}]")
        if self.datetime is not None:
            parts.append(f"datetime={self.datetime.to_stac()}")
        if self.collection_filter is not None:
            inner = ", ".join(
                f"{cid}: " + ("all assets" if keys is None else "[" + ", ".join(sorted(keys)) + "]")
                for cid, keys in sorted(self.collection_filter.items())
            )
            parts.append("collection_filter={" + inner + "}")
        return ", ".join(parts) if parts else "no filter"

    def to_query_params(self) -> dict[str, str]:
        """STAC API item-search parameters: ``bbox``, ``datetime``, ``intersects`` (GeoJSON text).

        The collection filter is not a query parameter (it picks endpoints and asset keys).
        """
        params: dict[str, str] = {}
        if self.bbox is not None:
            params["bbox"] = ",".join(_fmt_num(v) for v in self.bbox)
        if self.intersects is not None:
            params["intersects"] = json.dumps(
                shapely.geometry.mapping(self.intersects), separators=(",", ":")
            )
        if self.datetime is not None:
            params["datetime"] = self.datetime.to_stac()
        return params
