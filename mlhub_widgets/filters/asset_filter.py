"""The :class:`AssetFilter` that combines the spatial, temporal and content filters."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..types import BBoxLike, CollectionFilter, DatetimeLike, IntersectsLike
from .common import (
    Exclusion,
    _fmt_num,
)
from .content import validate_collection_filter
from .spatial import (
    BBox,
    _Spatial,
    geojson_text,
    validate_bbox,
    validate_intersects,
)
from .temporal import (
    DateRange,
    _dates_check,
    _us,
    validate_datetime,
)

if TYPE_CHECKING:
    from shapely.geometry.base import BaseGeometry


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
        bbox: BBoxLike | None = None,
        intersects: IntersectsLike | None = None,
        datetime: DatetimeLike = None,
        collection_filter: CollectionFilter | None = None,
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
            params["intersects"] = geojson_text(self.intersects)
        if self.datetime is not None:
            params["datetime"] = self.datetime.to_stac()
        return params
