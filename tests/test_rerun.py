"""Re-runs of a download: what a partial, resumed, no-op or re-planned run counts, and what it
fetches again (real hub over HTTP, real files).

The counts of a re-run come from the totals the asset index keeps (not from a scan of its
rows) and the files from a parallel check of the disk: these tests prove both say what is on
disk, through the public entry points.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from mlhub_widgets.download import (
    AssetFinished,
    DownloadJob,
    DownloadSummary,
    IndexBuilt,
    ProgressUpdated,
    disk_check,
    download_dataset,
    job_run,
    plan_download,
)
from mlhub_widgets.exceptions import MLHubWarning
from mlhub_widgets.hub import Hub, serve
from mlhub_widgets.hub.sample import make_synthetic_dataset

from .reliability_support import index_rows

NOOP_DS = "rerun20k"  # 20,000 assets: the no-op re-run
DS = "rerunds"  # 2,000 assets: partial, resumed, deleted, re-planned
CID = f"{DS}_source"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    data = tmp_path_factory.mktemp("rerun") / "hubdata"
    make_synthetic_dataset(data, NOOP_DS, 10_000, 2, 64, 256, kinds=("tif", "geojson"))
    make_synthetic_dataset(data, DS, 1_000, 2, 256, 2048, kinds=("tif", "geojson"))
    with serve(data) as running:
        yield running


def _run(hub: Hub, ds: str, out: Path, **kw: Any) -> DownloadSummary:
    summary = download_dataset(ds, out, root_url=hub.url, api_key="k", progress=False, **kw)
    assert isinstance(summary, DownloadSummary)
    return summary


def _asset_paths(hub: Hub) -> list[str]:
    """Storage paths of the assets the hub served since its counters were reset."""
    return sorted(r.path for r in hub.requests if r.kind == "asset" and r.method == "GET")


def _files(out: Path, ds: str) -> dict[str, Path]:
    rows = index_rows(out, ds)
    return {rel: out / ds / rel for rel in rows}


def test_noop_rerun_at_20k_makes_no_request_and_counts_every_asset(
    hub: Hub, tmp_path: Path
) -> None:
    first = _run(hub, NOOP_DS, tmp_path)
    assert first.assets_downloaded == first.assets_selected == 20_000
    hub.reset_counters()
    events: list[Any] = []
    job = DownloadJob(NOOP_DS, tmp_path, root_url=hub.url, api_key="k")
    job.subscribe(events.append)
    again = job.start().wait(300)
    assert hub.count("asset") == 0
    assert again.assets_selected == again.assets_skipped == 20_000
    assert again.assets_downloaded == again.assets_failed == 0
    assert again.bytes_on_disk == first.bytes_on_disk == first.bytes_downloaded
    per = again.per_collection[f"{NOOP_DS}_source"]
    assert (per.total, per.skipped, per.done, per.failed) == (20_000, 20_000, 0, 0)
    built = [e for e in events if isinstance(e, IndexBuilt)]
    assert built and built[0].reused and built[0].selected == 20_000
    last = [e for e in events if isinstance(e, ProgressUpdated)][-1].snapshot
    assert (last.assets_total, last.assets_skipped, last.bytes_done) == (
        20_000,
        20_000,
        first.bytes_downloaded,
    )
    assert last.bytes_total == first.bytes_downloaded


def test_partial_run_then_resume_counts_what_is_on_disk(hub: Hub, tmp_path: Path) -> None:
    """A run cancelled part-way, then resumed: the plan in between counts what the run
    counted, and the resumed run counts every complete file as skipped (also those that
    landed as it stopped) and fetches only the others."""
    job = DownloadJob(DS, tmp_path, root_url=hub.url, api_key="k", workers=8)
    finished = 0
    enough = threading.Event()

    def on_event(event: Any) -> None:
        nonlocal finished
        if isinstance(event, AssetFinished):
            finished += 1
            if finished >= 600:
                enough.set()

    job.subscribe(on_event)
    job.start()
    assert enough.wait(120)
    job.cancel()
    partial = job.wait(120)
    assert partial.cancelled
    files = _files(tmp_path, DS)
    complete = {rel for rel, path in files.items() if path.is_file()}
    # the index counts what the run counted; a few files landed as it stopped (uncounted)
    plan = plan_download(DS, tmp_path, root_url=hub.url, api_key="k")
    assert plan.assets == 2_000 and plan.done == partial.assets_downloaded >= 600
    assert plan.done <= len(complete) <= plan.done + 8 < 2_000
    hub.reset_counters()
    resumed = _run(hub, DS, tmp_path)
    assert resumed.assets_selected == 2_000
    assert resumed.assets_skipped == len(complete)
    assert resumed.assets_downloaded == 2_000 - len(complete)
    assert hub.count("asset", "GET") == 2_000 - len(complete)
    per = resumed.per_collection[CID]
    assert (per.total, per.done, per.skipped) == (2_000, 2_000 - len(complete), len(complete))
    assert all(path.is_file() for path in files.values())


def test_deleted_and_changed_files_are_fetched_again_and_only_them(
    hub: Hub, tmp_path: Path
) -> None:
    _run(hub, DS, tmp_path)
    files = _files(tmp_path, DS)
    rows = index_rows(tmp_path, DS)
    picked = random.Random(5).sample(sorted(files), 50)
    deleted, truncated = picked[:30], picked[30:]
    for rel in deleted:
        files[rel].unlink()
    for rel in truncated:
        with open(files[rel], "r+b") as fh:
            fh.truncate(10)
    # a whole item folder gone, too (its item's JSON with it)
    folder = files[sorted(files)[-1]].parent
    gone_too = [rel for rel, path in files.items() if path.parent == folder]
    shutil.rmtree(folder)
    expected = set(deleted) | set(truncated) | set(gone_too)
    hub.reset_counters()
    again = _run(hub, DS, tmp_path)
    assert again.assets_downloaded == len(expected)
    assert again.assets_skipped == 2_000 - len(expected)
    wanted = sorted(urlsplit(rows[rel]).path for rel in expected)
    assert _asset_paths(hub) == wanted
    for rel in expected:
        assert files[rel].read_bytes() == hub.asset_bytes(rows[rel])


def test_changed_filter_replans_and_counts_what_is_already_there(hub: Hub, tmp_path: Path) -> None:
    """A download of part of the area, then of a larger area: the re-planned run counts the
    files of the first as skipped and fetches only the rest; back to the first area, a no-op."""
    west = [-20.0, -35.0, 10.0, 40.0]
    first = _run(hub, DS, tmp_path, bbox=west)
    assert 0 < first.assets_selected < 2_000
    assert first.assets_downloaded == first.assets_selected
    hub.reset_counters()
    events: list[Any] = []
    wider = download_dataset(DS, tmp_path, root_url=hub.url, api_key="k", progress=events.append)
    assert isinstance(wider, DownloadSummary)
    built = [e for e in events if isinstance(e, IndexBuilt)]
    assert built and built[0].replanned
    assert wider.assets_selected == 2_000
    assert wider.assets_skipped == first.assets_selected
    assert wider.assets_downloaded == 2_000 - first.assets_selected
    assert hub.count("asset", "GET") == 2_000 - first.assets_selected
    per = wider.per_collection[CID]
    assert (per.total, per.skipped) == (2_000, first.assets_selected)
    hub.reset_counters()
    back = _run(hub, DS, tmp_path, bbox=west)
    assert hub.count("asset") == 0
    assert back.assets_selected == back.assets_skipped == first.assets_selected
    assert back.per_collection[CID].total == first.assets_selected


def test_deleted_files_are_fetched_again_when_folder_stamps_vouch_for_the_rest(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first re-run checks every file and keeps each item folder's stamp; a later re-run
    trusts unchanged folders, and still fetches every file deleted since (its folder's stamp
    changed). Stamps are normally kept only for folders unchanged for 3 s."""
    monkeypatch.setattr(disk_check, "STAMP_MIN_AGE_NS", 0)
    _run(hub, DS, tmp_path)
    rows = index_rows(tmp_path, DS)
    hub.reset_counters()
    assert _run(hub, DS, tmp_path).assets_skipped == 2_000
    db = tmp_path / DS / "mlhub_assets.db"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        assert con.execute("SELECT count(*) FROM folder_stamps").fetchone()[0] == 1_000
    gone = random.Random(11).sample(sorted(rows), 25)
    for rel in gone:
        (tmp_path / DS / rel).unlink()
    hub.reset_counters()
    again = _run(hub, DS, tmp_path)
    assert again.assets_downloaded == 25 and again.assets_skipped == 1_975
    assert _asset_paths(hub) == sorted(urlsplit(rows[rel]).path for rel in gone)
    for rel in gone:
        assert (tmp_path / DS / rel).read_bytes() == hub.asset_bytes(rows[rel])
    hub.reset_counters()
    assert _run(hub, DS, tmp_path).assets_skipped == 2_000
    assert hub.count("asset") == 0


def test_the_first_rerun_after_a_download_trusts_the_folders_it_wrote(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A download ends with the re-run's check of files, so that the index keeps the stamps of
    its folders: the re-run right after it looks at the files of the folders changed since,
    not at every file, and still fetches exactly the files deleted meanwhile. (Downloads of
    fewer than ``job_run.STAMP_AFTER_DOWNLOAD`` assets skip that check; folders changed in
    the last 3 s get no stamp: both off here.)"""
    monkeypatch.setattr(disk_check, "STAMP_MIN_AGE_NS", 0)
    monkeypatch.setattr(job_run, "STAMP_AFTER_DOWNLOAD", 0)
    checks: list[disk_check.CheckResult] = []
    check_files = disk_check.check_files

    def spy(*args: Any, **kw: Any) -> disk_check.CheckResult:
        checks.append(check_files(*args, **kw))
        return checks[-1]

    monkeypatch.setattr(disk_check, "check_files", spy)
    first = _run(hub, DS, tmp_path)
    assert first.assets_downloaded == 2_000
    rows = index_rows(tmp_path, DS)
    gone = random.Random(3).sample(sorted(rows), 25)
    for rel in gone:
        (tmp_path / DS / rel).unlink()
    touched = {rel.rpartition("/")[0] for rel in gone}
    hub.reset_counters()
    checks.clear()
    again = _run(hub, DS, tmp_path)
    # the re-run's check: every file of an untouched folder vouched for by its stamp
    assert checks and checks[0].trusted == 2_000 - 2 * len(touched)
    assert len(checks[0].changed) == 25
    assert again.assets_downloaded == 25 and again.assets_skipped == 1_975
    assert _asset_paths(hub) == sorted(urlsplit(rows[rel]).path for rel in gone)
    for rel in gone:
        assert (tmp_path / DS / rel).read_bytes() == hub.asset_bytes(rows[rel])


def test_a_file_deleted_before_the_download_ends_is_reported(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file the download wrote and that is gone when it ends (deleted by another program
    between its transfer and the download's closing check of files) is named in an
    MLHubWarning and goes back to pending: the next run fetches exactly that file."""
    monkeypatch.setattr(job_run, "STAMP_AFTER_DOWNLOAD", 0)
    victim: list[Path] = []
    check = job_run.check_done_files

    def delete_then_check(db: Any, base: Path) -> disk_check.CheckResult:
        victim.append(sorted(base.rglob("*.tif"))[7])
        victim[0].unlink()
        return check(db, base)

    monkeypatch.setattr(job_run, "check_done_files", delete_then_check)
    with pytest.warns(
        MLHubWarning, match=r"^1 files written by this download .* run the download again"
    ):
        first = _run(hub, DS, tmp_path)
    assert first.assets_downloaded == 2_000 and not victim[0].exists()
    monkeypatch.setattr(job_run, "check_done_files", check)
    hub.reset_counters()
    again = _run(hub, DS, tmp_path)
    assert again.assets_downloaded == 1 and again.assets_skipped == 1_999
    assert victim[0].is_file()


def test_a_file_deleted_while_its_asset_was_not_selected_is_fetched_when_selected_again(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user downloads both assets of every item, deletes some of one kind, re-runs with only
    the other kind selected (that re-run's check keeps its folders' stamps), then selects
    both again: the deleted files are fetched, not vouched for by a stamp taken while their
    rows were not selected."""
    monkeypatch.setattr(disk_check, "STAMP_MIN_AGE_NS", 0)
    assert _run(hub, DS, tmp_path).assets_downloaded == 2_000
    rows = index_rows(tmp_path, DS)
    gone = sorted(rel for rel in rows if rel.endswith(".geojson"))[:5]
    for rel in gone:
        (tmp_path / DS / rel).unlink()
    tif_only = _run(hub, DS, tmp_path, collection_filter={CID: ["asset_0"]})
    assert tif_only.assets_selected == 1_000 and tif_only.assets_downloaded == 0
    hub.reset_counters()
    both = _run(hub, DS, tmp_path)
    assert both.assets_downloaded == 5 and both.assets_skipped == 1_995
    assert _asset_paths(hub) == sorted(urlsplit(rows[rel]).path for rel in gone)
    for rel in gone:
        assert (tmp_path / DS / rel).read_bytes() == hub.asset_bytes(rows[rel])
