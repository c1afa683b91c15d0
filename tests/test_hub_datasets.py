"""Every dataset the bundled hub lists can be downloaded, or its record says why not.

Datasets recorded only as metadata get a generated catalogue (``mlhub_widgets/hub/generated.py``):
these tests read every catalogue as a client does (``/catalog/{id}/info``, the tarball, the
items endpoint, the static catalogue, ``/search``, the assets) over real HTTP, and download one
generated dataset with the ``mlhub`` command.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import posixpath
import sqlite3
import subprocess
import sys
import tarfile
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests

from mlhub_widgets.hub import Hub
from mlhub_widgets.hub.store import METADATA_ONLY_FIELD, Store
from tests.test_hub_data import check_geotiff, check_png, tiff_tags

JSON = dict[str, Any]
STORE = Store()
METADATA_ONLY = ["ref_agrifieldnet_competition_v1"]  # none of its collections was recorded
DOWNLOADABLE = [d for d in STORE.datasets if d not in METADATA_ONLY]
GENERATED = [d for d in STORE.datasets if STORE.datasets[d].generated_from]
SMALL = "microsoft_chesapeake"


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def unpack(hub: Hub, http: requests.Session, ds_id: str, dest: Path) -> tuple[JSON, Path]:
    """``/catalog/{id}/info`` and the root ``catalog.json`` of the unpacked tarball."""
    r = http.get(f"{hub.url}catalog/{ds_id}/info", timeout=30)
    assert r.status_code == 200, r.text
    info = r.json()
    r = http.get(f"{hub.url}catalog/{ds_id}", timeout=60)
    assert r.status_code == 200 and r.history[0].status_code == 303
    assert len(r.content) == info["stac_catalog_size"]
    with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:gz") as tf:
        tf.extractall(dest, filter="data")
    roots = sorted(dest.rglob("catalog.json"), key=lambda p: len(p.parts))
    return info, roots[0]


def walk(root: Path) -> dict[tuple[str, str], tuple[Path, JSON]]:
    """``{(collection, item id): (file, item)}`` following child and item links."""
    out: dict[tuple[str, str], tuple[Path, JSON]] = {}
    catalog = json.loads(root.read_text())
    for link in catalog["links"]:
        if link["rel"] != "child":
            continue
        col_path = (root.parent / link["href"]).resolve()
        col = json.loads(col_path.read_text())
        for ilink in col["links"]:
            if ilink["rel"] == "item":
                path = (col_path.parent / ilink["href"]).resolve()
                item = json.loads(path.read_text())
                assert item["collection"] == col["id"]
                out[(col["id"], item["id"])] = (path, item)
    return out


def check_bytes(data: bytes, href: str, item: JSON) -> None:
    """``data`` is a valid file of the type its name says, placed on its item."""
    props = item["properties"]
    west, south, east, north = item["bbox"][:2] + item["bbox"][-2:]
    ext = posixpath.splitext(urlsplit(href).path)[1]
    if ext == ".tif":
        width, height, _, bits = check_geotiff(data)
        tags = tiff_tags(data)
        assert tags[33922][3:5] == pytest.approx((west, north))  # the tiepoint: on its item
        assert width * tags[33550][0] == pytest.approx(east - west)
        if props.get("label:type") == "raster" and bits == 8:
            start = tags[273][0]
            values = set(np.frombuffer(data[start : start + width * height], np.uint8).tolist())
            for cls in props.get("label:classes") or []:
                assert values <= set(cls["classes"])
    elif ext == ".png":
        check_png(data)
    elif ext == ".geojson":
        fc = json.loads(data)
        assert fc["type"] == "FeatureCollection" and fc["features"]
        names = props.get("label:properties") or []
        classes = {c["name"]: set(c["classes"]) for c in props.get("label:classes") or []}
        for feat in fc["features"]:
            xs = [p[0] for p in feat["geometry"]["coordinates"][0]]
            ys = [p[1] for p in feat["geometry"]["coordinates"][0]]
            assert west - 1e-9 <= min(xs) and max(xs) <= east + 1e-9
            assert south - 1e-9 <= min(ys) and max(ys) <= north + 1e-9
            for name in names:
                value = feat["properties"][name]
                assert name not in classes or value in classes[name]
    elif ext == ".pdf":
        assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    elif ext == ".csv":
        rows = list(csv.reader(io.StringIO(data.decode("ascii"))))
        assert len(rows) > 1 and {len(r) for r in rows} == {len(rows[0])}
    else:
        pytest.fail(f"unexpected generated asset {href}")


def test_every_listed_dataset_is_downloadable_or_says_why(hub: Hub, http: requests.Session) -> None:
    records = http.get(hub.url + "datasets", timeout=30).json()
    assert [r["id"] for r in records] == list(STORE.datasets) and len(records) == 32
    only = [r["id"] for r in records if METADATA_ONLY_FIELD in r]
    assert only == METADATA_ONLY
    for ds_id in METADATA_ONLY:
        rec = http.get(f"{hub.url}datasets/{ds_id}", timeout=30).json()
        reason = rec[METADATA_ONLY_FIELD]
        assert reason.startswith("Metadata only: ") and "no STAC catalogue" in reason
        r = http.get(f"{hub.url}catalog/{ds_id}/info", timeout=30)
        assert r.status_code == 404
        assert r.json()["detail"] == f"Dataset {ds_id} has no STAC catalogue. {reason}"
        assert http.get(f"{hub.url}catalog/{ds_id}", timeout=30).status_code == 404
        static = f"{hub.storage_url}catalogs/{ds_id}/catalog.json"
        assert http.get(static, timeout=30).status_code == 404
    for ds_id in DOWNLOADABLE:
        r = http.get(f"{hub.url}catalog/{ds_id}/info", timeout=30)
        assert r.status_code == 200, (ds_id, r.text)


@pytest.mark.parametrize("ds_id", DOWNLOADABLE)
def test_catalogue_items_and_assets(
    hub: Hub, http: requests.Session, ds_id: str, tmp_path: Path
) -> None:
    info, root = unpack(hub, http, ds_id, tmp_path)
    items = walk(root)
    assert items
    cids = list(dict.fromkeys(cid for cid, _ in items))
    # the items endpoint and /search serve the catalogue's items
    for cid in cids:
        page = http.get(f"{hub.url}collections/{cid}/items", params={"limit": 10000}, timeout=30)
        assert {f["id"] for f in page.json()["features"]} == {i for c, i in items if c == cid}
    found = http.post(hub.url + "search", json={"collections": cids, "limit": 10000}, timeout=60)
    assert {(f["collection"], f["id"]) for f in found.json()["features"]} == set(items)
    generated = ds_id in GENERATED
    seen: dict[str, int] = {}
    for (cid, item_id), (path, item) in items.items():
        if generated:  # the static catalogue holds the same documents
            url = f"{hub.storage_url}catalogs/{ds_id}/{cid}/{item_id}/{item_id}.json"
            assert http.get(url, timeout=30).json() == item
        for link in item["links"]:
            if link["rel"] == "source":  # resolves to an item of the same dataset
                target = (path.parent / link["href"]).resolve()
                source = json.loads(target.read_text())
                assert (source["collection"], source["id"]) in items
        for asset in item["assets"].values():
            href = asset["href"]
            if href in seen:
                continue
            if generated:
                assert isinstance(asset.get("file:size"), int), (item_id, asset)
            if "file:size" not in asset:  # recorded without sizes: served all the same
                assert http.head(href, timeout=30).status_code == 200, href
                seen[href] = 0
                continue
            data = http.get(href, timeout=30).content
            assert len(data) == asset["file:size"], href
            assert asset["file:checksum"] == "1220" + hashlib.sha256(data).hexdigest()
            if generated:
                check_bytes(data, href, item)
            seen[href] = len(data)
    if generated:
        assert info["estimated_dataset_size"] == sum(seen.values())


def label_years(props: JSON) -> tuple[datetime, datetime]:
    start = props.get("start_datetime") or props["datetime"]
    end = props.get("end_datetime") or start
    lo = datetime.fromisoformat(start.replace("Z", "+00:00"))
    hi = datetime.fromisoformat(end.replace("Z", "+00:00"))
    return datetime(lo.year, 1, 1, tzinfo=UTC), datetime(hi.year, 12, 31, 23, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize("ds_id", GENERATED)
def test_labels_pair_with_imagery_of_the_same_area_and_years(
    hub: Hub, http: requests.Session, ds_id: str
) -> None:
    rec = http.get(f"{hub.url}datasets/{ds_id}", timeout=30).json()
    by_id: dict[tuple[str, str], JSON] = {}
    for col in rec["collections"]:
        page = http.get(f"{hub.url}collections/{col['id']}/items?limit=10000", timeout=30).json()
        by_id |= {(col["id"], f["id"]): f for f in page["features"]}
    has_imagery = any("source_imagery" in c["types"] for c in rec["collections"])
    labels = [f for f in by_id.values() if "label:type" in f["properties"]]
    assert labels
    checked = 0
    for label in labels:
        props = label["properties"]
        assert props["label:type"] in ("vector", "raster")
        assert "label:description" in props and "labels" in label["assets"]
        if props["label:type"] == "vector":
            assert props["label:properties"]
        sources = [link["href"] for link in label["links"] if link["rel"] == "source"]
        assert bool(sources) == has_imagery, label["id"]
        lo, hi = label_years(props)
        for href in sources:
            tail = href.removeprefix(hub.url).split("/")
            assert tail[0] == "collections" and tail[2] == "items"
            source = by_id[(tail[1], tail[3])]  # a source item of the same dataset...
            assert source["bbox"] == label["bbox"]  # ...on the same tile...
            when = datetime.fromisoformat(source["properties"]["datetime"].replace("Z", "+00:00"))
            assert lo <= when <= hi  # ...in the labels' years
            if checked < 3:  # and the API link itself resolves
                assert http.get(href, timeout=30).json()["id"] == tail[3]
                checked += 1


DIGEST = """
import hashlib, json
from mlhub_widgets.hub.store import Store
store = Store()
h = hashlib.sha256()
for ds in store.datasets.values():
    if ds.generated_from:
        gen = store.generator(ds)
        for cid in gen.collection_ids:
            for item in gen.items(cid):
                h.update(json.dumps(item, sort_keys=True).encode())
                for asset in item["assets"].values():
                    path = asset["href"].split(".net/", 1)[1]
                    h.update(gen.asset_bytes(path) or b"?")
print(h.hexdigest())
"""


def test_generated_catalogues_are_deterministic_and_small() -> None:
    runs = {
        subprocess.run(
            [sys.executable, "-c", DIGEST],
            env=dict(os.environ, PYTHONHASHSEED=seed),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(runs) == 1  # same items and bytes whatever the hash seed
    total = 0
    for ds_id in GENERATED:
        gen = STORE.generator(STORE.datasets[ds_id])
        for cid in gen.collection_ids:
            items = gen.items(cid)
            recorded = cid == "ref_african_crops_kenya_02_source"  # 52 recorded items
            assert 4 <= len(items) <= 12 or recorded, (cid, len(items))
            total += sum(a["file:size"] for i in items for a in i["assets"].values())
    assert total < 8_000_000  # every generated dataset together: a few MB


def test_mlhub_download_of_a_generated_dataset(hub: Hub, tmp_path: Path) -> None:
    env = dict(os.environ, MLHUB_ROOT_URL=hub.url, MLHUB_HOME=str(tmp_path / "home"))

    def mlhub(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "mlhub_widgets.cli", *args]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)

    est = mlhub("download", SMALL, "-o", str(tmp_path / "est"), "--estimate")
    assert est.returncode == 0, est.stderr
    info = requests.get(f"{hub.url}catalog/{SMALL}/info", timeout=30).json()
    assert est.stdout.startswith(f"{SMALL}: 63 assets, ")
    assert "microsoft_chesapeake_lc: 5 assets" in est.stdout
    out = tmp_path / "data"
    run = mlhub("download", SMALL, "-o", str(out), "-q")
    assert run.returncode == 0, run.stderr
    assert "63 downloaded" in run.stdout and "0 failed" in run.stdout
    with sqlite3.connect(out / SMALL / "mlhub_assets.db") as con:
        rows = con.execute("SELECT path, url, checksum FROM assets WHERE selected = 1").fetchall()
    assert len(rows) == 63
    total = 0
    for path, url, checksum in rows:
        data = (out / SMALL / path).read_bytes()
        assert data == hub.asset_bytes(url)  # byte-identical
        assert checksum == "1220" + hashlib.sha256(data).hexdigest()
        total += len(data)
    assert total == info["estimated_dataset_size"]


def test_a_stac_reader_pairs_labels_with_their_source_imagery(hub: Hub) -> None:
    import pystac

    with warnings.catch_warnings():  # pystac calls its label extension unmaintained
        warnings.simplefilter("ignore", DeprecationWarning)
        from pystac.extensions.label import LabelExtension

    catalog = pystac.Catalog.from_file(hub.static_catalog_url(SMALL))
    items = list(catalog.get_items(recursive=True))
    labels = [i for i in items if LabelExtension.has_extension(i)]
    assert {i.collection_id for i in labels} == {
        "microsoft_chesapeake_lc",
        "microsoft_chesapeake_nlcd",
        "microsoft_chesapeake_buildings",
    }
    for item in labels:
        ext = LabelExtension.ext(item)
        assert ext.label_type in ("vector", "raster")
        assert ext.label_classes and ext.label_description
        sources = [link.resolve_stac_object().target for link in item.get_links("source")]
        assert sources and all(isinstance(s, pystac.Item) for s in sources)
        assert {s.collection_id for s in sources} <= {
            "microsoft_chesapeake_naip",
            "microsoft_chesapeake_landsat_leaf_on",
            "microsoft_chesapeake_landsat_leaf_off",
        }
        assert all(s.bbox == item.bbox for s in sources)


def test_a_folder_dataset_keeps_its_source_links_everywhere(
    hub: Hub, http: requests.Session, tmp_path: Path
) -> None:
    """The demo dataset's label items link their imagery (relative ``source`` links on disk): the
    API serves them as API URLs, the tarball and the static catalogue as relative paths."""
    ds_id, labels = "mlhub_widgets_demo_crops", "mlhub_widgets_demo_crops_labels"
    folder = hub.store.datasets[ds_id].folder
    assert folder is not None
    on_disk: dict[str, list[str]] = {}
    for path in sorted((folder / labels).glob("*/*.json")):
        item = json.loads(path.read_text())
        on_disk[item["id"]] = [link["href"] for link in item["links"] if link["rel"] == "source"]
    assert len(on_disk) == 72 and all(len(hrefs) == 2 for hrefs in on_disk.values())

    def ref(href: str) -> str:  # the source item's id, from either form of link
        return href.rstrip("/").rsplit("/", 1)[1].removesuffix(".json")

    page = http.get(f"{hub.url}collections/{labels}/items", params={"limit": 1000}, timeout=30)
    for feature in page.json()["features"]:
        api = [link["href"] for link in feature["links"] if link["rel"] == "source"]
        assert [ref(h) for h in api] == [ref(h) for h in on_disk[feature["id"]]]
        assert all(h.startswith(f"{hub.url}collections/") for h in api)
    assert http.get(api[0], timeout=30).json()["id"] == ref(api[0])
    _, root = unpack(hub, http, ds_id, tmp_path)
    copies = walk(root)
    for item_id, hrefs in on_disk.items():
        path, item = copies[(labels, item_id)]
        copied = [link["href"] for link in item["links"] if link["rel"] == "source"]
        assert copied == hrefs
        assert all((path.parent / h).resolve().is_file() for h in copied)
        static = f"{hub.storage_url}catalogs/{ds_id}/{labels}/{item_id}/{item_id}.json"
        assert http.get(static, timeout=30).json()["links"] == item["links"]
