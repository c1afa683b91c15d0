"""The explorer's selection as STAC: the items it covers, as an ItemCollection or a file.

The *selection* is the selected dataset, narrowed by the filters: the collections named in the
content filter (every collection of the dataset without one), and the items those collections
hold inside the area and the dates. Items are kept whole (every asset, not only the ticked
keys): the content filter decides what a download fetches, not what an item is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pystac

from .filters import Filters

__all__ = ["EXPORT_FORMATS", "export_format", "selection_items", "write_selection"]

#: File formats of :func:`write_selection`, by suffix.
EXPORT_FORMATS = {".parquet": "parquet", ".geojson": "geojson", ".json": "geojson"}


def export_format(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """``"parquet"`` or ``"geojson"``: ``fmt``, else from the file's suffix.

    Raises:
        ValueError: unknown format or suffix.
    """
    if fmt is None:
        suffix = Path(path).suffix.lower()
        if suffix not in EXPORT_FORMATS:
            raise ValueError(
                f"cannot tell the format of {os.fspath(path)!r}: end the name with .parquet "
                "(stac-geoparquet) or .geojson (a GeoJSON FeatureCollection)"
            )
        return EXPORT_FORMATS[suffix]
    if fmt not in ("parquet", "geojson"):
        raise ValueError(f"unknown export format {fmt!r}: use 'parquet' or 'geojson'")
    return fmt


def selection_items(
    where: Mapping[str, Any],
    collection_ids: Sequence[str],
    filters: Filters,
    limit: int | None = None,
) -> pystac.ItemCollection:
    """The items of ``collection_ids`` that match the area and dates of ``filters``.

    Args:
        where: ``{"session": …}`` or ``{"source": …}`` (where discovery goes).
        collection_ids: the collections of the selection.
        filters: the explorer's filters (their area and dates are used).
        limit: at most this many items per collection (None: all of them).
    """
    from ...discovery import item_collection

    kwargs = filters.download_kwargs()
    found: list[pystac.Item] = []
    for cid in collection_ids:
        part = item_collection(
            cid,
            bbox=kwargs["bbox"],
            intersects=kwargs["intersects"],
            datetime=kwargs["datetime"],
            limit=limit,
            progress=False,
            **where,
        )
        found.extend(part)
    return pystac.ItemCollection(found, clone_items=False)


def write_selection(items: pystac.ItemCollection, path: str | os.PathLike[str], fmt: str) -> Path:
    """Write ``items`` to ``path`` as stac-geoparquet or a GeoJSON FeatureCollection."""
    out = Path(path).expanduser()
    if fmt == "parquet":
        from ...discovery.export import to_geoparquet

        return to_geoparquet(items, out)
    import json

    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(items.to_dict(transform_hrefs=False), ensure_ascii=False)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    return out
