"""A small, fast HTTP/1.1 server on ``asyncio.Protocol``.

Only what the hub needs, done carefully: keep-alive, pipelining (requests on one connection are
answered strictly in order, one at a time), ``Content-Length`` request bodies (``Expect:
100-continue`` answered; large bodies optionally streamed into a :class:`BodySink` as they
arrive, never buffered whole), HEAD, flow-controlled streaming of large bodies (``memoryview``
windows, or ``loop.sendfile`` for files on disk, also for objects stored as several files), and
the transport-level faults of :mod:`.faults` (delays, bandwidth caps, cut bodies, resets).

The hot path, a small materialised body with no fault, is answered synchronously from
``data_received`` with a single ``transport.write``: no task, no coroutine, no copy of the body
beyond the one ``bytes`` join.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote

from . import synth
from .faults import NO_FAULT, FaultDecision
from .synth import Body

__all__ = [
    "BodySink",
    "Connection",
    "FileBody",
    "FileParts",
    "HTTPProtocol",
    "Handler",
    "Request",
    "Response",
    "SinkFactory",
]

log = logging.getLogger(__name__)

MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
#: Largest body a protocol with a sink factory accepts (S3's limit for a single PUT).
MAX_STREAMED_BODY = 5 * 1024**3
#: Bodies from this size go to the sink factory (when there is one) instead of memory.
STREAM_BODY_MIN = 256 * 1024
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
MAX_BUFFER = 1024 * 1024
FAST_BODY_LIMIT = 256 * 1024
STREAM_CHUNK = 1024 * 1024
SENDFILE_MIN = 128 * 1024

_REASONS = {s.value: s.phrase for s in HTTPStatus}
_conn_ids = itertools.count(1)


def http_date(ts: float | None = None) -> str:
    """An RFC 7231 date of ``ts`` (default: now, to the second)."""
    return _formatted_date(int(time.time()) if ts is None else ts)


@functools.lru_cache(maxsize=4096)
def _formatted_date(ts: float) -> str:
    # cached: responses within a second share "now", generated assets a few mtimes
    return formatdate(ts, usegmt=True)


@dataclass(frozen=True, slots=True)
class FileBody:
    """A body read from a file on disk (sent with ``sendfile`` when large): ``size`` bytes from
    ``offset`` (a slice of a larger file, such as an append-only log of small objects)."""

    path: Path
    size: int
    offset: int = 0


@dataclass(frozen=True, slots=True)
class FileParts:
    """A body stored as several files, one after the other (a multipart upload's parts)."""

    parts: tuple[FileBody, ...]

    @property
    def size(self) -> int:
        """Length of the whole body."""
        return sum(p.size for p in self.parts)


def file_spans(parts: Iterable[FileBody], first: int, last: int) -> list[tuple[Path, int, int]]:
    """``(file, offset in it, count)`` covering bytes ``first..last`` (inclusive) of the body
    made of ``parts`` one after the other."""
    out = []
    start = 0
    for part in parts:
        end = start + part.size - 1
        if end >= first and start <= last:
            lo = max(first, start)
            out.append((part.path, part.offset + lo - start, min(last, end) - lo + 1))
        start = end + 1
    return out


class BodySink(Protocol):
    """Where a streamed request body goes, chunk by chunk, as it arrives."""

    def write(self, data: bytes | memoryview) -> None:
        """Take the next bytes of the body."""

    def close(self) -> None:
        """The whole body has arrived."""

    def discard(self) -> None:
        """The body will not be used (connection lost, or the request was refused)."""


#: ``(method, target, lower-case headers, content length)`` -> a sink, or None to buffer.
SinkFactory = Callable[[str, str, dict[str, str], int], "BodySink | None"]


@dataclass(slots=True)
class Connection:
    """Per-connection state visible to handlers."""

    id: int
    peer: str
    requests: int = 0


@dataclass(slots=True)
class Request:
    """One parsed HTTP request."""

    method: str
    target: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    version: str
    body: bytes
    conn: Connection
    sink: BodySink | None = None  # the streamed body, when the sink factory took it

    @property
    def first_on_connection(self) -> bool:
        """Whether this is the first request of its connection."""
        return self.conn.requests == 1


@dataclass(slots=True)
class Response:
    """What to send back.

    ``headers`` excludes ``Date``, ``Content-Length`` and ``Connection``, which the server adds.
    ``first``/``last`` select an inclusive byte window of ``body`` (the whole body by default);
    ``length`` overrides the announced ``Content-Length`` when there is no body (HEAD, 303).
    """

    status: int
    headers: list[tuple[str, str]] | str = field(default_factory=list)
    body: Body | FileBody | FileParts | None = None
    first: int = 0
    last: int | None = None
    send_body: bool = True
    length: int | None = None
    fault: FaultDecision = NO_FAULT
    close: bool = False

    def content_length(self) -> int:
        """The ``Content-Length`` this response announces."""
        if self.length is not None:
            return self.length
        if self.body is None:
            return 0
        last = self.body.size - 1 if self.last is None else self.last
        return max(0, last - self.first + 1)


Handler = Callable[[Request], "Response | Awaitable[Response]"]


def _head_bytes(resp: Response, keep_alive: bool) -> bytes:
    reason = _REASONS.get(resp.status, "Unknown")
    parts = [
        f"HTTP/1.1 {resp.status} {reason}\r\nDate: {http_date()}\r\n"
        f"Content-Length: {resp.content_length()}\r\n"
    ]
    if isinstance(resp.headers, str):
        parts.append(resp.headers)
    else:
        for name, value in resp.headers:
            parts.append(f"{name}: {value}\r\n")
    if not keep_alive:
        parts.append("Connection: close\r\n")
    parts.append("\r\n")
    return "".join(parts).encode("latin-1")


def _error(status: int, detail: str) -> Response:
    body = (f'{{"detail":"{detail}"}}').encode()
    return Response(
        status, [("Content-Type", "application/json")], Body.of(body), close=status >= 400
    )


class HTTPProtocol(asyncio.Protocol):
    """One HTTP/1.1 connection, dispatching each request to ``handler``."""

    def __init__(
        self,
        handler: Handler,
        on_close: Callable[[HTTPProtocol], None] | None = None,
        sink_factory: SinkFactory | None = None,
    ):
        self._handler = handler
        self._on_close = on_close
        self._sink_factory = sink_factory
        self._max_body = MAX_STREAMED_BODY if sink_factory is not None else MAX_BODY
        # a request whose body is being streamed into its sink: (request, keep-alive, bytes left)
        self._pending: tuple[Request, bool, int] | None = None
        self._continued = False  # "100 Continue" sent for the request waiting for its body
        self._transport: asyncio.Transport | None = None
        self._buf = b""
        self._busy = False
        self._closed = False
        self._reading_paused = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.conn = Connection(0, "")

    # -- asyncio callbacks ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self.conn = Connection(next(_conn_ids), f"{peer[0]}:{peer[1]}" if peer else "?")
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # not a TCP socket
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=4 * STREAM_CHUNK, low=STREAM_CHUNK)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._pending is not None:
            sink = self._pending[0].sink
            self._pending = None
            if sink is not None:
                sink.discard()
        self._wake_drain()
        if self._on_close is not None:
            self._on_close(self)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_drain()

    def data_received(self, data: bytes) -> None:
        if self._pending is not None:
            data = self._feed_sink(data)
            if not data or self._closed:
                return
        self._buf = self._buf + data if self._buf else data
        if self._busy:
            if len(self._buf) > MAX_BUFFER and not self._reading_paused:
                assert self._transport is not None
                self._transport.pause_reading()
                self._reading_paused = True
            return
        self._process()

    def eof_received(self) -> bool | None:
        # Half-closed by the client: finish what is queued, then close.
        if not self._busy and self._transport is not None:
            self._transport.close()
        return True

    # -- request loop --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (used by the server on shutdown)."""
        if self._transport is not None and not self._closed:
            self._transport.close()

    def _wake_drain(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._drain_waiter = None

    async def _drain(self) -> None:
        while self._write_paused and not self._closed:
            loop = asyncio.get_running_loop()
            self._drain_waiter = loop.create_future()
            await self._drain_waiter

    def _feed_sink(self, data: bytes) -> bytes:
        """Pass body bytes to the pending request's sink; return what follows the body."""
        assert self._pending is not None
        req, keep_alive, left = self._pending
        sink = req.sink
        assert sink is not None
        if len(data) < left:
            sink.write(data)
            self._pending = (req, keep_alive, left - len(data))
            return b""
        sink.write(memoryview(data)[:left] if len(data) > left else data)
        self._pending = None
        sink.close()
        if not self._dispatch(req, keep_alive):
            return b""
        return data[left:]

    def _process(self) -> None:
        transport = self._transport
        assert transport is not None
        buf = self._buf
        pos = 0
        while not self._busy and not self._closed and self._pending is None:
            end = buf.find(b"\r\n\r\n", pos)
            if end < 0:
                if len(buf) - pos > MAX_HEAD:
                    self._send_sync(_error(431, "Request Header Fields Too Large"), False)
                    pos = len(buf)
                break
            try:
                head = buf[pos:end].decode("latin-1")
                lines = head.split("\r\n")
                while lines and not lines[0]:  # tolerate stray CRLF between requests
                    lines.pop(0)
                method, target, version = lines[0].split(" ")
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if not sep:
                        raise ValueError(line)
                    headers[name.strip().lower()] = value.strip()
                clen = int(headers.get("content-length", "0") or "0")
                if clen < 0 or clen > self._max_body:
                    raise ValueError("bad content-length")
            except (ValueError, IndexError):
                self._send_sync(_error(400, "Bad Request"), False)
                pos = len(buf)
                break
            if "transfer-encoding" in headers:
                self._send_sync(_error(501, "Chunked request bodies are not supported"), False)
                pos = len(buf)
                break
            body_start = end + 4
            expects = headers.get("expect", "").lower() == "100-continue"
            sink = None
            if self._sink_factory is not None and clen >= STREAM_BODY_MIN:
                sink = self._sink_factory(method, target, headers, clen)
            if sink is None and len(buf) < body_start + clen:
                if expects and not self._continued:
                    transport.write(CONTINUE)
                    self._continued = True
                break  # wait for the rest of the body
            self._continued = False
            raw_path, _, qs = target.partition("?")
            conn = headers.get("connection", "").lower()
            keep_alive = ("close" not in conn) if version == "HTTP/1.1" else ("keep-alive" in conn)
            self.conn.requests += 1
            req = Request(
                method,
                target,
                unquote(raw_path),
                parse_qs(qs, keep_blank_values=True) if qs else {},
                headers,
                version,
                b"",
                self.conn,
                sink,
            )
            if sink is None:
                req.body = buf[body_start : body_start + clen]
                pos = body_start + clen
            else:
                have = min(len(buf) - body_start, clen)
                if have:
                    sink.write(memoryview(buf)[body_start : body_start + have])
                pos = body_start + have
                if have < clen:
                    if expects:
                        transport.write(CONTINUE)
                    self._pending = (req, keep_alive, clen - have)
                    break
                sink.close()
            if not self._dispatch(req, keep_alive):
                pos = len(buf)
                break
        self._buf = buf[pos:] if pos < len(buf) else b""

    def _dispatch(self, req: Request, keep_alive: bool) -> bool:
        """Hand ``req`` to the handler and answer it; False when the connection is closing."""
        try:
            result = self._handler(req)
        except Exception:  # pragma: no cover - a bug in a handler
            log.exception("hub handler failed for %s %s", req.method, req.target)
            result = _error(500, "Internal Server Error")
        if isinstance(result, Response) and self._is_fast(result):
            keep_alive = keep_alive and not result.close
            self._send_sync(result, keep_alive)
            return keep_alive
        self._busy = True
        self._task = asyncio.get_running_loop().create_task(self._respond_async(result, keep_alive))
        return True

    @staticmethod
    def _is_fast(resp: Response) -> bool:
        if resp.fault is not NO_FAULT:
            return False
        body = resp.body
        if body is None or not resp.send_body:
            return True
        return (
            isinstance(body, Body)
            and body.size == len(body.head)
            and (resp.content_length() <= FAST_BODY_LIMIT)
        )

    def _send_sync(self, resp: Response, keep_alive: bool) -> None:
        transport = self._transport
        assert transport is not None
        head = _head_bytes(resp, keep_alive)
        body = resp.body
        if resp.send_body and isinstance(body, Body) and body.size:
            last = body.size - 1 if resp.last is None else resp.last
            if resp.first == 0 and last == body.size - 1:
                transport.write(head + body.head)
            else:
                transport.write(head + body.head[resp.first : last + 1])
        else:
            transport.write(head)
        if not keep_alive:
            transport.close()

    async def _respond_async(
        self, result: Response | Awaitable[Response], keep_alive: bool
    ) -> None:
        transport = self._transport
        assert transport is not None
        try:
            if not isinstance(result, Response):
                try:
                    result = await result
                except Exception:
                    log.exception("hub handler failed")
                    result = _error(500, "Internal Server Error")
            resp = result
            fault = resp.fault
            if fault.delay > 0:
                await asyncio.sleep(fault.delay)
            if self._closed:
                return
            keep_alive = keep_alive and not resp.close and fault.cut is None
            await self._send_async(resp, keep_alive)
            if not keep_alive and not self._closed:
                if fault.cut == "drop":
                    sock = transport.get_extra_info("socket")
                    if sock is not None:
                        await self._drain()
                        await self._flush()
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                transport.close()
                return
        except (ConnectionError, asyncio.CancelledError):
            if self._transport is not None:
                self._transport.abort()
            return
        except Exception:  # pragma: no cover - defensive: never leave a connection hanging
            log.exception("hub failed while sending a response")
            transport.abort()
            return
        finally:
            self._busy = False
            self._task = None
        if self._closed:
            return
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()
        if self._buf:
            self._process()

    async def _flush(self) -> None:
        """Wait until the transport's own buffer is empty (best effort, bounded)."""
        transport = self._transport
        for _ in range(200):
            if transport is None or self._closed or transport.get_write_buffer_size() == 0:
                return
            await asyncio.sleep(0.005)

    async def _send_async(self, resp: Response, keep_alive: bool) -> None:
        transport = self._transport
        assert transport is not None
        fault = resp.fault
        transport.write(_head_bytes(resp, keep_alive))
        body = resp.body
        if body is None or not resp.send_body:
            return
        first = resp.first
        last = body.size - 1 if resp.last is None else resp.last
        total = last - first + 1
        if total <= 0:
            return
        if fault.cut == "drop":
            last = first + total // 2 - 1
        elif fault.cut == "short":
            last = first + max(0, total - max(1, total // 10)) - 1
        if last < first:
            return
        rate = fault.bandwidth
        if isinstance(body, FileBody | FileParts):
            parts = body.parts if isinstance(body, FileParts) else (body,)
            spans = file_spans(parts, first, last)
            if rate is None and last - first + 1 >= SENDFILE_MIN:
                await self._drain()
                loop = asyncio.get_running_loop()
                for path, offset, count in spans:
                    if self._closed:
                        return
                    with open(path, "rb") as fh:
                        await loop.sendfile(transport, fh, offset, count)
                return
            chunks = [c for p, o, n in spans for c in _file_chunks(p, o, o + n - 1)]
            await self._stream(chunks, rate)
            return
        head_len = len(body.head)
        if rate is None and last - first + 1 >= SENDFILE_MIN and last >= head_len:
            # Zero-copy: the pool lives in a file; the kernel copies it from the page cache.
            if first < head_len:
                transport.write(body.head[first:head_len])
                first = head_len
            loop = asyncio.get_running_loop()
            pool_fh = synth.pool_file()
            while first <= last and not self._closed:
                idx = (body.start + first - head_len) % synth.POOL_SIZE
                n = min(last + 1 - first, synth.POOL_SIZE)
                await loop.sendfile(transport, pool_fh, idx, n)
                first += n
            return
        await self._stream(body.chunks(first, last, STREAM_CHUNK if rate is None else 16384), rate)

    async def _stream(self, chunks: Iterable[bytes | memoryview], rate: int | None) -> None:
        transport = self._transport
        assert transport is not None
        start = time.monotonic()
        sent = 0
        for chunk in chunks:
            if self._closed:
                return
            if rate is not None:
                step = max(1024, rate // 50)
                view = memoryview(chunk)
                for off in range(0, len(view), step):
                    piece = view[off : off + step]
                    wait = start + sent / rate - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    if self._closed:
                        return
                    transport.write(piece)
                    sent += len(piece)
                    await self._drain()
                continue
            transport.write(chunk)
            if self._write_paused:
                await self._drain()


def _file_chunks(path: Path, first: int, last: int) -> list[bytes]:
    with open(path, "rb") as fh:
        fh.seek(first)
        data = fh.read(last - first + 1)
    return [data[i : i + STREAM_CHUNK] for i in range(0, len(data), STREAM_CHUNK)]
