"""What every filter shares: number checks and formatting, and the reasons an item is left out."""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from decimal import Decimal
from numbers import Real


# `object`: it checks what a user passed, so it must take anything
def _is_number(value: object) -> bool:
    """A real number that is not a bool (``True`` is an int in Python, never a coordinate)."""
    return isinstance(value, Real) and not isinstance(value, bool)


# `object`: it checks what a user passed, so it must take anything
def _check_number(value: object, what: str) -> None:
    """TypeError unless ``value`` is a real number (bools and strings are not)."""
    if not (_is_number(value) or isinstance(value, Decimal)):
        raise TypeError(f"{what} must be a number, got {type(value).__name__} {_short_repr(value)}")


# `object`: it checks what a user passed, so it must take anything
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


# `object`: it shows any value a user passed in an error message
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
