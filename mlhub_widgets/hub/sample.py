"""Generators of hub datasets: the bundled demo dataset and synthetic benchmark datasets.

* :func:`make_demo_dataset` writes ``mlhub_widgets_demo_crops``: a small but real-in-form crop
  type dataset (Sentinel-2-like 4-band GeoTIFFs, PNG thumbnails, GeoJSON field labels, common
  documentation and train/test splits) over six countries and two years. Its output is
  byte-for-byte deterministic; ``scripts/make_sample_data.py`` regenerates the bundled copy.
* :func:`make_synthetic_dataset` writes the *metadata* of a benchmark dataset of any size; the
  hub generates its asset bytes on the fly (nothing but JSON is stored).
"""

from __future__ import annotations

import json
import math
import random
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from . import formats, synth
from .formats import multihash
from .store import BLOB_ROOT

__all__ = ["COUNTRIES", "DEMO_ID", "make_demo_dataset", "make_synthetic_dataset", "multihash"]

DEMO_ID = "mlhub_widgets_demo_crops"
DEMO_DOI = "10.5072/mlhub-widgets.demo-crops"
LICENSE = "CC-BY-4.0"
RES = 0.0001  # degrees per pixel (~11 m)
SIDE = 32  # pixels per tile side
FIELD = 8  # pixels per field side
BANDS = (
    ("B02", "blue", 0.49),
    ("B03", "green", 0.56),
    ("B04", "red", 0.665),
    ("B08", "nir", 0.842),
)

JSON = dict[str, Any]


@dataclass(frozen=True)
class Country:
    """A demo region: a 3 x 2 grid of tiles around ``lon``/``lat``."""

    code: str
    name: str
    lon: float
    lat: float
    crops: tuple[str, ...]
    season: tuple[str, str]  # labelling season, MM-DD .. MM-DD
    dates: tuple[str, str]  # two acquisition dates per year, MM-DD


COUNTRIES = (
    Country("ke", "Kenya", 34.20, 0.45, ("maize", "beans", "cassava", "sugarcane"),
            ("03-01", "09-30"), ("04-12", "07-21")),
    Country("gh", "Ghana", -0.85, 9.40, ("maize", "rice", "groundnut", "yam"),
            ("05-01", "10-31"), ("06-05", "09-14")),
    Country("br", "Brazil", -55.70, -12.50, ("soybean", "maize", "cotton", "pasture"),
            ("10-01", "12-31"), ("02-10", "11-18")),
    Country("fr", "France", 1.60, 48.20, ("wheat", "barley", "rapeseed", "maize"),
            ("03-01", "08-31"), ("04-20", "07-02")),
    Country("in", "India", 75.80, 30.90, ("wheat", "rice", "cotton", "sugarcane"),
            ("06-15", "11-15"), ("01-25", "08-30")),
    Country("vn", "Vietnam", 105.70, 10.00, ("rice", "coffee", "cassava", "maize"),
            ("01-01", "06-30"), ("02-08", "05-17")),
)  # fmt: skip
YEARS = (2020, 2021)
TILES = 6
CLASSES = tuple(sorted({c for country in COUNTRIES for c in country.crops}))
#: Mean reflectance (x 10000) of each class in B02, B03, B04, B08.
SIGNATURES = {
    "barley": (520, 820, 640, 3600), "beans": (480, 760, 600, 3300),
    "cassava": (430, 700, 520, 3900), "coffee": (380, 620, 450, 3100),
    "cotton": (560, 860, 700, 3400), "groundnut": (500, 790, 650, 3200),
    "maize": (450, 740, 560, 4100), "pasture": (520, 880, 720, 2900),
    "rapeseed": (600, 980, 680, 3700), "rice": (350, 650, 420, 3000),
    "soybean": (470, 770, 580, 4300), "sugarcane": (410, 720, 500, 4500),
    "wheat": (540, 840, 700, 3500), "yam": (440, 710, 540, 3800),
}  # fmt: skip


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _write_json(path: Path, obj: object) -> None:
    _write(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def _file_asset(data: bytes, href: str, media: str, roles: list[str], **extra: Any) -> JSON:
    asset: JSON = {"href": href, "type": media}
    asset.update(extra)
    asset["roles"] = roles
    asset["file:size"] = len(data)
    asset["file:checksum"] = multihash(data)
    return asset


def _link(rel: str, href: str) -> JSON:
    return {"rel": rel, "href": href, "type": "application/json"}


def _item_links(item_id: str) -> list[JSON]:
    return [
        _link("root", "../../catalog.json"),
        _link("collection", "../collection.json"),
        _link("parent", "../collection.json"),
        _link("self", f"{item_id}.json"),
    ]


def _tile_origin(country: Country, tile: int) -> tuple[float, float]:
    col, row = tile % 3, tile // 3
    west = round(country.lon - 0.06 + col * 0.05, 4)
    north = round(country.lat + 0.04 - row * 0.05, 4)
    return west, north


def _field_classes(country: Country, tile: int, year: int) -> list[str]:
    rng = random.Random(f"fields|{country.code}|{tile}|{year}")
    return [rng.choice(country.crops) for _ in range((SIDE // FIELD) ** 2)]


def _pixels(country: Country, tile: int, when: date, classes: list[str]) -> np.ndarray:
    """A 32 x 32 x 4 uint16 reflectance cube: per-field signatures, season and noise."""
    rng = random.Random(f"pixels|{country.code}|{tile}|{when.isoformat()}")
    phase = math.cos(2 * math.pi * (when.timetuple().tm_yday / 365.0))
    per_field = SIDE // FIELD
    cube = np.zeros((SIDE, SIDE, len(BANDS)), dtype=np.uint16)
    noise = np.array([rng.randint(-60, 60) for _ in range(SIDE * SIDE * len(BANDS))])
    noise = noise.reshape(SIDE, SIDE, len(BANDS))
    for f, crop in enumerate(classes):
        r, c = divmod(f, per_field)
        sig = np.array(SIGNATURES[crop], dtype=np.float64)
        sig[3] *= 0.8 + 0.2 * phase  # greenness follows the season
        block = np.broadcast_to(sig, (FIELD, FIELD, len(BANDS)))
        cube[r * FIELD : (r + 1) * FIELD, c * FIELD : (c + 1) * FIELD] = block
    out: np.ndarray = np.clip(cube.astype(np.int64) + noise, 1, 10000).astype("<u2")
    return out


def _thumbnail(cube: np.ndarray) -> bytes:
    nir = cube[:, :, 3].astype(np.float64)
    red = cube[:, :, 2].astype(np.float64)
    ndvi = (nir - red) / np.maximum(nir + red, 1.0)
    grey = np.clip((ndvi + 0.1) * 255 / 1.1, 0, 255).astype(np.uint8)
    return formats.png_file(SIDE, SIDE, grey.tobytes())


def _polygon(west: float, north: float, r: int, c: int) -> JSON:
    x0, y0 = west + c * FIELD * RES, north - r * FIELD * RES
    x1, y1 = x0 + FIELD * RES, y0 - FIELD * RES
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return {"type": "Polygon", "coordinates": [[[round(x, 6), round(y, 6)] for x, y in ring]]}


def _bbox_geom(west: float, north: float) -> tuple[list[float], JSON]:
    east, south = round(west + SIDE * RES, 6), round(north - SIDE * RES, 6)
    bbox = [west, south, east, north]
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return bbox, {"type": "Polygon", "coordinates": [ring]}


def make_demo_dataset(out_dir: Path | str) -> Path:
    """Write the demo dataset into ``out_dir/mlhub_widgets_demo_crops`` (replacing it).

    216 items: 144 source items (6 countries x 6 tiles x 2 dates x 2020/2021) with a 4-band
    uint16 GeoTIFF and a PNG thumbnail each, and 72 label items (one per tile and year, with a
    ``start_datetime``/``end_datetime`` season and ``datetime: null``) with GeoJSON field
    polygons. Collection-level and common assets: documentation PDF, train and test splits.
    """
    root = Path(out_dir) / DEMO_ID
    if root.exists():
        shutil.rmtree(root)
    src_id, lab_id = f"{DEMO_ID}_source", f"{DEMO_ID}_labels"
    common = root / "_common"
    doc = formats.pdf_file("mlhub_widgets demo crops documentation", synth.pool()[:65536], 24_000)
    _write(common / "documentation.pdf", doc)
    field_rows: list[tuple[str, str, str, str]] = []
    source_items: list[JSON] = []
    label_items: list[JSON] = []
    for country in COUNTRIES:
        for tile in range(TILES):
            west, north = _tile_origin(country, tile)
            bbox, geom = _bbox_geom(west, north)
            tile_key = f"{country.code}_{tile:02d}"
            for year in YEARS:
                classes = _field_classes(country, tile, year)
                sources: list[str] = []
                for mmdd in country.dates:
                    when = date.fromisoformat(f"{year}-{mmdd}")
                    item_id = f"{src_id}_{tile_key}_{when.strftime('%Y%m%d')}"
                    sources.append(item_id)
                    folder = root / src_id / item_id
                    cube = _pixels(country, tile, when, classes)
                    tif = formats.geotiff(
                        SIDE, SIDE, len(BANDS), 16, cube.tobytes(),
                        west=west, north=north, res_x=RES, res_y=RES,
                    )  # fmt: skip
                    png = _thumbnail(cube)
                    _write(folder / "image.tif", tif)
                    _write(folder / "thumbnail.png", png)
                    eo_bands = [
                        {"name": n, "common_name": cn, "center_wavelength": w} for n, cn, w in BANDS
                    ]
                    cloud = random.Random(item_id).randint(0, 40)
                    item = {
                        "type": "Feature",
                        "stac_version": "1.0.0",
                        "stac_extensions": [
                            "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
                            "https://stac-extensions.github.io/file/v2.1.0/schema.json",
                        ],
                        "id": item_id,
                        "collection": src_id,
                        "bbox": bbox,
                        "geometry": geom,
                        "properties": {
                            "datetime": f"{when.isoformat()}T10:30:00Z",
                            "platform": "sentinel-2a" if tile % 2 else "sentinel-2b",
                            "instruments": ["msi"],
                            "gsd": 10,
                            "eo:cloud_cover": cloud,
                            "country": country.name,
                            "tile": tile_key,
                        },
                        "links": [
                            *_item_links(item_id),
                        ],
                        "assets": {
                            "image": _file_asset(
                                tif, "image.tif", "image/tiff; application=geotiff", ["data"],
                                title="Surface reflectance B02, B03, B04, B08 (x 10000)",
                                **{"eo:bands": eo_bands},
                            ),
                            "thumbnail": _file_asset(
                                png, "thumbnail.png", "image/png", ["thumbnail"], title="NDVI"
                            ),
                        },
                    }  # fmt: skip
                    _write_json(folder / f"{item_id}.json", item)
                    source_items.append(item)
                item_id = f"{lab_id}_{tile_key}_{year}"
                folder = root / lab_id / item_id
                feats: list[JSON] = []
                for f, crop in enumerate(classes):
                    r, c = divmod(f, SIDE // FIELD)
                    field_id = (
                        (COUNTRIES.index(country) * TILES + tile) * 1000 + year % 100 * 20 + f
                    )
                    split = "test" if random.Random(f"split|{field_id}").random() < 0.2 else "train"
                    field_rows.append((str(field_id), country.name, crop, split))
                    feats.append(
                        {
                            "type": "Feature",
                            "properties": {
                                "field_id": field_id,
                                "crop_id": CLASSES.index(crop) + 1,
                                "crop_type": crop,
                            },
                            "geometry": _polygon(west, north, r, c),
                        }
                    )
                labels = formats.geojson_file(feats, indent=1)
                _write(folder / "labels.geojson", labels)
                start, end = (f"{year}-{d}T00:00:00Z" for d in country.season)
                item = {
                    "type": "Feature",
                    "stac_version": "1.0.0",
                    "stac_extensions": [
                        "https://stac-extensions.github.io/label/v1.0.1/schema.json",
                        "https://stac-extensions.github.io/file/v2.1.0/schema.json",
                    ],
                    "id": item_id,
                    "collection": lab_id,
                    "bbox": bbox,
                    "geometry": geom,
                    "properties": {
                        "datetime": None,
                        "start_datetime": start,
                        "end_datetime": end,
                        "label:type": "vector",
                        "label:properties": ["crop_type"],
                        "label:description": "Crop type of each field, from a field survey",
                        "label:classes": [{"name": "crop_type", "classes": list(CLASSES)}],
                        "label:tasks": ["classification", "segmentation"],
                        "country": country.name,
                        "tile": tile_key,
                    },
                    "links": [
                        *_item_links(item_id),
                        *(
                            _link("source", f"../../{src_id}/{s}/{s}.json")
                            for s in sources
                        ),
                    ],
                    "assets": {
                        "labels": _file_asset(
                            labels, "labels.geojson", "application/geo+json", ["labels"],
                            title="Field polygons with crop type",
                        ),
                    },
                }  # fmt: skip
                label_items.append(item)
    train = ("field_id,country,crop_type\n" + "".join(
        f"{fid},{cn},{crop}\n" for fid, cn, crop, split in field_rows if split == "train"
    )).encode()  # fmt: skip
    test = ("field_id,country,crop_type\n" + "".join(
        f"{fid},{cn},{crop}\n" for fid, cn, crop, split in field_rows if split == "test"
    )).encode()  # fmt: skip
    _write(common / "train_split.csv", train)
    _write(common / "test_split.csv", test)
    common_assets = {
        "documentation": _file_asset(
            doc, "../../_common/documentation.pdf", "application/pdf", ["metadata"],
            title="Dataset documentation",
        ),
        "train_split": _file_asset(
            train, "../../_common/train_split.csv", "text/csv", ["metadata"],
            title="Training fields",
        ),
        "test_split": _file_asset(
            test, "../../_common/test_split.csv", "text/csv", ["metadata"], title="Test fields"
        ),
    }  # fmt: skip
    for label in label_items:
        label["assets"].update(common_assets)
        iid = str(label["id"])
        _write_json(root / lab_id / iid / f"{iid}.json", label)
    _write_collections(root, source_items, label_items)
    return root


def _extent(items: Sequence[JSON]) -> JSON:
    boxes = []
    for country in COUNTRIES:
        sel = [it["bbox"] for it in items if it["properties"]["country"] == country.name]
        boxes.append(
            [
                min(b[0] for b in sel),
                min(b[1] for b in sel),
                max(b[2] for b in sel),
                max(b[3] for b in sel),
            ]
        )
    union = [min(b[0] for b in boxes), min(b[1] for b in boxes)]
    union += [max(b[2] for b in boxes), max(b[3] for b in boxes)]
    return {
        "spatial": {"bbox": [union, *boxes]},
        "temporal": {"interval": [["2020-01-01T00:00:00Z", "2021-12-31T23:59:59Z"]]},
    }


def _write_collections(root: Path, source_items: list[JSON], label_items: list[JSON]) -> None:
    src_id, lab_id = f"{DEMO_ID}_source", f"{DEMO_ID}_labels"
    citation = (
        'mlhub_widgets developers (2024) "mlhub_widgets Demo Crop Type Dataset", Version 1.0, '
        f"generated sample data. https://doi.org/{DEMO_DOI}"
    )
    providers = [
        {"name": "mlhub_widgets", "roles": ["producer", "processor", "host", "licensor"],
         "url": "https://github.com/mlhub-widgets/mlhub_widgets"},
    ]  # fmt: skip
    sci = ["https://stac-extensions.github.io/scientific/v1.0.0/schema.json"]
    for cid, items, title, desc in (
        (src_id, source_items, "Demo crops: Sentinel-2-like source imagery",
         "4-band (B02, B03, B04, B08) 10 m surface reflectance tiles, two dates per year."),
        (lab_id, label_items, "Demo crops: field labels",
         "Field polygons with crop type, one label item per tile and season."),
    ):  # fmt: skip
        col: JSON = {
            "type": "Collection",
            "id": cid,
            "stac_version": "1.0.0",
            "stac_extensions": sci,
            "title": title,
            "description": desc,
            "license": LICENSE,
            "sci:doi": DEMO_DOI,
            "sci:citation": citation,
            "providers": providers,
            "extent": _extent(items),
            "links": [
                {"rel": "root", "href": "../catalog.json", "type": "application/json"},
                {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
                *(
                    {
                        "rel": "item",
                        "href": f"{it['id']}/{it['id']}.json",
                        "type": "application/json",
                    }
                    for it in items
                ),
                {"rel": "self", "href": "collection.json", "type": "application/json"},
            ],
        }
        if cid == lab_id:
            doc = (root / "_common" / "documentation.pdf").read_bytes()
            col["assets"] = {
                "documentation": _file_asset(
                    doc, "../_common/documentation.pdf", "application/pdf", ["metadata"],
                    title="Dataset documentation",
                )
            }  # fmt: skip
        _write_json(root / cid / "collection.json", col)
    _write_json(
        root / "catalog.json",
        {
            "type": "Catalog",
            "id": DEMO_ID,
            "stac_version": "1.0.0",
            "title": "mlhub_widgets Demo Crop Type Dataset",
            "description": "Generated crop type training data over six countries, 2020-2021.",
            "links": [
                {"rel": "root", "href": "catalog.json", "type": "application/json"},
                {"rel": "child", "href": f"{src_id}/collection.json", "type": "application/json"},
                {"rel": "child", "href": f"{lab_id}/collection.json", "type": "application/json"},
                {"rel": "self", "href": "catalog.json", "type": "application/json"},
            ],
        },
    )
    boxes = _extent(source_items)["spatial"]["bbox"][1:]
    record = {
        "id": DEMO_ID,
        "bbox": {
            "type": "MultiPolygon",
            "coordinates": [
                [[[b[0], b[1]], [b[0], b[3]], [b[2], b[3]], [b[2], b[1]], [b[0], b[1]]]]
                for b in boxes
            ],
        },
        "citation": citation,
        "collections": [
            {
                "id": src_id,
                "types": ["source_imagery"],
                "license": f"[{LICENSE}](https://creativecommons.org/licenses/by/4.0/)",
            },
            {
                "id": lab_id,
                "types": ["labels"],
                "license": f"[{LICENSE}](https://creativecommons.org/licenses/by/4.0/)",
            },
        ],
        "creator_contact": {
            "contact": "mlhub-widgets@example.org",
            "creator": "[mlhub_widgets](https://github.com/mlhub-widgets/mlhub_widgets)",
        },
        "date_added": "2024-01-15T00:00:00+00:00",
        "date_modified": "2024-01-15T00:00:00+00:00",
        "description": (
            "A small crop type dataset generated for the mlhub_widgets demo and tests. It has "
            "the form of the Radiant MLHub crop type datasets: Sentinel-2-like 4-band GeoTIFF "
            "tiles (B02, B03, B04, B08) over agricultural areas of Kenya, Ghana, Brazil, "
            "France, India and Vietnam, two acquisitions per year in 2020 and 2021, and field "
            "polygons labelled with 14 crop types (GeoJSON), plus documentation and train/test "
            "splits. The pixel values are synthetic: use it to learn the tools, not to train "
            "models."
        ),
        "documentation_link": "_common/documentation.pdf",
        "doi": DEMO_DOI,
        "publications": None,
        "registry": None,
        "status": "ready",
        "tags": ["crop type", "segmentation", "sentinel-2", "agriculture", "demo"],
        "title": "mlhub_widgets Demo Crop Type Dataset",
        "tools_applications": None,
        "tutorials": None,
    }
    _write_json(root / "mlhub-dataset.json", record)


# -- synthetic benchmark datasets -------------------------------------------------------------


def make_synthetic_dataset(
    out_dir: Path | str,
    dataset_id: str,
    n_items: int,
    assets_per_item: int,
    min_size: int = 1024,
    max_size: int = 4096,
    seed: int = 0,
    *,
    kinds: Sequence[str] = ("tif", "geojson", "npy"),
    checksums: bool | None = None,
    bbox: tuple[float, float, float, float] = (-20.0, -35.0, 50.0, 40.0),
    start: str = "2020-01-01",
    days: int = 730,
) -> Path:
    """Write the metadata of a synthetic dataset; the hub generates its assets on the fly.

    The folder holds ``mlhub-dataset.json`` (record + ``synthetic`` block), ``catalog.json`` and
    one collection ``<dataset_id>_source`` whose items are in ``items.jsonl``. Item ``i`` has id
    ``<dataset_id>_<i:07d>``, a small square on a regular grid over ``bbox`` and a datetime
    spread over ``days`` from ``start``; asset ``k`` is ``asset_<k>.<kinds[k % len(kinds)]>`` of
    a size in ``[min_size, max_size]`` (``file:size``; ``file:checksum`` too when ``checksums``,
    which by default is on up to 100,000 assets). ``n_items * assets_per_item`` unique assets.

    For a few big files: ``make_synthetic_dataset(d, "big", 20, 1, 50 << 20, 50 << 20,
    kinds=("bin",))``. Nothing but JSON is written, whatever the sizes.
    """
    if n_items < 1 or assets_per_item < 1:
        raise ValueError("n_items and assets_per_item must be positive")
    if min_size < 0 or max_size < min_size:
        raise ValueError("need 0 <= min_size <= max_size")
    root = Path(out_dir) / dataset_id
    if root.exists():
        shutil.rmtree(root)
    cid = f"{dataset_id}_source"
    (root / cid).mkdir(parents=True)
    prefix = f"mlhub/{dataset_id}/"
    if checksums is None:
        checksums = n_items * assets_per_item <= 100_000
    cols = max(1, int(math.sqrt(n_items)))
    rows = (n_items + cols - 1) // cols
    dx = (bbox[2] - bbox[0]) / cols
    dy = (bbox[3] - bbox[1]) / rows
    t0 = datetime.fromisoformat(start).replace(tzinfo=UTC)
    total = 0
    with open(root / cid / "items.jsonl", "w", encoding="utf-8") as fh:
        for i in range(n_items):
            item_id = f"{dataset_id}_{i:07d}"
            r, c = divmod(i, cols)
            x0 = round(bbox[0] + c * dx, 6)
            y0 = round(bbox[1] + r * dy, 6)
            x1, y1 = round(x0 + dx * 0.8, 6), round(y0 + dy * 0.8, 6)
            when = t0 + timedelta(seconds=int(days * 86400 * i / max(1, n_items)))
            assets: JSON = {}
            for k in range(assets_per_item):
                ext = kinds[k % len(kinds)]
                path = f"{prefix}{cid}/{item_id}/asset_{k}.{ext}"
                size = synth.synthetic_size(seed, path, min_size, max_size)
                total += size
                asset: JSON = {
                    "href": BLOB_ROOT + path,
                    "type": synth.media_type_for(path),
                    "roles": ["data"],
                    "file:size": size,
                }
                if checksums:
                    asset["file:checksum"] = multihash(synth.generate(path, size).read())
                assets[f"asset_{k}"] = asset
            item = {
                "type": "Feature",
                "stac_version": "1.0.0",
                "stac_extensions": ["https://stac-extensions.github.io/file/v2.1.0/schema.json"],
                "id": item_id,
                "collection": cid,
                "bbox": [x0, y0, x1, y1],
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]],
                },
                "properties": {"datetime": when.strftime("%Y-%m-%dT%H:%M:%SZ")},
                "assets": assets,
            }
            fh.write(json.dumps(item, separators=(",", ":")) + "\n")
    _write_json(
        root / cid / "collection.json",
        {
            "type": "Collection",
            "id": cid,
            "stac_version": "1.0.0",
            "description": f"Synthetic benchmark collection of {dataset_id}",
            "license": "CC0-1.0",
            "extent": {
                "spatial": {"bbox": [list(bbox)]},
                "temporal": {
                    "interval": [
                        [
                            t0.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            (t0 + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        ]
                    ]
                },
            },
            "links": [
                {"rel": "root", "href": "../catalog.json", "type": "application/json"},
                {"rel": "self", "href": "collection.json", "type": "application/json"},
            ],
        },
    )
    _write_json(
        root / "catalog.json",
        {
            "type": "Catalog",
            "id": dataset_id,
            "stac_version": "1.0.0",
            "description": f"Synthetic benchmark dataset {dataset_id}",
            "links": [
                {"rel": "root", "href": "catalog.json", "type": "application/json"},
                {"rel": "child", "href": f"{cid}/collection.json", "type": "application/json"},
                {"rel": "self", "href": "catalog.json", "type": "application/json"},
            ],
        },
    )
    _write_json(
        root / "mlhub-dataset.json",
        {
            "id": dataset_id,
            "title": f"Synthetic benchmark dataset {dataset_id}",
            "description": (
                f"{n_items} items x {assets_per_item} generated assets of "
                f"{min_size}-{max_size} bytes"
            ),
            "tags": ["synthetic", "benchmark"],
            "collections": [{"id": cid, "types": ["source_imagery"], "license": "CC0-1.0"}],
            "date_added": "2024-01-01T00:00:00+00:00",
            "date_modified": "2024-01-01T00:00:00+00:00",
            "catalog_info": {"estimated_dataset_size": total},
            "synthetic": {
                "asset_prefix": prefix,
                "seed": seed,
                "min_size": min_size,
                "max_size": max_size,
                "n_items": n_items,
                "assets_per_item": assets_per_item,
            },
        },
    )
    return root
