"""Load: 100,000 assets with the default worker count, three runs in one process, and two
concurrent background jobs.

The hub runs in its own process (``python -m mlhub_widgets.hub``) so that this process holds
only the downloader: its open file descriptors (``/proc/self/fd``), threads and RSS are what is
measured. Bytes are verified against an in-process, never started ``Hub`` on the same data
directory (``Hub.asset_bytes`` is a pure function of the data).
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlhub_widgets.download import (
    AssetFinished,
    DownloadJob,
    DownloadSummary,
    download_dataset,
)
from mlhub_widgets.download.pipeline import DEFAULT_WORKERS
from mlhub_widgets.hub import Hub
from mlhub_widgets.net.sync import run_sync

from .reliability_support import (
    ROOT,
    RssSampler,
    fd_count,
    index_rows,
    make_data_dir,
    open_fds,
    peak_rss_mb,
    record_figure,
    reset_peak_rss,
    rss_mb,
    verify_download,
    verify_some,
)

pytestmark = pytest.mark.slow

BIG_DS = "loadds"
N_ITEMS, PER_ITEM = 10_000, 10  # 100,000 assets of 64-256 bytes
SMALL_DS = "pairds"
#: Peak RSS allowed for a 100,000-asset download (the measured figure is far below).
RSS_LIMIT_MB = 1024
#: RSS a further run may add once the process is warm (allocator noise, caches).
RSS_GROWTH_LIMIT_MB = 64
#: Idle keep-alive connections the shared pool of the blocking API calls may hold.
POOLED_FDS = 4


@dataclass
class ExternalHub:
    url: str
    data: Path
    local: Hub  # never started: only for asset_bytes()


@pytest.fixture(scope="module")
def external_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExternalHub]:
    root = tmp_path_factory.mktemp("load")
    data = make_data_dir(root, BIG_DS, N_ITEMS, PER_ITEM, 64, 256, checksums=False)
    make_data_dir(root, SMALL_DS, 750, 4, 512, 8192)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLHUB_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlhub_widgets.hub", "--data", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=str(ROOT),
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("MLHub API:"), first
        url = first.split()[-1]
        # the hub builds each catalogue once, on first request: not part of what is measured
        for ds in (BIG_DS, SMALL_DS):
            with urllib.request.urlopen(f"{url}catalog/{ds}/info", timeout=300) as resp:
                resp.read()
        yield ExternalHub(url, data, Hub(data))
    finally:
        proc.terminate()  # our own child, by its pid
        proc.wait(timeout=30)


#: The one event loop thread per process of the blocking network calls (``net/sync.py``):
#: started by the first call, kept for the process's life by design, so not a leak.
SHARED_NET_THREAD = "mlhub_widgets-net"


def _threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name != SHARED_NET_THREAD)


def _delete_some(out: Path, ds: str, n: int, seed: int) -> list[str]:
    rows = sorted(index_rows(out, ds))
    gone = random.Random(seed).sample(rows, n)
    for rel in gone:
        (out / ds / rel).unlink()
    return gone


def test_100k_assets_three_runs_no_leaks_bounded_memory(
    external_hub: ExternalHub, tmp_path: Path
) -> None:
    hub = external_hub
    out = tmp_path / "out"
    gc.collect()  # what earlier tests left for the GC is not this test's business
    # the shared network loop (its epoll and wake-up socket pair) lives as long as the
    # process by design: started here so the count is the same alone or after other tests
    run_sync(asyncio.sleep(0))
    fds0, threads0 = fd_count(), _threads()
    before = open_fds()
    can_reset = reset_peak_rss()
    rss0 = rss_mb()
    started = time.monotonic()
    with RssSampler() as sampler:
        first = download_dataset(BIG_DS, out, root_url=hub.url, progress=False)
    seconds = time.monotonic() - started
    peak = max(sampler.peak, peak_rss_mb() if can_reset else 0.0)
    assert isinstance(first, DownloadSummary) and first.complete
    assert first.assets_downloaded == N_ITEMS * PER_ITEM
    after = [(fd_count(), _threads(), rss_mb())]
    verify_started = time.monotonic()
    verify_download(hub.local, out, BIG_DS, expect=N_ITEMS * PER_ITEM)
    verify_seconds = time.monotonic() - verify_started
    # runs 2 and 3: 5,000 files deleted each time; exactly those come back
    for run, seed in ((2, 2), (3, 3)):
        gone = _delete_some(out, BIG_DS, 5000, seed)
        summary = download_dataset(BIG_DS, out, root_url=hub.url, progress=False)
        assert isinstance(summary, DownloadSummary) and summary.complete, run
        assert summary.assets_downloaded == 5000 and summary.assets_skipped == 95_000, run
        after.append((fd_count(), _threads(), rss_mb()))
        verify_some(hub.local, out, BIG_DS, gone)
    collected = gc.collect()
    fds_gc = fd_count()
    (fds1, th1, rss1), (fds2, th2, rss2), (fds3, th3, rss3) = after
    rate = N_ITEMS * PER_ITEM / seconds
    record_figure(
        "test_load.py::test_100k_assets_three_runs_no_leaks_bounded_memory",
        f"100,000 assets (64-256 B, 10,000 items), {DEFAULT_WORKERS} workers (default): "
        f"{seconds:.1f} s ({rate:,.0f} assets/s, catalogue + index + transfers), "
        f"peak RSS {peak:.0f} MB (+{peak - rss0:.0f} MB over the {rss0:.0f} MB at the start; "
        "after runs 1/2/3 "
        f"{rss1:.0f}/{rss2:.0f}/{rss3:.0f} MB); fds {fds0}→{fds1}/{fds2}/{fds3}, "
        f"threads {threads0}→{th1}/{th2}/{th3} (fds {fds_gc} after gc.collect()); "
        f"byte check of 100,000 files {verify_seconds:.1f} s",
        seconds=round(seconds, 1),
        peak_rss_mb=round(peak),
        fds=[fds0, fds1, fds2, fds3],
        threads=[threads0, th1, th2, th3],
    )
    # no descriptor or thread outlives a run; the one shared connection pool of the blocking
    # API calls (mlhub_widgets.net.sync) may keep a few idle keep-alive connections
    assert fds2 == fds3 and max(fds1, fds2, fds3) <= fds0 + POOLED_FDS, (
        f"open fds after runs 1/2/3: {fds1}/{fds2}/{fds3} (before {fds0}; {fds_gc} once "
        f"gc.collect() freed {collected} objects: the runs leave sockets for the GC to close); "
        f"new: {sorted(set(open_fds().items()) - set(before.items()))}"
    )
    assert th1 == th2 == th3 <= threads0 + 1, (  # + the network thread, started once
        f"threads after runs 1/2/3: {th1}/{th2}/{th3} (before {threads0}): "
        f"{[t.name for t in threading.enumerate()]}"
    )
    # memory: bounded during the run, and no growth once warm
    assert peak < RSS_LIMIT_MB, f"peak RSS {peak:.0f} MB for 100,000 assets"
    assert rss3 - rss2 < RSS_GROWTH_LIMIT_MB, f"RSS grew {rss3 - rss2:.0f} MB in run 3"


def test_two_concurrent_background_jobs_do_not_interfere(
    external_hub: ExternalHub, tmp_path: Path
) -> None:
    hub = external_hub
    n = 3000
    dirs = {"a": tmp_path / "a", "b": tmp_path / "b", "c": tmp_path / "c"}
    events: dict[str, list[Any]] = {k: [] for k in dirs}
    gc.collect()
    threads0 = _threads()
    idents0 = {t.ident for t in threading.enumerate()}
    started = time.monotonic()
    c_finished: list[AssetFinished] = []
    c_fifth_done = threading.Event()

    def on_c(event: Any) -> None:
        events["c"].append(event)
        if isinstance(event, AssetFinished):
            c_finished.append(event)
            if len(c_finished) >= n // 5:
                c_fifth_done.set()

    jobs: dict[str, DownloadJob] = {}
    for name, out in dirs.items():
        progress = on_c if name == "c" else events[name].append
        job = download_dataset(SMALL_DS, out, root_url=hub.url, progress=progress, background=True)
        assert isinstance(job, DownloadJob)
        jobs[name] = job
    # job c is cancelled mid-way: a and b must not notice
    assert c_fifth_done.wait(120), f"job c: {jobs['c'].state}, {jobs['c'].error!r}"
    jobs["c"].cancel()
    summaries = {name: jobs[name].wait(timeout=300) for name in ("a", "b")}
    cancelled = jobs["c"].wait(timeout=60)
    seconds = time.monotonic() - started
    assert cancelled.cancelled and jobs["c"].state == "cancelled"
    for name in ("a", "b"):
        summary = summaries[name]
        assert summary.complete and summary.assets_downloaded == n, (name, summary)
        assert jobs[name].state == "finished"
        done = [e for e in events[name] if isinstance(e, AssetFinished)]
        assert len(done) == n
        assert all(e.path.is_relative_to(dirs[name]) for e in done), f"{name} saw another job"
        verify_download(hub.local, dirs[name], SMALL_DS, expect=n)
    # the cancelled one resumes alone
    rest = download_dataset(SMALL_DS, dirs["c"], root_url=hub.url, progress=False)
    assert isinstance(rest, DownloadSummary) and rest.complete
    assert rest.assets_downloaded + rest.assets_skipped == n
    verify_download(hub.local, dirs["c"], SMALL_DS, expect=n)
    left = [
        t.name
        for t in threading.enumerate()
        if t.ident not in idents0 and t.name != SHARED_NET_THREAD
    ]
    record_figure(
        "test_load.py::test_two_concurrent_background_jobs_do_not_interfere",
        f"3 background jobs of {n:,} assets in one process, one cancelled at "
        f"{len(c_finished)} assets: the other two complete and byte-exact in {seconds:.1f} s, "
        "events only about their own folder; the cancelled one resumes alone; "
        f"threads left behind: {left or 'none'}",
    )
    assert _threads() == threads0, f"threads left after the jobs ended: {left}"
