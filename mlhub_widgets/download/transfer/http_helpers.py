"""Small HTTP helpers of the engine: origins, the API key in URLs, request headers, ranges."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ...config.session import USER_AGENT
from ...net.http11 import Response

#: Headers that never follow a redirect to another origin.
_CREDENTIAL_HEADERS: Final = frozenset({"authorization", "cookie", "proxy-authorization"})


def _human(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:,.0f} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


def _strip_key(url: str) -> str:
    parts = urlsplit(url)
    if not parts.query or "key=" not in parts.query.lower():
        return url
    pairs = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() != "key"
    ]
    return urlunsplit(parts._replace(query=urlencode(pairs)))


def _header_lines(headers: Mapping[str, str] | None, *, cross_origin: bool) -> str:
    if not headers:
        return ""
    out = []
    for name, value in headers.items():
        low = name.lower()
        if low in ("host", "content-length", "transfer-encoding", "connection", "range"):
            continue
        if low in ("if-range", "accept-encoding", "user-agent"):
            continue
        if cross_origin and low in _CREDENTIAL_HEADERS:
            continue
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            raise ValueError(f"header {name!r} contains a line break")
        out.append(f"{name}: {value}\r\n")
    return "".join(out)


def _user_agent(headers: Mapping[str, str] | None) -> str:
    for name, value in (headers or {}).items():
        if name.lower() == "user-agent":
            return value
    return USER_AGENT


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


def _reason(resp: Response) -> str:
    phrase = resp.reason
    if not phrase:
        with contextlib.suppress(ValueError):
            phrase = HTTPStatus(resp.status).phrase
    return f"HTTP {resp.status} {phrase}".rstrip()
