"""Lazy raster cubes of a local dataset, through odc-stac (the ``xarray`` extra).

MLHub items rarely carry the projection and raster extensions odc-stac needs to place pixels
(``proj:*``) and to know how many bands an asset holds (``raster:bands``). :func:`load_cube`
reads them from each file's header with rasterio (no pixel is read), adds them to in-memory
copies of the items (the catalogue on disk is not changed) and hands the items to
``odc.stac.load`` with ``chunks={}``: the result is a lazy, dask-backed :class:`xarray.Dataset`
whose bands are named after the asset keys (``image``; ``image.1``, ``image.2``... for an
asset with several bands).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pystac

from ..discovery.export import require
from ..filters import AssetFilter
from ..types import BBoxLike, DatetimeLike
from . import storage

if TYPE_CHECKING:
    import xarray


__all__ = ["load_cube"]

PROJECTION = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
RASTER = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
_RASTER_TYPES = ("image/tiff", "image/geotiff", "image/jp2", "image/vnd.stac.geotiff")


def _is_raster(asset: pystac.Asset) -> bool:
    media = (asset.media_type or "").lower()
    return media.startswith(_RASTER_TYPES) or asset.href.lower().endswith((".tif", ".tiff"))


def _describe_from_header(asset: pystac.Asset, rasterio: Any) -> int:
    """Add ``proj:*`` and ``raster:bands`` from the file's header; returns its band count."""
    with rasterio.open(asset.href) as src:
        if src.crs is None:
            raise ValueError(f"{asset.href} has no coordinate reference system")
        asset.extra_fields["proj:code"] = src.crs.to_string()
        asset.extra_fields["proj:shape"] = [src.height, src.width]
        asset.extra_fields["proj:transform"] = list(src.transform)[:6]
        asset.extra_fields["raster:bands"] = [
            {"data_type": dtype, "nodata": src.nodata} for dtype in src.dtypes
        ]
        return int(src.count)


def load_cube(
    collection_items: Iterable[pystac.Item],
    collection: str,
    assets: str | Sequence[str] | None = None,
    *,
    bbox: BBoxLike | None = None,
    datetime: DatetimeLike = None,
    **load_kwargs: Any,
) -> xarray.Dataset:
    """A lazy cube of the raster assets of ``collection``.

    Args:
        collection_items: the items of one collection, with local hrefs
            (:meth:`LocalDataset.stac_items`); they are stacked one time step per date, as
            ``odc.stac.load`` groups them (pass ``groupby=`` to change it).
        collection: the collection's id (for messages).
        assets: asset keys (default: every raster asset, GeoTIFF or JPEG 2000, of the items).
            An asset with several bands gives ``key.1``, ``key.2``...
        bbox: ``[west, south, east, north]`` in degrees: items outside it are left out and
            the cube is cut to it.
        datetime: a date, ``"A/B"`` interval... (as for :func:`mlhub_widgets.items`): items
            outside it are left out.
        load_kwargs: passed to ``odc.stac.load`` (``crs=``, ``resolution=``, ``groupby=``,
            ``chunks=``...).

    Raises:
        MissingDependencyError: odc-stac or rasterio is not installed.
        ValueError: no item has the assets on disk, or an asset key is unknown.
    """
    odc_stac = require("odc.stac", "xarray")
    rasterio = require("rasterio", "xarray")
    wanted = [assets] if isinstance(assets, str) else list(assets) if assets else None
    flt = AssetFilter.build(bbox=bbox, datetime=datetime)
    items: list[pystac.Item] = []
    bands: dict[str, int] = {}
    known: set[str] = set()
    for item in collection_items:
        known.update(item.assets)
        if not flt.item_matches(item.to_dict(transform_hrefs=False)):
            continue
        keys = [k for k, a in item.assets.items() if _is_raster(a)] if wanted is None else wanted
        chosen = {k: item.assets[k] for k in keys if k in item.assets}
        if len(chosen) < len(keys) or not all(storage.exists(a.href) for a in chosen.values()):
            continue  # an item is stacked only with every asset asked for on disk
        for key, asset in chosen.items():
            bands[key] = _describe_from_header(asset, rasterio)
        item.assets = chosen
        item.stac_extensions = [*item.stac_extensions, PROJECTION, RASTER]
        items.append(item)
    unknown = sorted(set(wanted or ()) - known)
    if unknown:
        raise ValueError(
            f"no item of {collection} has the assets {unknown}; it has {sorted(known)}"
        )
    if not items:
        raise ValueError(
            f"no item of {collection} has its raster assets on disk"
            + ("" if flt.bbox is None and flt.datetime is None else " within the filters")
        )
    names = [
        key if count == 1 else f"{key}.{i}"
        for key, count in bands.items()
        for i in range(1, count + 1)
    ]
    load_kwargs.setdefault("chunks", {})
    if flt.bbox is not None:
        load_kwargs.setdefault("bbox", list(flt.bbox))
    cube: xarray.Dataset = odc_stac.load(items, bands=names, **load_kwargs)
    return cube
