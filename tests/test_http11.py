"""Protocol-level tests of the asyncio HTTP/1.1 client (:mod:`mlhub_widgets.net.http11`).

A scripted loopback server answers each request with exact bytes, optionally cut into pieces
(every split point of a response head is tried), so head parsing, body framing, keep-alive and
the error paths are checked byte for byte, independently of the transfer engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from mlhub_widgets.net.http11 import (
    ConnectionDropped,
    HTTPClient,
    HTTPClientError,
    ProtocolError,
    ReadTimeout,
    Response,
)

pytestmark = pytest.mark.timeout(60)

# what the server does with one request: a list of byte pieces (sent with a pause between
# them), optionally followed by closing the connection
Script = list[bytes | None]


class ScriptedServer:
    """Loopback server: the n-th request on any connection gets ``scripts[n]``.

    ``None`` in a script closes the connection. ``connections`` counts accepted connections and
    ``requests`` records each request's raw head.
    """

    def __init__(self, scripts: list[Script]) -> None:
        self.scripts = scripts
        self.next = 0
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.url = ""

    async def start(self) -> ScriptedServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.requests.append(head)
                script = self.scripts[self.next]
                self.next += 1
                for piece in script:
                    if piece is None:
                        writer.close()
                        return
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0.002)
        finally:
            writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def serve(
    scripts: list[Script], body: Callable[[HTTPClient, str], Awaitable[Any]], **kw: Any
) -> Any:
    """Run ``body(client, url)`` against a server that plays ``scripts``; return its result."""

    async def main() -> Any:
        srv = await ScriptedServer(scripts).start()
        client = HTTPClient(**kw)
        try:
            result = await body(client, srv.url)
        finally:
            client.close()
            await srv.close()
        return result, srv

    return asyncio.run(main())


async def collect(resp: Response) -> bytes:
    parts: list[bytes] = []
    await resp.read_into(lambda view: parts.append(bytes(view)))
    return b"".join(parts)


async def error_of(call: Awaitable[Any]) -> HTTPClientError | None:
    """The client error ``call`` raises, or None if it succeeds."""
    try:
        await call
    except HTTPClientError as exc:
        return exc
    return None


OK = b'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: "e"\r\n\r\nhello'


# ---------------------------------------------------------------------------------------------
# heads
# ---------------------------------------------------------------------------------------------
def test_headers_are_lowercased_stripped_and_merged() -> None:
    raw = (
        b"HTTP/1.1 200 Fine Thanks\r\nContent-Length: 2\r\nX-A:  one \r\nx-a: two\r\n"
        b'ETag: "Tag-Case"\r\nContent-MD5:\tAbC==\t\r\nEmpty:\r\n\r\nok'
    )

    async def body(client: HTTPClient, url: str) -> Response:
        return await client.request(url + "/f")

    resp, _ = serve([[raw]], body)
    assert resp.status == 200 and resp.reason == "Fine Thanks"
    assert resp.body == b"ok" and resp.length == 2
    assert resp.headers == {
        "content-length": "2",
        "x-a": "one, two",
        "etag": '"Tag-Case"',
        "content-md5": "AbC==",
        "empty": "",
    }


def test_status_line_without_reason() -> None:
    async def body(client: HTTPClient, url: str) -> Response:
        return await client.request(url + "/")

    resp, _ = serve([[b"HTTP/1.1 204\r\n\r\n"]], body)
    assert resp.status == 204 and resp.reason == "" and resp.body == b""


@pytest.mark.parametrize("cut", range(1, len(OK)))
def test_response_split_anywhere(cut: int) -> None:
    async def body(client: HTTPClient, url: str) -> tuple[Response, Response]:
        first = await client.request(url + "/a")
        second = await client.request(url + "/b")
        return first, second

    (first, second), srv = serve([[OK[:cut], OK[cut:]], [OK]], body)
    for resp in (first, second):
        assert resp.status == 200 and resp.body == b"hello" and resp.headers["etag"] == '"e"'
    assert srv.connections == 1  # kept alive


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello",  # space before the colon
        b"HTTP/1.1 200 OK\r\nContent-Length\t: 5\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\n: empty name\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello",
        b"HTTP/2 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        b"ICY 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 2xx OK\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 2\xb200 OK\r\nContent-Length: 5\r\n\r\nhello",  # a non-ASCII digit
        b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\nhello",
    ],
)
def test_malformed_heads_are_protocol_errors(raw: bytes) -> None:
    async def body(client: HTTPClient, url: str) -> BaseException | None:
        return await error_of(client.request(url + "/bad"))

    exc, _ = serve([[raw]], body)
    assert isinstance(exc, ProtocolError)


def test_identical_repeated_content_length_is_accepted() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello"

    async def body(client: HTTPClient, url: str) -> Response:
        return await client.request(url + "/")

    resp, _ = serve([[raw]], body)
    assert resp.body == b"hello" and resp.headers["content-length"] == "5"


def test_head_larger_than_the_limit() -> None:
    raw = b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 70_000 + b"\r\nContent-Length: 0\r\n\r\n"

    async def body(client: HTTPClient, url: str) -> BaseException | None:
        return await error_of(client.request(url + "/"))

    exc, _ = serve([[raw]], body)
    assert isinstance(exc, ProtocolError) and "64 KiB" in str(exc)


def test_interim_responses_are_skipped() -> None:
    raw = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    )

    async def body(client: HTTPClient, url: str) -> tuple[Response, Response]:
        return await client.request(url + "/1"), await client.request(url + "/2")

    (first, second), srv = serve([[raw], [raw[:30], raw[30:]]], body)
    for resp in (first, second):
        assert resp.status == 200 and resp.body == b"ok" and "link" not in resp.headers
    assert srv.connections == 1


# ---------------------------------------------------------------------------------------------
# bodies and keep-alive
# ---------------------------------------------------------------------------------------------
def test_keep_alive_and_connection_close() -> None:
    close = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
    old = b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    old_ka = b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: Keep-Alive\r\n\r\nhello"

    async def body(client: HTTPClient, url: str) -> list[bytes | None]:
        return [(await client.request(f"{url}/{i}")).body for i in range(6)]

    bodies, srv = serve([[OK], [OK], [close], [old], [old_ka], [OK]], body)
    assert bodies == [b"hello"] * 6
    # 1-3 on the first connection (closed by 3), 4 alone (HTTP/1.0), 5-6 on the third
    assert srv.connections == 3


def test_extra_bytes_after_a_small_body_stop_reuse() -> None:
    async def body(client: HTTPClient, url: str) -> list[bytes | None]:
        return [(await client.request(f"{url}/{i}")).body for i in range(2)]

    bodies, srv = serve([[OK + b"GARBAGE"], [OK]], body)
    assert bodies == [b"hello", b"hello"] and srv.connections == 2


def test_head_request_and_no_body_statuses() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    not_modified = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\n\r\n"

    async def body(client: HTTPClient, url: str) -> list[Response]:
        first = await client.request(url + "/h", method="HEAD")
        second = await client.request(url + "/n")
        third = await client.request(url + "/ok")
        return [first, second, third]

    (h, n, ok), srv = serve([[head], [not_modified], [OK]], body)
    assert h.status == 200 and h.body == b"" and h.headers["content-length"] == "1000"
    assert n.status == 304 and n.body == b""
    assert ok.body == b"hello" and srv.connections == 1
    assert srv.requests[0].startswith(b"HEAD /h HTTP/1.1\r\n")


def test_chunked_body_with_extensions_and_trailers() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n"
    )

    async def body(client: HTTPClient, url: str) -> tuple[bytes, bytes | None]:
        resp = await client.request(url + "/c")
        assert resp.body is None and resp.length is None
        data = await collect(resp)
        return data, (await client.request(url + "/next")).body

    (data, after), srv = serve([[raw[:50], raw[50:70], raw[70:]], [OK]], body)
    assert data == b"hello world" and after == b"hello" and srv.connections == 1


def test_bad_chunk_size_is_a_protocol_error() -> None:
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"

    async def body(client: HTTPClient, url: str) -> BaseException | None:
        return await error_of(collect(await client.request(url + "/c")))

    exc, _ = serve([[raw]], body)
    assert isinstance(exc, ProtocolError)


def test_read_until_close_body() -> None:
    raw = b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 100_000

    async def body(client: HTTPClient, url: str) -> bytes:
        resp = await client.request(url + "/eof")
        return await collect(resp)

    data, _ = serve([[raw[:1000], raw[1000:], None]], body)
    assert data == b"x" * 100_000


def test_streamed_body_and_reuse() -> None:
    big = bytes(range(256)) * 2048  # 512 KiB: above the in-memory limit
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(big) + big

    async def body(client: HTTPClient, url: str) -> tuple[bytes, bytes | None]:
        resp = await client.request(url + "/big")
        assert resp.body is None and resp.length == len(big)
        data = await collect(resp)
        return data, (await client.request(url + "/small")).body

    (data, small), srv = serve([[raw[:3000], raw[3000:]], [OK]], body, chunk_size=64 * 1024)
    assert data == big and small == b"hello" and srv.connections == 1


def test_short_bodies_are_dropped_connections() -> None:
    short_small = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel"
    short_big = b"HTTP/1.1 200 OK\r\nContent-Length: 400000\r\n\r\n" + b"y" * 1000

    async def body(client: HTTPClient, url: str) -> list[ConnectionDropped]:
        errors: list[ConnectionDropped] = []
        try:
            await client.request(url + "/s")
        except ConnectionDropped as exc:
            errors.append(exc)
        resp = await client.request(url + "/b")
        try:
            await collect(resp)
        except ConnectionDropped as exc:
            errors.append(exc)
        return errors

    errors, _ = serve([[short_small, None], [short_big, None]], body)
    assert [(e.received, e.expected) for e in errors] == [(3, 10), (1000, 400_000)]
    assert "3 of 10 bytes" in str(errors[0])


def test_stale_keep_alive_connection_is_retried_once() -> None:
    async def body(client: HTTPClient, url: str) -> list[bytes | None]:
        first = (await client.request(url + "/1")).body
        await asyncio.sleep(0.05)  # the server has closed the kept-alive connection by now
        return [first, (await client.request(url + "/2")).body]

    bodies, srv = serve([[OK, None], [OK]], body)
    assert bodies == [b"hello", b"hello"] and srv.connections == 2


def test_read_timeout() -> None:
    async def body(client: HTTPClient, url: str) -> BaseException | None:
        return await error_of(client.request(url + "/slow"))

    exc, _ = serve([[b"HTTP/1.1 200 OK\r\n"]], body, read_timeout=0.3)
    assert isinstance(exc, ReadTimeout)


def test_request_bytes() -> None:
    async def body(client: HTTPClient, url: str) -> None:
        await client.request(url + "/p%20a/ü th?q=1#frag", "X-One: 1\r\n")

    _, srv = serve([[OK]], body, user_agent="ua/1")
    head = srv.requests[0].decode("latin-1")
    lines = head.split("\r\n")
    assert lines[0] == "GET /p%20a/%C3%BC%20th?q=1 HTTP/1.1"
    assert lines[1].startswith("Host: 127.0.0.1:")
    assert lines[2:] == ["User-Agent: ua/1", "Accept-Encoding: identity", "X-One: 1", "", ""]
