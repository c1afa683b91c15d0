"""MapFilterPanel: the dataset on a map, and the area of interest (bbox *or* intersects).

Basemaps
--------
``basemap`` chooses the tiles under the vector layers:

* ``"osm"`` (the default, unless ``MLHUB_BASEMAP`` says otherwise): OpenStreetMap tiles. They
  need internet *in the browser*; offline they simply stay blank (nothing else breaks).
* ``None`` or ``"none"``: no tile layer, no tile requests at all (air-gapped machines, CI).
* any other string: a tile URL template such as ``"https://tiles.example.org/{z}/{x}/{y}.png"``
  (or a local tile server on loopback).

Whatever the basemap, the panel always draws the bundled Natural Earth country outlines
(``widgets/data/naturalearth_countries.geojson``, public domain), so the map gives orientation
with no tiles at all.
"""

from __future__ import annotations

import json
import math
import os
from functools import cache
from pathlib import Path
from typing import Any

import ipyleaflet as L
import ipywidgets as W

from ._common import LABEL_STYLE, css_widget, esc, msg_html
from .state import ExplorerState, Filters, friendly_error

BASEMAP_ENV = "MLHUB_BASEMAP"
OSM_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = "© OpenStreetMap contributors"
OUTLINES = Path(__file__).with_name("data") / "naturalearth_countries.geojson"

RECTANGLE_COLOR = "#d62728"
POLYGON_COLOR = "#9467bd"
FOOTPRINT_COLOR = "#1f77b4"
EXTENT_COLOR = "#ff7f0e"


@cache
def country_outlines() -> dict[str, Any]:
    """The bundled Natural Earth 1:110m country outlines as a GeoJSON FeatureCollection."""
    data: dict[str, Any] = json.loads(OUTLINES.read_text(encoding="utf-8"))
    return data


def resolve_basemap(basemap: str | None = "default") -> str | None:
    """The tile URL template for ``basemap`` (``None``: no tiles). See the module docstring."""
    if basemap == "default":
        basemap = os.environ.get(BASEMAP_ENV, "osm")
    if basemap is None or basemap.strip().lower() in ("", "none", "off"):
        return None
    if basemap.strip().lower() == "osm":
        return OSM_URL
    return basemap.strip()


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
    """The selected dataset's footprint and collection extents, and the area of interest.

    Draw a rectangle (→ ``bbox``) or a polygon (→ ``intersects``) with the tools on the map, edit
    or delete it there; or type a bbox, paste or upload GeoJSON. There is one area at a time:
    a new one replaces the old one, because the download API takes ``bbox`` or ``intersects``,
    never both.

    Args:
        state: the shared state (a new one if omitted).
        basemap: ``"osm"``, ``None``/``"none"`` or a tile URL template; the default reads
            ``MLHUB_BASEMAP`` (else ``"osm"``). Country outlines are always drawn.
    """

    def __init__(self, state: ExplorerState | None = None, *, basemap: str | None = "default"):
        self.state = state if state is not None else ExplorerState()
        st = self.state
        self._syncing = False
        self.basemap_url = resolve_basemap(basemap)

        layers: list[Any] = []
        if self.basemap_url is not None:
            attribution = OSM_ATTRIBUTION if self.basemap_url == OSM_URL else ""
            layers.append(
                L.TileLayer(
                    url=self.basemap_url,
                    name="Basemap tiles",
                    base=True,
                    attribution=attribution,
                    max_zoom=19,
                )
            )
        self.map = L.Map(
            center=(15, 0),
            zoom=2,
            min_zoom=1,
            layers=tuple(layers),
            scroll_wheel_zoom=True,
            world_copy_jump=False,
            layout=W.Layout(height="420px", width="100%"),
        )
        self.outlines = L.GeoJSON(
            data=country_outlines(),
            name="Countries (Natural Earth)",
            style={
                "color": "#7f7f7f",
                "weight": 0.7,
                "opacity": 0.8,
                "fillColor": "#9e9e9e",
                "fillOpacity": 0.12,
            },
        )
        self.extents = L.GeoJSON(
            data={"type": "FeatureCollection", "features": []},
            name="Collection extents",
            style={"color": EXTENT_COLOR, "weight": 1.5, "fillOpacity": 0.03, "dashArray": "4 4"},
        )
        self.footprint = L.GeoJSON(
            data={"type": "FeatureCollection", "features": []},
            name="Dataset footprint",
            style={"color": FOOTPRINT_COLOR, "weight": 2, "fillOpacity": 0.08},
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
        for layer in (self.outlines, self.extents, self.footprint):
            self.map.add(layer)
        self.map.add(self.draw)
        self.map.add(L.LayersControl(position="topright"))
        self.map.add(L.ScaleControl(position="bottomleft"))

        # the shape colours underline the words (as text they are too faint on a dark theme)
        self.mode = W.HTML(
            '<span class="mlhub-help">Draw a <b class="mlhub-key" style="border-color:'
            f'{RECTANGLE_COLOR}">rectangle</b> (→ <code>bbox</code>) or a <b class="mlhub-key" '
            f'style="border-color:{POLYGON_COLOR}">polygon</b> (→ <code>intersects</code>) with '
            "the tools at the left of the map, or type the area below. Only one area is used: a "
            "new one replaces the old one.</span>"
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
        for widget, cls in [
            (self.map, "mlhub-map"),
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
        super().__init__(
            [
                css_widget(),
                self.mode,
                self.map,
                W.HBox([self.clear_button, self.zoom_button, self.readout], layout=wrap),
                self.message,
                self.entry_toggle,
                self.entry,
            ]
        )
        self.add_class("mlhub-map-panel")
        self.add_class("mlhub-panel")

        self.entry_toggle.observe(self._on_entry_toggle, names="value")
        self.draw.observe(self._on_draw_data, names="data")
        self.apply_bbox.on_click(self._on_apply_bbox)
        self.apply_geojson.on_click(self._on_apply_geojson)
        self.upload.observe(self._on_upload, names="value")
        self.clear_button.on_click(lambda _b: self._set(self.state.filters.with_bbox(None)))
        self.zoom_button.on_click(lambda _b: self.zoom_to_dataset())
        st.observe(self._render_filters, names="filters")
        st.observe(self._render_dataset, names=["footprint", "collections"])
        self._render_filters()
        self._render_dataset()

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

    def zoom_to(self, filters: Filters) -> None:
        """Fit the map to the area of ``filters``."""
        feature = feature_for(filters)
        if feature is not None:
            self._fit(_bounds(feature["geometry"]))

    def zoom_to_dataset(self) -> None:
        """Fit the map to the selected dataset's footprint."""
        if self.state.footprint:
            self._fit(_bounds(self.state.footprint))

    def _fit(self, bounds: tuple[float, float, float, float]) -> None:
        # Not Map.fit_bounds: it is a coroutine that needs the kernel's event loop and browser
        # round trips, and this runs in worker threads too. Compute centre and zoom instead.
        center, zoom = fit_view(bounds)
        with self.map.hold_sync():
            self.map.center = center
            self.map.zoom = zoom


def fit_view(
    bounds: tuple[float, float, float, float], size: tuple[int, int] = (640, 400)
) -> tuple[tuple[float, float], int]:
    """Centre ``(lat, lon)`` and Web-Mercator zoom that show ``bounds`` in ``size`` pixels."""
    w, s, e, n = bounds
    s, n = max(s, -85.0), min(n, 85.0)

    def merc(lat: float) -> float:
        return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))

    dlon = max(e - w, 1e-6)
    dy = max(merc(n) - merc(s), 1e-6)
    zoom_x = math.log2(size[0] * 360.0 / (256.0 * dlon * 1.15))
    zoom_y = math.log2(size[1] * 2 * math.pi / (256.0 * dy * 1.15))
    zoom = int(max(1, min(18, math.floor(min(zoom_x, zoom_y)))))
    mid_y = (merc(n) + merc(s)) / 2
    lat = math.degrees(2 * math.atan(math.exp(mid_y)) - math.pi / 2)
    return (lat, (w + e) / 2), zoom


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
