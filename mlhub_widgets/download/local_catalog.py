"""The downloaded catalogue made local: asset hrefs that point at the downloaded files.

A download unpacks (or, for a STAC source, writes) the dataset's catalogue under
``{output_dir}/{dataset}/`` with the asset hrefs of the server. Once the index is complete,
:func:`localize_catalog` rewrites every item and collection document there so that each
downloadable asset's ``href`` is the relative path of the file the download saves it to
(``{asset_dir}/{dataset}/…``, :func:`~.paths.asset_relpath`, the same mapping the index
uses), and keeps the server's href as the asset's alternate (alternate-assets extension,
keyed by the URL scheme: ``"alternate": {"https": {"href": …}}``). The catalogue and the
files then form one self-contained static STAC catalogue (with the default ``asset_dir`` it
moves as one folder) that pystac, odc-stac, stac-validator or :func:`mlhub_widgets.open_local`
read offline. An href points where the file is or would be: assets left out by the filters or
not yet downloaded keep their local href (``LocalDataset.items()`` says which are present).

The rewrite depends on the catalogue and ``asset_dir`` only, never on the filters, and it is
idempotent (a local href is left alone). Every ``*.json`` file under the catalogue's folder is
read once, in a streaming walk (memory does not grow with the catalogue); a document is only
rewritten when it changes, through a temporary file and an atomic rename.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from .index import _asset_url
from .paths import asset_relpath

__all__ = ["ALTERNATE_ASSETS", "LocalizeStats", "localize_catalog"]

#: The alternate-assets extension, declared by every document this module rewrites.
ALTERNATE_ASSETS = "https://stac-extensions.github.io/alternate-assets/v1.2.0/schema.json"

JSON = dict[str, Any]


class LocalizeStats:
    """What :func:`localize_catalog` did."""

    def __init__(self) -> None:
        self.documents = 0
        self.rewritten = 0
        self.assets = 0

    def __repr__(self) -> str:
        return (
            f"LocalizeStats(documents={self.documents}, rewritten={self.rewritten}, "
            f"assets={self.assets})"
        )


def _json_files(folder: Path) -> Iterator[Path]:
    """Every ``*.json`` file under ``folder`` (sorted, so runs are repeatable)."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(".json"):
                yield Path(dirpath, name)


def _stac_kind(doc: Any) -> str | None:
    """``"item"`` or ``"collection"`` for STAC documents with assets (as the index classifies
    them), else None."""
    if not isinstance(doc, dict) or not isinstance(doc.get("assets"), Mapping):
        return None
    if doc.get("type") == "Feature" and "stac_version" in doc:
        return "item"
    if doc.get("type") == "Collection":
        return "collection"
    return None


def localize_catalog(
    catalog_folder: Path, output_dir: Path, dataset_asset_dir: Path, dataset_id: str
) -> LocalizeStats:
    """Point the asset hrefs of the catalogue under ``catalog_folder`` at the downloaded files.

    Args:
        catalog_folder: the folder of the catalogue's root ``catalog.json``.
        output_dir: the download's output folder (an item without a ``collection`` field
            belongs to the folder two levels above its file, relative to it, as for the index).
        dataset_asset_dir: ``{asset_dir}/{dataset}``, where the assets are saved.
        dataset_id: the dataset (the collection of items that name none and have no folder).

    Raises:
        OSError: a document could not be read or written.
    """
    stats = LocalizeStats()
    for path in _json_files(catalog_folder):
        try:
            doc = json.loads(path.read_bytes())
        except ValueError:
            continue  # not JSON: an asset, not a catalogue document
        kind = _stac_kind(doc)
        if kind is None:
            continue
        stats.documents += 1
        if kind == "collection":
            cid, item_id = str(doc.get("id")), None
        else:
            item_id = str(doc["id"])
            cid = doc.get("collection")
            if not isinstance(cid, str) or not cid:
                parts = path.relative_to(output_dir).parts
                cid = parts[-3] if len(parts) >= 3 else dataset_id
        changed = _localize_assets(doc, cid, item_id, path.parent, dataset_asset_dir)
        if changed:
            stats.assets += changed
            stats.rewritten += 1
            _write_atomic(path, doc)
    return stats


def _localize_assets(
    doc: JSON, cid: str, item_id: str | None, folder: Path, dataset_asset_dir: Path
) -> int:
    """Rewrite the downloadable asset hrefs of ``doc`` in place; returns how many changed."""
    changed = 0
    for key, asset in doc["assets"].items():
        if not isinstance(asset, dict) or not isinstance(asset.get("href"), str):
            continue
        href = asset["href"]
        url = _asset_url(href)
        if url is None:
            continue  # relative or local already, or not downloadable: left as it is
        media = asset.get("type") if isinstance(asset.get("type"), str) else None
        target = dataset_asset_dir / Path(asset_relpath(cid, item_id, str(key), url, media))
        local = PurePosixPath(Path(os.path.relpath(target, folder)).as_posix())
        scheme = urlsplit(href).scheme or "https"
        alternate = asset.get("alternate")
        alternate = dict(alternate) if isinstance(alternate, Mapping) else {}
        alternate.setdefault(scheme, {"href": href})
        asset["href"] = str(local)
        asset["alternate"] = alternate
        changed += 1
    if changed:
        extensions = doc.get("stac_extensions")
        extensions = list(extensions) if isinstance(extensions, list) else []
        if ALTERNATE_ASSETS not in extensions:
            extensions.append(ALTERNATE_ASSETS)
        doc["stac_extensions"] = extensions
    return changed


def _write_atomic(path: Path, doc: JSON) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    os.replace(tmp, path)
