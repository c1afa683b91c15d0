"""The explorer's maps: basemaps, the offline country outlines, fullscreen, fitting a view.

Basemaps
--------
``basemap`` chooses the tiles under the vector layers:

* ``"osm"`` (the default, unless ``MLHUB_BASEMAP`` says otherwise): OpenStreetMap tiles. They
  need internet *in the browser*; offline they simply stay blank (nothing else breaks).
* ``"imagery"``: Esri World Imagery (satellite and aerial photos), also online only.
* ``None`` or ``"none"``: no tile layer, no tile requests at all (air-gapped machines, CI).
* any other string: a tile URL template such as ``"https://tiles.example.org/{z}/{x}/{y}.png"``
  (or a local tile server on loopback).

The map panel also lets the user switch between them. Whatever the basemap, the bundled
Natural Earth country outlines (``widgets/data/naturalearth_countries.geojson``, public domain)
are drawn, so the map gives orientation with no tiles at all.
"""

from __future__ import annotations

import copy
import math
import os
from functools import cache
from typing import Any

import ipyleaflet as L
import ipywidgets as W

from .state.places import OUTLINES, country_outlines

__all__ = [
    "BASEMAP_ENV",
    "BASEMAP_LABELS",
    "IMAGERY_URL",
    "OSM_URL",
    "OUTLINES",
    "country_outlines",
    "fit_view",
    "make_map",
    "outlines_layer",
    "resolve_basemap",
    "tile_layer",
]

BASEMAP_ENV = "MLHUB_BASEMAP"
OSM_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = "© OpenStreetMap contributors"
IMAGERY_URL = (
    "https://server.arcgisonline.com/ArcGIS/rest/services/World_Imagery/MapServer/tile/{z}/{y}/{x}"
)
IMAGERY_ATTRIBUTION = (
    "Tiles © Esri — Source: Esri, Maxar, Earthstar Geographics, and the GIS User Community"
)
#: The basemap choices of the map panel: ``(label, tile URL or None)``.
BASEMAP_LABELS: list[tuple[str, str | None]] = [
    ("Country outlines only (offline)", None),
    ("OpenStreetMap (online)", OSM_URL),
    ("Satellite imagery, Esri (online)", IMAGERY_URL),
]
OUTLINE_STYLE = {
    "color": "#7f7f7f",
    "weight": 0.7,
    "opacity": 0.8,
    "fillColor": "#9e9e9e",
    "fillOpacity": 0.12,
}
#: The sea under the countries: invisible, but it takes the clicks that are not on a country,
#: so that every click outside drawing lands on a layer (see ``footprints.SketchTracker``).
SEA_STYLE = {"stroke": False, "fill": True, "fillColor": "#000000", "fillOpacity": 0}


def resolve_basemap(basemap: str | None = "default") -> str | None:
    """The tile URL template for ``basemap`` (``None``: no tiles). See the module docstring."""
    if basemap == "default":
        basemap = os.environ.get(BASEMAP_ENV, "osm")
    if basemap is None or basemap.strip().lower() in ("", "none", "off"):
        return None
    name = basemap.strip().lower()
    if name == "osm":
        return OSM_URL
    if name in ("imagery", "satellite", "esri"):
        return IMAGERY_URL
    return basemap.strip()


def tile_layer(url: str) -> L.TileLayer:
    """The basemap layer of a tile URL template (with the attribution its provider asks)."""
    attribution = {OSM_URL: OSM_ATTRIBUTION, IMAGERY_URL: IMAGERY_ATTRIBUTION}.get(url, "")
    return L.TileLayer(
        url=url, name="Basemap tiles", base=True, attribution=attribution, max_zoom=19
    )


@cache
def _styled_outlines() -> dict[str, Any]:
    data = copy.deepcopy(country_outlines())
    for feature in data["features"]:
        feature.setdefault("properties", {})["style"] = OUTLINE_STYLE
    sea = {
        "type": "Feature",
        "properties": {"name": "", "style": SEA_STYLE},
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[-540, -89], [540, -89], [540, 89], [-540, 89], [-540, -89]]],
        },
    }
    data["features"].insert(0, sea)
    return data


def outlines_layer() -> L.GeoJSON:
    """The country outlines (and the invisible sea under them) as a GeoJSON layer."""
    return L.GeoJSON(data=_styled_outlines(), name="Countries (Natural Earth)")


def make_map(basemap_url: str | None, height: str = "520px") -> L.Map:
    """A map with the basemap, zoom, fullscreen and scale controls, and no scroll-wheel zoom
    (the wheel scrolls the notebook; zoom with the buttons, a double click or the keyboard)."""
    layers = [tile_layer(basemap_url)] if basemap_url is not None else []
    m = L.Map(
        center=(15, 0),
        zoom=2,
        min_zoom=1,
        layers=tuple(layers),
        scroll_wheel_zoom=False,
        world_copy_jump=False,
        layout=W.Layout(height=height, width="100%"),
    )
    m.add(L.FullScreenControl(position="topleft"))
    m.add(L.ScaleControl(position="bottomleft"))
    return m


def set_basemap(m: L.Map, url: str | None) -> None:
    """Replace the map's basemap tiles (``None``: none)."""
    for layer in list(m.layers):
        if isinstance(layer, L.TileLayer) and layer.base:
            m.remove(layer)
    if url is not None:
        m.add(tile_layer(url), index=0)


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


def fit(m: L.Map, bounds: tuple[float, float, float, float]) -> None:
    """Centre and zoom ``m`` on ``bounds`` (works from worker threads: no browser round trip,
    unlike ``Map.fit_bounds``, a coroutine that needs the kernel's event loop)."""
    height = str(m.layout.height or "400px")
    rows = int(float(height[:-2])) if height.endswith("px") else 400
    center, zoom = fit_view(bounds, (640, max(200, rows - 20)))
    with m.hold_sync():
        m.center = center
        m.zoom = zoom
