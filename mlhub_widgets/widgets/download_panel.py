"""DownloadPanel: options, size estimate, Start/Pause/Resume/Cancel and the live progress."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import ipywidgets as W
import traitlets

from ..net.objects.urls import is_object_url
from ._common import (
    LABEL_STYLE,
    OPTIONS_ERROR,
    StatusLine,
    css_widget,
    esc,
    human_bytes,
    human_duration,
    msg_html,
    options_from_text,
    options_to_text,
)
from .state import ExplorerState, completed_fraction

#: Largest err_report.csv offered as an in-page download link.
MAX_REPORT_LINK_BYTES = 2_000_000

ACTIVE = ("starting", "pending", "running", "paused", "cancelling")


class DownloadPanel(W.VBox):  # type: ignore[misc]
    """Download the selection in the background, with a live, throttled progress view.

    Options: output directory, ``if_exists`` (resume/skip/overwrite), catalogue only, worker
    count. "Estimate" counts the assets and bytes the filters select from the catalogue before
    any asset is fetched. The progress view shows the overall bar, assets and bytes done of
    total, the current rate and ETA, one row per collection, retry and failure counters, and
    the failed assets with their reasons and a link to ``err_report.csv``. Updates arrive from
    the job's thread at most 5 times a second. A failed or cancelled download is resumed with
    Start (``if_exists="resume"`` keeps every complete file). With a Dask scheduler set in the
    Connect tab (:attr:`ExplorerState.cluster`), the summary says where the download runs and,
    once the job reaches the scheduler, links to the Dask dashboard.
    """

    def __init__(self, state: ExplorerState | None = None) -> None:
        self.state = state if state is not None else ExplorerState()
        st = self.state
        self.output_dir = W.Text(
            description="Output directory",
            style=LABEL_STYLE,
            layout=W.Layout(width="min(560px, 100%)"),
        )
        self.output_options = W.Text(
            value=options_to_text(st.output_storage_options),
            description="Storage options",
            placeholder="of the output store, e.g. endpoint=https://… region=eu-west-1",
            tooltip="KEY=VALUE pairs, as mlhub's --output-storage-option; credentials come "
            "from the cloud's environment (AWS_*, GOOGLE_*, AZURE_*)",
            continuous_update=False,
            style=LABEL_STYLE,
            layout=W.Layout(width="min(560px, 100%)"),
        )
        self.if_exists = W.Dropdown(
            options=[
                ("resume: keep complete files, finish partial ones", "resume"),
                ("skip: keep every existing file as it is", "skip"),
                ("overwrite: download every file again", "overwrite"),
            ],
            description="Existing files",
            style=LABEL_STYLE,
            layout=W.Layout(width="min(560px, 100%)"),
        )
        self.catalog_only = W.Checkbox(
            description="Catalogue only (no assets)", indent=False, value=False
        )
        self.workers = W.BoundedIntText(
            min=1,
            max=256,
            description="Workers",
            tooltip="How many files are downloaded at the same time",
            style=LABEL_STYLE,
            layout=W.Layout(width="200px"),
        )
        self._links = [
            traitlets.link((st, "output_dir"), (self.output_dir, "value")),
            traitlets.link((st, "if_exists"), (self.if_exists, "value")),
            traitlets.link((st, "catalog_only"), (self.catalog_only, "value")),
            traitlets.link((st, "workers"), (self.workers, "value")),
        ]
        self.output_where = W.HTML()
        self.selection = W.HTML()
        self.problems = W.HTML()
        self.estimate_button = W.Button(
            description="Estimate",
            icon="calculator",
            tooltip="Count the assets and bytes selected, from the catalogue (no asset is fetched)",
        )
        self.estimate = W.HTML()
        self.start_button = W.Button(description="Start", icon="download", button_style="primary")
        self.pause_button = W.Button(description="Pause", icon="pause")
        self.resume_button = W.Button(description="Resume", icon="play")
        self.cancel_button = W.Button(description="Cancel", icon="stop")
        self.status = StatusLine(st, ["estimate", "download"])
        self.bar = W.FloatProgress(
            value=0.0,
            min=0.0,
            max=1.0,
            description="Progress",
            style=LABEL_STYLE,
            layout=W.Layout(width="min(560px, 100%)"),
        )
        self.percent = W.HTML("")
        self.progress_text = W.HTML()
        self.counters = W.HTML()
        self.per_collection = W.HTML()
        self.failed = W.HTML()
        self.dashboard = W.HTML()
        for widget, cls in [
            (self.output_dir, "mlhub-output-dir"),
            (self.output_where, "mlhub-output-where"),
            (self.output_options, "mlhub-output-storage-options"),
            (self.if_exists, "mlhub-if-exists"),
            (self.catalog_only, "mlhub-catalog-only"),
            (self.workers, "mlhub-workers"),
            (self.selection, "mlhub-selection"),
            (self.problems, "mlhub-download-problems"),
            (self.estimate_button, "mlhub-estimate"),
            (self.estimate, "mlhub-estimate-result"),
            (self.start_button, "mlhub-start"),
            (self.pause_button, "mlhub-pause"),
            (self.resume_button, "mlhub-resume"),
            (self.cancel_button, "mlhub-cancel"),
            (self.status, "mlhub-download-status"),
            (self.bar, "mlhub-progress-bar"),
            (self.percent, "mlhub-progress-percent"),
            (self.progress_text, "mlhub-progress-text"),
            (self.counters, "mlhub-progress-counters"),
            (self.per_collection, "mlhub-progress-collections"),
            (self.failed, "mlhub-failed-assets"),
            (self.dashboard, "mlhub-dask-dashboard"),
        ]:
            widget.add_class(cls)
        row = W.Layout(flex_flow="row wrap", align_items="center")
        super().__init__(
            [
                css_widget(),
                self.selection,
                self.output_dir,
                self.output_where,
                self.output_options,
                self.if_exists,
                W.HBox([self.workers, self.catalog_only], layout=row),
                self.problems,
                W.HBox([self.estimate_button, self.estimate], layout=row),
                W.HBox(
                    [self.start_button, self.pause_button, self.resume_button, self.cancel_button],
                    layout=row,
                ),
                self.status,
                self.dashboard,
                W.HBox([self.bar, self.percent], layout=row),
                self.progress_text,
                self.counters,
                self.per_collection,
                self.failed,
            ]
        )
        self.add_class("mlhub-download")
        self.add_class("mlhub-panel")

        self.estimate_button.on_click(lambda _b: self._guard(self.state.estimate_download))
        self.start_button.on_click(lambda _b: self._guard(self.state.start_download))
        self.pause_button.on_click(lambda _b: self._guard(self.state.pause))
        self.resume_button.on_click(lambda _b: self._guard(self.state.resume))
        self.cancel_button.on_click(lambda _b: self._guard(self.state.cancel))
        st.observe(
            self._render_selection,
            names=[
                "filters",
                "filter_problems",
                "dataset_id",
                "session",
                "detail",
                "availability",
                "cluster",
            ],
        )
        st.observe(self._render_where, names=["output_dir", "dataset_id"])
        st.observe(self._render_output_options, names=["output_storage_options"])
        self.output_options.observe(self._on_output_options, names="value")
        st.observe(self._render_dashboard, names=["dashboard_url"])
        st.observe(self._render_estimate, names=["estimate"])
        st.observe(self._render_buttons, names=["job_state", "busy", "resumable"])
        st.observe(self._render_progress, names=["progress", "job_state"])
        st.observe(self._render_failures, names=["failures", "failure_count", "report_path"])
        self._render_selection()
        self._render_where()
        self._render_estimate()
        self._render_progress()
        self._render_failures()
        self._render_dashboard()

    # -- intent ------------------------------------------------------------------------------
    def _guard(self, action: Any) -> None:
        """Run a state method; a refusal (ValueError) becomes the panel's message."""
        try:
            action()
        except ValueError as exc:
            self.state.set_error("download", str(exc))

    # -- rendering -----------------------------------------------------------------------------
    def _render_selection(self, _change: object = None) -> None:
        st = self.state
        f = st.filters
        title = st.detail.get("title") if st.detail else None
        ds = f"{esc(title)} (<code>{esc(st.dataset_id)}</code>)" if st.dataset_id else "–"
        self.selection.value = (
            '<table class="mlhub-kv">'
            f"<tr><th>Dataset</th><td>{ds}</td></tr>"
            f"<tr><th>Area</th><td>{esc(f.describe_area())}</td></tr>"
            f"<tr><th>Dates</th><td>{esc(f.describe_dates())}</td></tr>"
            f"<tr><th>Content</th><td>{esc(f.describe_content())}</td></tr>"
            f"<tr><th>Runs on</th><td>{_where(st.cluster)}</td></tr></table>"
        )
        problems = st.download_problems()
        if st.metadata_only:
            self.problems.value = msg_html("warn", st.metadata_only)
        elif problems:
            self.problems.value = msg_html("warn", "Cannot download yet: " + " ".join(problems))
        else:
            self.problems.value = ""
        self._render_buttons()

    def _render_dashboard(self, _change: object = None) -> None:
        url = self.state.dashboard_url
        self.dashboard.value = (
            f'Dask dashboard: <a href="{esc(url)}" target="_blank" rel="noopener">{esc(url)}</a>'
            if url
            else ""
        )

    def _on_output_options(self, change: dict[str, Any]) -> None:
        try:
            options = options_from_text(change["new"])
        except ValueError as exc:
            self.state.set_error("download", str(exc))
            return
        if self.state.errors.get("download", "").startswith(OPTIONS_ERROR):
            self.state.set_error("download", None)
        if options != self.state.output_storage_options:
            self.state.output_storage_options = options

    def _render_output_options(self, _change: object = None) -> None:
        text = options_to_text(self.state.output_storage_options)
        if self.output_options.value != text:
            self.output_options.value = text

    def _render_where(self, _change: object = None) -> None:
        """Where the files go: the absolute folder (a relative one is relative to the kernel),
        or the object-store prefix (whose storage options are shown then)."""
        st = self.state
        text = st.output_dir.strip() or "."
        bucket = is_object_url(text)
        self.output_options.layout.display = None if bucket else "none"
        if bucket:
            base = text.rstrip("/")
            target, sep = (f"{base}/{st.dataset_id}" if st.dataset_id else base), "/"
        else:
            try:
                folder = Path(text).expanduser().absolute()
            except (OSError, RuntimeError, ValueError):  # e.g. ~user that does not exist
                self.output_where.value = ""
                return
            target = os.fspath(folder / st.dataset_id if st.dataset_id else folder)
            sep = os.sep
        self.output_where.value = (
            f'<span class="mlhub-help">Files go to <code>{esc(target)}{esc(sep)}</code></span>'
        )

    def _render_estimate(self, _change: object = None) -> None:
        plan = self.state.estimate
        if plan is None:
            self.estimate.value = (
                '<span class="mlhub-help">How much do the filters select? Estimate reads only the '
                "catalogue.</span>"
            )
            return
        size = human_bytes(plan.bytes) + ("" if plan.bytes_exact else " (estimated)")
        per = ", ".join(
            f"{esc(cid)}: {info['assets']} ({human_bytes(info['bytes'])})"
            for cid, info in plan.per_collection.items()
        )
        done = f"; {plan.done} already on disk" if plan.done else ""
        self.estimate.value = (
            f"<b>{plan.assets} assets, {size}</b> from {plan.items_matched} of "
            f"{plan.items_total} items{done}"
            + (f'<br><span class="mlhub-help">{per}</span>' if per else "")
        )

    def _render_buttons(self, _change: object = None) -> None:
        st = self.state
        state = st.job_state
        blocked = bool(st.download_problems())
        with self.hold_sync():
            self.start_button.disabled = blocked or state in ACTIVE or st.is_busy("download")
            self.estimate_button.disabled = blocked or st.is_busy("estimate")
            self.pause_button.disabled = state != "running"
            self.resume_button.disabled = state != "paused"
            self.cancel_button.disabled = state not in ("running", "paused", "pending")
            if state in ("failed", "cancelled") and st.resumable and not blocked:
                self.start_button.description = "Start (resume)"
            else:
                self.start_button.description = "Start"

    def _render_progress(self, _change: object = None) -> None:
        st = self.state
        p = st.progress
        state = st.job_state
        if p is None:
            self.bar.value = 0.0
            self.percent.value = ""
            self.progress_text.value = (
                '<span class="mlhub-help">Starting…</span>'
                if state == "starting"
                else '<span class="mlhub-help">No download yet.</span>'
            )
            self.counters.value = ""
            self.per_collection.value = ""
            return
        fraction = completed_fraction(p, state)
        style = {
            "finished": "success",
            "failed": "danger",
            "paused": "warning",
            "cancelled": "warning",
        }.get(state, "info")
        if p.bytes_total is not None:
            total_bytes = human_bytes(p.bytes_total)
        elif p.bytes_estimate is not None:
            total_bytes = "≈ " + human_bytes(p.bytes_estimate)
        else:
            total_bytes = "?"
        more = "" if p.index_complete else "+ (still reading the catalogue)"
        skipped = f" ({p.assets_skipped} already there)" if p.assets_skipped else ""
        rate = f"{human_bytes(p.rate)}/s" if state == "running" and p.rate > 0 else "–"
        eta = human_duration(p.eta) if state == "running" else "–"
        text = (
            f"<b>{esc(state)}</b> ({esc(p.phase)}) · assets <b>{p.assets_done + p.assets_skipped}"
            f" / {p.assets_total}{more}</b>{skipped} · bytes <b>{human_bytes(p.bytes_done)} / "
            f"{total_bytes}</b> · rate {rate} · ETA {eta} · elapsed {human_duration(p.elapsed)}"
        )
        rows = "".join(
            f"<tr><td><code>{esc(cid)}</code></td><td>{c.done + c.skipped} / {c.total}</td>"
            f"<td>{c.skipped}</td><td>{c.failed}</td></tr>"
            for cid, c in p.per_collection.items()
        )
        table = (
            '<table class="mlhub-kv"><tr><th>Collection</th><th>Assets</th><th>Skipped</th>'
            f"<th>Failed</th></tr>{rows}</table>"
            if rows
            else ""
        )
        with self.hold_sync():
            self.bar.value = fraction
            self.bar.bar_style = style
            self.percent.value = f"<b>{fraction * 100:.0f} %</b>"
            self.progress_text.value = f'<span class="mlhub-tabular">{text}</span>'
            self.counters.value = (
                f"Retries: <b>{p.retries}</b> · Failed assets: <b>{p.assets_failed}</b>"
            )
            self.per_collection.value = table

    def _render_failures(self, _change: object = None) -> None:
        st = self.state
        if not st.failure_count:
            self.failed.value = ""
            return
        rows = "".join(
            f"<tr><td><code>{esc(f.collection)}</code></td><td>{esc(f.item)}</td>"
            f"<td>{esc(f.asset_key)}</td><td>{esc(f.reason)}</td></tr>"
            for f in list(st.failures)
        )
        link = _report_link(st.report_path)
        self.failed.value = (
            f"<details open><summary><b>{st.failure_count} failed asset"
            f"{'s' if st.failure_count != 1 else ''}</b> {link}</summary>"
            '<div style="max-height: 180px; overflow: auto">'
            '<table class="mlhub-kv"><tr><th>Collection</th><th>Item</th><th>Key</th>'
            f"<th>Reason</th></tr>{rows}</table></div></details>"
        )


def _where(cluster: str) -> str:
    """Where a download runs, for the summary table."""
    if not cluster:
        return "this kernel"
    if cluster.startswith("local:"):
        return f"a local Dask cluster of {esc(cluster[6:])} worker processes"
    return f"the Dask cluster at <code>{esc(cluster)}</code>"


def _report_link(path: str) -> str:
    """A link that downloads err_report.csv from the page itself (works in every front end)."""
    if not path:
        return ""
    report = Path(path)
    try:
        data = report.read_bytes() if report.stat().st_size <= MAX_REPORT_LINK_BYTES else None
    except OSError:
        return f"(report: <code>{esc(path)}</code>)"
    where = f"<code>{esc(path)}</code>"
    if data is None:
        return f"(report: {where})"
    uri = "data:text/csv;base64," + base64.b64encode(data).decode("ascii")
    return (
        f'(<a class="mlhub-err-report" href="{uri}" download="err_report.csv">err_report.csv'
        f"</a> — {where})"
    )
