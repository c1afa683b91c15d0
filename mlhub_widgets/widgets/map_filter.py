"""MapFilterPanel: the dataset and its items on a map, and the area of interest (bbox *or*
intersects).

The map shows the selected dataset's footprint and collection extents, and the footprints of
its items: those the filters select highlighted, the others dimmed. Beside it,
:class:`~.item_pane.ItemsPane` counts and lists the selected items (the count follows a
rectangle or polygon while it is being drawn) and previews one item. Above it, an offline place
search (countries, ``lat, lon``, a bbox) and the basemap choice; see :mod:`.map_view` for the
basemaps and the country outlines drawn under everything.
"""

from __future__ import annotations

import json
from typing import Any

import ipyleaflet as L
import ipywidgets as W

from ._common import LABEL_STYLE, StatusLine, css_widget, esc, msg_html
from .item_pane import LABEL_COLOR, LEFT_OUT_COLOR, PREVIEW_COLOR, SELECTED_COLOR, ItemsPane
from .map_view import (
    BASEMAP_ENV,
    BASEMAP_LABELS,
    IMAGERY_URL,
    OSM_URL,
    OUTLINES,
    country_outlines,
    fit,
    fit_view,
    make_map,
    outlines_layer,
    resolve_basemap,
    set_basemap,
)
from .state import ExplorerState, Filters, friendly_error
from .state.footprints import NO_SKETCH, SketchTracker, split_features
from .state.places import country_names, find_place

__all__ = [
    "BASEMAP_ENV",
    "IMAGERY_URL",
    "OSM_URL",
    "OUTLINES",
    "MapFilterPanel",
    "country_outlines",
    "feature_for",
    "filters_from_feature",
    "fit_view",
    "resolve_basemap",
]

RECTANGLE_COLOR = "#d62728"
POLYGON_COLOR = "#9467bd"
FOOTPRINT_COLOR = "#1f77b4"
EXTENT_COLOR = "#ff7f0e"
#: While a shape is drawn, the footprint layers follow the mouse up to this many items (above,
#: only the count does: re-sending thousands of footprints per move would lag).
LIVE_LAYER_LIMIT = 1500
EMPTY: dict[str, Any] = {"type": "FeatureCollection", "features": []}


def _ring_is_box(geometry: dict[str, Any]) -> bool:
    if geometry.get("type") != "Polygon":
        return False
    ring = geometry["coordinates"][0]
    pts = {(round(x, 9), round(y, 9)) for x, y, *_ in ring}
    xs = {p[0] for p in pts}
    ys = {p[1] for p in pts}
    return len(pts) == 4 and len(xs) == 2 and len(ys) == 2


def _bounds(geometry: dict[str, Any]) -> tuple[float, float, float, float]:
    from shapely.geometry import shape

    w, s, e, n = shape(geometry).bounds
    return (float(w), float(s), float(e), float(n))


def _box_feature(bbox: tuple[float, float, float, float]) -> dict[str, Any]:
    w, s, e, n = bbox
    ring = [[w, s], [w, n], [e, n], [e, s], [w, s]]
    return {
        "type": "Feature",
        "properties": {"style": _style(RECTANGLE_COLOR)},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def _style(color: str) -> dict[str, Any]:
    return {"color": color, "weight": 3, "opacity": 0.9, "fillOpacity": 0.12, "fill": True}


def filters_from_feature(filters: Filters, feature: dict[str, Any]) -> Filters:
    """The filters with the area taken from a drawn feature (rectangle → bbox, else intersects).

    Rectangles are recognised by the colour the rectangle tool gives them, or by being an
    axis-aligned four-corner polygon.
    """
    geometry = feature.get("geometry") or {}
    style = (feature.get("properties") or {}).get("style") or {}
    if style.get("color") == RECTANGLE_COLOR or _ring_is_box(geometry):
        return filters.with_bbox(_bounds(geometry))
    return filters.with_intersects(geometry)


def feature_for(filters: Filters) -> dict[str, Any] | None:
    """The map feature showing the area of ``filters`` (None when there is no area)."""
    if filters.bbox is not None:
        w, s, e, n = filters.bbox
        if w > e:  # crosses the antimeridian: draw it unwrapped so Leaflet shows one box
            e += 360
        return _box_feature((w, s, e, n))
    if filters.intersects is not None:
        return {
            "type": "Feature",
            "properties": {"style": _style(POLYGON_COLOR)},
            "geometry": filters.intersects,
        }
    return None


class MapFilterPanel(W.VBox):  # type: ignore[misc]
    """The selected dataset and its items on a map, and the area of interest.

    Draw a rectangle (→ ``bbox``) or a polygon (→ ``intersects``) with the tools on the map, edit
    or delete it there; or type a bbox, paste or upload GeoJSON, or use a country found by the
    place search. There is one area at a time: a new one replaces the old one, because the
    download API takes ``bbox`` or ``intersects``, never both.

    Args:
        state: the shared state (a new one if omitted).
        basemap: ``"osm"``, ``"imagery"``, ``None``/``"none"`` or a tile URL template; the
            default reads ``MLHUB_BASEMAP`` (else ``"osm"``). Country outlines are always drawn.
    """

    def __init__(self, state: ExplorerState | None = None, *, basemap: str | None = "default"):
        self.state = state if state is not None else ExplorerState()
        st = self.state
        self._syncing = False
        self.basemap_url = resolve_basemap(basemap)
        self.tracker = SketchTracker()

        self.map = make_map(self.basemap_url)
        self.map.layout.flex = "2 1 420px"
        self.map.layout.min_width = "0"
        self.map.layout.width = "auto"
        self.outlines = outlines_layer()
        self.extents = L.GeoJSON(
            data=EMPTY,
            name="Collection extents",
            style={"color": EXTENT_COLOR, "weight": 1.5, "fillOpacity": 0.03, "dashArray": "4 4"},
        )
        self.footprint = L.GeoJSON(
            data=EMPTY,
            name="Dataset footprint",
            style={"color": FOOTPRINT_COLOR, "weight": 2, "fillOpacity": 0.04},
        )
        self.items_out = L.GeoJSON(
            data=EMPTY,
            name="Items left out",
            style={
                "color": LEFT_OUT_COLOR,
                "weight": 1,
                "opacity": 0.6,
                "fillOpacity": 0.03,
                "dashArray": "3 3",
            },
            hover_style={"weight": 2.5, "opacity": 1},
        )
        self.items_in = L.GeoJSON(
            data=EMPTY,
            name="Items selected",
            style={"color": SELECTED_COLOR, "weight": 1.5, "opacity": 0.9, "fillOpacity": 0.15},
            hover_style={"weight": 3, "fillOpacity": 0.4},
        )
        self.previewed = L.GeoJSON(
            data=EMPTY,
            name="Previewed item",
            style={"color": PREVIEW_COLOR, "weight": 3, "opacity": 1, "fillOpacity": 0},
        )
        self.labels = L.GeoJSON(
            data=EMPTY,
            name="Labels of the previewed item",
            style={"color": LABEL_COLOR, "weight": 1.5, "opacity": 0.95, "fillOpacity": 0.3},
        )
        self.draw = L.DrawControl(
            rectangle={"shapeOptions": _style(RECTANGLE_COLOR)},
            polygon={"shapeOptions": _style(POLYGON_COLOR), "allowIntersection": False},
            polyline={},
            circle={},
            circlemarker={},
            marker={},
            edit=True,
            remove=True,
        )
        # the previewed item's outline goes under the items, so that a click there still
        # reaches the item footprints (and previews the one on top)
        self.vector_layers = [
            self.outlines,
            self.extents,
            self.footprint,
            self.previewed,
            self.items_out,
            self.items_in,
            self.labels,
        ]
        for layer in self.vector_layers:
            self.map.add(layer)
            layer.on_click(self._on_layer_click)
        self.map.add(self.draw)
        self.map.add(L.LayersControl(position="topright"))
        self.items = ItemsPane(st)

        # the shape colours underline the words (as text they are too faint on a dark theme)
        self.mode = W.HTML(
            '<span class="mlhub-help">Draw a <b class="mlhub-key" style="border-color:'
            f'{RECTANGLE_COLOR}">rectangle</b> (→ <code>bbox</code>) or a <b class="mlhub-key" '
            f'style="border-color:{POLYGON_COLOR}">polygon</b> (→ <code>intersects</code>) with '
            "the tools at the left of the map, or type the area below. Only one area is used: a "
            "new one replaces the old one. Click an item's footprint to preview it.</span>"
        )
        self.place = W.Combobox(
            options=country_names(),
            placeholder="a country, 'lat, lon' or 'W, S, E, N'",
            description="Place",
            ensure_option=False,
            continuous_update=False,
            tooltip="Offline place search: a country, 'lat, lon' or 'west, south, east, north'",
            style={"description_width": "45px"},
            layout=W.Layout(width="min(300px, 100%)"),
        )
        self.go_button = W.Button(
            description="Go",
            icon="crosshairs",
            tooltip="Show it on the map",
            layout=W.Layout(width="auto"),
        )
        self.use_place = W.Button(
            description="Use as area",
            icon="check",
            tooltip="Use the place found as the area filter",
            disabled=True,
            layout=W.Layout(width="auto"),
        )
        self.basemap = W.Dropdown(
            options=self._basemap_options(),
            value=self.basemap_url,
            description="Basemap",
            tooltip="The tiles under the map's layers (online ones stay blank offline)",
            style={"description_width": "65px"},
            layout=W.Layout(width="min(330px, 100%)"),
        )
        self.readout = W.HTML()
        self.message = W.HTML()
        self.west = W.FloatText(description="West", style={"description_width": "40px"})
        self.south = W.FloatText(description="South", style={"description_width": "40px"})
        self.east = W.FloatText(description="East", style={"description_width": "40px"})
        self.north = W.FloatText(description="North", style={"description_width": "40px"})
        for box in (self.west, self.south, self.east, self.north):
            box.layout = W.Layout(width="150px")
        self.apply_bbox = W.Button(description="Use bbox", icon="check", tooltip="Use this bbox")
        self.clear_button = W.Button(
            description="Clear area", icon="trash", tooltip="No area filter: the whole dataset"
        )
        self.zoom_button = W.Button(
            description="Zoom to dataset", icon="search-plus", tooltip="Fit the map to it"
        )
        self.geojson_text = W.Textarea(
            description="GeoJSON",
            placeholder='Paste a GeoJSON geometry, Feature or FeatureCollection, e.g. {"type": '
            '"Polygon", "coordinates": [[[…]]]}',
            style=LABEL_STYLE,
            layout=W.Layout(width="min(640px, 100%)", height="70px"),
        )
        self.apply_geojson = W.Button(
            description="Use GeoJSON", icon="check", tooltip="Use the pasted GeoJSON as the area"
        )
        self.upload = W.FileUpload(
            accept=".geojson,.json",
            multiple=False,
            description="Upload GeoJSON",
            icon="upload",
            layout=W.Layout(width="auto"),  # the fixed default width cut the label
        )
        self.tiles_status = StatusLine(st, ["tiles"])
        for widget, cls in [
            (self.map, "mlhub-map"),
            (self.place, "mlhub-place"),
            (self.go_button, "mlhub-place-go"),
            (self.use_place, "mlhub-place-use"),
            (self.basemap, "mlhub-basemap"),
            (self.tiles_status, "mlhub-tiles-status"),
            (self.readout, "mlhub-aoi-readout"),
            (self.message, "mlhub-aoi-message"),
            (self.west, "mlhub-bbox-west"),
            (self.south, "mlhub-bbox-south"),
            (self.east, "mlhub-bbox-east"),
            (self.north, "mlhub-bbox-north"),
            (self.apply_bbox, "mlhub-apply-bbox"),
            (self.clear_button, "mlhub-clear-area"),
            (self.zoom_button, "mlhub-zoom-dataset"),
            (self.geojson_text, "mlhub-geojson-text"),
            (self.apply_geojson, "mlhub-apply-geojson"),
            (self.upload, "mlhub-upload-geojson"),
        ]:
            widget.add_class(cls)

        wrap = W.Layout(flex_flow="row wrap", align_items="center")
        # A toggle button, not an Accordion: the Accordion header of ipywidgets 8 is a <div> that
        # only reacts to clicks, so keyboard users could not open it (and drawing needs a mouse).
        self.entry_toggle = W.ToggleButton(
            value=False,
            description="Type a bbox, paste or upload GeoJSON",
            icon="caret-right",
            tooltip="Show the fields to type the area instead of drawing it",
            layout=W.Layout(width="auto"),
        )
        self.entry = W.VBox(
            [
                W.HBox(
                    [self.west, self.south, self.east, self.north, self.apply_bbox], layout=wrap
                ),
                W.HBox([self.geojson_text, self.apply_geojson], layout=wrap),
                self.upload,
            ],
            layout=W.Layout(display="none"),
        )
        self.entry_toggle.add_class("mlhub-entry-toggle")
        self.entry.add_class("mlhub-area-entry")
        self.toolbar = W.HBox(
            [self.place, self.go_button, self.use_place, self.basemap], layout=wrap
        )
        self.toolbar.add_class("mlhub-map-toolbar")
        self.split = W.HBox(
            [self.map, self.items],
            layout=W.Layout(flex_flow="row wrap", align_items="flex-start", width="100%"),
        )
        self.split.add_class("mlhub-map-split")
        super().__init__(
            [
                css_widget(),
                self.mode,
                self.toolbar,
                self.tiles_status,
                self.split,
                W.HBox([self.clear_button, self.zoom_button, self.readout], layout=wrap),
                self.message,
                self.entry_toggle,
                self.entry,
            ]
        )
        self.add_class("mlhub-map-panel")
        self.add_class("mlhub-panel")
        self._place: Any = None
        self._clicked_row = -1

        self.entry_toggle.observe(self._on_entry_toggle, names="value")
        self.draw.observe(self._on_draw_data, names="data")
        self.map.on_interaction(self._on_interaction)
        self.apply_bbox.on_click(self._on_apply_bbox)
        self.apply_geojson.on_click(self._on_apply_geojson)
        self.upload.observe(self._on_upload, names="value")
        self.clear_button.on_click(lambda _b: self._set(self.state.filters.with_bbox(None)))
        self.zoom_button.on_click(lambda _b: self.zoom_to_dataset())
        self.go_button.on_click(lambda _b: self.go_to(self.place.value))
        self.place.observe(lambda c: self.go_to(c["new"]) if c["new"] else None, names="value")
        self.use_place.on_click(lambda _b: self._use_place())
        self.basemap.observe(self._on_basemap, names="value")
        st.observe(self._render_filters, names="filters")
        st.observe(self._render_dataset, names=["footprint", "collections"])
        st.observe(self._render_items, names=["item_selection"])
        st.observe(self._zoom_to_items, names=["item_frame"])
        st.observe(self._render_preview, names=["preview_row", "preview"])
        self._render_filters()
        self._render_dataset()
        self._render_items()

    def _basemap_options(self) -> list[tuple[str, str | None]]:
        options = list(BASEMAP_LABELS)
        if self.basemap_url is not None and all(self.basemap_url != u for _l, u in options):
            options.append(("Custom tiles", self.basemap_url))
        return options

    # -- intent ------------------------------------------------------------------------------
    def _set(self, filters: Filters) -> None:
        self.message.value = ""
        self.state.filters = filters

    def _fail(self, exc: Exception) -> None:
        self.message.value = msg_html("error", friendly_error(exc))

    def _on_draw_data(self, change: dict[str, Any]) -> None:
        """The draw control's shapes changed in the browser (created, edited or deleted)."""
        if self._syncing:
            return
        self.tracker.reset()
        self.state.preview_area(None)
        features = [f for f in change["new"] or [] if isinstance(f, dict) and f.get("geometry")]
        if len(features) > 1:  # a new shape: it replaces the previous one
            self._show(features[-1])
        try:
            if features:
                self._set(filters_from_feature(self.state.filters, features[-1]))
            else:
                self._set(self.state.filters.with_bbox(None))
        except (ValueError, TypeError) as exc:
            self._fail(exc)

    def _on_interaction(self, **event: Any) -> None:
        """A mouse event on the map: follow the shape being drawn (see ``SketchTracker``)."""
        coords = event.get("coordinates")
        if not coords or self.state.item_frame is None:
            return
        sketch = self.tracker.feed(str(event.get("type")), coords[0], coords[1], self.map.zoom)
        if sketch is NO_SKETCH:
            self.state.preview_area(None)
        elif sketch is not None:
            self.state.preview_area(sketch)

    def _on_layer_click(self, **event: Any) -> None:
        """A click on a vector layer: not a polygon vertex; on an item, preview it (the map
        stays where it is: the item is under the mouse)."""
        self.tracker.layer_clicked()
        props = event.get("properties") or {}
        row = props.get("row")
        if isinstance(row, int) and props.get("id") is not None:
            self._clicked_row = row
            try:
                self.state.preview_item(row)
            except ValueError as exc:
                self.state.set_error("preview", str(exc))

    def _on_entry_toggle(self, change: dict[str, Any]) -> None:
        self.entry.layout.display = None if change["new"] else "none"
        self.entry_toggle.icon = "caret-down" if change["new"] else "caret-right"

    def _on_apply_bbox(self, _button: object = None) -> None:
        bbox = (self.west.value, self.south.value, self.east.value, self.north.value)
        try:
            self._set(self.state.filters.with_bbox(bbox))
        except (ValueError, TypeError) as exc:
            self._fail(exc)

    def _use_geojson(self, text: str) -> None:
        try:
            obj = json.loads(text)
        except ValueError as exc:
            self._fail(ValueError(f"That is not GeoJSON text: {exc}"))
            return
        try:
            self._set(self.state.filters.with_intersects(obj))
        except (ValueError, TypeError) as exc:
            self._fail(exc)
            return
        self.zoom_to(self.state.filters)

    def _on_apply_geojson(self, _button: object = None) -> None:
        self._use_geojson(self.geojson_text.value)

    def _on_upload(self, change: dict[str, Any]) -> None:
        files = change["new"]
        if not files:
            return
        item = files[0]
        content = item["content"] if isinstance(item, dict) else item.content
        self.upload.value = ()  # so that uploading the same file again fires again
        try:
            text = bytes(content).decode("utf-8")
        except UnicodeDecodeError:
            self._fail(ValueError("The uploaded file is not UTF-8 text (GeoJSON is)."))
            return
        self._use_geojson(text)

    def go_to(self, text: str) -> None:
        """Show the place ``text`` names on the map (see :func:`.state.places.find_place`)."""
        try:
            place = find_place(text)
        except ValueError as exc:
            self._place = None
            self.use_place.disabled = True
            self._fail(exc)
            return
        self._place = place
        self.message.value = (
            f'<span class="mlhub-help">Showing <b>{esc(place.name)}</b>; "Use as area" makes '
            "it the area filter.</span>"
        )
        self.use_place.disabled = place.geometry.get("type") == "Point"
        self._fit(place.bounds)

    def _use_place(self) -> None:
        place = self._place
        if place is None:
            return
        try:
            if place.geometry.get("type") == "Polygon" and _ring_is_box(place.geometry):
                self._set(self.state.filters.with_bbox(place.bounds))
            else:
                self._set(self.state.filters.with_intersects(place.geometry))
        except (ValueError, TypeError) as exc:
            self._fail(exc)

    def _on_basemap(self, change: dict[str, Any]) -> None:
        url = change["new"]
        self.basemap_url = url
        set_basemap(self.map, url)
        if url is None:
            self.state.set_warning("tiles", None)
        else:
            self.state.check_tiles(url)

    # -- rendering -----------------------------------------------------------------------------
    def _show(self, feature: dict[str, Any] | None) -> None:
        self._syncing = True
        try:
            self.draw.data = [feature] if feature is not None else []
        finally:
            self._syncing = False

    def _render_filters(self, _change: object = None) -> None:
        f: Filters = self.state.filters
        drawn = [x for x in self.draw.data or [] if isinstance(x, dict) and x.get("geometry")]
        try:
            same = len(drawn) == 1 and _area_of(filters_from_feature(f, drawn[0])) == _area_of(f)
        except (ValueError, TypeError):
            same = False
        if not same and not (not drawn and _area_of(f) == (None, None)):
            self._show(feature_for(f))
        if f.bbox is not None:
            w, s, e, n = f.bbox
            with self.west.hold_trait_notifications():
                self.west.value, self.south.value, self.east.value, self.north.value = w, s, e, n
            kind = "<code>bbox</code> (rectangle)"
        elif f.intersects is not None:
            kind = "<code>intersects</code> (polygon)"
        else:
            kind = "none"
        self.readout.value = (
            f"Area filter: {kind} — <b>{esc(f.describe_area())}</b>"
            if kind != "none"
            else "Area filter: <b>none</b> (the whole dataset)"
        )

    def _render_dataset(self, _change: object = None) -> None:
        st = self.state
        fp = st.footprint
        self.footprint.data = {
            "type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": {}, "geometry": fp}] if fp else [],
        }
        features = []
        frame = st.collections
        if frame is not None:
            from shapely.geometry import mapping

            for row in frame.itertuples(index=False):
                geom = getattr(row, "geometry", None)
                if geom is not None and not geom.is_empty:
                    features.append(
                        {"type": "Feature", "properties": {"id": row.id}, "geometry": mapping(geom)}
                    )
        self.extents.data = json.loads(
            json.dumps({"type": "FeatureCollection", "features": features})
        )
        if fp:
            self.zoom_to_dataset()

    def _render_items(self, _change: object = None) -> None:
        st = self.state
        sel = st.item_selection
        features = st.item_features()
        if sel.sketch and len(features) > LIVE_LAYER_LIMIT:
            return
        chosen, other = split_features(features, sel.selected)
        with self.map.hold_sync():
            self.items_in.data = chosen
            self.items_out.data = other

    def _zoom_to_items(self, _change: object = None) -> None:
        """Once the items are loaded, show them all (a dataset's record often spans more)."""
        frame = self.state.item_frame
        if frame is None or not len(frame) or frame.geometry.isna().all():
            return
        w, s, e, n = (float(v) for v in frame.geometry.total_bounds)
        if all(v == v for v in (w, s, e, n)):  # not NaN
            self._fit((w, s, e, n))

    def _render_preview(self, _change: object = None) -> None:
        st = self.state
        record = st.item_record(st.preview_row) if st.preview_row >= 0 else None
        geometry = record.get("geometry") if record else None
        self.previewed.data = (
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "properties": {}, "geometry": geometry}],
            }
            if geometry
            else EMPTY
        )
        p = st.preview
        self.labels.data = dict(p.geojson) if p is not None and p.kind == "labels" else EMPTY
        if geometry and st.preview is None and st.preview_row != self._clicked_row:
            self._fit(_bounds(geometry), zoom_out=1)  # once, when the item is picked
        self._clicked_row = -1

    def zoom_to(self, filters: Filters) -> None:
        """Fit the map to the area of ``filters``."""
        feature = feature_for(filters)
        if feature is not None:
            self._fit(_bounds(feature["geometry"]))

    def zoom_to_dataset(self) -> None:
        """Fit the map to the selected dataset's footprint."""
        if self.state.footprint:
            self._fit(_bounds(self.state.footprint))

    def _fit(self, bounds: tuple[float, float, float, float], zoom_out: int = 0) -> None:
        fit(self.map, bounds)
        if zoom_out:
            self.map.zoom = max(1, self.map.zoom - zoom_out)


def _area_of(f: Filters) -> tuple[Any, Any]:
    def rnd(v: Any) -> Any:
        if isinstance(v, list | tuple):
            return tuple(rnd(x) for x in v)
        if isinstance(v, dict):
            return tuple(sorted((k, rnd(x)) for k, x in v.items()))
        if isinstance(v, float):
            return round(v, 7)
        return v

    return (rnd(f.bbox), rnd(f.intersects))
