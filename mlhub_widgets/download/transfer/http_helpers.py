"""Small HTTP helpers of the engine: ``Content-Range``, validators, reasons."""

from __future__ import annotations

import contextlib
from http import HTTPStatus
from typing import Any, Protocol


def _parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """``bytes a-b/N`` -> ``(a, b, N)``; ``bytes */N`` -> ``(-1, -1, N)``; else None."""
    if not value:
        return None
    unit, _, rest = value.strip().partition(" ")
    if unit.lower() != "bytes":
        return None
    span, _, total_text = rest.partition("/")
    total = int(total_text) if total_text.strip().isdigit() else None
    span = span.strip()
    if span == "*":
        return (-1, -1, total)
    first, _, last = span.partition("-")
    if not (first.isdigit() and last.isdigit()):
        return None
    return int(first), int(last), total


def _validator(etag: Any, last_modified: Any) -> str | None:
    """What to send in ``If-Range``: a strong ETag, else Last-Modified (weak ETags can't)."""
    if isinstance(etag, str) and etag and not etag.startswith("W/"):
        return etag
    if isinstance(last_modified, str) and last_modified:
        return last_modified
    return None


class _Answer(Protocol):
    status: int
    reason: str


def _reason(resp: _Answer) -> str:
    phrase = resp.reason
    if not phrase:
        with contextlib.suppress(ValueError):
            phrase = HTTPStatus(resp.status).phrase
    return f"HTTP {resp.status} {phrase}".rstrip()
