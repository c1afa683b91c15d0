""":class:`DownloadJob`: a dataset download in a background thread, pausable and cancellable.

The job's thread runs the pipeline (:mod:`.pipeline`: catalogue, then the asset index) and the
transfer phase (:mod:`.job_run`, the base class, which also keeps the counters and publishes
the events of :mod:`.events`). The API key is only ever sent to the API's origin.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import queue
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config.session import Session
from ..exceptions import (
    DiskFullError,
    DownloadError,
)
from ..net.objects import StorageOptions
from ..net.redact import redact_text
from ..net.settings import NetworkSettings
from ..types import BBoxLike, CollectionFilter, DatetimeLike, IntersectsLike
from ..units import human_bytes
from .catalog_archive import ArchiveLimits
from .destination import layout_files, publish_files
from .events import (
    Callback,
    DownloadSummary,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobPaused,
    JobResumed,
    JobState,
    ProgressSnapshot,
)
from .index import Cancelled
from .job_run import JobRun
from .manifest import Manifest
from .outcome_writer import TRANSFER_CACHE_KIB
from .pipeline import Pipeline, make_config, output_folder_error

if TYPE_CHECKING:
    from ..sources import SourceLike
    from .distributed import ClusterLike, ClusterTarget, ClusterTransfer

log = logging.getLogger(__name__)


class DownloadJob(JobRun):
    """A dataset download running in a background thread; pausable, resumable, cancellable.

    Create it with :func:`download_dataset` (``background=True``) or directly with the same
    arguments, then :meth:`start` it. Events go to :meth:`subscribe` callbacks, called from the
    job's thread (keep them cheap). A cancelled or failed job is resumed by creating a new job
    with the same arguments.
    """

    def __init__(
        self,
        dataset_id: str,
        output_dir: str | os.PathLike[str] = ".",
        *,
        asset_output_dir: str | os.PathLike[str] | None = None,
        catalog_only: bool = False,
        if_exists: str = "resume",
        bbox: BBoxLike | None = None,
        intersects: IntersectsLike | None = None,
        datetime: DatetimeLike = None,
        collection_filter: CollectionFilter | None = None,
        session: Session | None = None,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        workers: int | None = None,
        limits: ArchiveLimits | None = None,
        source: SourceLike | None = None,
        storage_options: StorageOptions | None = None,
        output_storage_options: StorageOptions | None = None,
        cluster: ClusterLike | None = None,
    ) -> None:
        target = None
        if cluster is not None:
            from .distributed import parse_cluster

            target = parse_cluster(cluster)
        cfg = make_config(
            dataset_id,
            output_dir,
            asset_output_dir=asset_output_dir,
            catalog_only=catalog_only,
            if_exists=if_exists,
            bbox=bbox,
            intersects=intersects,
            datetime=datetime,
            collection_filter=collection_filter,
            session=session,
            api_key=api_key,
            profile=profile,
            root_url=root_url,
            workers=workers,
            limits=limits,
            source=source,
            storage_options=storage_options,
            output_storage_options=output_storage_options,
        )
        super().__init__(cfg)
        self._cluster: ClusterTarget | None = target
        self._cluster_transfer: ClusterTransfer | None = None
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None
        self._summary: DownloadSummary | None = None
        self._error: BaseException | None = None

    # -- public API ----------------------------------------------------------------------------
    @property
    def dataset_id(self) -> str:
        """The dataset being downloaded."""
        return self._cfg.dataset_id

    @property
    def output_dir(self) -> Path:
        """Where the catalogue is written (absolute)."""
        return self._cfg.output_dir

    @property
    def asset_dir(self) -> Path:
        """The folder the dataset's assets go to (absolute)."""
        return self._cfg.dataset_asset_dir

    @property
    def location(self) -> str:
        """Where the dataset's files end up, as a user names it: the absolute asset folder,
        or for an object-store output (``-o s3://bucket/prefix``) the dataset's object URL
        (:attr:`asset_dir` is then the local state folder the upload goes through)."""
        cfg = self._cfg
        if cfg.destination is not None:
            with contextlib.suppress(ValueError):  # (assets in a folder of their own: local)
                return cfg.destination.object_url(cfg.dataset_asset_dir)
        return os.fspath(cfg.dataset_asset_dir)

    @property
    def state(self) -> JobState:
        """``pending``, ``running``, ``paused``, ``cancelling``, ``cancelled``, ``finished`` or
        ``failed``."""
        return self._state

    @property
    def error(self) -> BaseException | None:
        """The error that ended a failed job."""
        return self._error

    @property
    def dashboard_url(self) -> str | None:
        """The Dask dashboard of a download on a cluster, once connected (see
        :class:`~.events.ClusterConnected`); None otherwise."""
        run = self._cluster_transfer
        return run.dashboard_url if run is not None else None

    @property
    def err_report_path(self) -> Path:
        """Where failed assets are listed."""
        return self._cfg.err_report_path

    @property
    def manifest_path(self) -> Path:
        """The asset index of this download."""
        return self._cfg.manifest_path

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback(event)`` for every event (from the job's thread); returns an
        unsubscribe function."""
        with self._lock:
            self._subscribers.append(callback)
            self._subscribers_snapshot = tuple(self._subscribers)

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._subscribers.remove(callback)
                self._subscribers_snapshot = tuple(self._subscribers)

        return unsubscribe

    def start(self) -> DownloadJob:
        """Start the job in a background thread (once). Returns the job."""
        with self._lock:
            if self._state != "pending":
                raise RuntimeError(f"the job is already {self._state}")
            self._state = "running"
            self._started_at = time.monotonic()
        self._thread = threading.Thread(
            target=self._run, name=f"mlhub-download-{self.dataset_id}", daemon=True
        )
        self._thread.start()
        return self

    def pause(self) -> None:
        """Start no new transfers (running ones finish) until :meth:`resume`."""
        with self._lock:
            if self._state != "running":
                return
            self._state = "paused"
        self._control.pause()
        self._emit(JobPaused())

    def resume(self) -> None:
        """Continue after :meth:`pause`."""
        with self._lock:
            if self._state != "paused":
                return
            self._state = "running"
        self._control.resume()
        self._emit(JobResumed())

    def cancel(self) -> None:
        """Stop as soon as possible; everything stays resumable (``.part`` files + index)."""
        with self._lock:
            if self._state in ("cancelled", "finished", "failed", "cancelling"):
                return
            if self._state == "pending":
                self._state = "cancelled"
                self._finished.set()
                return
            self._state = "cancelling"
        self._cancel.set()
        self._control.cancel()

    def wait(self, timeout: float | None = None) -> DownloadSummary:
        """Wait for the end; return the summary or raise the job's error.

        Raises:
            TimeoutError: still running after ``timeout`` seconds.
            DownloadError: some assets failed (see ``err_report.csv``).
        """
        if self._state == "pending":
            raise RuntimeError("the job was not started")
        if not self._finished.wait(timeout):
            raise TimeoutError(f"download of {self.dataset_id} still running after {timeout}s")
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()  # it only returns now: no thread of the job outlives wait()
        if self._error is not None:
            raise self._error
        if self._summary is None:  # cancelled before it started
            raise DownloadError(f"the download of {self.dataset_id} was cancelled before it began")
        return self._summary

    def done(self) -> bool:
        """True once the job ended (finished, failed or cancelled)."""
        return self._finished.is_set()

    @property
    def summary(self) -> DownloadSummary | None:
        """The summary once the job ended (also for failed and cancelled jobs)."""
        return self._summary

    @property
    def progress(self) -> ProgressSnapshot:
        """A snapshot of the current progress (safe to call from any thread)."""
        return self._snapshot()

    def __repr__(self) -> str:
        p = self._snapshot()
        return (
            f"<DownloadJob {self.dataset_id} {p.state} {p.phase} "
            f"{p.assets_finished}/{p.assets_total} assets>"
        )

    # -- the thread -------------------------------------------------------------------------------
    def _run(self) -> None:
        pipeline = Pipeline(self._cfg, self._emit, self._cancel)
        try:
            summary = self._execute(pipeline)
        except Cancelled:
            self._finish_cancelled()
        except BaseException as exc:
            if isinstance(exc, DiskFullError):  # already says what filled the disk
                self._fail(exc)
            elif _is_disk_full(exc):
                self._fail(self._disk_full_error(exc, pipeline))
            else:
                self._fail(output_folder_error(exc, self._cfg) or exc)
        else:
            if self._cancel.is_set() and summary.cancelled:
                self._summary = summary
                self._finish_cancelled()
            elif summary.assets_failed:
                self._summary = summary
                self._fail(
                    DownloadError(
                        f"{summary.assets_failed} of {summary.assets_selected} assets of "
                        f"{self.dataset_id} failed; see {summary.err_report}. Run the download "
                        "again to retry only what is missing.",
                        failed=summary.assets_failed,
                        report=summary.err_report,
                    )
                )
            else:
                self._summary = summary
                self._phase = "done"
                self._ended_at = time.monotonic()
                with self._lock:
                    self._state = "finished"
                self._tick(force=True)
                self._emit(JobFinished(summary))
        finally:
            # everything the job opened is closed before anyone waiting is told it ended
            if pipeline.builder is not None:
                pipeline.builder.cancelled.set()
                pipeline.builder.join()
            pipeline.close()
            self._finished.set()

    def _disk_full_error(self, exc: BaseException, pipeline: Pipeline) -> DiskFullError:
        """A clear error for a full disk: which folder, how much is free, how much is needed."""
        cfg = self._cfg
        where = getattr(exc, "filename", None)
        folder = cfg.dataset_asset_dir
        if isinstance(where, str) and not where.startswith(os.fspath(cfg.dataset_asset_dir)):
            folder = cfg.output_dir if where.startswith(os.fspath(cfg.output_dir)) else folder
        elif not isinstance(exc, sqlite3.Error) and self._phase in ("catalog", "index"):
            folder = cfg.output_dir
        try:
            free: str = human_bytes(shutil.disk_usage(folder).free)
        except OSError:
            free = "unknown"
        missing = max(0, self._total - self._done - self._skipped)
        need: str
        if self._index_complete and self._sizes_known:
            left = max(0, self._bytes_total_known - self._bytes_done)
            need = f"About {human_bytes(left)} more is needed for the {missing:,} selected assets "
            need += "not yet on disk."
        else:
            estimate = pipeline.info.get("estimated_dataset_size")
            if isinstance(estimate, int | float) and estimate > self._bytes_done:
                need = f"The dataset is estimated at {human_bytes(estimate)}; about "
                need += f"{human_bytes(estimate - self._bytes_done)} more is needed."
            elif self._bytes_total_known > self._bytes_done:
                need = f"At least {human_bytes(self._bytes_total_known - self._bytes_done)} more "
                need += "is needed (the catalogue was not fully read)."
            else:
                need = "The space needed is not known yet (the catalogue was not fully read)."
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        detail = redact_text(text) or type(exc).__name__
        return DiskFullError(
            f"Disk full: no space left for the download of {cfg.dataset_id} in {folder} "
            f"({free} free). {need} The download stopped; the files completed so far are "
            "kept and nothing half-written has a final name. Free some space (or choose "
            "another output folder) and run the same download again: it resumes where it "
            f"stopped. ({detail})",
            failed=missing,
        )

    def _finish_cancelled(self) -> None:
        self._ended_at = time.monotonic()
        with self._lock:
            self._state = "cancelled"
        self._tick(force=True)
        if self._summary is not None:
            self._emit(JobCancelled(self._summary))

    def _fail(self, exc: BaseException) -> None:
        self._error = exc
        self._ended_at = time.monotonic()
        with self._lock:
            self._state = "failed"
        self._tick(force=True)
        self._emit(JobFailed(exc))

    async def _transfer(self, db: Manifest, pipeline: Pipeline, started: float) -> bool:
        if self._cluster is None:
            return await super()._transfer(db, pipeline, started)
        from .distributed import ClusterTransfer

        self._cluster_transfer = ClusterTransfer(self, self._cluster)
        return await self._cluster_transfer.run(db, pipeline)

    def _execute(self, pipeline: Pipeline) -> DownloadSummary:
        with pipeline.locked():  # one download of the dataset per folder at a time
            return self._execute_locked(pipeline)

    def _execute_locked(self, pipeline: Pipeline) -> DownloadSummary:
        cfg = self._cfg
        started = time.monotonic()
        self._phase = "catalog"
        self._tick(force=True)
        pipeline.fetch_catalog()
        if self._cancel.is_set():
            raise Cancelled()
        self._phase = "index"
        self._tick(force=True)
        with Manifest(cfg.manifest_path, cache_kib=TRANSFER_CACHE_KIB) as db:
            if cfg.destination is not None:  # what is already in the bucket: one listing
                cfg.destination.network = self._network(pipeline)
                cfg.destination.scan(cfg.dataset_asset_dir)
            pipeline.prepare_index(db, inline=cfg.catalog_only)
            if pipeline.builder is None:
                self._index_done(db, pipeline, started)
            if cfg.catalog_only:
                self._local_catalog = pipeline.write_local_catalog(db)
                self._phase = "done"
                summary = self._summarize(db, started, catalog_only=True)
                self._publish_layout()
                return summary
            complete = False
            if cfg.if_exists == "overwrite" and pipeline.builder is None:
                with db.transaction() as con:
                    con.execute("UPDATE assets SET state=0, bytes=0 WHERE selected=1")
            elif pipeline.builder is None:
                complete = self._settle_done(db)
            cancelled = self._cancel.is_set()
            if not complete:  # everything on disk already: no transfer phase at all
                self._phase = "transfer"
                self._tick(force=True)
                cancelled = asyncio.run(self._transfer(db, pipeline, started))
            if pipeline.builder is not None and not cancelled:
                pipeline.finish_build(db)
            if not cancelled:
                self._local_catalog = pipeline.write_local_catalog(db)
                if not complete:  # after the catalogue: its item files share the folders
                    self._stamp_after_download(db)
            summary = self._summarize(db, started, cancelled=cancelled)
            if not cancelled and summary.assets_selected == 0:
                raise pipeline.no_assets_error(db)
            if not cancelled:
                self._publish_layout()
            return summary

    def _network(self, pipeline: Pipeline) -> NetworkSettings:
        cfg = self._cfg
        return cfg.source.network if cfg.source is not None else pipeline.get_session().network

    def _publish_layout(self) -> None:
        """An object-store output: the catalogue, the tarball and ``err_report.csv`` go to the
        bucket too (what changed since the last run only), for the same layout as on disk."""
        cfg = self._cfg
        if cfg.destination is None:
            return
        files = layout_files(cfg.catalog_dir, cfg.catalog_path, cfg.err_report_path)
        asyncio.run(publish_files(cfg.destination, files))


_SQLITE_FULL = 13  # SQLITE_FULL: "database or disk is full"
_SQLITE_IOERR = 10


def _is_disk_full(exc: BaseException) -> bool:
    """A full disk or exceeded quota, as an OSError or as SQLite reports it."""
    for error in (exc, exc.__cause__):
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(error, sqlite3.Error):
            code = getattr(error, "sqlite_errorcode", None)
            if code is not None and code & 0xFF == _SQLITE_FULL:
                return True
            if "database or disk is full" in str(error):
                return True
    return False


def iter_events_until_done(job: DownloadJob, timeout: float | None = None) -> Iterator[Any]:
    """Yield a job's events from the calling thread until it ends (for scripts and tests)."""
    q: queue.SimpleQueue[Any] = queue.SimpleQueue()
    unsubscribe = job.subscribe(q.put)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                event = q.get(timeout=remaining if remaining is not None else 1.0)
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    return
                if job.done() and q.empty():
                    return
                continue
            yield event
            if isinstance(event, JobFinished | JobFailed | JobCancelled):
                return
    finally:
        unsubscribe()
