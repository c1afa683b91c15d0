"""A Dask ``LocalCluster`` with 2 worker processes whose workers a test can kill.

Workers start with ``spawn``: task functions must be importable or defined in the test
(cloudpickle sends nested functions by value). ``submit(..., retries=N)`` covers exceptions a
task raises; a dead worker's tasks are rescheduled by the scheduler, up to
``distributed.scheduler.allowed-failures`` (3) deaths per task.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .process import LOOPBACK, START_TIMEOUT, fail


def _pid_gone(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@dataclass
class DaskCluster:
    """A running ``LocalCluster`` and a ``Client`` connected to it.

    Attributes:
        cluster / client: the ``distributed`` objects.
        address: the scheduler's ``tcp://127.0.0.1:PORT``.
        startup_s: seconds until both workers were up.
    """

    cluster: Any
    client: Any
    address: str
    startup_s: float
    _all_pids: set[int] = field(default_factory=set)

    def worker_pids(self) -> set[int]:
        """PIDs of the worker processes now connected (a killed one is restarted by its nanny
        under a new PID)."""
        pids = {int(pid) for pid in self.client.run(os.getpid).values()}
        self._all_pids |= pids
        return pids

    def kill_worker(self, pid: int) -> None:
        """SIGKILL one of this cluster's worker processes (a crash: no clean shutdown)."""
        if pid not in self.worker_pids():
            fail(f"{pid} is not a worker of this cluster ({sorted(self._all_pids)})")
        os.kill(pid, signal.SIGKILL)

    def kill_worker_when_started(self, marker_dir: Path, timeout: float = START_TIMEOUT) -> int:
        """Wait until a task has written a file named ``started-<worker pid>`` into
        ``marker_dir``, kill that worker and return its PID (the task was mid-run)."""
        deadline = time.monotonic() + timeout
        while not (found := sorted(marker_dir.glob("started-*"))):
            if time.monotonic() > deadline:
                fail(f"no task wrote started-<pid> into {marker_dir} within {timeout:.0f} s")
            time.sleep(0.05)  # polling for the marker file a task writes
        pid = int(found[0].name.split("-", 1)[1])
        self.kill_worker(pid)
        return pid


def mark_started(marker_dir: str) -> int:
    """Call at the start of a task: writes ``started-<pid>`` for
    :meth:`DaskCluster.kill_worker_when_started`; returns the worker's PID."""
    pid = os.getpid()
    Path(marker_dir, f"started-{pid}").touch()
    return pid


@pytest.fixture
def dask_cluster() -> Iterator[DaskCluster]:
    """``LocalCluster``: 2 worker processes (1 thread each), no dashboard, loopback only.

    Closed after the test; fails the test if any worker process (restarted ones too) outlives
    ``cluster.close()``.
    """
    from distributed import Client, LocalCluster

    t0 = time.monotonic()
    cluster = LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        dashboard_address=None,
        host=LOOPBACK,
        scheduler_port=0,
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    running = DaskCluster(cluster, client, cluster.scheduler_address, 0.0)
    try:
        client.wait_for_workers(2, timeout=START_TIMEOUT)
        running.worker_pids()
        running.startup_s = time.monotonic() - t0
        yield running
        with contextlib.suppress(Exception):  # the nanny may have restarted a killed worker
            running.worker_pids()
    finally:
        client.close()
        cluster.close(timeout=10)
    pids = running._all_pids
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(_pid_gone(p) for p in pids):
        time.sleep(0.1)  # bounded wait for the worker processes to exit
    left = [p for p in pids if not _pid_gone(p)]
    if left:
        for p in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        fail(f"Dask worker processes still alive after cluster.close(): {left}")
