"""A small, fast HTTP/1.1 server on ``asyncio.Protocol``.

Only what the hub needs, done carefully: keep-alive, pipelining (requests on one connection are
answered strictly in order, one at a time), ``Content-Length`` request bodies, HEAD, flow-controlled
streaming of large bodies (``memoryview`` windows, or ``loop.sendfile`` for files on disk), and the
transport-level faults of :mod:`.faults` (delays, bandwidth caps, cut bodies, resets).

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
from urllib.parse import parse_qs, unquote

from . import synth
from .faults import NO_FAULT, FaultDecision
from .synth import Body

__all__ = ["Connection", "FileBody", "HTTPProtocol", "Handler", "Request", "Response"]

log = logging.getLogger(__name__)

MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
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
    """A body read from a file on disk (sent with ``sendfile`` when large)."""

    path: Path
    size: int


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
    body: Body | FileBody | None = None
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

    def __init__(self, handler: Handler, on_close: Callable[[HTTPProtocol], None] | None = None):
        self._handler = handler
        self._on_close = on_close
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
        self._wake_drain()
        if self._on_close is not None:
            self._on_close(self)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_drain()

    def data_received(self, data: bytes) -> None:
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

    def _process(self) -> None:
        transport = self._transport
        assert transport is not None
        buf = self._buf
        pos = 0
        while not self._busy and not self._closed:
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
                if clen < 0 or clen > MAX_BODY:
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
            if len(buf) < body_start + clen:
                break  # wait for the rest of the body
            body = buf[body_start : body_start + clen]
            pos = body_start + clen
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
                body,
                self.conn,
            )
            try:
                result = self._handler(req)
            except Exception:  # pragma: no cover - a bug in a handler
                log.exception("hub handler failed for %s %s", method, target)
                result = _error(500, "Internal Server Error")
            if isinstance(result, Response) and self._is_fast(result):
                keep_alive = keep_alive and not result.close
                self._send_sync(result, keep_alive)
                if not keep_alive:
                    pos = len(buf)
                    break
            else:
                self._busy = True
                self._task = asyncio.get_running_loop().create_task(
                    self._respond_async(result, keep_alive)
                )
        self._buf = buf[pos:] if pos < len(buf) else b""

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
        if isinstance(body, FileBody):
            if rate is None and last - first + 1 >= SENDFILE_MIN:
                await self._drain()
                loop = asyncio.get_running_loop()
                with open(body.path, "rb") as fh:
                    await loop.sendfile(transport, fh, first, last - first + 1)
                return
            await self._stream(_file_chunks(body.path, first, last), rate)
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
