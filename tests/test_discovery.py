"""DataFrame discovery API (mlhub_widgets.discovery) against the bundled hub over real HTTP."""

from __future__ import annotations

import copy
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from shapely.geometry import box, shape

import mlhub_widgets as mw
from mlhub_widgets import Dataset, client, discovery
from mlhub_widgets.cli import main
from mlhub_widgets.config.session import Session, get_session
from mlhub_widgets.exceptions import EntityDoesNotExist
from mlhub_widgets.hub import Hub, bundled_data_dir
from mlhub_widgets.units import human_bytes
from tests.http_log import _record_requests, record_urls  # noqa: F401

REGISTRY = bundled_data_dir() / "registry"
KENYA = "ref_african_crops_kenya_02_source"


def recorded(name: str) -> Any:
    return json.loads((REGISTRY / name).read_text(encoding="utf-8"))


RECORDED_DATASETS: list[dict[str, Any]] = recorded("datasets.json")
RECORDED_COLLECTIONS: list[dict[str, Any]] = recorded("collections.json")["collections"]
RECORDED_ITEMS: list[dict[str, Any]] = recorded(f"items/{KENYA}.json")
RECORDED_MODELS: list[dict[str, Any]] = recorded("models.json")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("MLHUB_API_KEY", "MLHUB_PROFILE", "MLHUB_ROOT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLHUB_HOME", str(tmp_path / "mlhub-home"))


@pytest.fixture
def session(hub: Hub) -> Session:
    return get_session(root_url=hub.url)


def item_queries(urls: list[str]) -> list[dict[str, list[str]]]:
    return [parse_qs(urlsplit(u).query) for u in urls if "/items" in u]


def assert_same_schema(empty: pd.DataFrame, full: pd.DataFrame) -> None:
    assert list(empty.columns) == list(full.columns)
    assert empty.dtypes.astype(str).to_dict() == full.dtypes.astype(str).to_dict()


# --------------------------------------------------------------------------------- datasets


def test_datasets_one_row_per_dataset_with_recorded_values(hub: Hub) -> None:
    df = mw.datasets(root_url=hub.url)
    assert isinstance(df, gpd.GeoDataFrame)
    assert list(df.columns) == [*discovery.DATASET_COLUMNS, "geometry"]
    assert list(df["id"]) == hub.dataset_ids()
    assert df.crs is not None and df.crs.to_epsg() == 4326
    row = df.set_index("id").loc["nasa_marine_debris"]
    rec = next(d for d in RECORDED_DATASETS if d["id"] == "nasa_marine_debris")
    assert row["title"] == rec["title"]
    assert row["doi"] == "10.34911/rdnt.9r6ekg"
    assert row["tags"] == ["marine debris", "planetscope", "segmentation"]
    assert row["registry_url"] == "https://mlhub.earth/data/nasa_marine_debris"
    assert row["license"] == "CC-BY-NC-4.0"  # markdown link stripped
    assert row["source_collections"] == ["nasa_marine_debris_source"]
    assert row["label_collections"] == ["nasa_marine_debris_labels"]
    assert row["date_added"] == pd.Timestamp(rec["date_added"])
    assert str(df["date_added"].dtype) == "datetime64[us, UTC]"
    assert row["geometry"].equals(shape(rec["bbox"]))


def test_datasets_without_footprint_get_empty_geometry(hub: Hub) -> None:
    df = mw.datasets(root_url=hub.url).set_index("id")
    no_bbox = [d["id"] for d in RECORDED_DATASETS if d["bbox"] is None]
    assert no_bbox == ["ref_agrifieldnet_competition_v1"]
    assert df.loc[no_bbox[0], "geometry"] is None


def test_datasets_tag_filter_matches_recording(hub: Hub) -> None:
    df = mw.datasets(tags="crop type", root_url=hub.url)
    everything = mw.datasets(root_url=hub.url)
    expected = [
        i for i, t in zip(everything["id"], everything["tags"], strict=True) if "crop type" in t
    ]
    assert list(df["id"]) == expected
    recorded_ids = [d["id"] for d in RECORDED_DATASETS if "crop type" in d["tags"]]
    assert len(recorded_ids) == 15
    assert set(recorded_ids) <= set(df["id"])
    both = mw.datasets(tags=["crop type", "sentinel-1"], root_url=hub.url)
    assert set(both["id"]) == {
        i
        for i, t in zip(everything["id"], everything["tags"], strict=True)
        if {"crop type", "sentinel-1"} <= set(t)
    }
    assert 0 < len(both) < len(df)


def test_datasets_text_search(hub: Hub) -> None:
    df = mw.datasets(text=["marine debris", "tropical storm"], root_url=hub.url)
    assert {"nasa_marine_debris", "nasa_tropical_storm_competition"} <= set(df["id"])
    assert "bigearthnet_v1" not in set(df["id"])


def test_datasets_empty_result_keeps_columns_and_dtypes(hub: Hub) -> None:
    full = mw.datasets(root_url=hub.url)
    empty = mw.datasets(tags="no such tag at all", root_url=hub.url)
    assert isinstance(empty, gpd.GeoDataFrame) and len(empty) == 0
    assert_same_schema(empty, full)


def test_datasets_rejects_non_string_tag(hub: Hub) -> None:
    with pytest.raises(TypeError, match="tags"):
        mw.datasets(tags=["crop type", 3], root_url=hub.url)  # type: ignore[list-item]


def test_tags_counts_and_order(hub: Hub) -> None:
    df = mw.tags(root_url=hub.url)
    assert list(df.columns) == ["tag", "datasets"]
    assert str(df["datasets"].dtype) == "int64"
    counts = Counter(t for d in client.list_datasets(root_url=hub.url) for t in set(d["tags"]))
    assert dict(zip(df["tag"], df["datasets"], strict=True)) == dict(counts)
    keys = list(zip(-df["datasets"], df["tag"], strict=True))
    assert keys == sorted(keys)
    recorded_counts = Counter(t for d in RECORDED_DATASETS for t in d["tags"])
    assert recorded_counts["crop type"] == 15
    assert df.set_index("tag").loc["marine debris", "datasets"] == 1


# ------------------------------------------------------------------------------ collections


def test_collections_all_with_types_and_extents(hub: Hub) -> None:
    df = mw.collections(root_url=hub.url)
    assert list(df.columns) == [*discovery.COLLECTION_COLUMNS, "geometry"]
    assert {c["id"] for c in RECORDED_COLLECTIONS} <= set(df["id"])
    by_id = df.set_index("id")
    # types come from the dataset records; SpaceNet collections have both
    assert by_id.loc["sn1_AOI_1_RIO", "types"] == ["source_imagery", "labels"]
    assert by_id.loc["sn1_AOI_1_RIO", "dataset"] == "spacenet1"
    assert by_id.loc["bigearthnet_v1_labels", "types"] == ["labels"]
    # "+0200" offsets are understood and converted to UTC
    edge = by_id.loc["sample_in_edge_labels"]
    assert edge["start_datetime"] == pd.Timestamp("2021-05-28T09:38:43Z")
    assert edge["end_datetime"] == pd.Timestamp("2021-10-09T11:49:20Z")
    rec = next(c for c in RECORDED_COLLECTIONS if c["id"] == "bigearthnet_v1_source")
    assert by_id.loc["bigearthnet_v1_source", "geometry"].equals(
        box(*rec["extent"]["spatial"]["bbox"][0])
    )
    assert by_id.loc["bigearthnet_v1_source", "doi"] == "10.14279/depositonce-10149"
    assert by_id.loc["bigearthnet_v1_source", "license"] == "CDLA-Permissive-1.0"
    open_end = [
        c["id"] for c in RECORDED_COLLECTIONS if c["extent"]["temporal"]["interval"][0][1] is None
    ]
    assert open_end and pd.isna(by_id.loc[open_end[0], "end_datetime"])


@pytest.mark.parametrize("how", ["id", "doi", "object"])
def test_collections_of_one_dataset(hub: Hub, how: str) -> None:
    ref: Any = {
        "id": "ref_african_crops_kenya_02",
        "doi": "10.34911/rdnt.dw605x",
        "object": Dataset.fetch("ref_african_crops_kenya_02", root_url=hub.url),
    }[how]
    df = mw.collections(ref, root_url=None if how == "object" else hub.url)
    assert list(df["id"]) == [
        "ref_african_crops_kenya_02_labels",
        "ref_african_crops_kenya_02_source",
    ]
    assert list(df["types"]) == [["labels"], ["source_imagery"]]
    assert set(df["dataset"]) == {"ref_african_crops_kenya_02"}


def test_collections_of_dataset_skip_unknown_collections(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    # the recorded agrifieldnet record names three collections /collections does not have
    df = mw.collections("ref_agrifieldnet_competition_v1", root_url=hub.url)
    known = {c["id"] for c in RECORDED_COLLECTIONS}
    rec = next(d for d in RECORDED_DATASETS if d["id"] == "ref_agrifieldnet_competition_v1")
    assert list(df["id"]) == [c["id"] for c in rec["collections"] if c["id"] in known]
    assert "ref_agrifieldnet_competition_v1_source" in caplog.text


def test_collections_of_missing_dataset(hub: Hub) -> None:
    with pytest.raises(EntityDoesNotExist, match="Dataset 'nope' does not exist"):
        mw.collections("nope", root_url=hub.url)


# ----------------------------------------------------------------------------------- items


def test_items_all_52_kenya_items_match_recording(hub: Hub) -> None:
    df = mw.items(KENYA, limit=None, root_url=hub.url, progress=False)
    assert isinstance(df, gpd.GeoDataFrame)
    assert list(df["id"]) == [i["id"] for i in RECORDED_ITEMS]
    assert list(df.columns[: len(discovery.ITEM_COLUMNS)]) == list(discovery.ITEM_COLUMNS)
    assert {"gsd", "platform", "instruments", "eo:bands"} <= set(df.columns)
    first, rec = df.iloc[0], RECORDED_ITEMS[0]
    assert first["collection"] == KENYA
    assert first["datetime"] == pd.Timestamp(rec["properties"]["datetime"])
    assert str(df["datetime"].dtype) == "datetime64[ns, UTC]"  # stac-geoparquet's unit
    assert first["gsd"] == rec["properties"]["gsd"] == 10
    assert first["platform"] == "Sentinel-2"
    assert first["eo:bands"] == rec["properties"]["eo:bands"]  # objects are kept too
    assert list(first["assets"]) == list(rec["assets"])
    for key, asset in first["assets"].items():  # href, type, roles, title, file:* as served
        assert {k: asset[k] for k in ("type", "roles", "title") if k in asset} == {
            k: rec["assets"][key][k] for k in ("type", "roles", "title") if k in rec["assets"][key]
        }
        assert asset["href"].startswith(hub.storage_url)
    assert first["bbox"] == rec["bbox"] and first["stac_version"] == rec["stac_version"]
    assert all(
        g.equals(shape(r["geometry"])) for g, r in zip(df.geometry, RECORDED_ITEMS, strict=True)
    )


def test_items_limit_is_honoured_without_over_fetching(hub: Hub, session: Session) -> None:
    urls = record_urls(session)
    df = mw.items(KENYA, limit=25, page_size=10, session=session)
    assert len(df) == 25
    assert [q["limit"] for q in item_queries(urls)] == [["10"], ["10"], ["5"]]
    urls.clear()
    assert len(mw.items(KENYA, limit=7, session=session)) == 7
    assert [q["limit"] for q in item_queries(urls)] == [["7"]]


def test_items_default_limit_is_100(hub: Hub, session: Session) -> None:
    urls = record_urls(session)
    mw.items(KENYA, session=session)
    assert [q["limit"] for q in item_queries(urls)] == [["100"]]


def test_items_bbox_is_sent_to_the_server(hub: Hub, session: Session) -> None:
    bbox = [34.0, 0.45, 34.25, 0.75]
    urls = record_urls(session)
    df = mw.items(KENYA, bbox=bbox, limit=None, session=session)
    query = box(*bbox)
    expected = [i["id"] for i in RECORDED_ITEMS if shape(i["geometry"]).intersects(query)]
    assert 0 < len(expected) < len(RECORDED_ITEMS)
    assert list(df["id"]) == expected
    assert all("bbox" in q for q in item_queries(urls))


def test_items_bbox_across_the_antimeridian(hub: Hub, session: Session) -> None:
    # 34.25°E eastwards to 170°W: the eastern Kenya tiles only
    urls = record_urls(session)
    df = mw.items(KENYA, bbox=[34.25, 0.0, -170.0, 1.0], limit=None, session=session)
    area = box(34.25, 0.0, 180.0, 1.0).union(box(-180.0, 0.0, -170.0, 1.0))
    expected = [i["id"] for i in RECORDED_ITEMS if shape(i["geometry"]).intersects(area)]
    assert 0 < len(expected) < len(RECORDED_ITEMS)
    assert list(df["id"]) == expected
    assert item_queries(urls)[0]["bbox"] == ["-180.0,0.0,180.0,1.0"]  # a valid prefilter


def test_items_datetime_filter(hub: Hub, session: Session) -> None:
    urls = record_urls(session)
    df = mw.items(KENYA, datetime="2019-07", limit=None, session=session)
    expected = [
        i["id"] for i in RECORDED_ITEMS if i["properties"]["datetime"].startswith("2019-07")
    ]
    assert 0 < len(expected) < len(RECORDED_ITEMS)
    assert list(df["id"]) == expected
    assert item_queries(urls)[0]["datetime"] == ["2019-07-01T00:00:00Z/2019-07-31T23:59:59.999999Z"]


def test_items_intersects_is_tested_against_item_geometry(hub: Hub, session: Session) -> None:
    # a thin triangle whose bbox overlaps more tiles than the triangle itself
    triangle = {
        "type": "Polygon",
        "coordinates": [[[34.05, 0.2], [34.36, 0.2], [34.05, 0.26], [34.05, 0.2]]],
    }
    urls = record_urls(session)
    df = mw.items(KENYA, intersects=triangle, limit=None, session=session)
    geom = shape(triangle)
    expected = [i["id"] for i in RECORDED_ITEMS if shape(i["geometry"]).intersects(geom)]
    in_bbox = [
        i["id"] for i in RECORDED_ITEMS if shape(i["geometry"]).intersects(box(*geom.bounds))
    ]
    assert 0 < len(expected) <= len(in_bbox) < len(RECORDED_ITEMS)
    assert list(df["id"]) == expected
    queries = item_queries(urls)
    assert all("bbox" in q and "intersects" not in q for q in queries)


def test_items_intersects_limit_counts_matching_items(hub: Hub, session: Session) -> None:
    area = {"type": "Point", "coordinates": [34.1, 0.3]}
    everything = mw.items(KENYA, intersects=area, limit=None, session=session)
    assert len(everything) > 2
    two = mw.items(KENYA, intersects=area, limit=2, session=session)
    assert list(two["id"]) == list(everything["id"][:2])


def test_items_empty_result_keeps_base_columns_and_dtypes(hub: Hub) -> None:
    empty = mw.items(KENYA, bbox=[-10, -10, -9, -9], root_url=hub.url)
    assert isinstance(empty, gpd.GeoDataFrame) and len(empty) == 0
    full = mw.items(KENYA, limit=3, root_url=hub.url)
    base = list(discovery.ITEM_COLUMNS)
    assert list(empty.columns) == base
    assert_same_schema(empty, full[base])


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"bbox": [1, 2, 3]}, ValueError),
        (
            {"bbox": [34, 0, 35, 1], "intersects": {"type": "Point", "coordinates": [34, 0]}},
            ValueError,
        ),
        ({"datetime": "not a date"}, ValueError),
        ({"limit": -3}, ValueError),
    ],
)
def test_items_validates_before_any_request(
    session: Session, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    urls = record_urls(session)
    with pytest.raises(error):
        mw.items(KENYA, session=session, **kwargs)
    assert urls == []


def test_items_missing_collection(hub: Hub) -> None:
    with pytest.raises(EntityDoesNotExist, match="Collection 'no_collection' does not exist"):
        mw.items("no_collection", root_url=hub.url)


def test_items_frame_builds_10000_items_fast() -> None:
    features = [copy.deepcopy(RECORDED_ITEMS[i % len(RECORDED_ITEMS)]) for i in range(10_000)]
    for i, f in enumerate(features):
        f["id"] = f"item-{i}"
    started = time.process_time()
    df = discovery.items_frame(features)
    elapsed = time.process_time() - started
    assert len(df) == 10_000 and df["id"].iloc[-1] == "item-9999"
    assert df.geometry.iloc[10].equals(shape(RECORDED_ITEMS[10]["geometry"]))
    assert elapsed < 1.5, f"items_frame took {elapsed:.2f}s of CPU for 10,000 items"


def test_items_frame_handles_mixed_and_missing_geometries() -> None:
    feats: list[dict[str, Any]] = [
        {"id": "poly", "geometry": RECORDED_ITEMS[0]["geometry"], "properties": {"a": 1}},
        {"id": "point", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {}},
        {"id": "none", "geometry": None, "properties": {"a": None, "b": {"x": 1}}},
        {
            "id": "3d",
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 0, 1]]],
            },
        },
        {"id": "bad", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}},
    ]
    df = discovery.items_frame(feats)
    assert list(df["id"]) == ["poly", "point", "none", "3d", "bad"]
    assert df.geometry.iloc[1].equals(shapely.Point(1, 2))
    assert df.geometry.iloc[2] is None and df.geometry.iloc[4] is None
    assert df.geometry.iloc[3].has_z
    assert list(df["a"].iloc[:1]) == [1]
    assert df["b"].iloc[2] == {"x": 1}  # object-valued properties are columns too


# ---------------------------------------------------------------------------------- models


def test_models_frame(hub: Hub) -> None:
    df = mw.models(root_url=hub.url)
    assert list(df.columns) == list(discovery.MODEL_COLUMNS)
    assert list(df["id"]) == [m["id"] for m in RECORDED_MODELS]
    cv4a = df.set_index("id").loc["model-cv4a-crop-detection-v1"]
    props = RECORDED_MODELS[0]["properties"]
    assert cv4a["architecture"] == props["ml-model:architecture"] == "cnn"
    assert cv4a["prediction_type"] == "segmentation"
    assert cv4a["learning_approach"] == "supervised"
    assert cv4a["training_processor_type"] == "gpu"
    assert cv4a["doi"] == props["sci:doi"]
    assert [u.rsplit("/", 1)[1] for u in cv4a["training_data"]] == [
        "ref_african_crops_kenya_02_source",
        "ref_african_crops_kenya_02_labels",
    ]
    assert cv4a["inferencing_image"] == "docker://docker.io/radiantearth/crop-detection-dl:1"
    assert cv4a["start_datetime"] == pd.Timestamp("2019-06-06T00:00:00Z")


def test_empty_models_frame_has_the_columns() -> None:
    df = discovery.models_frame([])
    assert list(df.columns) == list(discovery.MODEL_COLUMNS) and len(df) == 0


# ------------------------------------------------------------------------------------- CLI


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_datasets_table_and_geojson(hub: Hub, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "datasets", "--tags", "crop type", "--root-url", hub.url)
    assert code == 0
    expected = [d["id"] for d in client.list_datasets(tags="crop type", root_url=hub.url)]
    for ds_id in expected:
        assert ds_id in out
    assert "nasa_marine_debris" not in out
    assert f"({len(expected)} datasets)" in out
    code, out, _ = run_cli(
        capsys, "datasets", "--text", "marine debris", "--format", "geojson", "--root-url", hub.url
    )
    fc = json.loads(out)
    assert fc["type"] == "FeatureCollection"
    assert [f["properties"]["id"] for f in fc["features"]] == ["nasa_marine_debris"]
    assert fc["features"][0]["geometry"]["type"] == "MultiPolygon"
    assert fc["features"][0]["properties"]["date_added"].startswith("2021-")
    assert gpd.GeoDataFrame.from_features(fc["features"]).iloc[0]["id"] == "nasa_marine_debris"


def test_cli_honours_mlhub_root_url(
    hub: Hub, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLHUB_ROOT_URL", hub.url)
    code, out, _ = run_cli(capsys, "models", "--format", "csv")
    assert code == 0
    frame = pd.read_csv(__import__("io").StringIO(out))
    assert list(frame["id"]) == [m["id"] for m in RECORDED_MODELS]


def test_cli_collections_of_dataset(hub: Hub, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys, "collections", "--dataset", "10.34911/rdnt.dw605x", "--root-url", hub.url
    )
    assert code == 0
    assert "ref_african_crops_kenya_02_labels" in out and "ref_african_crops_kenya_02_source" in out
    assert "(2 collections)" in out


def test_cli_items_with_filters(hub: Hub, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys,
        "items",
        KENYA,
        "--datetime",
        "2019-07",
        "--limit",
        "3",
        "--format",
        "geojson",
        "--root-url",
        hub.url,
    )
    assert code == 0
    fc = json.loads(out)
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 3
    assert all(f["properties"]["datetime"].startswith("2019-07") for f in fc["features"])
    code, out, _ = run_cli(
        capsys, "items", KENYA, "--all", "--bbox", "34,0.45,34.25,0.75", "--root-url", hub.url
    )
    expected = [
        i for i in RECORDED_ITEMS if shape(i["geometry"]).intersects(box(34, 0.45, 34.25, 0.75))
    ]
    assert code == 0 and f"({len(expected)} items)" in out


def test_cli_info(hub: Hub, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "info", "ref_african_crops_kenya_02", "--root-url", hub.url)
    assert code == 0
    rec = next(d for d in RECORDED_DATASETS if d["id"] == "ref_african_crops_kenya_02")
    assert out.startswith(f"ref_african_crops_kenya_02: {rec['title']}")
    assert "Source imagery collections (1):\n    ref_african_crops_kenya_02_source" in out
    assert "Labels collections (1):\n    ref_african_crops_kenya_02_labels" in out
    size = (bundled_data_dir() / "archives/ref_african_crops_kenya_02_labels.tar.gz").stat().st_size
    assert f"ref_african_crops_kenya_02_labels  ({human_bytes(size)})" in out
    assert "ref_african_crops_kenya_02_source  (no archive)" in out
    assert "CC-BY-SA-4.0" in out and rec["citation"] in out


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["info", "no_such_dataset"], 1, "Dataset 'no_such_dataset' does not exist."),
        (["items", "no_collection"], 1, "Collection 'no_collection' does not exist."),
        (["items", KENYA, "--bbox", "1,2,x,4"], 2, "--bbox"),
        (["items", KENYA, "--bbox", "1,2,3"], 2, "bbox"),
        (["items", KENYA, "--bbox", "34,,0.45,34.25,0.75"], 2, "--bbox must be W,S,E,N numbers"),
        (["datasets", "--format", "xml"], 2, "invalid choice"),
    ],
)
def test_cli_errors(
    hub: Hub, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str
) -> None:
    got, _out, err = run_cli(capsys, *argv, "--root-url", hub.url)
    assert got == code
    assert message in err
    if code == 1:
        assert err.count("\n") == 1 and "Traceback" not in err


def test_human_bytes() -> None:
    assert human_bytes(None) == "unknown"
    assert human_bytes(999) == "999 B"
    assert human_bytes(263582) == "263.6 kB"
    assert human_bytes(169265765) == "169.3 MB"


def test_frames_plot_and_explore_with_the_plot_extra(hub: Hub, tmp_path: Path) -> None:
    """``.plot()`` (matplotlib) and ``.explore()`` (folium + mapclassify) work on the frames,
    as the notebooks use them: the ``plot`` extra (also in ``notebook``) brings them."""
    import matplotlib

    matplotlib.use("Agg")
    df = mw.collections("mlhub_widgets_demo_crops", root_url=hub.url)
    ax = df.plot(column="id", legend=True)
    assert len(ax.collections) >= 1  # the footprints were drawn
    ax.figure.savefig(tmp_path / "footprints.png")
    assert (tmp_path / "footprints.png").stat().st_size > 1000
    m = df.explore(column="id", tiles=None)
    html = m.get_root().render()
    assert "mlhub_widgets_demo_crops_source" in html and "geo_json" in html
