"""Each panel without a browser: set widget values and check the state, and the other way round.

Everything talks to the real bundled hub (the ``hub`` fixture of conftest.py).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import ipyleaflet as L
import pytest

from mlhub_widgets.hub import FaultConfig, Hub, serve
from mlhub_widgets.widgets import (
    ContentFilterPanel,
    DateRangePanel,
    DownloadPanel,
    LoginPanel,
    MapFilterPanel,
    OnDiskPanel,
    SearchPanel,
)
from mlhub_widgets.widgets.map_filter import OUTLINES, POLYGON_COLOR, RECTANGLE_COLOR
from mlhub_widgets.widgets.state import ExplorerState, Filters

DEMO = "mlhub_widgets_demo_crops"
SOURCE = f"{DEMO}_source"
LABELS = f"{DEMO}_labels"


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("MLHUB_API_KEY", "MLHUB_PROFILE", "MLHUB_ROOT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLHUB_HOME", str(tmp_path / "mlhub-home"))
    return tmp_path


@pytest.fixture()
def state(hub: Hub, home: Path) -> ExplorerState:
    st = ExplorerState(output_dir=str(home / "out"))
    st.connect(root_url=hub.url)
    assert st.wait(60) and st.session is not None
    return st


@pytest.fixture()
def demo_state(state: ExplorerState) -> ExplorerState:
    state.select_dataset(DEMO)
    assert state.wait(120)
    assert state.asset_keys, state.errors
    return state


def until(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


def rect(w: float, s: float, e: float, n: float, color: str = RECTANGLE_COLOR) -> dict:
    ring = [[w, s], [w, n], [e, n], [e, s], [w, s]]
    return {
        "type": "Feature",
        "properties": {"style": {"color": color}},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


# -- LoginPanel --------------------------------------------------------------------------------


def test_login_panel_connects_and_shows_errors(home: Path) -> None:
    with serve(require_key="sesame") as hub:
        panel = LoginPanel()
        st = panel.state
        panel.root_url.value = hub.url
        panel.api_key.value = "wrong"
        panel.connect_button.click()
        st.wait(60)
        assert "The API key was rejected" in panel.status.value
        assert "Traceback" not in panel.status.value
        assert "Not connected" in panel.connection.value
        panel.api_key.value = "sesame"
        panel.connect_button.click()
        st.wait(60)
        assert panel.status.value == ""
        assert "datasets available" in panel.connection.value
        assert st.session.root_url == hub.url
        # save as profile: the picker lists it, and picking it fills its root URL
        panel.profile_name.value = "work"
        panel.save_button.click()
        st.wait()
        assert "Saved profile" in panel.profile_status.value
        assert ("work", "work") in panel.profile.options
        panel.root_url.value = "http://elsewhere.invalid/"
        panel.profile.value = "work"
        assert panel.root_url.value == hub.url
        # a failed test under a working connection: no stale "✓ Connected" below the error
        panel.profile.value = ""
        panel.api_key.value = "wrong again"
        panel.connect_button.click()
        st.wait(60)
        assert "The API key was rejected" in panel.status.value
        assert "✓" not in panel.connection.value
        assert "The previous connection stays in use: Connected to" in panel.connection.value
        assert st.session.api_key == "sesame"  # still the one in use


def test_login_panel_demo_choice_starts_the_bundled_hub(home: Path) -> None:
    panel = LoginPanel(demo=True)
    assert panel.server.value == "demo" and panel.root_url.disabled
    panel.connect_button.click()
    assert panel.state.wait(120)
    assert "bundled demo hub" in panel.connection.value
    assert panel.state.session.anonymous
    panel.server.value = "url"
    assert not panel.root_url.disabled


# -- SearchPanel -------------------------------------------------------------------------------


def test_search_panel_tags_text_sort_and_select(state: ExplorerState) -> None:
    panel = SearchPanel(state)
    until(lambda: len(panel.tags.options) > 5)
    assert ("demo (1)", "demo") in panel.tags.options
    panel.tags.value = ("demo",)
    state.wait()
    assert state.search_tags == ["demo"]
    assert list(panel._row_cells) == [DEMO]
    assert "1</b> dataset found" in panel.count.value
    panel.tags.value = ()
    panel.text.value = "marine debris"
    state.wait()
    assert list(panel._row_cells) == ["nasa_marine_debris"]
    panel.clear_button.click()
    state.wait()
    assert len(panel._row_cells) == len(state.results)
    titles = [c[0].description for c in panel._row_cells.values()]
    assert titles == sorted(titles, key=str.casefold)
    panel.header[0].click()  # title again: descending
    titles = [c[0].description for c in panel._row_cells.values()]
    assert titles == sorted(titles, key=str.casefold, reverse=True)
    assert panel.header[0].description == "Title ▼"
    panel.sort_by("date", ascending=True)
    dates = [c[4].value for c in panel._row_cells.values()]
    assert dates == sorted(dates)
    # clicking a title selects the dataset everywhere; the row is highlighted
    panel._row_cells[DEMO][0].click()
    assert state.dataset_id == DEMO
    assert panel._row_cells[DEMO][0].button_style == "info"
    state.wait(120)
    assert "10.5072/mlhub-widgets.demo-crops" in panel.detail.value
    assert "Estimated dataset size" in panel.detail.value
    assert "Source imagery" in panel.detail.value and "CC-BY-4.0" in panel.detail.value
    # and selecting from code highlights the row too
    state.dataset_id = "nasa_marine_debris"
    assert panel._row_cells["nasa_marine_debris"][0].button_style == "info"
    assert panel._row_cells[DEMO][0].button_style == ""


def test_search_panel_badges_filter_and_empty_results(state: ExplorerState) -> None:
    panel = SearchPanel(state)
    until(lambda: len(panel._badges) == len(state.results) > 1)
    badges = {ds: b.value for ds, b in panel._badges.items()}
    assert "metadata only" in badges["ref_agrifieldnet_competition_v1"]
    assert 'title="Metadata only: none of this dataset' in badges["ref_agrifieldnet_competition_v1"]
    assert "downloadable" in badges[DEMO]
    assert sum("downloadable" in b for b in badges.values()) == len(badges) - 1
    # sorting by the download column puts the metadata-only dataset last
    panel.sort_by("download", ascending=True)
    assert list(panel._row_cells)[-1] == "ref_agrifieldnet_competition_v1"
    # the filter box narrows the rows as one types (title, id, tag, licence; any case)
    panel.row_filter.value = "MARINE"
    assert list(panel._row_cells) == ["nasa_marine_debris"]
    panel.row_filter.value = "no such words"
    assert panel._row_cells == {}
    assert "No row matches" in panel.table.children[-1].value
    panel.row_filter.value = ""
    assert len(panel._row_cells) == len(state.results)
    # a search that finds nothing says what to do, not "0 datasets found. Click a title…"
    panel.text.value = "no dataset has this phrase"
    state.wait()
    assert "No dataset</b> matches" in panel.count.value
    assert "Click a title" not in panel.count.value
    # tags need Ctrl/Shift-click to pick several: the panel says so
    assert "Ctrl-click" in panel.tags_hint.value


# -- MapFilterPanel ----------------------------------------------------------------------------


def test_map_panel_drawing_sets_bbox_or_intersects(demo_state: ExplorerState) -> None:
    panel = MapFilterPanel(demo_state, basemap=None)
    st = demo_state
    assert panel.footprint.data["features"]  # the dataset is on the map
    assert len(panel.extents.data["features"]) == 2
    panel.draw.data = [rect(0, 0, 10, 10)]  # as the browser reports a drawn rectangle
    assert st.filters.bbox == (0, 0, 10, 10) and st.filters.intersects is None
    assert "bbox W 0, S 0, E 10, N 10" in panel.readout.value
    tri = {
        "type": "Feature",
        "properties": {"style": {"color": POLYGON_COLOR}},
        "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [5, 0], [5, 5], [0, 0]]]},
    }
    panel.draw.data = [rect(0, 0, 10, 10), tri]  # a second shape replaces the first
    assert st.filters.bbox is None and st.filters.intersects["type"] == "Polygon"
    assert len(panel.draw.data) == 1
    assert "intersects" in panel.readout.value and "3 vertices" in panel.readout.value
    panel.draw.data = [rect(1, 1, 2, 2, color=POLYGON_COLOR)]  # edited into a box: still a box
    assert st.filters.bbox == (1, 1, 2, 2)
    panel.draw.data = []  # deleted
    assert st.filters.bbox is None and st.filters.intersects is None
    assert "none" in panel.readout.value


def test_map_panel_follows_code_and_typed_input(demo_state: ExplorerState) -> None:
    panel = MapFilterPanel(demo_state, basemap=None)
    st = demo_state
    st.filters = Filters(bbox=(-10, 5, 20, 15))
    assert len(panel.draw.data) == 1
    assert panel.draw.data[0]["geometry"]["coordinates"][0][0] == [-10.0, 5.0]
    assert (panel.west.value, panel.north.value) == (-10.0, 15.0)
    panel.west.value, panel.south.value, panel.east.value, panel.north.value = 1, 2, 3, 4
    panel.apply_bbox.click()
    assert st.filters.bbox == (1, 2, 3, 4)
    panel.south.value = 5
    panel.apply_bbox.click()  # south > north: refused, with the reason in the panel
    assert st.filters.bbox == (1, 2, 3, 4)
    assert "greater than north" in panel.message.value
    panel.geojson_text.value = '{"type": "Point"'
    panel.apply_geojson.click()
    assert "not GeoJSON text" in panel.message.value
    panel.geojson_text.value = (
        '{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", '
        '"coordinates": [[[30, 0], [40, 0], [40, 10], [30, 0]]]}}'
    )
    panel.apply_geojson.click()
    assert panel.message.value == ""
    assert st.filters.intersects["type"] == "Polygon" and st.filters.bbox is None
    upload = b'{"type": "Polygon", "coordinates": [[[50, 0], [60, 0], [60, 10], [50, 0]]]}'
    panel.upload.value = (
        {
            "name": "aoi.geojson",
            "type": "application/geo+json",
            "size": len(upload),
            "content": memoryview(upload),
            "last_modified": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        },
    )
    assert st.filters.intersects["coordinates"][0][0] == [50.0, 0.0]
    assert panel.upload.value == ()  # ready for the next file (even the same one)
    panel.clear_button.click()
    assert st.filters.intersects is None and panel.draw.data == []


def test_map_panel_basemaps_and_offline_outlines(monkeypatch: pytest.MonkeyPatch) -> None:
    assert OUTLINES.stat().st_size < 300_000
    none = MapFilterPanel(basemap=None)
    assert not [x for x in none.map.layers if isinstance(x, L.TileLayer)]
    assert len(none.outlines.data["features"]) > 150
    custom = MapFilterPanel(basemap="http://127.0.0.1:9/{z}/{x}/{y}.png")
    assert [x.url for x in custom.map.layers if isinstance(x, L.TileLayer)] == [
        "http://127.0.0.1:9/{z}/{x}/{y}.png"
    ]
    monkeypatch.setenv("MLHUB_BASEMAP", "none")
    assert MapFilterPanel().basemap_url is None
    monkeypatch.delenv("MLHUB_BASEMAP")
    assert "openstreetmap" in (MapFilterPanel().basemap_url or "")


# -- DateRangePanel ----------------------------------------------------------------------------


def test_date_panel_validates_and_is_bounded(demo_state: ExplorerState) -> None:
    panel = DateRangePanel(demo_state)
    dl = DownloadPanel(demo_state)
    st = demo_state
    assert panel.start.min == dt.date(2020, 1, 1) and panel.end.max == dt.date(2021, 12, 31)
    panel.start.value = dt.date(2021, 3, 1)
    panel.end.value = dt.date(2021, 2, 1)
    assert (st.filters.start, st.filters.end) == (dt.date(2021, 3, 1), dt.date(2021, 2, 1))
    assert "before the start date" in panel.message.value
    assert dl.start_button.disabled and dl.estimate_button.disabled
    assert "before the start date" in dl.problems.value
    panel.end.value = dt.date(2021, 4, 1)
    assert panel.message.value == "" and not dl.start_button.disabled
    panel.single.value = True
    assert st.filters.end == st.filters.start == dt.date(2021, 3, 1) and panel.end.disabled
    assert "on 2021-03-01" in panel.readout.value
    panel.single.value = False
    st.set_dates(dt.date(2020, 6, 1), dt.date(2020, 7, 1))  # from code
    assert (panel.start.value, panel.end.value) == (dt.date(2020, 6, 1), dt.date(2020, 7, 1))
    st.set_dates(dt.date(2019, 1, 1), None)  # before the extent: the picker clamps it
    assert st.filters.start == dt.date(2020, 1, 1)
    panel.clear_button.click()
    assert st.filters.start is None and st.filters.end is None


# -- ContentFilterPanel ------------------------------------------------------------------------


def test_content_panel_builds_the_collection_filter(demo_state: ExplorerState) -> None:
    panel = ContentFilterPanel(demo_state)
    st = demo_state
    assert set(panel.boxes) == {(cid, key) for cid, keys in st.asset_keys.items() for key in keys}
    panel.checkbox(SOURCE, "thumbnail").value = False
    assert st.filters.collection_filter == {SOURCE: ("image",), LABELS: ()}
    for key in st.asset_keys[LABELS]:
        panel.checkbox(LABELS, key).value = False
    assert st.filters.collection_filter == {SOURCE: ("image",)}
    panel.none_button.click()
    assert st.filters.collection_filter == {}
    assert "No asset key" in panel.message.value
    panel.all_button.click()
    assert st.filters.collection_filter is None
    assert all(box.value for box in panel.boxes.values())
    st.set_collection_filter({LABELS: ["labels"]})  # from code
    assert panel.checkbox(LABELS, "labels").value
    assert not panel.checkbox(LABELS, "documentation").value
    assert not panel.checkbox(SOURCE, "image").value


# -- DownloadPanel -----------------------------------------------------------------------------


@pytest.fixture()
def slow_hub() -> Iterator[Hub]:
    with serve(faults=FaultConfig(bandwidth_bps=30_000, scope="assets")) as running:
        yield running


def test_download_panel_estimate_pause_resume_and_progress(slow_hub: Hub, home: Path) -> None:
    st = ExplorerState(output_dir=str(home / "out"))
    st.connect(root_url=slow_hub.url, then_search=False)
    st.wait(60)
    st.select_dataset(DEMO)
    st.wait(120)
    panel = DownloadPanel(st)
    panel.workers.value = 2
    assert st.workers == 2
    st.set_dates("2021-01-01", "2021-06-30")
    st.set_collection_filter({SOURCE: ["image"]})
    panel.estimate_button.click()
    st.wait(60)
    plan = st.estimate
    assert f"{plan.assets} assets" in panel.estimate.value
    panel.start_button.click()
    until(lambda: st.job_state == "running" and st.progress is not None)
    assert panel.start_button.disabled and not panel.pause_button.disabled
    panel.pause_button.click()
    assert st.job_state == "paused"
    assert not panel.resume_button.disabled and panel.pause_button.disabled
    until(lambda: "paused" in panel.progress_text.value)
    panel.resume_button.click()
    until(lambda: st.job_state == "finished", timeout=120)
    until(lambda: "100 %" in panel.percent.value)
    assert panel.bar.value == 1.0 and panel.bar.bar_style == "success"
    assert f"{plan.assets} / {plan.assets}" in panel.progress_text.value
    assert SOURCE in panel.per_collection.value
    assert "Retries: <b>0</b>" in panel.counters.value
    assert not panel.start_button.disabled
    files = list((home / "out" / DEMO / SOURCE).rglob("image.tif"))
    assert len(files) == plan.assets


def test_download_panel_lists_failures_with_report_link(home: Path) -> None:
    with serve() as hub:
        st = ExplorerState(output_dir=str(home / "out"))
        st.connect(root_url=hub.url, then_search=False)
        st.wait(60)
        st.select_dataset(DEMO)
        st.wait(120)
        panel = DownloadPanel(st)
        st.set_collection_filter({LABELS: ["documentation"]})
        hub.faults = FaultConfig(error_rate=1.0, error_statuses=(404,), scope="assets")
        panel.start_button.click()
        until(lambda: st.job_state == "failed" and st.report_path != "", timeout=120)
        # the list is drawn again when the report's path arrives (from the job's thread)
        until(lambda: 'download="err_report.csv"' in panel.failed.value)
        assert "failed asset" in panel.failed.value
        assert "documentation" in panel.failed.value
        assert "Start again retries only those" in panel.status.value
        assert "if_exists" not in panel.status.value
        assert panel.start_button.description == "Start (resume)"
        assert panel.bar.bar_style == "danger"
        # nothing arrived: the bar is empty, not a full red "100 %"
        assert panel.bar.value == 0.0 and "0 %" in panel.percent.value


def test_download_panel_start_error_cancel_and_where_files_go(slow_hub: Hub, home: Path) -> None:
    st = ExplorerState(output_dir=str(home / "a-file"))
    (home / "a-file").write_text("x")
    st.connect(root_url=slow_hub.url, then_search=False)
    st.wait(60)
    st.select_dataset(DEMO)
    st.wait(120)
    panel = DownloadPanel(st)
    assert f"Files go to <code>{home / 'a-file' / DEMO}/</code>" in panel.output_where.value
    st.set_collection_filter({SOURCE: ["image"]})
    panel.start_button.click()
    st.wait(60)
    # the start failed: one line, and Start works again (no reload)
    assert "exists and is not a folder" in panel.status.value
    assert st.job_state == "idle" and "Starting" not in panel.progress_text.value
    assert not panel.start_button.disabled and panel.start_button.description == "Start"
    panel.output_dir.value = str(home / "out")
    assert f"<code>{home / 'out' / DEMO}/</code>" in panel.output_where.value
    panel.start_button.click()
    until(lambda: st.job_state == "running" and st.progress is not None)
    until(lambda: st.progress.assets_done > 0, timeout=60)
    assert not panel.cancel_button.disabled
    panel.cancel_button.click()
    until(lambda: st.job_state == "cancelled" and "download" in st.warnings)
    # a cancelled run is a warning (⚠), never a green ✓
    assert "mlhub-msg-warn" in panel.status.value and "✓" not in panel.status.value
    assert f"are in {home / 'out' / DEMO}" in panel.status.value
    assert panel.start_button.description == "Start (resume)"
    assert panel.cancel_button.disabled


# -- object storage through the panels -----------------------------------------------------------


def test_panels_read_from_and_write_to_a_bucket(
    hub: Hub, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catalogue in the hub's S3 bucket, opened with storage options typed in the Connect
    tab, downloaded to an s3:// prefix whose options are typed in the Download tab: every
    place that names the destination names the bucket, never a local state folder."""
    import os

    from mlhub_widgets.net.objects import list_url

    monkeypatch.setenv("MLHUB_STATE_DIR", str(home / "state"))
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    login = LoginPanel()
    st = login.state
    download = DownloadPanel(st)
    disk = OnDiskPanel(st)
    login.server.value = "static"
    assert login.storage.layout.display is None  # shown for a catalogue source
    login.location.value = "s3://radiantearth/spacenet1/"
    login.storage.value = "endpoint"
    login.connect_button.click()
    assert "KEY=VALUE pairs: &#x27;endpoint&#x27; is not one." in login.status.value
    login.storage.value = f"endpoint={hub.s3_url} skip_signature=true"
    login.connect_button.click()
    assert st.wait(60)
    assert "s3://radiantearth/spacenet1" in login.connection.value, login.status.value
    assert st.storage_options == {"endpoint": hub.s3_url, "skip_signature": "true"}
    st.select_dataset("spacenet1")
    assert st.wait(60)

    prefix = f"s3://scratch/panels-{os.getpid()}"
    assert download.output_options.layout.display == "none"  # a folder needs no options
    download.output_dir.value = prefix + "/"
    assert download.output_options.layout.display is None
    assert f"Files go to <code>{prefix}/spacenet1/</code>" in download.output_where.value
    download.output_options.value = f"endpoint={hub.s3_url} access_key_id=hub"
    download.output_options.value += " secret_access_key=hub-secret"
    assert st.output_storage_options["secret_access_key"] == "hub-secret"
    download.start_button.click()
    until(lambda: st.job_state == "finished", timeout=120)
    until(lambda: "Done:" in download.status.value)
    assert f"into {prefix}/spacenet1." in download.status.value, download.status.value
    assert str(home / "state") not in download.status.value
    written = list(list_url(prefix + "/spacenet1/", storage_options=st.output_storage_options))
    assert len(written) > 10

    # the On-disk tab names the bucket and the code that copies it here, no local folder
    until(lambda: "object store" in disk.summary.value)
    assert f'<th>Object store</th><td><code class="mlhub-copy">{prefix}/spacenet1' in (
        disk.paths.value
    )
    assert "mw.sync(&#x27;" + prefix + "/spacenet1&#x27;, &#x27;spacenet1&#x27;)" in (
        disk.snippet.value
    )
