"""Signed URLs: a source's ``modifier`` signs every asset just before it is fetched, a refused or
expired signature is renewed once, and signatures never reach a report, an index or a log.

The signing gate is a small server of the test's own, standing in for Azure SAS or S3 pre-signed
URLs: every asset request needs ``?exp=<unix time>&sig=<hmac>``, with ``exp`` in the future.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import logging
import socketserver
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

import mlhub_widgets as mw
from mlhub_widgets.cli import main

SECRET = b"gate-secret"
BODY = b"imagery " * 400
N = 6


def signature(path: str, exp: int) -> str:
    return hmac.new(SECRET, f"{path}|{exp}".encode(), hashlib.sha256).hexdigest()


class Gate(http.server.BaseHTTPRequestHandler):
    """Catalogue documents are public; ``/data/*`` needs a valid, unexpired signature."""

    docs: ClassVar[dict[str, bytes]] = {}
    asked: ClassVar[Counter[str]] = Counter()
    refused: ClassVar[Counter[str]] = Counter()

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path.startswith("/data/"):
            self.asked[parts.path] += 1
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            exp = int(query.get("exp", "0") or 0)
            good = hmac.compare_digest(query.get("sig", ""), signature(parts.path, exp))
            if not good or exp < time.time():
                self.refused[parts.path] += 1
                self._send(403, b"Signature not valid in the specified time frame")
                return
            self._send(200, BODY)
        elif parts.path in self.docs:
            self._send(200, self.docs[parts.path])
        else:
            self._send(404, b"{}")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


@pytest.fixture
def gate() -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), Gate)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    Gate.asked.clear()
    Gate.refused.clear()
    items = [
        {
            "type": "Feature",
            "stac_version": "1.0.0",
            "id": f"scene{i}",
            "collection": "imagery",
            "geometry": {"type": "Point", "coordinates": [i, 0]},
            "bbox": [i, 0, i, 0],
            "properties": {"datetime": "2021-01-01T00:00:00Z"},
            "links": [],
            "assets": {
                "image": {
                    "href": f"{base}/data/scene{i}.tif",
                    "type": "image/tiff",
                    "file:size": len(BODY),
                    "file:checksum": "1220" + hashlib.sha256(BODY).hexdigest(),
                }
            },
        }
        for i in range(N)
    ]
    collection = {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": "imagery",
        "description": "signed imagery",
        "license": "proprietary",
        "extent": {
            "spatial": {"bbox": [[0, 0, N, 0]]},
            "temporal": {"interval": [["2021-01-01T00:00:00Z", None]]},
        },
        "links": [{"rel": "item", "href": f"{base}/items/{i}.json"} for i in range(N)],
    }
    catalog = {
        "type": "Catalog",
        "stac_version": "1.0.0",
        "id": "signed",
        "description": "signed",
        "links": [{"rel": "child", "href": f"{base}/imagery/collection.json"}],
    }
    Gate.docs = {
        "/catalog.json": json.dumps(catalog).encode(),
        "/imagery/collection.json": json.dumps(collection).encode(),
        **{f"/items/{i}.json": json.dumps(item).encode() for i, item in enumerate(items)},
    }
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield base
    finally:
        server.shutdown()


class Signer:
    """A pystac-client style modifier: signs every asset href of an item dict in place.

    ``stale`` hrefs get an already expired signature the first time they are signed (a URL
    signed long before it is used)."""

    def __init__(self, stale: set[str] | frozenset[str] = frozenset(), valid: bool = True) -> None:
        self.stale = set(stale)
        self.valid = valid
        self.calls: Counter[str] = Counter()

    def __call__(self, obj: dict[str, Any]) -> None:
        for asset in (obj.get("assets") or {}).values():
            href = asset["href"].split("?", 1)[0]
            path = urlsplit(href).path
            self.calls[path] += 1
            exp = int(time.time()) + 3600
            if path in self.stale:
                self.stale.discard(path)
                exp = int(time.time()) - 10
            sig = signature(path, exp) if self.valid else "0" * 64
            asset["href"] = f"{href}?{urlencode({'exp': exp, 'sig': sig})}"


def test_assets_are_signed_just_before_they_are_fetched(gate: str, tmp_path: Path) -> None:
    signer = Signer()
    src = mw.open_source(f"{gate}/catalog.json", modifier=signer)
    summary = mw.download_dataset("signed", tmp_path, source=src, progress=False)
    assert summary.complete and summary.assets_downloaded == N
    assert sum(Gate.refused.values()) == 0
    assert all(n == 1 for n in Gate.asked.values()) and len(Gate.asked) == N
    files = sorted((tmp_path / "signed" / "imagery").rglob("*.tif"))
    assert len(files) == N and all(f.read_bytes() == BODY for f in files)
    # the index keeps the hrefs as published: no signature is stored
    with sqlite3.connect(tmp_path / "signed" / "mlhub_assets.db") as con:
        urls = [u for (u,) in con.execute("SELECT url FROM assets")]
    assert urls and not any("sig=" in u for u in urls)


def test_an_expired_signature_is_renewed_once(gate: str, tmp_path: Path) -> None:
    stale = {f"/data/scene{i}.tif" for i in range(3)}
    signer = Signer(stale=stale)
    src = mw.open_source(f"{gate}/catalog.json", modifier=signer)
    summary = mw.download_dataset("signed", tmp_path, source=src, progress=False)
    assert summary.complete
    for path in stale:
        assert Gate.refused[path] == 1 and Gate.asked[path] == 2
        assert signer.calls[path] == 2


def test_a_signature_refused_twice_fails_that_asset_and_is_never_written(
    gate: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    src = mw.open_source(f"{gate}/catalog.json", modifier=Signer(valid=False))
    job = mw.download_dataset("signed", tmp_path, source=src, progress=False, background=True)
    with pytest.raises(mw.DownloadError):
        job.wait()
    assert all(n == 2 for n in Gate.asked.values())  # signed again once, then given up
    report = (tmp_path / "signed" / "err_report.csv").read_text()
    assert "403" in report and "signing the URL again" not in report
    assert "0" * 64 not in report and "0" * 64 not in caplog.text
    db = (tmp_path / "signed" / "mlhub_assets.db").read_bytes()
    assert b"0" * 64 not in db


def test_the_cli_exits_1_when_signatures_are_refused(
    gate: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # without a modifier nothing signs the assets: each is refused, the run is not complete
    code = main(
        ["download", "signed", "-o", str(tmp_path), "-q", "--source", f"{gate}/catalog.json"]
    )
    assert code == 1
    assert "err_report.csv" in capsys.readouterr().err


def test_items_of_a_source_with_a_modifier_have_signed_hrefs(gate: str) -> None:
    signer = Signer()
    src = mw.open_source(f"{gate}/catalog.json", modifier=signer)
    frame = mw.items("imagery", source=src, limit=None)
    assert len(frame) == N
    assert sum(signer.calls.values()) == N  # once per item, as pystac-client's modifier
