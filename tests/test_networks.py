"""Real networks: a forward proxy, a TLS hub with a private CA, per-source headers.

Every test drives public entry points (``mlhub download``, ``download_dataset``, discovery,
``open_source``) against real parts started by the tests (``tests/parts``): the bundled hub
on names only the forward proxy resolves, the hub behind TLS with a ``trustme`` CA, and small
servers of the test's own.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import socketserver
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mlhub_widgets as mw
from mlhub_widgets.cli import main
from mlhub_widgets.config.session import get_session
from mlhub_widgets.exceptions import InsecureTLSWarning, NetworkError, TLSVerificationError
from mlhub_widgets.net.proxy import ProxyError

from .parts.hubs import PublicHub
from .parts.proxy import ForwardProxy
from .parts.tls import TlsCA

DS = "microsoft_chesapeake"  # a generated dataset: 63 small assets


def downloaded(root: Path) -> dict[str, bytes]:
    """Every asset file under ``root/DS`` (not the catalogue, index or report)."""
    base = root / DS
    skip = ("mlhub_assets.db", "err_report.csv")
    return {
        p.relative_to(base).as_posix(): p.read_bytes()
        for p in base.rglob("*")
        if p.is_file() and p.name not in skip and not p.name.endswith((".json", ".db-wal"))
    }


def assert_complete_and_identical(hub: PublicHub, root: Path) -> None:
    import sqlite3

    with sqlite3.connect(root / DS / "mlhub_assets.db") as con:
        rows = con.execute("SELECT url, path FROM assets WHERE selected = 1").fetchall()
    assert rows
    for url, path in rows:
        assert (root / DS / path).read_bytes() == hub.asset_bytes(url), path


# ------------------------------------------------------------------------------------ proxies
def test_download_goes_through_the_proxy_to_names_only_it_resolves(
    forward_proxy: ForwardProxy,
    proxied_hub: PublicHub,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    forward_proxy.setenv(monkeypatch)
    frame = mw.datasets(root_url=proxied_hub.url)
    assert DS in set(frame["id"])
    summary = mw.download_dataset(DS, tmp_path, root_url=proxied_hub.url, progress=False)
    assert summary.complete and summary.assets_failed == 0
    assert_complete_and_identical(proxied_hub, tmp_path)
    seen = forward_proxy.seen()
    assert "hub.test.invalid" in seen and "storage.test.invalid" in seen


def test_the_cli_honours_the_proxy_environment(
    forward_proxy: ForwardProxy,
    proxied_hub: PublicHub,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    forward_proxy.setenv(monkeypatch)
    code = main(["download", DS, "-o", str(tmp_path), "-q", "--root-url", proxied_hub.url])
    assert code == 0
    assert_complete_and_identical(proxied_hub, tmp_path)


@pytest.mark.parametrize("forward_proxy", ["mini"], indirect=True)
def test_without_the_proxy_the_name_does_not_resolve(
    forward_proxy: ForwardProxy, proxied_hub: PublicHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = get_session(root_url=proxied_hub.url, max_attempts=1)
    with pytest.raises(NetworkError, match=r"cannot resolve hub\.test\.invalid"):
        mw.datasets(session=session)
    # NO_PROXY with a domain suffix sends the request around the proxy: the same failure
    forward_proxy.setenv(monkeypatch, no_proxy="localhost,test.invalid")
    with pytest.raises(NetworkError, match=r"cannot resolve hub\.test\.invalid"):
        mw.datasets(session=get_session(root_url=proxied_hub.url, max_attempts=1))


def test_no_proxy_cidr_and_a_dead_proxy(hub: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = "http://127.0.0.1:9"  # discard port: nothing listens
    for name in ("HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, dead)
    monkeypatch.setenv("NO_PROXY", "10.0.0.0/8")
    with pytest.raises(NetworkError, match="proxy"):
        mw.datasets(session=get_session(root_url=hub.url, max_attempts=1))
    monkeypatch.setenv("NO_PROXY", "10.0.0.0/8,127.0.0.0/8")
    assert len(mw.datasets(session=get_session(root_url=hub.url, max_attempts=1))) > 0


@pytest.mark.parametrize("forward_proxy", ["mini"], indirect=True)
def test_a_profile_can_name_its_proxy(
    forward_proxy: ForwardProxy,
    proxied_hub: PublicHub,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    profiles = home / "profiles"
    profiles.write_text(f"[corp]\napi_key = abc\nproxy = {forward_proxy.url}\n")
    profiles.chmod(0o600)
    monkeypatch.setenv("MLHUB_HOME", str(home))
    frame = mw.datasets(profile="corp", root_url=proxied_hub.url)
    assert DS in set(frame["id"])


def test_an_unsupported_proxy_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://127.0.0.1:1080")
    with pytest.raises(ProxyError, match="only http:// and https:// proxies"):
        get_session(root_url="https://example.org/mlhub/v1/")
    with pytest.raises(ProxyError):
        mw.open_source("https://example.org/stac/catalog.json")


# ---------------------------------------------------------------------------------------- TLS
def test_an_untrusted_certificate_is_one_line_and_writes_nothing(
    tls_hub: PublicHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["download", DS, "-o", str(tmp_path), "-q", "--root-url", tls_hub.url])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1, err
    assert "localhost" in err and "certificate verify failed" in err
    assert not (tmp_path / DS).exists() or downloaded(tmp_path) == {}


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_the_ca_bundle_variables_are_honoured(
    variable: str,
    tls_hub: PublicHub,
    tls_ca: TlsCA,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv(variable, str(tls_ca.ca_pem))
    summary = mw.download_dataset(DS, tmp_path, root_url=tls_hub.url, progress=False)
    assert summary.complete
    assert_complete_and_identical(tls_hub, tmp_path)


def test_a_broken_ca_setting_only_stops_https(
    hub: Any,
    tls_hub: PublicHub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As with curl, CA bundle settings matter for HTTPS only: a plain-HTTP download works
    with a broken ``SSL_CERT_FILE`` (it never loads the CA bundles); an HTTPS one stops with
    one line naming the setting, through the API and through the transfer engine alike."""
    from mlhub_widgets.download.transfer import download_file
    from mlhub_widgets.exceptions import ConfigurationError

    missing = tmp_path / "missing.pem"
    monkeypatch.setenv("SSL_CERT_FILE", str(missing))
    summary = mw.download_dataset(DS, tmp_path / "plain", root_url=hub.url, progress=False)
    assert summary.complete and summary.assets_downloaded > 0
    code = main(["download", DS, "-o", str(tmp_path / "tls"), "-q", "--root-url", tls_hub.url])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1, err
    assert f"CA bundle not found: SSL_CERT_FILE='{missing}'" in err
    with pytest.raises(ConfigurationError, match="CA bundle not found"):
        download_file(f"{tls_hub.url}datasets", tmp_path / "one.json")  # not a failed file
    assert not (tmp_path / "one.json").exists()


def test_verify_takes_a_ca_bundle_or_false(
    tls_hub: PublicHub, tls_ca: TlsCA, tmp_path: Path
) -> None:
    session = get_session(root_url=tls_hub.url, verify=str(tls_ca.ca_pem))
    assert mw.download_dataset(DS, tmp_path / "a", session=session, progress=False).complete
    with pytest.raises(TLSVerificationError, match="certificate verify failed"):
        mw.datasets(session=get_session(root_url=tls_hub.url))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        insecure = get_session(root_url=tls_hub.url, verify=False)
        assert len(mw.datasets(session=insecure)) > 0
    assert any(issubclass(w.category, InsecureTLSWarning) for w in caught)


def test_tls_through_the_proxy(
    forward_proxy: ForwardProxy,
    proxied_tls_hub: PublicHub,
    tls_ca: TlsCA,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    forward_proxy.setenv(monkeypatch)
    session = get_session(root_url=proxied_tls_hub.url, verify=str(tls_ca.ca_pem))
    summary = mw.download_dataset(DS, tmp_path, session=session, progress=False)
    assert summary.complete
    assert_complete_and_identical(proxied_tls_hub, tmp_path)


# -------------------------------------------------------------- headers stay on their origin
class _Recorder(http.server.BaseHTTPRequestHandler):
    """Serves ``files`` (path -> (type, bytes)) and redirects ``redirects`` (path -> URL);
    records every request's path and headers."""

    files: dict[str, tuple[str, bytes]]
    redirects: dict[str, str]
    seen: list[tuple[str, dict[str, str]]]
    require: str | None = None

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        path = self.path.split("?", 1)[0]
        if self.require and self.headers.get("Authorization") != self.require:
            self._send(401, "application/json", b'{"detail": "no"}')
        elif path in self.redirects:
            self.send_response(302)
            self.send_header("Location", self.redirects[path])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path in self.files:
            self._send(200, *self.files[path])
        else:
            self._send(404, "application/json", b'{"detail": "missing"}')

    def _send(self, status: int, ctype: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def _serve(**attrs: Any) -> tuple[_Server, type[_Recorder]]:
    handler = type("Handler", (_Recorder,), {"seen": [], "files": {}, "redirects": {}, **attrs})
    server = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


@pytest.fixture
def two_origins() -> Iterator[tuple[str, type[_Recorder], str, type[_Recorder]]]:
    """A private static catalogue on origin A (needs ``Authorization: Bearer s3cr3t``) whose
    second collection and assets live on origin B, and one of whose documents redirects to B."""
    a, ha = _serve(require="Bearer s3cr3t")
    b, hb = _serve()
    url_a = f"http://127.0.0.1:{a.server_address[1]}"
    url_b = f"http://127.0.0.1:{b.server_address[1]}"
    body = b"label bytes " * 50

    def collection(cid: str, base: str) -> dict[str, Any]:
        return {
            "type": "Collection",
            "stac_version": "1.0.0",
            "id": cid,
            "description": cid,
            "license": "CC-BY-4.0",
            "extent": {
                "spatial": {"bbox": [[0, 0, 1, 1]]},
                "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]},
            },
            "links": [{"rel": "item", "href": f"{base}/{cid}/item.json"}],
        }

    def item(cid: str, asset_url: str) -> dict[str, Any]:
        return {
            "type": "Feature",
            "stac_version": "1.0.0",
            "id": f"{cid}_item",
            "collection": cid,
            "geometry": {"type": "Point", "coordinates": [0.5, 0.5]},
            "bbox": [0.5, 0.5, 0.5, 0.5],
            "properties": {"datetime": "2020-06-01T00:00:00Z"},
            "links": [],
            "assets": {
                "data": {
                    "href": asset_url,
                    "type": "application/octet-stream",
                    "file:size": len(body),
                    "file:checksum": "1220" + hashlib.sha256(body).hexdigest(),
                }
            },
        }

    catalog = {
        "type": "Catalog",
        "stac_version": "1.0.0",
        "id": "private",
        "description": "private",
        "links": [
            {"rel": "child", "href": f"{url_a}/one/collection.json"},
            {"rel": "child", "href": f"{url_b}/two/collection.json"},
        ],
    }
    ha.files.update(
        {
            "/catalog.json": ("application/json", json.dumps(catalog).encode()),
            "/one/collection.json": (
                "application/json",
                json.dumps(collection("one", url_a)).encode(),
            ),
        }
    )
    # item one is redirected to B; its asset is on B too
    ha.redirects["/one/item.json"] = f"{url_b}/one/item.json?token=s3cr3t"
    hb.files.update(
        {
            "/one/item.json": (
                "application/json",
                json.dumps(item("one", f"{url_b}/a.bin")).encode(),
            ),
            "/two/collection.json": (
                "application/json",
                json.dumps(collection("two", url_b)).encode(),
            ),
            "/two/item.json": (
                "application/json",
                json.dumps(item("two", f"{url_b}/b.bin")).encode(),
            ),
            "/a.bin": ("application/octet-stream", body),
            "/b.bin": ("application/octet-stream", body),
        }
    )
    try:
        yield url_a, ha, url_b, hb
    finally:
        a.shutdown()
        b.shutdown()


def test_source_headers_go_to_the_source_origin_only(
    two_origins: tuple[str, type[_Recorder], str, type[_Recorder]], tmp_path: Path
) -> None:
    url_a, ha, _, hb = two_origins
    src = mw.open_source(f"{url_a}/catalog.json", headers={"Authorization": "Bearer s3cr3t"})
    assert {c for c in mw.collections(source=src)["id"]} == {"one", "two"}
    summary = mw.download_dataset("private", tmp_path, source=src, progress=False)
    assert summary.complete and summary.assets_failed == 0
    assert ha.seen and all(h.get("authorization") == "Bearer s3cr3t" for _, h in ha.seen)
    assert hb.seen  # collection two, the redirected item and both assets
    for path, headers in hb.seen:
        assert "authorization" not in headers, path
        assert "s3cr3t" not in path, path  # the echoed ?token= was removed on the other origin


def test_without_the_headers_the_private_source_says_so(
    two_origins: tuple[str, type[_Recorder], str, type[_Recorder]],
) -> None:
    url_a, *_ = two_origins
    with pytest.raises(mw.MLHubException, match="401"):
        mw.open_source(f"{url_a}/catalog.json").list_datasets()
