"""The explorer's selection as STAC: ``ExplorerState.selection_item_collection()`` and
``export_selection()`` (stac-geoparquet or GeoJSON), against the bundled hub over real HTTP.
The explorerui panels put these behind a button; this tests the view-model itself."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pystac
import pytest
from stac_geoparquet.arrow import stac_table_to_items

import mlhub_widgets as mw
from mlhub_widgets.hub import Hub
from mlhub_widgets.widgets.state import ExplorerState, Filters

DEMO = "mlhub_widgets_demo_crops"
SOURCE = f"{DEMO}_source"
LABELS = f"{DEMO}_labels"
KENYA = (33.5, -5.0, 42.0, 5.0)


@pytest.fixture()
def state(hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ExplorerState:
    monkeypatch.setenv("MLHUB_HOME", str(tmp_path / "mlhub-home"))
    st = ExplorerState(output_dir=str(tmp_path / "out"))
    st.connect(root_url=hub.url, then_search=False)
    assert st.wait(60) and st.session is not None, st.errors
    st.select_dataset(DEMO)
    assert st.wait(120) and st.collections is not None, st.errors
    return st


def test_the_selection_is_the_items_of_its_collections_area_and_dates(
    hub: Hub, state: ExplorerState
) -> None:
    state.filters = Filters(bbox=KENYA, start="2021-01-01", end="2021-12-31")
    found = state.selection_item_collection()
    assert isinstance(found, pystac.ItemCollection)
    expected = [
        *mw.item_collection(
            SOURCE, bbox=list(KENYA), datetime="2021", limit=None, root_url=hub.url
        ),
        *mw.item_collection(
            LABELS, bbox=list(KENYA), datetime="2021", limit=None, root_url=hub.url
        ),
    ]
    assert [i.id for i in found] == [i.id for i in expected] and len(found) == 12 + 6
    assert {i.properties["country"] for i in found} == {"Kenya"}
    # the content filter narrows the collections (items stay whole)
    state.filters = state.filters.with_collection_filter({LABELS: ["labels"]})
    labels = state.selection_item_collection()
    assert {i.collection_id for i in labels} == {LABELS} and len(labels) == 6
    assert set(labels[0].assets) == {"labels", "documentation", "train_split", "test_split"}


@pytest.mark.parametrize("name", ["selection.parquet", "selection.geojson"])
def test_export_selection_writes_the_items(
    hub: Hub, state: ExplorerState, tmp_path: Path, name: str
) -> None:
    state.filters = Filters(bbox=KENYA, collection_filter={SOURCE: ["image"]})
    target = tmp_path / "exports" / name
    state.export_selection(target)
    assert state.wait(120)
    assert "export" not in state.errors, state.errors
    assert state.export_path == str(target)
    assert state.notices["export"] == f"24 items written to {target}"
    expected = state.selection_item_collection()
    if name.endswith(".parquet"):
        back = list(stac_table_to_items(pq.read_table(target)))
        assert [i["id"] for i in back] == [i.id for i in expected]
    else:
        fc = json.loads(target.read_text())
        assert fc == expected.to_dict(transform_hrefs=False)
        assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 24


def test_export_refuses_what_cannot_be_exported(state: ExplorerState, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"end the name with \.parquet"):
        state.export_selection(tmp_path / "x.txt")
    state.filters = Filters(collection_filter={})
    with pytest.raises(ValueError, match="No asset key is selected"):
        state.export_selection(tmp_path / "x.parquet")
    empty = ExplorerState()
    with pytest.raises(ValueError, match="No dataset selected"):
        empty.selection_item_collection()


def test_a_failed_export_is_an_error_for_the_user(state: ExplorerState, tmp_path: Path) -> None:
    state.filters = Filters(bbox=(-10.0, -10.0, -9.0, -9.0))  # nothing there
    state.export_selection(tmp_path / "none.parquet")
    assert state.wait(120)
    assert "no items to write" in state.errors["export"]
    assert state.export_path == "" and not (tmp_path / "none.parquet").exists()
