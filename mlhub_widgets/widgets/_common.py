"""Small pieces shared by the panels: theme-aware CSS, the status line, formatting."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

import ipywidgets as W

from .state import ExplorerState
from .state.formatting import human_bytes as human_bytes
from .state.formatting import human_duration as human_duration

#: Width of the description column of labelled inputs, so the inputs of a panel line up.
LABEL_STYLE = {"description_width": "120px"}

#: Styles for the explorer. Only JupyterLab CSS variables (with neutral fallbacks) are used for
#: colours, so the panels follow the light and dark themes of JupyterLab, Notebook 7, Voila and
#: VS Code; nothing paints a white background. Text is always a ``--jp-ui-font-color*`` on a
#: ``--jp-layout-color*`` (or a tint of one): the state colours (error, warn, success, brand)
#: only paint icons, borders and tints, because some of them are below 4.5:1 as text in one of
#: the themes (``--jp-success-color1`` on white, ``--jp-error-color1`` on dark grey).
#: ``tests/test_browser_accessibility.py`` checks the contrast of every text in both themes.
CSS = """
<style>
body[data-jp-theme-light="false"] .mlhub-explorer, .theme-dark .mlhub-explorer {
  color-scheme: dark; }
.mlhub-explorer .jupyter-widgets.mlhub-tabs > .lm-TabBar .lm-TabBar-tab {
  color: var(--jp-ui-font-color1, inherit); }
.mlhub-explorer .jupyter-widgets.mlhub-tabs > .lm-TabBar .lm-TabBar-tab.lm-mod-current {
  color: var(--jp-ui-font-color0, inherit); }
/* Tab titles are never cut: in a narrow explorer the tab bar wraps onto a second line. */
.mlhub-explorer .jupyter-widgets.mlhub-tabs > .lm-TabBar { min-height: auto; max-height: none;
  height: auto; }
.mlhub-explorer .jupyter-widgets.mlhub-tabs > .lm-TabBar .lm-TabBar-content {
  flex-wrap: wrap; height: auto; }
.mlhub-explorer .jupyter-widgets.mlhub-tabs > .lm-TabBar .lm-TabBar-tab {
  flex: 0 0 auto; min-width: 0; max-width: none; width: auto; }
.mlhub-explorer .jupyter-widgets.mlhub-tabs > .lm-TabBar .lm-TabBar-tabLabel {
  overflow: visible; text-overflow: clip; }
/* No field is wider than the explorer. */
.mlhub-explorer .widget-text, .mlhub-explorer .widget-dropdown, .mlhub-explorer .widget-select,
.mlhub-explorer .widget-select-multiple, .mlhub-explorer .widget-textarea,
.mlhub-explorer .widget-hprogress { max-width: 100%; min-width: 0; }
.mlhub-explorer .widget-text input, .mlhub-explorer .widget-dropdown select,
.mlhub-explorer .widget-select select, .mlhub-explorer .widget-textarea textarea {
  min-width: 0; }
.mlhub-explorer .widget-html, .mlhub-explorer .widget-html-content { min-width: 0;
  max-width: 100%; overflow-wrap: anywhere; }
/* Multi-line HTML reads as text, not at the height of an input row (JupyterLab's 28 px). */
.mlhub-explorer .widget-html > .widget-html-content { line-height: 1.4; }
/* A disabled button looks disabled in every theme (a blue or orange face stayed bright). */
.mlhub-explorer .jupyter-button:disabled, .mlhub-explorer .jupyter-button.mod-primary:disabled {
  background-color: var(--jp-layout-color2, #eeeeee); color: var(--jp-ui-font-color2, #616161);
  box-shadow: none; opacity: 0.8; }
/* The map's draw and zoom buttons keep a light face in dark themes: their icons are dark
   sprites, invisible on the dark grey JupyterLab gives them. */
body[data-jp-theme-light="false"] .mlhub-explorer .leaflet-bar a,
body[data-jp-theme-light="false"] .mlhub-explorer .leaflet-draw-toolbar a,
.theme-dark .mlhub-explorer .leaflet-bar a {
  background-color: #f4f4f4; color: #212121; border-bottom-color: #9e9e9e; }
body[data-jp-theme-light="false"] .mlhub-explorer .leaflet-bar a:hover,
.theme-dark .mlhub-explorer .leaflet-bar a:hover { background-color: #ffffff; }
.mlhub-status { min-height: 1.5em; line-height: 1.4; }
.mlhub-msg { padding: 2px 6px; border-radius: 3px; display: inline-block; white-space: normal;
  color: var(--jp-ui-font-color1, inherit); }
.mlhub-msg-error { border-left: 3px solid var(--jp-error-color1, #c62828);
  background: color-mix(in srgb, var(--jp-error-color1, #c62828) 12%, transparent); }
.mlhub-msg-warn { border-left: 3px solid var(--jp-warn-color1, #e65100);
  background: color-mix(in srgb, var(--jp-warn-color1, #e65100) 12%, transparent); }
.mlhub-msg-error .mlhub-msg-icon { color: var(--jp-error-color1, #c62828); }
.mlhub-msg-warn .mlhub-msg-icon { color: var(--jp-warn-color1, #e65100); }
.mlhub-msg-ok .mlhub-msg-icon { color: var(--jp-success-color1, #2e7d32); }
.mlhub-msg-busy .mlhub-msg-icon { color: var(--jp-brand-color1, #1976d2); }
.mlhub-help { color: var(--jp-ui-font-color2, #616161); font-size: 0.92em; }
.mlhub-summary { border-bottom: 1px solid var(--jp-border-color2, #bdbdbd); padding: 2px 0 6px 0;
  margin-bottom: 4px; }
.mlhub-kv { border-collapse: collapse; }
.mlhub-kv td, .mlhub-kv th { padding: 1px 10px 1px 0; text-align: left; vertical-align: top; }
.mlhub-kv th { color: var(--jp-ui-font-color2, #616161); font-weight: normal; }
.mlhub-table-wrap { border: 1px solid var(--jp-border-color2, #bdbdbd); border-radius: 3px;
  container-type: inline-size; }
/* Rows as tall as their content: the grid never shrinks into the scrolling box (it is a flex
   item there), and cells wrap their text instead of clipping it. */
.mlhub-table-wrap > .mlhub-results { flex: 0 0 auto; }
.mlhub-results { grid-auto-rows: max-content; grid-template-columns: minmax(180px, 3fr)
  minmax(120px, 2fr) minmax(110px, 1.2fr) minmax(90px, 1fr) 92px 112px; }
.mlhub-results .mlhub-cell { padding: 2px 6px; overflow: visible; white-space: normal;
  overflow-wrap: anywhere; height: auto; min-height: 0; font-size: 0.92em; line-height: 1.35; }
.mlhub-results .mlhub-cell .widget-html-content, .mlhub-results .mlhub-cell.widget-html {
  height: auto; line-height: 1.35; white-space: normal; overflow: visible; }
.mlhub-results .mlhub-no-rows { grid-column: 1 / -1; }
/* A narrow explorer (JupyterLab with its file browser open, a phone): title, tags and the
   download badge only; the other facts are in the detail view below the table. */
@container (max-width: 640px) {
  .mlhub-results { grid-template-columns: minmax(0, 1.7fr) minmax(0, 1.3fr) max-content; }
  .mlhub-results .mlhub-col-collections, .mlhub-results .mlhub-col-license,
  .mlhub-results .mlhub-col-date { display: none; }
}
.mlhub-badge { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 0.85em;
  white-space: nowrap; color: var(--jp-ui-font-color1, inherit);
  border: 1px solid var(--jp-border-color1, #9e9e9e); }
.mlhub-badge-yes { border-color: var(--jp-success-color1, #2e7d32);
  background: color-mix(in srgb, var(--jp-success-color1, #2e7d32) 14%, transparent); }
.mlhub-badge-no { border-color: var(--jp-warn-color1, #e65100);
  background: color-mix(in srgb, var(--jp-warn-color1, #e65100) 14%, transparent); }
.mlhub-badge-unknown { border-style: dashed; }
.mlhub-results .mlhub-row-odd { background: var(--jp-layout-color2, rgba(127,127,127,0.08)); }
.mlhub-results .mlhub-row-selected, .mlhub-results .widget-button.mlhub-row-selected {
  background: var(--jp-layout-color3, rgba(127,127,127,0.3));
  background: color-mix(in srgb, var(--jp-brand-color1, #1976d2) 28%,
    var(--jp-layout-color1, transparent));
  color: var(--jp-ui-font-color0, inherit); }
.mlhub-results .widget-button.mlhub-title-button.mlhub-row-selected { font-weight: bold;
  box-shadow: inset 4px 0 0 var(--jp-brand-color1, #1976d2); }
.mlhub-chip { display: inline-block; padding: 0 5px; margin: 1px 2px 1px 0; border-radius: 8px;
  border: 1px solid var(--jp-border-color2, #bdbdbd); font-size: 0.85em; }
.mlhub-results .widget-button.mlhub-title-button { text-align: left; justify-content: flex-start;
  white-space: normal; height: auto; min-height: 28px; line-height: 1.25; padding: 3px 6px; }
.mlhub-sort-button { font-weight: bold; justify-content: flex-start; }
.mlhub-detail { line-height: 1.45; }
.mlhub-detail h3 { margin: 4px 0; }
.mlhub-detail .mlhub-desc { max-height: 9em; overflow: auto; }
.mlhub-tabular { font-variant-numeric: tabular-nums; }
.mlhub-collection-box { border: 1px solid var(--jp-border-color2, #bdbdbd); border-radius: 3px;
  padding: 4px 8px; margin: 0 8px 8px 0; }
.mlhub-collection-box .widget-checkbox { width: auto; }
.mlhub-key { border-bottom: 3px solid; padding-bottom: 1px; }
/* The map and the items beside it; below the map when the explorer is narrow. */
.mlhub-map-split { gap: 8px 0; container-type: inline-size; }
.mlhub-map-toolbar { column-gap: 16px; }
.mlhub-items-pane { box-sizing: border-box; padding-left: 8px;
  border-left: 1px solid var(--jp-border-color2, #bdbdbd); }
.mlhub-items-pane > * { max-width: 100%; }
@container (max-width: 740px) {  /* the pane is below the map */
  .mlhub-items-pane { border-left: none; padding-left: 0; } }
.mlhub-items-pane .widget-select select { font-size: 0.92em; }
.mlhub-explorer img.mlhub-quicklook { width: 256px; max-width: 100%; height: auto;
  image-rendering: pixelated; border: 1px solid var(--jp-border-color2, #bdbdbd); }
.mlhub-item-facts { max-height: 220px; overflow: auto; font-size: 0.92em; }
.mlhub-scroll { max-height: 220px; overflow: auto; }
.mlhub-copy { user-select: all; -webkit-user-select: all; cursor: text; }
.mlhub-code { white-space: pre; overflow-x: auto; margin: 4px 0; padding: 6px 8px;
  border: 1px solid var(--jp-border-color2, #bdbdbd); border-radius: 3px;
  background: var(--jp-layout-color2, rgba(127,127,127,0.08));
  color: var(--jp-content-font-color1, inherit); font-size: 0.92em;
  font-family: var(--jp-code-font-family, monospace); }
.mlhub-item-facts th { white-space: nowrap; }
/* The invisible sea under the country outlines takes clicks without looking clickable. */
.mlhub-explorer .leaflet-container path.leaflet-interactive[stroke="none"][fill-opacity="0"] {
  cursor: inherit; }
</style>
"""


def css_widget() -> W.HTML:
    """An invisible HTML widget carrying the explorer's CSS (include it once per view)."""
    widget = W.HTML(CSS, layout=W.Layout(display="none"))
    widget.add_class("mlhub-css")
    return widget


#: How a storage-options field's error starts.
OPTIONS_ERROR = "Storage options are KEY=VALUE pairs"


def options_from_text(text: str) -> dict[str, str]:
    """Object-store options typed as ``KEY=VALUE`` pairs separated by spaces or commas (the
    CLI's ``--storage-option``), e.g. ``endpoint=https://data.source.coop skip_signature=true``.

    Raises:
        ValueError: a pair without ``=`` (one line that names it).
    """
    from ..net.objects import parse_storage_option

    pairs = (parse_storage_option(part) for part in re.split(r"[\s,]+", text.strip()) if part)
    try:
        return dict(pairs)
    except ValueError as exc:
        raise ValueError(f"{OPTIONS_ERROR}: {str(exc).split(', got ')[-1]} is not one.") from None


def options_to_text(options: Mapping[str, Any]) -> str:
    """The text :func:`options_from_text` reads back as ``options``."""
    return " ".join(f"{key}={value}" for key, value in options.items())


def esc(value: object) -> str:
    """HTML-escape any value (None → empty)."""
    return "" if value is None else html.escape(str(value))


def msg_html(kind: str, text: str) -> str:
    """A message span; ``kind`` is error, busy, ok or warn."""
    glyph = {
        "error": "⚠",
        "busy": '<i class="fa fa-spinner fa-spin"></i>',
        "ok": "✓",
        "warn": "⚠",
    }.get(kind)
    # the icon repeats what the text says: decorative for screen readers
    icon = f'<span class="mlhub-msg-icon" aria-hidden="true">{glyph}</span> ' if glyph else ""
    role = ' role="alert"' if kind == "error" else ""
    return f'<span class="mlhub-msg mlhub-msg-{kind}"{role}>{icon}{esc(text)}</span>'


class StatusLine(W.HTML):  # type: ignore[misc]
    """Shows the busy state, the error, the warning or the notice of some areas of an
    :class:`ExplorerState`.

    Errors win over busy labels, which win over warnings, which win over notices. Updated from
    any thread.
    """

    def __init__(self, state: ExplorerState, areas: Iterable[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_class("mlhub-status")
        self._state = state
        self._areas = tuple(areas)
        self._text = ""
        state.observe(self._render, names=["busy", "errors", "warnings", "notices"])
        self._render()

    def _render(self, _change: object = None) -> None:
        st = self._state
        parts = [msg_html("error", st.errors[a]) for a in self._areas if st.errors.get(a)]
        if not parts:
            parts = [msg_html("busy", st.busy[a]) for a in self._areas if st.busy.get(a)]
        if not parts:
            parts = [msg_html("warn", st.warnings[a]) for a in self._areas if st.warnings.get(a)]
        if not parts:
            parts = [msg_html("ok", st.notices[a]) for a in self._areas if st.notices.get(a)]
        text = "<br>".join(parts)
        if text != self._text:
            self._text = text
            self.value = text


def resend_tree(widget: W.Widget) -> int:
    """Send the full state of ``widget`` and of every widget inside it (layouts and styles
    too) to the front end; returns how many widgets were sent.

    The front end of ipywidgets 8 loses updates sent while it is loading a page's widgets
    (between reading a model's state and creating the model): a status that changed then
    stays stale on the page, e.g. "Testing the connection…" after the explorer connected.
    Sending every state again once the front end is up repairs that.
    """
    sent = 0
    seen: set[int] = set()
    todo = [widget]
    while todo:
        w = todo.pop()
        if id(w) in seen or not isinstance(w, W.Widget) or w.comm is None:
            continue
        seen.add(id(w))
        w.send_state()
        sent += 1
        todo.extend(getattr(w, "children", ()))
        for name in ("layout", "style"):
            part = getattr(w, name, None)
            if isinstance(part, W.Widget):
                todo.append(part)
    return sent


def close_tree(widget: W.Widget) -> None:
    """Close a widget and, for boxes, every widget inside it (frees the front-end models)."""
    for child in getattr(widget, "children", ()):
        close_tree(child)
    widget.close()


class Retired:
    """Widgets a panel replaced, closed once they have been out of view for ``delay`` seconds.

    Closing a widget right after creating it races with the front end, which is still building
    its view (layout and style views are created asynchronously): ipywidgets 8 then throws
    "Cannot read properties of undefined (reading 'create_view')" in the page, and the table
    being rebuilt can lose the keyboard focus. Panels that rebuild their children quickly in
    succession (results arriving, a dataset's keys then its collections) hand the old children
    here instead; they are closed at a later :meth:`add` (no timer thread), so at most the
    widgets of the last few seconds stay open.
    """

    def __init__(self, delay: float = 5.0) -> None:
        self.delay = delay
        self._items: list[tuple[float, W.Widget]] = []

    def add(self, widgets: Iterable[W.Widget]) -> None:
        """Retire ``widgets`` and close those retired more than ``delay`` seconds ago."""
        now = time.monotonic()
        keep = []
        for when, widget in self._items:
            if now - when >= self.delay:
                close_tree(widget)
            else:
                keep.append((when, widget))
        self._items = keep + [(now, w) for w in widgets]

    def close_all(self) -> None:
        """Close every retired widget now."""
        for _when, widget in self._items:
            close_tree(widget)
        self._items = []
