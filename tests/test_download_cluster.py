"""Downloads on a Dask cluster: ``download_dataset(..., cluster=...)``, ``mlhub download --dask``.

Real parts only: the bundled hub over HTTP, the ``dask_cluster`` fixture (a ``LocalCluster`` of
2 worker processes), and for the lost scheduler a ``dask scheduler`` and a ``dask worker`` of
the test's own. The assets go to a folder every worker sees (the machine's disk).

Partitions are sized by bytes with a floor (:data:`MIN_PARTITION_BYTES`, 4 MiB) that would put
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
import urllib.request
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
    partitions,
)
from mlhub_widgets.hub import FaultConfig, Hub
from mlhub_widgets.hub.sample import make_synthetic_dataset

from .parts.cluster import DaskCluster
from .parts.process import START_TIMEOUT, Proc, free_port, part_env, tcp_open, wait_until
from .reliability_support import (
    ROOT,
    RssSampler,
    asset_files,
    index_rows,
    leftovers,
    record_figure,
    rss_mb,
    verify_download,
)
from .test_cli_user import mlhub
from .test_signing import BODY as SIGNED_BODY
from .test_signing import Gate, Signer, gate  # noqa: F401 - gate is a fixture
from .test_signing import N as SIGNED_N

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
    """A byte floor of 64 kB: with ``workers=2``, SMALL (550 kB) is cut into ~8 partitions
    and SLOW (12 files) into 2 of 6 files."""
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
            SMALL, out, root_url=hub.url, cluster=cluster, progress=events.append, workers=2
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


# ---------------------------------------------------------------- nothing lost, nothing doubled


def _slow_hub(hub: Hub) -> None:
    hub.faults = FaultConfig(bandwidth_bps=SLOW_BPS)


def _open_parts(pids: set[int], at_least: int = 0) -> list[int]:
    """The processes among ``pids`` (and their children) holding a ``.part`` of ``at_least``
    bytes open for writing."""
    import psutil

    found = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error, OSError):
                    for f in proc.open_files():
                        if f.path.endswith(".part") and os.path.getsize(f.path) >= at_least:
                            found.append(proc.pid)
    return found


def _worker_writing_a_part(cluster: DaskCluster, at_least: int) -> int:
    """Wait until a worker holds a ``.part`` of ``at_least`` bytes open; its PID."""
    found: list[int] = []

    def writing() -> bool:
        found[:] = _open_parts(cluster.worker_pids(), at_least)
        return bool(found)

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
    victim = _worker_writing_a_part(dask_cluster, 1 << 20)  # mid-partition, mid-file
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

        def read_lines() -> None:
            for line in stream:
                lines.put(line)

        threading.Thread(target=read_lines, daemon=True).start()
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

    def scheduler_command(port: int) -> list[str]:
        command = [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1"]
        return [*command, "--port", str(port), "--no-dashboard"]

    sched, port = start_on_free_port("dask-scheduler", scheduler_command, tcp_open, tmp_path)
    address = f"tcp://127.0.0.1:{port}"
    worker_command = [sys.executable, "-m", "distributed.cli.dask_worker", address]
    worker_command += ["--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"]
    worker = Proc(
        "dask-worker",
        worker_command,
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
    # the worker that lost its scheduler stops its partition by itself (it keeps running)
    wait_until(lambda: not _open_parts({worker.pid}), "the orphaned worker stopped writing")
    assert worker.popen.poll() is None
    worker.stop()

    summary = download_dataset(SLOW, out, root_url=hub.url, cluster=dask_cluster.client)
    assert isinstance(summary, DownloadSummary) and summary.complete
    _check_no_asset_fetched_twice_once_complete(hub, out, SLOW, complete, in_flight=2)


# ---------------------------------------------------------------------------- the same job object


def test_pause_holds_the_partitions_and_the_running_tasks_and_cancel_stops_them(
    dask_cluster: DaskCluster, hub: Hub, tmp_path: Path, small_partitions: None
) -> None:
    _slow_hub(hub)
    out = tmp_path / "out"
    job = DownloadJob(SLOW, out, root_url=hub.url, cluster=dask_cluster.client, workers=2)
    connected = threading.Event()

    def pause_when_connected(event: object) -> None:
        if isinstance(event, ClusterConnected):
            job.pause()  # before the first partition is submitted
            connected.set()

    job.subscribe(pause_when_connected)
    ticks: queue.SimpleQueue[object] = queue.SimpleQueue()
    job.subscribe(lambda e: ticks.put(e) if isinstance(e, ProgressUpdated) else None)
    job.start()
    assert connected.wait(START_TIMEOUT)
    for _ in range(12):  # 12 progress ticks (~1.5 s) while paused
        ticks.get(timeout=START_TIMEOUT)
    assert job.state == "paused" and hub.count("asset") == 0
    assert not any(dask_cluster.client.processing().values())

    job.resume()
    wait_for(job, lambda p: p.assets_done >= 2, "two files downloaded")
    # paused mid-partition: the running tasks finish their transfers and start no new one
    job.pause()
    wait_until(lambda: not _open_parts(dask_cluster.worker_pids()), "running transfers done")
    gets = hub.count("asset")
    for _ in range(12):
        ticks.get(timeout=START_TIMEOUT)
    assert hub.count("asset") == gets and job.progress.assets_finished < N_SLOW
    assert any(dask_cluster.client.processing().values())  # the tasks wait, paused
    # transfers again, four times slower (a file takes ~8 s: on a loaded machine the cancel
    # still lands before the last ones end): cancel while a file is a MiB in
    hub.faults = FaultConfig(bandwidth_bps=SLOW_BPS // 4)
    job.resume()
    _worker_writing_a_part(dask_cluster, 1 << 20)
    assert hub.count("asset") > gets
    job.cancel()
    cancelled = job.wait(timeout=60)
    assert str(job.state) == "cancelled" and cancelled.cancelled
    # the tasks stop within a heartbeat, leaving their .part files for the next run
    wait_until(lambda: not any(dask_cluster.client.processing().values()), "tasks stopped")
    complete = done_files(out, SLOW)
    assert 2 <= len(complete) < N_SLOW and leftovers(out / SLOW)

    summary = download_dataset(SLOW, out, root_url=hub.url, cluster=dask_cluster.client)
    assert isinstance(summary, DownloadSummary) and summary.complete
    assert summary.assets_skipped >= len(complete)
    _check_no_asset_fetched_twice_once_complete(hub, out, SLOW, complete, in_flight=4)


def test_a_signed_source_is_signed_on_the_workers(
    gate: str,  # noqa: F811 - the fixture imported from test_signing
    dask_cluster: DaskCluster,
    tmp_path: Path,
    small_partitions: None,
) -> None:
    # the source's modifier travels to the workers with each task (pickled), and signs
    # every asset there just before it is fetched
    src = mw.open_source(f"{gate}/catalog.json", modifier=Signer())
    summary = download_dataset(
        "signed", tmp_path, source=src, cluster=dask_cluster.client, progress=False
    )
    assert isinstance(summary, DownloadSummary) and summary.complete
    assert summary.assets_downloaded == SIGNED_N and sum(Gate.refused.values()) == 0
    assert sorted(Gate.asked.values()) == [1] * SIGNED_N
    files = sorted((tmp_path / "signed" / "imagery").rglob("*.tif"))
    assert len(files) == SIGNED_N and all(f.read_bytes() == SIGNED_BODY for f in files)


def test_the_explorer_takes_a_scheduler_address_and_shows_the_dashboard(
    dask_cluster: DaskCluster, hub: Hub, tmp_path: Path, small_partitions: None
) -> None:
    from mlhub_widgets.config.session import get_session
    from mlhub_widgets.widgets import DownloadPanel, LoginPanel
    from mlhub_widgets.widgets.state import ExplorerState

    state = ExplorerState(session=get_session(root_url=hub.url, api_key="x"))
    login, panel = LoginPanel(state), DownloadPanel(state)
    assert "this kernel" in panel.selection.value and panel.dashboard.value == ""
    # the Connect tab refuses what is not a scheduler address, in one line, and keeps the last
    login.cluster.value = "http://not-a-scheduler"
    assert state.cluster == "" and "not a Dask scheduler address" in login.cluster_status.value
    login.cluster.value = f" {dask_cluster.address} "
    assert state.cluster == dask_cluster.address and login.cluster_status.value == ""
    assert f"the Dask cluster at <code>{dask_cluster.address}</code>" in panel.selection.value
    with pytest.raises(Exception, match="not a Dask scheduler address"):
        state.cluster = "http://not-a-scheduler"

    state.output_dir = str(tmp_path)
    state.dataset_id = SMALL
    state.wait()
    panel.start_button.click()
    state.wait()
    job = state.job
    assert isinstance(job, DownloadJob)
    summary = job.wait(timeout=120)
    assert summary.complete and summary.assets_downloaded == N_SMALL
    state.refresh_progress()
    port = dask_cluster.client.scheduler_info()["services"]["dashboard"]
    url = f"http://127.0.0.1:{port}/status"
    assert state.dashboard_url == job.dashboard_url == url
    assert f'Dask dashboard: <a href="{url}" target="_blank"' in panel.dashboard.value
    assert state.job_state == "finished" and state.progress.assets_done == N_SMALL
    assert f"{N_SMALL} / {N_SMALL}" in panel.progress_text.value
    verify_download(hub, tmp_path, SMALL, expect=N_SMALL)


# ------------------------------------------------------------------------ command line and extra


def test_mlhub_download_dask_local(hub: Hub, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = mlhub(
        "download", SMALL, "-o", str(out), "--root-url", hub.url, "--dask", "local:2", "-q"
    )
    assert done.returncode == 0, done.stderr
    assert f"{SMALL}: {N_SMALL} assets selected, {N_SMALL} downloaded" in done.stdout
    verify_download(hub, out, SMALL, expect=N_SMALL)

    bad = mlhub("download", SMALL, "-o", str(out), "--root-url", hub.url, "--dask", "local:0")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "mlhub: error: cluster 'local:0': 'local:N' needs a positive number of worker processes"
    ]


def test_an_unreachable_scheduler_is_one_line(hub: Hub, tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    done = mlhub(
        "download", SMALL, "-o", str(tmp_path), "--root-url", hub.url, "--dask", address, "-q",
        env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"},
    )  # fmt: skip
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"mlhub: error: cannot reach the Dask scheduler at {address}: "
    ), done.stderr
    assert hub.count("asset") == 0


_WITHOUT_DISTRIBUTED = r"""
import sys
sys.modules["distributed"] = None  # as if the extra were not installed
import mlhub_widgets as mw
try:
    mw.download_dataset("any", sys.argv[1], root_url="http://127.0.0.1:9/", cluster="local:2")
except mw.MissingDependencyError as exc:
    print(type(exc).__name__, isinstance(exc, ImportError), str(exc), sep="|")
"""


def test_without_the_extra_the_error_names_it(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_DISTRIBUTED, str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=str(ROOT), check=False,
    )  # fmt: skip
    name, is_import_error, message = done.stdout.strip().split("|")
    assert name == "MissingDependencyError" and is_import_error == "True"
    assert "\n" not in message and "pip install 'mlhub_widgets[distributed]'" in message
    assert not list(tmp_path.iterdir())  # checked before anything is written
    cli = mlhub(
        "download", "any", "-o", str(tmp_path), "--root-url", "http://127.0.0.1:9/",
        "--dask", "local:2",
        env={"PYTHONPATH": _blocker(tmp_path) + os.pathsep + str(ROOT)},
    )  # fmt: skip
    assert cli.returncode == 1
    assert cli.stderr.strip().splitlines() == [f"mlhub: error: {message}"]


def _blocker(tmp_path: Path) -> str:
    """A folder with a ``sitecustomize`` that blocks ``import distributed``."""
    folder = tmp_path.parent / f"{tmp_path.name}-blocker"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text('import sys\nsys.modules["distributed"] = None\n')
    return str(folder)


# ------------------------------------------------------------------------------------ 100,000


BIG = "clusterbig"
N_BIG = 100_000


@pytest.fixture(scope="module")
def big_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Hub]]:
    """A hub in a process of its own (this one holds the client) serving 100,000 assets of
    64-256 bytes; and a never started ``Hub`` on the same data for the expected bytes."""
    data = tmp_path_factory.mktemp("cluster-big") / "hubdata"
    make_synthetic_dataset(data, BIG, 10_000, 10, 64, 256, checksums=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlhub_widgets.hub", "--data", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=str(ROOT),
        env=part_env(),
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("MLHub API:"), first
        url = first.split()[-1]
        # the hub builds the catalogue once, on first request: not part of what is measured
        with urllib.request.urlopen(f"{url}catalog/{BIG}/info", timeout=300) as resp:
            resp.read()
        yield url, Hub(data)
    finally:
        proc.terminate()  # our own child, by its PID
        proc.wait(timeout=30)


def _stream_counts(cluster: DaskCluster) -> tuple[int, int, int, int]:
    """(messages, bytes) the client sent to the scheduler, and the scheduler to the workers."""
    client_comm = cluster.client.scheduler_comm
    to_workers = list(cluster.cluster.scheduler.stream_comms.values())
    return (
        client_comm.message_count,
        client_comm.byte_count,
        sum(c.message_count for c in to_workers),
        sum(c.byte_count for c in to_workers),
    )


@pytest.mark.slow
def test_100k_assets_bounded_client_memory_and_scheduler_traffic(
    big_hub: tuple[str, Hub], dask_cluster: DaskCluster, tmp_path: Path
) -> None:
    url, local = big_hub
    out = tmp_path / "out"
    gc_before = rss_mb()
    counts0 = _stream_counts(dask_cluster)
    events: list[object] = []
    started = time.monotonic()
    with RssSampler() as rss, get_task_stream(client=dask_cluster.client) as stream:
        job = DownloadJob(BIG, out, root_url=url, cluster=dask_cluster.client)
        job.subscribe(lambda e: events.append(e) if isinstance(e, ClusterConnected) else None)
        summary = job.start().wait(timeout=900)
    seconds = time.monotonic() - started
    counts1 = _stream_counts(dask_cluster)
    assert summary.complete and summary.assets_downloaded == N_BIG
    run = job._cluster_transfer
    assert run is not None

    tasks = [t for t in stream.data if str(t["key"]).startswith("mlhub_download-")]
    client_msgs, client_bytes, worker_msgs, worker_bytes = (
        b - a for a, b in zip(counts0, counts1, strict=True)
    )
    record_figure(
        "test_download_cluster.py::test_100k_assets_bounded_client_memory_and_scheduler_traffic",
        f"100,000 assets on 2 Dask workers: {seconds:.1f} s ({N_BIG / seconds:,.0f} assets/s), "
        f"{len(tasks)} tasks, {run.heartbeats_received} heartbeats; client -> scheduler "
        f"{client_msgs} messages / {client_bytes / 1e6:.1f} MB, scheduler -> workers "
        f"{worker_msgs} messages / {worker_bytes / 1e6:.1f} MB; client peak RSS "
        f"{rss.peak:.0f} MB (+{rss.peak - gc_before:.0f} MB)",
        seconds=round(seconds, 1),
        tasks=len(tasks),
        heartbeats=run.heartbeats_received,
        client_messages=client_msgs,
        worker_messages=worker_msgs,
        peak_rss_mb=round(rss.peak),
    )
    # one task per partition of at most MAX_PARTITION_ASSETS: tens of messages, not 100,000
    most = -(-N_BIG // partitions.MAX_PARTITION_ASSETS) + 2 * 2  # + partial ones while indexing
    assert len(tasks) == run.tasks_submitted <= most
    assert run.heartbeats_received <= 2 * sum(
        t["startstops"][-1]["stop"] - t["startstops"][0]["start"] for t in tasks
    ) / partitions.HEARTBEAT_INTERVAL + len(tasks)
    assert client_msgs < 20 * most and worker_msgs < 20 * most
    assert client_bytes < 250 * N_BIG and worker_bytes < 250 * N_BIG  # URLs and paths, once
    assert rss.peak - gc_before < 200  # MB: the index and a window of partitions, not 100k rows
    verify_download(local, out, BIG, expect=N_BIG)

    # the no-op rerun: no task, no asset request
    with get_task_stream(client=dask_cluster.client) as stream:
        again = download_dataset(
            BIG, out, root_url=url, cluster=dask_cluster.client, progress=False
        )
    assert isinstance(again, DownloadSummary) and again.assets_skipped == N_BIG
    assert stream.data == []
