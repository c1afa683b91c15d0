"""The HTTP layer of the package, on aiohttp: every byte the client moves over HTTP(S).

API JSON, static-catalogue documents, STAC API pages, catalogue tarballs, archives and assets
all go through :class:`HttpClient`, so they share one behaviour:

* **Proxies**: ``HTTP(S)_PROXY``/``ALL_PROXY``/``NO_PROXY`` (suffixes, CIDRs) or a ``proxy``
  setting, per request (:mod:`.proxy`).
* **TLS**: system CAs + certifi + ``SSL_CERT_FILE``/``REQUESTS_CA_BUNDLE``, or ``verify=``
  (:mod:`.tls`); a certificate that fails is a one-line :class:`TLSVerificationError` naming the
  host.
* **Credentials stay on their origin**: :class:`Credentials` (an API key as a query parameter,
  ``Authorization`` or any custom header) are added only to requests for their origin (scheme,
  host, port). Redirects are followed here, one hop at a time, so every hop is checked: leaving
  the origin drops the headers and removes from the URL every query value equal to one of the
  credentials (whatever its name: ``?key=``, an echoed ``?token=``).
* **Bounded**: a per-request deadline for documents, a low-speed limit for streamed bodies, a
  size cap for documents, at most :data:`MAX_REDIRECTS` hops and no redirect loop.

Retries follow :class:`~mlhub_widgets.net.retry.RetryPolicy`: :meth:`HttpClient.get_document`
applies it; the download engine applies the same policy around :meth:`HttpClient.send` with its
own scheduling (retries wait without holding a connection slot).
"""

from __future__ import annotations

import asyncio
import json as _json
import logging
import re
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from multidict import CIMultiDictProxy

from ..exceptions import (
    EntityDoesNotExist,
    MLHubHTTPError,
    NetworkError,
    ResponseTooLarge,
    TLSVerificationError,
)
from .redact import install_log_redaction, is_secret_param, redact_text, redact_url
from .retry import RETRY_STATUSES, retry_after_seconds
from .settings import NetworkSettings
from .tls import ssl_context

if TYPE_CHECKING:
    # imported by the functions that use it: ~0.1 s (it builds SSL contexts at import) that
    # a download from an object store, which never sends a request through this layer, skips
    import aiohttp

__all__ = [
    "MAX_REDIRECTS",
    "Credentials",
    "Document",
    "HttpClient",
    "Origin",
    "Response",
    "origin_of",
    "status_error",
    "strip_secrets",
]

log = logging.getLogger(__name__)
install_log_redaction()

MAX_REDIRECTS: Final = 5
REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
#: An error answer is read up to this size (for its message); the rest is dropped.
_ERROR_BODY_BYTES: Final = 64 << 10
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}

Origin = tuple[str, str, int]


def origin_of(url: str) -> Origin:
    """``(scheme, host, port)`` of a URL, with the scheme's default port filled in."""
    start = url.find("://")
    end = url.find("/", start + 3) if start > 0 else -1
    head = url if end < 0 else url[:end]
    if "?" in head or "#" in head:
        return _origin_of(url.split("?", 1)[0].split("#", 1)[0])
    return _origin_of(head)


@lru_cache(maxsize=1024)
def _origin_of(url: str) -> Origin:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme, 0)


@dataclass(frozen=True)
class Credentials:
    """Headers and query parameters that may only go to one origin.

    Args:
        origin: ``(scheme, host, port)``, e.g. from :func:`origin_of`.
        headers: sent with every request to the origin (``Authorization``, custom headers).
        params: set in the query of every request to the origin (``{"key": api_key}``).
    """

    origin: Origin
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def for_url(
        cls,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Credentials:
        """Credentials bound to the origin of ``url``."""
        return cls(origin_of(url), dict(headers or {}), dict(params or {}))

    def secrets(self) -> tuple[str, ...]:
        """Every value that must never leave the origin or appear in a message."""
        values = [*self.params.values(), *self.headers.values()]
        for value in list(values):  # "Bearer abc" -> also "abc"
            _, _, token = value.partition(" ")
            if token:
                values.append(token)
        return tuple(v for v in values if v and len(v) >= 4)

    def __repr__(self) -> str:
        scheme, host, port = self.origin
        names = sorted([*self.headers, *self.params])
        return f"<Credentials for {scheme}://{host}:{port} ({', '.join(names) or 'none'})>"


def _set_params(url: str, params: Mapping[str, str]) -> str:
    if not params:
        return url
    parts = urlsplit(url)
    pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    pairs.extend(params.items())
    return urlunsplit(parts._replace(query=urlencode(pairs)))


def strip_secrets(url: str, secrets: tuple[str, ...]) -> str:
    """``url`` without query parameters whose value is one of ``secrets``."""
    if not secrets or "?" not in url:
        return url
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if v not in secrets]
    if len(kept) == len(pairs):
        return url
    return urlunsplit(parts._replace(query=urlencode(kept)))


def _same_site(origin: Origin, home: Origin) -> bool:
    """``origin`` may receive ``home``'s credentials: the same origin, or its upgrade from
    ``http`` on port 80 to ``https`` on port 443 (as requests and browsers allow)."""
    if origin == home:
        return True
    return home == ("http", origin[1], 80) and origin == ("https", home[1], 443)


def url_secrets(url: str) -> tuple[str, ...]:
    """Values of credential query parameters in ``url`` (``key``, ``sig``, ``X-Amz-*``...):
    they belong to the URL's origin like :class:`Credentials` do."""
    if "?" not in url:
        return ()
    query = urlsplit(url).query
    return tuple(v for k, v in parse_qsl(query, keep_blank_values=True) if v and is_secret_param(k))


class Response:
    """The final answer to :meth:`HttpClient.send`: status and headers, body not read yet.

    Read the body once, with :meth:`read` (whole, capped) or :meth:`iter_chunks` (streamed,
    with the low-speed limit), or give it back with :meth:`release`.
    """

    __slots__ = ("_resp", "_secrets", "_settings", "headers", "length", "reason", "status", "url")

    def __init__(
        self,
        resp: aiohttp.ClientResponse,
        url: str,
        settings: NetworkSettings,
        secrets: tuple[str, ...],
    ) -> None:
        self._resp = resp
        self._settings = settings
        self._secrets = secrets
        self.status: int = resp.status
        self.reason: str = resp.reason or ""
        self.headers: CIMultiDictProxy[str] = resp.headers
        self.length: int | None = resp.content_length
        self.url = url

    def __repr__(self) -> str:
        return f"<Response {self.status} {redact_text(self.url, *self._secrets)}>"

    async def read(self, limit: int | None = None, *, truncate: bool = False) -> bytes:
        """The whole body; at most ``limit`` bytes (default: the documents' cap).

        Raises:
            ResponseTooLarge: the body is longer than ``limit`` (the read stops there), unless
                ``truncate`` asks for its first ``limit`` bytes instead.
            NetworkError: the connection dropped or went silent before the end.
        """
        import aiohttp

        cap = self._settings.max_document_bytes if limit is None else limit
        if truncate:
            return await self._head_of_body(cap)
        if self.length is not None and self.length > cap:
            self.release()
            raise self._too_large(cap)
        chunks: list[bytes] = []
        total = 0
        window = self._settings.low_speed_time
        started = time.monotonic()
        got = 0  # in this low-speed window
        content = self._resp.content
        try:
            while True:
                try:
                    chunk = await content.readany()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    raise network_error(
                        exc, self.url, self._secrets, self._settings.read_timeout
                    ) from None
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
                if total > cap:
                    self.release()
                    raise self._too_large(cap)
                got += len(chunk)
                now = time.monotonic()
                if now - started >= window:
                    self._check_speed(got, now - started)
                    started, got = now, 0
        finally:
            self._resp.release()
        if len(chunks) == 1:
            return chunks[0]
        return b"".join(chunks)

    def _check_speed(self, got: int, seconds: float) -> None:
        """Raise when ``got`` bytes in ``seconds`` is below the low-speed limit."""
        limit = self._settings.low_speed_limit
        if got < limit * seconds:
            raise NetworkError(
                f"transfer stalled: {got:,} bytes in {seconds:.0f}s from "
                f"{_host(self.url)} (less than {limit:,} bytes/s)",
                url=self.url,
            )

    async def _head_of_body(self, cap: int) -> bytes:
        buf = bytearray()
        try:
            async for chunk in self.iter_chunks():
                buf += chunk
                if len(buf) >= cap:
                    break
        finally:
            self.release()
        return bytes(buf[:cap])

    def _too_large(self, cap: int) -> ResponseTooLarge:
        return ResponseTooLarge(
            f"the answer from {redact_text(self.url, *self._secrets)} is larger than "
            f"{cap:,} bytes; stopped reading",
            url=self.url,
            status_code=self.status,
        )

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, checked against the low-speed limit.

        Raises:
            NetworkError: the connection dropped, went silent for ``read_timeout``, or sent
                fewer than ``low_speed_limit`` bytes/s over ``low_speed_time`` seconds.
        """
        import aiohttp

        settings = self._settings
        window = settings.low_speed_time
        started = time.monotonic()
        got = 0
        content = self._resp.content
        try:
            while True:
                try:
                    chunk = await content.readany()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    raise network_error(
                        exc, self.url, self._secrets, settings.read_timeout
                    ) from None
                if not chunk:
                    return
                got += len(chunk)
                now = time.monotonic()
                if now - started >= window:
                    self._check_speed(got, now - started)
                    started, got = now, 0
                yield chunk
        finally:
            self._resp.release()

    def release(self) -> None:
        """Give the connection back without reading the rest of the body (it is closed when
        the body was not complete)."""
        if not self._resp.closed:
            self._resp.close() if not self._resp.content.at_eof() else self._resp.release()


def _is_https(url: str | None) -> bool:
    return url is not None and url[:6].lower() == "https:"


_RECEIVED = re.compile(r"received (\d+) of (\d+) bytes")


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2] or url


def network_error(
    exc: BaseException, url: str, secrets: tuple[str, ...] = (), read_timeout: float = 0
) -> NetworkError:
    """A one-line :class:`NetworkError` for an aiohttp or socket failure on ``url``."""
    import aiohttp

    host = _host(url)
    shown = redact_text(url, *secrets)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        detail = getattr(exc.certificate_error, "verify_message", None) or str(
            exc.certificate_error
        )
        return TLSVerificationError(
            f"TLS error for {host}: certificate verify failed ({detail}); set SSL_CERT_FILE or "
            "REQUESTS_CA_BUNDLE to your CA bundle, or pass verify='ca.pem'",
            url=shown,
        )
    if isinstance(exc, aiohttp.ClientConnectorSSLError | aiohttp.ClientSSLError):
        return NetworkError(f"TLS error for {host}: {exc}", url=shown, retryable=False)
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return NetworkError(
            f"the proxy refused the request for {host}: HTTP {exc.status} {exc.message}",
            url=shown,
            retryable=exc.status >= 500,
        )
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return NetworkError(f"cannot connect to the proxy for {host}: {exc}", url=shown)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return NetworkError(f"cannot resolve {host}: {exc.os_error}", url=shown)
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return NetworkError(f"connection refused by {host}", url=shown)
        reason = exc.os_error.strerror or str(exc.os_error)
        return NetworkError(f"cannot connect to {host}: {reason}", url=shown)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return NetworkError(f"connection to {host} timed out", url=shown)
    if isinstance(exc, aiohttp.SocketTimeoutError | TimeoutError):
        after = f" for {read_timeout:g}s" if read_timeout else ""
        return NetworkError(f"no data from {host}{after} (read timeout)", url=shown)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return NetworkError(f"connection dropped: {host} closed it", url=shown)
    if isinstance(exc, aiohttp.ClientPayloadError):
        got = _RECEIVED.search(str(exc))
        if got is not None:
            received, expected = int(got.group(1)), int(got.group(2))
            return NetworkError(
                f"connection dropped after {received:,} of {expected:,} bytes from {host}",
                url=shown,
            )
        return NetworkError(f"connection dropped: the answer from {host} was cut short", url=shown)
    if isinstance(exc, aiohttp.InvalidURL | ValueError):
        return NetworkError(f"invalid URL {shown!r}", url=shown, retryable=False)
    return NetworkError(f"request to {host} failed: {type(exc).__name__}: {exc}", url=shown)


class HttpClient:
    """Asynchronous HTTP(S) client: one connection pool, the settings' proxy/TLS/limits.

    Create and use it inside one running event loop; close it with :meth:`close` (or
    ``async with``).

    Args:
        settings: network settings (proxy, verify, timeouts, caps, user agent).
        limit: most connections open at once.
        limit_per_host: most connections to one origin (default: ``limit``).
        headers: headers for every request (``Accept``, ...; never credentials: those go in
            :class:`Credentials`).
    """

    def __init__(
        self,
        settings: NetworkSettings | None = None,
        *,
        limit: int = 64,
        limit_per_host: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings or NetworkSettings()
        self.proxies = self.settings.proxies()
        self._ssl: ssl.SSLContext | None = None  # made by the first HTTPS request: _tls()
        self._limits = (limit, limit_per_host or 0)
        self._headers = {
            "User-Agent": self.settings.user_agent,
            "Accept-Encoding": "identity",
            **(headers or {}),
        }
        self._session: aiohttp.ClientSession | None = None  # made by the first request
        self.requests = 0

    def _pool(self) -> aiohttp.ClientSession:
        """The connection pool, made by the first request: importing aiohttp costs ~0.1 s
        with the GIL held (it builds SSL contexts at import), which a download whose every
        GET goes to an object store (through obstore) never needs."""
        if self._session is None:
            import aiohttp

            limit, per_host = self._limits
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=limit, limit_per_host=per_host, ttl_dns_cache=300
                ),
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=self.settings.connect_timeout,
                    sock_read=self.settings.read_timeout,
                ),
                headers=self._headers,
                auto_decompress=False,
                trust_env=False,  # proxies come from self.proxies (NO_PROXY CIDRs, profiles)
                read_bufsize=1 << 20,
                max_line_size=16384,
                max_field_size=16384,
            )
        return self._session

    def _tls(self) -> ssl.SSLContext:
        """The TLS context of this client's HTTPS connections (:func:`.tls.ssl_context`), made
        when the first one is opened: loading the CA bundles costs 0.1–0.3 CPU-s with the GIL
        held, which a run over plain HTTP never needs.

        Raises:
            ConfigurationError: a CA bundle setting names no usable certificates.
        """
        if self._ssl is None:
            self._ssl = ssl_context(self.settings.verify)
        return self._ssl

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every connection."""
        if self._session is not None:
            await self._session.close()

    async def send(
        self,
        url: str,
        *,
        method: str = "GET",
        credentials: Credentials | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        follow_redirects: bool = True,
        decompress: bool = False,
    ) -> Response:
        """One request (following redirects hop by hop); the body is not read yet.

        Status codes are not errors here: the caller reads :attr:`Response.status`. With
        ``decompress`` the server may send gzip/deflate and the body is decoded (documents);
        without it, ``identity`` is asked for and the bytes are the stored ones (assets).

        Raises:
            NetworkError: connection, proxy, TLS or timeout failure, a redirect without a
                ``Location``, to a non-HTTP URL, in a loop, or more than
                :data:`MAX_REDIRECTS` hops (``retryable`` tells whether trying again may help).
        """
        import aiohttp

        secrets = (credentials.secrets() if credentials else ()) + url_secrets(url)
        home = origin_of(url)  # credentials (and secrets in the URL) belong to this origin
        if credentials is not None and credentials.origin != home:
            credentials = None  # given for another origin: never sent here
        current = url
        seen: set[str] = set()
        limit = self.settings.connect_timeout + self.settings.read_timeout
        for hop in range(MAX_REDIRECTS + 1):
            same = hop == 0 or _same_site(origin_of(current), home)
            extra: Mapping[str, str] | None
            if not same:
                target = strip_secrets(current, secrets)
                extra = headers
            elif credentials is not None:
                target = _set_params(current, credentials.params)
                extra = {**credentials.headers, **(headers or {})}
            else:
                target = current
                extra = headers
            if decompress:
                extra = {"Accept-Encoding": "gzip, deflate", **(extra or {})}
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s %s", method, redact_text(redact_url(target), *secrets))
            proxy = self.proxies.proxy_for(target)
            # TLS to the target or to the proxy: this client's context; plain HTTP: none
            tls = self._tls() if _is_https(target) or _is_https(proxy) else True
            try:
                async with asyncio.timeout(limit):
                    resp = await self._pool().request(
                        method,
                        target,
                        headers=extra,
                        json=json,
                        allow_redirects=False,
                        auto_decompress=decompress,
                        proxy=proxy,
                        ssl=tls,
                    )
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                raise network_error(exc, target, secrets, self.settings.read_timeout) from None
            self.requests += 1
            if not follow_redirects or resp.status not in REDIRECT_STATUSES:
                # the URL callers see never carries the credentials this layer added
                return Response(resp, current if same else target, self.settings, secrets)
            location = resp.headers.get("Location")
            resp.release()
            shown = redact_text(redact_url(target), *secrets)
            if not location:
                raise NetworkError(
                    f"HTTP {resp.status} redirect without a Location from {shown}",
                    url=shown,
                    retryable=False,
                )
            nxt = urljoin(current, location.strip())
            if urlsplit(nxt).scheme.lower() not in ("http", "https"):
                raise NetworkError(
                    f"{shown} redirects to a non-HTTP URL", url=shown, retryable=False
                )
            if nxt in seen or nxt == current:
                raise NetworkError(f"redirect loop at {shown}", url=shown, retryable=False)
            seen.add(current)
            if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
                method, json = "GET", None
            current = nxt
        shown = redact_text(redact_url(url), *secrets)
        raise NetworkError(
            f"more than {MAX_REDIRECTS} redirects from {shown}", url=shown, retryable=False
        )

    async def fetch(
        self,
        url: str,
        *,
        method: str = "GET",
        credentials: Credentials | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        follow_redirects: bool = True,
        max_bytes: int | None = None,
    ) -> Document:
        """Fetch a whole answer with the retry policy and the per-request deadline.

        Connection failures, timeouts and :data:`~mlhub_widgets.net.retry.RETRY_STATUSES`
        are tried again; the final answer is returned whatever its status (see
        :meth:`get_document` for one that raises on errors).

        Raises:
            ResponseTooLarge: the body is over ``max_bytes`` (default: the documents' cap).
            NetworkError: the request kept failing, or failed in a way retries cannot help.
        """
        policy = self.settings.retry
        secrets = credentials.secrets() if credentials else ()
        started = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            retry_after: float | None = None
            try:
                async with asyncio.timeout(self.settings.deadline):
                    resp = await self.send(
                        url,
                        method=method,
                        credentials=credentials,
                        headers=headers,
                        json=json,
                        follow_redirects=follow_redirects,
                        decompress=True,
                    )
                    if resp.status not in RETRY_STATUSES:
                        if method == "HEAD":
                            body = b""
                        elif resp.status < 400:
                            body = await resp.read(max_bytes)
                        else:
                            body = await resp.read(_ERROR_BODY_BYTES, truncate=True)
                        return Document(resp.status, resp.url, _lower(resp.headers), body)
                    retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
                    body = await resp.read(_ERROR_BODY_BYTES, truncate=True)
                    last = Document(resp.status, resp.url, _lower(resp.headers), body)
                    problem = f"HTTP {resp.status}"
            except TimeoutError:
                last = None
                problem = (
                    f"no complete answer from {_host(url)} within {self.settings.deadline:.0f}s"
                )
            except NetworkError as exc:
                if not exc.retryable:
                    raise
                last = None
                problem = str(exc)
            decision = policy.next_delay(attempts, time.monotonic() - started, retry_after)
            if isinstance(decision, str):
                if last is not None:
                    return last  # the caller maps the final status
                shown = redact_text(redact_url(url), *secrets)
                why = f" ({decision})" if decision.startswith("Retry-After") else ""
                raise NetworkError(
                    f"{method} {shown} failed after {attempts} attempt(s): {problem}{why}",
                    url=shown,
                )
            log.info(
                "retrying %s %s in %.2fs: %s",
                method,
                redact_text(redact_url(url), *secrets),
                decision,
                problem,
            )
            await asyncio.sleep(decision)

    async def get_document(
        self,
        url: str,
        *,
        credentials: Credentials | None = None,
        headers: Mapping[str, str] | None = None,
        method: str = "GET",
        json: Any = None,
        not_found: str | None = None,
    ) -> Document:
        """:meth:`fetch`, raising for error statuses.

        Raises:
            EntityDoesNotExist: 404 (``not_found`` is its message when given).
            MLHubHTTPError: another status >= 400 after retries.
            ResponseTooLarge: the body is over ``settings.max_document_bytes``.
            NetworkError: the request kept failing.
        """
        doc = await self.fetch(
            url, method=method, credentials=credentials, headers=headers, json=json
        )
        if doc.status >= 400:
            secrets = credentials.secrets() if credentials else ()
            raise status_error(doc, method, secrets, not_found)
        return doc


@dataclass(frozen=True)
class Document:
    """A whole answer, read (headers with lower-case names)."""

    status: int
    url: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        """The media type without parameters (``application/json``)."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def __repr__(self) -> str:
        return f"<Document {self.status} {redact_url(self.url)} {len(self.body):,} bytes>"


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def status_error(
    doc: Document, method: str, secrets: tuple[str, ...] = (), not_found: str | None = None
) -> MLHubHTTPError:
    """The exception for an error status: :class:`EntityDoesNotExist` for 404, else
    :class:`MLHubHTTPError` with the server's own message (redacted)."""
    detail = error_detail(doc.body, doc.content_type)
    detail = redact_text(detail, *secrets) if detail else None
    url = redact_text(redact_url(doc.url), *secrets)
    if doc.status == 404:
        return EntityDoesNotExist(404, method, url, detail, message=not_found)
    return MLHubHTTPError(doc.status, method, url, detail)


def error_detail(body: bytes, ctype: str) -> str | None:
    """The server's own message from an error body: a JSON ``detail``/``message``, or short
    plain text (never HTML)."""
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return None
    if "json" in ctype or text.startswith("{"):
        try:
            doc = _json.loads(text)
        except ValueError:
            pass
        else:
            if isinstance(doc, dict):
                for name in ("detail", "message", "description", "error"):
                    if doc.get(name):
                        return str(doc[name])[:300]
            return None
    if text.startswith("<"):
        return None
    return " ".join(text.split())[:200]
