"""Downloaded datasets, ready for training: the local catalogue ``mlhub download`` writes, and
``mw.open_local()`` (``.catalog``, ``.items()``, ``.pairs()``, ``.to_xarray()``).

Each dataset is downloaded from the bundled hub over real HTTP; ``pairs()`` is checked against
the label ``source`` links of the recorded ``nasa_marine_debris`` catalogue (as the hub serves
its tarball) and of the generated demo dataset (as they are on the hub's disk); the odc-stac
cube against rasterio reads of the same files.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pystac
import pytest
import rasterio
import requests
from shapely.geometry import shape

import mlhub_widgets as mw
from mlhub_widgets.download.local_catalog import ALTERNATE_ASSETS
from mlhub_widgets.exceptions import MissingDependencyError
from mlhub_widgets.hub import Hub
from mlhub_widgets.sources import StacApiSource

from .stac_schemas import offline_schemas, stac_validator_errors, walk_stac

DEMO = "mlhub_widgets_demo_crops"
DEMO_LABELS = f"{DEMO}_labels"
DEMO_SOURCE = f"{DEMO}_source"
NASA = "nasa_marine_debris"
JSON = dict[str, Any]


@pytest.fixture(scope="module")
def downloads(hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both datasets downloaded whole, once for the module: dataset id → its folder."""
    out = tmp_path_factory.mktemp("downloads")
    folders = {}
    for ds in (DEMO, NASA):
        summary = mw.download_dataset(ds, out, root_url=hub.url, progress=False)
        assert summary.complete and summary.local_catalog == out / ds / "catalog.json"
        folders[ds] = out / ds
    return folders


def catalogue_items(root: Path) -> Iterator[tuple[Path, JSON]]:
    """Every item document of a catalogue on disk (path, JSON)."""
    for href, doc in walk_stac(root):
        if doc.get("type") == "Feature":
            yield Path(href), doc


def served_tarball_items(hub: Hub, ds: str, dest: Path) -> dict[str, tuple[Path, JSON]]:
    """The items of the catalogue tarball the hub serves (the reference), by id."""
    r = requests.get(f"{hub.url}catalog/{ds}", timeout=60)
    r.raise_for_status()
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        tar.extractall(dest, filter="data")
    return {doc["id"]: (path, doc) for path, doc in catalogue_items(dest / ds / "catalog.json")}


# -- the catalogue mlhub download writes ------------------------------------------------------


def test_download_makes_the_catalogue_point_at_the_files(
    hub: Hub, downloads: dict[str, Path], tmp_path: Path
) -> None:
    served = served_tarball_items(hub, NASA, tmp_path / "served")
    local = dict(
        (doc["id"], (p, doc)) for p, doc in catalogue_items(downloads[NASA] / "catalog.json")
    )
    assert local.keys() == served.keys() and len(local) == 1412
    for item_id, (path, doc) in local.items():
        original = served[item_id][1]
        assert ALTERNATE_ASSETS in doc["stac_extensions"]
        assert doc["assets"].keys() == original["assets"].keys()
        for key, asset in doc["assets"].items():
            href = asset["href"]
            assert not href.startswith(("http:", "https:")) and not os.path.isabs(href)
            assert (path.parent / href).is_file(), (item_id, key, href)
            # the server's href is kept as the alternate, everything else as it was
            assert asset["alternate"] == {"http": {"href": original["assets"][key]["href"]}}
            rest = {k: v for k, v in asset.items() if k not in ("href", "alternate")}
            assert rest == {k: v for k, v in original["assets"][key].items() if k not in ("href",)}
        assert doc["links"] == original["links"] and doc["properties"] == original["properties"]


def test_the_local_catalogue_moves_with_its_files_and_is_not_rewritten_again(
    hub: Hub, downloads: dict[str, Path], tmp_path: Path
) -> None:
    root = downloads[DEMO] / "catalog.json"
    stamps = {p: p.stat().st_mtime_ns for p, _ in catalogue_items(root)}
    again = mw.download_dataset(DEMO, downloads[DEMO].parent, root_url=hub.url, progress=False)
    assert again.assets_downloaded == 0 and again.local_catalog == root
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # a no-op re-run writes nothing
    moved = tmp_path / "elsewhere" / DEMO
    shutil.copytree(downloads[DEMO], moved)
    catalog = pystac.Catalog.from_file(str(moved / "catalog.json"))
    items = list(catalog.get_items(recursive=True))
    assert len(items) == 216
    for item in items:
        for asset in item.assets.values():
            href = asset.get_absolute_href()
            assert href is not None and href.startswith(str(moved)) and Path(href).is_file()


@pytest.mark.parametrize(
    ("ds", "recorded"),
    [(DEMO, set()), (NASA, {"'label:properties' is a required property"})],
)
def test_the_local_catalogue_is_valid_stac(
    downloads: dict[str, Path], ds: str, recorded: set[str]
) -> None:
    findings: set[str] = set()
    count = 0
    with offline_schemas() as schemas:
        for _href, doc in walk_stac(downloads[ds] / "catalog.json"):
            count += 1
            errors = stac_validator_errors(doc)
            findings |= {str(e["error_message"]).split(". Error is in")[0] for e in errors}
        assert not schemas.missing, sorted(schemas.missing)
    assert count == {DEMO: 219, NASA: 1415}[ds]
    assert findings == recorded  # nasa: the recorded label items, as served (docs/stac-api.md)


# -- open_local ---------------------------------------------------------------------------------


def test_open_local_reads_the_catalogue(downloads: dict[str, Path]) -> None:
    ds = mw.open_local(downloads[DEMO])
    assert isinstance(ds, mw.LocalDataset)
    assert (ds.id, len(ds), ds.collections) == (DEMO, 216, [DEMO_SOURCE, DEMO_LABELS])
    assert mw.open_local(downloads[DEMO] / "catalog.json").root == ds.root
    catalog = ds.catalog
    assert isinstance(catalog, pystac.Catalog)
    items = list(catalog.get_items(recursive=True))
    assert len(items) == 216
    hrefs = [a.href for i in items for a in i.assets.values()]
    assert all(os.path.isabs(h) and Path(h).is_file() for h in hrefs)
    assert ds.unreadable == []


def test_items_gives_every_asset_its_local_path(downloads: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / DEMO
    shutil.copytree(downloads[DEMO], copy)
    frame = mw.open_local(copy).items()
    docs = [doc for _, doc in walk_stac(copy / "catalog.json")]
    expected = sum(len(doc.get("assets") or {}) for doc in docs)  # items' and collections'
    assert len(frame) == expected and frame["present"].all()
    own = frame[frame["item"].isna()]
    assert list(own["collection"]) == [DEMO_LABELS] and list(own["asset"]) == ["documentation"]
    assert list(frame.columns) == list(mw.local.ASSET_COLUMNS)
    row = frame[(frame["item"] == f"{DEMO_SOURCE}_ke_00_20200412") & (frame["asset"] == "image")]
    (path,) = row["path"]
    assert path == str(copy / DEMO_SOURCE / f"{DEMO_SOURCE}_ke_00_20200412" / "image.tif")
    assert row["type"].iloc[0].startswith("image/tiff") and row["roles"].iloc[0] == ["data"]
    assert row["datetime"].iloc[0] == pd.Timestamp("2020-04-12T10:30:00Z")
    Path(path).unlink()  # a file deleted since the download: shown, not hidden
    again = mw.open_local(copy).items(DEMO_SOURCE)
    gone = again[~again["present"]]
    assert list(gone["path"]) == [path]
    assert set(again["collection"]) == {DEMO_SOURCE}


def test_pairs_follow_the_recorded_source_links_of_nasa_marine_debris(
    hub: Hub, downloads: dict[str, Path], tmp_path: Path
) -> None:
    served = served_tarball_items(hub, NASA, tmp_path / "served")
    pairs = mw.open_local(downloads[NASA]).pairs()
    assert list(pairs.columns) == list(mw.local.PAIR_COLUMNS)
    labels = {i: (p, d) for i, (p, d) in served.items() if d["collection"] == f"{NASA}_labels"}
    assert len(pairs) == len(labels) == 706
    for row in pairs.itertuples():
        path, label = labels[row.id]
        links = [link["href"] for link in label["links"] if link["rel"] == "source"]
        expected = [json.loads((path.parent / h).read_text())["id"] for h in links]
        assert row.source_ids == expected and len(expected) == 1
        assert row.source_collections == [f"{NASA}_source"]
        assert row.datetime == pd.Timestamp(label["properties"]["datetime"])
        assert row.geometry.equals(shape(label["geometry"]))
        folder = downloads[NASA] / f"{NASA}_labels" / row.id
        assert row.label_assets["labels"] == str(folder / "labels.geojson")
        (source,) = row.source_assets
        assert source["image_geotiff"] == str(
            downloads[NASA] / f"{NASA}_source" / expected[0] / "image_geotiff.tif"
        )
        assert (row.missing_assets, row.unresolved_sources) == ([], [])


def test_pairs_follow_the_source_links_of_the_demo_dataset(
    hub: Hub, downloads: dict[str, Path]
) -> None:
    folder = hub.store.datasets[DEMO].folder
    assert folder is not None
    on_disk = {}
    for path in (folder / DEMO_LABELS).glob("*/*.json"):
        item = json.loads(path.read_text())
        links = [link["href"] for link in item["links"] if link["rel"] == "source"]
        on_disk[item["id"]] = [json.loads((path.parent / h).read_text()) for h in links]
    pairs = mw.open_local(downloads[DEMO]).pairs(DEMO_LABELS)
    assert sorted(pairs["id"]) == sorted(on_disk) and len(pairs) == 72
    for row in pairs.itertuples():
        sources = on_disk[row.id]
        assert row.source_ids == [s["id"] for s in sources] and len(sources) == 2
        assert row.source_datetimes == [pd.Timestamp(s["properties"]["datetime"]) for s in sources]
        year = row.start_datetime.year  # imagery of the labels' season
        assert all(t.year == year for t in row.source_datetimes)
        assert all(Path(a["image"]).is_file() for a in row.source_assets)
        with rasterio.open(row.source_assets[0]["image"]) as src:
            assert shape(row.geometry).equals_exact(
                shape(json.loads(json.dumps(_box(src.bounds)))), 1e-9
            )
        assert Path(row.label_assets["labels"]).is_file()
        assert (row.missing_assets, row.unresolved_sources) == ([], [])
    assert mw.open_local(downloads[DEMO]).pairs(DEMO_SOURCE).empty  # imagery has no labels


def _box(bounds: Any) -> JSON:
    w, s, e, n = bounds
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def test_pairs_of_a_partial_download_say_what_is_missing(hub: Hub, tmp_path: Path) -> None:
    summary = mw.download_dataset(
        DEMO,
        tmp_path,
        root_url=hub.url,
        progress=False,
        collection_filter={DEMO_LABELS: ["labels"]},  # no imagery
    )
    assert summary.complete
    pairs = mw.open_local(tmp_path / DEMO).pairs()
    assert len(pairs) == 72
    row = pairs.iloc[0]
    assert list(row["label_assets"]) == ["labels"]  # the files on disk only
    assert row["source_assets"] == [{}, {}] and len(row["source_ids"]) == 2
    assert sorted(row["missing_assets"]) == sorted(
        [f"{row['id']}/{k}" for k in ("documentation", "train_split", "test_split")]
        + [f"{s}/{k}" for s in row["source_ids"] for k in ("image", "thumbnail")]
    )


def test_pairs_of_a_download_from_a_stac_api(hub: Hub, tmp_path: Path) -> None:
    """The catalogue written from a STAC API keeps the API's source links (absolute URLs):
    pairs() resolves them to the items of the local catalogue."""
    with StacApiSource(hub.url) as source:
        summary = mw.download_dataset(
            DEMO, tmp_path, source=source, progress=False, bbox=[33.5, -5.0, 42.0, 5.0]
        )
    assert summary.complete and summary.local_catalog is not None
    pairs = mw.open_local(tmp_path / DEMO).pairs()
    assert len(pairs) == 12  # the Kenyan tiles
    assert all(len(ids) == 2 for ids in pairs["source_ids"])
    assert all(not missing for missing in pairs["missing_assets"])
    assert all(not left for left in pairs["unresolved_sources"])


@pytest.mark.parametrize("ds_id", ["microsoft_chesapeake", "ref_african_crops_kenya_02"])
def test_pairs_of_generated_datasets_match_the_apis_source_links(
    hub: Hub, tmp_path: Path, ds_id: str
) -> None:
    """The hub generates label items with ``source`` links for the datasets it has no recorded
    catalogue of: pairs() finds the same sources as the API serves."""
    summary = mw.download_dataset(ds_id, tmp_path, root_url=hub.url, progress=False)
    assert summary.complete
    record = requests.get(f"{hub.url}datasets/{ds_id}", timeout=30).json()
    served: dict[str, list[str]] = {}
    for col in record["collections"]:
        page = requests.get(
            f"{hub.url}collections/{col['id']}/items", params={"limit": 10000}, timeout=30
        ).json()
        for f in page["features"]:
            if "label:type" in f["properties"]:
                links = [link["href"] for link in f["links"] if link["rel"] == "source"]
                served[f["id"]] = [h.rstrip("/").rsplit("/", 1)[1] for h in links]
    pairs = mw.open_local(tmp_path / ds_id).pairs()
    assert served and dict(zip(pairs["id"], pairs["source_ids"], strict=True)) == served
    assert all(not left for left in pairs["unresolved_sources"])
    assert all(not missing for missing in pairs["missing_assets"])
    assert all(Path(p).is_file() for a in pairs["label_assets"] for p in a.values())


def test_open_local_errors(downloads: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no STAC catalogue at"):
        mw.open_local(tmp_path / "nothing")
    with pytest.raises(ValueError, match="open_local reads local folders only"):
        mw.open_local("s3://radiantearth/nasa_marine_debris/")
    ds = mw.open_local(downloads[DEMO])
    with pytest.raises(KeyError, match="is not in mlhub_widgets_demo_crops"):
        ds.pairs("nope")


# -- to_xarray ----------------------------------------------------------------------------------


def test_to_xarray_is_a_lazy_cube_equal_to_rasterio_reads(downloads: dict[str, Path]) -> None:
    ds = mw.open_local(downloads[DEMO])
    tile = [i for i in ds.stac_items(DEMO_SOURCE) if i.id.startswith(f"{DEMO_SOURCE}_br_00_")]
    bbox = list(tile[0].bbox or [])
    cube = ds.to_xarray(DEMO_SOURCE, "image", bbox=bbox)
    assert list(cube.data_vars) == ["image.1", "image.2", "image.3", "image.4"]
    assert all(hasattr(cube[v].data, "dask") for v in cube.data_vars)  # lazy
    assert cube.sizes["time"] == len(tile) == 4
    for item in tile:
        when = np.datetime64(item.datetime.replace(tzinfo=None))  # type: ignore[union-attr]
        with rasterio.open(item.assets["image"].href) as src:
            expected = src.read()
            xs = [src.xy(0, c)[0] for c in range(src.width)]
            ys = [src.xy(r, 0)[1] for r in range(src.height)]
        step = cube.sel(time=when).sel(latitude=ys, longitude=xs, method="nearest")
        got = np.stack([step[f"image.{b}"].values for b in range(1, 5)])
        assert got.dtype == expected.dtype == np.uint16
        np.testing.assert_array_equal(got, expected)


def test_to_xarray_choices_and_errors(
    downloads: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = mw.open_local(downloads[DEMO])
    cube = ds.to_xarray(DEMO_SOURCE, datetime="2021-01-01/2021-12-31", bbox=[33.5, -5, 42, 5])
    assert list(cube.data_vars) == ["image.1", "image.2", "image.3", "image.4"]  # rasters only
    assert {pd.Timestamp(t).year for t in cube.time.values} == {2021}
    with pytest.raises(ValueError, match=r"no item of .* has the assets \['nope'\]"):
        ds.to_xarray(DEMO_SOURCE, "nope")
    with pytest.raises(ValueError, match=r"no item of .* has its raster assets on disk within"):
        ds.to_xarray(DEMO_SOURCE, "image", bbox=[-10, -10, -9, -9])
    monkeypatch.setitem(sys.modules, "odc.stac", None)  # as if the extra were not installed
    with pytest.raises(MissingDependencyError, match=r"mlhub_widgets\[xarray\]"):
        ds.to_xarray(DEMO_SOURCE, "image")


def test_the_catalogue_is_unpacked_local_with_no_second_pass(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tarball's items are written with local hrefs as it is unpacked: the pass that read
    and rewrote every item document after the index (1.5 s of a 10,000-asset download here,
    minutes at 1,000,000 assets) never runs. Indexed in this process, so the patch sees it."""
    from mlhub_widgets.download import local_catalog, pipeline

    def second_pass(*args: object, **kwargs: object) -> None:
        raise AssertionError("the unpacked catalogue was rewritten a second time")

    monkeypatch.setattr(local_catalog, "localize_catalog", second_pass)
    monkeypatch.setattr(pipeline, "INDEX_PROCESS_FROM_BYTES", 1 << 40)  # index in a thread
    summary = mw.download_dataset(NASA, tmp_path, root_url=hub.url, progress=False)
    assert summary.complete and summary.local_catalog == tmp_path / NASA / "catalog.json"
    items = list(catalogue_items(summary.local_catalog))
    assert len(items) == 1412
    for path, doc in items:
        assert ALTERNATE_ASSETS in doc["stac_extensions"]
        for asset in doc["assets"].values():
            assert (path.parent / asset["href"]).is_file()
