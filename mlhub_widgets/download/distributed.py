"""Downloads on a Dask cluster: ``download_dataset(..., cluster=...)``, ``mlhub download --dask``.

The client (this process) does what it does for a download on one machine, except the
transfers: it fetches the catalogue, builds or reuses the asset index (the manifest), and
:class:`ClusterTransfer` replaces the transfer phase. It reads the selected rows as the local
transfer phase does (``JobRun._produce``: rows recorded as complete are checked on disk and
skipped), skips rows whose file is already complete on disk (no task, no request), cuts the
rest into partitions sized by bytes (:mod:`.partitions`) and submits each as one Dask task
(:func:`~.partitions.run_partition`), keeping a bounded number in flight. A task returns every
outcome of its partition at once; the client writes them to the manifest, updates the
counters and publishes the job's usual events. Heartbeats (a Dask ``Queue``) move the
progress between results; pause is a Dask ``Event`` the tasks follow; cancel cancels the
tasks (each one stops within half a second and leaves its ``.part`` files).

Failures:

* a worker dies mid-partition: Dask runs the task again on another worker (up to
  ``distributed.scheduler.allowed-failures`` deaths), then this module resubmits it up to
  :data:`PARTITION_SUBMISSIONS` times in all before its assets are recorded as failed (listed
  in ``err_report.csv``; a rerun retries them);
* the scheduler goes away: :class:`~mlhub_widgets.exceptions.ClusterError` (one line); the
  manifest holds every outcome received, and files completed since are found on disk by the
  rerun without a request;
* the client goes away: its tasks are cancelled by the scheduler and stop; a rerun resumes
  from the manifest and the files on disk.

``cluster`` may be a ``distributed.Client``, a cluster object with a ``scheduler_address``
(``LocalCluster``, dask-jobqueue's ``SLURMCluster``, dask-kubernetes, Coiled), a scheduler
address (``tcp://host:8786``) or ``"local:N"`` (a ``LocalCluster`` of N worker processes,
started and closed by the download). See ``docs/scale-out.md``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import logging
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeAlias

from ..exceptions import ClusterError, MissingDependencyError
from ..net.redact import redact_text
from . import transfer
from .events import ClusterConnected
from .job_run import JobRun
from .manifest import AssetRow, Manifest
from .outcome_writer import OutcomeWriter
from .partitions import (
    UNKNOWN_ASSET_BYTES,
    AssetResult,
    EngineSettings,
    Heartbeat,
    ObjectOutput,
    Partition,
    PartitionBuilder,
    PartitionResult,
    PartitionSize,
    job_names,
    partition_size,
    run_partition,
)
from .pipeline import Pipeline

log = logging.getLogger(__name__)

#: What ``cluster=`` accepts: a ``distributed.Client``, a cluster object, an address or
#: ``"local:N"``.
ClusterLike: TypeAlias = Any

EXTRA_HINT: Final = "pip install 'mlhub_widgets[distributed]'"
#: Submissions of one partition (each one survives ``allowed-failures`` worker deaths).
PARTITION_SUBMISSIONS: Final = 3
#: A partition that is not full yet is submitted after this many seconds without new rows
#: (the index is still being built) when others are running.
LINGER: Final = 1.0
#: Seconds between two looks at the finished tasks, the heartbeats and the controls.
TICK: Final = 0.125
#: Seconds between two looks at the cluster's size (an adaptive cluster grows and shrinks).
RESIZE_INTERVAL: Final = 5.0
_ADDRESS_SCHEMES: Final = ("tcp", "tls", "inproc", "ucx", "ws", "wss")


def require_distributed() -> Any:
    """The ``distributed`` module, or a one-line :class:`MissingDependencyError` naming the
    extra that brings it."""
    try:
        import distributed
    except ImportError as exc:
        raise MissingDependencyError(
            f"a download on a Dask cluster needs Dask distributed ({exc}): {EXTRA_HINT}"
        ) from None
    return distributed


@dataclass(frozen=True)
class ClusterTarget:
    """Where a cluster download runs, as parsed from ``cluster=`` (see :func:`parse_cluster`).

    Exactly one of ``address``, ``local_workers``, ``client`` and ``cluster`` is set.
    """

    address: str | None = None
    local_workers: int | None = None
    client: Any = None
    cluster: Any = None

    def describe(self) -> str:
        """A short description for messages."""
        if self.local_workers is not None:
            return f"a local Dask cluster of {self.local_workers} worker processes"
        if self.address is not None:
            return f"the Dask scheduler at {self.address}"
        where = self.client if self.client is not None else self.cluster
        address = getattr(where, "scheduler_address", None) or getattr(
            getattr(where, "scheduler", None), "address", None
        )
        return f"the Dask scheduler at {address}" if address else "the Dask cluster"


def parse_cluster(value: ClusterLike) -> ClusterTarget:
    """Check ``cluster=`` before any request.

    Raises:
        MissingDependencyError: Dask distributed is not installed (names the extra).
        ValueError: a string that is neither ``local:N`` nor a scheduler address.
        TypeError: neither a string nor a Dask client or cluster.
    """
    if isinstance(value, str):
        target = parse_address(value)
        require_distributed()
        return target
    module = require_distributed()
    if isinstance(value, module.Client):
        return ClusterTarget(client=value)
    if isinstance(getattr(value, "scheduler_address", None), str):
        return ClusterTarget(cluster=value)
    raise TypeError(
        "cluster must be a scheduler address ('tcp://host:8786'), 'local:N', a "
        f"distributed.Client or a Dask cluster object; got {type(value).__name__}"
    )


def parse_address(text: str) -> ClusterTarget:
    """``local:N``, or a scheduler address (``tcp://host:8786``; ``host:8786`` means tcp);
    Dask itself is not imported.

    Raises:
        ValueError: neither (one line).
    """
    value = text.strip()
    if value.startswith("local:"):
        count = value.partition(":")[2]
        if not count.isdigit() or int(count) < 1:
            raise ValueError(
                f"cluster {text!r}: 'local:N' needs a positive number of worker processes"
            )
        return ClusterTarget(local_workers=int(count))
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = "tcp", value  # host:port, as Dask reads it
    host, _, port = rest.rpartition(":")
    if scheme not in _ADDRESS_SCHEMES or not host or not port.isdigit():
        raise ValueError(
            f"cluster {text!r} is not a Dask scheduler address (tcp://host:8786) nor 'local:N'"
        )
    return ClusterTarget(address=f"{scheme}://{rest}")


class ClusterConnection:
    """A client of the target's scheduler; what it started (a client, a ``LocalCluster``) is
    closed by :meth:`close`, a client or cluster given by the caller is left alone."""

    def __init__(self, target: ClusterTarget) -> None:
        self.target = target
        self.client: Any = None  # a distributed.Client (untyped: used as Any)
        self._owned_client = False
        self._local: Any = None

    def open(self) -> Any:
        """Connect (start the local cluster first for ``local:N``).

        Raises:
            ClusterError: the scheduler cannot be reached or the cluster cannot start.
        """
        module = require_distributed()
        target = self.target
        if target.client is not None:
            self.client = target.client
            return target.client
        try:
            if target.local_workers is not None:
                self._local = module.LocalCluster(
                    n_workers=target.local_workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    scheduler_port=0,
                    dashboard_address="127.0.0.1:0",  # a free port: 8787 may be taken
                    silence_logs=logging.ERROR,
                )
                where: Any = self._local
            elif target.cluster is not None:
                where = target.cluster
            else:
                where = target.address
            # how long to try: Dask's distributed.comm.timeouts.connect (30 s by default)
            self.client = module.Client(where, set_as_default=False)
            self._owned_client = True
        except (OSError, TimeoutError, RuntimeError) as exc:
            self.close()
            raise ClusterError(
                f"cannot reach {target.describe()}: {_one_line(exc)}. Check the address and "
                "that the scheduler is running."
            ) from None
        return self.client

    def scheduler_address(self) -> str:
        """The scheduler's address."""
        client = self.client
        address = getattr(getattr(client, "scheduler", None), "address", None)
        return str(address) if address else self.target.describe()

    def dashboard_url(self) -> str | None:
        """The Dask dashboard's address, or None when the scheduler serves none (without
        bokeh, which the extra brings, the page there says what to install)."""
        client = self.client
        if client is None:
            return None
        try:
            services = client.scheduler_info().get("services", {})
            if not services.get("dashboard"):
                return None
            return str(client.dashboard_link)
        except Exception as exc:  # no dashboard link is no reason to stop a download
            log.info("no Dask dashboard link: %s", exc)
            return None

    def close(self) -> None:
        """Close the client and the local cluster this connection started."""
        client, self.client = self.client, None
        if client is not None and self._owned_client:
            with contextlib.suppress(Exception):
                client.close(timeout=10)
        local, self._local = self._local, None
        if local is not None:
            with contextlib.suppress(Exception):
                local.close(timeout=10)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return redact_text(text)


@dataclass
class _InFlight:
    """A submitted partition: its rows (by position), its future, its attempts' counts."""

    part: Partition
    rows: list[AssetRow]
    future: Any
    submissions: int = 1
    #: attempt -> (bytes, transferred, skipped, failed, retries) added to the job's counters
    live: dict[str, tuple[int, ...]] = field(default_factory=dict)


_Done = tuple[str, str, Any]  # (key, "result" | "error" | "cancelled", payload)


class ClusterTransfer:
    """The transfer phase of one download on a Dask cluster (see the module docstring)."""

    def __init__(self, job: JobRun, target: ClusterTarget) -> None:
        self.job = job
        self.target = target
        self.connection: ClusterConnection | None = None
        self.token = uuid.uuid4().hex[:16]
        self.dashboard_url: str | None = None
        self._in_flight: dict[str, _InFlight] = {}
        self._by_number: dict[int, _InFlight] = {}
        self._slots = 1
        self._workers = 0
        self._resized = 0.0
        self._paused_sent = False
        self._pause_event: Any = None
        self._heartbeats: Any = None
        self._builder: PartitionBuilder | None = None
        self._rows: list[AssetRow] = []
        self._last_seq = 0  # of the last row taken from the index
        self._left: tuple[int, int] | None = None  # assets and bytes not submitted yet
        self._early = (0, 0)  # assets and bytes submitted while the index was being built
        self._plan: PartitionSize | None = None  # the sizes, once the index is complete
        self._settings: EngineSettings | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(1, "mlhub-dask-client")
        self._wake = threading.Event()  # a task ended
        #: submitted tasks and heartbeats received (what went through the scheduler), and the
        #: seconds the tasks whose results arrived ran on their workers
        self.tasks_submitted = 0
        self.heartbeats_received = 0
        self.task_seconds = 0.0

    # -- the phase -------------------------------------------------------------------------------
    async def run(self, db: Manifest, pipeline: Pipeline) -> bool:
        """Transfer every selected row that is not complete; returns True when cancelled."""
        job = self.job
        cfg = job._cfg
        loop = asyncio.get_running_loop()
        writer = OutcomeWriter(cfg.manifest_path)
        rows_by_tag: dict[int, AssetRow] = {}
        specs: asyncio.Queue[transfer.TransferSpec | None] = asyncio.Queue(maxsize=8192)
        base = cfg.dataset_asset_dir

        def fail_now(row: AssetRow, reason: str) -> None:
            """An asset nothing can fetch (its href): failed here, never sent to a worker."""
            if writer.error is not None:
                raise writer.error
            job._record_failure(row, reason, None, 0, base / row.path, writer)

        produce = job._produce(db, pipeline, base, rows_by_tag, fail_now)
        pump = loop.create_task(_pump(produce, specs))
        self._settings = _engine_settings(job, pipeline)
        error: BaseException | None = None
        cancelled = False
        try:
            cancelled = await self._loop(db, specs, pump, rows_by_tag, writer)
        except BaseException as exc:
            error = exc
        pump.cancel()
        with contextlib.suppress(BaseException):
            await pump
        try:
            await loop.run_in_executor(self._executor, self._finish, error is not None or cancelled)
            await loop.run_in_executor(None, writer.close)
        except BaseException as exc:
            error = error or exc
        finally:
            self._executor.shutdown(wait=False)
        if error is not None:
            raise error
        return cancelled

    async def _loop(
        self,
        db: Manifest,
        specs: asyncio.Queue[transfer.TransferSpec | None],
        pump: asyncio.Task[None],
        rows_by_tag: dict[int, AssetRow],
        writer: OutcomeWriter,
    ) -> bool:
        job = self.job
        loop = asyncio.get_running_loop()
        base = os.path.join(os.fspath(job._cfg.dataset_asset_dir), "")
        checker = transfer.TransferEngine(
            workers=1, if_exists=job._cfg.if_exists, destination=job._cfg.destination
        )
        produced_all = False
        peeked: list[transfer.TransferSpec | None] = []
        while True:
            if job._cancel.is_set():
                return True
            if writer.error is not None:
                raise writer.error
            # rows from the index: skip what is complete on disk, collect the rest
            if self._builder is not None:
                self._builder.size = self._size(db)
            while not produced_all and not self._full():
                if peeked:
                    spec = peeked.pop()
                else:
                    try:
                        spec = specs.get_nowait()
                    except asyncio.QueueEmpty:
                        break
                if spec is None:
                    produced_all = True
                    if pump.done() and pump.exception() is not None:
                        raise pump.exception()  # type: ignore[misc]
                    break
                row = rows_by_tag.pop(int(spec.tag))
                self._last_seq = row.seq
                there = None if spec.absent else checker._done_already(spec)
                if there is not None:  # complete on disk: no task, no request
                    job._record_outcome(row, there, writer)
                    if self._left is not None:
                        self._left = (self._left[0] - 1, self._left[1] - _nbytes(row.size))
                    continue
                if self._builder is None:
                    await self._connect(db, loop, base)
                assert self._builder is not None
                self._builder.add(row.id, row.url, row.path, row.size, row.checksum)
                self._rows.append(row)
            # partitions to the cluster
            paused = job._control.paused
            if self._paused_sent and not paused:  # resumed: clear the flag before new tasks
                await loop.run_in_executor(self._executor, self._send_pause, False)
            waiting = bool(peeked) or not specs.empty()
            while not paused and len(self._in_flight) < self._window():
                part = self._ready_partition(produced_all, not waiting)
                if part is None:
                    break
                self._submit(part, self._rows)
                self._rows = []
                if self._left is not None:
                    self._left = (self._left[0] - len(part), self._left[1] - part.nbytes)
            if produced_all and not self._in_flight and not (self._builder and len(self._builder)):
                return False
            # results, heartbeats, controls
            if not self._in_flight:
                if paused or produced_all or waiting:
                    await asyncio.sleep(TICK)
                else:  # the index is still being built: wait for its next rows
                    with contextlib.suppress(TimeoutError):
                        peeked.append(await asyncio.wait_for(specs.get(), TICK))
                job._tick()
                writer.maybe_flush()
                continue
            try:
                done, beats = await loop.run_in_executor(self._executor, self._exchange, paused)
            except OSError as exc:  # distributed's CommClosedError: the scheduler went away
                raise self._lost() from exc
            for beat in beats:
                self._heartbeat(beat)
            for key, kind, payload in done:
                self._completed(key, kind, payload, writer, base)
            writer.maybe_flush()
            job._tick()

    # -- connecting, sizing, submitting ---------------------------------------------------------
    async def _connect(self, db: Manifest, loop: asyncio.AbstractEventLoop, base: str) -> None:
        """Reach the cluster (at the first row that needs a transfer, not before)."""
        job = self.job
        connection = ClusterConnection(self.target)
        self.connection = connection
        await loop.run_in_executor(self._executor, self._open, connection)
        assert connection.client is not None
        self._builder = PartitionBuilder(self.token, base, self._size(db))
        job._emit(
            ClusterConnected(
                connection.scheduler_address(),
                self.dashboard_url,
                self._workers,
                self._slots,
            )
        )

    def _size(self, db: Manifest) -> PartitionSize:
        """How large partitions should be. While the index is still being built, the smallest
        (:data:`~.partitions.MIN_PARTITION_BYTES`): the workers start on the first rows. Once
        it is complete, the rows left to submit are counted (once) and sized as if the
        partitions submitted so far were among them (:func:`~.partitions.partition_size` of
        both): an early partition then counts as part of its slot's share, and the slots end
        together instead of one of them running an extra partition's worth at the end."""
        job = self.job
        if self._plan is not None:
            return self._plan
        if job._index_complete:
            builder = self._builder
            count, nbytes = db.pending_after(self._last_seq, UNKNOWN_ASSET_BYTES)
            if builder is not None:
                count, nbytes = count + len(builder), nbytes + builder.nbytes
            self._left = (count, nbytes)
            early, early_bytes = self._early
            self._plan = partition_size(
                nbytes + early_bytes, max(1, count + early), self._slots, job._cfg.workers
            )
            return self._plan
        return partition_size(0, 1, self._slots, job._cfg.workers)  # the smallest

    def _open(self, connection: ClusterConnection) -> None:
        """In the executor: connect, size the cluster, create the job's control objects."""
        module = require_distributed()
        client = connection.open()
        pause_name, queue_name = job_names(self.token)
        self._pause_event = module.Event(pause_name, client=client)
        self._heartbeats = module.Queue(queue_name, client=client)
        self.dashboard_url = connection.dashboard_url()
        self._resize(client)

    def _resize(self, client: Any) -> None:
        threads = client.nthreads()
        self._workers = len(threads)
        self._slots = max(1, sum(int(n) for n in threads.values()))
        self._resized = time.monotonic()

    def _task_done(self, _future: Any) -> None:
        """Called by Dask (in a thread of its own) when a task ends."""
        self._wake.set()

    def _window(self) -> int:
        """Partitions in flight at most: one running and one waiting per task slot."""
        return 2 * self._slots

    def _full(self) -> bool:
        """The partition being collected is large enough, and what would be left after it is
        not a scrap (those go with it)."""
        builder = self._builder
        if builder is None or not builder.full():
            return False
        if self._left is None:
            return True
        after = self._left[0] - len(builder)
        return after <= 0 or after >= max(1, builder.size.min_assets // 2)

    def _ready_partition(self, produced_all: bool, nothing_waiting: bool) -> Partition | None:
        builder = self._builder
        if builder is None or not len(builder):
            return None
        if self._full():
            return builder.take()
        if not nothing_waiting:
            return None  # more rows are queued: take them first
        if produced_all or not self._in_flight:
            return builder.take()
        if time.monotonic() - builder.started >= LINGER:
            return builder.take()
        return None

    def _submit(self, part: Partition, rows: list[AssetRow], submissions: int = 1) -> None:
        connection = self.connection
        assert connection is not None and connection.client is not None and self._settings
        client = connection.client
        if client.status != "running":
            raise self._lost()
        key = f"mlhub_download-{self.token}-{part.number}-{submissions}"
        future = client.submit(
            run_partition, part, self._settings.for_partition(part), key=key, pure=False
        )
        future.add_done_callback(self._task_done)
        log.debug("submitted %s: %d assets, %d bytes", key, len(part), part.nbytes)
        self.tasks_submitted += 1
        if self._plan is None and submissions == 1:
            self._early = (self._early[0] + len(part), self._early[1] + part.nbytes)
        record = _InFlight(part, rows, future, submissions)
        self._in_flight[key] = record
        self._by_number[part.number] = record

    # -- in the executor: the blocking calls to the cluster -----------------------------------
    def _exchange(self, paused: bool) -> tuple[list[_Done], list[Heartbeat]]:
        """Wait up to :data:`TICK` for tasks to finish; fetch their results, the heartbeats;
        pass the pause flag on."""
        connection = self.connection
        assert connection is not None and connection.client is not None
        client = connection.client
        self._send_pause(paused)
        self._wake.wait(TICK)
        self._wake.clear()
        finished = [r.future for r in self._in_flight.values() if r.future.done()]
        done: list[_Done] = []
        for future in finished:
            if future.status == "finished":
                try:
                    done.append((future.key, "result", future.result()))
                except Exception as exc:  # lost between "finished" and the fetch
                    done.append((future.key, "cancelled", exc))
            elif future.status == "error":
                done.append((future.key, "error", future.exception()))
            else:
                done.append((future.key, "cancelled", None))
        beats: list[Heartbeat] = []
        if client.status == "running":
            beats = list(self._heartbeats.get(batch=True))
            self.heartbeats_received += len(beats)
            if time.monotonic() - self._resized >= RESIZE_INTERVAL:
                self._resize(client)
        return done, beats

    def _send_pause(self, paused: bool) -> None:
        """Set or clear the pause flag the running tasks follow (when it changed)."""
        if paused != self._paused_sent:
            (self._pause_event.set if paused else self._pause_event.clear)()
            self._paused_sent = paused

    def _finish(self, stopping: bool) -> None:
        """In the executor: cancel what still runs (on an error or a cancel), clear the job's
        control objects, close what this download opened."""
        connection = self.connection
        if connection is None:
            return
        client = connection.client
        try:
            if client is not None and client.status == "running":
                if stopping and self._in_flight:
                    client.cancel([r.future for r in self._in_flight.values()])
                if self._pause_event is not None:
                    self._pause_event.clear()
                if self._heartbeats is not None:
                    self._heartbeats.close()
        except Exception as exc:  # the scheduler is going away: nothing left to tidy
            log.debug("could not tidy the Dask job up: %s", exc)
        finally:
            self._in_flight.clear()
            connection.close()

    # -- results ---------------------------------------------------------------------------------
    def _heartbeat(self, beat: Heartbeat) -> None:
        number, attempt, *counts = beat
        record = self._by_number.get(int(number))
        if record is None:
            return  # its result came first
        before = record.live.get(str(attempt), (0, 0, 0, 0, 0))
        record.live[str(attempt)] = tuple(int(c) for c in counts)
        self._add_live(tuple(n - b for n, b in zip(counts, before, strict=True)))

    def _add_live(self, delta: tuple[int, ...]) -> None:
        nbytes, transferred, skipped, failed, retries = delta
        job = self.job
        job._bytes_done += nbytes
        job._bytes_downloaded += nbytes
        job._done += transferred
        job._skipped += skipped
        job._failed += failed
        job._retries += retries

    def _completed(
        self, key: str, kind: str, payload: Any, writer: OutcomeWriter, base: str
    ) -> None:
        record = self._in_flight.pop(key, None)
        if record is None:
            return
        self._by_number.pop(record.part.number, None)
        for counts in record.live.values():  # the result replaces what heartbeats told
            self._add_live(tuple(-c for c in counts))
        if kind == "result":
            self._record(record, payload, writer, base)
            return
        module = require_distributed()
        connection = self.connection
        assert connection is not None and connection.client is not None
        if kind == "cancelled" and connection.client.status != "running":
            raise self._lost()
        if kind == "error" and not isinstance(payload, module.KilledWorker):
            raise ClusterError(
                f"a partition of {self.job._cfg.dataset_id} failed on the Dask cluster: "
                f"{type(payload).__name__}: {_one_line(payload)} (every worker needs "
                "mlhub_widgets installed, see docs/scale-out.md). Completed files are kept; "
                "run the download again to resume."
            )
        # its workers died (KilledWorker), or the task was cancelled by someone else
        if record.submissions < PARTITION_SUBMISSIONS:
            log.info("partition %d: %s; submitting it again", record.part.number, payload or kind)
            self._submit(record.part, record.rows, record.submissions + 1)
            return
        reason = (
            f"the Dask workers running its partition died {record.submissions} times "
            f"({_one_line(payload) if payload is not None else kind})"
        )
        for row in record.rows:
            self.job._record_outcome(row, _failure(row, base, reason), writer)

    def _record(
        self, record: _InFlight, result: PartitionResult, writer: OutcomeWriter, base: str
    ) -> None:
        job = self.job
        rows = record.rows
        self.task_seconds += result.seconds
        full: transfer.TransferOutcome | None = None
        seen: set[int] = set()
        for res in result.outcomes:
            seen.add(res.position)
            out = _outcome(rows[res.position], res, base)
            if out.disk_full:
                full = out  # the asset stays pending: it is not its fault
                continue
            job._record_outcome(rows[res.position], out, writer)
            if out.ok and out.attempts:
                new = out.size - out.resumed_from
                job._bytes_done += new
                job._bytes_downloaded += new
            job._retries += out.retries
        if full is not None:
            raise OSError(errno.ENOSPC, str(full.error), os.fspath(full.spec.dest))
        if not result.complete and not job._cancel.is_set():
            # stopped early without a reason of its own (its task was cancelled): the rest
            # goes back to the cluster
            left = [i for i in range(len(rows)) if i not in seen]
            if left:
                assert self._builder is not None
                self._builder.number += 1
                part = record.part.rest(left, self._builder.number)
                self._submit(part, [rows[i] for i in left], record.submissions + 1)

    def _lost(self) -> ClusterError:
        connection = self.connection
        where = connection.scheduler_address() if connection else self.target.describe()
        return ClusterError(
            f"lost the connection to the Dask scheduler at {where}: the download of "
            f"{self.job._cfg.dataset_id} stopped. Files completed so far are kept and nothing "
            "half-written has a final name; run the same download again to resume."
        )


async def _pump(
    produce: AsyncIterator[transfer.TransferSpec],
    specs: asyncio.Queue[transfer.TransferSpec | None],
) -> None:
    """Move the specs the index yields into ``specs``; ``None`` marks the end (after an
    error too: the task then holds the error)."""
    error: BaseException | None = None
    try:
        async for spec in produce:
            await specs.put(spec)
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        error = exc
    await specs.put(None)
    if error is not None:
        raise error


def _engine_settings(job: JobRun, pipeline: Pipeline) -> EngineSettings:
    """What every task's engine is built with: as the local transfer phase builds its own
    (``JobRun._engine_inputs``), and the object-store output each task opens on its worker."""
    cfg = job._cfg
    credentials, network, sign = job._engine_inputs(pipeline)
    output = None
    dest = cfg.destination
    if dest is not None:
        folder = Path(cfg.dataset_asset_dir).relative_to(dest.state_dir).as_posix()
        output = ObjectOutput(dest.url, dict(dest.storage_options), "" if folder == "." else folder)
    return EngineSettings(
        cfg.workers, cfg.if_exists, tuple(credentials), network, sign,
        dict(cfg.storage_options), output,
    )  # fmt: skip


def _nbytes(size: int | None) -> int:
    """An asset's bytes for partition sizes."""
    return size if size is not None else UNKNOWN_ASSET_BYTES


def _outcome(row: AssetRow, res: AssetResult, base: str) -> transfer.TransferOutcome:
    spec = transfer.TransferSpec(
        url=row.url, dest=base + row.path, size=row.size, checksum=row.checksum, tag=row.id
    )
    return transfer.TransferOutcome(
        spec, res.ok, res.size, res.status, res.etag, res.last_modified, res.error,
        res.permanent, res.attempts, res.retries, res.resumed_from, res.disk_full,
    )  # fmt: skip


def _failure(row: AssetRow, base: str, reason: str) -> transfer.TransferOutcome:
    spec = transfer.TransferSpec(url=row.url, dest=base + row.path, tag=row.id)
    return transfer.TransferOutcome(spec, False, 0, None, None, None, reason, False, 0, 0, 0)
