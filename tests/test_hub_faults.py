"""Fault injection of the hub: every fault type, determinism, scope, and switching off."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from mlhub_widgets.hub import FaultConfig, Hub, serve

KENYA = "ref_african_crops_kenya_02_source"


@pytest.fixture(scope="module")
def fhub() -> Iterator[Hub]:
    with serve() as running:
        yield running


@pytest.fixture
def faulty(fhub: Hub) -> Iterator[Hub]:
    fhub.faults = FaultConfig()
    yield fhub
    fhub.faults = FaultConfig()


@pytest.fixture(scope="module")
def hrefs(fhub: Hub) -> list[str]:
    body = requests.get(fhub.url + f"collections/{KENYA}/items", params={"limit": 20}, timeout=10)
    return [a["href"] for f in body.json()["features"] for a in f["assets"].values()]


def raw_get(
    url: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes, str | None]:
    """GET with http.client, reading the body until the server stops sending.

    Returns (status, headers, body, error) where error names how the body ended early.
    """
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", parts.path, headers=headers or {})
    resp = conn.getresponse()
    hdrs = {k.lower(): v for k, v in resp.getheaders()}
    chunks = []
    error = None
    try:
        while True:
            chunk = resp.read1(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except http.client.IncompleteRead as exc:
        chunks.append(exc.partial)
        error = "incomplete"
    except ConnectionResetError:
        error = "reset"
    conn.close()
    body = b"".join(chunks)
    if error is None and len(body) < int(hdrs.get("content-length", "0")):
        error = "short"
    return resp.status, hdrs, body, error


def test_off_by_default(fhub: Hub, hrefs: list[str]) -> None:
    assert not fhub.faults.active
    for href in hrefs[:30]:
        assert requests.get(href, timeout=10).status_code == 200


def test_error_rate_is_deterministic(faulty: Hub, hrefs: list[str]) -> None:
    s = requests.Session()
    sample = hrefs[:100]

    def run() -> list[int]:
        faulty.faults = FaultConfig(error_rate=0.3, seed=7)
        return [s.get(h, timeout=10).status_code for h in sample]

    first, second = run(), run()
    assert first == second  # same seed, same paths, same answers
    errors = [code for code in first if code != 200]
    assert set(errors) == {500, 503, 429}
    assert 0.15 * len(sample) < len(errors) < 0.45 * len(sample)
    faulty.faults = FaultConfig(error_rate=0.3, seed=8)
    assert [s.get(h, timeout=10).status_code for h in sample] != first
    # retries are new draws: every asset eventually succeeds
    faulty.faults = FaultConfig(error_rate=0.5, seed=1)
    for h in sample[:20]:
        for _ in range(30):
            if s.get(h, timeout=10).status_code == 200:
                break
        else:
            pytest.fail(f"{h} never succeeded")


def test_retry_after(faulty: Hub, hrefs: list[str]) -> None:
    faulty.faults = FaultConfig(error_rate=1.0, error_statuses=(503,), retry_after=0.1)
    r = requests.get(hrefs[0], timeout=10)
    assert r.status_code == 503 and r.headers["Retry-After"] == "0.1"
    faulty.faults = FaultConfig(error_rate=1.0, error_statuses=(429,))
    assert requests.get(hrefs[0], timeout=10).headers["Retry-After"] == "1"
    faulty.faults = FaultConfig(error_rate=1.0, error_statuses=(500,))
    r = requests.get(hrefs[0], timeout=10)
    assert r.status_code == 500 and "Retry-After" not in r.headers


def test_scope(faulty: Hub, hrefs: list[str]) -> None:
    faulty.faults = FaultConfig(error_rate=1.0)  # scope "assets": the API is untouched
    assert requests.get(faulty.url + "datasets", timeout=10).status_code == 200
    catalog = requests.get(faulty.url + "catalog/nasa_marine_debris", timeout=10)
    assert catalog.status_code == 200  # the tarball is not an asset
    assert requests.get(hrefs[0], timeout=10).status_code != 200
    faulty.faults = FaultConfig(error_rate=1.0, scope="api")
    assert requests.get(faulty.url + "datasets", timeout=10).status_code in (500, 503, 429)
    assert requests.get(hrefs[0], timeout=10).status_code == 200
    faulty.faults = FaultConfig(error_rate=1.0, scope="storage", error_statuses=(500,))
    assert requests.get(faulty.url + "catalog/nasa_marine_debris", timeout=10).status_code == 500
    faulty.faults = FaultConfig(error_rate=1.0, scope="all", error_statuses=(500,))
    assert requests.get(faulty.url + "datasets", timeout=10).status_code == 500


def test_missing_and_forbidden(faulty: Hub, hrefs: list[str]) -> None:
    faulty.faults = FaultConfig(
        missing=frozenset({hrefs[0]}), forbidden=frozenset({urlsplit(hrefs[1]).path})
    )
    for _ in range(3):  # permanently
        assert requests.get(hrefs[0], timeout=10).status_code == 404
        assert requests.head(hrefs[0], timeout=10).status_code == 404
        assert requests.get(hrefs[1], timeout=10).status_code == 403
    assert requests.get(hrefs[2], timeout=10).status_code == 200


def test_drop(faulty: Hub, hrefs: list[str]) -> None:
    faulty.faults = FaultConfig(drop_rate=1.0)
    status, headers, body, error = raw_get(hrefs[0])
    assert status == 200
    expected = faulty.asset_bytes(hrefs[0])
    assert int(headers["content-length"]) == len(expected)
    assert error is not None
    assert len(body) < len(expected)
    assert expected.startswith(body)  # what did arrive is correct
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(hrefs[0], timeout=10)


def test_short_body(faulty: Hub, hrefs: list[str]) -> None:
    faulty.faults = FaultConfig(short_body_rate=1.0)
    status, headers, body, error = raw_get(hrefs[3])
    expected = faulty.asset_bytes(hrefs[3])
    assert status == 200 and int(headers["content-length"]) == len(expected)
    assert error in ("incomplete", "short")
    assert 0.8 * len(expected) < len(body) < len(expected)
    assert expected.startswith(body)
    # HEAD is never cut, and the connection of a cut response is closed, not reused
    assert requests.head(hrefs[3], timeout=10).status_code == 200


def test_latency(faulty: Hub, hrefs: list[str]) -> None:
    s = requests.Session()
    s.get(hrefs[0], timeout=10)
    t0 = time.perf_counter()
    for h in hrefs[:5]:
        s.get(h, timeout=10)
    fast = time.perf_counter() - t0
    faulty.faults = FaultConfig(latency_ms=40)
    t0 = time.perf_counter()
    for h in hrefs[:5]:
        assert s.get(h, timeout=10).status_code == 200
    slow = time.perf_counter() - t0
    assert slow >= 0.2 and slow > fast + 0.15
    t0 = time.perf_counter()
    requests.get(faulty.url + "datasets", timeout=10)  # latency applies to the API too
    assert time.perf_counter() - t0 >= 0.04


def test_connect_latency(faulty: Hub, hrefs: list[str]) -> None:
    faulty.faults = FaultConfig(connect_latency_ms=150)
    s = requests.Session()
    t0 = time.perf_counter()
    s.get(hrefs[0], timeout=10)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for h in hrefs[1:4]:
        s.get(h, timeout=10)  # same connection: no handshake penalty
    rest = time.perf_counter() - t0
    assert first >= 0.15
    assert rest < 0.15
    t0 = time.perf_counter()
    requests.get(hrefs[1], timeout=10)  # a new connection pays again
    assert time.perf_counter() - t0 >= 0.15


def test_bandwidth(faulty: Hub, hrefs: list[str]) -> None:
    size = len(faulty.asset_bytes(hrefs[0]))
    faulty.faults = FaultConfig(bandwidth_bps=size * 4)  # ~0.25 s per asset
    t0 = time.perf_counter()
    r = requests.get(hrefs[0], timeout=10)
    took = time.perf_counter() - t0
    assert r.content == faulty.asset_bytes(hrefs[0])
    assert 0.18 < took < 2.0


def test_invalid_configs() -> None:
    with pytest.raises(ValueError):
        FaultConfig(error_rate=1.5)
    with pytest.raises(ValueError):
        FaultConfig(scope="everything")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FaultConfig(bandwidth_bps=0)
    assert FaultConfig(missing=frozenset({"http://h:1/a/b"})).missing == frozenset({"/a/b"})


def test_faults_keep_connection_usable(faulty: Hub, hrefs: list[str]) -> None:
    faulty.faults = FaultConfig(error_rate=1.0, error_statuses=(500,))
    sock = socket.create_connection((urlsplit(hrefs[0]).hostname, urlsplit(hrefs[0]).port))
    path = urlsplit(hrefs[0]).path
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode() * 2)
    data = b""
    sock.settimeout(5)
    while data.count(b"HTTP/1.1 500") < 2:
        chunk = sock.recv(65536)
        assert chunk
        data += chunk
    sock.close()
