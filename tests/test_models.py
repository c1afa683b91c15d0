"""Object layer (Dataset, Collection, MLModel) against the bundled hub over real HTTP."""

from __future__ import annotations

import inspect
import itertools
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pystac
import pytest
from shapely.geometry import shape

import mlhub_widgets as mw
from mlhub_widgets import Collection, Dataset, MLModel, client, discovery
from mlhub_widgets.config.session import get_session
from mlhub_widgets.download import DownloadSummary
from mlhub_widgets.exceptions import AuthenticationError, EntityDoesNotExist
from mlhub_widgets.hub import Hub, bundled_data_dir, serve
from mlhub_widgets.mlhub.collection import CollectionList

REGISTRY = bundled_data_dir() / "registry"
KEY = "models-test-key-0123456789abcdef"
KENYA = "ref_african_crops_kenya_02"
KENYA_LABELS_ARCHIVE = bundled_data_dir() / "archives" / f"{KENYA}_labels.tar.gz"


def recorded(name: str) -> Any:
    return json.loads((REGISTRY / name).read_text(encoding="utf-8"))


RECORDED_DATASETS: list[dict[str, Any]] = recorded("datasets.json")
RECORDED_COLLECTIONS: list[dict[str, Any]] = recorded("collections.json")["collections"]
RECORDED_MODELS: list[dict[str, Any]] = recorded("models.json")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("MLHUB_API_KEY", "MLHUB_PROFILE", "MLHUB_ROOT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLHUB_HOME", str(tmp_path / "mlhub-home"))


@pytest.fixture(scope="module")
def keyed() -> Iterator[Hub]:
    """A hub whose items, catalogue and archive routes need ``KEY``."""
    with serve(require_key=KEY) as running:
        yield running


def new_requests(hub: Hub, before: int) -> list[str]:
    return [r.path for r in hub.requests[before:]]


# ---------------------------------------------------------------------------------- Dataset


def test_fetch_by_id_doi_and_auto_agree(hub: Hub) -> None:
    a = Dataset.fetch("nasa_marine_debris", root_url=hub.url)
    b = Dataset.fetch("10.34911/rdnt.9r6ekg", root_url=hub.url)
    c = Dataset.fetch_by_id("nasa_marine_debris", root_url=hub.url)
    d = Dataset.fetch_by_doi("https://doi.org/10.34911/rdnt.9r6ekg", root_url=hub.url)
    assert a.raw == b.raw == c.raw == d.raw


def test_dataset_keeps_every_api_field(hub: Hub) -> None:
    ds = Dataset.fetch("nasa_marine_debris", root_url=hub.url)
    rec = next(r for r in RECORDED_DATASETS if r["id"] == "nasa_marine_debris")
    rec = json.loads(hub.rewrite(json.dumps(rec)))  # blob URLs point at the hub's storage
    assert set(ds.raw) == set(rec) and len(rec) == 17
    assert ds.raw == rec  # nothing discarded (radiant_mlhub drops tags, bbox, description...)
    assert ds.id == "nasa_marine_debris"
    assert ds.title == rec["title"]
    assert ds.doi == "10.34911/rdnt.9r6ekg"
    assert ds.citation == rec["citation"]
    assert ds.registry_url == "https://mlhub.earth/data/nasa_marine_debris"
    assert ds.tags == ["marine debris", "planetscope", "segmentation"]
    assert ds.description == rec["description"]
    assert ds.status == "ready"
    assert ds.documentation_link == rec["documentation_link"]
    assert ds.date_added == pd.Timestamp(rec["date_added"]).to_pydatetime()
    assert ds.date_added is not None and ds.date_added.tzinfo is not None
    assert ds.bbox == rec["bbox"]
    assert ds.geometry is not None and ds.geometry.equals(shape(rec["bbox"]))
    assert str(ds) == f"nasa_marine_debris: {rec['title']}"


def test_missing_dataset_fails_fast(hub: Hub) -> None:
    with pytest.raises(EntityDoesNotExist, match="Dataset 'not_a_dataset' does not exist"):
        Dataset.fetch("not_a_dataset", root_url=hub.url)
    assert sum(r.path.endswith("/datasets/not_a_dataset") for r in hub.requests) == 1


def test_list_with_tags_shares_one_session(hub: Hub) -> None:
    found = Dataset.list(tags="crop type", root_url=hub.url)
    expected = [r["id"] for r in client.list_datasets(tags="crop type", root_url=hub.url)]
    assert [d.id for d in found] == expected
    assert len({id(d.session) for d in found}) == 1
    by_text = Dataset.list(text="marine debris", root_url=hub.url)
    assert [d.id for d in by_text] == ["nasa_marine_debris"]


def test_collections_split_by_type_and_cached(hub: Hub) -> None:
    ds = Dataset.fetch(KENYA, root_url=hub.url)
    before = len(hub.requests)
    colls = ds.collections
    assert isinstance(colls, CollectionList)
    assert [c.id for c in colls] == [f"{KENYA}_labels", f"{KENYA}_source"]
    assert [c.id for c in colls.source_imagery] == [f"{KENYA}_source"]
    assert [c.id for c in colls.labels] == [f"{KENYA}_labels"]
    assert all(isinstance(c, Collection) and isinstance(c, pystac.Collection) for c in colls)
    assert len(new_requests(hub, before)) == 2
    before = len(hub.requests)
    assert ds.collections is colls
    assert len(colls) == 2 and colls[0].id == f"{KENYA}_labels"
    assert new_requests(hub, before) == []


def test_collection_with_both_types_appears_once_and_in_both_views(hub: Hub) -> None:
    ds = Dataset.fetch("spacenet2", root_url=hub.url)
    rec = next(r for r in RECORDED_DATASETS if r["id"] == "spacenet2")
    ids = [c["id"] for c in rec["collections"]]
    assert all(c["types"] == ["source_imagery", "labels"] for c in rec["collections"])
    assert [c.id for c in ds.collections] == ids
    assert [c.id for c in ds.collections.source_imagery] == ids
    assert [c.id for c in ds.collections.labels] == ids


def test_catalog_sizes_come_from_one_cached_request(hub: Hub) -> None:
    ds = Dataset.fetch("nasa_marine_debris", root_url=hub.url)
    info = client.get_catalog_info("nasa_marine_debris", root_url=hub.url)
    before = len(hub.requests)
    assert ds.estimated_dataset_size == 77207762  # recorded catalog/info value
    assert ds.stac_catalog_size == info["stac_catalog_size"]
    assert ds.stac_catalog_size == ds.stac_catalog_size
    assert ds.estimated_dataset_size == ds.estimated_dataset_size
    assert new_requests(hub, before) == ["/mlhub/v1/catalog/nasa_marine_debris/info"]


def test_archive_sizes(hub: Hub) -> None:
    ds = Dataset.fetch(KENYA, root_url=hub.url)
    labels, source = ds.collections.labels[0], ds.collections.source_imagery[0]
    assert labels.archive_size == KENYA_LABELS_ARCHIVE.stat().st_size
    assert source.archive_size is None  # no archive: None, not an error
    assert ds.total_archive_size == KENYA_LABELS_ARCHIVE.stat().st_size
    big = Dataset.fetch("bigearthnet_v1", root_url=hub.url)
    assert big.total_archive_size == 169265765  # recorded archive/info of the labels
    before = len(hub.requests)
    assert labels.archive_size == KENYA_LABELS_ARCHIVE.stat().st_size
    assert new_requests(hub, before) == []


def test_to_frame_matches_datasets_row(hub: Hub) -> None:
    ds = Dataset.fetch("nasa_marine_debris", root_url=hub.url)
    frame = ds.to_frame()
    full = mw.datasets(root_url=hub.url)
    row = full[full["id"] == "nasa_marine_debris"].reset_index(drop=True)
    pd.testing.assert_frame_equal(pd.DataFrame(frame), pd.DataFrame(row))


# ------------------------------------------------------------------------------- Collection


def test_collection_fetch_str_and_registry_url(hub: Hub) -> None:
    coll = Collection.fetch("bigearthnet_v1_source", root_url=hub.url)
    assert str(coll) == "bigearthnet_v1_source: BigEarthNet v1.0"
    assert coll.registry_url == "https://mlhub.earth/10.14279/depositonce-10149"
    without_doi = next(c["id"] for c in RECORDED_COLLECTIONS if "sci:doi" not in c)
    assert Collection.fetch(without_doi, root_url=hub.url).registry_url is None
    from_dataset = Dataset.fetch(KENYA, root_url=hub.url).collections[0]
    assert from_dataset.registry_url == f"https://mlhub.earth/data/{KENYA}"
    assert from_dataset.dataset_id == KENYA
    assert from_dataset.types == ["labels"]


def test_collection_list(hub: Hub) -> None:
    colls = Collection.list(root_url=hub.url)
    assert {c["id"] for c in RECORDED_COLLECTIONS} <= {c.id for c in colls}
    edge = next(c for c in colls if c.id == "sample_in_edge_labels")
    start = edge.extent.temporal.intervals[0][0]
    assert start == pd.Timestamp("2021-05-28T09:38:43Z").to_pydatetime()


def test_collection_get_items_pages_the_api_and_pystac_traversal_works(hub: Hub) -> None:
    coll = Collection.fetch(f"{KENYA}_source", root_url=hub.url)
    ids = [i["id"] for i in recorded(f"items/{KENYA}_source.json")]
    first = list(itertools.islice(coll.get_items(), 3))
    assert [i.id for i in first] == ids[:3]
    assert all(isinstance(i, pystac.Item) and i.get_collection() is coll for i in first)
    assert [i.id for i in coll.get_items()] == ids
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pystac deprecates get_all_items
        assert [i.id for i in coll.get_all_items()] == ids
    assert [(c.id, [i.id for i in items]) for c, _, items in coll.walk()] == [(coll.id, ids)]
    picked = coll.get_items(ids[5], "no-such-item", ids[1])
    assert [i.id for i in picked] == [ids[5], ids[1]]
    found = coll.get_item(ids[7])
    assert found is not None and found.id == ids[7]
    assert found.properties["platform"] == "Sentinel-2"
    assert coll.get_item("no-such-item") is None


def test_collection_fetch_item_and_items_frame_from_collection(hub: Hub) -> None:
    coll = Collection.fetch(f"{KENYA}_source", root_url=hub.url)
    item = coll.fetch_item("ref_african_crops_kenya_02_tile_02_20190721")
    assert isinstance(item, pystac.Item)
    assert item.id == "ref_african_crops_kenya_02_tile_02_20190721"
    assert item.properties["platform"] == "Sentinel-2"
    assert len(mw.items(coll, limit=5)) == 5  # the collection's own session is used
    with pytest.raises(EntityDoesNotExist, match="Item 'nope' does not exist"):
        coll.fetch_item("nope")


def test_missing_collection(hub: Hub) -> None:
    with pytest.raises(EntityDoesNotExist, match="Collection 'no_collection' does not exist"):
        Collection.fetch("no_collection", root_url=hub.url)


# ---------------------------------------------------------------------------------- MLModel


def test_models_list_fetch_and_links(hub: Hub) -> None:
    models = MLModel.list(root_url=hub.url)
    assert [m.id for m in models] == [m["id"] for m in RECORDED_MODELS]
    cv4a = MLModel.fetch("model-cv4a-crop-detection-v1", root_url=hub.url)
    assert isinstance(cv4a, pystac.Item)
    title = RECORDED_MODELS[0]["properties"]["title"]
    assert str(cv4a) == f"model-cv4a-crop-detection-v1: {title}"
    assert cv4a.title == title
    assert cv4a.inferencing_image == "docker://docker.io/radiantearth/crop-detection-dl:1"
    assert [h.rsplit("/", 1)[1] for h in cv4a.training_data] == [
        f"{KENYA}_source",
        f"{KENYA}_labels",
    ]
    assert set(cv4a.assets) == {"inferencing-compose", "inferencing-checkpoint"}
    assert cv4a.assets["inferencing-checkpoint"].href.endswith(".pt")
    with pytest.raises(EntityDoesNotExist, match="Model 'nope' does not exist"):
        MLModel.fetch("nope", root_url=hub.url)


def test_package_exports(hub: Hub) -> None:
    assert mw.Dataset is Dataset and mw.Collection is Collection and mw.MLModel is MLModel
    frame = mw.models(root_url=hub.url)  # a plain function: the models() frame
    assert list(frame["id"]) == [m["id"] for m in RECORDED_MODELS]
    assert inspect.isfunction(mw.models) and mw.models is discovery.models
    # the names load on first use but are listed for dir() and tab completion
    assert {"Dataset", "models", "download_dataset", "explorer"} <= set(dir(mw))


# ------------------------------------------------------------------ key propagation (keyed)


@pytest.mark.parametrize("how", ["fetch", "fetch_by_id", "fetch_by_doi", "list"])
def test_dataset_keeps_its_api_key(keyed: Hub, how: str) -> None:
    if how == "list":
        ds = next(
            d for d in Dataset.list(api_key=KEY, root_url=keyed.url) if d.id == "nasa_marine_debris"
        )
    else:
        ref = "10.34911/rdnt.9r6ekg" if how == "fetch_by_doi" else "nasa_marine_debris"
        ds = getattr(Dataset, how)(ref, api_key=KEY, root_url=keyed.url)
    assert ds.estimated_dataset_size == 77207762  # catalog/info needs the key


def test_without_key_the_protected_routes_fail(keyed: Hub) -> None:
    ds = Dataset.fetch("nasa_marine_debris", root_url=keyed.url)  # /datasets is anonymous
    with pytest.raises(AuthenticationError):
        _ = ds.stac_catalog_size
    coll = Collection.fetch(f"{KENYA}_source", root_url=keyed.url)
    with pytest.raises(AuthenticationError):
        coll.fetch_item("ref_african_crops_kenya_02_tile_02_20190721")
    # a per-call key works and keeps the collection's API root
    item = coll.fetch_item("ref_african_crops_kenya_02_tile_02_20190721", api_key=KEY)
    assert item.id == "ref_african_crops_kenya_02_tile_02_20190721"


def test_collections_of_a_keyed_dataset_keep_the_key(keyed: Hub) -> None:
    ds = Dataset.fetch(KENYA, api_key=KEY, root_url=keyed.url)
    source = ds.collections.source_imagery[0]
    item = source.fetch_item("ref_african_crops_kenya_02_tile_02_20190721")
    assert item.id == "ref_african_crops_kenya_02_tile_02_20190721"
    assert ds.collections.labels[0].archive_size == KENYA_LABELS_ARCHIVE.stat().st_size
    assert len(mw.items(source, limit=3)) == 3


def test_collection_download_uses_its_key(keyed: Hub, tmp_path: Path) -> None:
    coll = Collection.fetch(f"{KENYA}_labels", api_key=KEY, root_url=keyed.url)
    storage_keys = keyed.keys_seen("storage")
    path = coll.download(tmp_path, progress=False)
    assert path.read_bytes() == KENYA_LABELS_ARCHIVE.read_bytes()
    assert keyed.keys_seen("storage") == storage_keys  # the key never leaves the API origin


def test_dataset_download_uses_its_session(keyed: Hub, tmp_path: Path) -> None:
    ds = Dataset.fetch("mlhub_widgets_demo_crops", api_key=KEY, root_url=keyed.url)
    summary = ds.download(tmp_path, catalog_only=True, progress=False)
    assert isinstance(summary, DownloadSummary) and summary.catalog_only
    assert (tmp_path / "mlhub_widgets_demo_crops" / "catalog.json").is_file()
    protected = [r for r in keyed.requests if r.path.endswith("/catalog/mlhub_widgets_demo_crops")]
    assert protected and all(r.key_present and r.status < 400 for r in protected)


def test_explicit_session_is_kept(keyed: Hub) -> None:
    s = get_session(api_key=KEY, root_url=keyed.url)
    ds = Dataset.fetch("nasa_marine_debris", session=s)
    assert ds.session is s
    assert ds.collections[0].session is s
    assert ds.stac_catalog_size is not None


def test_clones_keep_the_session(keyed: Hub) -> None:
    s = get_session(api_key=KEY, root_url=keyed.url)
    coll = Dataset.fetch(KENYA, session=s).collections.source_imagery[0].clone()
    assert isinstance(coll, Collection) and coll.session is s and coll.types == ["source_imagery"]
    assert coll.fetch_item("ref_african_crops_kenya_02_tile_02_20190721").id.endswith("20190721")
    model = MLModel.fetch("model-cv4a-crop-detection-v1", session=s).clone()
    assert isinstance(model, MLModel) and model.session is s
