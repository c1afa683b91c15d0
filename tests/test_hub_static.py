"""Static STAC catalogues on the storage origin, walked with pystac over HTTP."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pystac
import pytest
import requests

from mlhub_widgets.hub import Hub, bundled_data_dir, serve
from mlhub_widgets.hub.sample import make_synthetic_dataset


def tarball_items(hub: Hub, ds_id: str) -> dict[str, dict[str, object]]:
    """``{item id: item}`` of the dataset's catalogue tarball."""
    data = hub.asset_bytes(hub.storage_url + f"mlhub/catalogs/{ds_id}.tar.gz")
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for m in tf:
            if m.isfile() and m.name.endswith(".json") and "/._" not in m.name:
                fh = tf.extractfile(m)
                assert fh is not None
                obj = json.loads(fh.read())
                if obj.get("type") == "Feature" and "assets" in obj:
                    out[obj["id"]] = obj
    return out


def walk(url: str) -> list[pystac.Item]:
    catalog = pystac.Catalog.from_file(url)
    return list(catalog.get_items(recursive=True))


@pytest.mark.parametrize(
    "ds_id", ["mlhub_widgets_demo_crops", "su_sar_moisture_content_main", "nasa_marine_debris"]
)
def test_pystac_walk_matches_tarball(hub: Hub, ds_id: str) -> None:
    url = hub.static_catalog_url(ds_id)
    assert url == f"{hub.storage_url}catalogs/{ds_id}/catalog.json"
    items = walk(url)
    expected = tarball_items(hub, ds_id)
    assert sorted(i.id for i in items) == sorted(expected)
    hrefs = []
    for item in items:
        assert item.get_self_href() is not None
        assert str(item.get_self_href()).startswith(f"{hub.storage_url}catalogs/{ds_id}/")
        assert item.collection_id == expected[item.id]["collection"]
        assert item.geometry == expected[item.id]["geometry"]
        for asset in item.assets.values():
            assert asset.href.startswith(hub.storage_url), asset.href
            hrefs.append(asset.href)
    s = requests.Session()
    for href in sorted(set(hrefs))[:: max(1, len(set(hrefs)) // 8)]:
        r = s.get(href, timeout=10)
        assert r.status_code == 200, href


def test_documents_are_the_tarballs_with_relative_links(hub: Hub) -> None:
    base = hub.static_catalog_url("mlhub_widgets_demo_crops").rsplit("/", 1)[0] + "/"
    catalog = requests.get(base + "catalog.json", timeout=10)
    assert catalog.headers["Content-Type"] == "application/json"
    links = catalog.json()["links"]
    assert all("://" not in link["href"] for link in links)
    data = hub.asset_bytes(hub.storage_url + "mlhub/catalogs/mlhub_widgets_demo_crops.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        names = [m.name for m in tf if m.isfile()]
        for name in names[:: len(names) // 10]:
            fh = tf.extractfile(name)
            assert fh is not None
            rel = name.split("/", 1)[1]
            got = requests.get(base + rel, timeout=10)
            assert got.status_code == 200
            assert got.json() == json.loads(fh.read())  # the same document as in the tarball
    etag = catalog.headers["ETag"]
    assert (
        requests.get(base + "catalog.json", headers={"If-None-Match": etag}, timeout=10).status_code
        == 304
    )
    assert requests.head(base + "catalog.json", timeout=10).headers["Content-Length"] == str(
        len(catalog.content)
    )


def test_tarball_members_are_served(hub: Hub) -> None:
    base = f"{hub.storage_url}catalogs/su_sar_moisture_content_main/su_sar_moisture_content/"
    got = requests.get(f"{base}su_sar_moisture_content_0005/labels.geojson", timeout=10)
    assert got.status_code == 200
    assert got.headers["Content-Type"] == "application/geo+json"
    tarball = bundled_data_dir() / "datasets/su_sar_moisture_content_main/catalog.tar.gz"
    with tarfile.open(tarball) as tf:
        fh = tf.extractfile(
            "su_sar_moisture_content_main/su_sar_moisture_content/"
            "su_sar_moisture_content_0005/labels.geojson"
        )
        assert fh is not None
        assert got.content == fh.read()  # served as it is in the tarball


def write_tarball_dataset(root: Path) -> None:
    """A prebuilt catalogue tarball whose item has a relative asset href and its file."""
    docs = {
        "tb/catalog.json": {"type": "Catalog", "id": "tb", "stac_version": "1.0.0",
                            "description": "d", "links": [
                                {"rel": "child", "href": "./col/collection.json"}]},
        "tb/col/collection.json": {
            "type": "Collection", "id": "tb_col", "stac_version": "1.0.0", "description": "c",
            "license": "CC0-1.0", "links": [{"rel": "item", "href": "./i1/i1.json"}],
            "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]},
                       "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]}}},
        "tb/col/i1/i1.json": {
            "type": "Feature", "stac_version": "1.0.0", "id": "i1", "collection": "tb_col",
            "geometry": {"type": "Point", "coordinates": [0.5, 0.5]}, "bbox": [0.5, 0.5, 0.5, 0.5],
            "properties": {"datetime": "2020-01-02T00:00:00Z"},
            "links": [{"rel": "collection", "href": "../collection.json"}],
            "assets": {"data": {"href": "./data.txt", "type": "text/plain"},
                       "doc": {"href": "../../doc.txt"}}},
    }  # fmt: skip
    files = {name: json.dumps(doc).encode() for name, doc in docs.items()}
    files["tb/col/i1/data.txt"] = b"hello\n"
    files["tb/doc.txt"] = b"documentation\n"
    (root / "tb").mkdir()
    with tarfile.open(root / "tb" / "catalog.tar.gz", "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize(
    "path",
    [
        "catalogs/nope/catalog.json",
        "catalogs/ref_agrifieldnet_competition_v1/catalog.json",  # metadata only
        "catalogs/mlhub_widgets_demo_crops/nope/collection.json",
        "catalogs/mlhub_widgets_demo_crops/mlhub_widgets_demo_crops_source/x/x.json",
        "catalogs/mlhub_widgets_demo_crops/",
        "catalogs/nasa_marine_debris/nope.json",
    ],
)
def test_unknown_documents(hub: Hub, path: str) -> None:
    r = requests.get(hub.storage_url + path, timeout=10)
    assert r.status_code == 404


def test_no_dot_segments(hub: Hub) -> None:
    # HTTP clients remove dot segments themselves; the resolver refuses them too.
    assert hub.static.blob("catalogs/mlhub_widgets_demo_crops/catalog.json") is not None
    for path in (
        "catalogs/mlhub_widgets_demo_crops/mlhub_widgets_demo_crops_source/../catalog.json",
        "catalogs/nasa_marine_debris/./catalog.json",
        "catalogs/nasa_marine_debris/../nasa_marine_debris/catalog.json",
    ):
        assert hub.static.blob(path) is None


def test_own_datasets(tmp_path: Path) -> None:
    make_synthetic_dataset(tmp_path, "syn_static", 120, 2, checksums=False)
    write_tarball_dataset(tmp_path)
    with serve(tmp_path, cache_dir=False) as own:
        (item,) = walk(own.static_catalog_url("tb"))
        base = f"{own.storage_url}catalogs/tb/"
        assert item.assets["data"].href == f"{base}col/i1/data.txt"  # relative in the tarball
        assert item.assets["doc"].href == f"{base}doc.txt"
        assert requests.get(item.assets["data"].href, timeout=10).content == b"hello\n"
        assert requests.get(item.assets["doc"].href, timeout=10).content == b"documentation\n"
        own.reset_counters()
        items = walk(own.static_catalog_url("syn_static"))
        assert [i.id for i in items] == [f"syn_static_{n:07d}" for n in range(120)]
        assert sorted(i.id for i in items) == sorted(tarball_items(own, "syn_static"))
        assert own.count("static") == 122  # catalog, collection, 120 items
        first = items[0].assets["asset_0"]
        assert first.href.startswith(own.storage_url + "mlhub/syn_static/")
        assert requests.get(first.href, timeout=10).content == own.asset_bytes(first.href)
        with pytest.raises(KeyError):
            own.static_catalog_url("nope")
