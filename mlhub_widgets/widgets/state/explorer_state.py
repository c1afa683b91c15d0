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
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import traitlets
from traitlets import Bool, Dict, Int, List, Unicode, observe, validate

from ...exceptions import EntityDoesNotExist, MLHubException
from ...types import DateBound, IntersectsLike

if TYPE_CHECKING:
    from ...config.session import Session

from . import availability
from .details import dataset_detail, dataset_footprint, temporal_extent
from .downloads import Downloads
from .errors import friendly_error, metadata_only_reason
from .export import export_format, selection_items, write_selection
from .filters import Filters
from .map_items import MapItems
from .on_disk import OnDiskFiles

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The kinds of background work, each with its own busy flag and error message.
AREAS = (
    "login",
    "profiles",
    "tags",
    "search",
    "availability",
    "dataset",
    "assets",
    "estimate",
    "download",
    "export",
    "items",
    "preview",
    "disk",
    "tiles",
)


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


class ExplorerState(MapItems, OnDiskFiles, Downloads):
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
    storage_options = Dict(
        help="options of the object stores the source is read from (endpoint, region, "
        "skip_signature for public buckets...; see mlhub_widgets.net.objects)"
    )
    # -- export --------------------------------------------------------------------------------
    export_path = Unicode("", help="the file the last export_selection() wrote")

    def __init__(self, session: Session | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # where selecting a dataset reads its catalogue to list the asset keys: browsing
        # writes nothing into the download folder (removed with the state or at exit)
        self._scratch = tempfile.TemporaryDirectory(prefix="mlhub-explorer-")
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
                count = len(frame)
                if count:
                    # Listing datasets is public; the catalogue is not. Ask for one catalogue's
                    # info so a missing or wrong key shows up now (401), not at the first
                    # download.
                    from ...mlhub.client import get_catalog_info

                    with contextlib.suppress(EntityDoesNotExist):
                        get_catalog_info(str(frame["id"].iloc[0]), session=probe)
            except EntityDoesNotExist:
                raise ValueError(
                    f"No MLHub API at {probe.root_url}. Check the root URL (it must be the API "
                    "root, e.g. https://…/mlhub/v1/)."
                ) from None
            except MLHubException as exc:
                raise ValueError(
                    friendly_error(exc, url=probe.root_url, key_sent=not probe.anonymous)
                ) from None
            session = get_session(api_key=api_key or None, profile=prof, root_url=root)
            server = f"the bundled demo hub at {session.root_url}" if demo else ""
            return session, count, server

        def done(result: tuple[Session, int, str]) -> None:
            session, count, server = result
            with self.hold_trait_notifications():
                self.source = None
                self.has_tags = True
                self.availability = {}
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
                self.availability = {}
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
            self.availability = {}

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
            self._check_availability(frame)

        return self.run_in_background("search", "Searching datasets…", work, done)

    def _check_availability(self, frame: Any) -> None:
        """Fill :attr:`availability` for the results: from their records, else by asking the
        server about each dataset not known yet (in the background)."""
        known, ask = availability.from_results(frame, stac_source=self.source is not None)
        if known:
            # reasons found meanwhile (a catalogue that answered 404) stay
            self.availability = {**known, **{i: r for i, r in self.availability.items() if r}}
        ask = [i for i in ask if i not in self.availability]
        session = self.session
        if not ask or session is None:
            return

        def work() -> dict[str, str]:
            return availability.probe_all(ask, session)

        def done(found: dict[str, str]) -> None:
            if self.session is session:
                self.availability = {**self.availability, **found}

        self.run_in_background(
            "availability", "Checking which datasets can be downloaded…", work, done
        )

    @property
    def metadata_only(self) -> str:
        """Why the selected dataset cannot be downloaded ("" when it can, or is not known)."""
        if not self.dataset_id:
            return ""
        return str(self.availability.get(self.dataset_id) or "")

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
            self.disk = None
        self._clear_items()
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
        reason = self.availability.get(new)
        if reason:  # metadata only: there is no catalogue to read
            with self._lock:
                self._generation["assets"] = self._generation.get("assets", 0) + 1
            self._set_area("busy", "assets", None)
            self.set_error("assets", reason)
        else:
            self._load_asset_keys(new)

    def _load_dataset(self, dataset_id: str) -> None:
        where = self._where()

        def work() -> tuple[Any, Any, dict[str, Any], str | None]:
            from ... import discovery
            from ...mlhub.dataset import Dataset

            src = where.get("source")
            if src is not None:
                dataset = Dataset.from_dict(src.get_dataset(dataset_id))
                dataset._catalog_info = {}  # no catalogue archive: sizes are unknown
                collections = discovery.collections(dataset_id, source=src)
                return dataset, collections, dataset_detail(dataset, collections), ""
            session = where["session"]
            dataset = Dataset.fetch(dataset_id, session=session)
            reason = availability.from_record(dataset.raw)
            if reason is not None:
                dataset._catalog_info = {}  # metadata only: no catalogue, no sizes
            else:
                # the catalogue's info gives its sizes (for the detail) and says whether there
                # is a catalogue at all (404: metadata only)
                reason = availability.probe(dataset_id, session)
                if reason:
                    dataset._catalog_info = {}
            collections = discovery.collections(dataset=dataset, session=session)
            detail = dataset_detail(dataset, collections)
            detail["metadata_only_reason"] = reason or ""
            return dataset, collections, detail, reason

        def done(result: tuple[Any, Any, dict[str, Any], str | None]) -> None:
            dataset, collections, detail, reason = result
            if reason is not None:
                self._set_availability(dataset_id, reason)
            with self.hold_trait_notifications():
                self.dataset = dataset
                self.detail = detail
                self.collections = collections
                self.footprint = dataset_footprint(self.results, dataset_id, collections)
                self.temporal_extent = temporal_extent(collections)
            self.load_items()

        self.run_in_background("dataset", f"Loading {dataset_id}…", work, done)

    def _load_asset_keys(self, dataset_id: str) -> None:
        where = self._where()
        output_dir = self._scratch.name

        def work() -> dict[str, list[str]]:
            from ...download import plan_download

            try:
                plan = plan_download(dataset_id, output_dir, **where)
            except EntityDoesNotExist:
                self._set_availability(dataset_id, metadata_only_reason(dataset_id))
                raise ValueError(metadata_only_reason(dataset_id)) from None
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
    # export (see .export: the selection as STAC)

    def selection_collections(self) -> list[str]:
        """The collections of the selection: the content filter's, else all of the dataset's.

        Raises:
            ValueError: no dataset is selected, or its collections are still loading.
        """
        if not self.dataset_id:
            raise ValueError("No dataset selected.")
        cf = self.filters.collection_filter
        if self.collections is None:
            if cf:
                return sorted(cf)
            raise ValueError("The dataset's collections are still loading.")
        ids = [str(c) for c in self.collections["id"]]
        return [c for c in ids if c in cf] if cf else ids

    def selection_item_collection(self, limit: int | None = None) -> Any:
        """The items of the selection as a :class:`pystac.ItemCollection` (items kept whole).

        Runs in the calling thread (for code and tests; a panel calls
        :meth:`export_selection`). ``limit`` caps the items per collection.

        Raises:
            ValueError: nothing to export (see :meth:`download_problems`).
        """
        where, cids, filters = self._export_args()
        return selection_items(where, cids, filters, limit)

    def export_selection(self, path: str | os.PathLike[str], fmt: str | None = None) -> Any:
        """Write the selection's items to ``path`` in the background: stac-geoparquet
        (``.parquet``) or a GeoJSON FeatureCollection (``.geojson``), or as ``fmt`` says.

        Sets :attr:`export_path` and a notice when done; a failure is in ``errors["export"]``.
        Returns the worker thread.

        Raises:
            ValueError: unknown format, or nothing to export (raised at once).
        """
        kind = export_format(path, fmt)
        where, cids, filters = self._export_args()

        def work() -> tuple[Path, int]:
            found = selection_items(where, cids, filters)
            return write_selection(found, path, kind), len(found)

        def done(result: tuple[Path, int]) -> None:
            written, count = result
            self.export_path = str(written)
            self.set_notice("export", f"{count} items written to {written}")

        return self.run_in_background("export", "Exporting the selection…", work, done)

    def _export_args(self) -> tuple[dict[str, Any], list[str], Filters]:
        problems = self.download_problems()
        if problems:
            raise ValueError(" ".join(problems))
        return self._where(), self.selection_collections(), self.filters
