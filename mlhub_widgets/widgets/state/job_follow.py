"""Following a download job: its state, throttled progress, failures and end messages.

:class:`JobFollower` is the part of :class:`~.explorer_state.ExplorerState` that watches a
:class:`~mlhub_widgets.download.DownloadJob` (started by the explorer, or from code by setting
:attr:`JobFollower.job`): it subscribes to the job's events and turns them into traits the
Download panel renders, at most :data:`PROGRESS_INTERVAL` apart.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import traitlets
from traitlets import Bool, Dict, Int, List, Unicode, observe

from ...exceptions import EntityDoesNotExist
from .errors import FailedAsset, job_error_text, metadata_only_reason
from .tasks import BackgroundTasks

#: Minimum seconds between two progress updates published to the widgets (5 Hz).
PROGRESS_INTERVAL = 0.2

#: Most failed assets kept for display (the full list is in the job's err_report.csv).
MAX_FAILURES_SHOWN = 200


class JobFollower(BackgroundTasks):
    """The download job's traits and controls (pause, resume, cancel)."""

    availability = Dict(
        help="dataset id -> '' when it can be downloaded, else why not ('metadata only'); "
        "ids not in it are not known yet (see the availability module)"
    )

    # -- download job --------------------------------------------------------------------------
    job = traitlets.Any(None, allow_none=True, help="the current DownloadJob")
    job_state = Unicode("idle", help="state of the job: idle, running, paused, finished, ...")
    progress = traitlets.Any(None, allow_none=True, help="last ProgressSnapshot of the job")
    failures: List[FailedAsset] = List(help="FailedAsset rows (the first MAX_FAILURES_SHOWN)")
    failure_count = Int(0, help="assets that failed so far")
    report_path = Unicode("", help="the job's err_report.csv, once there are failures")
    dashboard_url = Unicode("", help="the Dask dashboard of a download on a cluster")
    resumable = Bool(
        False, help="the last job stopped after its catalogue was read: Start resumes it"
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._job_unsubscribe: Callable[[], None] | None = None
        self._last_progress = 0.0
        self._pending_failures: list[FailedAsset] = []

    def _set_availability(self, dataset_id: str, reason: str) -> None:
        """Record what is known of a dataset; a reason found (a 404 of its catalogue) is not
        undone by a later "downloadable" answer of the same session (its info may exist)."""
        known = self.availability.get(dataset_id)
        if known and not reason:
            return
        if known != reason:
            self.availability = {**self.availability, dataset_id: reason}

    def pause(self) -> None:
        """Pause the running job (finished files and partial files are kept)."""
        job = self._require_job()
        job.pause()
        self._sync_job_state(job)

    def resume(self) -> None:
        """Resume a paused job."""
        job = self._require_job()
        job.resume()
        self._sync_job_state(job)

    def cancel(self) -> None:
        """Cancel the job; what was downloaded stays, and Start resumes from there."""
        job = self._require_job()
        job.cancel()
        self._sync_job_state(job)

    def _require_job(self) -> Any:
        if self.job is None:
            raise ValueError("No download job.")
        return self.job

    def _sync_job_state(self, job: Any) -> None:
        if job is self.job:
            self.job_state = state_name(job.state)

    @observe("job")
    def _on_job(self, change: dict[str, Any]) -> None:
        if self._job_unsubscribe is not None:
            with contextlib.suppress(Exception):
                self._job_unsubscribe()
            self._job_unsubscribe = None
        job = change["new"]
        if job is None:
            self.job_state = "idle"
            return
        self._last_progress = 0.0
        self._pending_failures = []
        with self.hold_trait_notifications():
            self.failures = []
            self.failure_count = 0
            self.report_path = ""
            self.resumable = False
            self.progress = job.progress
            self.job_state = state_name(job.state)
            self.dashboard_url = getattr(job, "dashboard_url", None) or ""

        def on_event(event: Any) -> None:
            self._on_job_event(job, event)

        unsubscribe = job.subscribe(on_event)
        if callable(unsubscribe):
            self._job_unsubscribe = unsubscribe
        # events may have fired before we subscribed
        self._publish(job, force=True)

    def _on_job_event(self, job: Any, event: Any) -> None:
        from ...download import (
            AssetFailed,
            ClusterConnected,
            JobCancelled,
            JobFailed,
            JobFinished,
            JobPaused,
            JobResumed,
            ProgressUpdated,
        )

        if job is not self.job:
            return
        if isinstance(event, AssetFailed):
            with self._lock:
                self._pending_failures.append(
                    FailedAsset(
                        collection=event.collection_id,
                        item=event.item_id or "",
                        asset_key=event.asset_key,
                        reason=event.reason,
                        url=event.url,
                    )
                )
            self._publish(job, force=False)
        elif isinstance(event, JobFailed):
            error = event.error
            dataset_id = str(job.dataset_id)
            if isinstance(error, EntityDoesNotExist):
                self._set_availability(dataset_id, metadata_only_reason(dataset_id))
            output = str(job.output_dir)
            self.set_error(
                "download", job_error_text(error, dataset_id=dataset_id, output_dir=output)
            )
            self.resumable = self._stopped_after_catalogue(job)
            self._publish(job, force=True)
        elif isinstance(event, JobCancelled):
            self._publish(job, force=True)
        elif isinstance(event, JobFinished):
            self.set_notice("download", finished_text(event.summary, _location(job)))
            self._publish(job, force=True)
        elif isinstance(event, JobPaused | JobResumed):
            self._publish(job, force=True)
        elif isinstance(event, ClusterConnected):
            self.dashboard_url = event.dashboard_url or ""
        elif isinstance(event, ProgressUpdated):
            self._publish(job, force=False)

    def _publish(self, job: Any, *, force: bool) -> None:
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last_progress < PROGRESS_INTERVAL:
                return
            self._last_progress = now
            pending, self._pending_failures = self._pending_failures, []
        snapshot = job.progress
        with self.hold_trait_notifications():
            if pending:
                self.failures = (list(self.failures) + pending)[:MAX_FAILURES_SHOWN]
            self.failure_count = max(self.failure_count + len(pending), int(snapshot.assets_failed))
            report = job.err_report_path
            if self.failure_count and report.exists():
                self.report_path = str(report)
            self.progress = snapshot
            self.job_state = str(job.state)
            if self.job_state == "cancelled" and "download" not in self.warnings:
                # also when the job was cancelled before its catalogue was read (it then
                # sends no JobCancelled)
                self.set_warning("download", cancelled_text(snapshot, _location(job)))
                self.resumable = self._stopped_after_catalogue(job)

    @staticmethod
    def _stopped_after_catalogue(job: Any) -> bool:
        p = job.progress
        return p is not None and (p.phase != "catalog" or p.assets_done + p.assets_skipped > 0)

    def refresh_progress(self) -> None:
        """Publish the job's current progress now (the panel calls it on a timer)."""
        if self.job is not None:
            self._publish(self.job, force=True)


def cancelled_text(snapshot: Any, asset_dir: Any) -> str:
    """What the Download tab says when a job was cancelled."""
    have = snapshot.assets_done + snapshot.assets_skipped
    if not have:
        return "Cancelled before any asset was downloaded."
    more = "+" if not snapshot.index_complete else ""
    return (
        f"Cancelled: {have} of {snapshot.assets_total}{more} assets are in {asset_dir}. "
        "Start resumes from there."
    )


def _location(job: Any) -> Any:
    """Where a job's files go: its :attr:`~mlhub_widgets.download.DownloadJob.location` (an
    object URL for a bucket output), else its asset folder (a job made elsewhere)."""
    return getattr(job, "location", None) or job.asset_dir


def finished_text(summary: Any, location: Any = None) -> str:
    """What the Download tab says when a job finished; ``location`` (default: the summary's
    asset folder) is where the files went, an object URL for a bucket output."""
    from .formatting import human_bytes, human_duration

    if summary.catalog_only:
        return (
            f"Done: the catalogue of {summary.dataset_id} is in {location or summary.catalog_dir}."
        )
    skipped = f", {summary.assets_skipped} already there" if summary.assets_skipped else ""
    return (
        f"Done: {summary.assets_downloaded} assets downloaded "
        f"({human_bytes(summary.bytes_downloaded)}){skipped} in "
        f"{human_duration(summary.elapsed)}, into {location or summary.asset_dir}."
    )


def state_name(state: Any) -> str:
    """A job state as text (``idle`` when there is none)."""
    return str(state) if state is not None else "idle"


def completed_fraction(snapshot: Any, state: str) -> float:
    """How much of the selection is on disk, in ``[0, 1]``: by bytes when every size is known,
    else by assets. Failed assets do not count (a run whose assets all failed is at 0, not at
    100 %, unlike :attr:`ProgressSnapshot.fraction`, which measures the work done); below 1
    while work is left (:meth:`ProgressSnapshot.bounded`)."""
    if state == "finished":
        return 1.0
    if snapshot.bytes_total:
        return float(snapshot.bounded(snapshot.bytes_done / snapshot.bytes_total))
    if snapshot.assets_total:
        have = snapshot.assets_done + snapshot.assets_skipped
        return float(snapshot.bounded(have / snapshot.assets_total))
    return 0.0
