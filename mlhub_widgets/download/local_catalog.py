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

import itertools
import json
import os
import posixpath
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .index import _asset_url, _relpath

__all__ = ["ALTERNATE_ASSETS", "LocalizeStats", "localize_catalog"]

#: The alternate-assets extension, declared by every document this module rewrites.
ALTERNATE_ASSETS = "https://stac-extensions.github.io/alternate-assets/v1.2.0/schema.json"

JSON = dict[str, Any]
_THREADS = 4
_BATCH = 512


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


def _json_files(folder: Path) -> Iterator[tuple[str, str]]:
    """``(folder, name)`` of every ``*.json`` file under ``folder`` (sorted: repeatable runs)."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(".json"):
                yield dirpath, name


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
    assets_root = os.fspath(dataset_asset_dir)

    def one(found: tuple[str, str]) -> tuple[bool, int]:
        folder, name = found
        path = os.path.join(folder, name)
        with open(path, "rb") as fh:
            data = fh.read()
        if b'"assets"' not in data and b"\\u" not in data and b"\x00" not in data[:4]:
            # no "assets" key (not even escaped; UTF-8): nothing to point at the files. A
            # catalogue or collection that links every item is not parsed: 45 MB of links at
            # 500,000 items became ~360 MB of Python objects for a moment
            return False, 0
        try:
            doc = json.loads(data)
        except ValueError:
            return False, 0  # not JSON: an asset, not a catalogue document
        kind = _stac_kind(doc)
        if kind is None:
            return False, 0
        if kind == "collection":
            cid, item_id = str(doc.get("id")), None
        else:
            item_id = str(doc["id"])
            cid = doc.get("collection")
            if not isinstance(cid, str) or not cid:
                parts = Path(path).relative_to(output_dir).parts
                cid = parts[-3] if len(parts) >= 3 else dataset_id
        changed = _localize_assets(doc, cid, item_id, os.path.relpath(assets_root, folder))
        if changed:
            _write_atomic(path, doc)
        return True, changed

    # File system calls release the GIL: a few threads overlap them; batches bound memory.
    files = _json_files(catalog_folder)
    with ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="mlhub-localize") as pool:
        while batch := list(itertools.islice(files, _BATCH)):
            for is_doc, changed in pool.map(one, batch):
                stats.documents += is_doc
                stats.rewritten += changed > 0
                stats.assets += changed
    return stats


def _localize_assets(doc: JSON, cid: str, item_id: str | None, to_assets: str) -> int:
    """Rewrite the downloadable asset hrefs of ``doc`` in place; returns how many changed.

    ``to_assets`` is ``{asset_dir}/{dataset}`` relative to the document's folder.
    """
    changed = 0
    prefix = "" if to_assets == "." else to_assets.replace(os.sep, "/") + "/"
    for key, asset in doc["assets"].items():
        if not isinstance(asset, dict) or not isinstance(asset.get("href"), str):
            continue
        href = asset["href"]
        url = _asset_url(href)
        if url is None:
            continue  # relative or local already, or not downloadable: left as it is
        media = asset.get("type") if isinstance(asset.get("type"), str) else None
        try:
            local = posixpath.normpath(prefix + _relpath(cid, item_id, str(key), url, media))
            scheme = urlsplit(href).scheme or "https"
        except ValueError:
            continue  # an href that does not parse failed its asset; it is left as it is
        alternate = asset.get("alternate")
        alternate = dict(alternate) if isinstance(alternate, Mapping) else {}
        alternate.setdefault(scheme, {"href": href})
        asset["href"] = local
        asset["alternate"] = alternate
        changed += 1
    if changed:
        extensions = doc.get("stac_extensions")
        extensions = list(extensions) if isinstance(extensions, list) else []
        if ALTERNATE_ASSETS not in extensions:
            extensions.append(ALTERNATE_ASSETS)
        doc["stac_extensions"] = extensions
    return changed


def _write_atomic(path: str, doc: JSON) -> None:
    tmp = path + ".part"
    with open(tmp, "wb") as fh:
        fh.write(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    os.replace(tmp, path)
