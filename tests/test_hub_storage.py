"""The hub's storage origin: redirects, tarballs, ranges, validators, counters, change_asset."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from email.utils import formatdate

import pytest
import requests

from mlhub_widgets.hub import FaultConfig, Hub, serve

KENYA = "ref_african_crops_kenya_02_source"


@pytest.fixture(scope="module")
def own() -> Iterator[Hub]:
    """A hub private to this module (its counters and assets get changed)."""
    with serve(require_key="k-123456789") as running:
        yield running


@pytest.fixture
def asset(hub: Hub) -> str:
    item = requests.get(hub.url + f"collections/{KENYA}/items", timeout=10).json()["features"][0]
    return str(item["assets"]["B02"]["href"])


def test_catalog_redirect_and_tarball(hub: Hub) -> None:
    r = requests.get(hub.url + "catalog/nasa_marine_debris", allow_redirects=False, timeout=10)
    assert r.status_code == 303
    assert r.headers["Content-Length"] == "0"
    location = r.headers["Location"]
    assert location == hub.storage_url + "mlhub/catalogs/nasa_marine_debris.tar.gz"
    head = requests.head(hub.url + "catalog/nasa_marine_debris", allow_redirects=False, timeout=10)
    assert head.status_code == 303 and head.headers["Location"] == location
    blob = requests.get(location, timeout=10)
    assert blob.status_code == 200
    assert blob.headers["Content-Type"] == "application/octet-stream"
    assert blob.headers["Accept-Ranges"] == "bytes"
    assert blob.content == hub.asset_bytes(location)
    assert (
        blob.headers["Content-MD5"] == base64.b64encode(hashlib.md5(blob.content).digest()).decode()
    )
    again = requests.get(location, timeout=10)
    assert again.headers["ETag"] == blob.headers["ETag"]  # built once, stable
    with tarfile.open(fileobj=io.BytesIO(blob.content)) as tf:
        members = tf.getmembers()
        items = []
        for m in members:
            if m.isfile() and m.name.endswith(".json"):
                fh = tf.extractfile(m)
                assert fh is not None
                items.append(json.loads(fh.read()))
    assert len(members) == 2830
    features = [i for i in items if i.get("type") == "Feature"]
    assert len(features) == 1412
    hrefs = [a["href"] for f in features for a in f["assets"].values()]
    assert len(hrefs) == 3530 and len(set(hrefs)) == 2825
    assert all(h.startswith(hub.storage_url + "mlhub/nasa-marine-debris/") for h in hrefs)
    assert "blob.core.windows.net" not in blob.content.decode("latin-1")  # gzip: check decoded too
    for href in sorted(set(hrefs))[::400]:  # every served href resolves
        got = requests.get(href, timeout=10)
        assert got.status_code == 200
        assert got.content == hub.asset_bytes(href)


def test_folder_catalog_tarball(hub: Hub) -> None:
    data = requests.get(hub.url + "catalog/mlhub_widgets_demo_crops", timeout=10).content
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        names = tf.getnames()
        fh = tf.extractfile("mlhub_widgets_demo_crops/catalog.json")
        assert fh is not None
        catalog = json.loads(fh.read())
        sample = next(n for n in names if n.count("/") == 3 and n.endswith(".json"))
        item_fh = tf.extractfile(sample)
        assert item_fh is not None
        item = json.loads(item_fh.read())
    assert [link["href"] for link in catalog["links"] if link["rel"] == "child"] == [
        "mlhub_widgets_demo_crops_source/collection.json",
        "mlhub_widgets_demo_crops_labels/collection.json",
    ]
    assert sum(1 for n in names if n.count("/") == 3) == 216
    for a in item["assets"].values():
        assert a["href"].startswith(hub.storage_url + "files/mlhub_widgets_demo_crops/")
        got = requests.get(a["href"], timeout=10).content
        assert len(got) == a["file:size"]
        assert "1220" + hashlib.sha256(got).hexdigest() == a["file:checksum"]
    su_sar = requests.get(hub.url + "catalog/su_sar_moisture_content_main", timeout=10)
    with tarfile.open(fileobj=io.BytesIO(su_sar.content)) as tf:
        assert any("._" in n for n in tf.getnames())  # the mock's macOS junk is kept on purpose


def test_archive_redirect(hub: Hub) -> None:
    head = requests.head(hub.url + "archive/ref_african_crops_kenya_02_labels", timeout=10)
    assert head.status_code == 303
    url = head.headers["Location"]
    assert url == hub.storage_url + "mlhub/archives/ref_african_crops_kenya_02_labels.tar.gz"
    h = requests.head(url, timeout=10)
    assert h.headers["Content-Length"] == "252970"
    assert h.headers["Content-Type"] == "application/x-tar"
    assert h.headers["Content-MD5"] == "k5SavQroK6Vk9akzzv2CFQ=="  # as recorded from Azure
    r = requests.get(url, headers={"Range": "bytes=0-252970"}, timeout=10)
    assert r.status_code == 206
    assert r.headers["Content-Range"] == "bytes 0-252969/252970"  # as recorded
    assert hashlib.md5(r.content).digest() == base64.b64decode("k5SavQroK6Vk9akzzv2CFQ==")


def test_ranges(hub: Hub, asset: str) -> None:
    full = hub.asset_bytes(asset)
    n = len(full)
    r = requests.get(asset, timeout=10)
    assert r.status_code == 200 and r.content == full
    assert r.headers["Content-Length"] == str(n)
    assert r.headers["Content-MD5"] == base64.b64encode(hashlib.md5(full).digest()).decode()
    etag = r.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    cases = {
        "bytes=0-99": (0, 99),
        "bytes=100-": (100, n - 1),
        "bytes=-50": (n - 50, n - 1),
        f"bytes=10-{n + 1000}": (10, n - 1),
        f"bytes=-{n + 5}": (0, n - 1),
    }
    for header, (a, b) in cases.items():
        part = requests.get(asset, headers={"Range": header}, timeout=10)
        assert part.status_code == 206, header
        assert part.headers["Content-Range"] == f"bytes {a}-{b}/{n}"
        assert part.content == full[a : b + 1]
        assert "Content-MD5" not in part.headers
    for header in (f"bytes={n}-", f"bytes={n + 10}-{n + 20}", "bytes=-0"):
        bad = requests.get(asset, headers={"Range": header}, timeout=10)
        assert bad.status_code == 416, header
        assert bad.headers["Content-Range"] == f"bytes */{n}"
    for ignored in ("bytes=0-1,5-6", "items=0-5", "bytes=abc"):
        assert requests.get(asset, headers={"Range": ignored}, timeout=10).status_code == 200
    # If-Range with the current ETag or Last-Modified: partial; with anything else: full 200
    lm = r.headers["Last-Modified"]
    for validator in (etag, lm):
        ok = requests.get(asset, headers={"Range": "bytes=5-", "If-Range": validator}, timeout=10)
        assert ok.status_code == 206 and ok.content == full[5:]
    for stale in ('"0xOLD"', formatdate(0, usegmt=True), "W/" + etag):
        whole = requests.get(asset, headers={"Range": "bytes=5-", "If-Range": stale}, timeout=10)
        assert whole.status_code == 200 and whole.content == full
    cond = requests.get(asset, headers={"If-None-Match": etag}, timeout=10)
    assert cond.status_code == 304 and cond.content == b""


def test_head(hub: Hub, asset: str) -> None:
    head = requests.head(asset, timeout=10)
    get = requests.get(asset, timeout=10)
    assert head.status_code == 200 and head.content == b""
    for name in (
        "Content-Length",
        "Content-Type",
        "ETag",
        "Last-Modified",
        "Content-MD5",
        "Accept-Ranges",
    ):
        assert head.headers[name] == get.headers[name]
    assert requests.head(hub.storage_url + "mlhub/nope/x.tif", timeout=10).status_code == 404
    assert (
        requests.get(
            hub.storage_url + "files/mlhub_widgets_demo_crops/../../x", timeout=10
        ).status_code
        == 404
    )
    assert requests.get(hub.storage_url + "favicon.ico", timeout=10).status_code == 404


def test_no_ranges_servers(own: Hub) -> None:
    item = requests.get(
        own.url + f"collections/{KENYA}/items", params={"key": "k-123456789"}, timeout=10
    )
    href = item.json()["features"][0]["assets"]["B03"]["href"]
    full = own.asset_bytes(href)
    try:
        own.faults = FaultConfig(no_range_paths=frozenset({href}))
        r = requests.get(href, headers={"Range": "bytes=0-9"}, timeout=10)
        assert r.status_code == 200 and r.content == full
        assert "Accept-Ranges" not in r.headers
        own.faults = FaultConfig(no_ranges=True)
        other = href.replace("/B03.tif", "/B04.tif")
        assert requests.get(other, headers={"Range": "bytes=0-9"}, timeout=10).status_code == 200
    finally:
        own.faults = FaultConfig()
    assert requests.get(href, headers={"Range": "bytes=0-9"}, timeout=10).status_code == 206


def test_counters_and_keys_never_reach_storage(own: Hub) -> None:
    key = "k-123456789"
    own.reset_counters()
    s = requests.Session()
    s.params = {"key": key}  # type: ignore[assignment]  # like a client that adds it everywhere by mistake
    items = requests.get(
        own.url + f"collections/{KENYA}/items", params={"key": key}, timeout=10
    ).json()
    href = items["features"][0]["assets"]["B01"]["href"]
    requests.get(href, timeout=10)
    requests.head(href, timeout=10)
    requests.get(own.url + "catalog/nasa_marine_debris", params={"key": key}, timeout=10)
    requests.get(
        own.url + "archive/ref_african_crops_kenya_02_labels", params={"key": key}, timeout=10
    )
    requests.get(own.storage_url + "nothing-here", timeout=10)
    counters = own.counters()
    assert counters[("api", "GET")] == 3
    assert counters[("asset", "GET")] == 1 and counters[("asset", "HEAD")] == 1
    assert counters[("catalog", "GET")] == 1 and counters[("archive", "GET")] == 1
    assert counters[("other", "GET")] == 1
    assert own.count(method="GET") == 7
    assert own.keys_seen("api") == 3
    assert own.keys_seen("storage") == 0
    recs = own.requests
    assert [(r.origin, r.kind, r.status) for r in recs] == [
        ("api", "api", 200), ("storage", "asset", 200), ("storage", "asset", 200),
        ("api", "api", 303), ("storage", "catalog", 200),
        ("api", "api", 303), ("storage", "archive", 200), ("storage", "other", 404),
    ]  # fmt: skip
    assert recs[0].query_keys == ("key",) and recs[0].key_present
    s.get(href, timeout=10)  # a leaky client is caught
    assert own.keys_seen("storage") == 1
    requests.get(href, headers={"Authorization": "Bearer x"}, timeout=10)
    assert own.keys_seen("storage") == 2
    own.reset_counters()
    assert own.counters() == {} and own.requests == [] and own.keys_seen("storage") == 0


def test_change_asset(own: Hub) -> None:
    items = requests.get(
        own.url + f"collections/{KENYA}/items", params={"key": "k-123456789"}, timeout=10
    )
    href = items.json()["features"][1]["assets"]["B05"]["href"]
    before = requests.get(href, timeout=10)
    own.change_asset(href)
    after = requests.get(href, timeout=10)
    assert after.content != before.content
    assert len(after.content) == len(before.content)
    assert after.content[:4] == b"II*\0"  # still a TIFF
    assert after.headers["ETag"] != before.headers["ETag"]
    assert after.headers["Last-Modified"] != before.headers["Last-Modified"]
    assert after.content == own.asset_bytes(href)
    stale = requests.get(
        href, headers={"Range": "bytes=100-", "If-Range": before.headers["ETag"]}, timeout=10
    )
    assert stale.status_code == 200 and stale.content == after.content
    # a real file of a folder dataset changes too
    demo = requests.get(own.url + "collections/mlhub_widgets_demo_crops_labels/items",
                        params={"key": "k-123456789", "limit": 1}, timeout=10).json()  # fmt: skip
    label = demo["features"][0]["assets"]["labels"]["href"]
    old = requests.get(label, timeout=10).content
    own.change_asset(label)
    new = requests.get(label, timeout=10).content
    assert new != old and len(new) == len(old)
    json.loads(new)  # still GeoJSON
    with pytest.raises(KeyError):
        own.change_asset(own.storage_url + "mlhub/does/not/exist.tif")
    with pytest.raises(ValueError):
        own.asset_bytes("http://example.org/mlhub/x.tif")


def test_keep_alive_many_requests(hub: Hub, asset: str) -> None:
    s = requests.Session()
    first = s.get(asset, timeout=10).content
    for _ in range(50):
        assert s.get(asset, timeout=10).content == first
