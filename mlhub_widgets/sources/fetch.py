"""Reading STAC JSON documents from files and HTTP(S) URLs, fast and from many threads.

Each worker thread keeps one keep-alive :class:`http.client.HTTPConnection` per origin (a static
catalogue walk makes thousands of tiny requests to one or two origins, where the per-request cost
of a full HTTP library dominates). Connection errors, 429 and 5xx are retried with exponential
backoff (honouring ``Retry-After``) a bounded number of times; redirects are followed.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import threading
import time
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from .._version import __version__
from ..exceptions import EntityDoesNotExist, MLHubException, MLHubHTTPError
from ..net.retry import backoff_delay, retry_after_seconds

__all__ = ["JsonReader", "is_url", "resolve_href"]

USER_AGENT = f"mlhub_widgets/{__version__} (static STAC walker)"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def is_url(href: str) -> bool:
    """True for ``http://`` and ``https://`` hrefs."""
    return href.startswith(("http://", "https://"))


def resolve_href(href: str, base: str) -> str:
    """An href made absolute against the document it appears in (URL or file path)."""
    if is_url(href) or "://" in href:
        return href
    if is_url(base):
        return _join_url(base, href)
    if href.startswith("file://"):
        return unquote(urlsplit(href).path)
    if os.path.isabs(href):
        return os.path.normpath(href)
    return os.path.normpath(os.path.join(os.path.dirname(base), href))


def _join_url(base: str, href: str) -> str:
    """``urljoin`` with a fast path for plain relative paths (``a/b.json``, ``../c.json``)."""
    if "?" in base or "#" in base or href.startswith(("/", "?", "#")) or ":" in href:
        return urljoin(base, href)
    root = base.find("/", base.find("//") + 2)  # the slash after the host
    if root < 0:
        return urljoin(base, href)
    head = base[: base.rfind("/") + 1]
    rest = href
    while rest.startswith(("../", "./")):
        if rest.startswith("./"):
            rest = rest[2:]
            continue
        if len(head) - 1 <= root:  # already at the host's root
            return urljoin(base, href)
        head = head[: head.rfind("/", 0, len(head) - 1) + 1]
        rest = rest[3:]
    if "/./" in rest or "/../" in rest or rest in ("..", ".") or rest.endswith("/.."):
        return urljoin(base, href)
    return head + rest


class JsonReader:
    """Reads JSON documents by href; safe to call from many threads at once.

    Args:
        timeout: socket timeout in seconds.
        max_attempts: attempts per document, first included.
        backoff: base of the exponential backoff in seconds.
        headers: extra request headers (e.g. an ``Authorization`` header for a private store).
    """

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        max_attempts: int = 5,
        backoff: float = 0.25,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.headers = {
            "Accept": "application/json",
            "Accept-Encoding": "gzip",
            "User-Agent": USER_AGENT,
            **(headers or {}),
        }
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self.requests = 0

    def read(self, href: str) -> Any:
        """The parsed JSON document at ``href`` (URL or file path).

        Raises:
            EntityDoesNotExist: 404 or a missing file.
            MLHubHTTPError: another HTTP error status after retries.
            MLHubException: the connection kept failing, or the document is not JSON.
        """
        if not is_url(href):
            try:
                with open(href, "rb") as fh:
                    data = fh.read()
            except FileNotFoundError:
                raise EntityDoesNotExist(
                    404, "GET", href, None, message=f"STAC document not found: {href}"
                ) from None
            return self._decode(data, href)
        return self._decode(self._get(href), href)

    @staticmethod
    def _decode(data: bytes, href: str) -> Any:
        try:
            return json.loads(data)
        except ValueError as exc:
            raise MLHubException(f"{href} is not a JSON document: {exc}") from None

    def _conn(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        conns: dict[tuple[str, str], http.client.HTTPConnection] | None = getattr(
            self._local, "conns", None
        )
        if conns is None:
            conns = self._local.conns = {}
        conn = conns.get((scheme, netloc))
        if conn is None:
            cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
            conn = cls(netloc, timeout=self.timeout)
            conns[(scheme, netloc)] = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _drop(self, scheme: str, netloc: str) -> None:
        conns = getattr(self._local, "conns", {})
        conn = conns.pop((scheme, netloc), None)
        if conn is not None:
            conn.close()

    def _get(self, url: str) -> bytes:
        started = time.monotonic()
        attempt = 0
        redirects = 0
        while True:
            attempt += 1
            parts = urlsplit(url)
            target = parts.path or "/"
            if parts.query:
                target += "?" + parts.query
            delay: float | None = None
            problem = ""
            try:
                conn = self._conn(parts.scheme, parts.netloc)
                conn.request("GET", target, headers=self.headers)
                resp = conn.getresponse()
                body = resp.read()
                self.requests += 1
                if resp.getheader("Connection", "").lower() == "close":
                    self._drop(parts.scheme, parts.netloc)
            except (OSError, http.client.HTTPException) as exc:
                self._drop(parts.scheme, parts.netloc)
                problem = f"{type(exc).__name__}: {exc}"
            else:
                status = resp.status
                if status in (301, 302, 303, 307, 308) and redirects < 10:
                    location = resp.getheader("Location")
                    if location:
                        redirects += 1
                        attempt -= 1
                        url = urljoin(url, location)
                        continue
                if status < 300:
                    if resp.getheader("Content-Encoding", "").lower() == "gzip":
                        body = gzip.decompress(body)
                    return body
                if status == 404:
                    raise EntityDoesNotExist(
                        404, "GET", url, None, message=f"STAC document not found: {url}"
                    )
                if status not in RETRY_STATUSES:
                    raise MLHubHTTPError(status, "GET", url, body[:200].decode("utf-8", "replace"))
                delay = retry_after_seconds(resp.getheader("Retry-After"))
                problem = f"HTTP {status}"
            if delay is None:
                delay = backoff_delay(attempt, self.backoff, 10.0)
            if attempt >= self.max_attempts or time.monotonic() - started + delay > 120.0:
                raise MLHubException(f"GET {url} failed after {attempt} attempt(s): {problem}")
            time.sleep(min(delay, 30.0))

    def close(self) -> None:
        """Close every connection opened so far (they reopen on the next read)."""
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()
