"""OnDiskPanel: the step after the download — what is on disk, what failed, how to load it.

The tab reads the selected dataset's folder (``{output_dir}/{dataset}``) the way code would
afterwards, with :func:`mlhub_widgets.open_local`: the files of its local catalogue (on the
map: items with files on disk, items with a failed asset, items not downloaded), the assets
that failed (from ``err_report.csv``) with a Retry button that downloads what is missing, the
absolute paths, and the code that loads the dataset (click a path or the code to select it).
"""

from __future__ import annotations

import os
from typing import Any

import ipyleaflet as L
import ipywidgets as W

from ..net.objects.urls import is_object_url
from ._common import StatusLine, css_widget, esc, human_bytes
from .map_view import fit, make_map, outlines_layer, resolve_basemap
from .state import ExplorerState
from .state.on_disk import DiskView, load_snippet

#: Most files listed in the table (the summary counts all of them).
MAX_FILES_SHOWN = 100
ON_DISK_COLOR = "#2e7d32"
FAILED_COLOR = "#c62828"
NOT_DOWNLOADED_COLOR = "#8c8c8c"
EMPTY: dict[str, Any] = {"type": "FeatureCollection", "features": []}


class OnDiskPanel(W.VBox):  # type: ignore[misc]
    """The selected dataset's folder: files, failures, Retry, paths and a loading snippet."""

    def __init__(
        self, state: ExplorerState | None = None, *, basemap: str | None = "default"
    ) -> None:
        self.state = state if state is not None else ExplorerState()
        st = self.state
        self.paths = W.HTML()
        self.summary = W.HTML()
        self.status = StatusLine(st, ["disk", "download"])
        self.refresh_button = W.Button(
            description="Refresh", icon="refresh", tooltip="Read the folder again"
        )
        self.retry_button = W.Button(
            description="Retry failed assets",
            icon="redo",
            tooltip="Download again what is missing: only failed or incomplete files are fetched",
            disabled=True,
            layout=W.Layout(width="auto"),
        )
        self.failed = W.HTML()
        self.map = make_map(resolve_basemap(basemap), height="360px")
        self.files_on_disk = L.GeoJSON(
            data=EMPTY,
            name="Items with files on disk",
            style={"color": ON_DISK_COLOR, "weight": 1.5, "fillOpacity": 0.25},
        )
        self.files_failed = L.GeoJSON(
            data=EMPTY,
            name="Items with a failed asset",
            style={"color": FAILED_COLOR, "weight": 2.5, "fillOpacity": 0.3},
        )
        self.files_missing = L.GeoJSON(
            data=EMPTY,
            name="Items not downloaded",
            style={
                "color": NOT_DOWNLOADED_COLOR,
                "weight": 1,
                "fillOpacity": 0.03,
                "dashArray": "3 3",
            },
        )
        for layer in (outlines_layer(), self.files_missing, self.files_on_disk, self.files_failed):
            self.map.add(layer)
        self.map.add(L.LayersControl(position="topright"))
        self.legend = W.HTML(
            '<span class="mlhub-help">On the map: items with '
            f'<b class="mlhub-key" style="border-color:{ON_DISK_COLOR}">files on disk</b>, with a '
            f'<b class="mlhub-key" style="border-color:{FAILED_COLOR}">failed asset</b>, '
            f'<b class="mlhub-key" style="border-color:{NOT_DOWNLOADED_COLOR}">not downloaded'
            "</b>.</span>"
        )
        self.files = W.HTML()
        self.snippet = W.HTML()
        for widget, cls in [
            (self.paths, "mlhub-disk-paths"),
            (self.summary, "mlhub-disk-summary"),
            (self.status, "mlhub-disk-status"),
            (self.refresh_button, "mlhub-disk-refresh"),
            (self.retry_button, "mlhub-retry"),
            (self.failed, "mlhub-disk-failed"),
            (self.map, "mlhub-disk-map"),
            (self.legend, "mlhub-disk-legend"),
            (self.files, "mlhub-disk-files"),
            (self.snippet, "mlhub-snippet"),
        ]:
            widget.add_class(cls)
        row = W.Layout(flex_flow="row wrap", align_items="center")
        super().__init__(
            [
                css_widget(),
                self.paths,
                self.summary,
                W.HBox([self.refresh_button, self.retry_button], layout=row),
                self.status,
                self.failed,
                self.map,
                self.legend,
                self.files,
                self.snippet,
            ]
        )
        self.add_class("mlhub-on-disk")
        self.add_class("mlhub-panel")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.retry_button.on_click(lambda _b: self._retry())
        st.observe(self._render, names=["disk", "dataset_id", "output_dir"])
        st.observe(self._render_buttons, names=["disk", "job_state", "busy"])
        self._render()

    # -- intent ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the dataset's folder again (in the background)."""
        if self.state.dataset_location() is None:
            self.state.set_error("disk", "Select a dataset first (tab 2).")
        else:
            self.state.refresh_disk()

    def _retry(self) -> None:
        try:
            self.state.retry_download()
        except ValueError as exc:
            self.state.set_error("download", str(exc))

    # -- rendering -----------------------------------------------------------------------------
    def _render_buttons(self, _change: object = None) -> None:
        st = self.state
        disk: DiskView | None = st.disk
        active = st.job_state in ("starting", "pending", "running", "paused", "cancelling")
        failed = disk.failed_count if disk is not None else 0
        with self.hold_sync():
            self.retry_button.disabled = not failed or active or st.is_busy("download")
            self.retry_button.description = (
                f"Retry {failed} failed asset{'s' if failed != 1 else ''}"
                if failed
                else "Retry failed assets"
            )
            self.refresh_button.disabled = st.is_busy("disk")

    def _render(self, _change: object = None) -> None:
        st = self.state
        path = st.dataset_location()
        disk: DiskView | None = st.disk
        if path is None:
            self.paths.value = '<span class="mlhub-help">Select a dataset first (tab 2).</span>'
            for w in (self.summary, self.failed, self.files, self.snippet):
                w.value = ""
            self._draw(None)
            self._render_buttons()
            return
        rows = [("Object store" if is_object_url(path) else "Folder", path)]
        if disk is not None and disk.catalog:
            rows.append(("Catalogue", disk.catalog))
        if disk is not None and disk.report and disk.failed_count:
            rows.append(("Failure report", disk.report))
        self.paths.value = (
            '<table class="mlhub-kv">'
            + "".join(
                f'<tr><th>{esc(k)}</th><td><code class="mlhub-copy">{esc(v)}</code></td></tr>'
                for k, v in rows
            )
            + '</table><span class="mlhub-help">Click a path to select it, then copy it.</span>'
        )
        self.snippet.value = (
            "<b>Load it in Python</b> "
            '<span class="mlhub-help">(click the code to select it)</span>'
            f'<pre class="mlhub-copy mlhub-code">{esc(load_snippet(path))}</pre>'
        )
        if (disk is None or disk.folder != path) and is_object_url(path):
            st.refresh_disk()  # nothing to read: the view says where the files are
            return
        if disk is None or disk.folder != path:
            self.summary.value = (
                '<span class="mlhub-help">Press Refresh to read the folder (it is read after '
                "each download).</span>"
            )
            self.failed.value = self.files.value = ""
            self._draw(None)
        else:
            self._render_disk(disk)
        self._render_buttons()

    def _render_disk(self, disk: DiskView) -> None:
        if disk.note and disk.assets is None:
            self.summary.value = f'<span class="mlhub-help">{esc(disk.note)}</span>'
        else:
            not_downloaded = max(0, disk.missing - disk.failed_count)
            self.summary.value = (
                f"<b>{disk.files}</b> file{'s' if disk.files != 1 else ''} on disk "
                f"({human_bytes(disk.bytes)}) · <b>{disk.failed_count}</b> failed · "
                f"{not_downloaded} not downloaded (not selected, or not yet)"
            )
        if disk.failed_count:
            rows = "".join(
                f"<tr><td><code>{esc(f.collection)}</code></td><td>{esc(f.item)}</td>"
                f"<td>{esc(f.asset_key)}</td><td>{esc(f.reason)}</td></tr>"
                for f in disk.failed
            )
            self.failed.value = (
                f"<b>{disk.failed_count} failed asset{'s' if disk.failed_count != 1 else ''}</b>"
                '<div class="mlhub-scroll"><table class="mlhub-kv"><tr><th>Collection</th>'
                f"<th>Item</th><th>Key</th><th>Reason</th></tr>{rows}</table></div>"
            )
        else:
            self.failed.value = ""
        self.files.value = _files_table(disk)
        self._draw(disk)

    def _draw(self, disk: DiskView | None) -> None:
        if disk is None or disk.assets is None or not len(disk.assets):
            with self.map.hold_sync():
                for layer in (self.files_on_disk, self.files_failed, self.files_missing):
                    layer.data = EMPTY
            return
        failed_items = {(f.collection, f.item) for f in disk.failed}
        groups: dict[str, list[dict[str, Any]]] = {"disk": [], "failed": [], "missing": []}
        frame = disk.assets[disk.assets["item"].notna()]
        for (cid, item), part in frame.groupby(["collection", "item"], sort=False):
            geom = part.geometry.iloc[0]
            if geom is None or geom.is_empty:
                continue
            if (cid, item) in failed_items:
                kind = "failed"
            elif bool(part["present"].any()):
                kind = "disk"
            else:
                kind = "missing"
            groups[kind].append(
                {
                    "type": "Feature",
                    "properties": {"id": str(item), "collection": str(cid)},
                    "geometry": geom.__geo_interface__,
                }
            )
        with self.map.hold_sync():
            self.files_on_disk.data = {"type": "FeatureCollection", "features": groups["disk"]}
            self.files_failed.data = {"type": "FeatureCollection", "features": groups["failed"]}
            self.files_missing.data = {"type": "FeatureCollection", "features": groups["missing"]}
        bounds = frame.geometry.total_bounds
        if len(frame) and all(v == v for v in bounds):  # not NaN
            fit(self.map, tuple(float(v) for v in bounds))  # type: ignore[arg-type]


def _files_table(disk: DiskView) -> str:
    """The files on disk (the first :data:`MAX_FILES_SHOWN`), relative to the folder."""
    frame = disk.assets
    if frame is None or not len(frame):
        return ""
    present = frame[frame["present"] & frame["path"].notna()].drop_duplicates("path")
    if not len(present):
        return (
            '<span class="mlhub-help">No asset file is on disk yet: the Download tab (6) '
            "fetches them.</span>"
        )
    rows = []
    for r in present.head(MAX_FILES_SHOWN).itertuples(index=False):
        rel = os.path.relpath(r.path, disk.folder)
        rows.append(
            f"<tr><td>{esc(r.item or '(collection)')}</td><td>{esc(r.asset)}</td>"
            f"<td><code>{esc(rel)}</code></td></tr>"
        )
    more = (
        f'<span class="mlhub-help">(the first {MAX_FILES_SHOWN} of {len(present)}: '
        "<code>ds.items()</code> has them all)</span>"
        if len(present) > MAX_FILES_SHOWN
        else ""
    )
    return (
        f"<b>Files on disk</b> {more}"
        '<div class="mlhub-scroll"><table class="mlhub-kv mlhub-files"><tr><th>Item</th>'
        f"<th>Key</th><th>File</th></tr>{''.join(rows)}</table></div>"
    )
