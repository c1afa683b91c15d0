"""DateRangePanel: start/end dates bounded by the dataset's temporal extent, or a single date."""

from __future__ import annotations

import datetime as dt
from typing import Any

import ipywidgets as W
import traitlets

from ._common import LABEL_STYLE, css_widget, esc, msg_html
from .state import ExplorerState, Filters


def _partial(value: dt.date | None) -> bool:
    """A date with a year below 1000 is one being typed: Chromium's date field turns the year
    digits 2, 0, 2, 1 into 0002, 0020, 0202 and only then 2021."""
    return value is not None and value.year < 1000


class TypingDatePicker(W.DatePicker):  # type: ignore[misc]
    """A :class:`ipywidgets.DatePicker` that leaves a date being typed alone.

    The picker clamps its value into ``[min, max]`` in the kernel and sends the clamped value
    back; for the year typed digit by digit that rewrote the field under the keyboard user's
    fingers (0002 became the first day of the dataset). Partial dates are neither clamped nor
    used as a filter; complete ones are clamped as before.
    """

    @traitlets.validate("value")
    def _validate_value(self, proposal: dict[str, object]) -> object:
        value = proposal["value"]
        if isinstance(value, dt.date) and _partial(value):
            return value
        return super()._validate_value(proposal)


class DateRangePanel(W.VBox):  # type: ignore[misc]
    """Pick the date filter: a start and an end day (inclusive, UTC) or one day.

    The pickers are bounded by the selected dataset's temporal extent. An end before the start
    is shown as a message here and disables the download (``state.filter_problems``). Empty
    pickers mean an open range.
    """

    def __init__(self, state: ExplorerState | None = None) -> None:
        self.state = state if state is not None else ExplorerState()
        st = self.state
        self._syncing = False
        self.start = TypingDatePicker(description="Start date", style=LABEL_STYLE)
        self.end = TypingDatePicker(description="End date", style=LABEL_STYLE)
        self.single = W.Checkbox(
            description="Single date (start date only)", indent=False, value=False
        )
        self.clear_button = W.Button(
            description="All dates", icon="times", tooltip="Remove the date filter"
        )
        self.extent = W.HTML()
        self.message = W.HTML()
        self.readout = W.HTML()
        for widget, cls in [
            (self.start, "mlhub-start-date"),
            (self.end, "mlhub-end-date"),
            (self.single, "mlhub-single-date"),
            (self.clear_button, "mlhub-clear-dates"),
            (self.extent, "mlhub-date-extent"),
            (self.message, "mlhub-date-message"),
            (self.readout, "mlhub-date-readout"),
        ]:
            widget.add_class(cls)
        super().__init__(
            [
                css_widget(),
                self.extent,
                W.HBox([self.start, self.single], layout=W.Layout(flex_flow="row wrap")),
                self.end,
                W.HBox([self.clear_button, self.readout], layout=W.Layout(align_items="center")),
                self.message,
            ]
        )
        self.add_class("mlhub-dates")
        self.add_class("mlhub-panel")

        self.start.observe(self._on_picker, names="value")
        self.end.observe(self._on_picker, names="value")
        self.single.observe(self._on_single, names="value")
        self.clear_button.on_click(self._on_clear)
        st.observe(self._render_extent, names=["temporal_extent", "dataset_id"])
        st.observe(self._render_filters, names=["filters", "filter_problems"])
        self._render_extent()
        self._render_filters()

    # -- intent ------------------------------------------------------------------------------
    def _on_picker(self, _change: object = None) -> None:
        if self._syncing or _partial(self.start.value) or _partial(self.end.value):
            return  # still being typed
        start = self.start.value
        end = start if self.single.value else self.end.value
        self.state.set_dates(start, end)

    def _on_single(self, change: dict[str, Any]) -> None:
        self.end.disabled = bool(change["new"])
        if self._syncing:
            return
        if change["new"]:
            self.state.set_dates(self.start.value, self.start.value)
        else:
            self.state.set_dates(self.start.value, self.end.value)

    def _on_clear(self, _button: object = None) -> None:
        self.single.value = False
        self.state.set_dates(None, None)

    # -- rendering -----------------------------------------------------------------------------
    def _render_extent(self, _change: object = None) -> None:
        first, last = self.state.temporal_extent
        before = (self.start.value, self.end.value)
        self._syncing = True
        try:
            for picker in (self.start, self.end):
                with picker.hold_trait_notifications():
                    picker.min = None
                    picker.max = None
                    picker.max = last
                    picker.min = first
        finally:
            self._syncing = False
        if first is None and last is None:
            self.extent.value = (
                '<span class="mlhub-help">Dates are inclusive, in UTC. Select a dataset to see '
                "the period it covers.</span>"
                if not self.state.dataset_id
                else '<span class="mlhub-help">The dataset does not state its period.</span>'
            )
        else:
            a = first.isoformat() if first else "…"
            b = last.isoformat() if last else "…"
            self.extent.value = (
                f'<span class="mlhub-help">The dataset covers <b>{a}</b> to <b>{b}</b> '
                "(dates are inclusive, in UTC).</span>"
            )
        if (self.start.value, self.end.value) != before:
            self._push_pickers()

    def _push_pickers(self) -> None:
        """DatePickers clamp their value into [min, max]: make the state follow them."""
        f: Filters = self.state.filters
        start = self.start.value
        end = start if self.single.value else self.end.value
        if (start, end) != (f.start, f.end):
            self.state.set_dates(start, end)

    def _render_filters(self, _change: object = None) -> None:
        f: Filters = self.state.filters
        self._syncing = True
        try:
            single = f.start is not None and f.start == f.end
            if single and not self.single.value:
                self.single.value = True
            elif not single and self.single.value and f.end != f.start:
                self.single.value = False
            if self.start.value != f.start:
                self.start.value = f.start
            end = f.end
            if self.end.value != end:
                self.end.value = end
        finally:
            self._syncing = False
        if (self.start.value, self.end.value if not single else self.start.value) != (
            f.start,
            f.end,
        ):
            self._push_pickers()  # a picker clamped a date outside the dataset's period
        date_problems = [p for p in self.state.filter_problems if "date" in p]
        self.message.value = "<br>".join(msg_html("error", p) for p in date_problems)
        self.readout.value = f"Date filter: <b>{esc(f.describe_dates())}</b>"
