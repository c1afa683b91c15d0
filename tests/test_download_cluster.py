"""Downloads on a Dask cluster: ``download_dataset(..., cluster=...)`` and ``mlhub download --dask``.

Real parts only: the bundled hub over HTTP, the ``dask_cluster`` fixture (a ``LocalCluster`` of
2 worker processes), and for the lost scheduler a ``dask scheduler`` and a ``dask worker`` of
the test's own. The assets go to a folder every worker sees (the machine's disk).

Partitions are sized by bytes with a floor (:data:`MIN_PARTITION_BYTES`, 64 MiB) that would put
these small datasets into one partition: the tests lower the floor, so that every dataset is
cut into several partitions and both workers get some.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed import get_task_stream

import mlhub_widgets as mw
from mlhub_widgets.download import (
    AssetFinished,
    ClusterConnected,
    DownloadJob,
    DownloadSummary,
    JobFinished,
    ProgressUpdated,
    download_dataset,
)
from mlhub_widgets.download import partitions
from mlhub_widgets.hub import FaultConfig, Hub
from mlhub_widgets.hub.sample import make_synthetic_dataset

from .parts.cluster import DaskCluster
from .parts.process import START_TIMEOUT, Proc, free_port, part_env, tcp_open, wait_until
from .reliability_support import ROOT, asset_files, index_rows, leftovers, verify_download

SMALL = "clustersmall"  # 240 assets of 0.5-4 KiB
N_SMALL = 240
SLOW = "clusterslow"  # 12 assets of 2.2-2.6 MB: written in 1 MiB slices, so .part files stay
N_SLOW = 12
#: Per-response cap of the hub for SLOW: about two seconds per file.
SLOW_BPS = 1_200_000


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("cluster") / "hubdata"
    make_synthetic_dataset(data, SMALL, 60, 4, 512, 4096)
    make_synthetic_dataset(data, SLOW, N_SLOW, 1, 2_200_000, 2_600_000, kinds=("bin",))
    return data


@pytest.fixture
def hub(data_dir: Path) -> Iterator[Hub]:
    """A hub of the test's own: its request log and counters are the test's."""
    with Hub(data_dir) as running:
        yield running


@pytest.fixture
def small_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Partitions of ~64 kB for SMALL (~8 of them), ~3.6 MB for SLOW (2 files each)."""
    monkeypatch.setattr(partitions, "MIN_PARTITION_BYTES", 64_000)


def asset_gets(hub: Hub) -> Counter[str]:
    """Asset GETs the hub answered, per path."""
    return Counter(r.path for r in hub.requests if r.kind == "asset" and r.method == "GET")


def wait_for(job: DownloadJob, check: Any, what: str) -> None:
    """Block until ``check(snapshot)`` holds for a progress event of ``job`` (deadline)."""
    reached = threading.Event()

    def on_event(event: object) -> None:
        if isinstance(event, ProgressUpdated) and check(event.snapshot):
            reached.set()

    unsubscribe = job.subscribe(on_event)
    try:
        if not reached.wait(START_TIMEOUT) and not check(job.progress):
            pytest.fail(f"{what}: not reached within {START_TIMEOUT:.0f} s ({job.progress})")
    finally:
        unsubscribe()


def done_files(out: Path, dataset: str) -> set[str]:
    """Asset files under their final name now."""
    return {f"/{p}" for p in asset_files(out, dataset)}


def url_paths(out: Path, dataset: str) -> dict[str, str]:
    """``{hub URL path: saved relpath}`` of the selected assets."""
    from urllib.parse import urlsplit

    return {urlsplit(url).path: rel for rel, url in index_rows(out, dataset).items()}


# ------------------------------------------------------------------------------- the download


@pytest.mark.parametrize("how", ["client", "address"])
def test_a_cluster_download_is_byte_identical_and_fetches_each_asset_once(
    how: str, dask_cluster: DaskCluster, hub: Hub, tmp_path: Path, small_partitions: None
) -> None:
    cluster = dask_cluster.client if how == "client" else dask_cluster.address
    events: list[object] = []
    out = tmp_path / "out"
    with get_task_stream(client=dask_cluster.client) as stream:
        summary = download_dataset(
            SMALL, out, root_url=hub.url, cluster=cluster, progress=events.append
        )

    assert isinstance(summary, DownloadSummary) and summary.complete
    assert summary.assets_downloaded == N_SMALL and summary.assets_skipped == 0
    verify_download(hub, out, SMALL, expect=N_SMALL)  # every byte, no .part left
    gets = asset_gets(hub)
    assert len(gets) == N_SMALL and set(gets.values()) == {1}
    # one Dask task per partition, on both workers; per-asset events as on one machine
    tasks = [t for t in stream.data if str(t["key"]).startswith("mlhub_download-")]
    assert 4 <= len(tasks) < N_SMALL / 10
    assert len({t["worker"] for t in tasks}) == 2
    connected = [e for e in events if isinstance(e, ClusterConnected)]
    assert len(connected) == 1 and connected[0].scheduler == dask_cluster.address
    assert connected[0].workers == 2 and connected[0].threads == 2
    port = dask_cluster.client.scheduler_info()["services"]["dashboard"]
    assert connected[0].dashboard_url == f"http://127.0.0.1:{port}/status"
    assert sum(isinstance(e, AssetFinished) for e in events) == N_SMALL
    final = [e for e in events if isinstance(e, ProgressUpdated)][-1].snapshot
    assert final.assets_done == N_SMALL and final.bytes_done == summary.bytes_on_disk
    assert isinstance(events[-1], JobFinished)
    report = (out / SMALL / "err_report.csv").read_text().splitlines()
    assert len(report) == 1  # the header: nothing failed


def test_a_rerun_schedules_only_what_is_missing(
    dask_cluster: DaskCluster, hub: Hub, tmp_path: Path, small_partitions: None
) -> None:
    out = tmp_path / "out"
    first = download_dataset(SMALL, out, root_url=hub.url, cluster=dask_cluster.client)
    assert isinstance(first, DownloadSummary) and first.complete
    hub.reset_counters()

    # nothing missing: no task, no request
    with get_task_stream(client=dask_cluster.client) as stream:
        noop = download_dataset(SMALL, out, root_url=hub.url, cluster=dask_cluster.client)
    assert isinstance(noop, DownloadSummary)
    assert noop.assets_skipped == N_SMALL and noop.assets_downloaded == 0
    assert hub.count("asset") == 0 and stream.data == []

    # 5 files deleted; 5 rows put back to pending with their files complete (the outcomes a
    # killed client never recorded): only the 5 deleted files are fetched
    rows = sorted(index_rows(out, SMALL).items())
    deleted = [rel for rel, _ in rows[:5]]
    unrecorded = [rel for rel, _ in rows[100:105]]
    for rel in deleted:
        (out / SMALL / rel).unlink()
    with sqlite3.connect(out / SMALL / "mlhub_assets.db") as con:
        con.executemany(
            "UPDATE assets SET state=0, bytes=0 WHERE path=?", [(r,) for r in unrecorded]
        )
    with get_task_stream(client=dask_cluster.client) as stream:
        again = download_dataset(SMALL, out, root_url=hub.url, cluster=dask_cluster.client)
    assert isinstance(again, DownloadSummary)
    assert again.assets_downloaded == 5 and again.assets_skipped == N_SMALL - 5
    paths = url_paths(out, SMALL)
    assert sorted(paths[p] for p in asset_gets(hub)) == sorted(deleted)
    assert len(stream.data) == 1  # one partition: the 5 missing files
    verify_download(hub, out, SMALL, expect=N_SMALL)


# -------------------------------------------------------------------------- nothing lost, nothing doubled


def _slow_hub(hub: Hub) -> None:
    hub.faults = FaultConfig(bandwidth_bps=SLOW_BPS)


def _worker_writing_a_part(cluster: DaskCluster, out: Path, at_least: int) -> int:
    """Wait until a worker holds a ``.part`` of ``at_least`` bytes open; its PID."""
    import psutil

    found: list[int] = []

    def writing() -> bool:
        for pid in cluster.worker_pids():
            with contextlib.suppress(psutil.Error):
                for f in psutil.Process(pid).open_files():
                    if f.path.endswith(".part") and os.path.getsize(f.path) >= at_least:
                        found.append(pid)
                        return True
        return False

    wait_until(writing, f"a worker writing a .part of {at_least:,} bytes")
    return found[0]


def _check_no_asset_fetched_twice_once_complete(
    hub: Hub, out: Path, dataset: str, complete_before: set[str], in_flight: int
) -> Counter[str]:
    """Every asset is on disk, byte-identical; one fetched again only if it was being
    fetched when its process died (at most ``in_flight`` of them, twice each)."""
    verify_download(hub, out, dataset, expect=N_SLOW)
    gets = asset_gets(hub)
    paths = url_paths(out, dataset)
    assert set(gets) == set(paths)
    again = {p: n for p, n in gets.items() if n > 1}
    assert len(again) <= in_flight and set(again.values()) <= {2}, again
    completed_then = {p for p, rel in paths.items() if f"/{rel}" in complete_before}
    assert completed_then, "nothing was complete when the process was killed"
    assert not completed_then & set(again), "a complete file was fetched again"
    with sqlite3.connect(out / dataset / "mlhub_assets.db") as con:
        states = Counter(s for (s,) in con.execute("SELECT state FROM assets WHERE selected=1"))
    assert states == {1: N_SLOW}  # each asset recorded done, once (paths are unique)
    return gets


def test_a_worker_killed_mid_partition_loses_nothing_and_doubles_nothing(
    dask_cluster: DaskCluster, hub: Hub, tmp_path: Path, small_partitions: None
) -> None:
    _slow_hub(hub)
    out = tmp_path / "out"
    before = dask_cluster.worker_pids()
    job = DownloadJob(SLOW, out, root_url=hub.url, cluster=dask_cluster.client, workers=2)
    job.start()
    wait_for(job, lambda p: p.assets_done >= 2, "two files downloaded")
    victim = _worker_writing_a_part(dask_cluster, out, 1 << 20)  # mid-partition, mid-file
    complete = done_files(out, SLOW)
    dask_cluster.kill_worker(victim)  # SIGKILL: no clean shutdown

    summary = job.wait(timeout=120)
    assert summary.complete and summary.assets_failed == 0
    assert summary.assets_downloaded + summary.assets_skipped == N_SLOW
    gets = _check_no_asset_fetched_twice_once_complete(hub, out, SLOW, complete, in_flight=2)
    # the killed worker's file with a MiB on disk was resumed (Range), not fetched anew
    resumed = {r.path for r in hub.requests if r.kind == "asset" and r.status == 206}
    assert resumed and resumed <= {p for p, n in gets.items() if n == 2}
    assert resumed <= {p for p, n in gets.items() if n == 2}
    assert victim in before and victim not in dask_cluster.worker_pids()


_CLIENT = r"""
import json, sys
from mlhub_widgets.download import ProgressUpdated, download_dataset, partitions
partitions.MIN_PARTITION_BYTES = 64_000
dataset, out, url, address = sys.argv[1:5]
job = download_dataset(dataset, out, root_url=url, cluster=address, workers=2,
                       progress=False, background=True)
def on_event(event):
    if isinstance(event, ProgressUpdated) and event.snapshot.assets_done >= 2:
        print("progress", event.snapshot.assets_done, flush=True)
job.subscribe(on_event)
job.wait()
print("finished", flush=True)
"""


def test_a_client_killed_mid_job_is_resumed_by_a_rerun(
    dask_cluster: DaskCluster, hub: Hub, tmp_path: Path, small_partitions: None
) -> None:
    _slow_hub(hub)
    out = tmp_path / "out"
    client = subprocess.Popen(
        [sys.executable, "-c", _CLIENT, SLOW, str(out), hub.url, dask_cluster.address],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=str(ROOT),
    )
    try:
        lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        assert client.stdout is not None
        stream = client.stdout
        threading.Thread(target=lambda: [lines.put(x) for x in stream], daemon=True).start()
        first = lines.get(timeout=START_TIMEOUT)
        assert first.startswith("progress"), first
        complete = done_files(out, SLOW)
        client.send_signal(signal.SIGKILL)  # our own child, by its PID
        client.wait(timeout=30)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(timeout=30)
    # the scheduler cancels the dead client's tasks; the workers stop them at once
    wait_until(lambda: not any(dask_cluster.client.processing().values()), "tasks stopped")
    assert leftovers(out / SLOW) or len(done_files(out, SLOW)) < N_SLOW  # it was mid-job

    summary = download_dataset(SLOW, out, root_url=hub.url, cluster=dask_cluster.client)
    assert isinstance(summary, DownloadSummary) and summary.complete
    _check_no_asset_fetched_twice_once_complete(hub, out, SLOW, complete, in_flight=4)


@pytest.fixture
def own_scheduler(tmp_path: Path) -> Iterator[tuple[str, Proc, Proc]]:
    """A ``dask scheduler`` and one ``dask worker`` (1 thread) in processes of their own."""
    from .parts.process import start_on_free_port

    sched, port = start_on_free_port(
        "dask-scheduler",
        lambda p: [
            sys.executable,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(p),
            "--no-dashboard",
        ],  # fmt: skip
        tcp_open,
        tmp_path,
    )
    address = f"tcp://127.0.0.1:{port}"
    worker = Proc(
        "dask-worker",
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_worker",
            address,
            "--nthreads",
            "1",
            "--no-dashboard",
            "--host",
            "127.0.0.1",
        ],  # fmt: skip
        tmp_path / "dask-worker.log",
        part_env(PYTHONPATH=str(ROOT)),
    )
    try:
        yield address, sched, worker
    finally:
        worker.stop()
        sched.stop()


def test_a_lost_scheduler_is_one_clear_error_and_the_run_resumes(
    own_scheduler: tuple[str, Proc, Proc],
    dask_cluster: DaskCluster,
    hub: Hub,
    tmp_path: Path,
    small_partitions: None,
) -> None:
    address, scheduler, worker = own_scheduler
    _slow_hub(hub)
    out = tmp_path / "out"
    job = DownloadJob(SLOW, out, root_url=hub.url, cluster=address, workers=2).start()
    wait_for(job, lambda p: p.assets_done >= 1, "a file downloaded")
    complete = done_files(out, SLOW)
    os.kill(scheduler.pid, signal.SIGKILL)  # the test's own scheduler process

    with pytest.raises(mw.ClusterError) as lost:
        job.wait(timeout=60)
    text = str(lost.value)
    assert "\n" not in text and "lost the connection to the Dask scheduler" in text
    assert address in text and "run the same download again to resume" in text
    assert job.state == "failed"
    worker.stop()  # the orphaned worker: gone before the rerun (docs/scale-out.md)

    summary = download_dataset(SLOW, out, root_url=hub.url, cluster=dask_cluster.client)
    assert isinstance(summary, DownloadSummary) and summary.complete
    _check_no_asset_fetched_twice_once_complete(hub, out, SLOW, complete, in_flight=2)
