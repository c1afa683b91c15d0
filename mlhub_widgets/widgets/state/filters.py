"""What the explorer downloads: :class:`Filters` (area, dates, content), validated on creation."""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...filters import validate_bbox, validate_collection_filter, validate_intersects
from ...types import DateBound, IntersectsLike


def _as_date(value: object, what: str) -> _dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            raise ValueError(f"{what} {value!r} is not a date (use YYYY-MM-DD)") from None
    raise TypeError(f"{what} must be a date, a 'YYYY-MM-DD' string or None, not {type(value)}")


def _fmt(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Filters:
    """What to download, as chosen in the explorer (or set from code).

    Attributes:
        bbox: ``(west, south, east, north)`` in degrees, or None. Exclusive with ``intersects``.
        intersects: a GeoJSON geometry dict (the area of interest), or None.
        start: first day (inclusive, UTC) or None for an open start.
        end: last day (inclusive, UTC) or None for an open end.
        collection_filter: ``{collection_id: (asset_key, ...)}`` or None for every asset.
            Collections missing from the mapping are not downloaded; ``{}`` selects nothing
            (reported by :meth:`problems`).

    The constructor validates with the core filter functions and raises :class:`ValueError` or
    :class:`TypeError` with a message for the user. An end date before the start date is kept
    (so a form can show it) and reported by :meth:`problems`.
    """

    bbox: tuple[float, float, float, float] | None = None
    intersects: dict[str, Any] | None = None
    start: _dt.date | None = None
    end: _dt.date | None = None
    collection_filter: dict[str, tuple[str, ...]] | None = field(default=None)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if self.bbox is not None and self.intersects is not None:
            raise ValueError(
                "bbox and intersects cannot be used together: choose a rectangle (bbox) or a "
                "polygon (intersects) as the area of interest"
            )
        if self.bbox is not None:
            set_(self, "bbox", validate_bbox(self.bbox))
        if self.intersects is not None:
            from shapely.geometry import mapping

            geom = validate_intersects(self.intersects)
            set_(self, "intersects", _plain(mapping(geom)))
        set_(self, "start", _as_date(self.start, "start date"))
        set_(self, "end", _as_date(self.end, "end date"))
        if self.collection_filter is not None:
            checked = validate_collection_filter(self.collection_filter)
            cf: dict[str, tuple[str, ...]] = {}
            for cid, keys in checked.items():
                original = self.collection_filter[cid]
                if keys is None and original:
                    raise ValueError(f"collection_filter[{cid!r}] is empty")
                cf[cid] = tuple(sorted(keys)) if keys is not None else ()
            set_(self, "collection_filter", cf)

    # -- derived -------------------------------------------------------------------------------
    def problems(self) -> list[str]:
        """Messages for choices that cannot be downloaded (empty when the filters are usable)."""
        out = []
        if self.start is not None and self.end is not None and self.end < self.start:
            out.append(
                f"The end date ({self.end.isoformat()}) is before the start date "
                f"({self.start.isoformat()})."
            )
        if self.collection_filter is not None and not self.collection_filter:
            out.append("No asset key is selected: tick at least one in Content.")
        return out

    @property
    def datetime(self) -> tuple[_dt.date | None, _dt.date | None] | None:
        """The ``datetime`` argument of the download API (whole UTC days), or None."""
        if self.start is None and self.end is None:
            return None
        return (self.start, self.end)

    def download_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`~mlhub_widgets.download.plan_download`/``download_dataset``.

        Raises:
            ValueError: :meth:`problems` is not empty.
        """
        problems = self.problems()
        if problems:
            raise ValueError(" ".join(problems))
        cf: dict[str, list[str]] | None = None
        if self.collection_filter is not None:
            cf = {cid: list(keys) for cid, keys in self.collection_filter.items()}
        return {
            "bbox": list(self.bbox) if self.bbox is not None else None,
            "intersects": self.intersects,
            "datetime": self.datetime,
            "collection_filter": cf,
        }

    def describe_area(self) -> str:
        """The area of interest as text: ``bbox W, S, E, N``, ``polygon …`` or ``whole dataset``."""
        if self.bbox is not None:
            w, s, e, n = self.bbox
            return f"bbox W {_fmt(w)}, S {_fmt(s)}, E {_fmt(e)}, N {_fmt(n)}"
        if self.intersects is not None:
            from shapely.geometry import shape

            geom = shape(self.intersects)
            w, s, e, n = geom.bounds
            return (
                f"{geom.geom_type.lower()} with {_vertex_count(self.intersects)} vertices within "
                f"W {_fmt(w)}, S {_fmt(s)}, E {_fmt(e)}, N {_fmt(n)}"
            )
        return "whole dataset (no area filter)"

    def describe_dates(self) -> str:
        """The date filter as text."""
        if self.start is None and self.end is None:
            return "all dates"
        if self.start is not None and self.start == self.end:
            return f"on {self.start.isoformat()}"
        a = self.start.isoformat() if self.start else "…"
        b = self.end.isoformat() if self.end else "…"
        return f"{a} to {b}"

    def describe_content(self) -> str:
        """The collection filter as text."""
        if self.collection_filter is None:
            return "all collections and asset keys"
        if not self.collection_filter:
            return "nothing selected"
        return "; ".join(
            f"{cid}: {', '.join(keys) if keys else 'all keys'}"
            for cid, keys in sorted(self.collection_filter.items())
        )

    def describe(self) -> str:
        """One line with area, dates and content."""
        return f"{self.describe_area()} · {self.describe_dates()} · {self.describe_content()}"

    # -- copies --------------------------------------------------------------------------------
    def with_bbox(self, bbox: Sequence[float] | None) -> Filters:
        """A copy whose area is ``bbox`` (any polygon area is dropped: they are exclusive)."""
        box: Any = None if bbox is None else tuple(bbox)
        return dataclasses.replace(self, bbox=box, intersects=None)

    def with_intersects(self, geometry: IntersectsLike | None) -> Filters:
        """A copy whose area is ``geometry`` (any bbox is dropped: they are exclusive)."""
        return dataclasses.replace(self, bbox=None, intersects=geometry)  # type: ignore[arg-type]

    def with_dates(self, start: DateBound, end: DateBound) -> Filters:
        """A copy with another date range (``None`` = open end)."""
        return dataclasses.replace(self, start=start, end=end)  # type: ignore[arg-type]

    def with_collection_filter(self, cf: Mapping[str, Sequence[str]] | None) -> Filters:
        """A copy with another collection filter (``None`` = everything)."""
        value = None if cf is None else {k: tuple(v) for k, v in cf.items()}
        return dataclasses.replace(self, collection_filter=value)


def _plain(obj: Any) -> Any:
    """Tuples to lists, recursively (GeoJSON as ``json.loads`` would give it)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def _vertex_count(geometry: Mapping[str, Any]) -> int:
    def count(coords: Any) -> int:
        if isinstance(coords, list | tuple) and coords and isinstance(coords[0], int | float):
            return 1
        if isinstance(coords, list | tuple):
            return sum(count(c) for c in coords)
        return 0

    if geometry.get("type") == "GeometryCollection":
        return sum(_vertex_count(g) for g in geometry.get("geometries", []))
    # rings repeat their first vertex at the end
    rings = 0
    coords = geometry.get("coordinates")
    if geometry.get("type") == "Polygon" and isinstance(coords, list):
        rings = len(coords)
    elif geometry.get("type") == "MultiPolygon" and isinstance(coords, list):
        rings = sum(len(p) for p in coords)
    return count(coords) - rings
