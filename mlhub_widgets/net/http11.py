"""A minimal, fast HTTP/1.1 client on asyncio, made for the transfer engine.

It only does what moving asset bytes needs: ``GET`` (and ``HEAD``) over keep-alive connections
pooled per origin, ``Content-Length``, chunked and read-until-close bodies, ``Connection: close``,
TLS through :mod:`ssl`, connect and read timeouts. It parses responses with a buffered protocol
(``recv_into`` a preallocated buffer, no per-chunk ``bytes`` objects) and hands bodies over either
whole (small ones, already complete when the response is returned) or streamed to a synchronous
*sink* in large slices, so a 50 MiB file costs ~50 Python calls, not 50,000.

It is deliberately not a general client: no cookies, no compression (it sends
``Accept-Encoding: identity``), no proxies, no pipelining, no redirects (the caller follows them,
so it can decide what to forward across origins).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import quote, urlsplit

__all__ = [
    "ConnectionDropped",
    "HTTPClient",
    "HTTPClientError",
    "ProtocolError",
    "ReadTimeout",
    "Response",
]

#: Largest response head accepted (status line + headers).
HEAD_LIMIT: Final = 64 * 1024
#: Bodies with a ``Content-Length`` up to this size are read into memory before the response
#: is returned; larger, chunked and read-until-close bodies are streamed to a sink.
SMALL_BODY: Final = 256 * 1024

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_SAFE_PATH: Final = "/%:@!$&'()*+,;=-._~?"

# connection states
_IDLE: Final = 0
_HEAD: Final = 1
_BODY_MEM: Final = 2
_BODY_STREAM: Final = 3
_BODY_CHUNKED: Final = 4
_BODY_EOF: Final = 5
_CLOSED: Final = 9

Sink = Callable[[memoryview], "asyncio.Future[Any] | None"]
"""Receives body bytes in order; called synchronously from the event loop.

Returning ``None`` means the bytes were consumed and the buffer may be reused. Returning a future
means the sink still uses the buffer (e.g. a thread writes it to disk): the connection switches
to a second buffer and will not call the sink again, nor report the body complete or failed,
before that future is done (a failed future aborts the body with its exception).
"""


class HTTPClientError(Exception):
    """Base class of transport-level failures (no usable HTTP response)."""


class ConnectionDropped(HTTPClientError):
    """The connection closed or broke before the response was complete.

    Attributes:
        received: body bytes received before the drop (``-1``: the head was not complete).
        expected: the announced body length, if any.
        stale: nothing at all came back on a reused keep-alive connection (safe to resend).
    """

    def __init__(
        self, message: str, *, received: int = -1, expected: int | None = None, stale: bool = False
    ) -> None:
        super().__init__(message)
        self.received = received
        self.expected = expected
        self.stale = stale


class ProtocolError(HTTPClientError):
    """The server sent something that is not valid HTTP/1.1."""


class ReadTimeout(HTTPClientError):
    """No byte arrived for longer than the read timeout."""


class ConnectTimeout(HTTPClientError):
    """The TCP (and TLS) connection could not be set up within the connect timeout."""


class Response:
    """One HTTP response.

    ``body`` is the complete body when it was small enough to be read before returning (see
    :data:`SMALL_BODY`); otherwise it is ``None`` and the caller must either stream it with
    :meth:`read_into` or drop it with :meth:`discard`.
    """

    __slots__ = ("_conn", "body", "headers", "length", "reason", "status", "url")

    def __init__(
        self,
        conn: _Connection | None,
        status: int,
        reason: str,
        headers: dict[str, str],
        length: int | None,
        body: bytes | None,
        url: str,
    ) -> None:
        self._conn = conn
        self.status = status
        self.reason = reason
        self.headers = headers
        self.length = length  # Content-Length (None: chunked or until close)
        self.body = body
        self.url = url

    async def read_into(self, sink: Sink) -> int:
        """Stream the body to ``sink`` and return the number of body bytes.

        Raises :class:`ConnectionDropped` (short body), :class:`ReadTimeout`,
        :class:`ProtocolError`, or whatever ``sink`` raised (the connection is then closed).
        """
        if self.body is not None:
            if self.body:
                pending = sink(memoryview(self.body))
                if pending is not None:
                    await pending
            return len(self.body)
        conn = self._conn
        if conn is None:
            raise RuntimeError("response body already consumed")
        self._conn = None
        try:
            return await conn.stream_body(sink)
        except asyncio.CancelledError:
            conn.abort(None)
            raise

    def discard(self) -> None:
        """Drop an unread body: the connection is closed (cheaper than draining big bodies)."""
        conn = self._conn
        if conn is not None:
            self._conn = None
            conn.abort(None)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


class _Connection(asyncio.BufferedProtocol):
    """One keep-alive HTTP/1.1 connection (a buffered protocol driven by the event loop)."""

    def __init__(self, pool: _OriginPool, chunk_size: int) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.busy = False
        self.last_activity = 0.0
        self._chunk_size = chunk_size
        self._buf = bytearray(HEAD_LIMIT)
        self._n = 0  # valid bytes in _buf
        self._scan = 0  # where to resume the search for the end of the head
        self._state = _IDLE
        self._head_request = False
        self._waiter: asyncio.Future[Response] | None = None
        self._url = ""
        # head results
        self._status = 0
        self._reason = ""
        self._headers: dict[str, str] = {}
        self._keep_alive = True
        self._body_start = 0
        self._length: int | None = None
        # streaming
        self._sbuf: bytearray | None = None
        self._spos = 0  # bytes waiting in _sbuf
        self._remaining = 0  # body bytes still expected (Content-Length mode)
        self._received = 0  # body bytes received so far
        self._sink: Sink | None = None
        self._paused = False
        self._inflight: asyncio.Future[Any] | None = None  # the sink still holds _held
        self._held: bytearray | None = None
        self._spare: bytearray | None = None
        self._flush_wanted = False
        self._finish_wanted = False
        self._eof_done = False
        self._deferred: int | BaseException | None = None
        self._streaming = False  # a Response with an unread body is out
        self._final: int | BaseException | None = None  # body outcome before a sink came
        self._body_waiter: asyncio.Future[int] | None = None
        # chunked decoding
        self._chunk_left = 0  # data bytes left in the current chunk
        self._chunk_phase = 0  # 0 size line, 1 data, 2 CRLF after data, 3 trailers

    # -- asyncio protocol callbacks ---------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        state = self._state
        if state in (_BODY_STREAM, _BODY_EOF):
            sbuf = self._sbuf
            assert sbuf is not None
            end = len(sbuf)
            if state == _BODY_STREAM and self._spos + self._remaining < end:
                end = self._spos + self._remaining
            if end > self._spos:
                return memoryview(sbuf)[self._spos : end]
        elif state == _BODY_MEM:
            end = self._body_start + (self._length or 0)
            if end > self._n:
                return memoryview(self._buf)[self._n : end]
        elif self._n < len(self._buf):
            return memoryview(self._buf)[self._n :]
        # Never hand out an empty buffer (an SSL transport reads that as end of stream):
        # bytes landing here are beyond the response and make the connection unusable.
        self._keep_alive = False
        return memoryview(bytearray(4096))

    def buffer_updated(self, nbytes: int) -> None:
        self.last_activity = self.loop.time()
        state = self._state
        if state == _BODY_STREAM:
            self._spos += nbytes
            self._remaining -= nbytes
            self._received += nbytes
            if self._remaining <= 0:
                self._finish_stream()
            elif self._spos >= len(self._sbuf or b""):
                self._flush()
            return
        if state == _BODY_EOF:
            self._spos += nbytes
            self._received += nbytes
            if self._spos >= len(self._sbuf or b""):
                self._flush()
            return
        self._n += nbytes
        try:
            if state == _HEAD:
                self._parse_head()
            elif state == _BODY_MEM:
                if self._n >= self._body_start + (self._length or 0):
                    self._complete_small()
            elif state == _BODY_CHUNKED:
                self._decode_chunked()
            else:  # unsolicited bytes on an idle connection: not reusable
                self._keep_alive = False
                self._n = 0
                if state == _IDLE:
                    self.abort(None)
        except ProtocolError as exc:
            self.abort(exc)

    def eof_received(self) -> bool:
        return False  # let the transport close; connection_lost does the bookkeeping

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.busy = False
        self.pool.forget(self)
        state = self._state
        self._state = _CLOSED
        if state in (_IDLE, _CLOSED):
            return
        if state == _BODY_EOF and exc is None:
            self._eof_done = True
            self._try_finish_eof()
            return
        why = f": {exc}" if exc else ""
        if state == _HEAD:
            err = ConnectionDropped(
                f"connection closed before the response{why}",
                stale=self.reused and self._n == 0,
            )
        else:
            got = self._received
            if state == _BODY_MEM:
                got = self._n - self._body_start
            expected = self._length
            what = f"{got:,} of {expected:,} bytes" if expected is not None else f"{got:,} bytes"
            err = ConnectionDropped(
                f"connection dropped after {what}{why}", received=got, expected=expected
            )
            if self._sink is not None and self._spos and self._inflight is None:
                # keep what did arrive: a resumed transfer reuses it
                self._flush()
                if self._streaming is False:
                    return  # the sink failed
        self._fail(err)

    def pause_writing(self) -> None:  # requests are tiny; nothing to throttle
        pass

    def resume_writing(self) -> None:
        pass

    # -- requests ------------------------------------------------------------------------------
    def send(self, data: bytes, url: str, head_request: bool) -> asyncio.Future[Response]:
        """Write one request and return a future for its response head (and small body)."""
        assert self.transport is not None and self._state == _IDLE
        self._waiter = waiter = self.loop.create_future()
        self._state = _HEAD
        self._n = 0
        self._scan = 0
        self._url = url
        self._head_request = head_request
        self._keep_alive = True
        self._final = None
        self._eof_done = False
        self._flush_wanted = False
        self._finish_wanted = False
        self.busy = True
        self.last_activity = self.loop.time()
        self.transport.write(data)
        return waiter

    def stream_body(self, sink: Sink) -> asyncio.Future[int]:
        """Attach ``sink`` to the body being received; the future gives the body length."""
        self._body_waiter = fut = self.loop.create_future()
        self._sink = sink
        final = self._final
        if final is not None:  # the body ended (or failed) before the sink was attached
            self._final = None
            if self._spos:
                self._flush()
                if fut.done():
                    return fut  # the sink failed; fut carries its exception
            self._body_result(final)
            return fut
        state = self._state
        if self._eof_done:
            self._try_finish_eof()
            return fut
        if state == _BODY_STREAM and self._remaining <= 0:
            self._finish_stream()
        elif self._spos:
            self._flush()
        if self._state == _BODY_CHUNKED and self._n:
            try:
                self._decode_chunked()
            except ProtocolError as exc:
                self.abort(exc)
        self._maybe_resume()
        return fut

    def abort(self, exc: Exception | None) -> None:
        """Close the connection at once; pending waiters fail with ``exc`` (or a drop)."""
        self._fail(exc if exc is not None else ConnectionDropped("connection closed"))
        self._state = _CLOSED
        self.closed = True
        self.pool.forget(self)
        if self.transport is not None:
            self.transport.abort()

    # -- internals ------------------------------------------------------------------------------
    def _fail(self, exc: BaseException) -> None:
        self.busy = False
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if self._streaming:
            self._streaming = False
            self._body_result(exc)

    def _body_result(self, result: int | BaseException) -> None:
        """Deliver the body's outcome to its waiter, or keep it until a sink is attached."""
        if self._inflight is not None:  # never report before the sink is done with the bytes
            if not isinstance(self._deferred, BaseException):
                self._deferred = result
            return
        bwaiter = self._body_waiter
        if bwaiter is None:
            self._final = result
            return
        self._body_waiter = None
        self._sink = None
        if bwaiter.done():
            return
        if isinstance(result, BaseException):
            bwaiter.set_exception(result)
        else:
            bwaiter.set_result(result)

    def _parse_head(self) -> None:
        buf = self._buf
        end = buf.find(b"\r\n\r\n", self._scan, self._n)
        if end < 0:
            if self._n >= len(buf):
                raise ProtocolError("response head larger than 64 KiB")
            self._scan = max(0, self._n - 3)
            return
        status_line, _, rest = buf[:end].decode("latin-1").partition("\r\n")
        parts = status_line.split(" ", 2)
        if (
            len(parts) < 2
            or not parts[0].startswith("HTTP/1.")
            or not parts[1].isdigit()
            or not parts[1].isascii()
        ):
            raise ProtocolError(f"bad status line {status_line[:60]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        if rest:  # no empty lines in here: the first one ends the head
            get = headers.get
            for line in rest.split("\r\n"):
                name, sep, value = line.partition(":")
                if not sep or not name or name[-1] in " \t":  # RFC 9112: no space before ":"
                    raise ProtocolError(f"bad header line {line[:60]!r}")
                key = name.lower()
                value = value.strip()
                old = get(key)
                if old is None:
                    headers[key] = value
                elif key != "content-length":
                    headers[key] = old + ", " + value
                elif old != value:
                    raise ProtocolError("conflicting Content-Length headers")
        body_start = end + 4
        if 100 <= status < 200:  # interim response (100 Continue, 103 Early Hints): skip it
            left = self._n - body_start
            buf[:left] = buf[body_start : self._n]
            self._n = left
            self._scan = 0
            if left:
                self._parse_head()
            return
        conn_hdr = headers.get("connection")
        if parts[0] == "HTTP/1.0":
            self._keep_alive = conn_hdr is not None and "keep-alive" in conn_hdr.lower()
        elif conn_hdr is not None and "close" in conn_hdr.lower():
            self._keep_alive = False
        self._status = status
        self._reason = parts[2] if len(parts) > 2 else ""
        self._headers = headers
        self._body_start = body_start
        te = headers.get("transfer-encoding")
        clen = headers.get("content-length")
        if self._head_request or status == 204 or status == 304:
            self._length = 0
        elif te is not None and "chunked" in te.lower():
            self._length = None
            left = self._n - body_start
            buf[:left] = buf[body_start : self._n]
            self._n = left
            self._chunk_left = 0
            self._chunk_phase = 0
            self._received = 0
            self._start_stream(_BODY_CHUNKED, 0)
            return
        elif clen is not None:
            if not clen.isdigit() or not clen.isascii():
                raise ProtocolError(f"bad Content-Length {clen[:40]!r}")
            self._length = int(clen)
        else:
            self._length = None
            self._keep_alive = False
            self._start_stream(_BODY_EOF, 0)
            return
        length = self._length
        if length <= SMALL_BODY:
            need = body_start + length
            if need > len(buf):
                grown = bytearray(need)
                grown[: self._n] = buf[: self._n]
                self._buf = grown  # the old buffer may still be exported by the caller
            if self._n >= need:
                self._complete_small()
            else:
                self._state = _BODY_MEM
            return
        self._start_stream(_BODY_STREAM, length)

    def _complete_small(self) -> None:
        length = self._length or 0
        start = self._body_start
        if self._n > start + length:
            self._keep_alive = False  # bytes after the response: never reuse
        body = bytes(self._buf[start : start + length])
        self._state = _IDLE
        self._n = 0
        resp = Response(None, self._status, self._reason, self._headers, length, body, self._url)
        self._done_ok()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(resp)

    def _start_stream(self, state: int, length: int) -> None:
        sbuf = self._sbuf
        if sbuf is None or len(sbuf) != self._chunk_size:
            self._sbuf = sbuf = bytearray(self._chunk_size)
        self._state = state
        self._streaming = True
        self._spos = 0
        self._received = 0
        self._sink = None
        self._remaining = length
        resp = Response(
            self, self._status, self._reason, self._headers, self._length, None, self._url
        )
        if state != _BODY_CHUNKED:
            # body bytes that arrived with the head
            have = self._n - self._body_start
            if state == _BODY_STREAM and have > length:
                have = length
                self._keep_alive = False
            if have > len(sbuf):  # only possible with a tiny chunk size
                self._sbuf = sbuf = bytearray(have)
            sbuf[:have] = self._buf[self._body_start : self._body_start + have]
            self._n = 0
            self._spos = have
            self._received = have
            self._remaining = length - have
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(resp)
        if self._spos >= len(sbuf) or (state == _BODY_STREAM and self._remaining <= 0):
            self._pause()  # until the consumer attaches a sink

    def _pause(self) -> None:
        if not self._paused and self.transport is not None and not self.closed:
            self._paused = True
            self.transport.pause_reading()

    def _flush(self) -> None:
        """Hand the buffered body bytes to the sink (or pause reading until one is attached)."""
        sink = self._sink
        if sink is None:
            self._pause()
            return
        if self._spos:
            if self._inflight is not None:  # the other buffer is still with the sink
                self._flush_wanted = True
                self._pause()
                return
            sbuf = self._sbuf
            assert sbuf is not None
            count = self._spos
            self._spos = 0
            try:
                pending = sink(memoryview(sbuf)[:count])
            except Exception as exc:
                self.abort(exc)
                return
            if pending is not None:
                self._inflight = pending
                self._held = sbuf
                spare, self._spare = self._spare, None
                if spare is None or len(spare) != len(sbuf):
                    spare = bytearray(len(sbuf))
                self._sbuf = spare
                pending.add_done_callback(self._sink_done)
        if self._state == _BODY_STREAM and self._remaining <= 0:
            self._finish_stream()

    def _sink_done(self, fut: asyncio.Future[Any]) -> None:
        """The sink gave its buffer back: continue where :meth:`_flush` had to stop."""
        self._inflight = None
        self._spare, self._held = self._held, None
        exc = ConnectionDropped("body write cancelled") if fut.cancelled() else fut.exception()
        if exc is not None:
            if self._state == _CLOSED:
                self._deferred = None
                self._fail_body(exc)
            else:
                self.abort(exc if isinstance(exc, Exception) else None)
            return
        if self._flush_wanted:
            self._flush_wanted = False
            self._flush()
        if self._eof_done:
            self._try_finish_eof()
            return
        deferred = self._deferred
        if deferred is not None and self._inflight is None:
            self._deferred = None
            self._body_result(deferred)
            return
        if self._state == _BODY_CHUNKED and self._n and self._inflight is None:
            try:
                self._decode_chunked()
            except ProtocolError as error:
                self.abort(error)
                return
        if self._finish_wanted and self._inflight is None:
            self._finish_wanted = False
            self._finish_stream()
        self._maybe_resume()

    def _fail_body(self, exc: BaseException) -> None:
        self._streaming = False
        self._body_result(exc)

    def _maybe_resume(self) -> None:
        if (
            self._paused
            and not self.closed
            and self.transport is not None
            and self._sink is not None
            and self._inflight is None
            and self._state in (_BODY_STREAM, _BODY_CHUNKED, _BODY_EOF)
            and self._spos < len(self._sbuf or b"")
            and self._n < len(self._buf)
        ):
            self._paused = False
            self.transport.resume_reading()

    def _try_finish_eof(self) -> None:
        """The connection closed: the end of a read-until-close body, once all is written."""
        if self._sink is not None and self._spos:
            self._flush()
        if self._inflight is not None or self._sink is None:
            return  # _sink_done or stream_body comes back here
        self._eof_done = False
        self._streaming = False
        self._body_result(self._received)

    def _finish_stream(self) -> None:
        if self._sink is None:
            self._pause()
            return
        if self._spos:
            self._flush()  # calls back into _finish_stream when done
            return
        if self._inflight is not None:
            self._finish_wanted = True
            return
        self._state = _IDLE
        self._n = 0
        self._streaming = False
        received = self._received
        self._done_ok()
        self._body_result(received)

    def _decode_chunked(self) -> None:
        """Decode as much of ``_buf[:_n]`` as possible into the stream buffer."""
        buf = self._buf
        pos = 0
        n = self._n
        sbuf = self._sbuf
        assert sbuf is not None
        while pos < n:
            phase = self._chunk_phase
            if phase == 1:  # chunk data
                take = min(self._chunk_left, n - pos, len(sbuf) - self._spos)
                if take == 0:
                    break  # stream buffer full
                sbuf[self._spos : self._spos + take] = buf[pos : pos + take]
                self._spos += take
                self._received += take
                self._chunk_left -= take
                pos += take
                if self._chunk_left == 0:
                    self._chunk_phase = 2
                if self._spos >= len(sbuf):
                    if self._sink is None:
                        break
                    if self._inflight is not None:
                        self._flush_wanted = True
                        break
                    self._flush()
                    sbuf = self._sbuf
                    assert sbuf is not None
                    if self._spos:  # the flush could not hand the bytes over
                        break
                continue
            eol = buf.find(b"\r\n", pos, n)
            if eol < 0:
                if n - pos > 4096:
                    raise ProtocolError("chunk header too long")
                break
            line = bytes(buf[pos:eol])
            pos = eol + 2
            if phase == 0:
                size_text = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise ProtocolError(f"bad chunk size {size_text[:20]!r}") from None
                if size < 0:
                    raise ProtocolError("negative chunk size")
                if size == 0:
                    self._chunk_phase = 3
                else:
                    self._chunk_left = size
                    self._chunk_phase = 1
            elif phase == 2:
                if line:
                    raise ProtocolError("missing CRLF after chunk data")
                self._chunk_phase = 0
            else:  # trailers; an empty line ends the message
                if not line:
                    if pos < n:
                        self._keep_alive = False
                    self._n = 0
                    self._state = _BODY_STREAM
                    self._remaining = 0
                    if self._sink is not None:
                        self._flush()
                    else:
                        self._pause()
                    return
        rest = n - pos
        if pos:
            buf[:rest] = buf[pos:n]
        self._n = rest
        if rest >= len(buf):
            self._pause()  # stream buffer full and no sink yet

    def _done_ok(self) -> None:
        """A response completed: back to the pool if reusable, else close."""
        self.busy = False
        if self._keep_alive and not self.closed:
            if self._paused and self.transport is not None:
                self._paused = False
                self.transport.resume_reading()
            self.pool.release(self)
        else:
            self.closed = True
            self._state = _CLOSED
            self.pool.forget(self)
            if self.transport is not None:
                self.transport.close()


class _OriginPool:
    """Keep-alive connections to one (scheme, host, port)."""

    def __init__(self, client: HTTPClient, scheme: str, host: str, port: int) -> None:
        self.client = client
        self.loop = client.loop
        self.scheme = scheme
        self.host = host
        self.port = port
        default = _DEFAULT_PORTS.get(scheme)
        host_text = f"[{host}]" if ":" in host else host
        self.host_header = host_text if port == default else f"{host_text}:{port}"
        self.idle: list[_Connection] = []
        self.all: set[_Connection] = set()
        self.limit = client.per_host
        self.waiters: list[asyncio.Future[None]] = []

    def take_idle(self) -> _Connection | None:
        """An open idle connection, if there is one (no waiting)."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            transport = conn.transport
            if not conn.closed and transport is not None and not transport.is_closing():
                conn.reused = True
                return conn
            self.all.discard(conn)
        return None

    async def acquire(self) -> _Connection:
        """An idle connection, a new one, or the next one released when at the limit."""
        while True:
            conn = self.take_idle()
            if conn is not None:
                return conn
            if len(self.all) < self.limit:
                return await self._connect()
            fut: asyncio.Future[None] = self.loop.create_future()
            self.waiters.append(fut)
            try:
                await fut
            finally:
                with contextlib.suppress(ValueError):
                    self.waiters.remove(fut)

    async def _connect(self) -> _Connection:
        conn = _Connection(self, self.client.chunk_size)
        self.all.add(conn)
        ssl_ctx = self.client.ssl_context() if self.scheme == "https" else None
        try:
            await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: conn,
                    self.host,
                    self.port,
                    ssl=ssl_ctx,
                    server_hostname=self.host if ssl_ctx is not None else None,
                ),
                self.client.connect_timeout,
            )
        except TimeoutError:
            self.forget(conn)
            raise ConnectTimeout(
                f"connect to {self.host_header} timed out after {self.client.connect_timeout:g}s"
            ) from None
        except BaseException:
            self.forget(conn)
            raise
        return conn

    def release(self, conn: _Connection) -> None:
        self.idle.append(conn)
        if self.waiters:
            self._wake()

    def forget(self, conn: _Connection) -> None:
        if conn in self.all:
            self.all.discard(conn)
            if self.waiters:
                self._wake()

    def _wake(self) -> None:
        for fut in self.waiters:
            if not fut.done():
                fut.set_result(None)
                return

    def close(self) -> None:
        for conn in list(self.all):
            conn.abort(None)
        self.all.clear()
        self.idle.clear()


class HTTPClient:
    """Pools of keep-alive HTTP/1.1 connections, one per origin, bound to one event loop.

    Args:
        connect_timeout: seconds allowed for TCP (+TLS) set-up.
        read_timeout: seconds without any received byte before a request fails.
        per_host: most connections open at once to one origin.
        chunk_size: size of the streaming buffer handed to sinks.
        user_agent: the ``User-Agent`` header.
        ssl_context: TLS settings (default: verify against certifi's or the system's CAs).
    """

    def __init__(
        self,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        per_host: int = 64,
        chunk_size: int = 1 << 20,
        user_agent: str = "mlhub_widgets",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.per_host = max(1, per_host)
        self.chunk_size = max(16 * 1024, chunk_size)
        self._pools: dict[tuple[str, str, int], _OriginPool] = {}
        self._prefixes: dict[str, _OriginPool] = {}  # "scheme://authority" -> pool
        self._ssl = ssl_context
        self._fixed = f"User-Agent: {user_agent}\r\nAccept-Encoding: identity\r\n"
        self._watchdog: asyncio.TimerHandle | None = None
        self._closed = False
        self._arm_watchdog()

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context (system trust store, or certifi's when installed)."""
        if self._ssl is None:
            try:
                import certifi

                self._ssl = ssl.create_default_context(cafile=certifi.where())
            except ImportError:  # pragma: no cover - certifi comes with requests
                self._ssl = ssl.create_default_context()
        return self._ssl

    def _arm_watchdog(self) -> None:
        interval = min(1.0, max(0.05, self.read_timeout / 4))
        self._watchdog = self.loop.call_later(interval, self._check_timeouts)

    def _check_timeouts(self) -> None:
        if self._closed:
            return
        deadline = self.loop.time() - self.read_timeout
        for pool in self._pools.values():
            for conn in list(pool.all):
                if conn.busy and conn.last_activity < deadline and not conn.closed:
                    conn.abort(
                        ReadTimeout(f"no data for {self.read_timeout:g}s from {pool.host_header}")
                    )
        self._arm_watchdog()

    def _pool_for_url(self, url: str) -> tuple[_OriginPool, str]:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise ValueError(f"unsupported URL scheme {scheme!r}")
        host = parts.hostname
        if not host:
            raise ValueError("URL has no host")
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError:
            raise ValueError("URL has an invalid port") from None
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        return self.pool_for(scheme, host, port), target

    def pool_for(self, scheme: str, host: str, port: int) -> _OriginPool:
        key = (scheme, host, port)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _OriginPool(self, scheme, host, port)
        return pool

    async def request(self, url: str, headers: str = "", *, method: str = "GET") -> Response:
        """Send ``method url`` with extra ``headers`` (``"Name: value\\r\\n"`` lines).

        Small bodies come back complete in :attr:`Response.body`. A request that fails on a
        reused connection before any response byte arrives is resent once on a new connection.
        """
        cut = url.find("/", 8)  # end of "scheme://authority" ("http://" is 7 characters)
        prefix, target = (url, "/") if cut < 0 else (url[:cut], url[cut:])
        pool = self._prefixes.get(prefix)
        if pool is None:
            pool, target = self._pool_for_url(url)
            if "?" not in prefix and "#" not in prefix and len(self._prefixes) < 4096:
                self._prefixes[prefix] = pool
        if "#" in target:
            target = target.split("#", 1)[0]
        if not target.isascii() or " " in target:
            target = quote(target, safe=_SAFE_PATH)
        data = (
            f"{method} {target} HTTP/1.1\r\nHost: {pool.host_header}\r\n{self._fixed}{headers}\r\n"
        ).encode("latin-1")
        for _ in range(2):
            conn = pool.take_idle() or await pool.acquire()
            try:
                return await conn.send(data, url, method == "HEAD")
            except ConnectionDropped as exc:
                if not exc.stale:
                    raise
            except asyncio.CancelledError:
                conn.abort(None)
                raise
        raise ConnectionDropped("connection closed before the response")

    def close(self) -> None:
        """Close every connection (pending requests fail with :class:`ConnectionDropped`)."""
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        self._prefixes.clear()
