"""Progress a user watches during a download: totals, the estimated size, rate and ETA.

Real downloads from the bundled hub; each test records every ``ProgressUpdated`` snapshot.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from mlhub_widgets.config.session import get_session
from mlhub_widgets.download import (
    DownloadJob,
    ProgressSnapshot,
    ProgressUpdated,
    download_dataset,
    plan_download,
)
from mlhub_widgets.hub import FaultConfig, Hub, serve
from mlhub_widgets.widgets.state import completed_fraction

DEMO = "mlhub_widgets_demo_crops"
MARINE = "nasa_marine_debris"  # its assets have no file:size
MARINE_BBOX = [-87.6, 15.7, -87.4, 16.0]


def _record(snapshots: list[ProgressSnapshot]) -> Any:
    def on_event(event: Any) -> None:
        if isinstance(event, ProgressUpdated):
            snapshots.append(event.snapshot)

    return on_event


def test_total_counts_a_shared_common_file_once_while_the_catalogue_is_read(
    hub: Hub, tmp_path: Path
) -> None:
    """The demo's label items all point at one ``_common/documentation.pdf``: one file, one
    download, so the total shown while the index grows never goes above the final total (it
    used to count the shared file once per item, and the bar then jumped to 100 %)."""
    snapshots: list[ProgressSnapshot] = []
    summary = download_dataset(
        DEMO, tmp_path, session=get_session(root_url=hub.url), progress=_record(snapshots)
    )
    assert summary.assets_failed == 0
    streaming = [s for s in snapshots if not s.index_complete and s.assets_total]
    assert streaming, "no snapshot while the index was being built"
    assert max(s.assets_total for s in snapshots) == summary.assets_selected
    # the bar reaches 100 % with the last file, not before
    unfinished = [
        s for s in snapshots if s.assets_done + s.assets_skipped < summary.assets_selected
    ]
    assert unfinished and max(s.fraction for s in unfinished) < 1.0


def test_unknown_sizes_use_the_catalogue_estimate_for_total_and_eta(tmp_path: Path) -> None:
    # assets throttled and 2 workers: the transfers last a few seconds, so the rate is measured
    with serve(faults=FaultConfig(bandwidth_bps=200_000, scope="assets")) as slow:
        session = get_session(root_url=slow.url)
        plan = plan_download(MARINE, tmp_path / "plan", bbox=MARINE_BBOX, session=session)
        assert not plan.bytes_exact and plan.bytes > 0
        snapshots: list[ProgressSnapshot] = []
        download_dataset(
            MARINE,
            tmp_path,
            bbox=MARINE_BBOX,
            session=session,
            workers=2,
            progress=_record(snapshots),
        )
    assert all(s.bytes_total is None for s in snapshots if s.assets_total)  # no file:size
    indexed = [s for s in snapshots if s.index_complete]
    assert indexed and {s.bytes_estimate for s in indexed} == {plan.bytes}  # what Estimate said
    # while the catalogue is still read (the bbox keeps the index growing to the end), the
    # estimate follows the assets selected so far, so there is a total and an ETA meanwhile
    running = [s for s in snapshots if s.phase == "transfer" and s.rate > 0 and s.assets_total]
    assert running and all(s.bytes_estimate for s in running)
    ahead = [s for s in running if s.bytes_estimate and s.bytes_estimate > s.bytes_done]
    assert ahead and all(s.eta is not None and s.eta > 0 for s in ahead)


def test_rate_is_the_mean_of_the_last_seconds(hub: Hub, tmp_path: Path) -> None:
    """One fast burst does not make the rate (and the ETA) jump: it is averaged over the
    rate window, fed here with a fixed clock (no download runs)."""
    from mlhub_widgets.download.job_run import RATE_WINDOW

    job = DownloadJob(DEMO, tmp_path, session=get_session(root_url=hub.url))
    job._state = "running"
    t = 1000.0
    for _ in range(int(RATE_WINDOW * 8)):  # 100 KB/s, sampled 8 times a second
        t += 0.125
        job._bytes_downloaded += 12_500
        job._update_rate(t)
    assert abs(job._rate - 100_000) < 1
    t += 0.125
    job._bytes_downloaded += 1_250_000  # a burst: 10 MB/s for one tick
    job._update_rate(t)
    assert job._rate < 400_000  # an exponential average at 0.3 showed ~3 MB/s here
    for _ in range(int(RATE_WINDOW * 8) + 1):  # back to 100 KB/s: the burst ages out
        t += 0.125
        job._bytes_downloaded += 12_500
        job._update_rate(t)
    assert abs(job._rate - 100_000) < 1
    job._state = "paused"
    job._update_rate(t + 0.125)
    assert job._rate == 0.0


def test_the_bar_is_not_full_while_the_catalogue_is_still_read() -> None:
    """Transfers can catch up with the totals known so far while the index grows: the bar
    (the snapshot's fraction, and the explorer's panel) says at most 99 % until the index is
    complete and every asset is finished."""
    snap = ProgressSnapshot(
        state="running", phase="transfer", assets_total=40, assets_done=40, assets_failed=0,
        assets_skipped=0, bytes_done=4_000, bytes_total=4_000, rate=0.0, eta=None, retries=0,
        elapsed=1.0, index_complete=False,
    )  # fmt: skip
    assert f"{snap.fraction * 100:.0f} %" == "99 %"
    assert f"{completed_fraction(snap, 'running') * 100:.0f} %" == "99 %"
    done = replace(snap, index_complete=True)
    assert done.fraction == 1.0
    one_left = replace(done, assets_done=39, bytes_done=4_000)  # e.g. an empty file left
    assert one_left.fraction < 1.0 and completed_fraction(one_left, "running") < 1.0
    by_assets = replace(done, bytes_total=None, assets_done=39, assets_failed=1)
    assert by_assets.fraction == 1.0  # finished, one failed
