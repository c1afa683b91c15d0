"""Item footprints: which items of the selected dataset the filters select, and the shape being
drawn on the map.

The explorer loads the dataset's items (``mw.items()`` frames, stac-geoparquet's layout) and
turns each row back into the item dict the download engine filters (:func:`item_records`).
:func:`select_items` applies :meth:`mlhub_widgets.filters.AssetFilter.select_assets` to them: an
item is *selected* when the download would fetch at least one of its assets (inside the area,
the dates, a wanted collection and asset key), exactly as :func:`~mlhub_widgets.download_dataset`
decides. Nothing here filters on its own.

:class:`SketchTracker` follows the map's mouse events to know the shape being drawn *before* the
draw tool reports it, so the count can follow the mouse.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...filters import AssetFilter
from .filters import Filters

__all__ = [
    "FOOTPRINT_LIMIT",
    "ItemSelection",
    "SketchTracker",
    "footprint_features",
    "item_records",
    "select_items",
    "selection_filter",
    "split_features",
]

#: Most items loaded for the map (the count says when a dataset has more).
FOOTPRINT_LIMIT = 5000

#: Columns of an items frame that are not item properties (stac-geoparquet's layout).
_NOT_PROPERTIES = frozenset(
    {
        "type",
        "stac_version",
        "stac_extensions",
        "id",
        "geometry",
        "bbox",
        "links",
        "assets",
        "collection",
    }
)


@dataclass(frozen=True)
class ItemSelection:
    """Which loaded items the filters (or the shape being drawn) select.

    Attributes:
        selected: row positions (in the items frame) of the selected items.
        total: items loaded.
        sketch: True when counted for a shape still being drawn.
        problem: why nothing can be selected (e.g. the end date is before the start).
    """

    selected: frozenset[int] = field(default_factory=frozenset)
    total: int = 0
    sketch: bool = False
    problem: str = ""

    @property
    def count(self) -> int:
        """How many items are selected."""
        return len(self.selected)


def _plain(value: Any) -> Any:
    from ...discovery.export import plain_value

    return plain_value(value)


def item_records(frame: Any) -> list[dict[str, Any]]:
    """The items of an items frame as the STAC item dicts the download engine filters
    (``id``, ``collection``, ``bbox``, ``geometry``, ``properties``, ``assets``)."""
    out: list[dict[str, Any]] = []
    if frame is None or len(frame) == 0:
        return out
    columns = list(frame.columns)
    names = [c for c in columns if c not in _NOT_PROPERTIES]
    for row in frame.itertuples(index=False, name=None):
        values = dict(zip(columns, row, strict=True))
        geom = values.get("geometry")
        bbox = _plain(values.get("bbox"))
        if bbox is None and geom is not None and not geom.is_empty:
            bbox = [float(v) for v in geom.bounds]
        out.append(
            {
                "type": "Feature",
                "id": str(values["id"]),
                "collection": str(values.get("collection") or ""),
                "bbox": bbox,
                "geometry": None if geom is None or geom.is_empty else _plain(geom),
                "properties": {name: _plain(values[name]) for name in names},
                "assets": _plain(values.get("assets")) or {},
            }
        )
    return out


def selection_filter(filters: Filters, sketch: Mapping[str, Any] | None = None) -> AssetFilter:
    """The :class:`AssetFilter` a download with ``filters`` would use; with ``sketch`` (a
    GeoJSON geometry being drawn) as the area instead of the filters' one.

    Raises:
        ValueError: the filters cannot be downloaded (see :meth:`Filters.problems`), or the
            sketch is not a usable area.
    """
    if sketch is not None:
        if _is_box(sketch):
            filters = filters.with_bbox(_box_bounds(sketch))
        else:
            filters = filters.with_intersects(dict(sketch))
    return AssetFilter.build(**filters.download_kwargs())


def select_items(records: Sequence[Mapping[str, Any]], flt: AssetFilter) -> frozenset[int]:
    """Positions of the records of which ``flt`` selects at least one asset."""
    return frozenset(
        i for i, r in enumerate(records) if flt.select_assets(r, str(r.get("collection") or ""))
    )


def footprint_features(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One GeoJSON Feature per record with a geometry (``properties``: ``id``, ``collection``,
    ``row``: the record's position, ``datetime``)."""
    out = []
    for i, r in enumerate(records):
        if not r.get("geometry"):
            continue
        props = r.get("properties") or {}
        when = props.get("datetime") or props.get("start_datetime") or ""
        out.append(
            {
                "type": "Feature",
                "properties": {
                    "id": r["id"],
                    "collection": r.get("collection"),
                    "row": i,
                    "datetime": str(when)[:10],
                },
                "geometry": r["geometry"],
            }
        )
    return out


def split_features(
    features: Iterable[Mapping[str, Any]], selected: frozenset[int]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(selected, left out)`` FeatureCollections of ``features`` (see
    :func:`footprint_features`)."""
    chosen: list[Any] = []
    other: list[Any] = []
    for f in features:
        (chosen if f["properties"]["row"] in selected else other).append(f)
    return (
        {"type": "FeatureCollection", "features": chosen},
        {"type": "FeatureCollection", "features": other},
    )


# -- the shape being drawn -----------------------------------------------------------------------


def _is_box(geometry: Mapping[str, Any]) -> bool:
    if geometry.get("type") != "Polygon":
        return False
    ring = geometry.get("coordinates", [[]])[0]
    pts = {(round(p[0], 9), round(p[1], 9)) for p in ring}
    return len(pts) == 4 and len({p[0] for p in pts}) == 2 and len({p[1] for p in pts}) == 2


def _box_bounds(geometry: Mapping[str, Any]) -> tuple[float, float, float, float]:
    ring = geometry["coordinates"][0]
    xs = [float(p[0]) for p in ring]
    ys = [float(p[1]) for p in ring]
    return (min(xs), min(ys), max(xs), max(ys))


def _clamp(lat: float, lon: float) -> tuple[float, float]:
    return (max(-90.0, min(90.0, lat)), max(-180.0, min(180.0, lon)))


def box_geometry(a: tuple[float, float], b: tuple[float, float]) -> dict[str, Any]:
    """The rectangle with corners ``a`` and ``b`` (``(lat, lon)``) as a GeoJSON Polygon."""
    (la, oa), (lb, ob) = _clamp(*a), _clamp(*b)
    w, e, s, n = min(oa, ob), max(oa, ob), min(la, lb), max(la, lb)
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


class SketchTracker:
    """The shape being drawn, from the map's mouse events (Leaflet's ``interaction`` events).

    The draw tool reports a shape only once it is finished. Meanwhile:

    * **a rectangle** is a drag: a press, then moves that take the point under the mouse away
      from where the press was. (Panning the map is a drag too, but it keeps the point under
      the mouse where it was, so it is not taken for a rectangle.) The release ends it.
    * **a polygon** is made of clicks that no map layer received: while the polygon tool is on,
      it catches every click above the layers, whereas a click outside drawing lands on a layer
      first (the map always has one under every point: the outlines' sea). The moves after two
      vertices give the polygon closed at the mouse.

    :meth:`feed` takes each event and returns the sketch (a GeoJSON geometry) when it changed,
    :data:`NO_SKETCH` when the drawing ended, or None when nothing changed. :meth:`reset`
    forgets everything (the draw tool reported a shape).
    """

    #: Screen pixels the mouse must move from the press point before a drag is a rectangle.
    DRAG_PIXELS = 12.0

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the press, the vertices and the sketch."""
        self._press: tuple[float, float] | None = None
        self._dragged = 0
        self._vertices: list[tuple[float, float]] = []
        self._layer_click = False
        self.sketch: dict[str, Any] | None = None

    def layer_clicked(self) -> None:
        """A map layer received a click: the next map click is not a polygon vertex."""
        self._layer_click = True
        self._vertices = []

    def feed(self, kind: str, lat: float, lon: float, zoom: float) -> dict[str, Any] | None:
        """Follow one mouse event; see the class docstring for the return value."""
        point = (float(lat), float(lon))
        if kind == "mousedown":
            self._press = point
            self._dragged = 0
            return None
        if kind == "mouseup":
            was_box = self._dragged >= 2
            self._press = None
            self._dragged = 0
            if was_box:
                self._vertices = []
                return self._set(None)
            return None
        if kind == "click":
            if self._layer_click:
                self._layer_click = False
                return None
            self._vertices.append(point)
            return self._polygon(point)
        if kind == "dblclick":
            self._vertices = []
            return self._set(None)
        if kind != "mousemove":
            return None
        if self._press is not None:
            if self._far(self._press, point, zoom):
                self._dragged += 1
            if self._dragged >= 2:  # two moves away from the press: not a pan
                return self._set(box_geometry(self._press, point))
            return None
        if len(self._vertices) >= 2:
            return self._polygon(point)
        return None

    def _polygon(self, cursor: tuple[float, float]) -> dict[str, Any] | None:
        pts = [*self._vertices]
        if pts[-1] != cursor:
            pts.append(cursor)
        if len(pts) < 3:
            return None
        ring = [[_clamp(*p)[1], _clamp(*p)[0]] for p in pts]
        ring.append(ring[0])
        return self._set({"type": "Polygon", "coordinates": [ring]})

    def _set(self, sketch: dict[str, Any] | None) -> dict[str, Any] | None:
        if sketch == self.sketch:
            return None
        self.sketch = sketch
        return sketch if sketch is not None else NO_SKETCH

    def _far(self, a: tuple[float, float], b: tuple[float, float], zoom: float) -> bool:
        degrees_per_pixel = 360.0 / (256.0 * 2.0 ** max(0.0, zoom))
        # latitude degrees are longer on screen away from the equator (Web Mercator)
        stretch = 1.0 / max(0.05, math.cos(math.radians((a[0] + b[0]) / 2)))
        dy = abs(a[0] - b[0]) * stretch
        dx = abs(a[1] - b[1])
        return bool(max(dx, dy) > self.DRAG_PIXELS * degrees_per_pixel)


#: What :meth:`SketchTracker.feed` returns when the drawing ended.
NO_SKETCH: dict[str, Any] = {}
