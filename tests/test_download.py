"""End-to-end dataset downloads against the bundled hub (real HTTP, real files)."""

from __future__ import annotations

import csv
import json
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import shapely
from shapely.geometry import box, shape

from mlhub_widgets.download import (
    AssetFailed,
    AssetFinished,
    AssetStarted,
    DownloadJob,
    DownloadSummary,
    IndexBuilt,
    JobFinished,
    JobPaused,
    NoAssetsSelected,
    ProgressUpdated,
    download_archive,
    download_dataset,
    plan_download,
)
from mlhub_widgets.download.asset_urls import fast_relpath
from mlhub_widgets.download.paths import asset_relpath
from mlhub_widgets.exceptions import DownloadError, EntityDoesNotExist
from mlhub_widgets.hub import FaultConfig, Hub, serve

DS = "nasa_marine_debris"
KEY = "K-test-key-123456"
LABELS = "nasa_marine_debris_labels"
SOURCE = "nasa_marine_debris_source"


@pytest.fixture(scope="module")
def khub() -> Iterator[Hub]:
    """A hub that requires an API key (so we can prove the key never reaches storage)."""
    with serve(require_key=KEY) as running:
        yield running


@pytest.fixture(scope="module")
def planned(khub: Hub, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where the nasa catalogue was fetched and indexed once (by a plan)."""
    out = tmp_path_factory.mktemp("planned")
    plan_download(DS, out, root_url=khub.url, api_key=KEY)
    return out


def _selected_paths(asset_dir: Path) -> dict[str, str]:
    with sqlite3.connect(asset_dir / DS / "mlhub_assets.db") as con:
        return dict(con.execute("SELECT path, url FROM assets WHERE selected=1").fetchall())


def _asset_files(asset_dir: Path) -> set[str]:
    root = asset_dir / DS
    skip = {"mlhub_assets.db", "mlhub_assets.db-wal", "mlhub_assets.db-shm", "err_report.csv"}
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.name not in skip and not p.name.endswith(".json")
    }


def _items(catalog_dir: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(catalog_dir.rglob("*.json")):
        data = json.loads(path.read_text())
        if data.get("type") == "Feature" and "assets" in data:
            yield data


def _expected(catalog_dir: Path, item_ok: Any, keys: Any = None) -> set[str]:
    """Independent selection: item predicate + key predicate, shared (_common) paths deduped."""
    out = set()
    for item in _items(catalog_dir):
        if not item_ok(item):
            continue
        for key, asset in item["assets"].items():
            if keys is None or keys(item["collection"], key):
                out.add(
                    str(
                        asset_relpath(
                            item["collection"], item["id"], key, asset["href"], asset.get("type")
                        )
                    )
                )
    return out


def _quiet(**kw: Any) -> dict[str, Any]:
    return {"progress": False, **kw}


# ---------------------------------------------------------------------------------------------
# the full download


def test_full_download_byte_identical_then_noop_rerun(khub: Hub, tmp_path: Path) -> None:
    khub.reset_counters()
    summary = download_dataset(DS, tmp_path, root_url=khub.url, api_key=KEY, progress=False)
    assert isinstance(summary, DownloadSummary)
    assert summary.assets_selected == 2825  # 3,530 hrefs, documentation PDF deduplicated
    assert summary.assets_downloaded == 2825 and summary.assets_failed == 0
    assert khub.count("asset", "GET") == 2825
    assert khub.keys_seen("storage") == 0, "the API key reached the storage origin"
    assert khub.keys_seen("api") > 0
    # layout: tarball, catalogue, assets, _common, report with a header, index
    assert (tmp_path / f"{DS}.tar.gz").is_file()
    assert (tmp_path / DS / "catalog.json").is_file()
    assert (tmp_path / DS / LABELS / "_common" / "documentation.pdf").is_file()
    report = tmp_path / DS / "err_report.csv"
    assert report.read_text().splitlines() == [
        "collection_id,item_id,asset_key,url,path,status,error,attempts"
    ]
    # every selected asset on disk, byte-identical to what storage serves; no .part left
    rows = _selected_paths(tmp_path)
    assert len(rows) == 2825
    for rel, url in rows.items():
        assert (tmp_path / DS / rel).read_bytes() == khub.asset_bytes(url), rel
    assert not list((tmp_path / DS).rglob("*.part"))
    assert _asset_files(tmp_path) == set(rows)
    # re-run: nothing re-extracted, zero asset requests
    catalog_mtime = (tmp_path / DS / "catalog.json").stat().st_mtime_ns
    khub.reset_counters()
    events: list[Any] = []
    again = download_dataset(DS, tmp_path, root_url=khub.url, api_key=KEY, progress=events.append)
    assert isinstance(again, DownloadSummary)
    assert khub.count("asset") == 0
    assert again.assets_skipped == 2825 and again.assets_downloaded == 0
    assert (tmp_path / DS / "catalog.json").stat().st_mtime_ns == catalog_mtime
    built = [e for e in events if isinstance(e, IndexBuilt)]
    assert built and built[0].reused and not built[0].replanned
    # skip: no request either; delete some files: only those come back
    khub.reset_counters()
    download_dataset(DS, tmp_path, root_url=khub.url, api_key=KEY, **_quiet(if_exists="skip"))
    assert khub.count("asset") == 0
    gone = random.Random(3).sample(sorted(rows), 40)
    for rel in gone:
        (tmp_path / DS / rel).unlink()
    khub.reset_counters()
    third = download_dataset(DS, tmp_path, root_url=khub.url, api_key=KEY, progress=False)
    assert isinstance(third, DownloadSummary)
    assert third.assets_downloaded == 40
    assert khub.count("asset", "GET") == 40
    for rel in gone:
        assert (tmp_path / DS / rel).read_bytes() == khub.asset_bytes(rows[rel])
    assert khub.keys_seen("storage") == 0


def test_relpath_matches_paths_module(planned: Path) -> None:
    for item in _items(planned / DS):
        for key, asset in item["assets"].items():
            expected = str(
                asset_relpath(item["collection"], item["id"], key, asset["href"], asset.get("type"))
            )
            assert fast_relpath(
                item["collection"], item["id"], key, asset["href"], asset.get("type")
            )
            assert expected == fast_relpath(
                item["collection"], item["id"], key, asset["href"], asset.get("type")
            )


# ---------------------------------------------------------------------------------------------
# filters: equal to an independent computation, and to the peer's recorded counts

BBOX = [-87.5610, 5.9137, -87.5555, 15.9191]


def _in_2016(item: dict[str, Any]) -> bool:
    when = datetime.fromisoformat(item["properties"]["datetime"].replace("Z", "+00:00"))
    return datetime(2016, 1, 1, tzinfo=UTC) <= when <= datetime(2016, 12, 31, tzinfo=UTC)


FILTER_CASES: list[tuple[str, dict[str, Any], Any, Any, int]] = [
    # Items are tested by geometry (the peer tests the item bbox). These items are axis-aligned
    # tiles whose geometry equals their bbox, so both semantics select the same 9 assets.
    (
        "bbox",
        {"bbox": BBOX},
        lambda i: box(*BBOX).intersects(shape(i["geometry"])),
        None,
        9,
    ),
    (
        "collection_filter",
        {"collection_filter": {LABELS: ["labels"]}},
        lambda i: True,
        lambda c, k: c == LABELS and k == "labels",
        706,
    ),
    (
        "datetime instant",
        {"datetime": "2018-12-15T00:00:00Z"},
        lambda i: i["properties"]["datetime"] == "2018-12-15T00:00:00Z",
        None,
        9,
    ),
    (
        "datetime range",
        {
            "datetime": (
                datetime(2016, 1, 1, tzinfo=UTC),
                datetime(2016, 12, 31, tzinfo=UTC),
            )
        },
        _in_2016,
        None,
        325,
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "item_ok", "keys", "peer_count"),
    [c[1:] for c in FILTER_CASES],
    ids=[c[0] for c in FILTER_CASES],
)
def test_filter_selection_equals_independent_computation(
    khub: Hub, planned: Path, kwargs: dict[str, Any], item_ok: Any, keys: Any, peer_count: int
) -> None:
    khub.reset_counters()
    plan = plan_download(DS, planned, root_url=khub.url, api_key=KEY, **kwargs)
    expected = _expected(planned / DS, item_ok, keys)
    assert set(_selected_paths(planned)) == expected
    assert plan.assets == len(expected) == peer_count
    assert khub.count("asset") == 0
    assert plan.asset_keys == {
        LABELS: ["documentation", "labels", "pixel_bounds"],
        SOURCE: ["image_geotiff", "image_jpeg"],
    }
    assert plan.collections == {LABELS: ["labels"], SOURCE: ["source_imagery"]}


def test_intersects_uses_item_geometry(khub: Hub, planned: Path) -> None:
    # A thin diagonal line through the tiles around BBOX: an envelope test (the peer's
    # query-vs-item-bbox is exact here too, since items are rectangles) and our geometry test
    # must agree with shapely on the item geometries.
    line = shapely.LineString([(-87.7, 15.7), (-87.5, 16.0)])
    geojson = shapely.geometry.mapping(line)
    plan = plan_download(DS, planned, root_url=khub.url, api_key=KEY, intersects=geojson)
    expected = _expected(planned / DS, lambda i: line.intersects(shape(i["geometry"])))
    assert set(_selected_paths(planned)) == expected
    assert plan.assets == len(expected) > 0


def test_plan_bytes_and_estimate(khub: Hub, planned: Path) -> None:
    plan = plan_download(DS, planned, root_url=khub.url, api_key=KEY, bbox=BBOX)
    # the nasa catalogue has no file:size: an estimate from /catalog/{id}/info
    assert not plan.bytes_exact
    assert plan.bytes == int(77207762 * 9 / 2825)
    assert sum(c["assets"] for c in plan.per_collection.values()) == 9
    assert plan.items_excluded == {"outside the area": 1408}
    assert "9 assets" in str(plan)


def test_bbox_download_fetches_exactly_the_selection(khub: Hub, tmp_path: Path) -> None:
    khub.reset_counters()
    summary = download_dataset(DS, tmp_path, root_url=khub.url, api_key=KEY, **_quiet(bbox=BBOX))
    assert isinstance(summary, DownloadSummary)
    expected = _expected(tmp_path / DS, lambda i: box(*BBOX).intersects(shape(i["geometry"])))
    assert _asset_files(tmp_path) == expected
    assert khub.count("asset", "GET") == 9
    # different filters on the same folder: re-planned from the index, nothing re-extracted
    events: list[Any] = []
    download_dataset(
        DS,
        tmp_path,
        root_url=khub.url,
        api_key=KEY,
        progress=events.append,
        datetime="2018-12-15T00:00:00Z",
    )
    built = [e for e in events if isinstance(e, IndexBuilt)]
    assert built[0].reused and built[0].replanned
    # overwrite fetches the selection again
    khub.reset_counters()
    download_dataset(
        DS, tmp_path, root_url=khub.url, api_key=KEY, **_quiet(bbox=BBOX, if_exists="overwrite")
    )
    assert khub.count("asset", "GET") == 9


# ---------------------------------------------------------------------------------------------
# errors


def test_zero_selection_fails_before_any_asset_request(khub: Hub, planned: Path) -> None:
    khub.reset_counters()
    with pytest.raises(NoAssetsSelected, match=r"bbox=\[10, 10, 11, 11\].*1412 outside the area"):
        download_dataset(
            DS, planned, root_url=khub.url, api_key=KEY, **_quiet(bbox=[10, 10, 11, 11])
        )
    assert khub.count("asset") == 0


def test_zero_selection_on_first_streaming_run(khub: Hub, tmp_path: Path) -> None:
    khub.reset_counters()
    with pytest.raises(NoAssetsSelected):
        download_dataset(DS, tmp_path, root_url=khub.url, api_key=KEY, **_quiet(bbox=[0, 0, 1, 1]))
    assert khub.count("asset") == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"bbox": BBOX, "intersects": {"type": "Point", "coordinates": [0, 0]}},
            ValueError,
            "bbox",
        ),
        ({"bbox": [1, 2, 3]}, ValueError, "4 numbers"),
        ({"if_exists": "sometimes"}, ValueError, "if_exists"),
        ({"workers": 0}, ValueError, "workers"),
        ({"datetime": "not a date"}, ValueError, "date"),
        ({"collection_filter": {LABELS: "labels"}}, TypeError, "list of asset keys"),
    ],
)
def test_bad_arguments_fail_before_any_request(
    khub: Hub, tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    khub.reset_counters()
    with pytest.raises(error, match=match):
        download_dataset(DS, tmp_path, root_url=khub.url, api_key=KEY, **_quiet(**kwargs))
    assert khub.count() == 0


def test_unknown_collection_or_key_lists_valid_ones(khub: Hub, planned: Path) -> None:
    khub.reset_counters()
    with pytest.raises(ValueError, match=r"valid collections: .*nasa_marine_debris_labels"):
        download_dataset(
            DS, planned, root_url=khub.url, api_key=KEY, **_quiet(collection_filter={"nope": []})
        )
    with pytest.raises(ValueError, match=r"valid asset keys .*image_geotiff"):
        download_dataset(
            DS,
            planned,
            root_url=khub.url,
            api_key=KEY,
            **_quiet(collection_filter={SOURCE: ["image_png"]}),
        )
    assert khub.count("asset") == 0


def test_unknown_key_on_first_streaming_run(khub: Hub, tmp_path: Path) -> None:
    khub.reset_counters()
    with pytest.raises(ValueError, match="valid asset keys"):
        download_dataset(
            DS,
            tmp_path,
            root_url=khub.url,
            api_key=KEY,
            **_quiet(collection_filter={SOURCE: ["image_png"]}),
        )
    assert khub.count("asset") == 0


def test_missing_assets_reported_and_retried_alone(tmp_path: Path) -> None:
    with serve() as hub:
        plan_download(DS, tmp_path, root_url=hub.url, collection_filter={LABELS: ["labels"]})
        urls = sorted(_selected_paths(tmp_path).values())
        missing = urls[:3]
        hub.faults = FaultConfig(missing=frozenset(missing))
        hub.reset_counters()
        started = time.monotonic()
        with pytest.raises(DownloadError, match="3 of 706 assets") as info:
            download_dataset(
                DS, tmp_path, root_url=hub.url, **_quiet(collection_filter={LABELS: ["labels"]})
            )
        assert time.monotonic() - started < 30  # 404 is permanent: no 200 s of backoff
        assert info.value.failed == 3
        report = info.value.report
        assert report == tmp_path / DS / "err_report.csv"
        rows = list(csv.DictReader(report.open()))
        assert sorted(r["url"] for r in rows) == missing
        assert {r["status"] for r in rows} == {"404"}
        assert all(r["collection_id"] == LABELS and r["asset_key"] == "labels" for r in rows)
        assert all(not (tmp_path / DS / r["path"]).exists() for r in rows)  # no 0-byte files
        assert "key=" not in report.read_text()
        # the assets come back: the re-run asks only for the three
        hub.faults = FaultConfig()
        hub.reset_counters()
        summary = download_dataset(
            DS, tmp_path, root_url=hub.url, **_quiet(collection_filter={LABELS: ["labels"]})
        )
        assert isinstance(summary, DownloadSummary) and summary.complete
        assert hub.count("asset", "GET") == 3
        assert len(report.read_text().splitlines()) == 1


# ---------------------------------------------------------------------------------------------
# job control


def _job(hub: Hub, out: Path, **kw: Any) -> DownloadJob:
    return DownloadJob(DS, out, root_url=hub.url, api_key=KEY, **kw)


def _verify_tree(hub: Hub, out: Path) -> None:
    """Every file under its final name is complete and correct (partial data only in .part)."""
    rows = _selected_paths(out)
    for rel, url in rows.items():
        path = out / DS / rel
        if path.exists():
            assert path.read_bytes() == hub.asset_bytes(url), rel


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_cancel_at_random_points_then_resume(khub: Hub, tmp_path: Path, seed: int) -> None:
    cf = {SOURCE: ["image_jpeg", "image_geotiff"]}
    stop_after = random.Random(seed).randint(1, 700)
    job = _job(khub, tmp_path, collection_filter=cf, workers=8)
    finished = 0

    def on_event(event: Any) -> None:
        nonlocal finished
        if isinstance(event, AssetFinished):
            finished += 1
            if finished == stop_after:
                job.cancel()

    job.subscribe(on_event)
    summary = job.start().wait(timeout=60)
    assert job.state == "cancelled" and summary.cancelled
    assert stop_after <= summary.assets_downloaded < 1412
    _verify_tree(khub, tmp_path)
    khub.reset_counters()
    rest = _job(khub, tmp_path, collection_filter=cf).start().wait(timeout=60)
    assert rest.complete and rest.assets_selected == 1412
    assert rest.assets_downloaded + rest.assets_skipped == 1412
    # only what was missing was requested (plus nothing for the completed files)
    assert khub.count("asset", "GET") == rest.assets_downloaded <= 1412 - stop_after
    _verify_tree(khub, tmp_path)
    assert not list((tmp_path / DS).rglob("*.part"))
    assert len(_asset_files(tmp_path)) == 1412


@pytest.mark.slow
def test_pause_stops_new_transfers_and_resume_finishes(tmp_path: Path) -> None:
    with serve() as hub:
        hub.faults = FaultConfig(latency_ms=5)
        job = DownloadJob(
            DS,
            tmp_path,
            root_url=hub.url,
            collection_filter={SOURCE: ["image_jpeg"]},
            workers=4,
        )
        paused = threading.Event()
        drained = threading.Event()  # paused, and every started transfer has ended
        in_flight: set[Path] = set()
        seen: list[Any] = []

        def on_event(event: Any) -> None:  # called from the job's thread only
            seen.append(event)
            if isinstance(event, AssetStarted):
                in_flight.add(event.path)
            elif isinstance(event, AssetFinished | AssetFailed):
                in_flight.discard(event.path)
            if isinstance(event, AssetFinished) and not paused.is_set():
                paused.set()
                job.pause()
            if paused.is_set() and not in_flight:
                drained.set()

        job.subscribe(on_event)
        job.start()
        assert drained.wait(30)
        assert job.state == "paused"
        before = hub.count("asset", "GET")
        # the behaviour under test: a pause holds; half a second is the window it is watched in
        time.sleep(0.5)
        assert hub.count("asset", "GET") == before  # nothing new while paused
        assert job.progress.assets_done < 706
        job.resume()
        summary = job.wait(timeout=60)
        assert summary.complete and summary.assets_downloaded + summary.assets_skipped == 706
        assert job.state == "finished"
        assert any(isinstance(e, JobPaused) for e in seen)
        assert isinstance(seen[-1], JobFinished)


def test_events_and_progress(khub: Hub, tmp_path: Path) -> None:
    events: list[Any] = []
    job = download_dataset(
        DS,
        tmp_path,
        root_url=khub.url,
        api_key=KEY,
        collection_filter={LABELS: ["labels", "documentation"]},
        progress=events.append,
        background=True,
    )
    assert isinstance(job, DownloadJob)
    summary = job.wait(timeout=60)
    assert summary.assets_selected == 707  # 706 label files + one shared documentation PDF
    started = [e for e in events if isinstance(e, AssetStarted)]
    done = [e for e in events if isinstance(e, AssetFinished)]
    assert len(started) == len(done) == 707
    assert all(e.path.is_file() and e.path.stat().st_size == e.size for e in done)
    updates = [e for e in events if isinstance(e, ProgressUpdated)]
    assert 2 <= len(updates) <= summary.elapsed * 10 + 10  # throttled
    final = job.progress
    assert final.phase == "done" and final.state == "finished"
    assert final.assets_done == 707 and final.assets_total == 707
    assert final.per_collection[LABELS].done == 707
    assert final.bytes_done == sum(e.size for e in done)
    assert isinstance(events[-1], JobFinished)


def test_background_job_stays_in_its_folder_when_the_process_changes_directory(
    khub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(here)
    job = download_dataset(
        DS,
        "out",  # relative to the working directory at the call
        root_url=khub.url,
        api_key=KEY,
        collection_filter={LABELS: ["labels"]},
        progress=False,
        background=True,
    )
    monkeypatch.chdir(elsewhere)  # e.g. a notebook cell while the download runs
    summary = job.wait(timeout=60)
    assert summary.assets_downloaded == 706
    assert list(elsewhere.iterdir()) == []
    files = [p for p in (here / "out").rglob("*.geojson") if LABELS in p.parts]
    assert len(files) == 706


# ---------------------------------------------------------------------------------------------
# archives


def test_download_archive(khub: Hub, tmp_path: Path) -> None:
    cid = "ref_african_crops_kenya_02_labels"
    path = download_archive(cid, tmp_path, root_url=khub.url, api_key=KEY, progress=False)
    assert path == tmp_path / f"{cid}.tar.gz"
    assert path.read_bytes() == khub.asset_bytes(f"{khub.storage_url}mlhub/archives/{cid}.tar.gz")
    assert khub.keys_seen("storage") == 0
    with pytest.raises(EntityDoesNotExist, match="has no archive on this server"):
        download_archive("no_such_archive", tmp_path, root_url=khub.url, api_key=KEY)


@pytest.mark.parametrize(
    "name",
    ["abc", "a.b", "CON", "con.txt", "com1", "LPT9.x", "a" * 200, "a" * 201, "x.", ".x", "-", "é"],
)
def test_fast_path_component_equals_paths_module(name: str) -> None:
    from mlhub_widgets.download.asset_urls import _safe_fast
    from mlhub_widgets.download.paths import safe_component

    assert _safe_fast(name) == safe_component(name)
