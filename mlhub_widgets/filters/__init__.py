"""Download and discovery filters: validated once, applied to STAC items many times.

See :mod:`.asset_filter` for the semantics of ``bbox``, ``intersects``, ``datetime`` and
``collection_filter``.
"""

from __future__ import annotations

from .asset_filter import (
    AssetFilter,
    BBox,
    DateRange,
    Exclusion,
    FilterStats,
    validate_bbox,
    validate_collection_filter,
    validate_datetime,
    validate_intersects,
)

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
