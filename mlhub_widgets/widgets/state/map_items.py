"""The selected dataset's items on the map: their footprints, how many the filters (or the shape
being drawn) select, and the preview of one item.

:class:`MapItems` is the part of :class:`~.explorer_state.ExplorerState` behind the map's
footprints and detail pane; see :mod:`.footprints` (which items are selected, by the download's
own :class:`~mlhub_widgets.filters.AssetFilter`) and :mod:`.preview` (quicklooks and labels).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from typing import Any

import traitlets
from traitlets import Bool, Unicode, observe

from .errors import friendly_error
from .footprints import (
    FOOTPRINT_LIMIT,
    ItemSelection,
    footprint_features,
    item_records,
    select_items,
    selection_filter,
)
from .preview import AssetPreview, best_asset, preview_asset
from .tasks import BackgroundTasks

#: Seconds between two counts while a shape is being drawn (the count follows the mouse).
SKETCH_INTERVAL = 0.15


class MapItems(BackgroundTasks):
    """Items of the selected dataset, their selection, and the item preview."""

    item_frame = traitlets.Any(
        None,
        allow_none=True,
        help=f"GeoDataFrame of the dataset's items (mw.items layout; the first {FOOTPRINT_LIMIT})",
    )
    items_truncated = Bool(False, help="the dataset has more items than item_frame holds")
    item_selection = traitlets.Any(
        ItemSelection(), help="ItemSelection: which rows of item_frame the filters select"
    )
    sketch = traitlets.Any(
        None, allow_none=True, help="GeoJSON geometry of the shape being drawn (None: none)"
    )
    preview_row = traitlets.Int(-1, help="row of item_frame shown in the detail pane (-1: none)")
    preview_key = Unicode("", help="the asset key previewed")
    preview = traitlets.Any(None, allow_none=True, help="the AssetPreview of preview_key")

    # provided by ExplorerState
    filters: Any
    dataset_id: Any
    collections: Any

    def _where(self) -> dict[str, Any]:
        raise NotImplementedError

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._records: list[dict[str, Any]] = []
        self._features: list[dict[str, Any]] = []
        self._count_wanted: tuple[Any, Any, int] | None = None
        self._count_thread: threading.Thread | None = None
        self._count_pause = threading.Event()
        self._items_generation = 0

    # -- loading ---------------------------------------------------------------------------------
    def _clear_items(self) -> None:
        with self._lock:
            self._items_generation += 1
            self._records = []
            self._features = []
        with self.hold_trait_notifications():
            self.item_frame = None
            self.items_truncated = False
            self.item_selection = ItemSelection()
            self.sketch = None
            self.preview_row = -1
            self.preview_key = ""
            self.preview = None
        for area in ("items", "preview"):
            with self._lock:
                self._generation[area] = self._generation.get(area, 0) + 1
            self._set_area("busy", area, None)
            self.set_error(area, None)
            self.set_notice(area, None)

    def load_items(self) -> threading.Thread | None:
        """Load the selected dataset's items (at most :data:`FOOTPRINT_LIMIT`) for the map, in
        the background; then count the selection. Needs the dataset's collections."""
        frame = self.collections
        if not self.dataset_id or frame is None:
            return None
        ids = [str(c) for c in frame["id"]]
        where = self._where()

        def work() -> tuple[Any, bool, list[dict[str, Any]], list[dict[str, Any]]]:
            import pandas as pd

            from ... import discovery

            parts = []
            left = FOOTPRINT_LIMIT
            more = False
            for cid in ids:
                if left <= 0:
                    more = True
                    break
                part = discovery.items(cid, limit=left + 1, progress=False, **where)
                if len(part) > left:
                    part = part.iloc[:left]
                    more = True
                left -= len(part)
                parts.append(part)
            found = [p for p in parts if len(p)]
            if found:
                import geopandas as gpd

                items = gpd.GeoDataFrame(
                    pd.concat(found, ignore_index=True), geometry="geometry", crs=found[0].crs
                )
            else:
                items = parts[0] if parts else None
            records = item_records(items)
            return items, more, records, footprint_features(records)

        def done(result: tuple[Any, bool, list[dict[str, Any]], list[dict[str, Any]]]) -> None:
            items, more, records, features = result
            with self._lock:
                self._records = records
                self._features = features
            with self.hold_trait_notifications():
                self.item_frame = items
                self.items_truncated = more
            self._request_count()
            n = len(records)
            limit = f" (the first {n}: the dataset has more)" if more else ""
            self.set_notice("items", f"{n} item{'s' if n != 1 else ''} on the map{limit}")

        return self.run_in_background("items", "Loading the items' footprints…", work, done)

    # -- the selection ---------------------------------------------------------------------------
    def item_features(self) -> list[dict[str, Any]]:
        """GeoJSON Features of the loaded items (``properties``: ``id``, ``collection``,
        ``row``, ``datetime``)."""
        with self._lock:
            return list(self._features)

    def item_record(self, row: int) -> dict[str, Any] | None:
        """The item dict (see :func:`.footprints.item_records`) of a row of :attr:`item_frame`."""
        with self._lock:
            return self._records[row] if 0 <= row < len(self._records) else None

    def preview_area(self, geometry: Mapping[str, Any] | None) -> None:
        """Count the items a shape being drawn would select (None: the drawing ended).

        Cheap to call on every mouse move: the count runs in a worker thread, at most every
        :data:`SKETCH_INTERVAL` seconds, on the latest shape.
        """
        self.sketch = dict(geometry) if geometry else None

    @observe("sketch", "filters")
    def _on_selection_input(self, _change: object) -> None:
        self._request_count()

    def _request_count(self) -> None:
        with self._lock:
            self._count_wanted = (self.filters, self.sketch, self._items_generation)
            if self._count_thread is not None:
                self._count_pause.set()  # a new request: no need to wait out the interval
                return
            thread = threading.Thread(
                target=self._count_worker, name="mlhub-explorer-count", daemon=True
            )
            self._count_thread = thread
            self._threads.add(thread)
        thread.start()

    def _count_worker(self) -> None:
        """Count the latest requested selection until no request is left (one thread)."""
        me = threading.current_thread()
        try:
            while True:
                with self._lock:
                    wanted = self._count_wanted
                    self._count_wanted = None
                    records = self._records
                    if wanted is None:
                        return
                    self._count_pause.clear()
                filters, sketch, generation = wanted
                result = _count(records, filters, sketch)
                with self._lock:
                    if generation == self._items_generation and (
                        self._count_wanted is None or sketch is not None
                    ):
                        self.item_selection = result
                if sketch is not None:  # drawing: pace the counts (a new request ends the wait)
                    self._count_pause.wait(SKETCH_INTERVAL)
        except Exception as exc:  # never leave a silent dead counter
            self.set_error("items", friendly_error(exc))
        finally:
            with self._lock:
                if self._count_thread is me:
                    self._count_thread = None
                self._threads.discard(me)
                self._idle.notify_all()
                again = self._count_wanted is not None
            if again:
                self._request_count()

    # -- preview -----------------------------------------------------------------------------
    def preview_item(self, row: int | str, asset_key: str | None = None) -> threading.Thread:
        """Show an item (a row of :attr:`item_frame`, or an item id) in the detail pane, with a
        preview of ``asset_key`` (default: the best one, see :func:`.preview.best_asset`).

        The asset is read and rendered in a worker thread; :attr:`preview` holds the result,
        ``errors["preview"]`` the reason when it failed.

        Raises:
            ValueError: no such item.
        """
        if isinstance(row, str):
            with self._lock:
                rows = [i for i, r in enumerate(self._records) if r["id"] == row]
            if not rows:
                raise ValueError(f"No loaded item has the id {row!r}.")
            row = rows[0]
        record = self.item_record(row)
        if record is None:
            raise ValueError(f"No item at row {row}.")
        key = asset_key if asset_key is not None else best_asset(record.get("assets") or {})
        with self.hold_trait_notifications():
            self.preview_row = row
            self.preview_key = key or ""
            self.preview = None
        where = self._where()

        def work() -> AssetPreview:
            if key is None:
                return AssetPreview(
                    record["id"], "", "none", note="None of its assets can be previewed."
                )
            return preview_asset(record, key, where)

        def done(result: AssetPreview) -> None:
            self.preview = result

        label = f"Reading {key} of {record['id']}…" if key else "…"
        return self.run_in_background("preview", label, work, done)

    def check_tiles(self, url_template: str) -> threading.Thread:
        """Ask for one tile of a basemap from the kernel, in the background: when it cannot be
        reached, ``warnings["tiles"]`` says so (the map then shows the country outlines only).

        The browser loads the tiles, not the kernel, but both are usually on the same network;
        this is what lets the map say why it stays blank offline.
        """
        url = url_template.replace("{s}", "a").format(z=0, x=0, y=0, r="")

        def work() -> str:
            from ...net.retry import RetryPolicy
            from ...net.settings import NetworkSettings
            from ...net.sync import fetch

            settings = NetworkSettings(
                connect_timeout=4.0,
                read_timeout=6.0,
                deadline=10.0,
                retry=RetryPolicy(max_attempts=1),
            )
            try:
                doc = fetch(url, settings=settings, max_bytes=2 << 20)
            except Exception as exc:  # any failure means "not reachable from here"
                return friendly_error(exc)
            return "" if doc.status < 400 else f"the tile server answered HTTP {doc.status}"

        def done(problem: str) -> None:
            host = url.split("/")[2] if "://" in url else url
            self.set_warning(
                "tiles",
                f"The basemap tiles of {host} cannot be reached from here ({problem}): the map "
                "shows the country outlines only."
                if problem
                else None,
            )

        return self.run_in_background("tiles", "Checking the basemap tiles…", work, done)

    def clear_preview(self) -> None:
        """Close the detail pane."""
        with self._lock:
            self._generation["preview"] = self._generation.get("preview", 0) + 1
        self._set_area("busy", "preview", None)
        self.set_error("preview", None)
        with self.hold_trait_notifications():
            self.preview_row = -1
            self.preview_key = ""
            self.preview = None


def _count(records: list[dict[str, Any]], filters: Any, sketch: Any) -> ItemSelection:
    total = len(records)
    try:
        flt = selection_filter(filters, sketch)
    except (ValueError, TypeError) as exc:
        if sketch is not None:  # e.g. a polygon that crosses itself while being drawn
            with contextlib.suppress(ValueError, TypeError):
                flt = selection_filter(filters)
                return ItemSelection(select_items(records, flt), total, sketch=False)
        return ItemSelection(frozenset(), total, sketch=sketch is not None, problem=str(exc))
    return ItemSelection(select_items(records, flt), total, sketch=sketch is not None)
