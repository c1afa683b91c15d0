"""The ``datetime`` filter: user input to a UTC :class:`DateRange`, and an item's date tested.

dateutil is imported only by the rare paths that need it (odd date strings).
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, timedelta
from datetime import date as _date
from datetime import datetime as _datetime
from datetime import time as _time
from typing import TypeAlias

from ..types import DatetimeLike
from .common import (
    Exclusion,
    _short_repr,
)

_UTC = UTC
_EPOCH = _datetime(1970, 1, 1, tzinfo=_UTC)
_ONE_US = timedelta(microseconds=1)
_END_OF_DAY = _time(23, 59, 59, 999999)


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


# `object`: it checks what a user passed, so it must take anything
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


# `object`: it checks what a user passed, so it must take anything
def _range_from_pair(start: object, end: object) -> DateRange:
    lo = _parse_bound(start, "datetime start")
    hi = _parse_bound(end, "datetime end")
    return DateRange(None if lo is None else lo[0], None if hi is None else hi[1])


def validate_datetime(value: DatetimeLike | DateRange) -> DateRange:
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


# `object`: it reads untrusted catalogue JSON, so it must take anything
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
