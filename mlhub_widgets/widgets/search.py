"""SearchPanel: tags and free text → a sortable results table → the selected dataset's details."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as W

from ._common import LABEL_STYLE, Retired, StatusLine, css_widget, esc, human_bytes
from .state import ExplorerState

#: Most rows the table renders (the count above it says how many matched).
MAX_ROWS = 200

#: (key, header) of the results table's columns; their widths are in ``_common.CSS``
#: (``.mlhub-results``): a narrow explorer (JupyterLab's default layout) keeps only the title,
#: tag and download columns, whose cells wrap rather than clip.
COLUMNS: list[tuple[str, str]] = [
    ("title", "Title"),
    ("tags", "Tags"),
    ("collections", "Collections"),
    ("license", "Licence"),
    ("date", "Added"),
    ("download", "Download"),
]
#: What the download column says (and its tooltip) for each availability.
BADGES = {
    "yes": ("downloadable", "The server has this dataset's catalogue: it can be downloaded."),
    "no": ("metadata only", ""),  # the tooltip is the reason
    "unknown": ("checking…", "Asking the server whether it has the catalogue"),
}


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def _list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list | tuple) else []


def result_rows(frame: Any) -> list[dict[str, Any]]:
    """Plain rows (id, title, tags, source/label collections, licence, date) of a results frame."""
    rows: list[dict[str, Any]] = []
    if frame is None:
        return rows
    for r in frame.itertuples(index=False):
        added = getattr(r, "date_added", None)
        date = "" if added is None or _text(added) in ("", "NaT") else str(added)[:10]
        rows.append(
            {
                "id": str(r.id),
                "title": _text(r.title) or str(r.id),
                "tags": _list(r.tags),
                "source": _list(r.source_collections),
                "labels": _list(r.label_collections),
                "license": _text(r.license),
                "date": date,
            }
        )
    return rows


def row_matches(row: dict[str, Any], text: str) -> bool:
    """True when ``text`` (any case) is in the row's id, title, tags, collections or licence."""
    needle = text.strip().casefold()
    if not needle:
        return True
    hay = " ".join(
        [row["id"], row["title"], *row["tags"], *row["source"], *row["labels"], row["license"]]
    )
    return needle in hay.casefold()


def badge_html(reason: str | None) -> str:
    """The download column's chip for an availability (None: not known yet)."""
    kind = "unknown" if reason is None else ("no" if reason else "yes")
    label, tip = BADGES[kind]
    return (
        f'<span class="mlhub-badge mlhub-badge-{kind}" title="{esc(reason or tip)}">'
        f"{esc(label)}</span>"
    )


SORT_KEYS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "title": lambda r: r["title"].casefold(),
    "tags": lambda r: ", ".join(r["tags"]).casefold(),
    "collections": lambda r: len(r["source"]) + len(r["labels"]),
    "license": lambda r: r["license"].casefold(),
    "date": lambda r: r["date"],
    "download": lambda r: r["id"],  # replaced per sort by the availability (see sort_by)
}


class SearchPanel(W.VBox):  # type: ignore[misc]
    """Find a dataset by tags (all must match) and free text (a phrase, as the API matches it).

    Results are a sortable, scrollable table whose rows a filter box narrows down as you type;
    its title buttons select the dataset for the whole explorer (``state.dataset_id``), and its
    last column says whether each dataset can be downloaded or is metadata only. Below, the
    detail view shows the selected dataset's description, citation, DOI and registry link, its
    collections by type with their periods and licences, and its catalogue and estimated
    dataset sizes.
    """

    def __init__(self, state: ExplorerState | None = None) -> None:
        self.state = state if state is not None else ExplorerState()
        st = self.state
        self._sort_key = "title"
        self._ascending = True
        self._rows: list[dict[str, Any]] = []
        self._row_cells: dict[str, list[W.Widget]] = {}
        self._badges: dict[str, W.HTML] = {}
        self._retired = Retired()  # replaced rows, closed a little later
        self._syncing = False

        self.tags = W.SelectMultiple(
            options=[],
            description="Tags (all)",
            rows=7,
            style=LABEL_STYLE,
            layout=W.Layout(width="min(420px, 100%)"),
        )
        self.text = W.Text(
            description="Text",
            placeholder="a phrase in the title or description, e.g. marine debris",
            continuous_update=False,
            style=LABEL_STYLE,
            layout=W.Layout(width="min(420px, 100%)"),
        )
        self.tags_hint = W.HTML(
            '<span class="mlhub-help">Ctrl-click (⌘-click on a Mac) or Shift-click selects '
            "several tags; a dataset must have all of them.</span>"
        )
        self.row_filter = W.Text(
            placeholder="filter the rows: title, id, tag, collection or licence",
            description="Filter rows",
            continuous_update=True,
            style=LABEL_STYLE,
            layout=W.Layout(width="min(420px, 100%)"),
        )
        self.search_button = W.Button(description="Search", icon="search", button_style="primary")
        self.clear_button = W.Button(description="Clear", icon="times", tooltip="All datasets")
        self.count = W.HTML()
        self.status = StatusLine(st, ["tags", "search"])
        self.header = [
            W.Button(
                description=label,
                tooltip=f"Sort by {label.lower()}",
                layout=W.Layout(width="100%"),
            )
            for _k, label in COLUMNS
        ]
        for button, (key, _label) in zip(self.header, COLUMNS, strict=True):
            button.add_class("mlhub-sort-button")
            button.add_class(f"mlhub-sort-{key}")
            button.add_class(f"mlhub-col-{key}")
            button.on_click(lambda _b, key=key: self.sort_by(key))
        self.table = W.GridBox(layout=W.Layout(grid_gap="0px", width="100%"))
        self.table.add_class("mlhub-results")
        self.table_wrap = W.Box(
            [self.table],
            layout=W.Layout(max_height="300px", overflow="auto", width="100%"),
        )
        self.table_wrap.add_class("mlhub-table-wrap")
        self.detail = W.HTML()
        self.detail_status = StatusLine(st, ["dataset"])
        for widget, cls in [
            (self.tags, "mlhub-tags"),
            (self.tags_hint, "mlhub-tags-hint"),
            (self.row_filter, "mlhub-row-filter"),
            (self.text, "mlhub-text"),
            (self.search_button, "mlhub-search"),
            (self.clear_button, "mlhub-clear-search"),
            (self.count, "mlhub-result-count"),
            (self.status, "mlhub-search-status"),
            (self.detail, "mlhub-detail"),
            (self.detail_status, "mlhub-detail-status"),
        ]:
            widget.add_class(cls)

        super().__init__(
            [
                css_widget(),
                W.HBox(
                    [
                        W.VBox([self.tags, self.tags_hint], layout=W.Layout(max_width="100%")),
                        W.VBox(
                            [
                                self.text,
                                W.HBox([self.search_button, self.clear_button]),
                                self.status,
                            ],
                            layout=W.Layout(width="min(440px, 100%)"),
                        ),
                    ],
                    layout=W.Layout(flex_flow="row wrap"),
                ),
                self.count,
                self.row_filter,
                self.table_wrap,
                self.detail_status,
                self.detail,
            ]
        )
        self.add_class("mlhub-search-panel")
        self.add_class("mlhub-panel")

        self.search_button.on_click(lambda _b: self._search())
        self.clear_button.on_click(lambda _b: self._clear())
        self.tags.observe(self._on_query, names="value")
        self.text.observe(self._on_query, names="value")
        st.observe(self._render_tags, names=["tags", "has_tags"])
        st.observe(self._render_query, names=["search_tags", "search_text"])
        st.observe(self._render_results, names="results")
        st.observe(self._render_badges, names="availability")
        self.row_filter.observe(lambda _c: self._render_table(), names="value")
        st.observe(self._render_selection, names="dataset_id")
        st.observe(self._render_detail, names=["detail", "dataset_id"])
        self._render_tags()
        self._render_query()
        self._render_results()
        self._render_detail()

    # -- intent ------------------------------------------------------------------------------
    def _search(self) -> None:
        if self.state.session is None and self.state.source is None:
            self.state.set_error("search", "Not connected: test a connection first.")
            return
        self.state.search(tags=list(self.tags.value), text=self.text.value)

    def _clear(self) -> None:
        self._syncing = True
        try:
            self.tags.value = ()
            self.text.value = ""
        finally:
            self._syncing = False
        self._search()

    def _on_query(self, _change: object = None) -> None:
        if not self._syncing:
            self._search()

    def sort_by(self, key: str, ascending: bool | None = None) -> None:
        """Sort the table by a column (``title``, ``tags``, ``collections``, ``license``,
        ``date``); clicking the same header again reverses the order."""
        if ascending is None:
            ascending = not self._ascending if key == self._sort_key else key != "date"
        self._sort_key, self._ascending = key, ascending
        self._render_table()

    def _sort_value(self, row: dict[str, Any]) -> Any:
        if self._sort_key == "download":
            reason = self.state.availability.get(row["id"])
            return (0 if reason == "" else 1 if reason is None else 2, row["title"].casefold())
        return SORT_KEYS[self._sort_key](row)

    def select(self, dataset_id: str | None) -> None:
        """Select a dataset (as clicking its title does)."""
        self.state.select_dataset(dataset_id)

    # -- rendering -----------------------------------------------------------------------------
    def _render_tags(self, _change: object = None) -> None:
        tags = list(self.state.tags)
        options = [(f"{tag} ({n})", tag) for tag, n in tags]
        # Plain STAC sources have no curated tags: the list filters by keywords instead, and
        # disappears when the datasets have none either.
        has_tags = self.state.has_tags
        self.tags.description = "Tags (all)" if has_tags else "Keywords (all)"
        self.tags.layout.display = None if has_tags or options else "none"
        self._syncing = True
        try:
            keep = tuple(v for v in self.tags.value if any(v == t for _l, t in options))
            with self.tags.hold_trait_notifications():
                self.tags.options = options
                self.tags.value = keep or tuple(
                    t for t in self.state.search_tags if any(t == o for _l, o in options)
                )
        finally:
            self._syncing = False

    def _render_query(self, _change: object = None) -> None:
        self._syncing = True
        try:
            known = {t for _l, t in self.tags.options}
            wanted = tuple(t for t in self.state.search_tags if t in known)
            if tuple(self.tags.value) != wanted and known:
                self.tags.value = wanted
            if self.text.value != self.state.search_text:
                self.text.value = self.state.search_text
        finally:
            self._syncing = False

    def _render_results(self, _change: object = None) -> None:
        self._rows = result_rows(self.state.results)
        n = len(self._rows)
        self._render_table()  # rows first: once the count changes, the new rows are there
        if self.state.results is None:
            self.count.value = '<span class="mlhub-help">Connect to list datasets.</span>'
        elif n == 0:
            self.count.value = (
                "<b>No dataset</b> matches. "
                '<span class="mlhub-help">Choose other tags or text, or press Clear.</span>'
            )
        else:
            shown = f" (showing the first {MAX_ROWS}; refine the search)" if n > MAX_ROWS else ""
            self.count.value = (
                f"<b>{n}</b> dataset{'s' if n != 1 else ''} found{shown}. "
                '<span class="mlhub-help">Click a title to select the dataset.</span>'
            )

    def _render_table(self) -> None:
        wanted = self.row_filter.value
        rows = [r for r in self._rows if row_matches(r, wanted)]
        rows.sort(key=self._sort_value, reverse=not self._ascending)
        self.table_wrap.layout.display = None if self._rows else "none"
        self.row_filter.layout.display = None if len(self._rows) > 1 else "none"
        for button, (key, label) in zip(self.header, COLUMNS, strict=True):
            arrow = (" ▲" if self._ascending else " ▼") if key == self._sort_key else ""
            button.description = label + arrow
        old = list(self.table.children)
        cells: list[W.Widget] = list(self.header)
        self._row_cells = {}
        self._badges = {}
        if self._rows and not rows:
            empty = W.HTML(
                f'<span class="mlhub-help">No row matches “{esc(wanted.strip())}”.</span>'
            )
            empty.add_class("mlhub-cell")
            empty.add_class("mlhub-no-rows")
            cells.append(empty)
        for i, row in enumerate(rows[:MAX_ROWS]):
            title = W.Button(
                description=row["title"],
                tooltip=f"Select {row['id']}",
                layout=W.Layout(width="100%"),
            )
            title.add_class("mlhub-title-button")
            title.add_class("mlhub-cell")
            title.on_click(lambda _b, ds=row["id"]: self.select(ds))
            chips = "".join(f'<span class="mlhub-chip">{esc(t)}</span>' for t in row["tags"])
            colls = []
            if row["source"]:
                colls.append(f"{len(row['source'])} source imagery")
            if row["labels"]:
                colls.append(f"{len(row['labels'])} labels")
            names = esc(", ".join(row["source"] + row["labels"]))
            badge = W.HTML(badge_html(self.state.availability.get(row["id"])))
            row_cells = [
                title,
                W.HTML(chips),
                W.HTML(f'<span title="{names}">{esc(", ".join(colls)) or "–"}</span>'),
                W.HTML(esc(row["license"]) or "–"),
                W.HTML(esc(row["date"]) or "–"),
                badge,
            ]
            for cell, (key, _label) in zip(row_cells, COLUMNS, strict=True):
                cell.add_class("mlhub-cell")
                cell.add_class(f"mlhub-col-{key}")
                if i % 2:
                    cell.add_class("mlhub-row-odd")
            self._row_cells[row["id"]] = row_cells
            self._badges[row["id"]] = badge
            cells.extend(row_cells)
        self.table.children = cells
        self._retired.add(w for w in old if w not in self.header)
        self._render_selection()

    def _render_badges(self, _change: object = None) -> None:
        availability = self.state.availability
        for ds, badge in self._badges.items():
            value = badge_html(availability.get(ds))
            if badge.value != value:
                badge.value = value
        if self._sort_key == "download":
            self._render_table()

    def _render_selection(self, _change: object = None) -> None:
        selected = self.state.dataset_id
        for ds, row_cells in self._row_cells.items():
            on = ds == selected
            for cell in row_cells:
                has = "mlhub-row-selected" in cell._dom_classes
                if on and not has:
                    cell.add_class("mlhub-row-selected")
                elif has and not on:
                    cell.remove_class("mlhub-row-selected")
            row_cells[0].button_style = "info" if on else ""

    def _render_detail(self, _change: object = None) -> None:
        st = self.state
        d = st.detail
        if not st.dataset_id:
            self.detail.value = '<span class="mlhub-help">No dataset selected.</span>'
            return
        if not d or d.get("id") != st.dataset_id:
            self.detail.value = f"<h3>{esc(st.dataset_id)}</h3>"
            return
        self.detail.value = detail_html(d)


def _link(url: str, text: str | None = None) -> str:
    if not url:
        return "–"
    if not url.startswith(("http://", "https://")):
        return esc(url)
    return f'<a href="{esc(url)}" target="_blank" rel="noopener">{esc(text or url)}</a>'


def detail_html(d: dict[str, Any]) -> str:
    """The detail view of a dataset from :attr:`ExplorerState.detail`."""
    doi = d.get("doi") or ""
    desc = esc(d.get("description") or "").replace("\n", "<br>")
    chips = "".join(f'<span class="mlhub-chip">{esc(t)}</span>' for t in d.get("tags", []))
    size = d.get("stac_catalog_size")
    est = d.get("estimated_dataset_size")
    facts = [
        ("Dataset id", f"<code>{esc(d['id'])}</code>"),
        ("DOI", _link(f"https://doi.org/{doi}", doi) if doi else "–"),
        ("Registry", _link(d.get("registry_url") or "")),
        ("Citation", esc(d.get("citation")) or "–"),
        ("Catalogue size", human_bytes(size) if size is not None else "unknown"),
        ("Estimated dataset size", human_bytes(est) if est is not None else "unknown"),
    ]
    if d.get("metadata_only_reason"):
        facts = facts[:-2]  # no catalogue: no sizes
    reason = d.get("metadata_only_reason")
    if reason:
        facts.insert(1, ("Download", f"{badge_html(reason)} <span>{esc(reason)}</span>"))
    rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts)
    groups: dict[str, list[dict[str, Any]]] = {"source_imagery": [], "labels": [], "other": []}
    for c in d.get("collections", []):
        types = c.get("types") or ["other"]
        for t in types:
            groups.setdefault(t if t in groups else "other", []).append(c)
    coll_rows = []
    names = {"source_imagery": "Source imagery", "labels": "Labels", "other": "Other"}
    for kind, colls in groups.items():
        for c in colls:
            period = f"{c['start'] or '…'} to {c['end'] or '…'}"
            coll_rows.append(
                f"<tr><td>{names.get(kind, kind)}</td><td><code>{esc(c['id'])}</code>"
                f"{'<br>' + esc(c['title']) if c.get('title') else ''}</td>"
                f"<td>{esc(period)}</td><td>{esc(c.get('license')) or '–'}</td></tr>"
            )
    colls_html = (
        '<table class="mlhub-kv mlhub-collections"><tr><th>Type</th><th>Collection</th>'
        f"<th>Period</th><th>Licence</th></tr>{''.join(coll_rows)}</table>"
        if coll_rows
        else "<p>No collections.</p>"
    )
    return (
        f"<h3>{esc(d.get('title'))}</h3><div>{chips}</div>"
        f'<div class="mlhub-desc">{desc}</div>'
        f'<table class="mlhub-kv">{rows}</table>'
        f"<h4>Collections</h4>{colls_html}"
    )
