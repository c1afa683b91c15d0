#!/usr/bin/env python3
"""Check, by small experiments, what each HTTP library does on real networks (issue 13).

    .venv/bin/python benchmarks/http_client_features.py            # the README feature table
    .venv/bin/python benchmarks/http_client_features.py --wheels   # + wheel availability (pip)

Parts, all on 127.0.0.1 and started here: an origin (hypercorn, HTTP/1.1 and, over TLS,
HTTP/2, with a certificate from a private CA made by ``trustme``), and a forward proxy that
records what it is asked for and is the only way to reach the names ``hub.test.invalid`` and
``tls.hub.test.invalid`` (``.invalid`` never resolves). Every check runs in a fresh
interpreter with its own environment (no proxy or CA variable inherited), so a library that
reads the environment at import time gets a fair chance. Libraries: aiohttp
(``trust_env=True``), httpx, obstore (``HTTPStore``) and requests (what the package uses for
its JSON calls today) as a reference.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

LIBS = ("aiohttp", "httpx", "obstore", "requests")
CA_VARS = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
NAMES = {"hub.test.invalid", "tls.hub.test.invalid"}  # resolved by the proxy only

# ---------------------------------------------------------------------------------------------
# the origin: a small ASGI app under hypercorn


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``/echo`` (request as JSON), ``/chunked`` (the same without ``Content-Length``),
    ``/redirect`` (302 to /echo), ``/slow`` (50 bytes, one every 0.2 s), ``/big`` (16 MiB)."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path = scope["path"]
    if path == "/redirect":
        await send(
            {"type": "http.response.start", "status": 302, "headers": [(b"location", b"/echo")]}
        )
        await send({"type": "http.response.body", "body": b""})
    elif path == "/slow":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"50")]}
        )
        for _ in range(50):
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
            await asyncio.sleep(0.2)
        await send({"type": "http.response.body", "body": b""})
    elif path == "/big":
        size = 16 << 20
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(size).encode())],
            }
        )
        block = b"\0" * (1 << 16)
        for _ in range(size // len(block)):
            await send({"type": "http.response.body", "body": block, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    else:
        body = json.dumps(
            {
                "http_version": scope["http_version"],
                "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
            }
        ).encode()
        headers = [(b"content-type", b"application/json")]
        if path != "/chunked":  # /chunked: no Content-Length, as API servers often answer
            headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class Origin:
    """hypercorn on two loopback sockets: plain HTTP/1.1 and TLS (HTTP/2 or 1.1 by ALPN)."""

    def __init__(self, cert_pem: str, key_pem: str) -> None:
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        self.plain = _listener()
        self.tls = _listener()
        config = Config()
        config.bind = [f"fd://{self.plain.fileno()}"]
        config.insecure_bind = []
        config.certfile, config.keyfile = cert_pem, key_pem
        config.bind = [f"fd://{self.tls.fileno()}"]
        config.insecure_bind = [f"fd://{self.plain.fileno()}"]
        config.loglevel = "ERROR"
        config.accesslog = None
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        self.thread = threading.Thread(
            target=self.loop.run_until_complete,
            args=(serve(app, config, shutdown_trigger=self._wait_stop),),  # type: ignore[arg-type]
            daemon=True,
        )
        self.thread.start()
        for sock in (self.plain, self.tls):
            _wait_port(sock.getsockname()[1])

    async def _wait_stop(self) -> None:
        self.stop = asyncio.Event()
        await self.stop.wait()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)


def _listener() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _wait_port(port: int, deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.02)


# ---------------------------------------------------------------------------------------------
# the forward proxy


class Proxy:
    """A forward proxy (absolute-form requests and ``CONNECT``) that records each request's
    target, maps :data:`NAMES` to 127.0.0.1 and refuses every other non-loopback name (502):
    it never connects off the machine. One request per client connection."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def start() -> None:
            self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()

        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(start(), self.loop)
        ready.wait(10)
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    @staticmethod
    def _address(hostport: str, default: int) -> tuple[str, int] | None:
        host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
        host = host.strip("[]")
        if host in NAMES or host in ("127.0.0.1", "localhost"):
            return "127.0.0.1", int(port or default)
        return None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _version = head.split(b"\r\n", 1)[0].decode().split(" ")
            self.seen.append(f"{method} {target}")
            if method == "CONNECT":
                address = self._address(target, 443)
            else:
                rest = target.split("://", 1)[1]
                hostport, _, path = rest.partition("/")
                address = self._address(hostport, 80)
            if address is None:
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            up_reader, up_writer = await asyncio.open_connection(*address)
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                lines = head.decode().split("\r\n")[1:]
                kept = [
                    h for h in lines if h and not h.lower().startswith(("connection:", "proxy-"))
                ]
                up_writer.write(
                    (f"{method} /{path} HTTP/1.1\r\n" + "\r\n".join(kept)).encode()
                    + b"\r\nConnection: close\r\n\r\n"
                )
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            pass
        finally:
            writer.close()


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(1 << 16):
            dst.write(data)
            await dst.drain()
    except OSError:
        pass
    finally:
        if dst.can_write_eof():
            with contextlib.suppress(OSError):
                dst.write_eof()


# ---------------------------------------------------------------------------------------------
# one request by one library (in the check's own interpreter)


def fetch(lib: str, url: str, o: dict[str, Any]) -> dict[str, Any]:
    """GET ``url`` with ``lib``; options ``o``: ca (path), headers, redirects (follow),
    deadline (s), http2, sync, cap (stop reading after this many bytes)."""
    started = time.monotonic()
    try:
        out = FETCHERS[lib](url, o)
    except Exception as exc:  # the check reports it
        text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        return {"error": text[:300], "elapsed": time.monotonic() - started}
    out["elapsed"] = time.monotonic() - started
    return out


def _echo(body: bytes) -> dict[str, Any]:
    try:
        return dict(json.loads(body))
    except ValueError:
        return {}


def _ctx(ca: str | None) -> ssl.SSLContext | None:
    return ssl.create_default_context(cafile=ca) if ca else None


def fetch_aiohttp(url: str, o: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    if o.get("sync"):
        raise NotImplementedError("aiohttp has no synchronous API")

    async def go() -> dict[str, Any]:
        timeout = aiohttp.ClientTimeout(total=o.get("deadline", 30))
        async with (
            aiohttp.ClientSession(trust_env=True, timeout=timeout) as session,
            session.get(
                url,
                headers=o.get("headers"),
                allow_redirects=o.get("redirects", True),
                ssl=_ctx(o.get("ca")) or True,
            ) as resp,
        ):
            if o.get("cap"):
                n = 0
                async for chunk in resp.content.iter_any():
                    n += len(chunk)
                    if n >= o["cap"]:
                        resp.close()
                        break
                return {"status": resp.status, "read": n}
            body = await resp.read()
            return {
                "status": resp.status,
                "location": resp.headers.get("location"),
                "echo": _echo(body),
                "read": len(body),
            }

    return asyncio.run(go())


def fetch_httpx(url: str, o: dict[str, Any]) -> dict[str, Any]:
    import httpx

    kw: dict[str, Any] = {
        "verify": _ctx(o.get("ca")) or True,
        "http2": o.get("http2", False),
        "follow_redirects": o.get("redirects", True),
        "timeout": o.get("deadline", 30),
    }

    def result(resp: Any, body: bytes) -> dict[str, Any]:
        return {
            "status": resp.status_code,
            "location": resp.headers.get("location"),
            "echo": _echo(body),
            "read": len(body),
            "how": "`http2=True`, needs `h2`" if o.get("http2") else "",
        }

    if o.get("sync"):
        with httpx.Client(**kw) as client:
            resp = client.get(url, headers=o.get("headers"))
            return result(resp, resp.content)

    async def go() -> dict[str, Any]:
        async with httpx.AsyncClient(**kw) as client:
            if o.get("cap"):
                async with client.stream("GET", url) as resp:
                    n = 0
                    async for chunk in resp.aiter_raw():
                        n += len(chunk)
                        if n >= o["cap"]:
                            break
                    return {"status": resp.status_code, "read": n}
            resp = await client.get(url, headers=o.get("headers"))
            return result(resp, resp.content)

    return asyncio.run(go())


def fetch_obstore(url: str, o: dict[str, Any]) -> dict[str, Any]:
    import obstore
    from obstore.store import HTTPStore

    scheme, rest = url.split("://", 1)
    hostport, _, path = rest.partition("/")
    options: dict[str, Any] = {"allow_http": True}
    if o.get("ca"):
        options["root_certificate"] = Path(o["ca"]).read_text()
    if o.get("deadline"):
        options["timeout"] = f"{o['deadline']}s"
    how = []
    if o.get("headers"):  # no per-request headers: the store's default headers
        options["default_headers"] = o["headers"]
        how.append("store-wide `default_headers` only")
    if o.get("http2"):
        options["http1_only"] = False
        how.append("`http1_only=False`")
    if o.get("redirects") is False:
        how.append("no option")
    store = HTTPStore.from_url(
        f"{scheme}://{hostport}",
        client_options=options,  # type: ignore[arg-type]
        retry_config={"max_retries": 0},
    )
    if o.get("sync"):
        body = bytes(obstore.get(store, path).bytes())
        return {"status": 200, "echo": _echo(body), "read": len(body), "how": ", ".join(how)}

    async def go() -> dict[str, Any]:
        result = await obstore.get_async(store, path)
        if o.get("cap"):
            n = 0
            async for chunk in result.stream(min_chunk_size=1 << 16):
                n += len(chunk)
                if n >= o["cap"]:
                    break
            return {"status": 200, "read": n}
        body = bytes(await result.bytes_async())
        return {"status": 200, "echo": _echo(body), "read": len(body), "how": ", ".join(how)}

    return asyncio.run(go())


def fetch_requests(url: str, o: dict[str, Any]) -> dict[str, Any]:
    import requests

    with requests.Session() as session:
        resp = session.get(
            url,
            headers=o.get("headers"),
            allow_redirects=o.get("redirects", True),
            verify=o.get("ca") or True,
            timeout=o.get("deadline", 30),
            stream=bool(o.get("cap")),
        )
        if o.get("cap"):
            n = 0
            for chunk in resp.iter_content(1 << 16):
                n += len(chunk)
                if n >= o["cap"]:
                    break
            resp.close()
            return {"status": resp.status_code, "read": n}
        return {
            "status": resp.status_code,
            "location": resp.headers.get("location"),
            "echo": _echo(resp.content),
            "read": len(resp.content),
        }


FETCHERS = {
    "aiohttp": fetch_aiohttp,
    "httpx": fetch_httpx,
    "obstore": fetch_obstore,
    "requests": fetch_requests,
}


# ---------------------------------------------------------------------------------------------
# the checks


def _status(r: dict[str, Any]) -> str:
    return r.get("error") or f"HTTP {r.get('status')}"


def via_proxy(r: dict[str, Any], seen: list[str]) -> tuple[bool, str]:
    used = any("test.invalid" in s for s in seen)
    return r.get("status") == 200 and used, "via the proxy" if used else _status(r)


def bypassed(r: dict[str, Any], seen: list[str]) -> tuple[bool, str]:
    # the name resolves only at the proxy: going direct must fail to resolve it
    return not seen, "went direct" if not seen else f"sent to the proxy ({seen[0]})"


def bypassed_ok(r: dict[str, Any], seen: list[str]) -> tuple[bool, str]:
    return r.get("status") == 200 and not seen, (
        "went direct" if not seen else f"sent to the proxy ({seen[0]})"
    )


def ok200(r: dict[str, Any], seen: list[str]) -> tuple[bool, str]:
    return r.get("status") == 200, _status(r)


def fails_closed(r: dict[str, Any], seen: list[str]) -> tuple[bool, str]:
    return "error" in r, r.get("error", "no error!")[:120]


def header_seen(r: dict[str, Any], seen: list[str]) -> tuple[bool, str]:
    got = r.get("echo", {}).get("headers", {}).get("x-probe") == "1"
    return got, "sent" if got else _status(r)


def got_redirect(r: dict[str, Any], seen: list[str]) -> tuple[bool, str]:
    ok = r.get("status") == 302 and r.get("location") == "/echo"
    return ok, "302 + Location returned" if ok else f"{_status(r)} (followed?)"


def stopped_in_time(r: dict[str, Any], seen: list[str]) -> tuple[bool, str]:
    ok = "error" in r and r["elapsed"] < 3
    return ok, f"{'stopped' if 'error' in r else 'completed'} after {r['elapsed']:.1f} s"


def capped(r: dict[str, Any], seen: list[str]) -> tuple[bool, str]:
    ok = r.get("status") == 200 and r.get("read", 1 << 30) < 16 << 20 and r["elapsed"] < 5
    return ok, f"stopped at {r.get('read', 0) / 2**20:.1f} MiB after {r['elapsed']:.2f} s"


def is_h2(r: dict[str, Any], seen: list[str]) -> tuple[bool, str]:
    version = r.get("echo", {}).get("http_version")
    return version == "2", f"HTTP/{version}" if version else _status(r)


def checks(
    proxy: str, plain: int, tls: int, ca: str
) -> list[tuple[str, dict[str, str], str, dict[str, Any], Any]]:
    """(name, environment, URL, options, judge) for every check."""
    hub = f"http://hub.test.invalid:{plain}/echo"
    local = f"http://127.0.0.1:{plain}"
    secure = f"https://127.0.0.1:{tls}/echo"
    return [
        ("HTTP_PROXY", {"HTTP_PROXY": proxy}, hub, {}, via_proxy),
        ("http_proxy (lower case)", {"http_proxy": proxy}, hub, {}, via_proxy),
        (
            "HTTPS_PROXY (CONNECT, private CA)",
            {"HTTPS_PROXY": proxy},
            f"https://tls.hub.test.invalid:{tls}/echo",
            {"ca": ca},
            via_proxy,
        ),
        ("ALL_PROXY", {"ALL_PROXY": proxy}, hub, {}, via_proxy),
        (
            "NO_PROXY domain suffix `test.invalid`",
            {"HTTP_PROXY": proxy, "NO_PROXY": "test.invalid"},
            hub,
            {},
            bypassed,
        ),
        (
            "NO_PROXY `.test.invalid`",
            {"HTTP_PROXY": proxy, "NO_PROXY": ".test.invalid"},
            hub,
            {},
            bypassed,
        ),
        (
            "NO_PROXY CIDR `127.0.0.0/8`",
            {"HTTP_PROXY": proxy, "NO_PROXY": "127.0.0.0/8"},
            f"{local}/echo",
            {},
            bypassed_ok,
        ),
        ("SSL_CERT_FILE", {"SSL_CERT_FILE": ca}, secure, {}, ok200),
        ("REQUESTS_CA_BUNDLE", {"REQUESTS_CA_BUNDLE": ca}, secure, {}, ok200),
        ("custom CA (ssl context / option)", {}, secure, {"ca": ca}, ok200),
        ("unknown CA fails closed", {}, secure, {}, fails_closed),
        ("per-request headers", {}, f"{local}/echo", {"headers": {"X-Probe": "1"}}, header_seen),
        (
            "manual redirects (no follow)",
            {},
            f"{local}/redirect",
            {"redirects": False},
            got_redirect,
        ),
        (
            "total deadline (1 s, body trickles 10 s)",
            {},
            f"{local}/slow",
            {"deadline": 1},
            stopped_in_time,
        ),
        ("stop a body at a cap (1 of 16 MiB)", {}, f"{local}/big", {"cap": 1 << 20}, capped),
        ("HTTP/2 (TLS + ALPN)", {}, secure, {"ca": ca, "http2": True}, is_h2),
        ("sync call", {}, f"{local}/echo", {"sync": True}, ok200),
        ("body without Content-Length (chunked)", {}, f"{local}/chunked", {}, ok200),
    ]


def run_check(lib: str, url: str, options: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    clean = {k: v for k, v in os.environ.items() if k.upper() not in (*CA_VARS, *PROXY_VARS)}
    res = subprocess.run(
        [sys.executable, __file__, "--one", lib, url, json.dumps(options)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = [line for line in res.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {
            "error": f"exit {res.returncode}: {res.stderr.strip().splitlines()[-1:]}",
            "elapsed": 0,
        }
    return dict(json.loads(lines[-1]))


def wheels() -> None:
    """Which wheels pip finds for CPython 3.11-3.13 on Linux, Windows and macOS (metadata only,
    through pip's resolver: ``pip install --dry-run --only-binary=:all:``)."""
    import importlib.metadata as md

    platforms = {
        "linux": "manylinux2014_x86_64",
        "windows": "win_amd64",
        "macos": "macosx_11_0_arm64",
    }
    print(
        "\n| library | "
        + " | ".join(f"{p} {v}" for p in platforms for v in ("3.11", "3.12", "3.13"))
        + " |"
    )
    print("|---" * 10 + "|")
    for lib in ("aiohttp", "httpx", "obstore", "requests"):
        version = md.version(lib)
        cells = []
        for plat in platforms.values():
            for py in ("3.11", "3.12", "3.13"):
                with tempfile.TemporaryDirectory() as target:
                    res = subprocess.run(
                        [
                            sys.executable,
                            "-m",
                            "pip",
                            "install",
                            "--dry-run",
                            "-q",
                            "--no-deps",
                            "--only-binary=:all:",
                            "--platform",
                            plat,
                            "--python-version",
                            py,
                            "--target",
                            target,
                            f"{lib}=={version}",
                        ],
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                cells.append("✅" if res.returncode == 0 else "❌")
        print(f"| {lib} {version} | " + " | ".join(cells) + " |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--libs", default=",".join(LIBS))
    parser.add_argument("--wheels", action="store_true", help="also check wheel availability")
    args = parser.parse_args()
    if args.one:
        lib, url, options = args.one
        print(json.dumps(fetch(lib, url, json.loads(options))))
        return 0

    import importlib.metadata as md

    import trustme

    libs = args.libs.split(",")
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # clients that hang up on /big
    with tempfile.TemporaryDirectory() as tmp:
        ca = trustme.CA()
        cert = ca.issue_cert("localhost", "127.0.0.1", "tls.hub.test.invalid")
        ca_pem, cert_pem, key_pem = (f"{tmp}/ca.pem", f"{tmp}/cert.pem", f"{tmp}/key.pem")
        ca.cert_pem.write_to_path(ca_pem)
        cert.cert_chain_pems[0].write_to_path(cert_pem)
        cert.private_key_pem.write_to_path(key_pem)
        origin = Origin(cert_pem, key_pem)
        proxy = Proxy()
        try:
            versions = ", ".join(f"{lib} {md.version(lib)}" for lib in libs)
            print(f"Python {sys.version.split()[0]}; {versions}\n")
            print("| check | " + " | ".join(libs) + " |")
            print("|---" * (len(libs) + 1) + "|")
            plain, tls = origin.plain.getsockname()[1], origin.tls.getsockname()[1]
            for name, env, url, options, judge in checks(proxy.url, plain, tls, ca_pem):
                cells = []
                for lib in libs:
                    proxy.seen.clear()
                    result = run_check(lib, url, options, env)
                    ok, note = judge(result, list(proxy.seen))
                    note = " ".join(note.split())  # one line, short
                    note = note if len(note) <= 90 else note[:87] + "..."
                    if result.get("how"):
                        note += f" ({result['how']})"
                    cells.append(f"{'✅' if ok else '❌'} {note}".replace("|", "/"))
                print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
        finally:
            proxy.close()
            origin.close()
    if args.wheels:
        wheels()
    return 0


if __name__ == "__main__":
    sys.exit(main())
