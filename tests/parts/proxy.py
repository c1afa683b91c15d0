"""A forward proxy on loopback that resolves names nobody else can.

Parts address origins as ``http://hub.test.invalid:PORT/...``: ``.invalid`` never resolves
(RFC 6761), but the proxy maps every name in :data:`PROXY_NAMES` to 127.0.0.1 and keeps the
port of the URL. A client that really uses the proxy reaches the origin; one that ignores it
fails with a name-resolution error.

Two proxies, one fixture (``forward_proxy`` is parametrised, session-scoped):

* ``mini``: :class:`MiniProxy`, in-process asyncio. CONNECT and absolute-form requests (any
  method), one request per connection (``Connection: close`` both ways); names outside the map
  (other than loopback) get 502, so it never connects off the machine.
* ``tinyproxy``: Debian's ``tinyproxy-bin``, run in a private mount namespace (``unshare``)
  where a bind-mounted ``/etc/hosts`` holds the names. It closes each client connection after
  one response without sending ``Connection: close``: a client that reuses a pooled connection
  to it may get ``RemoteDisconnected`` (a real proxy's behaviour that clients must survive).

pproxy is not offered: it sends a name to one fixed ``ip:port`` and ignores the port of the
request, and it reuses one upstream for every request of a keep-alive client connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from .process import (
    LOOPBACK,
    LoopThread,
    fail,
    find_exe,
    pipe,
    splice,
    start_on_free_port,
    tcp_open,
)

#: The API origin of a proxied hub.
HUB_NAME = "hub.test.invalid"
#: The storage origin of a proxied hub (a second name: another origin for redirects).
STORAGE_NAME = "storage.test.invalid"
#: A spare name for a test's own origin (a signing gate, a second store ...).
OTHER_NAME = "other.test.invalid"
PROXY_NAMES = (HUB_NAME, STORAGE_NAME, OTHER_NAME)

_DROP = re.compile(r"(?i)^(proxy-[a-z-]*|connection|keep-alive):")


class MiniProxy:
    """Minimal forward proxy with a resolve map ``{"name": "ip"}`` (the request's port is kept)."""

    def __init__(self, resolve: dict[str, str]) -> None:
        self.resolve = dict(resolve)
        self.seen: list[str] = []  # "METHOD target" of every request it forwarded

    def route(self, host: str) -> str:
        to = self.resolve.get(host)
        if to is not None:
            return to
        if host in ("127.0.0.1", "localhost", "::1"):
            return host
        raise LookupError(f"{host} is not in the resolve map")  # never leave loopback

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            line, *headers = head.decode("latin-1").split("\r\n")
            method, target, version = line.split(" ")
            if method == "CONNECT":
                host, _, port_text = target.rpartition(":")
                host, port = host.strip("[]"), int(port_text)
            else:
                url = urlsplit(target)
                if url.scheme != "http" or not url.hostname:
                    raise ValueError(f"not an absolute http URL: {target}")
                host, port = url.hostname, url.port or 80
            upstream = asyncio.open_connection(self.route(host), port)
            ur, uw = await asyncio.wait_for(upstream, 5)
            self.seen.append(f"{method} {target}")
        except Exception as exc:  # answer 502 with the reason, then close
            msg = f"{type(exc).__name__}: {exc}\n".encode()
            writer.write(
                b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Type: text/plain\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(msg), msg)
            )
            with contextlib.suppress(Exception):
                await writer.drain()
            writer.close()
            return
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await splice(reader, writer, ur, uw)
            return
        keep = [h for h in headers if h and not _DROP.match(h)] + ["Connection: close"]
        path = urlunsplit(("", "", url.path or "/", url.query, ""))
        uw.write(f"{method} {path} {version}\r\n{_lines(keep)}\r\n".encode("latin-1"))
        body = asyncio.ensure_future(pipe(reader, uw))  # a request body, while we wait
        try:  # rewrite the response head so the client does not reuse this connection
            rhead = await asyncio.wait_for(ur.readuntil(b"\r\n\r\n"), 60)
            status, *rh = rhead.decode("latin-1").split("\r\n")
            rh = [h for h in rh if h and not _DROP.match(h)] + ["Connection: close"]
            writer.write(f"{status}\r\n{_lines(rh)}\r\n".encode("latin-1"))
            await asyncio.wait_for(pipe(ur, writer), 120)  # the origin closes after it
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            body.cancel()
            for w in (writer, uw):
                with contextlib.suppress(Exception):
                    w.close()


def _lines(headers: list[str]) -> str:
    return "".join(h + "\r\n" for h in headers)


@dataclass
class ForwardProxy:
    """A running forward proxy.

    Attributes:
        kind: ``"mini"`` or ``"tinyproxy"``.
        url: ``http://127.0.0.1:PORT``, for ``proxies=``, ``curl -x``, ``HTTPS_PROXY`` or
            obstore's ``proxy_url``.
        names: the host names only this proxy resolves (all to 127.0.0.1, ports kept).
        startup_s: how long it took to be ready.
    """

    kind: str
    url: str
    names: tuple[str, ...]
    startup_s: float
    _seen: Callable[[], str]

    def seen(self) -> str:
        """Text naming the requests the proxy handled (its log), for assertions."""
        return self._seen()

    def setenv(
        self, monkeypatch: pytest.MonkeyPatch, no_proxy: str = "127.0.0.1,localhost"
    ) -> None:
        """Point ``HTTP(S)_PROXY``/``ALL_PROXY`` (both cases) at this proxy for one test.

        ``NO_PROXY`` keeps loopback traffic (emulators, the hub by IP) direct. Clients read
        these when they are built: ``urllib.request.urlopen`` keeps the opener of its first
        call, so use ``urllib.request.build_opener()`` after this.
        """
        for name in ("http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.setenv(name, self.url)
            monkeypatch.setenv(name.upper(), self.url)
        monkeypatch.setenv("no_proxy", no_proxy)
        monkeypatch.setenv("NO_PROXY", no_proxy)


def _start_mini(tmp: Path) -> tuple[ForwardProxy, Callable[[], None]]:
    loop = LoopThread("mini-proxy")
    proxy = MiniProxy(dict.fromkeys(PROXY_NAMES, LOOPBACK))
    t0 = time.monotonic()
    server = loop.run(asyncio.start_server(proxy.handle, LOOPBACK, 0))
    port = server.sockets[0].getsockname()[1]
    info = ForwardProxy(
        "mini",
        f"http://{LOOPBACK}:{port}",
        PROXY_NAMES,
        time.monotonic() - t0,
        lambda: "\n".join(proxy.seen),
    )

    def stop() -> None:
        loop.loop.call_soon_threadsafe(server.close)
        loop.close()

    return info, stop


def _start_tinyproxy(tmp: Path) -> tuple[ForwardProxy, Callable[[], None]]:
    exe = find_exe("tinyproxy")
    if not exe:
        fail("tinyproxy not found: apt-get install -y tinyproxy-bin (make test installs it)")
    unshare = shutil.which("unshare")
    if not unshare:
        fail("unshare (util-linux) not found; tinyproxy's name map needs a mount namespace")
    hosts = tmp / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n{LOOPBACK} {' '.join(PROXY_NAMES)}\n")
    ns = ["-m"] if os.geteuid() == 0 else ["-r", "-m"]  # non-root: a user namespace too

    def command(port: int) -> list[str]:
        conf = tmp / f"tinyproxy-{port}.conf"
        # No ConnectPort lines: CONNECT to any port is allowed. -d: foreground, log to stderr.
        conf.write_text(
            f"Port {port}\nListen {LOOPBACK}\nAllow {LOOPBACK}\nTimeout 60\nMaxClients 100\n"
            "LogLevel Connect\nDisableViaHeader Yes\n"
        )
        script = 'mount --bind "$1" /etc/hosts && exec "$2" -d -c "$3"'
        # sh execs into tinyproxy, so the PID we hold is tinyproxy's own.
        return [unshare, *ns, "sh", "-c", script, "sh", str(hosts), exe, str(conf)]

    proc, port = start_on_free_port("tinyproxy", command, tcp_open, tmp)
    info = ForwardProxy(
        "tinyproxy", f"http://{LOOPBACK}:{port}", PROXY_NAMES, proc.startup_s, proc.log_text
    )
    return info, proc.stop


@pytest.fixture(scope="session", params=["mini", "tinyproxy"])
def forward_proxy(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ForwardProxy]:
    """A forward proxy on 127.0.0.1 that maps :data:`PROXY_NAMES` to 127.0.0.1.

    Parametrised: each test runs once per proxy. Pick one with
    ``@pytest.mark.parametrize("forward_proxy", ["tinyproxy"], indirect=True)``.
    """
    start = {"mini": _start_mini, "tinyproxy": _start_tinyproxy}[request.param]
    info, stop = start(tmp_path_factory.mktemp(f"proxy-{request.param}"))
    try:
        yield info
    finally:
        stop()
