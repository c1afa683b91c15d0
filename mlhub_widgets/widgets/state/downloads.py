"""Downloads from the explorer: the options, the estimate, starting a job and retrying it.

:class:`Downloads` is the part of :class:`~.explorer_state.ExplorerState` behind the Download
panel's Estimate, Download and Retry buttons; :mod:`.job_follow` follows the job it starts.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from typing import Any

import traitlets
from traitlets import Bool, Dict, Enum, Int, Unicode, default, validate

from ...exceptions import EntityDoesNotExist
from ...net.objects.urls import is_object_url
from .errors import metadata_only_reason
from .job_follow import JobFollower, state_name


class Downloads(JobFollower):
    """The download options of the selection, its estimate, and the jobs started from it."""

    output_dir = Unicode(
        ".", help="where datasets are downloaded: a folder, or an object-store prefix (s3://b/p)"
    )
    output_storage_options = Dict(
        help="options of the object store an s3:// (gs://, az://) output_dir is written to"
    )
    if_exists = Enum(("resume", "skip", "overwrite"), "resume", help="what to do with files")
    catalog_only = Bool(False, help="download only the STAC catalogue, no assets")
    workers = Int(min=1, max=256, help="parallel asset downloads (default: the engine's)")
    cluster = Unicode("", help="Dask scheduler (tcp://host:8786) or local:N; empty: here")
    estimate = traitlets.Any(None, allow_none=True, help="DownloadPlan for the current filters")

    # provided by ExplorerState
    session: Any
    source: Any
    dataset_id: Any
    filters: Any
    filter_problems: Any

    def _where(self) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def metadata_only(self) -> str:
        """Why the selected dataset cannot be downloaded ("": it can, or is not known)."""
        raise NotImplementedError

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._last_download: _DownloadRequest | None = None

    @default("workers")
    def _default_workers(self) -> int:
        from ...download.defaults import DEFAULT_WORKERS

        return DEFAULT_WORKERS

    def download_problems(self) -> list[str]:
        """Why a download (or an estimate) cannot start now; empty when it can."""
        out = []
        if self.session is None and self.source is None:
            out.append("Not connected.")
        if not self.dataset_id:
            out.append("No dataset selected.")
        elif self.metadata_only:
            out.append(self.metadata_only)
        out.extend(self.filter_problems)
        problem = _output_problem(self.output_dir)
        if problem:
            out.append(problem)
        return out

    def _download_args(self) -> tuple[dict[str, Any], str, dict[str, Any]]:
        problems = self.download_problems()
        if problems:
            raise ValueError(" ".join(problems))
        where = self._where()
        assert self.dataset_id is not None
        kwargs = {
            **self.filters.download_kwargs(),
            "output_storage_options": dict(self.output_storage_options),
        }
        return where, self.dataset_id, kwargs

    @validate("cluster")
    def _validate_cluster(self, proposal: dict[str, Any]) -> str:
        from ...download.distributed import parse_address

        text = str(proposal["value"]).strip()
        if text:
            try:
                parse_address(text)
            except ValueError as exc:
                raise traitlets.TraitError(str(exc)) from None
        return text

    def estimate_download(self) -> threading.Thread:
        """Count the assets and bytes the current filters select (catalogue only, no assets)."""
        where, dataset_id, kwargs = self._download_args()
        output_dir = self.output_dir
        filters = self.filters

        def work() -> Any:
            from ...download import plan_download

            try:
                return plan_download(dataset_id, output_dir, **where, **kwargs)
            except EntityDoesNotExist:
                self._set_availability(dataset_id, metadata_only_reason(dataset_id))
                raise ValueError(metadata_only_reason(dataset_id)) from None

        def done(plan: Any) -> None:
            if self.filters == filters and self.dataset_id == dataset_id:
                self.estimate = plan

        return self.run_in_background("estimate", "Estimating from the catalogue…", work, done)

    def start_download(self) -> threading.Thread:
        """Start a background download of the selection (resumable; see :attr:`job`)."""
        where, dataset_id, kwargs = self._download_args()
        options: dict[str, Any] = {
            "if_exists": self.if_exists,
            "catalog_only": self.catalog_only,
            "workers": self.workers,
            "cluster": self.cluster or None,
        }
        return self._start_job(
            _DownloadRequest(where, dataset_id, self.output_dir, options, kwargs)
        )

    def retry_download(self) -> threading.Thread:
        """Download again what is missing of the last download of the selected dataset into
        :attr:`output_dir`: the same selection, with ``if_exists="resume"``, so the engine
        fetches only the assets that failed or are not complete on disk. Without such a
        download in this session, the current selection is downloaded the same way.

        Raises:
            ValueError: a download is running, or nothing can be downloaded.
        """
        last = self._last_download
        if last is None or (last.dataset_id, last.output_dir) != (
            self.dataset_id,
            self.output_dir,
        ):
            where, dataset_id, kwargs = self._download_args()
            last = _DownloadRequest(
                where, dataset_id, self.output_dir, {"workers": self.workers}, kwargs
            )
        options = {**last.options, "if_exists": "resume", "catalog_only": False}
        return self._start_job(dataclasses.replace(last, options=options))

    def _start_job(self, request: _DownloadRequest) -> threading.Thread:
        if self.job is not None and self.job_state in ("running", "paused", "pending"):
            raise ValueError("A download is already running: pause or cancel it first.")
        self._last_download = request

        def work() -> Any:
            from ...download import download_dataset

            # in this worker thread: the engine checks the output folder before any job (a
            # file, a folder under a file, a read-only one: one line, no job) and the job
            # creates it in its own thread (a folder that cannot be made ends it, "failed")
            return download_dataset(
                request.dataset_id,
                request.output_dir,
                **request.where,
                progress=False,
                background=True,
                **request.options,
                **request.kwargs,
            )

        def done(job: Any) -> None:
            self.job = job

        def failed(_exc: BaseException) -> None:
            # nothing started: back to the state of the previous job (or idle)
            self.job_state = state_name(self.job.state) if self.job is not None else "idle"

        self.job_state = "starting"
        return self.run_in_background("download", "Starting the download…", work, done, failed)


@dataclasses.dataclass(frozen=True)
class _DownloadRequest:
    """The arguments of one download the explorer started (Retry runs it again)."""

    where: dict[str, Any]
    dataset_id: str
    output_dir: str
    options: dict[str, Any]
    kwargs: dict[str, Any]


def _output_problem(output_dir: str) -> str | None:
    """Why ``output_dir`` cannot be written to (an unsupported URL), or None."""
    from ...net.objects import UnsupportedURLError, check_local_path, parse_object_url

    try:
        if is_object_url(output_dir):
            parse_object_url(output_dir)
        else:
            check_local_path(output_dir, "output folder")
    except UnsupportedURLError as exc:
        return str(exc)
    return None


def default_output_dir() -> str:
    """``MLHUB_OUTPUT_DIR`` or the current directory."""
    return os.environ.get("MLHUB_OUTPUT_DIR", ".")
