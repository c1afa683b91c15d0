"""Typed aliases for the flexible arguments of the public API.

A bbox, an area, dates and a collection filter can each be given in several forms; these aliases
name the forms that are accepted, for type checkers and for readers of a signature. Values are
still checked at run time (:mod:`mlhub_widgets.filters`), with a clear error for anything else.

>>> from mlhub_widgets.types import BBoxLike
>>> def west_africa() -> BBoxLike:
...     return (-18.0, 4.0, 4.0, 16.0)
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeAlias

__all__ = [
    "BBoxLike",
    "CollectionFilter",
    "DatasetLike",
    "DateBound",
    "DatetimeLike",
    "GeoInterface",
    "IntersectsLike",
]


class GeoInterface(Protocol):
    """Anything with ``__geo_interface__``: shapely geometries, GeoDataFrames/GeoSeries (in
    EPSG:4326), most GIS objects."""

    @property
    def __geo_interface__(self) -> Mapping[str, Any]: ...


BBoxLike: TypeAlias = Sequence[float]
"""``[west, south, east, north]`` in EPSG:4326 degrees (``west > east`` crosses the
antimeridian), or a 3-D STAC bbox ``[west, south, zmin, east, north, zmax]``."""

IntersectsLike: TypeAlias = Mapping[str, Any] | str | GeoInterface
"""A GeoJSON Geometry, Feature or FeatureCollection (a mapping or JSON text), or an object with
``__geo_interface__`` such as a shapely geometry."""

DateBound: TypeAlias = str | _dt.date | _dt.datetime | None
"""One end of a date range: ISO 8601 text (``"2018"``, ``"2018-12"``, ``"2018-12-15"``, an
instant), a ``date`` (the whole UTC day), an aware ``datetime``, or ``None`` (open)."""

DatetimeLike: TypeAlias = DateBound | tuple[DateBound, DateBound] | list[DateBound]
"""A date, an instant, a STAC interval ``"A/B"`` (``..`` = open), or a ``(start, end)`` pair."""

CollectionFilter: TypeAlias = Mapping[str, Iterable[str] | None]
"""``{collection_id: [asset_key, ...]}``: the collections to download and, for each, the asset
keys (an empty list or ``None``: all of them)."""


class DatasetLike(Protocol):
    """What discovery reads from a :class:`~mlhub_widgets.Dataset`: its id and its API record."""

    @property
    def id(self) -> str: ...

    @property
    def raw(self) -> Mapping[str, Any]: ...
