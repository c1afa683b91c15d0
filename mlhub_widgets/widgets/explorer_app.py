"""The explorer: every panel around one :class:`~mlhub_widgets.widgets.state.ExplorerState`."""

from __future__ import annotations

import logging
import os
from typing import Any

import ipywidgets as W

from ._common import css_widget, esc, human_bytes, resend_tree
from .content_filter import ContentFilterPanel
from .date_range import DateRangePanel
from .download_panel import DownloadPanel
from .login import LoginPanel
from .map_filter import MapFilterPanel
from .on_disk import OnDiskPanel
from .search import SearchPanel
from .state import ExplorerState, Filters, completed_fraction

# Library loggers must not print from worker threads (ipykernel 7 routes thread output badly);
# without any handler, Python's last-resort handler would write WARNINGs to stderr.
logging.getLogger("mlhub_widgets").addHandler(logging.NullHandler())

TAB_TITLES = (
    "1 · Connect",
    "2 · Dataset",
    "3 · Area",
    "4 · Dates",
    "5 · Content",
    "6 · Download",
    "7 · On disk",
)
#: The index of the On-disk tab (opening it reads the dataset's folder again).
ON_DISK_TAB = 6


class Explorer(W.VBox):  # type: ignore[misc]
    """The dataset explorer widget returned by :func:`explorer`.

    Attributes:
        state: the shared :class:`~mlhub_widgets.widgets.state.ExplorerState`.
        login, search, map, dates, content, download, on_disk: the panels.
        tabs: the :class:`ipywidgets.Tab` holding them.

    ``filters``, ``dataset`` and ``job`` read and set the state from code; the panels follow.
    """

    def __init__(
        self,
        state: ExplorerState | None = None,
        *,
        demo: bool = False,
        basemap: str | None = "default",
    ) -> None:
        self.state = state if state is not None else ExplorerState()
        st = self.state
        self.login = LoginPanel(st, demo=demo)
        self.search = SearchPanel(st)
        self.map = MapFilterPanel(st, basemap=basemap)
        self.dates = DateRangePanel(st)
        self.content = ContentFilterPanel(st)
        self.download = DownloadPanel(st)
        self.on_disk = OnDiskPanel(st, basemap=basemap)
        self.tabs = W.Tab(
            [
                self.login,
                self.search,
                self.map,
                self.dates,
                self.content,
                self.download,
                self.on_disk,
            ],
            titles=TAB_TITLES,
        )
        self.tabs.add_class("mlhub-tabs")
        self.summary = W.HTML()
        self.summary.add_class("mlhub-summary")
        super().__init__([css_widget(), self.summary, self.tabs])
        self.add_class("mlhub-explorer")
        st.observe(
            self._render_summary,
            names=["connection", "dataset_id", "detail", "filters", "job_state", "progress"],
        )
        st.observe(self._on_session, names=["session", "source"])
        self.tabs.observe(self._on_tab, names="selected_index")
        self._render_summary()
        # The map's front end reports the page's URL when it first renders: the page has
        # loaded every widget by then, so updates it may have lost meanwhile are sent again.
        self._front_end_seen = False
        self.map.map.observe(self._on_front_end, names="window_url")

    def _on_front_end(self, _change: object = None) -> None:
        if not self._front_end_seen:
            self._front_end_seen = True
            resend_tree(self)

    # -- code access ---------------------------------------------------------------------------
    @property
    def filters(self) -> Filters:
        """The current :class:`~mlhub_widgets.widgets.state.Filters` (settable; a dict too)."""
        value: Filters = self.state.filters
        return value

    @filters.setter
    def filters(self, value: Filters | dict[str, Any]) -> None:
        self.state.set_trait("filters", value)

    @property
    def dataset(self) -> str | None:
        """The selected dataset id (settable)."""
        value: str | None = self.state.dataset_id
        return value

    @dataset.setter
    def dataset(self, dataset_id: str | None) -> None:
        self.state.select_dataset(dataset_id)

    @property
    def job(self) -> Any:
        """The current :class:`~mlhub_widgets.download.DownloadJob` (settable: the panel follows
        a job started from code)."""
        return self.state.job

    @job.setter
    def job(self, job: Any) -> None:
        self.state.job = job

    # -- rendering -----------------------------------------------------------------------------
    def _on_session(self, change: dict[str, Any]) -> None:
        if change["old"] is None and change["new"] is not None and self.tabs.selected_index == 0:
            self.tabs.selected_index = 1

    def _on_tab(self, change: dict[str, Any]) -> None:
        if change["new"] == ON_DISK_TAB and self.state.dataset_id:
            self.state.refresh_disk()

    def _render_summary(self, _change: object = None) -> None:
        st = self.state
        conn = esc(st.connection) if st.connection else "not connected"
        ds = "no dataset selected"
        if st.dataset_id:
            title = st.detail.get("title") if st.detail else None
            ds = f"<b>{esc(title or st.dataset_id)}</b>"
        job = ""
        p = st.progress
        if st.job_state not in ("idle",) and p is not None:
            done = completed_fraction(p, st.job_state)
            job = (
                f" · download {esc(st.job_state)} {done * 100:.0f} % ({human_bytes(p.bytes_done)})"
            )
        self.summary.value = (
            f'<div><b>MLHub explorer</b> · <span class="mlhub-help">{conn}</span></div>'
            f"<div>{ds} · {esc(st.filters.describe())}{job}</div>"
        )


def explorer(
    session: Any = None,
    *,
    dataset: str | None = None,
    output_dir: str = ".",
    demo: bool = False,
    basemap: str | None = "default",
    source: Any = None,
) -> Explorer:
    """Open the dataset explorer: log in, find a dataset, filter it, download it.

    Args:
        session: an :class:`~mlhub_widgets.Session` to use. Without one the explorer connects
            with the configured key/profile/``MLHUB_ROOT_URL`` (or, with ``demo=True``, to the
            bundled demo hub started in this kernel); problems show in the Connect tab.
        dataset: a dataset id to select once connected.
        output_dir: where downloads go (``MLHUB_OUTPUT_DIR`` overrides the default ``"."``).
        demo: use the bundled demo hub (offline, no key).
        basemap: ``"osm"``, ``"imagery"``, ``None``/``"none"`` or a tile URL template
            (default: ``MLHUB_BASEMAP`` or ``"osm"``); country outlines are always drawn, and
            the Area tab can switch basemaps.
        source: a static STAC catalogue (folder, path or URL), a STAC API URL or a
            :class:`~mlhub_widgets.sources.Source` to explore instead of an MLHub API.

    Returns:
        The :class:`Explorer` widget (display it, or let the notebook display it). Its
        ``state``, ``filters``, ``dataset`` and ``job`` can be used from code.
    """
    if output_dir == ".":
        output_dir = os.environ.get("MLHUB_OUTPUT_DIR", ".")
    state = ExplorerState(session=session, output_dir=output_dir)
    ex = Explorer(state, demo=demo, basemap=basemap)
    if dataset:
        _select_when_connected(state, dataset)
    if source is not None:
        state.connect_source(source)
    elif session is not None:
        state.load_tags()
        state.search()
        ex.tabs.selected_index = 1
    else:
        state.connect(demo=demo)
    return ex


def _select_when_connected(state: ExplorerState, dataset_id: str) -> None:
    if state.session is not None or state.source is not None:
        state.select_dataset(dataset_id)
        return

    def on_session(change: dict[str, Any]) -> None:
        if change["new"] is not None:
            state.unobserve(on_session, names=["session", "source"])
            state.select_dataset(dataset_id)

    state.observe(on_session, names=["session", "source"])
