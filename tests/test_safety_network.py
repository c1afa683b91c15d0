"""Hostile and broken servers against the network layer (issue 12's network items).

Each test runs a small server of its own (``http.server`` or raw sockets), in front of the
bundled hub where a real API is needed, and drives the public entry points: keys that must not
reach storage, endless or trickling answers, redirect and pagination loops, bodies cut short,
interim-response floods, hrefs nothing can fetch.
"""

from __future__ import annotations

import http.server
import json
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import mlhub_widgets as mw
from mlhub_widgets.cli import main
from mlhub_widgets.config.session import get_session
from mlhub_widgets.exceptions import MLHubHTTPError, NetworkError, ResponseTooLarge
from mlhub_widgets.hub import Hub, serve
from mlhub_widgets.net.retry import RetryPolicy
from mlhub_widgets.net.settings import NetworkSettings

KEY = "front-secret-key-0123456789"
DS = "microsoft_chesapeake"


Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


@pytest.fixture
def serve_handler() -> Iterator[
    Callable[[Callable[[http.server.BaseHTTPRequestHandler], None]], str]
]:
    """Start an HTTP server whose GET/POST/HEAD run ``fn(handler)``; returns its base URL."""
    servers: list[_Server] = []

    def start(fn: Handler) -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fn(self)

            do_POST = do_HEAD = do_GET

        server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def reply(h: http.server.BaseHTTPRequestHandler, status: int, body: bytes, **headers: str) -> None:
    h.send_response(status)
    for name, value in {"Content-Length": str(len(body)), **headers}.items():
        h.send_header(name.replace("_", "-"), value)
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


# ------------------------------------------------------- 2: the API key must not reach storage
@pytest.fixture
def key_hub() -> Iterator[Hub]:
    with serve() as hub:
        yield hub


@pytest.mark.parametrize("echo", ["request_uri", "token"])
def test_the_key_never_follows_a_redirect_to_another_origin(
    echo: str,
    key_hub: Hub,
    serve_handler: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An API behind ``nginx return 302 https://other$request_uri`` (the query string, and so
    ``?key=``, travels with it), or one echoing the key back as ``?token=``."""
    target = key_hub.url.rstrip("/")
    api_path = urlsplit(key_hub.url).path.rstrip("/")

    def front(h: http.server.BaseHTTPRequestHandler) -> None:
        path, _, query = h.path.partition("?")
        rest = path[len(api_path) :] if path.startswith(api_path) else path
        if echo == "token":
            query = f"token={KEY}"
        reply(h, 302, b"", Location=f"{target}{rest}" + (f"?{query}" if query else ""))

    caplog.set_level(logging.DEBUG)
    root = serve_handler(front) + api_path + "/"
    session = get_session(root_url=root, api_key=KEY)
    summary = mw.download_dataset(DS, tmp_path, session=session, progress=False)
    assert summary.complete
    assert mw.Dataset.fetch(DS, session=session).id == DS
    assert key_hub.keys_seen("api") == 0 and key_hub.keys_seen("storage") == 0
    assert KEY not in caplog.text
    out = tmp_path / "archive"
    code = main(
        [
            *("archive", "ref_african_crops_kenya_02_labels", "-o", str(out), "-q"),
            *("--root-url", root, "--api-key", KEY),
        ]
    )
    assert code == 0
    assert key_hub.keys_seen("api") == 0 and key_hub.keys_seen("storage") == 0


def test_a_key_echoed_in_a_plain_text_error_is_masked(serve_handler: Any) -> None:
    def api(h: http.server.BaseHTTPRequestHandler) -> None:
        reply(h, 400, f"invalid key {KEY} for this route".encode(), Content_Type="text/plain")

    session = get_session(root_url=serve_handler(api) + "/mlhub/v1/", api_key=KEY)
    with pytest.raises(MLHubHTTPError) as info:
        mw.datasets(session=session)
    assert KEY not in str(info.value) and "invalid key ***" in str(info.value)


# ------------------------------------------------ 4: a Location naming "." or ".." is not a file
def test_an_archive_redirect_ending_in_dot_stays_inside_the_folder(
    serve_handler: Any, tmp_path: Path
) -> None:
    body = b"archive bytes" * 100

    def api(h: http.server.BaseHTTPRequestHandler) -> None:
        if h.path.startswith("/mlhub/v1/archive/c1/info"):
            reply(h, 200, json.dumps({"size": len(body)}).encode(), Content_Type="application/json")
        elif h.path.startswith("/mlhub/v1/archive/c1"):
            reply(h, 302, b"", Location="/files/dir/.")
        elif h.path.startswith("/files/dir/"):
            reply(h, 200, body, ETag='"a"')
        else:
            reply(h, 404, b"{}", Content_Type="application/json")

    out = tmp_path / "out"
    root = serve_handler(api) + "/mlhub/v1/"
    assert main(["archive", "c1", "-o", str(out), "-q", "--root-url", root]) == 0
    assert (out / "c1.tar.gz").read_bytes() == body
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in out.iterdir()) == ["c1.tar.gz"]


# ------------------------------------ 6, 8: endless and trickling asset bodies; unfetchable hrefs
def _catalog(root: Path, hrefs: dict[str, str], size: int | None = None) -> Path:
    """A static catalogue on disk with one item whose assets have ``hrefs``."""
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "it",
        "collection": "col",
        "geometry": {"type": "Point", "coordinates": [0, 0]},
        "bbox": [0, 0, 0, 0],
        "properties": {"datetime": "2021-01-01T00:00:00Z"},
        "links": [],
        "assets": {
            key: {"href": href, **({"file:size": size} if size is not None else {})}
            for key, href in hrefs.items()
        },
    }
    col = {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": "col",
        "description": "c",
        "license": "CC0-1.0",
        "extent": {
            "spatial": {"bbox": [[0, 0, 0, 0]]},
            "temporal": {"interval": [["2021-01-01T00:00:00Z", None]]},
        },
        "links": [{"rel": "item", "href": "./it/it.json"}],
    }
    cat = {
        "type": "Catalog",
        "stac_version": "1.0.0",
        "id": "hostile",
        "description": "h",
        "links": [{"rel": "child", "href": "./col/collection.json"}],
    }
    (root / "col" / "it").mkdir(parents=True)
    (root / "catalog.json").write_text(json.dumps(cat))
    (root / "col" / "collection.json").write_text(json.dumps(col))
    (root / "col" / "it" / "it.json").write_text(json.dumps(item))
    return root / "catalog.json"


def test_an_endless_body_stops_at_the_known_size(serve_handler: Any, tmp_path: Path) -> None:
    sent: list[int] = []

    def endless(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        total = 0
        chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
        try:
            while total < 1 << 30:
                h.wfile.write(chunk)
                total += 65536
        except OSError:
            pass
        sent.append(total)

    base = serve_handler(endless)
    cat = _catalog(tmp_path / "cat", {"data": f"{base}/asset.bin"}, size=1000)
    started = time.monotonic()
    job = mw.download_dataset(
        "hostile", tmp_path / "out", source=mw.open_source(cat), background=True, progress=False
    )
    with pytest.raises(mw.DownloadError):
        job.wait(timeout=120)
    assert time.monotonic() - started < 60
    report = (tmp_path / "out" / "hostile" / "err_report.csv").read_text()
    assert "more than 1,000 bytes" in report
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert all(p.stat().st_size <= 1000 or p.suffix in (".db", ".csv", ".json") for p in files)
    assert len(sent) >= 1 and max(sent) < 64 << 20  # the client hung up long before 1 GiB


def test_a_trickling_asset_is_cut_by_the_low_speed_limit(
    serve_handler: Any, tmp_path: Path
) -> None:
    def trickle(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "100000")
        h.end_headers()
        try:
            for _ in range(100000):
                h.wfile.write(b"x")
                h.wfile.flush()
                time.sleep(0.25)  # the hostile server under test: one byte every 0.25 s
        except OSError:
            return

    base = serve_handler(trickle)
    cat = _catalog(tmp_path / "cat", {"data": f"{base}/slow.bin"})
    network = NetworkSettings(
        low_speed_limit=1024, low_speed_time=1.0, retry=RetryPolicy(max_attempts=2, backoff=0.01)
    )
    src = mw.open_source(cat, network=network)
    job = mw.download_dataset(
        "hostile", tmp_path / "out", source=src, background=True, progress=False
    )
    with pytest.raises(mw.DownloadError):
        job.wait(timeout=60)
    report = (tmp_path / "out" / "hostile" / "err_report.csv").read_text()
    assert "stalled" in report


def test_hrefs_nothing_can_fetch_are_failed_assets_not_silent_skips(
    serve_handler: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def ok(h: http.server.BaseHTTPRequestHandler) -> None:
        reply(h, 200, b"fine")

    base = serve_handler(ok)
    cat = _catalog(
        tmp_path / "cat",
        {"good": f"{base}/good.bin", "ftp": "ftp://example.org/x.tif", "rel": "x.tif"},
    )
    out = str(tmp_path / "out")
    assert main(["download", "hostile", "-o", out, "-q", "--source", str(cat)]) == 1
    err = capsys.readouterr().err
    assert "2 of 3 assets" in err and "err_report.csv" in err
    report = (tmp_path / "out" / "hostile" / "err_report.csv").read_text()
    assert "cannot fetch ftp:// hrefs" in report and "no base URL" in report


# ------------------------------------------------------------- 7, 8: endless and trickling JSON
def test_an_endless_json_answer_is_cut_at_the_cap(
    serve_handler: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    def endless(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
        try:
            h.wfile.write(b"1\r\n[\r\n")
            while True:
                h.wfile.write(chunk)
        except OSError:
            pass

    root = serve_handler(endless) + "/mlhub/v1/"
    session = get_session(root_url=root, network=NetworkSettings(max_document_bytes=4 << 20))
    with pytest.raises(ResponseTooLarge, match="larger than 4,194,304 bytes"):
        mw.datasets(session=session)
    assert main(["datasets", "--root-url", root]) != 0  # the default cap (128 MiB), one line
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "larger than" in err


def test_a_trickling_json_answer_hits_the_deadline(serve_handler: Any) -> None:
    def trickle(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "1000")
        h.end_headers()
        try:
            for _ in range(1000):
                h.wfile.write(b" ")
                h.wfile.flush()
                time.sleep(0.2)  # the hostile server under test: one byte every 0.2 s
        except OSError:
            return

    root = serve_handler(trickle) + "/mlhub/v1/"
    network = NetworkSettings(deadline=1.5, retry=RetryPolicy(max_attempts=1))
    started = time.monotonic()
    with pytest.raises(NetworkError, match=r"within 2s"):
        mw.datasets(session=get_session(root_url=root, network=network))
    assert time.monotonic() - started < 10


# --------------------------------------------------------- 9, 12: loops, cut bodies, 1xx floods
def test_a_stac_api_paging_in_a_circle_ends(serve_handler: Any) -> None:
    calls: list[str] = []

    def api(h: http.server.BaseHTTPRequestHandler) -> None:
        calls.append(h.path)
        base = f"http://{h.headers['Host']}"
        path = h.path.split("?")[0]
        if path in ("/", ""):
            doc: dict[str, Any] = {
                "type": "Catalog",
                "id": "api",
                "stac_version": "1.0.0",
                "description": "x",
                "conformsTo": [
                    "https://api.stacspec.org/v1.0.0/core",
                    "https://api.stacspec.org/v1.0.0/item-search",
                    "https://api.stacspec.org/v1.0.0/collections",
                ],
                "links": [
                    {
                        "rel": "search",
                        "href": f"{base}/search",
                        "type": "application/geo+json",
                        "method": "GET",
                    },
                    {"rel": "data", "href": f"{base}/collections"},
                    {"rel": "self", "href": f"{base}/"},
                ],
            }
        elif path == "/collections":
            doc = {
                "collections": [
                    {
                        "type": "Collection",
                        "id": "c",
                        "stac_version": "1.0.0",
                        "description": "c",
                        "license": "CC0-1.0",
                        "extent": {
                            "spatial": {"bbox": [[0, 0, 1, 1]]},
                            "temporal": {"interval": [[None, None]]},
                        },
                        "links": [],
                    }
                ],
                "links": [],
            }
        else:  # /search: one item, and a next link to the very same page
            doc = {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "stac_version": "1.0.0",
                        "id": "i",
                        "collection": "c",
                        "geometry": {"type": "Point", "coordinates": [0, 0]},
                        "bbox": [0, 0, 0, 0],
                        "properties": {"datetime": "2020-01-01T00:00:00Z"},
                        "links": [],
                        "assets": {},
                    }
                ],
                "links": [{"rel": "next", "href": f"{base}/search?page=same", "method": "GET"}],
            }
        reply(h, 200, json.dumps(doc).encode(), Content_Type="application/geo+json")

    src = mw.open_source(serve_handler(api), kind="stac-api", method="GET")
    with pytest.raises(mw.MLHubException, match="pagination loop"):
        list(src.iter_items("c"))
    assert sum(1 for c in calls if c.startswith("/search")) <= 3


def test_redirect_loops_and_cut_answers_are_one_line_errors(
    serve_handler: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    def api(h: http.server.BaseHTTPRequestHandler) -> None:
        if h.path.startswith("/loop/mlhub/v1/datasets"):
            reply(h, 302, b"", Location=h.path)
        else:  # promises 5,000 bytes, sends 10, hangs up
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", "5000")
            h.end_headers()
            h.wfile.write(b'[{"id": "x')
            h.wfile.flush()
            h.close_connection = True

    base = serve_handler(api)
    assert main(["datasets", "--root-url", base + "/loop/mlhub/v1/"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "redirect loop" in err
    quick = NetworkSettings(retry=RetryPolicy(max_attempts=2, backoff=0.01))
    with pytest.raises(NetworkError, match="connection dropped after 10 of 5,000 bytes"):
        mw.datasets(session=get_session(root_url=base + "/cut/mlhub/v1/", network=quick))


def test_a_flood_of_interim_responses_is_an_error_not_a_crash() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def flood() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            try:
                for _ in range(100_000):
                    conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            except OSError:
                pass

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    network = NetworkSettings(retry=RetryPolicy(max_attempts=1), deadline=10)
    with pytest.raises(mw.MLHubException):
        mw.datasets(session=get_session(root_url=f"http://127.0.0.1:{port}/", network=network))
    listener.close()
