"""SIGKILL at chosen moments, then re-runs: every re-run completes the dataset, byte for byte.

The download runs in a child process (``python -c`` calling ``download_dataset``) against the
bundled hub running in the test process, so the hub's request log shows exactly what every
re-run asked for. Phases are detected from what appears on disk (the ``.tar.gz.part``, the
unpacked item folders, ``.part`` files) and from the hub's counters; the hub's bandwidth cap
stretches the phase being aimed at. After each kill:

* whatever is under a final name is complete and correct (partial data only in ``.part``);
* a fresh process re-runs the download: it completes, every file is byte-identical, and it
  requests exactly the assets that were not complete on disk at the kill (never one again);
* a further re-run is a no-op: zero asset requests.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlhub_widgets.download import DownloadSummary, download_dataset
from mlhub_widgets.hub import FaultConfig, Hub, serve

from .reliability_support import (
    asset_files,
    finish_child,
    index_meta,
    index_rows,
    leftovers,
    make_data_dir,
    record_figure,
    sigkill,
    start_child,
    verify_download,
    verify_present,
    wait_for,
)

pytestmark = pytest.mark.slow

DS = "crashds"
N_SMALL = 2000
N_BIG = 8
BIG = 5 * 1024 * 1024 // 2  # > 1 MiB: the client writes .part in 1 MiB slices
TOTAL = N_SMALL + N_BIG
SOURCE = f"{DS}_source"


@pytest.fixture(scope="module")
def crash_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """2,000 small assets (one per item; a ~260 kB catalogue) + 8 real 2.5 MiB files, indexed
    last."""
    root = tmp_path_factory.mktemp("crash")
    data = make_data_dir(root, DS, N_SMALL, 1, 512, 2048)
    folder = data / DS
    assets = {}
    for i in range(N_BIG):
        rel = f"big/file_{i}.bin"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(random.Random(i).randbytes(BIG))
        assets[f"big_{i}"] = {
            "href": f"hub-file:///{DS}/{rel}",
            "type": "application/octet-stream",
            "file:size": BIG,
        }
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": f"{DS}_big",
        "collection": SOURCE,
        "bbox": [0.0, 0.0, 1.0, 1.0],
        "geometry": {"type": "Polygon",
                     "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]},
        "properties": {"datetime": "2021-01-01T00:00:00Z"},
        "assets": assets,
    }  # fmt: skip
    with (folder / SOURCE / "items.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(item) + "\n")
    with serve(data) as hub:
        hub.catalog_blob(DS)  # built once, up front (not part of any measured phase)
        yield hub


# ---------------------------------------------------------------------------------------------
# kill points


@dataclass
class KillPoint:
    name: str
    faults: FaultConfig
    ready: Callable[[Hub, Path], bool]
    check: Callable[[Hub, Path], None]
    """Proof that the kill happened in the phase aimed at (run right after the kill)."""


def _items_unpacked(out: Path) -> int:
    src = out / DS / SOURCE
    return len(os.listdir(src)) if src.is_dir() else 0


def _big_parts(out: Path) -> list[Path]:
    folder = out / DS / SOURCE / f"{DS}_big"
    return list(folder.glob("*.part")) if folder.is_dir() else []


def _index_incomplete(out: Path) -> bool:
    db = out / DS / "mlhub_assets.db"
    return not db.exists() or index_meta(out, DS).get("index_complete") != "1"


def _check_catalogue(hub: Hub, out: Path) -> None:
    assert not (out / f"{DS}.tar.gz").exists()  # killed before the catalogue was complete
    assert not (out / DS / SOURCE).exists()
    assert hub.count("asset") == 0


def _check_unpack(hub: Hub, out: Path) -> None:
    assert (out / f"{DS}.tar.gz").is_file()
    assert 0 < _items_unpacked(out) < N_SMALL  # part of the items only
    assert _index_incomplete(out)


def _check_index(hub: Hub, out: Path) -> None:
    assert 0 < _items_unpacked(out) < N_SMALL  # part of the items only
    assert _index_incomplete(out)
    # transfers usually run by now, but the index process may be that quick: that transfers
    # start before the index is complete is test_asset_index's streaming test


def _check_transfer(hub: Hub, out: Path) -> None:
    assert 0 < hub.count("asset", "GET") < TOTAL


def _check_big_parts(hub: Hub, out: Path) -> None:
    sizes = {p.name: p.stat().st_size for p in _big_parts(out)}
    assert len(sizes) >= 4 and all(0 < n < BIG for n in sizes.values()), sizes


BW_STORAGE = FaultConfig(bandwidth_bps=40_000, scope="storage")
BW_ASSETS = FaultConfig(bandwidth_bps=600_000, scope="assets")
SLOW_API = FaultConfig(latency_ms=2)


class _CatalogueInFlight:
    """True one second after the hub began sending the (bandwidth-capped) catalogue."""

    def __init__(self) -> None:
        self.since: float | None = None

    def __call__(self, hub: Hub, out: Path) -> bool:
        if self.since is None:
            if hub.count("catalog", "GET"):
                self.since = time.monotonic()
            return False
        return time.monotonic() - self.since >= 1.0


KILL_POINTS = [
    KillPoint("catalogue-download", BW_STORAGE, _CatalogueInFlight(), _check_catalogue),
    KillPoint(
        "catalogue-unpacking",
        SLOW_API,
        lambda hub, out: 1 <= _items_unpacked(out) <= N_SMALL // 4,
        _check_unpack,
    ),
    KillPoint(
        "index-building",
        SLOW_API,
        lambda hub, out: N_SMALL // 3 <= _items_unpacked(out) <= N_SMALL * 2 // 3,
        _check_index,
    ),
    KillPoint(
        "transfers",
        FaultConfig(),
        lambda hub, out: hub.count("asset", "GET") >= N_SMALL * 3 // 4,
        _check_transfer,
    ),
    KillPoint(
        "mid-file",
        BW_ASSETS,
        lambda hub, out: (
            len(_big_parts(out)) >= 4
            and all(p.stat().st_size >= 1024 * 1024 for p in _big_parts(out))
        ),
        _check_big_parts,
    ),
]


def _kill_at(hub: Hub, out: Path, point: KillPoint) -> float:
    """Start a child download, SIGKILL it at ``point``; returns seconds until the kill."""
    hub.faults = point.faults
    hub.reset_counters()
    started = time.monotonic()
    child = start_child(DS, out, hub.url)
    try:
        hit = wait_for(lambda: point.ready(hub, out), 120, child)
        if not hit:
            _, err_text = child.communicate(timeout=30)
            raise AssertionError(f"{point.name}: the moment never came; child: {err_text[-2000:]}")
        sigkill(child)
        assert child.returncode == -9
        point.check(hub, out)
    finally:
        if child.poll() is None:
            sigkill(child)
        hub.faults = FaultConfig()
    return time.monotonic() - started


def _rerun_and_verify(hub: Hub, out: Path, label: str) -> dict[str, float]:
    """After a kill: state is sane, a fresh process completes with no needless request, and
    a further run is a no-op."""
    on_disk = asset_files(out, DS) if (out / DS).is_dir() else set()
    if (out / DS / "mlhub_assets.db").exists() and index_rows(out, DS):
        verify_present(hub, out, DS)  # whatever has its final name is correct
    parts = len(leftovers(out))
    hub.reset_counters()
    started = time.monotonic()
    summary = finish_child(start_child(DS, out, hub.url))
    seconds = time.monotonic() - started
    assert summary["failed"] == 0 and summary["selected"] == TOTAL, summary
    verify_download(hub, out, DS, expect=TOTAL)
    final = set(index_rows(out, DS))
    kept = len(on_disk & final)
    asked = hub.count("asset", "GET")
    assert asked == TOTAL - kept, f"{label}: {asked} requests, {TOTAL - kept} files were missing"
    resumed = sum(1 for r in hub.requests if r.kind == "asset" and r.status == 206)
    # no-op: nothing is requested from storage at all
    hub.reset_counters()
    again = download_dataset(DS, out, root_url=hub.url, progress=False)
    assert isinstance(again, DownloadSummary) and again.complete
    assert hub.count("asset") == 0, hub.counters()
    assert again.assets_skipped == TOTAL
    return {"kept": kept, "asked": asked, "parts": parts, "resumed": resumed, "rerun_s": seconds}


@pytest.mark.parametrize("point", KILL_POINTS, ids=[p.name for p in KILL_POINTS])
def test_sigkill_then_rerun_completes(crash_hub: Hub, tmp_path: Path, point: KillPoint) -> None:
    out = tmp_path / "out"
    killed_after = _kill_at(crash_hub, out, point)
    stats = _rerun_and_verify(crash_hub, out, point.name)
    if point.name == "mid-file":
        assert stats["resumed"] >= 4, "the partial big files were not resumed with Range"
    record_figure(
        f"test_reliability_crash.py::test_sigkill_then_rerun_completes[{point.name}]",
        f"SIGKILL at {killed_after:.1f} s ({point.name}); {stats['kept']:.0f} complete files "
        f"and {stats['parts']:.0f} .part kept; re-run (new process) fetched "
        f"{stats['asked']:.0f} = exactly the missing ones ({stats['resumed']:.0f} resumed with "
        f"Range), {TOTAL:,} byte-exact in {stats['rerun_s']:.1f} s; no-op re-run: 0 asset requests",
        **stats,
    )


def test_repeated_sigkills_at_random_moments(crash_hub: Hub, tmp_path: Path) -> None:
    """Five kills in a row in the same folder, each in a re-run of the previous one, at
    random moments (seeded), then one run to the end."""
    out = tmp_path / "out"
    rng = random.Random(20240601)
    moments = []
    for _ in range(5):
        delay = rng.uniform(0.3, 2.5)
        crash_hub.faults = SLOW_API
        child = start_child(DS, out, crash_hub.url)
        wait_for(lambda: False, delay, child)  # sleep, or stop early if the child ended
        ended_alone = child.poll() is not None
        sigkill(child)
        crash_hub.faults = FaultConfig()
        moments.append(f"{delay:.1f}s" + (" (already done)" if ended_alone else ""))
        if (out / DS / "mlhub_assets.db").exists() and index_rows(out, DS):
            verify_present(crash_hub, out, DS)
    stats = _rerun_and_verify(crash_hub, out, "repeated")
    record_figure(
        "test_reliability_crash.py::test_repeated_sigkills_at_random_moments",
        f"5 SIGKILLs in a row at {', '.join(moments)} after each start; then the re-run "
        f"fetched {stats['asked']:.0f} missing, {TOTAL:,} byte-exact; no-op: 0 requests",
    )
