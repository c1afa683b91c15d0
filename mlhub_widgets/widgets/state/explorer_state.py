"""The explorer's shared state: one object from session to download job, with no widgets in it.

:class:`ExplorerState` is a :class:`traitlets.HasTraits` object. The panels of
:mod:`mlhub_widgets.widgets` observe its traits to render and call its methods to forward what
the user asked for; code can do exactly the same::

    from mlhub_widgets.widgets.state import ExplorerState, Filters

    st = ExplorerState()
    st.connect(root_url="http://127.0.0.1:8000/")   # returns at once; work runs in a thread
    st.wait()                                        # (scripts/tests only) block until idle
    st.select_dataset("nasa_marine_debris")
    st.filters = Filters(bbox=(-88, 15, -86, 17), start=date(2018, 1, 1))
    st.estimate_download(); st.wait()
    print(st.estimate.assets, st.estimate.bytes)
    st.start_download()                              # background job, see st.job / st.progress

Rules this module keeps (they make the widgets safe in every Jupyter front end):

* Every call that does I/O (HTTP, profiles file, catalogue, download) runs in a worker thread
  started here. The thread only sets traits; it never prints or displays (ipykernel 7 no longer
  routes output from threads to the cell that started them).
* Each kind of work has an *area* (``"login"``, ``"search"``, ``"dataset"``, ``"assets"``,
  ``"estimate"``, ``"download"``, ``"profiles"``). While it runs, ``busy[area]`` says what is being
  done; if it fails, ``errors[area]`` holds a message meant for the user (never a traceback: the
  last unexpected traceback is kept in :attr:`ExplorerState.last_traceback`). Starting new work in
  an area supersedes the old one: a late answer of an older search never overwrites a newer one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import traitlets
from traitlets import Bool, Dict, Enum, Int, List, Unicode, observe, validate

from ...exceptions import EntityDoesNotExist
from ...net.objects.urls import is_object_url
from ...types import DateBound, IntersectsLike

if TYPE_CHECKING:
    from ...config.session import Session

from .details import dataset_detail, dataset_footprint, temporal_extent
from .errors import FailedAsset, job_error_text
from .filters import Filters
from .tasks import BackgroundTasks

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The kinds of background work, each with its own busy flag and error message.
AREAS = ("login", "profiles", "tags", "search", "dataset", "assets", "estimate", "download")

#: Minimum seconds between two progress updates published to the widgets (5 Hz).
PROGRESS_INTERVAL = 0.2

_NO_CATALOGUE = (
    "{} has no STAC catalogue on this server, so its assets cannot be listed or downloaded "
    "(the record and collections are still shown)."
)

#: Most failed assets kept for display (the full list is in the job's err_report.csv).
MAX_FAILURES_SHOWN = 200


def _read_profiles() -> tuple[list[str], dict[str, str]]:
    from ...config.profiles import list_profiles

    found = list_profiles()
    return [p.name for p in found], {p.name: p.root_url for p in found if p.root_url}


def _jsonable_tags(frame: Any) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    if frame is None:
        return out
    for row in frame.itertuples(index=False):
        out.append((str(row.tag), int(row.datasets)))
    return out


class ExplorerState(BackgroundTasks):
    """Everything the explorer shows, from the session to the download job.

    Set traits directly (``state.filters = Filters(...)``, ``state.dataset_id = "x"``, ...) or call
    the methods; the panels follow. Methods that do I/O return at once and run in a worker
    thread; :meth:`wait` blocks until that work is done (for scripts and tests).
    """

    # -- connection --------------------------------------------------------------------------
    session = traitlets.Any(None, allow_none=True, help="the active mlhub_widgets.Session")
    source = traitlets.Any(
        None,
        allow_none=True,
        help="the active STAC source (static catalogue or STAC API); None: the MLHub session",
    )
    has_tags = Bool(True, help="whether datasets have tags (False: the tag list holds keywords)")
    connection = Unicode("", help="who answered: a one-line description of the connection")
    dataset_count = Int(-1, help="datasets the server lists (-1: unknown)")
    profiles = List(Unicode(), help="profile names found in the profiles file")
    profile_urls = Dict(help="profile name -> its root URL (profiles that store one)")

    # -- discovery -----------------------------------------------------------------------------
    tags: List[tuple[str, int]] = List(help="[(tag, number of datasets)] of the server")
    search_tags = List(Unicode(), help="tags a dataset must all have")
    search_text = Unicode("", help="free text (phrase) the dataset must match")
    results = traitlets.Any(None, allow_none=True, help="GeoDataFrame of matching datasets")
    dataset_id = Unicode(None, allow_none=True, help="id of the selected dataset")
    dataset = traitlets.Any(None, allow_none=True, help="the selected models.Dataset")
    detail = Dict(help="what the detail view shows of the selected dataset (plain values)")
    collections = traitlets.Any(None, allow_none=True, help="GeoDataFrame of its collections")
    footprint = traitlets.Any(None, allow_none=True, help="GeoJSON geometry of the dataset")
    temporal_extent = traitlets.Tuple(
        (None, None), help="(first day, last day) of the dataset's collections, None = unknown"
    )
    asset_keys = Dict(help="collection id -> asset keys found in the catalogue")

    # -- filters and download options ----------------------------------------------------------
    filters: traitlets.Any = traitlets.Any(
        Filters(), help="what to download: a Filters (a dict of its fields is converted)"
    )
    filter_problems = List(Unicode(), help="why the current filters cannot be downloaded")
    output_dir = Unicode(
        ".", help="where datasets are downloaded: a folder, or an object-store prefix (s3://b/p)"
    )
    storage_options = Dict(
        help="options of the object stores the source is read from (endpoint, region, "
        "skip_signature for public buckets...; see mlhub_widgets.net.objects)"
    )
    output_storage_options = Dict(
        help="options of the object store an s3:// (gs://, az://) output_dir is written to"
    )
    if_exists = Enum(("resume", "skip", "overwrite"), "resume", help="what to do with files")
    catalog_only = Bool(False, help="download only the STAC catalogue, no assets")
    workers = Int(4, min=1, max=64, help="parallel asset downloads")
    estimate = traitlets.Any(None, allow_none=True, help="DownloadPlan for the current filters")

    # -- download job --------------------------------------------------------------------------
    job = traitlets.Any(None, allow_none=True, help="the current DownloadJob")
    job_state = Unicode("idle", help="state of the job: idle, running, paused, finished, ...")
    progress = traitlets.Any(None, allow_none=True, help="last ProgressSnapshot of the job")
    failures: List[FailedAsset] = List(help="FailedAsset rows (the first MAX_FAILURES_SHOWN)")
    failure_count = Int(0, help="assets that failed so far")
    report_path = Unicode("", help="the job's err_report.csv, once there are failures")

    def __init__(self, session: Session | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._job_unsubscribe: Callable[[], None] | None = None
        self._last_progress = 0.0
        self._pending_failures: list[FailedAsset] = []
        if session is not None:
            self.session = session
            self.connection = self._describe(session, None)

    # ------------------------------------------------------------------------------------------
    # connection and profiles

    @staticmethod
    def _describe(session: Session, count: int | None, server: str = "") -> str:
        who = "anonymous" if session.anonymous else "with an API key"
        if session.profile:
            who = f"profile '{session.profile}'"
        what = server or session.root_url
        tail = ""
        if count is not None:
            tail = f": {count} dataset{'s' if count != 1 else ''} available"
        return f"Connected to {what} ({who}){tail}"

    def connect(
        self,
        *,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        demo: bool = False,
        then_search: bool = True,
    ) -> threading.Thread:
        """Test a connection and, if it answers, make it the session everywhere.

        ``demo=True`` starts the bundled demo hub in this process (kept for the kernel's life)
        and connects to it anonymously unless ``api_key`` is given. On success ``connection``
        says who answered and how many datasets it lists; on failure ``errors["login"]`` says
        what is wrong (wrong key → the 401 message, unreachable host, wrong URL) and the
        previous session stays active. ``then_search`` loads tags and runs the search.
        """

        def work() -> tuple[Session, int, str]:
            from ... import discovery
            from ...config.session import ANONYMOUS_PROFILE, get_session

            if demo:
                from ...demo import demo_hub_url

            root = demo_hub_url() if demo else (root_url or None)
            prof = profile or None
            if demo and not api_key and prof is None:
                prof = ANONYMOUS_PROFILE
            probe = get_session(
                api_key=api_key or None,
                profile=prof,
                root_url=root,
                max_attempts=1,
                timeout=(5.0, 20.0),
            )
            try:
                frame = discovery.datasets(session=probe)
            except EntityDoesNotExist as exc:
                raise ValueError(
                    f"No MLHub API at {probe.root_url}: {exc}. Check the root URL (it must be "
                    "the API root, e.g. https://…/mlhub/v1/)."
                ) from None
            count = len(frame)
            if count:
                # Listing datasets is public; the catalogue is not. Ask for one catalogue's info
                # so a missing or wrong key shows up now (401), not at the first download.
                from ...mlhub.client import get_catalog_info

                with contextlib.suppress(EntityDoesNotExist):
                    get_catalog_info(str(frame["id"].iloc[0]), session=probe)
            session = get_session(api_key=api_key or None, profile=prof, root_url=root)
            server = f"the bundled demo hub at {session.root_url}" if demo else ""
            return session, count, server

        def done(result: tuple[Session, int, str]) -> None:
            session, count, server = result
            with self.hold_trait_notifications():
                self.source = None
                self.has_tags = True
                self.session = session
                self.dataset_count = count
                self.connection = self._describe(session, count, server)
            if then_search:
                self.load_tags()
                self.search()

        what = "Starting the bundled demo hub…" if demo else "Testing the connection…"
        return self.run_in_background("login", what, work, done)

    def connect_source(
        self,
        url_or_path: Any,
        *,
        kind: str | None = None,
        then_search: bool = True,
        storage_options: Mapping[str, Any] | None = None,
    ) -> threading.Thread:
        """Open a STAC catalogue (folder, file, URL, or ``s3://``/``gs://``/``az://`` object
        URL) or a STAC API (or use a :class:`~mlhub_widgets.sources.Source`) and use it
        everywhere.

        ``kind`` is ``"static"``, ``"stac-api"`` or ``"mlhub"`` (detected when omitted; see
        :func:`mlhub_widgets.open_source`). ``storage_options`` (default: the
        :attr:`storage_options` trait) configure object stores: ``{"endpoint": ...,
        "skip_signature": True}`` for a public bucket. On success :attr:`source` is set,
        :attr:`session` cleared and ``connection`` says what answered; on failure
        ``errors["login"]`` says why, in one line (a missing bucket, denied access, an
        unsupported URL scheme).
        """
        options = dict(self.storage_options if storage_options is None else storage_options)

        def work() -> tuple[Any, int]:
            from ...sources import MLHubApiSource, Source, open_source

            text = url_or_path if isinstance(url_or_path, Source) else str(url_or_path).strip()
            if not text:
                raise ValueError("Enter the URL or path of a STAC catalogue or STAC API.")
            try:
                src = open_source(text, kind=kind, storage_options=options)
            except FileNotFoundError as exc:
                raise ValueError(str(exc)) from None
            if isinstance(src, MLHubApiSource):
                raise ValueError(
                    f"{text} is an MLHub API: choose 'MLHub API' and test the connection."
                )
            return src, len(src.list_datasets())

        def done(result: tuple[Any, int]) -> None:
            src, count = result
            old = self.source
            with self.hold_trait_notifications():
                self.session = None
                self.storage_options = options
                self.source = src
                self.has_tags = bool(src.has_tags)
                self.dataset_count = count
                plural = "s" if count != 1 else ""
                self.connection = f"Connected to the {src.describe()}: {count} dataset{plural}"
            if old is not None and old is not src:
                old.close()
            if then_search:
                self.load_tags()
                self.search()

        return self.run_in_background("login", "Opening the catalogue…", work, done)

    def _where(self) -> dict[str, Any]:
        """``{"source": …}`` or ``{"session": …}``: where discovery and downloads go."""
        if self.source is not None:
            return {"source": self.source}
        return {"session": self._require_session()}

    def disconnect(self) -> None:
        """Forget the session (nothing else is touched)."""
        with self.hold_trait_notifications():
            self.source = None
            self.session = None
            self.connection = ""
            self.dataset_count = -1

    def refresh_profiles(self) -> threading.Thread:
        """Re-read the profile names from the profiles file into :attr:`profiles`."""

        return self.run_in_background("profiles", "Reading profiles…", _read_profiles, self._got)

    def _got(self, found: tuple[list[str], dict[str, str]]) -> None:
        with self.hold_trait_notifications():
            self.profiles, self.profile_urls = found

    def save_profile(
        self, name: str, api_key: str, root_url: str | None = None
    ) -> threading.Thread:
        """Save ``api_key`` (and ``root_url``) as profile ``name`` in the profiles file."""

        def work() -> tuple[list[str], dict[str, str]]:
            from ...config.profiles import save_profile

            if not name.strip():
                raise ValueError("Give the profile a name.")
            if not api_key:
                raise ValueError("Enter the API key to save.")
            save_profile(name.strip(), api_key, root_url or None)
            return _read_profiles()

        def done(found: tuple[list[str], dict[str, str]]) -> None:
            self._got(found)
            self.set_notice("profiles", f"Saved profile '{name.strip()}'.")

        return self.run_in_background("profiles", "Saving profile…", work, done)

    def _require_session(self) -> Session:
        session = self.session
        if session is None:
            raise ValueError("Not connected: test a connection in the Connect panel first.")
        return session  # type: ignore[no-any-return]

    # ------------------------------------------------------------------------------------------
    # discovery

    def load_tags(self) -> threading.Thread:
        """Fetch the server's tags with their dataset counts into :attr:`tags`."""
        where = self._where()

        def work() -> list[tuple[str, int]]:
            from ... import discovery

            return _jsonable_tags(discovery.tags(**where))

        def done(tags: list[tuple[str, int]]) -> None:
            self.tags = list(tags)

        return self.run_in_background("tags", "Loading tags…", work, done)

    def search(
        self, tags: Sequence[str] | None = None, text: str | None = None
    ) -> threading.Thread:
        """Search datasets by tags (all must match) and text; results go to :attr:`results`."""
        with self.hold_trait_notifications():
            if tags is not None:
                self.search_tags = list(tags)
            if text is not None:
                self.search_text = text
        where = self._where()
        wanted_tags = list(self.search_tags) or None
        wanted_text = self.search_text.strip() or None

        def work() -> Any:
            from ... import discovery

            return discovery.datasets(tags=wanted_tags, text=wanted_text, **where)

        def done(frame: Any) -> None:
            self.results = frame

        return self.run_in_background("search", "Searching datasets…", work, done)

    def select_dataset(self, dataset_id: str | None) -> None:
        """Select a dataset by id (None clears); its details load in the background."""
        self.dataset_id = dataset_id or None

    @observe("dataset_id")
    def _on_dataset_id(self, change: dict[str, Any]) -> None:
        new = change["new"]
        with self.hold_trait_notifications():
            self.dataset = None
            self.detail = {}
            self.collections = None
            self.footprint = None
            self.temporal_extent = (None, None)
            self.asset_keys = {}
            self.estimate = None
            old = self.filters
            self.filters = Filters(bbox=old.bbox, intersects=old.intersects)
        if new is None:
            for area in ("dataset", "assets"):
                with self._lock:
                    self._generation[area] = self._generation.get(area, 0) + 1
                self._set_area("busy", area, None)
                self.set_error(area, None)
            return
        if self.session is None and self.source is None:
            self.set_error("dataset", "Not connected: test a connection in the Connect panel.")
            return
        self._load_dataset(new)
        self._load_asset_keys(new)

    def _load_dataset(self, dataset_id: str) -> None:
        where = self._where()

        def work() -> tuple[Any, Any, dict[str, Any]]:
            from ... import discovery
            from ...mlhub.dataset import Dataset

            src = where.get("source")
            if src is not None:
                dataset = Dataset.from_dict(src.get_dataset(dataset_id))
                dataset._catalog_info = {}  # no catalogue archive: sizes are unknown
                collections = discovery.collections(dataset_id, source=src)
                return dataset, collections, dataset_detail(dataset, collections)
            session = where["session"]
            dataset = Dataset.fetch(dataset_id, session=session)
            collections = discovery.collections(dataset=dataset, session=session)
            return dataset, collections, dataset_detail(dataset, collections)

        def done(result: tuple[Any, Any, dict[str, Any]]) -> None:
            dataset, collections, detail = result
            with self.hold_trait_notifications():
                self.dataset = dataset
                self.detail = detail
                self.collections = collections
                self.footprint = dataset_footprint(self.results, dataset_id, collections)
                self.temporal_extent = temporal_extent(collections)

        self.run_in_background("dataset", f"Loading {dataset_id}…", work, done)

    def _load_asset_keys(self, dataset_id: str) -> None:
        where = self._where()
        output_dir = self.output_dir

        def work() -> dict[str, list[str]]:
            from ...download import plan_download

            try:
                plan = plan_download(dataset_id, output_dir, **where)
            except EntityDoesNotExist:
                raise ValueError(_NO_CATALOGUE.format(dataset_id)) from None
            return {cid: sorted(keys) for cid, keys in plan.asset_keys.items()}

        def done(keys: dict[str, list[str]]) -> None:
            self.asset_keys = keys

        self.run_in_background("assets", "Reading the catalogue…", work, done)

    # ------------------------------------------------------------------------------------------
    # filters

    @validate("filters")
    def _validate_filters(self, proposal: dict[str, Any]) -> Filters:
        value = proposal["value"]
        if isinstance(value, Filters):
            return value
        if isinstance(value, Mapping):
            return Filters(**value)
        if value is None:
            return Filters()
        raise traitlets.TraitError(f"filters must be a Filters or a dict, not {type(value)}")

    @observe("filters")
    def _on_filters(self, change: dict[str, Any]) -> None:
        new: Filters = change["new"]
        with self.hold_trait_notifications():
            self.filter_problems = new.problems()
            if change["old"] != new:
                self.estimate = None

    def set_bbox(self, bbox: Sequence[float] | None) -> None:
        """Use a rectangle ``(west, south, east, north)`` as the area (drops any polygon)."""
        self.filters = self.filters.with_bbox(bbox)

    def set_intersects(self, geometry: IntersectsLike | None) -> None:
        """Use a GeoJSON geometry/feature as the area (drops any bbox)."""
        self.filters = self.filters.with_intersects(geometry)

    def clear_area(self) -> None:
        """No area filter."""
        self.filters = dataclasses.replace(self.filters, bbox=None, intersects=None)

    def set_dates(self, start: DateBound, end: DateBound) -> None:
        """Use ``start``..``end`` (dates, inclusive; None = open) as the date filter."""
        self.filters = self.filters.with_dates(start, end)

    def set_collection_filter(self, cf: Mapping[str, Sequence[str]] | None) -> None:
        """Use ``{collection: [asset keys]}`` (None = everything) as the content filter."""
        self.filters = self.filters.with_collection_filter(cf)

    # ------------------------------------------------------------------------------------------
    # download

    def download_problems(self) -> list[str]:
        """Why a download (or an estimate) cannot start now; empty when it can."""
        out = []
        if self.session is None and self.source is None:
            out.append("Not connected.")
        if not self.dataset_id:
            out.append("No dataset selected.")
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
                raise ValueError(_NO_CATALOGUE.format(dataset_id)) from None

        def done(plan: Any) -> None:
            if self.filters == filters and self.dataset_id == dataset_id:
                self.estimate = plan

        return self.run_in_background("estimate", "Estimating from the catalogue…", work, done)

    def start_download(self) -> threading.Thread:
        """Start a background download of the selection (resumable; see :attr:`job`)."""
        where, dataset_id, kwargs = self._download_args()
        if self.job is not None and self.job_state in ("running", "paused", "pending"):
            raise ValueError("A download is already running: pause or cancel it first.")
        output_dir = self.output_dir
        options: dict[str, Any] = {
            "if_exists": self.if_exists,
            "catalog_only": self.catalog_only,
            "workers": self.workers,
        }

        def work() -> Any:
            from ...download import download_dataset

            if not is_object_url(output_dir):
                Path(output_dir).expanduser().mkdir(parents=True, exist_ok=True)
            job = download_dataset(
                dataset_id,
                output_dir,
                **where,
                progress=False,
                background=True,
                **options,
                **kwargs,
            )
            return job

        def done(job: Any) -> None:
            self.job = job

        with self.hold_trait_notifications():
            self.failures = []
            self.failure_count = 0
            self.report_path = ""
            self.progress = None
            self.job_state = "starting"
        return self.run_in_background("download", "Starting the download…", work, done)

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
            self.job_state = _state_name(job.state)

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
            self.progress = job.progress
            self.job_state = _state_name(job.state)

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
            self.set_error("download", job_error_text(event.error))
            self._publish(job, force=True)
        elif isinstance(event, JobFinished | JobCancelled):
            summary = event.summary
            note = str(summary)
            self.set_notice("download", note)
            self._publish(job, force=True)
        elif isinstance(event, JobPaused | JobResumed):
            self._publish(job, force=True)
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

    def refresh_progress(self) -> None:
        """Publish the job's current progress now (the panel calls it on a timer)."""
        if self.job is not None:
            self._publish(self.job, force=True)


def _state_name(state: Any) -> str:
    return str(state) if state is not None else "idle"


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
