"""STAC-native results: ``items()`` in stac-geoparquet's layout, ``item_collection()``, the round
trip through stac-geoparquet, valid STAC out, and ``mlhub … --format geojson|parquet``.

Everything runs against the bundled hub over real HTTP; the other side of each round trip is the
real ``stac-geoparquet`` package (and pyarrow, geopandas) reading what we wrote.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyarrow.parquet as pq
import pystac
import pytest
import shapely
import stac_geoparquet
from shapely.geometry import box, shape
from stac_geoparquet.arrow import stac_table_to_items

import mlhub_widgets as mw
from mlhub_widgets.cli import main
from mlhub_widgets.discovery import _item_features
from mlhub_widgets.exceptions import MissingDependencyError
from mlhub_widgets.hub import Hub

from .stac_schemas import offline_schemas, stac_validator_errors

KENYA = "ref_african_crops_kenya_02_source"
DEMO_LABELS = "mlhub_widgets_demo_crops_labels"
DEMO_SOURCE = "mlhub_widgets_demo_crops_source"
NASA_LABELS = "nasa_marine_debris_labels"
COLLECTIONS = [KENYA, DEMO_LABELS, NASA_LABELS]
JSON = dict[str, Any]


def served(hub: Hub, collection: str) -> list[JSON]:
    """The collection's items exactly as the hub serves them (the reference)."""
    return _item_features(
        collection,
        bbox=None,
        intersects=None,
        datetime=None,
        limit=None,
        page_size=None,
        progress=False,
        source=None,
        session=None,
        session_kwargs={"root_url": hub.url},
    )


def without_nulls(value: Any) -> Any:
    """``value`` without null members: Parquet stores a member missing from some objects of a
    list as null in the others (a struct column has one set of fields)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def normalised(item: JSON) -> JSON:
    """An item for comparison: timestamps as instants, geometry as WKT, no null members,
    no ``stac_version`` (pystac writes its own)."""
    item = without_nulls(item)
    out = {k: v for k, v in item.items() if k not in ("properties", "geometry", "stac_version")}
    out["geometry"] = None if item.get("geometry") is None else shape(item["geometry"]).wkt
    props: JSON = {}
    for key, value in (item.get("properties") or {}).items():
        if key.endswith("datetime"):
            value = pd.Timestamp(value).isoformat()
        props[key] = value
    out["properties"] = props
    return out


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_items_frame_is_the_frame_stac_geoparquet_builds(hub: Hub, collection: str) -> None:
    features = served(hub, collection)
    ours = mw.items(collection, limit=None, root_url=hub.url, progress=False)
    theirs = stac_geoparquet.to_geodataframe(
        copy.deepcopy(features), dtype_backend="numpy_nullable"
    )
    assert len(ours) == len(features) > 0
    # the same columns (ours always has the three datetime columns first among the properties)
    assert list(ours.columns[:9]) == list(theirs.columns[:9])  # type … collection
    assert set(theirs.columns) <= set(ours.columns)
    assert set(ours.columns) - set(theirs.columns) <= {"start_datetime", "end_datetime"}
    for column in theirs.columns:
        if str(theirs[column].dtype) == "datetime64[ns]":  # all null: naive for them, UTC for us
            assert ours[column].isna().all() and str(ours[column].dtype) == "datetime64[ns, UTC]"
            continue
        pd.testing.assert_series_equal(ours[column], theirs[column], obj=column)
    assert ours.crs is not None and ours.crs.equals(theirs.crs)


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_round_trip_items_to_item_collection_to_stac_geoparquet_and_back(
    hub: Hub, collection: str, tmp_path: Path
) -> None:
    features = served(hub, collection)
    expected = [normalised(f) for f in features]
    frame = mw.items(collection, limit=None, root_url=hub.url, progress=False)

    # the frame → pystac, with stac-geoparquet's own converter
    from_frame = stac_geoparquet.to_item_collection(frame)
    assert isinstance(from_frame, pystac.ItemCollection)
    assert [normalised(i.to_dict(transform_hrefs=False)) for i in from_frame] == expected
    # the same items straight from the API
    direct = mw.item_collection(collection, limit=None, root_url=hub.url, progress=False)
    assert [normalised(i.to_dict(transform_hrefs=False)) for i in direct] == expected

    # → a stac-geoparquet file → back, read by stac-geoparquet, pyarrow and geopandas
    path = mw.to_geoparquet(direct, tmp_path / "items.parquet")
    back = list(stac_table_to_items(pq.read_table(path)))
    assert [normalised(i) for i in back] == expected
    table = gpd.read_parquet(path)
    assert list(table["id"]) == list(frame["id"])
    assert all(a.equals(b) for a, b in zip(table.geometry, frame.geometry, strict=True))
    metadata = pq.read_metadata(path).metadata
    assert b"geo" in metadata  # GeoParquet metadata, as stac-geoparquet writes it


def test_item_collection_takes_the_filters_of_items(hub: Hub) -> None:
    bbox = [34.0, 0.45, 34.25, 0.75]
    frame = mw.items(KENYA, bbox=bbox, datetime="2019-07", limit=None, root_url=hub.url)
    found = mw.item_collection(KENYA, bbox=bbox, datetime="2019-07", limit=None, root_url=hub.url)
    assert 0 < len(found) == len(frame) < 52
    assert [i.id for i in found] == list(frame["id"])
    assert all(i.datetime is not None and i.datetime.month == 7 for i in found)
    assert all(shape(i.geometry).intersects(box(*bbox)) for i in found)
    assert len(mw.item_collection(KENYA, limit=5, root_url=hub.url)) == 5
    with pytest.raises(ValueError):
        mw.item_collection(KENYA, bbox=[1, 2, 3], root_url=hub.url)


def test_item_collection_keeps_items_as_served(hub: Hub) -> None:
    found = mw.item_collection(KENYA, limit=3, root_url=hub.url)
    first = found[0]
    raw = served(hub, KENYA)[0]
    # no migration: the extensions the server declared, the assets with their file fields
    assert first.stac_extensions == raw["stac_extensions"]
    assert {k: a.to_dict() for k, a in first.assets.items()} == raw["assets"]
    fc = found.to_dict(transform_hrefs=False)
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 3


def findings_of(errors: list[JSON]) -> set[str]:
    """stac-validator's messages, cut before their (long) details."""
    return {
        str(e.get("error_message")).split(". Error is in")[0].split(" is not one of")[0]
        for e in errors
    }


@pytest.mark.parametrize(
    ("collection", "recorded"),
    [
        (DEMO_LABELS, set()),
        (DEMO_SOURCE, set()),
        # findings of the recorded upstream data (docs/stac-api.md), nothing else
        (NASA_LABELS, {"'label:properties' is a required property"}),
        (KENYA, {"'Coastal aerosol'"}),  # an eo:bands common_name eo 1.0.0 does not know
    ],
)
def test_item_collection_results_are_valid_stac(
    hub: Hub, collection: str, recorded: set[str]
) -> None:
    found = mw.item_collection(collection, limit=None, root_url=hub.url)
    findings: set[str] = set()
    with offline_schemas() as schemas:
        for feature in found.to_dict(transform_hrefs=False)["features"]:
            findings |= findings_of(stac_validator_errors(feature))
        assert not schemas.missing, sorted(schemas.missing)
    assert findings == recorded


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_items_geojson_is_the_item_collection(
    hub: Hub, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(
        capsys, "items", DEMO_LABELS, "--limit", "5", "--format", "geojson", "--root-url", hub.url
    )
    assert code == 0
    fc = json.loads(out)
    expected = mw.item_collection(DEMO_LABELS, limit=5, root_url=hub.url)
    assert fc == expected.to_dict(transform_hrefs=False)
    assert pystac.ItemCollection.from_dict(fc)[0].id == expected[0].id


def test_cli_items_parquet_is_stac_geoparquet(
    hub: Hub, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_file = tmp_path / "labels.parquet"
    code, _, err = run_cli(
        capsys, "items", DEMO_LABELS, "--all", "--format", "parquet", "-o", str(out_file),
        "--root-url", hub.url,
    )  # fmt: skip
    assert code == 0, err
    back = list(stac_table_to_items(pq.read_table(out_file)))
    assert [normalised(i) for i in back] == [normalised(f) for f in served(hub, DEMO_LABELS)]


def test_cli_parquet_to_a_redirected_stdout(hub: Hub, tmp_path: Path) -> None:
    target = tmp_path / "datasets.parquet"
    with open(target, "wb") as fh:
        done = subprocess.run(
            [sys.executable, "-m", "mlhub_widgets.cli", "datasets", "--format", "parquet"],
            stdout=fh,
            stderr=subprocess.PIPE,
            env={"MLHUB_ROOT_URL": hub.url, "PATH": "/usr/bin:/bin"},
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    frame = gpd.read_parquet(target)
    expected = mw.datasets(root_url=hub.url)
    assert list(frame["id"]) == list(expected["id"])
    assert list(frame["tags"].map(list)) == list(expected["tags"])
    assert all(
        (a is None and b is None) or a.equals(b)
        for a, b in zip(frame.geometry, expected.geometry, strict=True)
    )


def test_cli_collections_geojson_and_csv(hub: Hub, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys, "collections", "--dataset", "mlhub_widgets_demo_crops", "--format", "geojson",
        "--root-url", hub.url,
    )  # fmt: skip
    assert code == 0
    fc = json.loads(out)
    assert [f["properties"]["id"] for f in fc["features"]] == [DEMO_SOURCE, DEMO_LABELS]
    assert all(shapely.geometry.shape(f["geometry"]).area > 0 for f in fc["features"])
    code, out, _ = run_cli(
        capsys, "items", DEMO_LABELS, "--limit", "2", "--format", "csv", "--root-url", hub.url
    )
    assert code == 0
    rows = pd.read_csv(__import__("io").StringIO(out))
    assert list(rows["id"].str.startswith(DEMO_LABELS)) == [True, True]
    assets = json.loads(rows["assets"].iloc[0])  # objects as JSON text
    assert assets["labels"]["roles"] == ["labels"] and "file:checksum" in assets["labels"]


def test_parquet_needs_a_file_or_a_redirect(
    hub: Hub, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, out, err = run_cli(capsys, "datasets", "--format", "parquet", "--root-url", hub.url)
    assert (code, out) == (2, "")
    assert "--format parquet is binary: give --output FILE or redirect stdout" in err


def test_geoparquet_without_its_extra_says_which(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = mw.item_collection(DEMO_LABELS, limit=2, root_url=hub.url)
    monkeypatch.setitem(sys.modules, "stac_geoparquet.arrow", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match=r"mlhub_widgets\[geoparquet\]"):
        mw.to_geoparquet(found, tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()
    with pytest.raises(ValueError, match="no items"):
        monkeypatch.delitem(sys.modules, "stac_geoparquet.arrow")
        mw.to_geoparquet([], tmp_path / "x.parquet")


def test_to_geoparquet_writes_an_items_frame_as_its_items(hub: Hub, tmp_path: Path) -> None:
    frame = mw.items(NASA_LABELS, limit=20, root_url=hub.url, progress=False)
    path = mw.to_geoparquet(frame, tmp_path / "frame.parquet")  # the frame, as users hold it
    expected = [normalised(f) for f in served(hub, NASA_LABELS)[:20]]
    assert [normalised(i) for i in stac_table_to_items(pq.read_table(path))] == expected
    # any other frame is not items: one line saying what it takes, nothing written
    with pytest.raises(ValueError, match="to_geoparquet takes STAC items") as exc:
        mw.to_geoparquet(mw.datasets(root_url=hub.url), tmp_path / "datasets.parquet")
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "datasets.parquet").exists()
