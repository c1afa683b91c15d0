"""Item and asset previews: a quicklook PNG of a raster, an image as it is, a label GeoJSON.

Everything here runs in a worker thread of the explorer (it reads from the network). An asset
is read whole, up to :data:`PREVIEW_MAX_BYTES` (its ``file:size`` is checked first), through the
package's HTTP layer with the connection's credentials (the API key only goes to the API's
origin; a STAC source's ``modifier`` signs the href), or from disk when the href is local.

Rasters (GeoTIFF and whatever GDAL reads) need ``rasterio`` (the ``preview`` extra:
``pip install 'mlhub_widgets[preview]'``); without it the preview says so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from .formatting import human_bytes

__all__ = [
    "PREVIEW_MAX_BYTES",
    "QUICKLOOK_PIXELS",
    "AssetPreview",
    "asset_kind",
    "asset_rows",
    "best_asset",
    "has_rasterio",
    "item_facts",
    "preview_asset",
    "quicklook_png",
    "read_asset",
]

#: Largest asset read for a preview.
PREVIEW_MAX_BYTES = 64 << 20
#: Longest side of a quicklook, in pixels.
QUICKLOOK_PIXELS = 256
#: Most label features drawn on the map.
MAX_LABEL_FEATURES = 20_000

RASTER_TYPES = ("image/tiff", "image/jp2", "application/x-hdf", "application/x-netcdf")
IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/webp": "webp"}
GEOJSON_TYPES = ("application/geo+json", "application/json")
MISSING_RASTERIO = (
    "Raster previews need rasterio: pip install 'mlhub_widgets[preview]' (then restart the kernel)."
)


@dataclass(frozen=True)
class AssetPreview:
    """What the detail pane shows for one asset.

    Attributes:
        item_id, asset_key: which asset.
        kind: ``"raster"`` (a quicklook), ``"image"`` (shown as it is), ``"labels"`` (GeoJSON
            drawn on the map) or ``"none"`` (nothing to show; ``note`` says why).
        image: PNG/JPEG/WebP bytes (``raster`` and ``image``).
        image_format: ``"png"``, ``"jpeg"`` or ``"webp"``.
        geojson: a FeatureCollection (``labels``).
        note: one line about what is shown (bands, stretch, size) or why nothing is.
    """

    item_id: str
    asset_key: str
    kind: str
    image: bytes = b""
    image_format: str = "png"
    geojson: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""


def asset_kind(asset: Mapping[str, Any], key: str = "") -> str:
    """``raster``, ``image``, ``labels`` or ``other``, from the asset's media type and href."""
    media = str(asset.get("type") or "").split(";")[0].strip().lower()
    href = str(asset.get("href") or "").lower().split("?")[0]
    if media in IMAGE_TYPES or href.endswith((".png", ".jpg", ".jpeg", ".webp")):
        return "image"
    if media.startswith(RASTER_TYPES) or href.endswith((".tif", ".tiff", ".jp2")):
        return "raster"
    if media in GEOJSON_TYPES and (href.endswith((".geojson", ".json")) or "label" in key):
        return "labels"
    if href.endswith(".geojson"):
        return "labels"
    return "other"


def best_asset(assets: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The asset a preview shows first: a label GeoJSON, then a raster with the ``data`` role,
    any raster, a thumbnail or overview image, any image; None when none can be shown."""
    ranked: list[tuple[int, str]] = []
    for key, asset in assets.items():
        kind = asset_kind(asset, key)
        roles = set(asset.get("roles") or [])
        if kind == "labels":
            rank = 0
        elif kind == "raster":
            rank = 1 if "data" in roles else 2
        elif kind == "image":
            rank = 3 if roles & {"thumbnail", "overview", "visual"} else 4
        else:
            continue
        ranked.append((rank, key))
    return min(ranked)[1] if ranked else None


def item_facts(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(name, value)`` rows of an item's properties for the detail pane (plain text)."""
    rows = [("id", str(record.get("id"))), ("collection", str(record.get("collection") or ""))]
    props = record.get("properties") or {}
    for name, value in props.items():
        if value is None or value == "":
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        rows.append((str(name), text if len(text) <= 300 else text[:297] + "…"))
    bbox = record.get("bbox")
    if bbox:
        rows.append(("bbox", ", ".join(f"{float(v):.5g}" for v in bbox)))
    return rows


# -- reading ------------------------------------------------------------------------------------


def _local_path(href: str) -> str | None:
    parts = urlsplit(href)
    if parts.scheme == "file":
        return unquote(parts.path)
    if not parts.scheme or (len(parts.scheme) == 1 and os.name == "nt"):  # C:\\...
        return href
    return None


def read_asset(
    href: str, where: Mapping[str, Any], size: Any = None, max_bytes: int = PREVIEW_MAX_BYTES
) -> bytes:
    """The bytes of an asset: a local file, or over HTTP with the credentials of ``where``
    (``{"session": …}`` or ``{"source": …}``).

    Raises:
        ValueError: the asset is larger than ``max_bytes`` (its ``file:size`` says so, or the
            answer is).
        OSError: a local file cannot be read.
        MLHubException: the request failed (404, 401, no network...).
    """
    if isinstance(size, int | float) and size > max_bytes:
        raise ValueError(
            f"The asset is {human_bytes(float(size))}, too large for a preview (the limit is "
            f"{human_bytes(max_bytes)}): download it and open it from disk."
        )
    path = _local_path(href)
    if path is not None:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ValueError(f"{path} is too large for a preview ({human_bytes(max_bytes)} max).")
        return data
    from ...exceptions import ResponseTooLarge
    from ...net.http import status_error
    from ...net.sync import fetch

    source = where.get("source")
    session = where.get("session")
    credentials: Any = None
    if source is not None:
        signer = source.signer()
        if signer is not None:
            href = signer(href)
        from ...net.http import origin_of

        for cred in source.credentials():
            if cred.origin == origin_of(href):
                credentials = cred
        settings = source.network
    elif session is not None:
        credentials = session.credentials
        settings = session.network
    else:
        raise ValueError("Not connected: test a connection in the Connect panel first.")
    try:
        doc = fetch(href, settings=settings, credentials=credentials, max_bytes=max_bytes)
    except ResponseTooLarge:
        raise ValueError(
            f"The asset is larger than {human_bytes(max_bytes)}: too large for a preview."
        ) from None
    if doc.status >= 400:
        secrets = credentials.secrets() if credentials is not None else ()
        raise status_error(doc, "GET", secrets, f"The asset is not on the server: {href}")
    return bytes(doc.body)


# -- rendering ----------------------------------------------------------------------------------


def has_rasterio() -> bool:
    """Whether raster quicklooks can be made (rasterio imports)."""
    try:
        _rasterio()
    except ValueError:
        return False
    return True


def _rasterio() -> dict[str, Any]:
    """rasterio's modules the quicklook uses (``ValueError`` naming the extra when missing)."""
    import importlib

    try:
        return {
            name: importlib.import_module(f"rasterio.{name}") for name in ("enums", "errors", "io")
        }
    except ImportError:
        raise ValueError(MISSING_RASTERIO) from None


def _band_indexes(asset: Mapping[str, Any], count: int) -> tuple[list[int], str]:
    """Bands for the quicklook (1-based) and their names: red, green, blue by the ``eo:bands``
    common names when there are all three, else the first band."""
    bands = asset.get("eo:bands") or asset.get("bands") or []
    names = [str(b.get("common_name") or b.get("name") or "") for b in bands if isinstance(b, dict)]
    if len(names) == count:
        wanted = [names.index(c) + 1 for c in ("red", "green", "blue") if c in names]
        if len(wanted) == 3:
            return wanted, "red, green, blue"
    if count >= 3 and not names:
        return [1, 2, 3], "bands 1, 2, 3"
    label = names[0] if names and names[0] else "band 1"
    return [1], label


def quicklook_png(data: bytes, asset: Mapping[str, Any] | None = None) -> tuple[bytes, str]:
    """A PNG quicklook of raster bytes and a note on what it shows.

    At most :data:`QUICKLOOK_PIXELS` on its longest side (read decimated, from the overviews
    when the file has them); each band stretched between its 2nd and 98th percentile; nodata
    transparent.

    Raises:
        ValueError: rasterio is missing, or GDAL cannot read the bytes.
    """
    import warnings

    import numpy as np

    rio = _rasterio()
    Resampling = rio["enums"].Resampling
    RasterioIOError = rio["errors"].RasterioIOError
    MemoryFile = rio["io"].MemoryFile

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NotGeoreferencedWarning and friends
            with MemoryFile(data) as mem, mem.open() as ds:
                indexes, names = _band_indexes(asset or {}, ds.count)
                scale = max(ds.width, ds.height) / QUICKLOOK_PIXELS
                width = max(1, round(ds.width / max(scale, 1.0)))
                height = max(1, round(ds.height / max(scale, 1.0)))
                arr = ds.read(
                    indexes,
                    out_shape=(len(indexes), height, width),
                    resampling=Resampling.average if scale > 1 else Resampling.nearest,
                    masked=True,
                )
                size = f"{ds.width}×{ds.height} px, {ds.count} band{'s' if ds.count != 1 else ''}"
    except RasterioIOError as exc:
        raise ValueError(f"Not a raster GDAL can read ({str(exc).splitlines()[0]}).") from None
    out = np.zeros((len(indexes) if len(indexes) == 3 else 1, height, width), dtype="uint8")
    valid = ~np.ma.getmaskarray(arr).any(axis=0)
    for i in range(out.shape[0]):
        band = np.ma.filled(arr[i].astype("float64"), np.nan)
        good = band[valid & np.isfinite(band)]
        if good.size == 0:
            continue
        lo, hi = np.percentile(good, [2, 98])
        if hi <= lo:
            hi = lo + 1
        out[i] = np.clip((np.nan_to_num(band, nan=lo) - lo) / (hi - lo) * 255, 0, 255).astype(
            "uint8"
        )
    alpha = (valid * 255).astype("uint8")
    bands = [*out, alpha]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with (
            MemoryFile() as mem,
            mem.open(
                driver="PNG", width=width, height=height, count=len(bands), dtype="uint8"
            ) as dst,
        ):
            for i, band in enumerate(bands, start=1):
                dst.write(band, i)
            dst.close()
            png = bytes(mem.read())
    return png, f"{names}, {size}, stretched 2–98 %"


def preview_asset(item: Mapping[str, Any], key: str, where: Mapping[str, Any]) -> AssetPreview:
    """Read one asset of an item (a record of :func:`~.footprints.item_records`) and make its
    preview. Runs in a worker thread."""
    item_id = str(item.get("id"))
    assets = item.get("assets") or {}
    asset = assets.get(key)
    if not isinstance(asset, Mapping) or not asset.get("href"):
        return AssetPreview(item_id, key, "none", note=f"The item has no asset {key!r}.")
    kind = asset_kind(asset, key)
    if kind == "other":
        media = asset.get("type") or "unknown type"
        return AssetPreview(item_id, key, "none", note=f"No preview for {media} files.")
    if kind == "raster" and not has_rasterio():
        return AssetPreview(item_id, key, "none", note=MISSING_RASTERIO)
    data = read_asset(str(asset["href"]), where, asset.get("file:size"))
    if kind == "raster":
        png, note = quicklook_png(data, asset)
        return AssetPreview(item_id, key, "raster", image=png, note=note)
    if kind == "image":
        fmt = _image_format(data)
        if fmt is None:
            return AssetPreview(item_id, key, "none", note="Not a PNG, JPEG or WebP image.")
        return AssetPreview(
            item_id, key, "image", image=data, image_format=fmt, note=human_bytes(len(data))
        )
    return _labels(item_id, key, data)


def _image_format(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG"):
        return "png"
    if data.startswith(b"\xff\xd8"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _labels(item_id: str, key: str, data: bytes) -> AssetPreview:
    try:
        doc = json.loads(data)
    except ValueError:
        return AssetPreview(item_id, key, "none", note="The label file is not JSON.")
    features = _features(doc)
    if not features:
        return AssetPreview(item_id, key, "none", note="The label file has no GeoJSON features.")
    shown = features[:MAX_LABEL_FEATURES]
    classes: dict[str, int] = {}
    for f in shown:
        props = f.get("properties") or {}
        for name in ("class", "crop_type", "label", "type", "category", "name"):
            if name in props and props[name] is not None:
                classes[str(props[name])] = classes.get(str(props[name]), 0) + 1
                break
    top = ", ".join(f"{c} ({n})" for c, n in sorted(classes.items(), key=lambda x: -x[1])[:6])
    more = f" (the first {len(shown)} drawn)" if len(features) > len(shown) else ""
    note = f"{len(features)} label feature{'s' if len(features) != 1 else ''}{more}"
    return AssetPreview(
        item_id,
        key,
        "labels",
        geojson={"type": "FeatureCollection", "features": shown},
        note=note + (f": {top}" if top else ""),
    )


def _features(doc: Any) -> list[dict[str, Any]]:
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        found = doc.get("features") or []
    elif isinstance(doc, dict) and doc.get("type") == "Feature":
        found = [doc]
    elif isinstance(doc, dict) and "coordinates" in doc:
        found = [{"type": "Feature", "properties": {}, "geometry": doc}]
    else:
        found = []
    return [f for f in found if isinstance(f, dict) and isinstance(f.get("geometry"), dict)]


def asset_rows(item: Mapping[str, Any]) -> Sequence[tuple[str, str, str, str]]:
    """``(key, kind, media type, size)`` of each asset of an item, for the detail pane."""
    rows = []
    for key, asset in (item.get("assets") or {}).items():
        if not isinstance(asset, Mapping):
            continue
        size = asset.get("file:size")
        rows.append(
            (
                str(key),
                asset_kind(asset, str(key)),
                str(asset.get("type") or ""),
                human_bytes(float(size)) if isinstance(size, int | float) else "",
            )
        )
    return rows
