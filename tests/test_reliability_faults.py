"""Faults at scale: every download here is ≥ 2,000 assets and is verified byte for byte.

The bundled hub injects the faults (``FaultConfig``): transient 503/429/drops/short bodies,
permanent 404/403, a file changing on the server between an interrupted transfer and its
resume, a full disk (a real tmpfs), and errors or HTML pages from the API during the
catalogue fetch. The measured figures feed ``docs/guarantees.md``.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlhub_widgets.download import (
    AssetFinished,
    DownloadJob,
    DownloadSummary,
    download_dataset,
    plan_download,
)
from mlhub_widgets.exceptions import DownloadError, MLHubException
from mlhub_widgets.hub import FaultConfig, Hub, serve

from .reliability_support import (
    ERR_HEADER,
    Canned,
    api_proxy,
    err_rows,
    free_bytes,
    index_meta,
    index_rows,
    leftovers,
    make_data_dir,
    mount_tmpfs,
    record_figure,
    remount_tmpfs,
    storage_path,
    umount,
    verify_download,
    verify_present,
    wait_for,
)

pytestmark = pytest.mark.slow

NASA = "nasa_marine_debris"
HTML = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>"


@pytest.fixture(scope="module")
def faulty_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,000 assets (1,000 items × 2) of 2-16 kB, sizes in the catalogue but no checksums:
    only byte counts can catch a short or cut body."""
    root = tmp_path_factory.mktemp("faulty")
    return make_data_dir(root, "faultds", 1000, 2, 2048, 16384, checksums=False)


@pytest.fixture(scope="module")
def faulty_hub(faulty_data: Path) -> Iterator[Hub]:
    with serve(faulty_data) as hub:
        yield hub


# =============================================================================================
# transient faults


TRANSIENT = FaultConfig(
    error_rate=0.07,
    error_statuses=(503, 503, 503, 503, 503, 429, 429),  # 5 % 503 + 2 % 429
    retry_after=0.1,
    drop_rate=0.01,
    short_body_rate=0.01,
    seed=2024,
)


@pytest.mark.parametrize("dataset", ["faultds", NASA])
def test_transient_faults_complete_byte_exact(
    faulty_data: Path, tmp_path: Path, dataset: str
) -> None:
    data = faulty_data if dataset == "faultds" else None
    with serve(data) as hub:
        if dataset == NASA:
            plan_download(NASA, tmp_path, root_url=hub.url)  # the catalogue, without faults
        hub.faults = TRANSIENT
        hub.reset_counters()
        started = time.monotonic()
        summary = download_dataset(dataset, tmp_path, root_url=hub.url, progress=False)
        seconds = time.monotonic() - started
        assert isinstance(summary, DownloadSummary)
        statuses = Counter(r.status for r in hub.requests if r.kind == "asset")
        gets = hub.count("asset", "GET")
        hub.faults = FaultConfig()
        n = verify_download(hub, tmp_path, dataset)  # byte for byte, no .part left
    assert n >= 2000
    assert summary.complete and summary.assets_failed == 0
    assert summary.assets_downloaded == n
    report = tmp_path / dataset / "err_report.csv"
    assert report.read_text().splitlines() == [ERR_HEADER]
    injected_status = statuses[503] + statuses[429]
    assert statuses[503] > 0 and statuses[429] > 0
    cut = gets - n - injected_status  # dropped or short bodies (answered 200/206, then cut)
    assert cut > 0, "no drop or short body was injected: the test proves nothing"
    # every extra request is a retry, and the job's summary counts every one of them
    assert summary.retries == gets - n
    assert summary.retries >= injected_status
    record_figure(
        f"test_reliability_faults.py::test_transient_faults_complete_byte_exact[{dataset}]",
        f"{n:,} assets, {statuses[503]} × 503 + {statuses[429]} × 429 (Retry-After 0.1 s) + "
        f"{cut} dropped/short bodies: 0 corrupt, 0 .part, err_report empty, "
        f"{summary.retries} retries counted, {seconds:.1f} s",
        assets=n,
        retries=summary.retries,
        seconds=round(seconds, 2),
    )


# =============================================================================================
# permanent 404 / 403


def test_permanent_404_403_reported_and_rerun_retries_only_them(
    faulty_hub: Hub, tmp_path: Path
) -> None:
    hub = faulty_hub
    plan_download("faultds", tmp_path, root_url=hub.url)
    urls = sorted(index_rows(tmp_path, "faultds").values())
    assert len(urls) == 2000
    missing, forbidden = urls[10:16], urls[500:504]
    broken = {storage_path(u) for u in missing + forbidden}
    hub.faults = FaultConfig(
        missing=frozenset(missing),
        forbidden=frozenset(forbidden),
        error_rate=0.03,  # transient errors elsewhere: retried, never reported
        error_statuses=(503,),
        retry_after=0.05,
        seed=7,
    )
    try:
        hub.reset_counters()
        job = DownloadJob("faultds", tmp_path, root_url=hub.url)
        with pytest.raises(DownloadError) as info:
            job.start().wait(timeout=300)
        error = info.value
        report = tmp_path / "faultds" / "err_report.csv"
        assert error.failed == 10 and error.report == report
        assert "10 of 2000 assets" in str(error) and str(report) in str(error)
        assert job.state == "failed" and job.summary is not None
        assert job.summary.assets_failed == 10 and job.summary.assets_downloaded == 1990
        # the report: exactly the broken assets, with status and reason, tried once each
        rows = err_rows(report)
        assert {storage_path(r["url"]) for r in rows} == broken
        by_status = Counter(r["status"] for r in rows)
        assert by_status == {"404": 6, "403": 4}
        for r in rows:
            assert (
                r["error"]
                == {"404": "HTTP 404 Not Found", "403": "HTTP 403 Forbidden"}[r["status"]]
            )
            assert r["attempts"] == "1", "a permanent error was retried"
            assert not (tmp_path / "faultds" / r["path"]).exists()
        ok, absent = verify_present(hub, tmp_path, "faultds")
        assert (ok, absent) == (1990, 10)
        assert not leftovers(tmp_path / "faultds")
        # a re-run while still broken asks for the 10 broken assets only
        hub.reset_counters()
        with pytest.raises(DownloadError, match="10 of 2000 assets"):
            download_dataset("faultds", tmp_path, root_url=hub.url, progress=False)
        asked = [r.path for r in hub.requests if r.kind == "asset"]
        assert set(asked) == broken and len(asked) == 10
    finally:
        hub.faults = FaultConfig()
    # fixed on the server: the re-run fetches exactly those 10, and the report empties
    hub.reset_counters()
    started = time.monotonic()
    summary = download_dataset("faultds", tmp_path, root_url=hub.url, progress=False)
    seconds = time.monotonic() - started
    asked = [r.path for r in hub.requests if r.kind == "asset"]
    assert sorted(asked) == sorted(broken)
    assert isinstance(summary, DownloadSummary) and summary.complete
    assert summary.assets_downloaded == 10 and summary.assets_skipped == 1990
    assert report.read_text().splitlines() == [ERR_HEADER]
    verify_download(hub, tmp_path, "faultds", expect=2000)
    record_figure(
        "test_reliability_faults.py::test_permanent_404_403_reported_and_rerun_retries_only_them",
        "2,000 assets, 6 × 404 + 4 × 403 (+3 % transient 503): DownloadError '10 of 2000', "
        "10 report rows (status + reason, 1 attempt each), 1,990 correct; re-runs request "
        f"exactly the 10 (fixed re-run {seconds:.1f} s)",
    )


# =============================================================================================
# the file changes on the server between an interrupted transfer and its resume


def _append_big_files(data: Path, ds: str, n: int, size: int) -> None:
    """Add an item with ``n`` real files of ``size`` bytes (served from the dataset folder)."""
    folder = data / ds
    assets = {}
    for i in range(n):
        rel = f"big/file_{i:02d}.bin"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(os.urandom(size))
        assets[f"big_{i:02d}"] = {
            "href": f"hub-file:///{ds}/{rel}",
            "type": "application/octet-stream",
            "file:size": size,
        }
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": f"{ds}_big",
        "collection": f"{ds}_source",
        "bbox": [0.0, 0.0, 1.0, 1.0],
        "geometry": {"type": "Polygon",
                     "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]},
        "properties": {"datetime": "2021-01-01T00:00:00Z"},
        "assets": assets,
    }  # fmt: skip
    with (folder / f"{ds}_source" / "items.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(item) + "\n")


def test_server_change_between_interrupt_and_resume_never_splices(tmp_path: Path) -> None:
    size = 3 * 1024 * 1024 // 2  # 1.5 MiB: streamed to .part, with a validator in .part.meta
    data = make_data_dir(tmp_path, "chgds", 2000, 1, 1024, 2048, checksums=False)
    _append_big_files(data, "chgds", 12, size)  # indexed last: started after the small ones
    out = tmp_path / "out"
    with serve(data) as hub:
        hub.faults = FaultConfig(bandwidth_bps=250_000, scope="assets")
        job = DownloadJob("chgds", out, root_url=hub.url, workers=12)
        job.start()
        base = out / "chgds"
        big = base / "chgds_source" / "chgds_big"

        def interrupted_mid_file() -> bool:
            parts = list(big.glob("*.bin.part"))
            return len(parts) == 12 and all(p.stat().st_size >= 128 * 1024 for p in parts)

        assert wait_for(interrupted_mid_file, 120), "the big transfers did not start"
        job.cancel()
        cancelled = job.wait(timeout=60)
        assert cancelled.cancelled
        partial = {p: p.stat().st_size for p in big.glob("*.bin.part")}
        assert len(partial) == 12 and all(0 < n < size for n in partial.values())
        assert all(p.with_name(p.name + ".meta").is_file() for p in partial)
        urls = {rel: u for rel, u in index_rows(out, "chgds").items() if "/chgds_big/" in rel}
        assert len(urls) == 12
        changed = sorted(urls)[:6]
        old = {rel: hub.asset_bytes(urls[rel]) for rel in urls}
        for rel in changed:
            hub.change_asset(urls[rel])
            assert hub.asset_bytes(urls[rel]) != old[rel]
        hub.faults = FaultConfig()
        hub.reset_counters()
        events: list[Any] = []
        summary = download_dataset(
            "chgds", out, root_url=hub.url, progress=events.append, workers=12
        )
        assert isinstance(summary, DownloadSummary) and summary.complete
        resumed = {e.path.relative_to(base).as_posix(): e.resumed_from for e in events
                   if isinstance(e, AssetFinished)}  # fmt: skip
        statuses = {r.path: r.status for r in hub.requests if r.kind == "asset"}
        for rel, url in urls.items():
            on_disk = (base / rel).read_bytes()
            assert on_disk == hub.asset_bytes(url), f"{rel}: not the server's current version"
            if rel in changed:
                assert on_disk != old[rel]
                assert resumed[rel] == 0, f"{rel}: resumed a stale partial file"
                assert statuses[storage_path(url)] == 200  # If-Range failed: the whole file
            else:
                assert on_disk == old[rel]
                assert resumed[rel] > 0, f"{rel}: the unchanged partial file was not resumed"
                assert statuses[storage_path(url)] == 206
        assert not leftovers(base)
        verify_download(hub, out, "chgds", expect=2012)
    kept = sum(resumed[r] for r in urls if r not in changed)
    record_figure(
        "test_reliability_faults.py::test_server_change_between_interrupt_and_resume_never_splices",
        f"2,012 assets, 12 × 1.5 MiB interrupted mid-file; 6 changed on the server: "
        f"6 restarted from byte 0 (200), 6 resumed (206, {kept / 1e6:.1f} MB reused), "
        "0 spliced files",
    )


# =============================================================================================
# a full disk


@pytest.fixture()
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "smallfs"
    try:
        mount_tmpfs(mnt, "48m")
    except OSError as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc}); the disk-full tests need one")
    try:
        yield mnt
    finally:
        umount(mnt)


def _fill_disk(hub: Hub, mnt: Path, mode: str) -> Path | None:
    """``filler``: the catalogue and index fit, the assets (18 MB) do not: a filler file leaves
    1 MB; ``tiny``: the file system is remounted at 2 MiB before anything is written."""
    out = mnt / "out"
    if mode == "tiny":
        remount_tmpfs(mnt, "2m")
        return None
    download_dataset("faultds", out, root_url=hub.url, catalog_only=True, progress=False)
    filler = mnt / "filler"
    with open(filler, "wb") as fh:
        fh.truncate(0)
        fh.write(bytes(max(0, free_bytes(mnt) - 1_000_000)))
    return filler


def _free_space(mnt: Path, filler: Path | None) -> None:
    if filler is not None:
        filler.unlink()
    else:
        remount_tmpfs(mnt, "64m")


@pytest.mark.parametrize("mode", ["filler", "tiny"])
def test_disk_full_stops_with_clear_error_naming_path_and_space(
    faulty_hub: Hub, small_fs: Path, mode: str
) -> None:
    out = small_fs / "out"
    _fill_disk(faulty_hub, small_fs, mode)
    with pytest.raises(Exception) as info:  # the type is what is checked below
        download_dataset("faultds", out, root_url=faulty_hub.url, progress=False)
    error = info.value
    text = str(error)
    assert isinstance(error, MLHubException), (
        f"raw {type(error).__module__}.{type(error).__name__}: {text}"
    )
    assert "disk full" in text.lower() or "no space" in text.lower(), text
    assert str(out) in text, f"the message does not name the folder: {text}"
    assert any(unit in text for unit in (" B", " kB", " MB")), text


@pytest.mark.parametrize("mode", ["filler", "tiny"])
def test_disk_full_leaves_no_truncated_file_and_resumes(
    faulty_hub: Hub, small_fs: Path, mode: str
) -> None:
    hub = faulty_hub
    out = small_fs / "out"
    filler = _fill_disk(hub, small_fs, mode)
    hub.reset_counters()
    with pytest.raises(Exception):  # noqa: B017 - see the test above for the error itself
        download_dataset("faultds", out, root_url=hub.url, progress=False)
    fetched_while_full = hub.count("asset", "GET")
    assert not leftovers(out), leftovers(out)[:5]
    _free_space(small_fs, filler)  # (sqlite cannot even be read on a 100 % full disk)
    # whatever has its final name is complete and correct; nothing half-written remains
    if (out / "faultds" / "mlhub_assets.db").exists() and index_rows(out, "faultds"):
        ok, absent = verify_present(hub, out, "faultds")
        assert absent > 0
    else:
        ok = 0
    hub.reset_counters()
    summary = download_dataset("faultds", out, root_url=hub.url, progress=False)
    assert isinstance(summary, DownloadSummary) and summary.complete
    verify_download(hub, out, "faultds", expect=2000)
    assert (out / "faultds" / "err_report.csv").read_text().splitlines() == [ERR_HEADER]
    assert hub.count("asset", "GET") <= 2000 - ok  # files that made it are not fetched again
    record_figure(
        f"test_reliability_faults.py::test_disk_full_leaves_no_truncated_file_and_resumes[{mode}]",
        f"tmpfs ({'48 MiB, a filler leaving 1 MB' if mode == 'filler' else '2 MiB'}), "
        f"2,000 assets: {ok} complete files kept, 0 truncated, 0 .part; after freeing space "
        f"the re-run fetched {hub.count('asset', 'GET')} and completed "
        f"({fetched_while_full} requests while full)",
    )


# =============================================================================================
# the API fails during the catalogue fetch


def _info_without_size(hub: Hub, ds: str) -> bytes:
    with urllib.request.urlopen(f"{hub.url}catalog/{ds}/info") as resp:
        info = json.loads(resp.read())
    info.pop("stac_catalog_size", None)
    return json.dumps(info).encode()


def _cut_catalogue(real: bytes, where: str) -> bytes:
    """The catalogue tarball cut after 60 % of its members, re-gzipped (a complete gzip
    stream, so only the tar layer shows the cut).

    ``mid-member``: inside a member's data; ``member-boundary``: right after a member, where
    the next header would start (and the end-of-archive blocks are missing).
    """
    raw = gzip.decompress(real)
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tf:
        members = [m for m in tf.getmembers() if m.isfile() and m.size > 600]
    m = members[len(members) * 3 // 5]
    end = m.offset_data + (m.size + 511) // 512 * 512
    cut = m.offset_data + 300 if where == "mid-member" else end
    return gzip.compress(raw[:cut], mtime=0)


API_FAULTS = [
    "api-503-retry-after",
    "api-500",
    "api-html-200-info",
    "api-html-502-info",
    "api-html-200-catalog",
    "catalog-truncated",
    "catalog-cut-mid-member-no-size",
    "catalog-cut-at-member-boundary-no-size",
    "catalog-garbage-no-size",
]


@pytest.mark.parametrize("fault", API_FAULTS)
def test_catalogue_fetch_errors_are_clear_and_never_taken_as_complete(
    faulty_hub: Hub, tmp_path: Path, fault: str
) -> None:
    hub = faulty_hub
    ds = "faultds"
    real = hub.asset_bytes(f"{hub.storage_url}mlhub/catalogs/{ds}.tar.gz")
    with api_proxy(hub.url) as proxy:
        info_no_size = _info_without_size(hub, ds)
        gz = {"Content-Type": "application/gzip"}

        def override(method: str, path: str) -> Canned | None:
            is_info = path.endswith(f"/catalog/{ds}/info")
            is_catalog = path.endswith(f"/catalog/{ds}")
            if fault == "api-html-200-info" and is_info:
                return Canned(200, HTML)
            if fault == "api-html-502-info" and is_info:
                return Canned(502, HTML)
            if fault == "api-html-200-catalog" and is_catalog:
                return Canned(200, HTML)
            if fault.endswith("no-size") and is_info:
                return Canned(200, info_no_size, {"Content-Type": "application/json"})
            if fault == "catalog-truncated" and is_catalog:
                return Canned(200, real[: len(real) * 2 // 3], gz)
            if fault == "catalog-cut-mid-member-no-size" and is_catalog:
                return Canned(200, _cut_catalogue(real, "mid-member"), gz)
            if fault == "catalog-cut-at-member-boundary-no-size" and is_catalog:
                return Canned(200, _cut_catalogue(real, "member-boundary"), gz)
            if fault == "catalog-garbage-no-size" and is_catalog:
                return Canned(200, HTML * 50, gz)
            return None

        proxy.override = override
        if fault == "api-503-retry-after":
            hub.faults = FaultConfig(
                scope="api", error_rate=1.0, error_statuses=(503,), retry_after=0.1
            )
        elif fault == "api-500":
            hub.faults = FaultConfig(scope="api", error_rate=1.0, error_statuses=(500,))
        hub.reset_counters()
        started = time.monotonic()
        outcome: Any = None
        error: BaseException | None = None
        try:
            outcome = download_dataset(ds, tmp_path, root_url=proxy.url, progress=False)
        except Exception as exc:
            error = exc
        finally:
            hub.faults = FaultConfig()
        seconds = time.monotonic() - started
        # collect what is wrong, then still prove the recovery (both are reported)
        problems: list[str] = []
        if outcome is not None:
            problems.append(
                f"a broken catalogue was taken as complete: {outcome}; "
                f"index meta {index_meta(tmp_path, ds)}"
            )
        else:
            text = str(error)
            if not isinstance(error, MLHubException):
                problems.append(f"raw {type(error).__module__}.{type(error).__name__}: {text}")
            elif "catalog" not in text.lower():
                problems.append(f"the message does not say the catalogue failed: {text}")
            if "<html" in text.lower() and "got text/html" not in text:
                problems.append(f"an HTML page is dumped in the message: {text}")
            # nothing half-fetched is taken as complete: the index is not marked complete
            db_exists = (tmp_path / ds / "mlhub_assets.db").exists()
            if db_exists and index_meta(tmp_path, ds).get("index_complete") == "1":
                problems.append("the index of a broken catalogue is marked complete")
        if fault.startswith("api-"):
            assert hub.count("asset") == 0  # nothing but the API was asked
        elif (tmp_path / ds / "mlhub_assets.db").exists():
            # items before the cut were indexed and fetched as they streamed in: correct files
            verify_present(hub, tmp_path, ds)
        assert seconds < 60
        # once the API is healthy again the same call completes, byte for byte
        proxy.override = None
        summary = download_dataset(ds, tmp_path, root_url=proxy.url, progress=False)
    assert isinstance(summary, DownloadSummary) and summary.complete
    assert (tmp_path / f"{ds}.tar.gz").read_bytes() == real
    verify_download(hub, tmp_path, ds, expect=2000)
    what = "completed" if outcome is not None else type(error).__name__
    record_figure(
        f"test_reliability_faults.py::test_catalogue_fetch_errors_are_clear_and_never_taken_as_complete[{fault}]",
        f"{what} after {seconds:.1f} s; re-run completed 2,000 assets"
        + (f"; PROBLEMS: {problems}" if problems else ""),
    )
    assert not problems, problems


def test_no_stray_mounts_left() -> None:
    """The disk-full fixtures unmount what they mounted."""
    with open("/proc/self/mounts", encoding="utf-8") as fh:
        assert not [line for line in fh if "smallfs" in line]
    assert os.path.exists("/proc/self/mounts")
