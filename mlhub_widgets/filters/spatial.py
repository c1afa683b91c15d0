"""The area of interest: ``bbox`` and ``intersects`` validated, and an item's geometry tested.

shapely (which loads numpy) is imported on first use, not here: a filter without bbox or
intersects never builds a geometry, and importing it would slow down ``import
mlhub_widgets.download`` and every ``mlhub`` command (tests/test_imports.py checks this).
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from ..types import BBoxLike, IntersectsLike
from .common import (
    Exclusion,
    _as_float,
    _check_number,
    _fmt_num,
    _short_repr,
)


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
if TYPE_CHECKING:
    import shapely
    from shapely.geometry.base import BaseGeometry
else:
    shapely = _LazyModule("shapely")

BBox: TypeAlias = tuple[float, float, float, float]
"""``(west, south, east, north)`` in EPSG:4326 degrees."""


def validate_bbox(bbox: BBoxLike) -> BBox:
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


# `object`: it checks what a user passed, so it must take anything
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


# `object`: it checks what a user passed, so it must take anything
def _check_positions(seq: object, where: str, minimum: int, what: str) -> list[list[float]]:
    if not isinstance(seq, list | tuple):
        raise ValueError(f"{where}: {what} must be a list of positions, got {_short_repr(seq)}")
    if len(seq) < minimum:
        raise ValueError(f"{where}: {what} needs at least {minimum} positions, got {len(seq)}")
    return [_check_position(p, where) for p in seq]


# `object`: it checks what a user passed, so it must take anything
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


def validate_intersects(geom: IntersectsLike) -> BaseGeometry:
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


# `object`: it reads untrusted catalogue JSON, so it must take anything
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


# `object`: it reads untrusted catalogue JSON, so it must take anything
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
            # a collection, not a union: GEOS' union dropped one of two antimeridian boxes of
            # denormal height (6e-289), and no overlay is needed to test intersection
            self.geom = parts[0] if len(parts) == 1 else shapely.GeometryCollection(parts)
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


def geojson_text(geom: BaseGeometry) -> str:
    """``geom`` as compact GeoJSON text (the ``intersects`` query parameter)."""
    return json.dumps(shapely.geometry.mapping(geom), separators=(",", ":"))
