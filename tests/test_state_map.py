"""The map's logic without a browser: which item footprints the filters select (the download's
own decision), the count while a shape is drawn, item previews, the offline place search, and
the On-disk view with Retry. Everything talks to the real bundled hub over HTTP.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import sys
from pathlib import Path

import pytest

from mlhub_widgets.hub import FaultConfig, Hub, serve
from mlhub_widgets.local import open_local
from mlhub_widgets.widgets.state import ExplorerState, Filters
from mlhub_widgets.widgets.state.footprints import NO_SKETCH, SketchTracker, box_geometry
from mlhub_widgets.widgets.state.on_disk import read_disk
from mlhub_widgets.widgets.state.places import find_place
from mlhub_widgets.widgets.state.preview import MISSING_RASTERIO

DEMO = "mlhub_widgets_demo_crops"
SOURCE = f"{DEMO}_source"
LABELS = f"{DEMO}_labels"
#: A part of Kenya that holds some of the demo items (the others are on other continents).
PART = (34.0, 0.0, 34.5, 1.0)


def _demo_state(hub: Hub, out: Path) -> ExplorerState:
    st = ExplorerState(output_dir=str(out))
    st.connect(root_url=hub.url)
    assert st.wait(60) and st.session is not None, st.errors
    st.select_dataset(DEMO)
    assert st.wait(120), st.busy
    assert st.item_frame is not None, st.errors
    return st


@pytest.fixture()
def demo(hub: Hub, tmp_path: Path) -> ExplorerState:
    return _demo_state(hub, tmp_path / "out")


def _ids(st: ExplorerState) -> set[tuple[str, str]]:
    out = set()
    for row in st.item_selection.selected:
        record = st.item_record(row)
        assert record is not None
        out.add((record["collection"], record["id"]))
    return out


# -- footprints --------------------------------------------------------------------------------


def test_items_are_loaded_and_all_selected_without_filters(demo: ExplorerState) -> None:
    frame = demo.item_frame
    assert len(frame) == 216 and set(frame["collection"]) == {SOURCE, LABELS}
    assert "assets" in frame.columns and frame.crs.to_epsg() == 4326
    sel = demo.item_selection
    assert (sel.count, sel.total, sel.sketch) == (216, 216, False)
    assert "216 items on the map" in demo.notices["items"]
    # every item has a footprint feature that knows its row
    features = demo.item_features()
    assert sorted(f["properties"]["row"] for f in features) == list(range(216))


def test_selected_items_are_the_items_the_download_fetches(hub: Hub, tmp_path: Path) -> None:
    st = _demo_state(hub, tmp_path / "out")
    st.filters = Filters(
        bbox=PART,
        start=dt.date(2021, 1, 1),
        end=dt.date(2021, 12, 31),
        collection_filter={SOURCE: ("image",), LABELS: ()},
    )
    assert st.wait(30)
    selected = _ids(st)
    assert 0 < len(selected) < 216
    st.start_download()
    assert st.wait(60)
    st.job.wait(120)
    assert st.job_state == "finished", st.errors
    # the items with a file of their own on disk are exactly the items counted as selected
    # (files shared by every label item, such as _common/documentation.pdf, are left aside)
    assets = open_local(tmp_path / "out" / DEMO).items()
    own = assets[assets["item"].notna() & ~assets["path"].duplicated(keep=False)]
    on_disk = {(r.collection, r.item) for r in own.itertuples() if r.present}
    assert on_disk == selected
    # the content filter counts too: without the labels collection, no label item is selected
    st.filters = st.filters.with_collection_filter({SOURCE: ["image"]})
    assert st.wait(30)
    assert _ids(st) == {(c, i) for c, i in selected if c == SOURCE}


def test_filters_that_cannot_download_select_nothing_and_say_why(demo: ExplorerState) -> None:
    demo.filters = Filters(start=dt.date(2021, 6, 1), end=dt.date(2021, 1, 1))
    assert demo.wait(30)
    sel = demo.item_selection
    assert sel.count == 0 and "before the start date" in sel.problem


def test_count_follows_the_shape_being_drawn(demo: ExplorerState) -> None:
    demo.filters = Filters(bbox=PART)
    assert demo.wait(30)
    in_part = demo.item_selection.count
    wider = box_geometry((-89.0, -179.0), (89.0, 179.0))  # (lat, lon) corners: the world
    demo.preview_area(wider)
    assert demo.wait(30)
    assert demo.item_selection.sketch and demo.item_selection.count == 216
    # many moves: only the last shape counts (the worker coalesces them)
    for i in range(50):
        demo.preview_area(box_geometry((0.0, 34.0), (0.0 + i * 0.02, 34.0 + i * 0.01)))
    demo.preview_area(box_geometry((0.0, 34.0), (1.0, 34.5)))
    assert demo.wait(30)
    assert demo.item_selection.sketch and demo.item_selection.count == in_part
    demo.preview_area(None)  # the drawing ended: back to the filters
    assert demo.wait(30)
    assert not demo.item_selection.sketch and demo.item_selection.count == in_part


def test_sketch_tracker_tells_drawing_from_panning_and_clicks() -> None:
    t = SketchTracker()
    zoom = 8.0  # about 0.0055 degrees per pixel
    # a pan: the point under the mouse stays where it was pressed
    t.feed("mousedown", 1.0, 34.0, zoom)
    for _ in range(5):
        assert t.feed("mousemove", 1.0001, 34.0001, zoom) is None
    assert t.feed("mouseup", 1.0, 34.0, zoom) is None
    # a rectangle: the mouse goes away from the press point; the release ends the sketch
    t.feed("mousedown", 1.0, 34.0, zoom)
    assert t.feed("mousemove", 0.8, 34.2, zoom) is None  # one move could be a fast pan
    sketch = t.feed("mousemove", 0.5, 34.5, zoom)
    assert sketch == box_geometry((1.0, 34.0), (0.5, 34.5))
    assert t.feed("mouseup", 0.5, 34.5, zoom) is NO_SKETCH
    # a click that a layer received (outside drawing) is not a vertex
    t.layer_clicked()
    assert t.feed("click", 0.2, 34.2, zoom) is None
    assert t.feed("mousemove", 0.3, 34.3, zoom) is None
    # polygon vertices: clicks no layer received; the mouse closes the polygon
    assert t.feed("click", 0.0, 34.0, zoom) is None
    assert t.feed("click", 0.0, 34.4, zoom) is None  # two vertices: a line, no area yet
    poly = t.feed("mousemove", 0.4, 34.2, zoom)  # ... and the mouse: a triangle
    assert poly is not None and poly["type"] == "Polygon"
    assert poly["coordinates"][0] == [[34.0, 0.0], [34.4, 0.0], [34.2, 0.4], [34.0, 0.0]]
    t.reset()  # the draw tool reported the shape
    assert t.sketch is None and t.feed("mousemove", 0.5, 34.5, zoom) is None


# -- previews ----------------------------------------------------------------------------------


def _row(st: ExplorerState, collection: str) -> int:
    frame = st.item_frame
    return int(frame.index[frame["collection"] == collection][0])


def test_preview_of_a_raster_is_a_quicklook_png(demo: ExplorerState) -> None:
    from PIL import Image

    row = _row(demo, SOURCE)
    demo.preview_item(row)
    assert demo.wait(60)
    p = demo.preview
    assert p is not None and p.kind == "raster", (p, demo.errors)
    assert p.asset_key == "image" and "red, green, blue" in p.note
    img = Image.open(io.BytesIO(p.image))
    assert img.format == "PNG" and img.size == (32, 32) and img.mode == "RGBA"
    assert len(img.getcolors(4096) or []) > 10  # a picture, not a blank square
    # another asset of the same item: the thumbnail PNG as it is
    demo.preview_item(row, "thumbnail")
    assert demo.wait(60)
    assert demo.preview.kind == "image" and demo.preview.image.startswith(b"\x89PNG")


def test_preview_of_a_label_item_draws_its_geojson(demo: ExplorerState) -> None:
    row = _row(demo, LABELS)
    demo.preview_item(row)
    assert demo.wait(60)
    p = demo.preview
    assert p is not None and p.kind == "labels" and p.asset_key == "labels", (p, demo.errors)
    href = demo.item_record(row)["assets"]["labels"]["href"]
    served = demo.session.get(href).json()
    assert p.geojson["features"] == served["features"]
    assert f"{len(served['features'])} label features" in p.note


def test_preview_names_the_extra_when_rasterio_is_missing(
    demo: ExplorerState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "rasterio.io", None)  # as if rasterio were not installed
    demo.preview_item(_row(demo, SOURCE))
    assert demo.wait(60)
    assert demo.preview.kind == "none" and demo.preview.note == MISSING_RASTERIO
    assert "mlhub_widgets[preview]" in MISSING_RASTERIO


def test_preview_of_a_missing_asset_is_a_clear_error(hub: Hub, tmp_path: Path) -> None:
    with serve() as own:
        st = _demo_state(own, tmp_path)
        row = _row(st, SOURCE)
        href = st.item_record(row)["assets"]["image"]["href"]
        own.faults = FaultConfig(missing=frozenset({href}))
        st.preview_item(row)
        assert st.wait(60)
        assert st.preview is None
        assert "404" in st.errors["preview"] or "not" in st.errors["preview"]
        assert "Traceback" not in st.errors["preview"]


# -- place search ------------------------------------------------------------------------------


def test_place_search_offline() -> None:
    kenya = find_place("kenya")
    assert kenya.name == "Kenya" and kenya.geometry["type"] in ("Polygon", "MultiPolygon")
    w, s, e, n = kenya.bounds
    assert 33 < w < 35 and 41 < e < 42 and -5 < s < -4 and 4 < n < 6
    assert find_place("KEN").name == "Kenya"  # ISO code
    assert find_place("Tanz").name == "Tanzania"  # a unique start
    point = find_place("0.5, 34.1")
    assert point.geometry == {"type": "Point", "coordinates": [34.1, 0.5]}
    box = find_place("34, 0, 35, 1")
    assert box.bounds == (34.0, 0.0, 35.0, 1.0)
    with pytest.raises(ValueError, match="countries match"):
        find_place("south")
    with pytest.raises(ValueError, match="No country called"):
        find_place("Atlantis")
    with pytest.raises(ValueError, match="latitude"):
        find_place("95, 10")


# -- on disk and retry -------------------------------------------------------------------------


def test_on_disk_view_lists_files_and_retry_fetches_only_the_failed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with serve() as hub:
        st = _demo_state(hub, out)
        assert st.disk is None  # nothing read yet
        st.refresh_disk()
        assert st.wait(30)
        # selecting the dataset wrote nothing into the download folder
        assert not st.disk.catalog and st.disk.files == 0
        assert st.disk.note.startswith("Nothing has been downloaded into")
        assert not out.exists()
        st.filters = Filters(bbox=PART, collection_filter={SOURCE: ("image",)})
        assert st.wait(30)
        selected = [st.item_record(r) for r in sorted(st.item_selection.selected)]
        broken = {r["assets"]["image"]["href"] for r in selected[:2]}
        hub.faults = FaultConfig(missing=frozenset(broken))
        st.start_download()
        assert st.wait(60)
        with pytest.raises(Exception, match="2 of"):
            st.job.wait(120)
        assert st.wait(60)  # the view is read again after the job
        disk = st.disk
        assert disk is not None and disk.failed_count == 2, disk
        assert {f.url for f in disk.failed} == broken
        assert disk.files == len(selected) - 2 and disk.bytes > 0
        assert disk.catalog.endswith("catalog.json") and Path(disk.report).is_file()
        # the snippet loads the dataset as the tab shows it
        scope: dict[str, object] = {}
        exec(disk.snippet, scope)
        assert int(scope["assets"]["present"].sum()) == disk.files

        # the hub's fault is cleared: Retry fetches the two failed assets and nothing else
        hub.faults = FaultConfig()
        hub.reset_counters()
        st.retry_download()
        assert st.wait(60)
        st.job.wait(120)
        assert st.job_state == "finished", st.errors
        assert st.wait(60)
        assert hub.count("asset", "GET") == 2
        assert st.disk.failed_count == 0 and st.disk.files == len(selected)
        assert read_disk(out / DEMO).files == len(selected)


def test_retry_without_a_previous_download_resumes_the_current_selection(
    tmp_path: Path,
) -> None:
    with serve() as hub:
        st = _demo_state(hub, tmp_path / "out")
        st.filters = Filters(bbox=PART, collection_filter={LABELS: ("labels",)})
        st.if_exists = "overwrite"  # Retry never overwrites: it resumes
        assert st.wait(30)
        st.retry_download()
        assert st.wait(60)
        summary = st.job.wait(120)
        assert summary.assets_downloaded == st.item_selection.count
        hub.reset_counters()
        st.retry_download()  # everything is there: nothing is fetched again
        assert st.wait(60)
        st.job.wait(120)
        assert hub.count("asset", "GET") == 0


def test_read_disk_of_a_folder_without_catalogue(tmp_path: Path) -> None:
    assert "Nothing has been downloaded" in read_disk(tmp_path / "ds").note
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "err_report.csv").write_text(
        "collection_id,item_id,asset_key,url,path,status,error,attempts\n"
        "c,i,k,http://h/x,c/i/k.tif,404,Not Found,1\n"
    )
    view = read_disk(tmp_path / "ds")
    assert view.exists and view.assets is None and "No catalogue" in view.note
    assert view.failed_count == 1 and view.failed[0].reason == "HTTP 404: Not Found"
    (tmp_path / "ds" / "err_report.csv").write_text(
        "collection_id,item_id,asset_key,url,path,status,error,attempts\n"
        "c,i,k,http://h/x,c/i/k.tif,404,HTTP 404 Not Found,1\n"
    )
    assert read_disk(tmp_path / "ds").failed[0].reason == "HTTP 404 Not Found"
    assert "mw.open_local(" in view.snippet and json.dumps(str(tmp_path / "ds"))[1:-1] in (
        view.snippet.replace("\\\\", "\\")
    )
