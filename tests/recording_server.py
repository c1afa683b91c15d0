"""A tiny scripted HTTP server on loopback that records every request it gets.

Used where a test needs a *second origin* (to prove the API key never reaches it) or a
response the bundled hub would never send (an HTML error page, truncated JSON).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class RecordingServer:
    """Answers each path with its scripted replies in order (the last one repeats)."""

    def __init__(self) -> None:
        self.script: dict[str, list[Reply]] = {}
        self.seen: list[Seen] = []
        self.url = ""

    def on(self, path: str, *replies: Reply) -> None:
        self.script[path] = list(replies)

    def hits(self, path: str) -> int:
        return sum(1 for s in self.seen if s.path == path)

    def keys_seen(self) -> int:
        return sum(1 for s in self.seen if "key" in s.query or "Authorization" in s.headers)

    def _reply_for(self, path: str) -> Reply:
        replies = self.script.get(path)
        if not replies:
            return Reply(404, b'{"detail":"Not Found"}')
        return replies.pop(0) if len(replies) > 1 else replies[0]


@contextmanager
def recording_server() -> Iterator[RecordingServer]:
    """Run a :class:`RecordingServer` on 127.0.0.1 for the duration of the block."""
    state = RecordingServer()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            state.seen.append(
                Seen(self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()))
            )
            reply = state._reply_for(parts.path)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if "Content-Length" not in reply.headers:
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)

        do_GET = _handle
        do_HEAD = _handle
        do_POST = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
