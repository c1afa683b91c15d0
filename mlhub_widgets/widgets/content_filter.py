"""ContentFilterPanel: per collection, the asset keys to download (the ``collection_filter``)."""

from __future__ import annotations

from typing import Any

import ipywidgets as W

from ._common import Retired, StatusLine, css_widget, esc, msg_html
from .state import ExplorerState, Filters


class ContentFilterPanel(W.VBox):  # type: ignore[misc]
    """Checkboxes of the asset keys each collection of the selected dataset offers.

    The keys come from the dataset's catalogue (``plan_download(...).asset_keys``, read in the
    background when a dataset is selected). Everything ticked means no collection filter; a
    collection with no key ticked is left out; ticking nothing at all is reported as a problem
    (it would select nothing).
    """

    def __init__(self, state: ExplorerState | None = None) -> None:
        self.state = state if state is not None else ExplorerState()
        st = self.state
        self._syncing = False
        self.boxes: dict[tuple[str, str], W.Checkbox] = {}
        self._retired = Retired()  # replaced collection groups, closed a little later
        self.intro = W.HTML()
        self.status = StatusLine(st, ["assets"])
        self.collections = W.Box(layout=W.Layout(flex_flow="row wrap", align_items="flex-start"))
        self.all_button = W.Button(description="Select all", icon="check-square")
        self.none_button = W.Button(description="Select none", icon="square")
        self.readout = W.HTML()
        self.message = W.HTML()
        for widget, cls in [
            (self.status, "mlhub-content-status"),
            (self.collections, "mlhub-collections-box"),
            (self.all_button, "mlhub-select-all-keys"),
            (self.none_button, "mlhub-select-no-keys"),
            (self.readout, "mlhub-content-readout"),
            (self.message, "mlhub-content-message"),
        ]:
            widget.add_class(cls)
        super().__init__(
            [
                css_widget(),
                self.intro,
                self.status,
                W.HBox([self.all_button, self.none_button]),
                self.collections,
                self.readout,
                self.message,
            ]
        )
        self.add_class("mlhub-content")
        self.add_class("mlhub-panel")
        self.all_button.on_click(lambda _b: self.state.set_collection_filter(None))
        self.none_button.on_click(lambda _b: self.state.set_collection_filter({}))
        st.observe(self._render_keys, names=["asset_keys", "collections"])
        st.observe(self._render_filters, names=["filters", "filter_problems"])
        self._render_keys()

    def checkbox(self, collection_id: str, asset_key: str) -> W.Checkbox:
        """The checkbox of one asset key (for code and tests)."""
        return self.boxes[(collection_id, asset_key)]

    # -- intent ------------------------------------------------------------------------------
    def _on_box(self, _change: object = None) -> None:
        if self._syncing:
            return
        keys = self.state.asset_keys
        cf: dict[str, list[str]] = {}
        everything = True
        for cid, all_keys in keys.items():
            ticked = [k for k in all_keys if self.boxes[(cid, k)].value]
            if len(ticked) != len(all_keys):
                everything = False
            if ticked:
                cf[cid] = [] if len(ticked) == len(all_keys) else ticked
        self.state.set_collection_filter(None if everything else cf)

    # -- rendering -----------------------------------------------------------------------------
    def _render_keys(self, _change: object = None) -> None:
        st = self.state
        keys: dict[str, list[str]] = st.asset_keys
        types = _types(st.collections)
        old = list(self.collections.children)
        self.boxes = {}
        groups = []
        for cid, all_keys in keys.items():
            kind = ", ".join(t.replace("_", " ") for t in types.get(cid, [])) or "collection"
            header = W.HTML(f"<b>{esc(cid)}</b><br><span class='mlhub-help'>{esc(kind)}</span>")
            checks = []
            for key in all_keys:
                box = W.Checkbox(value=True, description=key, indent=False)
                box.add_class("mlhub-asset-key")
                box.observe(self._on_box, names="value")
                self.boxes[(cid, key)] = box
                checks.append(box)
            group = W.VBox([header, *checks])
            group.add_class("mlhub-collection-box")
            groups.append(group)
        self.collections.children = groups
        self._retired.add(old)
        if not st.dataset_id:
            self.intro.value = '<span class="mlhub-help">Select a dataset first.</span>'
        elif keys:
            self.intro.value = (
                '<span class="mlhub-help">Untick the asset keys you do not want. A collection '
                "with no key ticked is not downloaded.</span>"
            )
        else:
            self.intro.value = ""
        self.all_button.disabled = self.none_button.disabled = not keys
        self._render_filters()

    def _render_filters(self, _change: object = None) -> None:
        f: Filters = self.state.filters
        cf = f.collection_filter
        self._syncing = True
        try:
            for (cid, key), box in self.boxes.items():
                want = cf is None or (cid in cf and (not cf[cid] or key in cf[cid]))
                if box.value != want:
                    box.value = want
        finally:
            self._syncing = False
        self.readout.value = f"Content filter: <b>{esc(f.describe_content())}</b>"
        problems = [p for p in self.state.filter_problems if "asset key" in p]
        self.message.value = "<br>".join(msg_html("error", p) for p in problems)


def _types(frame: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if frame is None:
        return out
    for row in frame.itertuples(index=False):
        types = row.types if isinstance(row.types, list) else []
        out[str(row.id)] = [str(t) for t in types]
    return out
