"""The map's panels without a browser: footprints highlighted and dimmed, the count while a
shape is drawn (from the map's mouse messages, as the browser sends them), an item's preview
from a click on its footprint, the place search, the basemap choice, and the On-disk tab.

The front end's messages are replayed into the widgets' message handlers (as geemap's tests do);
everything else is real: the bundled hub over HTTP, downloads to disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ipyleaflet as L
import pytest

from mlhub_widgets.exceptions import DownloadError
from mlhub_widgets.hub import FaultConfig, Hub, serve
from mlhub_widgets.widgets import Explorer, MapFilterPanel, OnDiskPanel
from mlhub_widgets.widgets.explorer_app import ON_DISK_TAB, TAB_TITLES
from mlhub_widgets.widgets.map_view import IMAGERY_URL
from mlhub_widgets.widgets.state import ExplorerState, Filters

DEMO = "mlhub_widgets_demo_crops"
SOURCE = f"{DEMO}_source"
PART = (34.0, 0.0, 34.5, 1.0)


@pytest.fixture()
def demo(hub: Hub, tmp_path: Path) -> ExplorerState:
    st = ExplorerState(output_dir=str(tmp_path / "out"))
    st.connect(root_url=hub.url, then_search=False)
    assert st.wait(60)
    st.select_dataset(DEMO)
    assert st.wait(120) and st.item_frame is not None, st.errors
    return st


def mouse(panel: MapFilterPanel, kind: str, lat: float, lon: float) -> None:
    """One mouse event as the browser's map sends it."""
    content = {"event": "interaction", "type": kind, "coordinates": [lat, lon], "location": ""}
    panel.map._handle_leaflet_event(None, content, [])


def click_layer(layer: L.GeoJSON, feature: dict[str, Any], lat: float, lon: float) -> None:
    """A click on a feature of a GeoJSON layer, as the browser sends it."""
    content = {
        "event": "click",
        "feature": feature,
        "properties": feature["properties"],
        "id": None,
        "coordinates": [lat, lon],
    }
    layer._handle_mouse_events(None, content, [])


def test_footprints_are_split_into_selected_and_left_out(demo: ExplorerState) -> None:
    panel = MapFilterPanel(demo, basemap=None)
    assert len(panel.items_in.data["features"]) == 216 and not panel.items_out.data["features"]
    assert "<b>216</b> of 216 items selected" in panel.items.count.value
    demo.filters = Filters(bbox=PART)
    assert demo.wait(30)
    n = demo.item_selection.count
    assert 0 < n < 216
    assert len(panel.items_in.data["features"]) == n
    assert len(panel.items_out.data["features"]) == 216 - n
    assert f"<b>{n}</b> of 216 items selected" in panel.items.count.value
    assert len(panel.items.items.options) == n  # the list holds the selected items


def test_count_follows_a_rectangle_while_it_is_drawn(demo: ExplorerState) -> None:
    panel = MapFilterPanel(demo, basemap=None)
    panel.map.zoom = 8
    mouse(panel, "mousedown", 1.0, 34.0)
    mouse(panel, "mousemove", 0.8, 34.2)
    mouse(panel, "mousemove", 0.0, 34.5)  # the rectangle (0, 34)-(1, 34.5) so far
    assert demo.wait(30)
    sel = demo.item_selection
    assert sel.sketch and 0 < sel.count < 216
    assert f"While drawing: <b>{sel.count}</b> of 216 items inside" in panel.items.count.value
    assert len(panel.items_in.data["features"]) == sel.count  # the map follows too
    during = sel.count
    mouse(panel, "mouseup", 0.0, 34.5)
    # the draw tool reports the finished shape: the filters take it
    panel.draw.data = [
        {
            "type": "Feature",
            "properties": {"style": {"color": "#d62728"}},
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[34, 0], [34, 1], [34.5, 1], [34.5, 0], [34, 0]]],
            },
        }
    ]
    assert demo.wait(30)
    assert demo.filters.bbox == (34, 0, 34.5, 1)
    assert not demo.item_selection.sketch and demo.item_selection.count == during
    assert "items selected" in panel.items.count.value


def test_a_click_on_a_footprint_previews_the_item(demo: ExplorerState) -> None:
    panel = MapFilterPanel(demo, basemap=None)
    feature = next(
        f for f in panel.items_in.data["features"] if f["properties"]["collection"] == SOURCE
    )
    click_layer(panel.items_in, feature, 0.5, 34.1)
    mouse(panel, "click", 0.5, 34.1)  # the map's own click follows: not a polygon vertex
    assert demo.wait(60)
    assert demo.sketch is None
    assert demo.preview_row == feature["properties"]["row"]
    pane = panel.items
    assert pane.detail.layout.display is None
    assert feature["properties"]["id"] in pane.detail_head.value
    assert pane.image.layout.display is None and bytes(pane.image.value).startswith(b"\x89PNG")
    assert "red, green, blue" in pane.note.value
    assert "eo:cloud_cover" in pane.facts.value
    assert panel.previewed.data["features"]  # the item is outlined on the map
    # another asset from the dropdown: the thumbnail
    pane.asset.value = "thumbnail"
    assert demo.wait(60)
    assert demo.preview.asset_key == "thumbnail" and pane.image.format == "png"
    pane.close_button.click()
    assert pane.detail.layout.display == "none" and not panel.previewed.data["features"]


def test_label_preview_is_drawn_on_the_map(demo: ExplorerState) -> None:
    panel = MapFilterPanel(demo, basemap=None)
    labels = [v for label, v in panel.items.items.options if "_labels_" in label]
    panel.items.items.value = labels[0]  # picked in the list
    assert demo.wait(60)
    assert demo.preview.kind == "labels"
    drawn = [f["geometry"] for f in panel.labels.data["features"]]
    assert drawn == [f["geometry"] for f in demo.preview.geojson["features"]]
    assert "drawn on the map" in panel.items.note.value


def test_place_search_zooms_and_sets_the_area(demo: ExplorerState) -> None:
    panel = MapFilterPanel(demo, basemap=None)
    panel.place.value = "Kenya"
    assert "Showing <b>Kenya</b>" in panel.message.value
    assert 33 < panel.map.center[1] < 42 and panel.map.zoom >= 4
    assert not panel.use_place.disabled
    panel.use_place.click()
    assert demo.filters.intersects is not None and demo.filters.bbox is None
    panel.place.value = "Atlantis"
    assert "No country called" in panel.message.value and panel.use_place.disabled


def test_basemap_choice_and_unreachable_tiles(demo: ExplorerState) -> None:
    panel = MapFilterPanel(demo, basemap=None)
    assert not [x for x in panel.map.layers if isinstance(x, L.TileLayer)]
    assert any(isinstance(c, L.FullScreenControl) for c in panel.map.controls)
    with serve() as other:  # a tile server that answers 404 for every tile
        url = other.url + "no-tiles/{z}/{x}/{y}.png"
        panel.basemap.options = [*panel.basemap.options, ("Test tiles", url)]
        panel.basemap.value = url
        assert [x.url for x in panel.map.layers if isinstance(x, L.TileLayer)] == [url]
        assert demo.wait(30)
        assert "cannot be reached from here" in panel.tiles_status.value
        assert "HTTP 404" in panel.tiles_status.value
    panel.basemap.value = None
    assert not [x for x in panel.map.layers if isinstance(x, L.TileLayer)]
    assert panel.tiles_status.value == ""
    assert IMAGERY_URL in [u for _l, u in panel.basemap.options]


def test_on_disk_tab_after_a_download_with_a_failure(tmp_path: Path) -> None:
    with serve() as hub:
        st = ExplorerState(output_dir=str(tmp_path / "out"))
        ex = Explorer(st, basemap=None)
        assert (
            TAB_TITLES[ON_DISK_TAB] == "7 · On disk" and ex.tabs.children[ON_DISK_TAB] is ex.on_disk
        )
        st.connect(root_url=hub.url, then_search=False)
        assert st.wait(60)
        st.select_dataset(DEMO)
        assert st.wait(120)
        st.filters = Filters(bbox=PART, collection_filter={SOURCE: ("image",)})
        assert st.wait(30)
        row = min(st.item_selection.selected)
        broken = st.item_record(row)["assets"]["image"]["href"]
        hub.faults = FaultConfig(missing=frozenset({broken}))
        st.start_download()
        assert st.wait(60)
        with pytest.raises(DownloadError):
            st.job.wait(120)
        assert st.wait(60)  # the folder is read again when the job ends
        panel: OnDiskPanel = ex.on_disk
        disk = st.disk
        assert disk.failed_count == 1
        assert f"<b>{disk.files}</b> files on disk" in panel.summary.value
        assert "1 failed asset" in panel.failed.value and "404" in panel.failed.value
        folder = str(tmp_path / "out" / DEMO)
        assert f'<code class="mlhub-copy">{folder}</code>' in panel.paths.value
        assert f"mw.open_local(&#x27;{folder}&#x27;)" in panel.snippet.value
        assert len(panel.files_failed.data["features"]) == 1
        assert len(panel.files_on_disk.data["features"]) == disk.files
        assert not panel.retry_button.disabled and panel.retry_button.description == (
            "Retry 1 failed asset"
        )
        hub.faults = FaultConfig()
        panel.retry_button.click()
        assert st.wait(60)
        st.job.wait(120)
        assert st.wait(60)
        assert st.disk.failed_count == 0 and panel.retry_button.disabled
        assert "<b>0</b> failed" in panel.summary.value
        assert not panel.files_failed.data["features"]
        # opening the tab reads the folder again
        (Path(folder) / "err_report.csv").write_text(
            "collection_id,item_id,asset_key,url,path,status,error,attempts\n"
            f"{SOURCE},x,image,http://h/x,x.tif,404,Not Found,1\n"
        )
        ex.tabs.selected_index = 0
        ex.tabs.selected_index = ON_DISK_TAB
        assert st.wait(60)
        assert (
            st.disk.failed_count == 1 and "Retry 1 failed asset" in panel.retry_button.description
        )
