"""What the object-storage tests share: the hub's S3 origin as a public bucket, a small static
catalogue written into moto / Azurite / fake-gcs-server, and tree comparisons."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlhub_widgets.hub import Hub

#: Small datasets of the hub's ``radiantearth`` bucket (Source Cooperative's layout).
SMALL_DS = "spacenet1"  # 23 objects
DEMO_DS = "mlhub_widgets_demo_crops"  # 582 objects


def hub_public(hub: Hub) -> dict[str, Any]:
    """Storage options reading the hub's datasets bucket without credentials."""
    return {"endpoint": hub.s3_url, "skip_signature": True}


def hub_writer(hub: Hub) -> dict[str, Any]:
    """Storage options writing the hub's scratch buckets (any keys are accepted)."""
    return {"endpoint": hub.s3_url, "access_key_id": "hub", "secret_access_key": "hub-secret"}


def tree(folder: Path) -> dict[str, bytes]:
    """``{relative path: bytes}`` of every file below ``folder``."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def checksum(data: bytes) -> str:
    """``file:checksum`` (sha2-256 multihash) of ``data``."""
    return "1220" + sha(data)


#: A static catalogue of two items with relative asset hrefs, as it would sit in a bucket:
#: ``{prefix}/catalog.json``, ``{prefix}/coll/collection.json``, ``{prefix}/coll/<item>/...``.
ASSETS = {
    "coll/item-a/image.tif": b"II*\x00" + bytes(range(256)) * 40,
    "coll/item-a/labels.geojson": b'{"type": "FeatureCollection", "features": []}',
    "coll/item-b/image.tif": b"II*\x00" + bytes(reversed(range(256))) * 40,
    "coll/item-b/labels.geojson": b'{"type": "FeatureCollection", "features": [] }',
}


def catalogue_objects(dataset: str = "tiny") -> dict[str, bytes]:
    """The documents and assets of a two-item static catalogue (relative hrefs)."""
    docs: dict[str, Any] = {
        "catalog.json": {
            "type": "Catalog",
            "id": dataset,
            "stac_version": "1.0.0",
            "description": "a tiny catalogue in a bucket",
            "links": [{"rel": "child", "href": "./coll/collection.json"}],
        },
        "coll/collection.json": {
            "type": "Collection",
            "id": "coll",
            "stac_version": "1.0.0",
            "description": "c",
            "license": "CC-BY-4.0",
            "extent": {
                "spatial": {"bbox": [[0, 0, 2, 2]]},
                "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]},
            },
            "links": [
                {"rel": "item", "href": "./item-a/item-a.json"},
                {"rel": "item", "href": "./item-b/item-b.json"},
            ],
        },
    }
    for name, x in (("item-a", 0), ("item-b", 1)):
        docs[f"coll/{name}/{name}.json"] = {
            "type": "Feature",
            "stac_version": "1.0.0",
            "id": name,
            "collection": "coll",
            "bbox": [x, x, x + 1, x + 1],
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[x, x], [x + 1, x], [x + 1, x + 1], [x, x + 1], [x, x]]],
            },
            "properties": {"datetime": "2020-06-01T00:00:00Z"},
            "links": [{"rel": "collection", "href": "../collection.json"}],
            "assets": {
                key: {
                    "href": f"./{key}.{ext}",
                    "file:size": len(ASSETS[f"coll/{name}/{key}.{ext}"]),
                    "file:checksum": checksum(ASSETS[f"coll/{name}/{key}.{ext}"]),
                }
                for key, ext in (("image", "tif"), ("labels", "geojson"))
            },
        }
    out = {k: json.dumps(v).encode() for k, v in docs.items()}
    out.update(ASSETS)
    return out


def put_catalogue(put: Callable[[str, bytes], None], prefix: str, dataset: str = "tiny") -> None:
    """Write :func:`catalogue_objects` below ``prefix`` with ``put(key, bytes)``."""
    for key, data in catalogue_objects(dataset).items():
        put(f"{prefix}/{key}" if prefix else key, data)


def downloaded_assets(out: Path, dataset: str) -> dict[str, bytes]:
    """``{asset path below the collection: bytes}`` of a download of the tiny catalogue."""
    base = out / dataset / "coll"
    return {
        p.relative_to(base).as_posix(): p.read_bytes()
        for p in sorted(base.rglob("*"))
        if p.is_file() and p.suffix in (".tif", ".geojson")
    }


def expected_assets() -> dict[str, bytes]:
    """What :func:`downloaded_assets` holds after a complete download (the download layout:
    ``{item}/{key}{ext}``)."""
    return {k.removeprefix("coll/"): v for k, v in ASSETS.items()}
