"""ItemsPane: beside the map, the items the filters select, and one item's preview.

It shows how many of the dataset's items the filters select (following the shape while it is
drawn), lists the selected items, and details one item: its properties, its assets and a
preview of one of them (a raster quicklook, an image, or the labels drawn on the map). Pick an
item in the list, or click its footprint on the map.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as W

from ._common import StatusLine, esc, msg_html
from .state import ExplorerState
from .state.preview import asset_rows, item_facts

#: Most items the list shows (the count above it says how many are selected).
MAX_LISTED = 500

SELECTED_COLOR = "#1565c0"
LEFT_OUT_COLOR = "#8c8c8c"
PREVIEW_COLOR = "#e65100"
LABEL_COLOR = "#c2185b"


class ItemsPane(W.VBox):  # type: ignore[misc]
    """The selection count, the selected items and the detail pane of one item."""

    def __init__(self, state: ExplorerState) -> None:
        self.state = state
        st = state
        self.count = W.HTML()
        self.status = StatusLine(st, ["items"])
        self.items = W.Select(
            options=[],
            rows=8,
            description="Items",
            tooltip="The items the filters select: pick one to preview it",
            layout=W.Layout(width="100%"),
            style={"description_width": "50px"},
        )
        self.detail_head = W.HTML()
        self.asset = W.Dropdown(
            options=[],
            description="Asset",
            tooltip="The asset to preview",
            layout=W.Layout(width="100%"),
            style={"description_width": "50px"},
        )
        self.preview_status = StatusLine(st, ["preview"])
        self.image = W.Image(format="png", layout=W.Layout(display="none"))
        self.note = W.HTML()
        self.facts = W.HTML()
        self.close_button = W.Button(
            description="Close", icon="times", tooltip="Close the item's detail"
        )
        self.detail = W.VBox(
            [
                self.detail_head,
                self.asset,
                self.preview_status,
                self.image,
                self.note,
                self.facts,
                self.close_button,
            ],
            layout=W.Layout(display="none"),
        )
        for widget, cls in [
            (self.count, "mlhub-item-count"),
            (self.status, "mlhub-items-status"),
            (self.items, "mlhub-item-list"),
            (self.detail, "mlhub-item-detail"),
            (self.detail_head, "mlhub-item-title"),
            (self.asset, "mlhub-preview-asset"),
            (self.preview_status, "mlhub-preview-status"),
            (self.image, "mlhub-quicklook"),
            (self.note, "mlhub-preview-note"),
            (self.facts, "mlhub-item-facts"),
            (self.close_button, "mlhub-close-preview"),
        ]:
            widget.add_class(cls)
        super().__init__(
            [self.count, self.status, self.items, self.detail],
            layout=W.Layout(flex="1 1 300px", min_width="0", max_width="100%"),
        )
        self.add_class("mlhub-items-pane")
        self._syncing = False
        self.items.observe(self._on_pick, names="value")
        self.asset.observe(self._on_asset, names="value")
        self.close_button.on_click(lambda _b: self.state.clear_preview())
        st.observe(self._render_count, names=["item_selection", "item_frame", "dataset_id"])
        st.observe(self._render_list, names=["item_selection", "item_frame"])
        st.observe(self._render_detail, names=["preview_row", "preview_key", "preview"])
        self._render_count()
        self._render_list()
        self._render_detail()

    # -- intent ------------------------------------------------------------------------------
    def _on_pick(self, change: dict[str, Any]) -> None:
        if self._syncing or change["new"] is None:
            return
        self._guard(lambda: self.state.preview_item(int(change["new"])))

    def _on_asset(self, change: dict[str, Any]) -> None:
        st = self.state
        if self._syncing or not change["new"] or st.preview_row < 0:
            return
        if change["new"] != st.preview_key:
            self._guard(lambda: st.preview_item(st.preview_row, change["new"]))

    def _guard(self, action: Any) -> None:
        try:
            action()
        except ValueError as exc:
            self.state.set_error("preview", str(exc))

    # -- rendering -----------------------------------------------------------------------------
    def _render_count(self, _change: object = None) -> None:
        st = self.state
        sel = st.item_selection
        if not st.dataset_id:
            text = '<span class="mlhub-help">Select a dataset to see its items here.</span>'
        elif st.item_frame is None:
            text = ""
        elif sel.problem:
            text = msg_html("warn", sel.problem)
        elif not sel.total:
            text = '<span class="mlhub-help">The dataset has no items to show.</span>'
        else:
            more = " (the first items of the dataset)" if st.items_truncated else ""
            if sel.sketch:
                lead = f"While drawing: <b>{sel.count}</b> of {sel.total} items inside{more}"
            else:
                lead = f"<b>{sel.count}</b> of {sel.total} items selected{more}"
            left = sel.total - sel.count
            text = (
                f'<span class="mlhub-tabular">{lead}</span><br><span class="mlhub-help">'
                f'<b class="mlhub-key" style="border-color:{SELECTED_COLOR}">selected</b> '
                f"(downloaded) · "
                f'<b class="mlhub-key" style="border-color:{LEFT_OUT_COLOR}">left out</b> '
                f"({left}, dimmed)</span>"
            )
        if self.count.value != text:
            self.count.value = text

    def _render_list(self, _change: object = None) -> None:
        st = self.state
        sel = st.item_selection
        if sel.sketch:  # the list follows the finished shape, not every mouse move
            return
        options: list[tuple[str, int]] = []
        for row in sorted(sel.selected)[:MAX_LISTED]:
            record = st.item_record(row)
            if record is None:
                continue
            props = record.get("properties") or {}
            when = str(props.get("datetime") or props.get("start_datetime") or "")[:10]
            options.append((f"{record['id']}" + (f" · {when}" if when else ""), row))
        self._syncing = True
        try:
            keep = st.preview_row if any(v == st.preview_row for _l, v in options) else None
            if list(self.items.options) != options:
                self.items.options = options
            self.items.value = keep
        finally:
            self._syncing = False
        self.items.layout.display = None if options else "none"

    def _render_detail(self, _change: object = None) -> None:
        st = self.state
        record = st.item_record(st.preview_row) if st.preview_row >= 0 else None
        if record is None:
            self.detail.layout.display = "none"
            return
        self.detail.layout.display = None
        props = record.get("properties") or {}
        when = str(props.get("datetime") or props.get("start_datetime") or "")[:10]
        self.detail_head.value = (
            f'<b>{esc(record["id"])}</b><br><span class="mlhub-help">'
            f"{esc(record.get('collection'))}{' · ' + esc(when) if when else ''}</span>"
        )
        rows = asset_rows(record)
        self._syncing = True
        try:
            options = [
                (f"{k} ({kind}{', ' + size if size else ''})", k) for k, kind, _t, size in rows
            ]
            if list(self.asset.options) != options:
                self.asset.options = options
            keys = {r[0] for r in rows}
            self.asset.value = st.preview_key if st.preview_key in keys else None
            listed = any(v == st.preview_row for _l, v in self.items.options)
            if listed and self.items.value != st.preview_row:
                self.items.value = st.preview_row
        finally:
            self._syncing = False
        p = st.preview
        if p is not None and p.kind in ("raster", "image") and p.image:
            with self.image.hold_sync():
                self.image.format = p.image_format
                self.image.value = p.image
            self.image.layout.display = None
        else:
            self.image.layout.display = "none"
        if p is None:
            self.note.value = ""
        elif p.kind == "none":
            self.note.value = msg_html("warn", p.note)
        elif p.kind == "labels":
            self.note.value = (
                f'<b class="mlhub-key" style="border-color:{LABEL_COLOR}">{esc(p.asset_key)}</b> '
                f"drawn on the map: {esc(p.note)}"
            )
        else:
            self.note.value = f'<span class="mlhub-help">{esc(p.asset_key)}: {esc(p.note)}</span>'
        facts = "".join(
            f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in item_facts(record)
        )
        self.facts.value = f'<table class="mlhub-kv">{facts}</table>'
