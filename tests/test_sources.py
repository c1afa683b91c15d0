"""Sources: the MLHub API, a static STAC catalogue (disk and HTTP) and a STAC API agree.

Everything runs against real files and real HTTP on loopback: the recorded nasa_marine_debris
catalogue (``shared/fixtures``), the bundled hub (MLHub API, its ``/search`` and its catalogue
tarballs/static catalogues) and, where the hub does not serve a static catalogue, a plain
``http.server`` over the unpacked catalogue.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path
from typing import Any, cast

import pystac
import pytest

from mlhub_widgets.exceptions import EntityDoesNotExist
from mlhub_widgets.filters import AssetFilter
from mlhub_widgets.hub import Hub
from mlhub_widgets.sources import (
    DatasetEntry,
    MLHubApiSource,
    Source,
    StacApiSource,
    StaticCatalogSource,
    detect_kind,
    open_source,
)
from mlhub_widgets.sources.base import collection_types, matches_search

from .sources_support import (
    DATASET,
    FIXTURE,
    hub_catalog,
    hub_static_url,
    serve_folder,
    sources_hub,
    unpack,
)


@pytest.fixture(scope="module")
def hub(request: pytest.FixtureRequest) -> Hub:
    """The source tests' own hub (see :func:`sources_support.sources_hub`)."""
    return sources_hub(request.config)


SOURCE_C = "nasa_marine_debris_source"
LABELS_C = "nasa_marine_debris_labels"
COLLECTIONS = [SOURCE_C, LABELS_C]

#: Filters compared across sources (kwargs of AssetFilter.build).
FILTERS: dict[str, dict[str, Any]] = {
    "none": {},
    "bbox": {"bbox": [-88.0, 15.5, -87.0, 16.2]},
    "datetime": {"datetime": "2018-01-01/2018-06-30"},
    "bbox+datetime": {"bbox": [-88.0, 15.0, -86.0, 17.0], "datetime": ("2017-01-01", "2017-12-31")},
    "intersects": {
        "intersects": {
            "type": "Polygon",
            "coordinates": [
                [[-87.8, 15.8], [-87.5, 16.2], [-87.2, 15.8], [-87.5, 15.7], [-87.8, 15.8]]
            ],
        }
    },
    "antimeridian": {"bbox": [170.0, -20.0, -170.0, 20.0]},
}

needs_fixture = pytest.mark.skipif(not FIXTURE.is_file(), reason="shared fixtures not present")


def ids(items: Iterable[dict[str, Any]]) -> set[str]:
    return {str(i["id"]) for i in items}


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw_disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The recorded catalogue archive unpacked (asset hrefs on the retired blob store)."""
    if not FIXTURE.is_file():
        pytest.skip("shared fixtures not present")
    return unpack(FIXTURE, tmp_path_factory.mktemp("raw"))


@pytest.fixture(scope="module")
def hub_disk(hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hub's catalogue of the dataset (asset hrefs on the hub's storage) unpacked."""
    return hub_catalog(hub, DATASET, tmp_path_factory.mktemp("hubcat"))


@pytest.fixture(scope="module")
def static_url(hub: Hub) -> str:
    """The static catalogue over HTTP, as the hub serves it."""
    return hub_static_url(hub)


@pytest.fixture(scope="module")
def disk_source(hub_disk: Path) -> Iterator[StaticCatalogSource]:
    with StaticCatalogSource(hub_disk) as src:
        yield src


@pytest.fixture(scope="module")
def http_source(static_url: str) -> Iterator[StaticCatalogSource]:
    with StaticCatalogSource(static_url, workers=8) as src:
        yield src


@pytest.fixture(scope="module")
def api_source(hub: Hub) -> Iterator[MLHubApiSource]:
    with MLHubApiSource(root_url=hub.url) as src:
        yield src


@pytest.fixture(scope="module")
def stac_source(hub: Hub) -> Iterator[StacApiSource]:
    with StacApiSource(hub.url, page_size=100) as src:
        yield src


# -- static catalogue: structure --------------------------------------------------------------


@needs_fixture
def test_recorded_archive_on_disk_is_one_dataset_with_two_collections(raw_disk: Path) -> None:
    with open_source(raw_disk) as src:
        assert isinstance(src, StaticCatalogSource)
        (rec,) = src.list_datasets()
        assert rec["id"] == DATASET  # folder name: the catalogue id is "nasa-marine-debris"
        assert rec["title"] == "Marine Debris Dataset for Object Detection in Planetscope Imagery"
        assert [(c["id"], c["types"]) for c in rec["collections"]] == [
            (SOURCE_C, ["source_imagery"]),
            (LABELS_C, ["labels"]),
        ]
        assert rec["bbox"]["type"] == "MultiPolygon"
        assert rec["tags"] == []
        assert {c["id"] for c in src.list_collections(DATASET)} == set(COLLECTIONS)
        items = list(src.iter_items(COLLECTIONS))
        files = list(raw_disk.glob("*/*/*.json"))
        assert len(items) == len(files) == len(ids(items))
        assert {i["collection"] for i in items} == set(COLLECTIONS)
        # relative links became absolute paths; absolute asset hrefs stayed as they were
        first = items[0]
        assert all(Path(link["href"]).is_absolute() for link in first["links"])
        assert all(
            a["href"].startswith("https://radiantearth.blob.core.windows.net/")
            for a in first["assets"].values()
        )


@needs_fixture
def test_recorded_archive_matches_pystac_walk(raw_disk: Path) -> None:
    cat = pystac.Catalog.from_file(str(raw_disk / "catalog.json"))
    theirs = {item.id for item in cat.get_items(recursive=True)}
    with StaticCatalogSource(raw_disk / "catalog.json", workers=4) as src:
        ours = ids(src.iter_items(COLLECTIONS))
    assert ours == theirs and len(ours) > 1000


def test_disk_and_http_static_catalogues_agree(
    disk_source: StaticCatalogSource, http_source: StaticCatalogSource
) -> None:
    assert [d["id"] for d in http_source.list_datasets()] == [DATASET]
    assert (
        http_source.get_dataset(DATASET)["collections"]
        == disk_source.get_dataset(DATASET)["collections"]
    )
    assert ids(http_source.iter_items(COLLECTIONS)) == ids(disk_source.iter_items(COLLECTIONS))
    item = next(http_source.iter_items(LABELS_C))
    assert all(link["href"].startswith("http://127.0.0.1:") for link in item["links"])


def test_iter_dataset_streams_catalog_then_each_collection_then_its_items(
    http_source: StaticCatalogSource,
) -> None:
    kinds: list[str] = []
    current = None
    for entry in http_source.iter_dataset(DATASET):
        assert isinstance(entry, DatasetEntry)
        kinds.append(entry.kind)
        if entry.kind == "collection":
            current = entry.data["id"]
            assert entry.name == f"{DATASET}/{current}/collection.json"
        elif entry.kind == "item":
            assert entry.data["collection"] == current
            iid = entry.data["id"]
            assert entry.name == f"{DATASET}/{current}/{iid}/{iid}.json"
    assert kinds[0] == "catalog" and kinds.count("catalog") == 1
    assert kinds.count("collection") == 2
    assert kinds.count("item") > 1000


def test_walk_is_bounded_when_the_consumer_stops_early(static_url: str) -> None:
    with StaticCatalogSource(static_url, workers=4) as src:
        src.list_datasets()
        before = src.reader.requests
        it = cast("Generator[dict[str, Any], None, None]", src.iter_items(SOURCE_C))
        got = [next(it) for _ in range(5)]
        it.close()
        src.close()  # waits for requests in flight
        assert len(got) == 5
        # five items plus at most one window (4 x workers) read ahead
        assert src.reader.requests - before <= 5 + 4 * 4


def test_limit_and_missing_entities(http_source: StaticCatalogSource) -> None:
    assert len(list(http_source.iter_items(COLLECTIONS, limit=7))) == 7
    with pytest.raises(EntityDoesNotExist):
        http_source.get_dataset("no_such_dataset")
    with pytest.raises(EntityDoesNotExist):
        list(http_source.iter_items("no_such_collection"))
    # a collection id names a dataset of one collection
    assert [c["id"] for c in http_source.get_dataset(LABELS_C)["collections"]] == [LABELS_C]


def test_missing_catalogue_errors(tmp_path: Path, static_url: str) -> None:
    with pytest.raises(FileNotFoundError):
        StaticCatalogSource(tmp_path)
    missing = static_url.replace("catalog.json", "nope/catalog.json")
    with pytest.raises(EntityDoesNotExist), StaticCatalogSource(missing) as src:
        src.list_datasets()


def _write_nested_catalogue(root: Path) -> Path:
    """A catalogue of two sub-catalogues (datasets), one nesting its collection deeper."""
    top = pystac.Catalog("mirror", "Two datasets")
    for n, ds_id in enumerate(["alpha", "beta"]):
        ds = pystac.Catalog(ds_id, f"Dataset {ds_id}", title=f"The {ds_id} dataset")
        holder = ds
        if ds_id == "beta":
            holder = pystac.Catalog("beta-region", "a region")
            ds.add_child(holder)
        for kind in ("source", "labels"):
            extent = pystac.Extent(
                pystac.SpatialExtent([[float(n), float(n), n + 1.0, n + 1.0]]),
                pystac.TemporalExtent([[dt.datetime(2020, 1, 1, tzinfo=dt.UTC), None]]),
            )
            col = pystac.Collection(
                f"{ds_id}_{kind}", f"{kind} of {ds_id}", extent, license="CC-BY-4.0"
            )
            col.keywords = [f"kw-{ds_id}"]
            for i in range(3):
                geom = {
                    "type": "Polygon",
                    "coordinates": [[[n, n], [n, n + 1], [n + 1, n + 1], [n + 1, n], [n, n]]],
                }
                item = pystac.Item(
                    f"{ds_id}_{kind}_{i}",
                    geom,
                    [n, n, n + 1, n + 1],
                    dt.datetime(2020, 1, 1 + i, tzinfo=dt.UTC),
                    {},
                )
                item.add_asset("data", pystac.Asset(f"./{ds_id}_{kind}_{i}.tif"))
                col.add_item(item)
            holder.add_child(col)
        top.add_child(ds)
    top.normalize_hrefs(str(root))
    top.save(pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"


def test_sub_catalogues_are_presented_as_datasets(tmp_path: Path) -> None:
    path = _write_nested_catalogue(tmp_path / "mirror")
    with serve_folder(tmp_path) as base:
        for where in (path, f"{base}mirror/catalog.json"):
            with open_source(where) as src:
                recs = {r["id"]: r for r in src.list_datasets()}
                assert set(recs) == {"alpha", "beta"}
                assert recs["alpha"]["title"] == "The alpha dataset"
                assert [(c["id"], c["types"]) for c in recs["beta"]["collections"]] == [
                    ("beta_source", ["source_imagery"]),
                    ("beta_labels", ["labels"]),
                ]
                assert recs["beta"]["keywords"] == ["kw-beta"]
                assert [r["id"] for r in src.search_datasets(tags=["kw-alpha"])] == ["alpha"]
                assert [r["id"] for r in src.search_datasets(text=["BETA"])] == ["beta"]
                items = list(src.iter_items(["beta_source", "beta_labels"]))
                assert len(items) == 6
                asset = items[0]["assets"]["data"]["href"]
                assert asset.endswith("beta_source_0.tif") and "./" not in asset
                dt_filter = AssetFilter.build(datetime="2020-01-02")
                assert ids(src.iter_items("alpha_labels", dt_filter)) == {"alpha_labels_1"}


def test_collection_types_and_search_semantics() -> None:
    assert collection_types({"id": "x_labels"}) == ["labels"]
    assert collection_types(
        {
            "id": "x",
            "stac_extensions": ["https://stac-extensions.github.io/label/v1.0.0/schema.json"],
        }
    ) == ["labels"]
    assert collection_types({"id": "x_source"}) == ["source_imagery"]
    rec = {"id": "a", "title": "Crops", "tags": ["t1"], "keywords": ["k1"]}
    assert matches_search(rec, ["t1", "k1"], None)
    assert not matches_search(rec, ["t2"], None)
    assert matches_search(rec, None, ["nope", "crop"])
    assert not matches_search(rec, None, ["nope"])


# -- detection -----------------------------------------------------------------------------------


def test_open_source_detects_each_kind(hub: Hub, hub_disk: Path, static_url: str) -> None:
    assert detect_kind(hub_disk) == "static"
    assert detect_kind(static_url) == "static"
    assert detect_kind(hub.url) == "mlhub"  # an MLHub API first, even with /search
    with open_source(hub.url) as src:
        assert isinstance(src, MLHubApiSource) and src.has_tags
        assert "MLHub API" in src.describe()
    with open_source(static_url) as src:
        assert isinstance(src, StaticCatalogSource) and not src.has_tags
    assert open_source(src) is src
    with pytest.raises(ValueError, match="kind must be one of"):
        open_source(hub.url, kind="ftp")


def test_open_source_picks_stac_api_when_asked(stac_source: StacApiSource, hub: Hub) -> None:
    with open_source(hub.url, kind="stac-api") as src:
        assert isinstance(src, StacApiSource)
        assert src.server_side_filters and not src.has_tags


# -- the three sources agree ---------------------------------------------------------------------


def test_datasets_and_collections_agree_across_sources(
    api_source: MLHubApiSource, http_source: StaticCatalogSource, disk_source: StaticCatalogSource
) -> None:
    api = api_source.get_dataset(DATASET)
    for src in (http_source, disk_source):
        rec = src.get_dataset(DATASET)
        assert rec["id"] == api["id"]
        assert {c["id"]: c["types"] for c in rec["collections"]} == {
            c["id"]: c["types"] for c in api["collections"]
        }
        assert {c["id"] for c in src.list_collections(DATASET)} == {
            c["id"] for c in api_source.list_collections(DATASET)
        }


@pytest.fixture(scope="module")
def disk_items(disk_source: StaticCatalogSource) -> list[dict[str, Any]]:
    """Every item of the disk catalogue, walked once."""
    return list(disk_source.iter_items(COLLECTIONS))


@pytest.mark.parametrize("name", list(FILTERS))
def test_items_agree_between_api_and_static_catalogues(
    name: str,
    api_source: MLHubApiSource,
    http_source: StaticCatalogSource,
    disk_items: list[dict[str, Any]],
) -> None:
    flt = AssetFilter.build(**FILTERS[name])
    expected = ids(api_source.iter_items(COLLECTIONS, flt))  # filtered by the server
    assert ids(i for i in disk_items if flt.item_matches(i)) == expected
    if name in ("none", "bbox+datetime", "intersects"):  # the filtered walk itself, over HTTP
        assert ids(http_source.iter_items(COLLECTIONS, flt)) == expected
    if name == "none":
        assert len(expected) > 1000
    elif name != "antimeridian":
        assert 0 < len(expected) < 1400


@pytest.mark.parametrize("name", list(FILTERS))
def test_stac_api_search_agrees_with_static_catalogue(
    name: str, stac_source: StacApiSource, disk_items: list[dict[str, Any]]
) -> None:
    flt = AssetFilter.build(**FILTERS[name])
    assert ids(stac_source.iter_items(COLLECTIONS, flt)) == ids(
        i for i in disk_items if flt.item_matches(i)
    )


def test_stac_api_datasets_group_collections_by_doi(stac_source: StacApiSource) -> None:
    rec = stac_source.get_dataset(DATASET)
    assert {c["id"] for c in rec["collections"]} == set(COLLECTIONS)
    assert DATASET in {r["id"] for r in stac_source.list_datasets()}
    assert {c["id"] for c in stac_source.list_collections(DATASET)} == set(COLLECTIONS)


def test_stac_api_get_and_post_and_paging(hub: Hub, stac_source: StacApiSource) -> None:
    flt = AssetFilter.build(**FILTERS["bbox"])
    expected = ids(stac_source.iter_items(COLLECTIONS, flt))
    with StacApiSource(hub.url, method="GET", page_size=7) as get_src:
        got = list(get_src.iter_items(COLLECTIONS, flt))
    assert ids(got) == expected and len(got) == len(expected)
    assert len(list(stac_source.iter_items(COLLECTIONS, limit=13))) == 13


def test_stac_api_iter_dataset_filters_on_the_server(
    stac_source: StacApiSource, disk_items: list[dict[str, Any]]
) -> None:
    flt = AssetFilter.build(**FILTERS["datetime"])
    entries = list(stac_source.iter_dataset(DATASET, flt))
    got = {e.data["id"] for e in entries if e.kind == "item"}
    assert got == ids(i for i in disk_items if flt.item_matches(i))
    assert stac_source.fingerprint(flt) != stac_source.fingerprint(None)


def test_static_fingerprint_ignores_filters(http_source: Source) -> None:
    flt = AssetFilter.build(**FILTERS["bbox"])
    assert http_source.fingerprint(flt) == http_source.fingerprint(None)


def test_items_are_plain_json(http_source: StaticCatalogSource) -> None:
    item = next(http_source.iter_items(SOURCE_C))
    json.dumps(item)  # nothing but JSON
    assert item["type"] == "Feature" and item["collection"] == SOURCE_C


@pytest.mark.parametrize(
    "base",
    [
        "http://h:1/a/b/c.json",
        "http://h/c.json",
        "http://h/a/",
        "https://h/x/y/z/item.json",
        "http://h",
        "http://h/a/b.json?x=1/2",
    ],
)
def test_relative_hrefs_resolve_like_urljoin(base: str) -> None:
    from urllib.parse import urljoin

    from mlhub_widgets.sources.fetch import resolve_href

    for href in (
        "x.json",
        "./x.json",
        "../x.json",
        "../../x.json",
        "../../../../../x.json",
        "a/../b.json",
        "a/./b.json",
        "/abs.json",
        "..",
        ".",
        "../..",
        "sub/dir/x.json",
        "./../x.json",
        "../a/../b.json",
        "?q=1",
        "#frag",
        "http://other/x.json",
    ):
        assert resolve_href(href, base) == urljoin(base, href), (base, href)


def test_local_copy_of_a_streamed_catalogue_points_at_the_asset_folder(tmp_path: Path) -> None:
    """Given the asset folder, the copy is written with local hrefs (as localize_catalog makes
    them, which then has nothing to change), while the index still reads the source's hrefs."""
    from mlhub_widgets.download.catalog_writer import LocalCatalogWriter
    from mlhub_widgets.download.local_catalog import ALTERNATE_ASSETS, localize_catalog

    href = "s3://bucket/ds/c/i/image.tif"
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "i",
        "collection": "c",
        "links": [],
        "assets": {"image": {"href": href, "type": "image/tiff"}},
    }
    out, assets = tmp_path / "out", tmp_path / "files" / "ds"
    writer = LocalCatalogWriter(out, "ds", assets)
    writer.add(DatasetEntry("catalog", "ds/catalog.json", {"type": "Catalog", "id": "ds"}))
    writer.add(
        DatasetEntry("collection", "ds/c/collection.json", {"type": "Collection", "id": "c"})
    )
    writer.add(DatasetEntry("item", "ds/c/i/i.json", item))
    path = writer.close()
    assert item["assets"]["image"] == {"href": href, "type": "image/tiff"}  # the index's copy
    doc = json.loads((path.parent / "c" / "i" / "i.json").read_text())
    local = doc["assets"]["image"]
    assert (
        local["alternate"] == {"s3": {"href": href}} and ALTERNATE_ASSETS in doc["stac_extensions"]
    )
    target = (path.parent / "c" / "i" / local["href"]).resolve()
    assert target == (assets / "c" / "i" / "image.tif").resolve()
    stats = localize_catalog(path.parent, out, assets, "ds")
    assert (stats.documents, stats.rewritten) == (1, 0)


def test_local_copy_is_complete_only_when_closed(tmp_path: Path) -> None:
    from mlhub_widgets.download.catalog_writer import LocalCatalogWriter

    def entries(writer: LocalCatalogWriter) -> None:
        writer.add(DatasetEntry("catalog", "ds/catalog.json", {"type": "Catalog", "id": "ds"}))
        col = {"type": "Collection", "id": "c/1", "links": [{"rel": "license", "href": "x"}]}
        writer.add(DatasetEntry("collection", "ds/c/collection.json", col))
        item = {"type": "Feature", "id": "../i", "links": [], "assets": {"a": {"href": "h"}}}
        writer.add(DatasetEntry("item", "ds/c/i/i.json", item))

    abandoned = LocalCatalogWriter(tmp_path / "a", "ds")
    entries(abandoned)
    abandoned.abort()
    assert not (tmp_path / "a" / "ds" / "catalog.json").exists()

    done = LocalCatalogWriter(tmp_path / "b", "ds")
    entries(done)
    path = done.close()
    done.abort()  # no-op after close
    cat = json.loads(path.read_text())
    (child,) = [link["href"] for link in cat["links"] if link["rel"] == "child"]
    col = json.loads((path.parent / child).read_text())
    assert {"rel": "license", "href": "x"} in col["links"]
    (item_href,) = [link["href"] for link in col["links"] if link["rel"] == "item"]
    item_path = (path.parent / child).parent / item_href
    assert item_path.resolve().is_relative_to(path.parent.resolve())  # ids cannot escape
    item = json.loads(item_path.read_text())
    assert item["assets"]["a"]["href"] == "h"
