"""Generated catalogues for the datasets the registry records only as metadata.

The recording of the retired MLHub holds the dataset records and their collections, but the
catalogue of only one dataset. For every other dataset whose collections are recorded, the hub
generates a small, deterministic STAC catalogue so that each dataset it lists can be downloaded:

* recorded items are used as they are (the registry's ``items/<collection>.json``), with
  ``file:size`` and ``file:checksum`` added for their generated asset bytes;
* any other collection gets a few items inside its recorded spatial and temporal extent, on up to
  four small tiles (0.02°, 32 x 32 pixels): source imagery collections one or two dates per tile
  with an ``image`` GeoTIFF (bands by sensor) and a ``thumbnail`` PNG; label collections one item
  per tile with the label extension (``label:type``, ``label:properties``, ``label:classes`` by
  theme: buildings, roads, land cover, crops...), a ``labels`` GeoJSON (or a class raster for land
  cover) and the collection's ``documentation`` PDF, and ``source`` links to the source items of
  the same dataset on the same tile and in the labels' years;
* asset bytes are valid files of their format, georeferenced on their item's tile; labels and
  imagery of a tile share one field pattern, so pairs look like pairs. Nothing is stored: items
  are built on first use (a few milliseconds per dataset) and any asset is rebuilt from its URL
  path on request.

Bump :data:`VERSION` whenever the generated output changes (it keys the catalogue cache).
"""

from __future__ import annotations

import functools
import json
import posixpath
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from . import formats, synth
from .items import API_ROOT, BLOB_ROOT, parse_time
from .links import api_source_link as _source_link
from .links import catalog_source_links as _catalog_source_links
from .links import source_ref as _source_ref

__all__ = ["VERSION", "GeneratedDataset", "Theme", "theme_for"]

JSON = dict[str, Any]

#: Version of the generated output (part of the catalogue cache key).
VERSION = 1
SIDE = 32  # pixels per tile side
FIELD = 8  # pixels per field side: 4 x 4 fields per tile
TILE_DEG = 0.02  # tile side in degrees (less in small extents)
TILES = 4
MAX_TILES = 12
FILE_EXT = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
EO_EXT = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
LABEL_EXT = "https://stac-extensions.github.io/label/v1.0.1/schema.json"
#: Short extension names of pre-1.0 items, as STAC 1.0 schema URLs.
OLD_EXTENSIONS = {
    "label": LABEL_EXT,
    "eo": EO_EXT,
    "file": FILE_EXT,
    "sat": "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
    "proj": "https://stac-extensions.github.io/projection/v1.0.0/schema.json",
    "projection": "https://stac-extensions.github.io/projection/v1.0.0/schema.json",
    "scientific": "https://stac-extensions.github.io/scientific/v1.0.0/schema.json",
    "view": "https://stac-extensions.github.io/view/v1.0.0/schema.json",
}
TIFF = "image/tiff; application=geotiff"


# -- themes and sensors ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Theme:
    """What a label collection's generated labels are.

    ``prop`` is the GeoJSON property holding the class (``None`` for raster labels); ``classes``
    is ``None`` for regression labels; ``tile_level`` labels have one feature per tile.
    """

    label_type: str
    prop: str | None
    classes: tuple[str, ...] | None
    tasks: tuple[str, ...]
    description: str
    tile_level: bool = False


CROPS = ("maize", "wheat", "rice", "soybean", "cassava", "sorghum", "groundnut", "other")
LAND_COVER = ("water", "tree canopy", "low vegetation", "barren", "impervious", "cropland")
THEMES: tuple[tuple[tuple[str, ...], Theme], ...] = (
    (("building",), Theme("vector", "building", ("building",), ("segmentation", "detection"),
                          "Building footprints")),
    (("road",), Theme("vector", "road_type", ("road",), ("segmentation",), "Road network")),
    (("_lc", "nlcd", "land cover"), Theme("raster", None, LAND_COVER, ("segmentation",),
                                          "Land cover class of each pixel")),
    (("flood",), Theme("vector", "flooding", ("flood", "no flood"), ("classification",),
                       "Whether the tile is flooded", tile_level=True)),
    (("tropical storm",), Theme("vector", "wind_speed", None, ("regression",),
                                "Maximum sustained wind speed (kn)", tile_level=True)),
    (("fuel moisture",), Theme("vector", "percent", None, ("regression",),
                               "Live fuel moisture content (%)", tile_level=True)),
    (("marine debris",), Theme("vector", "class", ("marine debris",), ("detection",),
                               "Marine debris")),
    (("crop type", "cashew"), Theme("vector", "crop_type", CROPS,
                                    ("classification", "segmentation"), "Crop type of each field")),
)  # fmt: skip
DEFAULT_THEME = Theme("vector", "class", ("class_1", "class_2", "class_3"), ("classification",),
                      "Class of each field")  # fmt: skip

Band = tuple[str, str | None]  # (name, eo common name)
SENSORS: tuple[tuple[tuple[str, ...], tuple[Band, ...]], ...] = (
    (("sentinel_1", "_s1", "s1_", "sentinel-1", "sar"), (("VV", None), ("VH", None))),
    (("sentinel_2", "_s2", "s2_", "sentinel-2"),
     (("B02", "blue"), ("B03", "green"), ("B04", "red"), ("B08", "nir"))),
    (("planet",), (("blue", "blue"), ("green", "green"), ("red", "red"), ("nir", "nir"))),
    (("landsat",), (("B2", "blue"), ("B3", "green"), ("B4", "red"), ("B5", "nir"))),
    (("naip",), (("red", "red"), ("green", "green"), ("blue", "blue"), ("nir", "nir"))),
    (("goes",), (("C13", "lwir"),)),
)  # fmt: skip
RGB: tuple[Band, ...] = (("red", "red"), ("green", "green"), ("blue", "blue"))


def _match(
    keyed: Sequence[tuple[tuple[str, ...], Any]], collection_id: str, tags: list[str]
) -> Any:
    """The value of the first entry whose keyword is in the collection id, else in the tags."""
    for text in (collection_id.lower(), " | ".join(tags).lower()):
        for keywords, value in keyed:
            if any(k in text for k in keywords):
                return value
    return None


def theme_for(collection_id: str, tags: list[str]) -> Theme:
    """The label theme of a collection, by keywords of its id, then of its dataset's tags."""
    theme: Theme = _match(THEMES, collection_id, tags) or DEFAULT_THEME
    if "image classification" in tags and not theme.tile_level:
        theme = Theme(
            "vector",
            theme.prop or "class",
            theme.classes,
            ("classification",),
            f"{theme.description.split(' of each')[0]} of each tile",
            tile_level=True,
        )
    return theme


# -- tiles, recipes and bytes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Tile:
    """A small square of a dataset on which items are generated."""

    key: str
    west: float
    south: float
    east: float
    north: float

    @property
    def bbox(self) -> list[float]:
        return [self.west, self.south, self.east, self.north]

    @property
    def geometry(self) -> JSON:
        w, s, e, n = self.bbox
        return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}

    @property
    def seed(self) -> int:
        return synth.path_hash("tile", *(f"{v:.5f}" for v in self.bbox))


@dataclass(frozen=True)
class Recipe:
    """How to make the bytes of one generated asset (see :meth:`GeneratedDataset.asset_bytes`)."""

    kind: str  # image | thumbnail | raster_labels | vector_labels | document | table | other
    tile: Tile | None = None
    bands: int = 1
    theme: Theme | None = None
    title: str = ""


@functools.lru_cache(maxsize=4096)
def _scene(tile: Tile) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The tile's field pattern: 4 x 4 fields with a value 0..7 each (shared by all assets)."""
    n = SIDE // FIELD
    values = random.Random(tile.seed).randbytes(n * n)
    return (np.frombuffer(values, dtype=np.uint8).astype(np.int64) % 8).reshape(n, n)


def _upsample(fields: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Fields to pixels: each field value repeated over its FIELD x FIELD pixels."""
    return np.repeat(np.repeat(fields, FIELD, axis=0), FIELD, axis=1)


def _classes_of(theme: Theme, scene: np.ndarray[Any, np.dtype[np.int64]]) -> list[list[int]]:
    """Per field, the 1-based class index (0: no object, for one-class themes)."""
    count = len(theme.classes or ())
    if count == 1:
        return [[1 if v < 3 else 0 for v in row] for row in scene.tolist()]
    return [[v % max(count, 1) + 1 for v in row] for row in scene.tolist()]


def _noise(seed: int, n: int) -> np.ndarray[Any, np.dtype[np.int64]]:
    pool = synth.pool()
    start = seed % (len(pool) - n)
    raw = np.frombuffer(pool, dtype=np.uint8, count=n, offset=start)
    return raw.astype(np.int64) // 2 - 64


def _pixels(tile: Tile, bands: int, seed: int) -> np.ndarray[Any, np.dtype[np.uint16]]:
    base = 400 + 250 * np.arange(bands, dtype=np.int64)
    cube = _upsample(700 * _scene(tile))[:, :, None] + base
    cube = cube + _noise(seed, SIDE * SIDE * bands).reshape(SIDE, SIDE, bands)
    out: np.ndarray[Any, np.dtype[np.uint16]] = np.clip(cube, 1, 10000).astype("<u2")
    return out


def _geotiff(tile: Tile, bands: int, bits: int, pixels: bytes) -> bytes:
    return formats.geotiff(
        SIDE,
        SIDE,
        bands,
        bits,
        pixels,
        west=tile.west,
        north=tile.north,
        res_x=(tile.east - tile.west) / SIDE,
        res_y=(tile.north - tile.south) / SIDE,
    )


def _field_ring(tile: Tile, r: int, c: int) -> list[list[float]]:
    dx, dy = (tile.east - tile.west) / SIDE * FIELD, (tile.north - tile.south) / SIDE * FIELD
    x0, y1 = tile.west + c * dx, tile.north - r * dy
    x1, y0 = x0 + dx, y1 - dy
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return [[round(x, 7), round(y, 7)] for x, y in ring]


def _vector_labels(tile: Tile, theme: Theme) -> bytes:
    scene = _scene(tile)
    prop = theme.prop or "class"
    feats: list[JSON] = []
    if theme.classes is None:  # regression: one value for the tile
        value = round(20 + (tile.seed % 1000) / 10, 1)
        feats.append({"type": "Feature", "properties": {prop: value}, "geometry": tile.geometry})
    elif theme.tile_level:
        counts = np.bincount([c for row in _classes_of(theme, scene) for c in row])
        name = theme.classes[max(int(np.argmax(counts)), 1) - 1]
        feats.append({"type": "Feature", "properties": {prop: name}, "geometry": tile.geometry})
    else:
        for r, row in enumerate(_classes_of(theme, scene)):
            for c, cls in enumerate(row):
                if cls:
                    geom = {"type": "Polygon", "coordinates": [_field_ring(tile, r, c)]}
                    props = {prop: theme.classes[cls - 1]}
                    feats.append({"type": "Feature", "properties": props, "geometry": geom})
    return formats.geojson_file(feats)


def _raster_labels(tile: Tile, theme: Theme) -> bytes:
    classes = np.array(_classes_of(theme, _scene(tile)), dtype=np.uint8)
    return _geotiff(tile, 1, 8, _upsample(classes).tobytes())


def _thumbnail(tile: Tile, seed: int) -> bytes:
    grey = _pixels(tile, 1, seed)[:, :, 0].astype(np.int64)
    scaled = np.clip((grey - 300) * 255 // 5600, 0, 255).astype(np.uint8)
    return formats.png_file(SIDE, SIDE, scaled.tobytes())


def make_bytes(path: str, recipe: Recipe) -> bytes:
    """The bytes of the generated asset at URL path ``path`` (deterministic)."""
    seed = synth.path_hash("asset", path)
    tile, theme = recipe.tile, recipe.theme
    if recipe.kind == "image" and tile is not None:
        return _geotiff(tile, recipe.bands, 16, _pixels(tile, recipe.bands, seed).tobytes())
    if recipe.kind == "thumbnail" and tile is not None:
        return _thumbnail(tile, seed)
    if recipe.kind == "raster_labels" and tile is not None and theme is not None:
        return _raster_labels(tile, theme)
    if recipe.kind == "vector_labels" and tile is not None and theme is not None:
        return _vector_labels(tile, theme)
    if recipe.kind == "document":
        return formats.pdf_file(recipe.title or posixpath.basename(path))
    if recipe.kind == "table":
        rows = [(i, (seed >> (i % 48)) % 100_000 / 997.0, f"class_{i % 7}") for i in range(64)]
        return formats.csv_file(rows)
    return synth.generate(path, synth.default_size(path)).read()


# -- time -----------------------------------------------------------------------------------------


def _when(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    return datetime.fromtimestamp(parse_time(text), UTC)


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _interval(col: JSON) -> tuple[datetime, datetime | None]:
    """The first temporal interval of a collection (start defaults to 2020-01-01)."""
    intervals = ((col.get("extent") or {}).get("temporal") or {}).get("interval") or [[None, None]]
    start, end = (_when(v) for v in [*intervals[0], None, None][:2])
    start = start or end or datetime(2020, 1, 1, tzinfo=UTC)
    return start, end if end is not None and end >= start else None


def _years(start: datetime, end: datetime | None) -> tuple[datetime, datetime]:
    """The calendar years a label interval falls in: the window its source imagery comes from."""
    last = end or start
    return datetime(start.year, 1, 1, tzinfo=UTC), datetime(
        last.year, 12, 31, 23, 59, 59, tzinfo=UTC
    )


def _dates(span: tuple[datetime, datetime | None], count: int) -> list[datetime]:
    start, end = span
    if end is None or end <= start:
        return [start]
    out = []
    for k in range(count):
        t = start + (end - start) * (k + 1) / (count + 1)
        t = t.replace(hour=10, minute=30, second=0, microsecond=0)
        out.append(min(max(t, start), end))
    return sorted(set(out))


# -- the generator --------------------------------------------------------------------------------


def _bbox(col: JSON) -> tuple[float, float, float, float]:
    boxes = ((col.get("extent") or {}).get("spatial") or {}).get("bbox") or [[-180, -90, 180, 90]]
    w, s, e, n = (float(v) for v in (boxes[0][:2] + boxes[0][-2:]))
    if e < w:  # across the antimeridian: keep the western part
        e = 180.0
    return w, s, e, n


def _api_links(cid: str, item_id: str) -> list[JSON]:
    col = f"{API_ROOT}collections/{cid}"
    return [
        {"rel": "collection", "type": "application/json", "href": col},
        {"rel": "parent", "type": "application/json", "href": col},
        {"rel": "root", "type": "application/json", "href": API_ROOT},
        {"rel": "self", "type": "application/geo+json", "href": f"{col}/items/{item_id}"},
    ]


@dataclass
class _Source:
    cid: str
    id: str
    tile: str
    when: datetime


@dataclass
class _Collection:
    id: str
    json: JSON
    source: bool
    labels: bool
    tiles: list[Tile] = field(default_factory=list)


class GeneratedDataset:
    """The generated catalogue of one dataset: items per collection and their asset recipes.

    Args:
        dataset_id: the dataset.
        record: its MLHub record (``collections`` with ``types``, ``tags``, ``title``).
        collections: the recorded STAC Collections of the dataset, by id.
        recorded: recorded items by collection id (asset hrefs on the blob store or relative to
            the item's folder of a collection archive, ``<collection>/<item>/``).
    """

    def __init__(
        self,
        dataset_id: str,
        record: JSON,
        collections: dict[str, JSON],
        recorded: dict[str, list[JSON]],
    ) -> None:
        self.id = dataset_id
        self.tags = [str(t) for t in record.get("tags") or []]
        self.collections: list[_Collection] = []
        for entry in record.get("collections") or []:
            cid = str(entry.get("id"))
            if cid in collections:
                types = set(entry.get("types") or [])
                labels = "labels" in types
                source = "source_imagery" in types or not labels
                self.collections.append(_Collection(cid, collections[cid], source, labels))
        self._items: dict[str, list[JSON]] = {c.id: [] for c in self.collections}
        self._extra: dict[str, list[str]] = {c.id: [] for c in self.collections}
        self._recipes: dict[str, Recipe] = {}
        self._made: dict[str, tuple[int, str]] = {}
        self._tiles: dict[tuple[float, ...], Tile] = {}
        self._sources: list[_Source] = []
        generated = [c for c in self.collections if c.id not in recorded]
        for col in self.collections:
            if col.id in recorded:
                self._recorded(col, recorded[col.id])
        self._place_tiles(generated)
        for col in generated:
            if col.source:
                self._source_items(col)
        for col in generated:
            if col.labels:
                self._label_items(col)

    # -- public --------------------------------------------------------------------------------

    @property
    def collection_ids(self) -> list[str]:
        """The collections of the catalogue, in the record's order."""
        return [c.id for c in self.collections]

    def items(self, collection_id: str) -> list[JSON]:
        """A collection's items as the API serves them (placeholder URLs)."""
        return self._items.get(collection_id, [])

    def catalog_links(self, collection_id: str) -> list[str]:
        """Per item, the ``source`` links of its catalogue copy (``",{...}"`` or ``""``)."""
        return self._extra.get(collection_id, [])

    def asset_bytes(self, path: str) -> bytes | None:
        """The bytes of the asset at URL path ``path`` (``mlhub/...``), or None if unknown."""
        recipe = self._recipes.get(path)
        return None if recipe is None else make_bytes(path, recipe)

    # -- assets --------------------------------------------------------------------------------

    def _asset(self, path: str, recipe: Recipe, media: str, roles: list[str], **extra: Any) -> JSON:
        """A generated asset on the blob store at ``path``, with ``file:size``/``file:checksum``."""
        asset: JSON = {"href": BLOB_ROOT + path, "type": media, **extra, "roles": roles}
        asset["file:size"], asset["file:checksum"] = self._register(path, recipe)
        return asset

    def _register(self, path: str, recipe: Recipe) -> tuple[int, str]:
        """Remember how to make ``path``; its size and checksum (its bytes are made once)."""
        made = self._made.get(path)
        if made is None:
            data = make_bytes(path, recipe)
            made = self._made[path] = (len(data), formats.multihash(data))
            self._recipes[path] = recipe
        return made

    # -- recorded items ------------------------------------------------------------------------

    def _recorded(self, col: _Collection, items: list[JSON]) -> None:
        for raw in items:
            item = json.loads(json.dumps(raw))  # a private copy
            item_id = str(item["id"])
            links = [link for link in item.get("links") or [] if isinstance(link, dict)]
            sources = [s for s in (_source_ref(col.id, link) for link in links) if s]
            if all(_absolute(str(link.get("href", ""))) for link in links) and links:
                item["links"] = [link for link in links if link.get("rel") != "source"]
            else:
                item["links"] = _api_links(col.id, item_id)
            item["links"] += [_source_link(c, i) for c, i in sources]
            self._upgrade(item)
            tile = _item_tile(item)
            props = item.get("properties") or {}
            label_item = col.labels and (not col.source or "label:type" in props)
            assets = {}
            for key, asset in (item.get("assets") or {}).items():
                href = str(asset.get("href", ""))
                if href.startswith(BLOB_ROOT):
                    path = href[len(BLOB_ROOT) :]
                elif not _absolute(href):
                    path = posixpath.normpath(f"mlhub/{col.id}/{item_id}/{href}")
                else:
                    assets[key] = asset
                    continue
                recipe = _recorded_recipe(path, asset, tile, label_item, self.tags, col.id)
                out = dict(asset, href=BLOB_ROOT + path)
                out["file:size"], out["file:checksum"] = self._register(path, recipe)
                assets[key] = out
            item["assets"] = assets
            item.setdefault("collection", col.id)
            self._items[col.id].append(item)
            self._extra[col.id].append(_catalog_source_links(sources))

    @staticmethod
    def _upgrade(item: JSON) -> None:
        """STAC 1.0 form of a pre-1.0 recorded item; declares the file extension."""
        exts = [OLD_EXTENSIONS.get(str(e), str(e)) for e in item.get("stac_extensions") or []]
        version = str(item.get("stac_version", "1.0.0"))
        if not version.startswith("1.") or version.startswith("1.0.0-"):
            item["stac_version"] = "1.0.0"  # as the API served recorded pre-1.0 items
        if FILE_EXT not in exts:
            exts.append(FILE_EXT)
        item["stac_extensions"] = exts

    # -- generated items -----------------------------------------------------------------------

    def _tiles_in(self, bbox: tuple[float, float, float, float]) -> list[Tile]:
        w, s, e, n = bbox
        side = min(TILE_DEG, (e - w) / TILES, (n - s) / TILES)
        rng = random.Random(f"tiles|{self.id}|{w:.5f},{s:.5f},{e:.5f},{n:.5f}")
        out = []
        for qx, qy in ((0, 1), (1, 1), (0, 0), (1, 0)):  # NW, NE, SW, SE quarters
            cx = w + (qx + 0.25 + 0.5 * rng.random()) * (e - w) / 2
            cy = s + (qy + 0.25 + 0.5 * rng.random()) * (n - s) / 2
            box = tuple(
                round(v, 6) for v in (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
            )
            tile = self._tiles.get(box)
            if tile is None:
                tile = self._tiles[box] = Tile(f"t{len(self._tiles):02d}", *box)
            out.append(tile)
        return out

    def _place_tiles(self, generated: list[_Collection]) -> None:
        """Label collections get tiles in their extent; source collections the label tiles in
        theirs (so that labels have imagery), or tiles of their own."""
        for col in generated:
            if col.labels:
                col.tiles = self._tiles_in(_bbox(col.json))
        label_tiles = list(dict.fromkeys(t for c in generated if c.labels for t in c.tiles))
        for col in generated:
            if col.labels:
                continue
            w, s, e, n = _bbox(col.json)
            inside = [
                t
                for t in label_tiles
                if w <= (t.west + t.east) / 2 <= e and s <= (t.south + t.north) / 2 <= n
            ]
            col.tiles = inside[:MAX_TILES] or self._tiles_in((w, s, e, n))

    def _label_windows(self, tile: Tile) -> list[tuple[datetime, datetime]]:
        return [
            _years(*_interval(c.json)) for c in self.collections if c.labels and tile in c.tiles
        ]

    def _source_items(self, col: _Collection) -> None:
        start, end = _interval(col.json)
        bands = _match(SENSORS, col.id, self.tags) or RGB
        per_tile = 2 if len(col.tiles) <= TILES else 1
        eo = [{"name": b, "common_name": cn} for b, cn in bands if cn]
        for tile in col.tiles:
            windows = self._label_windows(tile)
            span: tuple[datetime, datetime | None] = (start, end)
            if windows:
                lo = max(start, min(w[0] for w in windows))
                hi = min(end or start, max(w[1] for w in windows))
                if lo <= hi:
                    span = (lo, hi)
            for when in _dates(span, per_tile):
                item_id = f"{col.id}_{tile.key}_{when:%Y%m%d}"
                folder = f"mlhub/{col.id}/{item_id}"
                image = Recipe("image", tile, len(bands))
                extra: JSON = {"title": ", ".join(b for b, _ in bands)}
                if eo:
                    extra["eo:bands"] = eo
                assets = {
                    "image": self._asset(f"{folder}/image.tif", image, TIFF, ["data"], **extra),
                    "thumbnail": self._asset(
                        f"{folder}/thumbnail.png",
                        Recipe("thumbnail", tile),
                        "image/png",
                        ["thumbnail"],
                        title="Quicklook",
                    ),
                }
                gsd = round((tile.east - tile.west) / SIDE * 111_320)
                props: JSON = {"datetime": _iso(when), "gsd": gsd}
                exts = [EO_EXT, FILE_EXT] if eo else [FILE_EXT]
                self._add(col.id, _feature(item_id, col.id, tile, props, assets, exts), "")
                self._sources.append(_Source(col.id, item_id, tile.key, when))

    def _label_items(self, col: _Collection) -> None:
        start, end = _interval(col.json)
        window = _years(start, end)
        theme = theme_for(col.id, self.tags)
        title = str(col.json.get("title") or col.id)
        doc = self._asset(
            f"mlhub/{col.id}/documentation.pdf",
            Recipe("document", title=f"{title} (generated)"),
            "application/pdf",
            ["metadata"],
            title="Documentation",
        )
        props: JSON = {"datetime": _iso(start)}
        if end is not None and end != start:
            props = {"datetime": None, "start_datetime": _iso(start), "end_datetime": _iso(end)}
        props["label:type"] = theme.label_type
        props["label:properties"] = [theme.prop] if theme.prop else None
        if theme.classes is not None:
            values: list[Any] = list(theme.classes)
            if theme.label_type == "raster":
                values = list(range(1, len(theme.classes) + 1))
            props["label:classes"] = [{"name": theme.prop, "classes": values}]
        props["label:description"] = f"{theme.description} (generated stand-in labels)"
        props["label:tasks"] = list(theme.tasks)
        for tile in col.tiles:
            item_id = f"{col.id}_{tile.key}" + ("_labels" if col.source else "")
            path = f"mlhub/{col.id}/{item_id}/labels"
            if theme.label_type == "raster":
                assert theme.classes is not None
                file_values = [
                    {"values": [i + 1], "summary": name} for i, name in enumerate(theme.classes)
                ]
                labels = self._asset(
                    f"{path}.tif",
                    Recipe("raster_labels", tile, theme=theme),
                    TIFF,
                    ["labels"],
                    title=theme.description,
                    **{"file:values": file_values},
                )
            else:
                labels = self._asset(
                    f"{path}.geojson",
                    Recipe("vector_labels", tile, theme=theme),
                    "application/geo+json",
                    ["labels"],
                    title=theme.description,
                )
            sources = [
                (s.cid, s.id)
                for s in self._sources
                if s.tile == tile.key and window[0] <= s.when <= window[1]
            ]
            item = _feature(
                item_id,
                col.id,
                tile,
                dict(props),
                {"labels": labels, "documentation": doc},
                [LABEL_EXT, FILE_EXT],
            )
            item["links"] += [_source_link(c, i) for c, i in sources]
            self._add(col.id, item, _catalog_source_links(sources))

    def _add(self, cid: str, item: JSON, extra: str) -> None:
        self._items[cid].append(item)
        self._extra[cid].append(extra)


def _feature(
    item_id: str, cid: str, tile: Tile, props: JSON, assets: JSON, exts: list[str]
) -> JSON:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": exts,
        "id": item_id,
        "collection": cid,
        "bbox": tile.bbox,
        "geometry": tile.geometry,
        "properties": props,
        "links": _api_links(cid, item_id),
        "assets": assets,
    }


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _absolute(href: str) -> bool:
    return href.startswith("/") or _SCHEME.match(href) is not None


def _item_tile(item: JSON) -> Tile | None:
    box = item.get("bbox")
    if not isinstance(box, list) or len(box) < 4:
        return None
    w, s, e, n = (float(v) for v in (box[:2] + box[-2:]))
    return Tile("", w, s, e, n)


def _recorded_recipe(
    path: str, asset: JSON, tile: Tile | None, label_item: bool, tags: list[str], cid: str
) -> Recipe:
    ext = synth.extension(path)
    if tile is not None and ext in ("tif", "tiff"):
        if label_item:
            return Recipe("raster_labels", tile, theme=theme_for(cid, tags))
        return Recipe("image", tile, max(1, len(asset.get("eo:bands") or [None])))
    if tile is not None and ext == "png":
        return Recipe("thumbnail", tile)
    if tile is not None and ext == "geojson":
        return Recipe("vector_labels", tile, theme=theme_for(cid, tags))
    if ext == "pdf":
        return Recipe("document", title=str(asset.get("title") or ""))
    if ext == "csv":
        return Recipe("table")
    return Recipe("other")
