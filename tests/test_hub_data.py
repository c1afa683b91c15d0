"""Bundled and generated hub data: valid files, the demo dataset, determinism, data dirs."""

from __future__ import annotations

import filecmp
import hashlib
import io
import json
import struct
import subprocess
import sys
import tarfile
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from mlhub_widgets.hub import Hub, bundled_data_dir, formats, serve, synth
from mlhub_widgets.hub.sample import COUNTRIES, DEMO_ID, make_synthetic_dataset

ROOT = Path(__file__).resolve().parents[1]


def tiff_tags(data: bytes) -> dict[int, tuple[Any, ...]]:
    """Parse the first IFD of a little-endian TIFF (enough to check what the hub writes)."""
    assert data[:4] == b"II*\0"
    (ifd,) = struct.unpack_from("<I", data, 4)
    (n,) = struct.unpack_from("<H", data, ifd)
    tags: dict[int, tuple[Any, ...]] = {}
    sizes = {3: ("H", 2), 4: ("I", 4), 12: ("d", 8)}
    for i in range(n):
        tag, typ, count, value = struct.unpack_from("<HHII", data, ifd + 2 + 12 * i)
        fmt, size = sizes[typ]
        off = ifd + 2 + 12 * i + 8 if count * size <= 4 else value
        tags[tag] = struct.unpack_from(f"<{count}{fmt}", data, off)
    assert list(tags) == sorted(tags)
    return tags


def check_geotiff(data: bytes) -> tuple[int, int, int, int]:
    tags = tiff_tags(data)
    width, height, bands = tags[256][0], tags[257][0], tags[277][0]
    bits = tags[258][0]
    assert tags[259] == (1,)
    assert tags[273][0] + tags[279][0] <= len(data)
    assert tags[279][0] == width * height * bands * bits // 8
    assert len(tags[33550]) == 3 and len(tags[33922]) == 6
    geokeys = tags[34735]
    assert geokeys[:4] == (1, 1, 0, 3)
    assert geokeys[12:16] == (2048, 0, 1, 4326)
    return width, height, bands, bits


def check_png(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, idat = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        assert crc == zlib.crc32(kind + body)
        chunks.append(kind)
        if kind == b"IDAT":
            idat += body
        pos += 12 + length
        if kind == b"IEND":
            break
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND"
    width, height = struct.unpack_from(">II", data, 16)
    assert len(zlib.decompress(idat)) == height * (width + 1)
    return width, height


def check_jpeg(data: bytes) -> None:
    assert data[:2] == b"\xff\xd8"
    pos, markers = 2, []
    while True:
        assert data[pos] == 0xFF
        marker = data[pos + 1]
        markers.append(marker)
        (length,) = struct.unpack_from(">H", data, pos + 2)
        pos += 2 + length
        if marker == 0xDA:
            break
    assert {0xE0, 0xDB, 0xC0, 0xC4, 0xDA} <= set(markers)
    assert b"\xff\xd9" in data[pos:]


@pytest.mark.parametrize("size", [1024, 3000, 80_000, 200_000])
def test_generated_files_are_valid(size: int) -> None:
    for ext in ("tif", "jpg", "png", "geojson", "json", "npy", "pdf", "csv", "bin"):
        path = f"mlhub/test/item/asset.{ext}"
        data = synth.generate(path, size).read()
        assert len(data) == size, ext
        assert synth.generate(path, size).read() == data  # deterministic
        assert synth.generate(path, size, version=1).read() != data
        if ext == "tif":
            check_geotiff(data)
        elif ext == "png":
            check_png(data)
        elif ext == "jpg":
            check_jpeg(data)
        elif ext in ("geojson", "json"):
            obj = json.loads(data)
            if ext == "geojson":
                assert obj["type"] == "FeatureCollection" and obj["features"]
        elif ext == "npy":
            arr = np.load(io.BytesIO(data))
            assert arr.dtype == np.uint8 and arr.ndim == 1
        elif ext == "pdf":
            assert data.startswith(b"%PDF-1.4") and data.rstrip().endswith(b"%%EOF")
            xref = int(data.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
            assert data[xref : xref + 4] == b"xref"
        elif ext == "csv":
            lines = data.decode().splitlines()
            assert lines[0] == "id,value,label"
            assert all(len(line.split(",")) == 3 for line in lines[1:-1])


def test_large_bodies_stream_without_materializing() -> None:
    size = 50 * 1024 * 1024
    body = synth.generate("mlhub/big/item/asset_0.tif", size)
    assert body.size == size and len(body.head) < 4096
    tags = tiff_tags(body.head)
    assert tags[273][0] == len(body.head)  # the strip starts right after the header
    assert tags[273][0] + tags[279][0] <= size
    total = sum(len(c) for c in body.chunks())
    assert total == size
    a = body.read(size - 100, size - 1)
    assert a == b"".join(bytes(c) for c in body.chunks(size - 100))
    assert len(a) == 100


def test_formats_exact_sizes() -> None:
    for size in range(600, 700):
        assert len(formats.jpeg_file(64, 64, b"xyz", size)) == size
        assert len(formats.pdf_file("t", b"abc", size + 2000)) == size + 2000
        assert len(formats.npy_file(b"q", size)) == size


def test_demo_dataset_files(hub: Hub) -> None:
    root = bundled_data_dir() / "datasets" / DEMO_ID
    tifs = sorted(root.rglob("*.tif"))
    assert len(tifs) == 144
    assert check_geotiff(tifs[0].read_bytes()) == (32, 32, 4, 16)
    pngs = sorted(root.rglob("*.png"))
    assert check_png(pngs[0].read_bytes()) == (32, 32)
    labels = json.loads(next(root.rglob("labels.geojson")).read_text())
    assert len(labels["features"]) == 16
    assert {"field_id", "crop_id", "crop_type"} <= set(labels["features"][0]["properties"])
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert size < 4_000_000


def test_demo_dataset_through_the_api(hub: Hub) -> None:
    rec = requests.get(hub.url + f"datasets/{DEMO_ID}", timeout=10).json()
    assert rec["doi"] == "10.5072/mlhub-widgets.demo-crops"
    assert (
        rec["documentation_link"] == hub.storage_url + f"files/{DEMO_ID}/_common/documentation.pdf"
    )
    assert requests.get(rec["documentation_link"], timeout=10).content.startswith(b"%PDF")
    assert [c["types"] for c in rec["collections"]] == [["source_imagery"], ["labels"]]
    by_doi = requests.get(hub.url + "datasets/doi/" + rec["doi"], timeout=10).json()
    assert by_doi["id"] == DEMO_ID
    src = requests.get(
        hub.url + f"collections/{DEMO_ID}_source/items", params={"limit": 1000}, timeout=10
    )
    feats = src.json()["features"]
    assert len(feats) == 144
    assert {f["properties"]["country"] for f in feats} == {c.name for c in COUNTRIES}
    assert {f["properties"]["datetime"][:4] for f in feats} == {"2020", "2021"}
    lab = requests.get(
        hub.url + f"collections/{DEMO_ID}_labels/items", params={"limit": 1000}, timeout=10
    )
    lfeats = lab.json()["features"]
    assert len(lfeats) == 72
    assert all(
        f["properties"]["datetime"] is None and f["properties"]["start_datetime"] for f in lfeats
    )
    commons = {f["assets"]["documentation"]["href"] for f in lfeats}
    assert len(commons) == 1  # one common file shared by every label item
    for f in (feats[0], lfeats[-1]):
        for asset in f["assets"].values():
            data = requests.get(asset["href"], timeout=10).content
            assert len(data) == asset["file:size"]
            assert asset["file:checksum"] == "1220" + hashlib.sha256(data).hexdigest()
    info = requests.get(hub.url + f"catalog/{DEMO_ID}/info", timeout=10).json()
    assert 1_000_000 < info["estimated_dataset_size"] < 4_000_000


def test_make_sample_data_is_deterministic(tmp_path: Path) -> None:
    """The script regenerates exactly the bundled files (made by an earlier, separate run)."""
    script = ROOT / "scripts" / "make_sample_data.py"
    subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path)], check=True, capture_output=True
    )
    fresh = tmp_path / "datasets" / DEMO_ID
    bundled = bundled_data_dir() / "datasets" / DEMO_ID
    files = sorted(str(p.relative_to(fresh)) for p in fresh.rglob("*") if p.is_file())
    assert len(files) > 500
    assert files == sorted(str(p.relative_to(bundled)) for p in bundled.rglob("*") if p.is_file())
    _, mismatch, errors = filecmp.cmpfiles(fresh, bundled, files, shallow=False)
    assert not mismatch and not errors


def test_user_data_dir(tmp_path: Path) -> None:
    ds = tmp_path / "my_fields"
    (ds / "col" / "item1").mkdir(parents=True)
    (ds / "col" / "item1" / "data.csv").write_text("a,b\n1,2\n")
    (ds / "catalog.json").write_text(json.dumps({
        "type": "Catalog", "id": "my_fields", "stac_version": "1.0.0", "description": "Mine",
        "links": [{"rel": "child", "href": "./col/collection.json"}],
    }))  # fmt: skip
    (ds / "col" / "collection.json").write_text(json.dumps({
        "type": "Collection", "id": "my_fields_labels", "stac_version": "1.0.0",
        "description": "labels", "license": "CC0-1.0",
        "extent": {"spatial": {"bbox": [[1, 2, 3, 4]]}, "temporal": {"interval": [[None, None]]}},
        "links": [{"rel": "item", "href": "item1/item1.json"}],
    }))  # fmt: skip
    (ds / "col" / "item1" / "item1.json").write_text(json.dumps({
        "type": "Feature", "stac_version": "1.0.0", "id": "item1", "bbox": [1, 2, 3, 4],
        "geometry": None, "properties": {"datetime": "2022-05-01T00:00:00Z"}, "links": [],
        "assets": {"table": {"href": "./data.csv", "type": "text/csv"},
                   "remote": {"href": "https://radiantearth.blob.core.windows.net/mlhub/x/y.tif"}},
    }))  # fmt: skip
    with serve(tmp_path) as own:
        assert own.dataset_ids() == ["my_fields"]
        rec = requests.get(own.url + "datasets/my_fields", timeout=10).json()
        assert rec["title"] == "Mine"
        assert rec["collections"] == [
            {"id": "my_fields_labels", "types": ["labels"], "license": "CC0-1.0"}
        ]
        assert rec["bbox"]["type"] == "MultiPolygon"
        item = requests.get(own.url + "collections/my_fields_labels/items/item1", timeout=10).json()
        table = item["assets"]["table"]["href"]
        assert table == own.storage_url + "files/my_fields/col/item1/data.csv"
        assert requests.get(table, timeout=10).text == "a,b\n1,2\n"
        remote = requests.get(item["assets"]["remote"]["href"], timeout=10)
        assert remote.status_code == 200 and remote.content[:4] == b"II*\0"
        tar = requests.get(own.url + "catalog/my_fields", timeout=10).content
        with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
            assert sorted(tf.getnames()) == [
                "my_fields", "my_fields/catalog.json", "my_fields/my_fields_labels",
                "my_fields/my_fields_labels/collection.json", "my_fields/my_fields_labels/item1",
                "my_fields/my_fields_labels/item1/item1.json",
            ]  # fmt: skip
        assert (
            requests.get(
                own.storage_url + "files/my_fields/../../etc/passwd", timeout=10
            ).status_code
            == 404
        )


def test_synthetic_dataset(tmp_path: Path) -> None:
    root = make_synthetic_dataset(tmp_path, "bench_small", 50, 3, 1024, 4096, seed=3)
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == [
        "catalog.json", "collection.json", "items.jsonl", "mlhub-dataset.json",
    ]  # fmt: skip
    with serve(tmp_path) as own:
        page = requests.get(
            own.url + "collections/bench_small_source/items", params={"limit": 100}, timeout=10
        )
        feats = page.json()["features"]
        assert len(feats) == 50
        hrefs = [a for f in feats for a in f["assets"].values()]
        assert len(hrefs) == 150
        s = requests.Session()
        for asset in hrefs[::7]:
            data = s.get(asset["href"], timeout=10).content
            assert 1024 <= len(data) <= 4096 and len(data) == asset["file:size"]
            assert asset["file:checksum"] == "1220" + hashlib.sha256(data).hexdigest()
        bad = asset["href"].replace("bench_small_0000049", "bench_small_0000050")
        assert s.get(bad, timeout=10).status_code == 404  # beyond the dataset
        info = requests.get(own.url + "catalog/bench_small/info", timeout=10).json()
        assert info["estimated_dataset_size"] == sum(a["file:size"] for a in hrefs)
        tar = requests.get(own.url + "catalog/bench_small", timeout=10).content
        with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
            assert sum(1 for n in tf.getnames() if n.count("/") == 3) == 50


def test_synthetic_big_files(tmp_path: Path) -> None:
    make_synthetic_dataset(tmp_path, "bench_big", 2, 1, 20 << 20, 20 << 20, kinds=("bin",))
    with serve(tmp_path) as own:
        item = requests.get(own.url + "collections/bench_big_source/items", timeout=10).json()[
            "features"
        ][0]
        asset = item["assets"]["asset_0"]
        r = requests.get(asset["href"], stream=True, timeout=10)
        h = hashlib.sha256()
        n = 0
        for chunk in r.iter_content(1 << 20):
            h.update(chunk)
            n += len(chunk)
        assert n == 20 << 20 == asset["file:size"]
        assert "1220" + h.hexdigest() == asset["file:checksum"]
        assert "Content-MD5" not in r.headers  # like Azure for blobs uploaded in blocks
        part = requests.get(asset["href"], headers={"Range": "bytes=10485760-10485859"}, timeout=10)
        assert part.content == own.asset_bytes(asset["href"])[10485760:10485860]


def test_synthetic_startup_is_fast(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    make_synthetic_dataset(tmp_path, "bench_10k", 2000, 5, checksums=False)
    made = time.perf_counter() - t0
    t0 = time.perf_counter()
    with serve(tmp_path) as own:
        started = time.perf_counter() - t0
        href = own.storage_url + "mlhub/bench_10k/bench_10k_source/bench_10k_0001999/asset_4.npy"
        assert requests.get(href, timeout=10).status_code == 200
    assert made < 10 and started < 2
