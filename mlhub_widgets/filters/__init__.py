"""Download and discovery filters: validated once, applied to STAC items many times.

This package is the single place where the ``bbox``, ``intersects``, ``datetime`` and
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

Modules: :mod:`.spatial` (bbox, intersects), :mod:`.temporal` (datetime), :mod:`.content`
(collection_filter), :mod:`.asset_filter` (:class:`AssetFilter`, which applies them all) and
:mod:`.common` (what they share).
"""

from __future__ import annotations

from .asset_filter import AssetFilter, FilterStats
from .common import Exclusion
from .content import validate_collection_filter
from .spatial import BBox, validate_bbox, validate_intersects
from .temporal import DateRange, validate_datetime

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
