"""Where the engine's GET goes, per scheme: ``http(s)://`` to the HTTP layer, object URLs to
obstore, both answering with the same :class:`FetchedResponse` interface.

:meth:`~.attempt.FileAttempts._get` is the one place a request is made. For an object URL it
calls :meth:`ObjectFetcher.send`, which translates the request the engine would make over HTTP
into obstore calls and the outcome back into an HTTP-shaped answer, so that verification,
resume, retries and progress run the same code for every scheme:

* ``Range: bytes=N-`` → a range get from ``N``; ``If-Range: <etag>`` → ``if_match`` on the
  ETag (``If-Range: <date>`` → ``if_unmodified_since``). When the object changed, the full
  object is fetched instead and the answer is a ``200``, exactly as an HTTP server answers a
  failed ``If-Range``: the engine restarts the file from byte 0;
* a small object of known size is fetched with one range get of ``size + 1`` bytes (one
  hand-off from obstore's threads instead of two; a longer object shows as a size mismatch);
  a larger one is one GET whose body is streamed (one version of the object, never a splice).
  Larger objects, objects of unknown size and resumed ones go through the engine's HTTP
  client instead when the store's GET is a plain or presigned URL
  (:mod:`mlhub_widgets.net.objects.routes`): measured on the hub's S3 origin, aiohttp
  receives 1 GB with ~25 % less CPU than obstore's stream (0.67–0.72 vs 0.86–0.98 CPU-s),
  while a small GET costs it as much or more (~100–130 µs vs 90–120 µs per object, and
  aiohttp's holds the GIL the catalogue walk needs, where obstore's runs on its own threads);
* errors become statuses: a missing object or bucket ``404``, access denied ``403``/``401``,
  server errors their status (retried by the engine's policy), a connection failure a
  retryable :class:`~mlhub_widgets.exceptions.NetworkError`. The reason carries the one-line
  message of :func:`mlhub_widgets.net.objects.object_error`.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import re
import time
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final, Protocol

from ...exceptions import MLHubException, MLHubHTTPError, NetworkError
from ...net.http import HttpClient
from ...net.objects import ObjectURL, StorageOptions, normalise_options, object_error, resolve
from ...net.objects.routes import STORE, GetRoute, get_route, http_object_error, plain_url
from ...net.settings import NetworkSettings

if TYPE_CHECKING:
    from obstore import GetOptions

__all__ = ["FetchedResponse", "ObjectFetcher", "ObjectResponse"]

log = logging.getLogger(__name__)

#: Objects up to this size (known in advance) are fetched whole with one range get.
SMALL_OBJECT = 256 * 1024
#: Larger ones are one streamed GET, handed to the engine in chunks of at least this size.
#: One request per object keeps the connection busy; range gets of 8 MiB, each buffered whole
#: before the next could be read, were 40 % slower on 20 x 50 MiB, and their fresh 8 MiB
#: buffers cost ~200k page faults per GB (1 MiB chunks: ~120k).
STREAM_CHUNK = 1 << 20
#: How long a presigned GET URL is valid; each attempt signs a fresh one (a stream that has
#: started is not cut when it expires).
SIGNED_URL_LIFETIME: Final = timedelta(hours=1)


class FetchedResponse(Protocol):
    """What the engine reads from an answer, whatever the scheme (see
    :class:`mlhub_widgets.net.http.Response`)."""

    status: int
    reason: str
    length: int | None
    url: str

    @property
    def headers(self) -> Mapping[str, str]: ...

    async def read(self, limit: int | None = None) -> bytes: ...

    def iter_chunks(self) -> AsyncIterator[bytes]: ...

    def release(self) -> None: ...


class ObjectResponse:
    """An object store's answer in the shape of :class:`~mlhub_widgets.net.http.Response`.

    ``headers`` has lower-case names: ``etag``, ``last-modified``, ``content-length`` and, for a
    range, ``content-range``.
    """

    __slots__ = (
        "_data", "_result", "_settings", "headers", "length", "reason", "status", "url",
    )  # fmt: skip

    def __init__(
        self,
        url: str,
        status: int,
        settings: NetworkSettings,
        *,
        reason: str = "",
        headers: dict[str, str] | None = None,
        length: int | None = None,
        result: Any = None,
        data: bytes | None = None,
    ) -> None:
        self.url = url
        self.status = status
        self.reason = reason or _phrase(status)
        self.headers: dict[str, str] = headers or {}
        self.length = length
        self._result = result
        self._data = data
        self._settings = settings

    def __repr__(self) -> str:
        return f"<ObjectResponse {self.status} {self.url}>"

    async def read(self, limit: int | None = None) -> bytes:
        """The whole body (it is at most ``limit`` bytes: the engine reads small bodies only).

        Raises:
            NetworkError: the transfer failed part way (retryable).
        """
        if self._data is not None:
            return self._data
        if self._result is None:
            return b""
        try:
            data = bytes(await self._result.bytes_async())
        except Exception as exc:
            raise _stream_error(exc, self.url) from None
        finally:
            self._result = None
        return data

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body in chunks of at least :data:`STREAM_CHUNK` bytes, checked against the
        low-speed limit.

        Raises:
            NetworkError: the transfer failed part way (the object changed, the connection
                dropped) or went below the low-speed limit.
        """
        if self._data is not None:
            yield self._data
            return
        if self._result is None:
            return
        chunks = _stream(self._result, self.url)
        self._result = None
        settings = self._settings
        window = settings.low_speed_time
        started = time.monotonic()
        got = 0
        async for chunk in chunks:
            got += len(chunk)
            now = time.monotonic()
            if now - started >= window:
                if got < settings.low_speed_limit * (now - started):
                    raise NetworkError(
                        f"transfer stalled: {got:,} bytes in {now - started:.0f}s from "
                        f"{self.url} (less than {settings.low_speed_limit:,} bytes/s)",
                        url=self.url,
                    )
                started, got = now, 0
            yield chunk

    def release(self) -> None:
        """Drop the body (its connection is closed by obstore)."""
        self._result = None
        self._data = None


async def _stream(result: Any, url: str) -> AsyncIterator[Any]:
    """The body of a get, :data:`STREAM_CHUNK` bytes or more at a time."""
    stream = result.stream(min_chunk_size=STREAM_CHUNK)
    while True:
        try:
            chunk = await stream.__anext__()
        except StopAsyncIteration:
            return
        except Exception as exc:
            raise _stream_error(exc, url) from None
        yield chunk


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _stream_error(exc: BaseException, url: str) -> NetworkError:
    if isinstance(exc, NetworkError):
        return exc
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return NetworkError(f"connection dropped while reading {url}: {first}", url=url)


def _named(text: str, target: str, url: str) -> str:
    """``text`` with the HTTP URL ``target`` (shown redacted or not, with its query) replaced by
    the object ``url``."""
    plain = target.split("?", 1)[0]
    return re.sub(re.escape(plain) + r"(\?[^\s'\"]*)?", lambda _: url, text)


def _http_date(value: Any) -> str | None:
    if isinstance(value, datetime):
        return email.utils.format_datetime(value, usegmt=True)
    return None


class ObjectFetcher:
    """Answers the engine's GETs for object URLs (see the module docstring).

    Args:
        storage_options: options of every store it opens (credentials, endpoint...).
        network: proxy, TLS, timeouts (stores made for streaming: no total timeout, no retries
            inside obstore; the engine retries).
    """

    def __init__(self, storage_options: StorageOptions | None, network: NetworkSettings) -> None:
        self.storage_options = dict(storage_options or {})
        self.network = network
        self.requests = 0
        self._stores: dict[tuple[str, str], tuple[Any, GetRoute]] = {}

    def _resolve(self, url: str) -> tuple[Any, str, GetRoute]:
        """``(store, key, route)``; stores and routes are resolved once per bucket."""
        head, _, rest = url.partition("://")
        bucket, _, key = rest.partition("/")
        hit = self._stores.get((head, bucket))
        if hit is None or "%" in key or "@" in bucket:
            store, loc = resolve(url, self.storage_options, self.network, streaming=True)
            route = hit[1] if hit is not None else self._route(store, loc)
            self._stores[(head, bucket)] = (store, route)
            return store, loc.key, route
        return hit[0], key, hit[1]

    def _route(self, store: Any, loc: ObjectURL) -> GetRoute:
        if "client_options" in normalise_options(self.storage_options):
            return STORE  # the caller's own client settings (headers, proxy...): obstore's
        return get_route(
            loc.cloud, store.config, credential_provider=getattr(store, "credential_provider", None)
        )

    async def send(
        self,
        url: str,
        headers: Mapping[str, str] | None,
        size: int | None = None,
        client: HttpClient | None = None,
    ) -> FetchedResponse:
        """GET ``url`` the way the engine asked (``Range``/``If-Range`` in ``headers``): over
        ``client`` when the store's GET is a plain or presigned HTTP request
        (:mod:`mlhub_widgets.net.objects.routes`), else through obstore.

        Raises:
            NetworkError: no answer (retryable) or a configuration/TLS problem (not retryable).
        """
        import obstore

        try:
            store, key, route = self._resolve(url)
        except MLHubException as exc:
            raise NetworkError(str(exc), url=url, retryable=False) from None
        # the size of a small object asked for whole (one range get through obstore), or None
        small = size if not headers and size is not None and 0 < size <= SMALL_OBJECT else None
        if client is not None and route.kind != "store" and small is None:
            target = await self._http_url(url, store, key, route)
            if target is not None:
                return await self._send_http(client, url, target, headers, route)
        offset = 0
        end: int | None = None
        options: GetOptions = {}
        if headers:
            first, _, last = headers.get("Range", "").removeprefix("bytes=").partition("-")
            if first.isdigit():
                offset = int(first)
                end = int(last) + 1 if last.isdigit() else None
            validator = headers.get("If-Range")
            if offset and validator:
                if validator.startswith(('"', "W/")):
                    options["if_match"] = validator
                else:
                    with contextlib.suppress(TypeError, ValueError):
                        when = email.utils.parsedate_to_datetime(validator)
                        options["if_unmodified_since"] = when
        self.requests += 1
        try:
            if small is not None:
                data = bytes(await obstore.get_range_async(store, key, start=0, end=small + 1))
                return ObjectResponse(
                    url, 200, self.network, data=data, length=len(data),
                    headers={"content-length": str(len(data))},
                )  # fmt: skip
            if end is not None:
                options["range"] = (offset, end)
            elif offset:
                options["range"] = {"offset": offset}
            try:
                result = await obstore.get_async(store, key, options=options or None)
            except obstore.exceptions.PreconditionError:
                # the object changed since the .part was written: the whole new object, as a
                # server answers a failed If-Range with 200
                offset, end = 0, None
                self.requests += 1
                result = await obstore.get_async(store, key)
        except Exception as exc:
            return self._failure(exc, url, store)
        meta = result.meta
        total = int(meta["size"])
        start, stop = result.range
        out = {"content-length": str(stop - start)}
        if meta.get("e_tag"):
            out["etag"] = str(meta["e_tag"])
        modified = _http_date(meta.get("last_modified"))
        if modified:
            out["last-modified"] = modified
        status = 200
        if offset or end is not None:
            status = 206
            out["content-range"] = f"bytes {start}-{max(start, stop - 1)}/{total}"
        return ObjectResponse(
            url, status, self.network, headers=out, length=stop - start, result=result
        )

    async def _http_url(self, url: str, store: Any, key: str, route: GetRoute) -> str | None:
        """The URL to GET for ``route``; None when signing failed (the bucket goes back to
        obstore, whose errors say what is wrong with the credentials)."""
        if route.kind == "plain":
            return plain_url(route, key)
        import obstore

        try:
            if route.inline:
                return str(obstore.sign(store, "GET", key, SIGNED_URL_LIFETIME))
            return str(await obstore.sign_async(store, "GET", key, SIGNED_URL_LIFETIME))
        except Exception as exc:
            log.debug("cannot presign %s (%s): GETs go through obstore", url, type(exc).__name__)
            head, _, rest = url.partition("://")
            self._stores[(head, rest.partition("/")[0])] = (store, STORE)
            return None

    async def _send_http(
        self,
        client: HttpClient,
        url: str,
        target: str,
        headers: Mapping[str, str] | None,
        route: GetRoute,
    ) -> FetchedResponse:
        """GET ``target`` (the object ``url`` as a plain or presigned URL) over ``client``;
        the answer and its errors name ``url``, never ``target``."""
        self.requests += 1
        try:
            resp = await client.send(target, headers=headers, follow_redirects=False)
        except NetworkError as exc:
            raise NetworkError(
                _named(str(exc), target, url), url=url, retryable=exc.retryable
            ) from None
        resp.url = url
        if resp.status in (200, 206, 416):
            return resp
        try:
            body = await resp.read(64 << 10, truncate=True)
        except (NetworkError, MLHubException):
            body = b""
        status = resp.status
        err = http_object_error(status, body, url, unsigned=route.unsigned)
        if isinstance(err, MLHubHTTPError):
            status = err.status_code
        out = {}
        if resp.headers.get("retry-after"):
            out["retry-after"] = resp.headers["retry-after"]
        return ObjectResponse(
            url, status, self.network, reason=f"{_phrase(status)}: {err}", headers=out
        )

    def _failure(self, exc: BaseException, url: str, store: Any) -> ObjectResponse:
        unsigned = str(getattr(store, "config", {}).get("skip_signature", "")).lower() == "true"
        err = object_error(exc, url, "GET", unsigned=unsigned)
        if isinstance(err, MLHubHTTPError):
            status = err.status_code
            return ObjectResponse(url, status, self.network, reason=f"{_phrase(status)}: {err}")
        if isinstance(err, NetworkError):
            raise err from None
        raise NetworkError(str(err), url=url, retryable=False) from None
