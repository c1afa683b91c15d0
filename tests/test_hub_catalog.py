"""Catalogue tarballs built by the hub: content, validity, the on-disk cache, lazy items.jsonl."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import socket
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
import requests

import mlhub_widgets.hub.items as items_module
import mlhub_widgets.hub.server as server_module
from mlhub_widgets.hub import serve
from mlhub_widgets.hub.catalog import CatalogCache
from mlhub_widgets.hub.sample import make_synthetic_dataset


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def members(data: bytes) -> dict[str, Any]:
    """``{name: parsed JSON}`` of the regular members of a catalogue tarball."""
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for m in tf:
            if m.isfile():
                fh = tf.extractfile(m)
                assert fh is not None
                out[m.name] = json.loads(fh.read())
    return out


def test_synthetic_tarball_content(tmp_path: Path) -> None:
    folder = make_synthetic_dataset(tmp_path, "syn_cat", 300, 3, checksums=False)
    lines = (folder / "syn_cat_source" / "items.jsonl").read_text().splitlines()
    with serve(tmp_path, cache_dir=False) as own:
        data = requests.get(own.url + "catalog/syn_cat", timeout=30).content
        raw = gzip.decompress(data)
        assert len(raw) % 10240 == 0 and raw[-1024:] == b"\0" * 1024  # a well-ended archive
        docs = members(data)
        names = list(docs)
        assert names[-1] == "syn_cat/catalog.json"
        assert names[-2] == "syn_cat/syn_cat_source/collection.json"
        item_names = [f"syn_cat/syn_cat_source/{json.loads(x)['id']}/{json.loads(x)['id']}.json"
                      for x in lines]  # fmt: skip
        assert names[:-2] == item_names  # items first, in file order
        for line in lines[::37]:
            src = json.loads(line)
            got = docs[f"syn_cat/syn_cat_source/{src['id']}/{src['id']}.json"]
            want = json.loads(own.rewrite(line))
            assert {k: v for k, v in got.items() if k != "links"} == want
            assert [(x["rel"], x["href"]) for x in got["links"]] == [
                ("root", "../../catalog.json"),
                ("collection", "../collection.json"),
                ("parent", "../collection.json"),
                ("self", f"{src['id']}.json"),
            ]
        col = docs["syn_cat/syn_cat_source/collection.json"]
        hrefs = [x["href"] for x in col["links"] if x["rel"] == "item"]
        assert hrefs == [n.split("/", 2)[2] for n in item_names]
        cat = docs["syn_cat/catalog.json"]
        assert [x["href"] for x in cat["links"] if x["rel"] == "child"] == [
            "syn_cat_source/collection.json"
        ]
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            dirs = [m.name for m in tf if m.isdir()]
        assert len(dirs) == 302  # root, collection, one per item


def test_cache_survives_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = tmp_path / "data"
    folder = make_synthetic_dataset(data_dir, "syn_cache", 200, 2, checksums=False)
    cache = tmp_path / "cache"
    ports = {"port": free_port(), "storage_port": free_port()}
    with serve(data_dir, cache_dir=cache, **ports) as first:
        r1 = requests.get(first.url + "catalog/syn_cache", timeout=30)
    assert len(list(cache.glob("syn_cache-*.tar.gz"))) == 1

    def no_build(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("rebuilt although cached")

    monkeypatch.setattr(server_module, "build_catalog", no_build)
    with serve(data_dir, cache_dir=cache, **ports) as second:
        r2 = requests.get(second.url + "catalog/syn_cache", timeout=30)
        assert r2.content == r1.content
        assert r2.headers["ETag"] == r1.headers["ETag"]
        assert r2.headers["Content-MD5"] == r1.headers["Content-MD5"]
        part = requests.get(
            second.url + "catalog/syn_cache", headers={"Range": "bytes=10-99"}, timeout=30
        )
        assert part.status_code == 206 and part.content == r1.content[10:100]
    monkeypatch.undo()
    jsonl = folder / "syn_cache_source" / "items.jsonl"
    st = jsonl.stat()
    os.utime(jsonl, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the data changed
    with serve(data_dir, cache_dir=cache, **ports) as third:
        third.catalog_blob("syn_cache")
    assert len(list(cache.glob("syn_cache-*.tar.gz"))) == 2
    with serve(data_dir, cache_dir=False) as memory:
        blob = memory.catalog_blob("syn_cache")
        assert members(blob.read()).keys() == members(r1.content).keys()


def test_cache_keeps_entries_in_use_and_prunes_unused(tmp_path: Path) -> None:
    """A lookup renews the tarball and its checksum file together: an entry in daily use
    is never half-pruned (tarball kept, checksum gone) and rebuilt; unused ones go."""
    cache = CatalogCache(tmp_path / "cache")
    old = time.time() - 3 * 86400
    used, unused = cache.directory / "used-1.tar.gz", cache.directory / "unused-2.tar.gz"
    for path in (used, unused):
        cache.store(path, lambda fh: (fh.write(b"tarball"), hashlib.md5(b"tarball").digest()))
    for path in (used, unused):  # both last used three days ago
        for f in (path, path.with_suffix(".md5")):
            os.utime(f, (old, old))
    assert cache.lookup(used) == (7, hashlib.md5(b"tarball").digest())
    cache.prune()
    assert used.exists() and used.with_suffix(".md5").exists()
    assert not unused.exists() and not unused.with_suffix(".md5").exists()
    assert cache.lookup(used) is not None and cache.lookup(unused) is None


def write_odd_dataset(root: Path) -> None:
    """A folder dataset whose items.jsonl needs every slow path of the lazy reader."""
    ds = root / "odd"
    col = ds / "odd_col"
    (col / "files").mkdir(parents=True)
    (col / "files" / "a.txt").write_bytes(b"real file\n")
    (ds / "catalog.json").write_text(
        json.dumps(
            {
                "type": "Catalog",
                "id": "odd",
                "stac_version": "1.0.0",
                "description": "odd",
                "links": [{"rel": "child", "href": "odd_col/collection.json"}],
            }
        )
    )
    (col / "collection.json").write_text(json.dumps({
        "type": "Collection", "id": "odd_col", "stac_version": "1.0.0", "description": "c",
        "license": "CC0-1.0", "links": [],
        "extent": {"spatial": {"bbox": [[0, 0, 3, 3]]},
                   "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]}}}))  # fmt: skip

    def item(iid: str, x: float, **extra: Any) -> dict[str, Any]:
        out = {"type": "Feature", "stac_version": "1.0.0"}
        out.update(extra.pop("before", {}))
        out.update({
            "id": iid,
            "geometry": {"type": "Point", "coordinates": [x, x]},
            "bbox": [x, x, x, x],
            "properties": {"datetime": f"2020-01-0{int(x) + 1}T00:00:00Z"},
            "assets": {"a": {"href": "https://radiantearth.blob.core.windows.net/mlhub/odd/a.tif"}},
        })  # fmt: skip
        out.update(extra)
        return out

    rows = [
        json.dumps(item("plain", 0.5), separators=(",", ":")),
        "",
        json.dumps(item("nested", 1.5, before={"meta": {"id": "not-me"}})),
        "   ",
        json.dumps(item("relative", 2.5, assets={"a": {"href": "files/a.txt"}})) + "\r",
        json.dumps(
            item(
                "linked",
                2.0,
                links=[
                    {"rel": "self", "href": "x.json"},
                    {"rel": "license", "href": "https://example.org/license"},
                ],
            )
        ),
    ]
    (col / "items.jsonl").write_text("\n".join(rows) + "\n\n")


def test_odd_items_jsonl(tmp_path: Path) -> None:
    write_odd_dataset(tmp_path)
    with serve(tmp_path, cache_dir=False) as own:
        url = own.url + "collections/odd_col/items"
        page = requests.get(url, timeout=10).json()
        assert [f["id"] for f in page["features"]] == ["plain", "nested", "relative", "linked"]
        assert all(f["collection"] == "odd_col" for f in page["features"])
        by_id = {f["id"]: f for f in page["features"]}
        assert by_id["nested"]["meta"] == {"id": "not-me"}
        rel = by_id["relative"]["assets"]["a"]["href"]
        assert rel == own.storage_url + "files/odd/odd_col/files/a.txt"
        assert requests.get(rel, timeout=10).content == b"real file\n"
        assert by_id["plain"]["assets"]["a"]["href"] == own.storage_url + "mlhub/odd/a.tif"
        assert [x["rel"] for x in by_id["linked"]["links"]] == [
            "collection", "parent", "root", "self",
        ]  # fmt: skip
        for iid in ("nested", "linked"):
            one = requests.get(f"{url}/{iid}", timeout=10).json()
            assert one == by_id[iid]
        two = requests.get(url, params={"limit": 2}, timeout=10).json()
        nxt = next(x["href"] for x in two["links"] if x["rel"] == "next")
        assert [f["id"] for f in requests.get(nxt, timeout=10).json()["features"]] == [
            "relative", "linked",
        ]  # fmt: skip
        boxed = requests.get(url, params={"bbox": "1,1,2.2,2.2"}, timeout=10).json()
        assert [f["id"] for f in boxed["features"]] == ["nested", "linked"]
        found = requests.post(
            own.url + "search", json={"datetime": "2020-01-03T00:00:00Z/.."}, timeout=10
        ).json()
        assert [f["id"] for f in found["features"]] == ["relative", "linked"]
        docs = members(own.catalog_blob("odd").read())
        linked = docs["odd/odd_col/linked/linked.json"]
        assert [x["rel"] for x in linked["links"]] == [
            "root", "collection", "parent", "self", "license",
        ]  # fmt: skip
        assert docs["odd/odd_col/relative/relative.json"]["assets"]["a"]["href"] == rel


@pytest.mark.parametrize("chunk", [1, 2, 3, 1 << 20])
def test_line_offsets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(items_module, "READ_CHUNK", chunk)
    cases = [
        b'{"a":1}\n{"b":2}\n',
        b'{"a":1}\n\n  \n{"b":2}',
        b"",
        b"\n\n",
        b'{"a":1}\r\n \r\n{"b":2}\r\n',
        b' {"x":1}\n',
        b'\n{"a":1}',
    ]
    for n, content in enumerate(cases):
        path = tmp_path / f"{n}.jsonl"
        path.write_bytes(content)
        starts, ends = items_module._line_offsets(path)
        got = [content[a:b] for a, b in zip(starts, ends, strict=True)]
        assert got == [line for line in content.split(b"\n") if line.strip()]
