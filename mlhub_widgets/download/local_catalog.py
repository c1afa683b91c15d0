"""The downloaded catalogue made local: asset hrefs that point at the downloaded files.

A download unpacks (or, for a STAC source, writes) the dataset's catalogue under
``{output_dir}/{dataset}/``, and writes each item and collection document **already local**
(:func:`localized_copy`, called by :mod:`.index` and :mod:`.catalog_writer` as the documents
go by): each downloadable asset's ``href`` is the relative path of the file the download
saves it to
(``{asset_dir}/{dataset}/…``, :func:`~.paths.asset_relpath`, the same mapping the index
uses), and keeps the server's href as the asset's alternate (alternate-assets extension,
keyed by the URL scheme: ``"alternate": {"https": {"href": …}}``). The catalogue and the
files then form one self-contained static STAC catalogue (with the default ``asset_dir`` it
moves as one folder) that pystac, odc-stac, stac-validator or :func:`mlhub_widgets.open_local`
read offline. An href points where the file is or would be: assets left out by the filters or
not yet downloaded keep their local href (``LocalDataset.items()`` says which are present).

:func:`localize_catalog` rewrites a catalogue already on disk the same way: what the unpacking
could not (a document too large to hold whole, :attr:`~.tar_stream.ArchiveStats.not_rewritten`),
or a catalogue unpacked for another ``asset_dir``. :func:`localize_once` runs it unless the
index's marker says the catalogue is local. The rewrite depends on the catalogue and
``asset_dir`` only, never on the filters, and it is idempotent (a local href is left
alone). :func:`localize_catalog` reads every ``*.json`` file under the catalogue's folder
once, in a streaming walk (memory does not grow with the catalogue: a document without
an ``assets`` member, such as a collection listing 100,000 item links, is not parsed); a
document is only rewritten when it changes, through a temporary file and an atomic rename.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import posixpath
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..net.objects.urls import OBJECT_SCHEMES
from .asset_urls import asset_url, fast_relpath
from .manifest import Manifest

__all__ = [
    "ALTERNATE_ASSETS",
    "LocalizeStats",
    "encode_json",
    "local_catalog_marker",
    "localize_catalog",
    "localize_document",
    "localize_once",
    "localized_copy",
]

#: The alternate-assets extension, declared by every document this module rewrites.
ALTERNATE_ASSETS = "https://stac-extensions.github.io/alternate-assets/v1.2.0/schema.json"

log = logging.getLogger(__name__)

JSON = dict[str, Any]
_THREADS = 4
_PLAIN_SCHEMES = frozenset({"http", "https", *OBJECT_SCHEMES})
_BATCH = 512


class LocalizeStats:
    """What :func:`localize_catalog` did."""

    def __init__(self) -> None:
        self.documents = 0
        self.rewritten = 0
        self.assets = 0
        self.stopped = False  # ``should_stop`` ended the walk early

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
    catalog_folder: Path,
    output_dir: Path,
    dataset_asset_dir: Path,
    dataset_id: str,
    should_stop: Callable[[], bool] | None = None,
) -> LocalizeStats:
    """Point the asset hrefs of the catalogue under ``catalog_folder`` at the downloaded files.

    Args:
        catalog_folder: the folder of the catalogue's root ``catalog.json``.
        output_dir: the download's output folder (an item without a ``collection`` field
            belongs to the folder two levels above its file, relative to it, as for the index).
        dataset_asset_dir: ``{asset_dir}/{dataset}``, where the assets are saved.
        dataset_id: the dataset (the collection of items that name none and have no folder).
        should_stop: asked between batches of documents; ``True`` ends the walk (the
            documents rewritten so far stay rewritten: each one is whole, old or new).

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
        if not _may_have_assets(data):
            return False, 0  # a catalogue or a collection of links only: not parsed
        try:
            doc = json.loads(data)
        except ValueError:
            return False, 0  # not JSON: an asset, not a catalogue document
        changed = localize_document(doc, path, output_dir, assets_root, dataset_id)
        if changed is None:
            return False, 0
        if changed:
            _write_atomic(path, doc)
        return True, changed

    # File system calls release the GIL: a few threads overlap them; batches bound memory.
    files = _json_files(catalog_folder)
    with ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="mlhub-localize") as pool:
        while batch := list(itertools.islice(files, _BATCH)):
            if should_stop is not None and should_stop():
                stats.stopped = True
                break
            for is_doc, changed in pool.map(one, batch):
                stats.documents += is_doc
                stats.rewritten += changed > 0
                stats.assets += changed
    return stats


def _may_have_assets(data: bytes) -> bool:
    """Whether a JSON document may hold an ``assets`` member (else it is left unparsed).

    A collection that only links its items can be megabytes (100,000 links): parsing it
    peaked at +30 MB in the download process for nothing. A key may be spelled with escapes
    (``"\\u0061ssets"``), so a document with any escape is parsed too, and so is one in
    UTF-16 or UTF-32 (a NUL byte in its first four), which ``json.loads`` also reads.
    """
    return b'"assets"' in data or b"\\u" in data or b"\x00" in data[:4]


def localize_document(
    doc: Any, path: str, output_dir: Path, assets_root: str, dataset_id: str
) -> int | None:
    """Rewrite ``doc``, the document saved at ``path``, as :func:`localize_catalog` does
    (in place: its asset dicts are changed); returns how many hrefs changed, or None when
    ``doc`` is no STAC item or collection with assets.

    ``assets_root`` is ``{asset_dir}/{dataset}``; the other arguments as for
    :func:`localize_catalog`.
    """
    kind = _stac_kind(doc)
    if kind is None:
        return None
    if kind == "collection":
        cid, item_id = str(doc.get("id")), None
    else:
        item_id = str(doc["id"])
        cid = doc.get("collection")
        if not isinstance(cid, str) or not cid:
            parts = Path(path).relative_to(output_dir).parts
            cid = parts[-3] if len(parts) >= 3 else dataset_id
    to_assets = os.path.relpath(assets_root, os.path.dirname(path))
    return _localize_assets(doc, cid, item_id, to_assets)


def localized_copy(
    doc: Any, path: str, output_dir: Path, assets_root: str, dataset_id: str
) -> JSON | None:
    """A copy of ``doc`` rewritten as :func:`localize_document` does, or None when nothing
    changes (not a STAC item or collection with assets, or no downloadable href). ``doc``
    itself is left as it is (its asset dicts are copied): the index still reads the
    server's hrefs from it. Used where the catalogue is written, so that it is written once,
    already local: the unpacked tarball (:mod:`.index`) and a STAC source's copy
    (:mod:`.catalog_writer`)."""
    if _stac_kind(doc) is None:
        return None
    copy = dict(doc)
    copy["assets"] = {k: dict(a) if isinstance(a, dict) else a for k, a in doc["assets"].items()}
    if not localize_document(copy, path, output_dir, assets_root, dataset_id):
        return None
    return copy


def encode_json(doc: JSON) -> bytes:
    """How the local catalogue writes a document: compact UTF-8 JSON."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def local_catalog_marker(generation: str | None, dataset_asset_dir: Path) -> JSON:
    """What the manifest records (meta ``local_catalog``) once the catalogue's hrefs point
    into ``dataset_asset_dir`` for this index generation: :func:`localize_catalog` is not
    run again while it matches."""
    return {"generation": generation, "asset_dir": str(dataset_asset_dir.resolve())}


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
        url = asset_url(href)
        if url is None:
            continue  # relative or local already, or not downloadable: left as it is
        media = asset.get("type") if isinstance(asset.get("type"), str) else None
        try:
            local = posixpath.normpath(prefix + fast_relpath(cid, item_id, str(key), url, media))
            scheme = _scheme(href)
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


def _scheme(href: str) -> str:
    """``urlsplit(href).scheme or "https"``, without ``urlsplit`` for the usual URLs (an ASCII
    ``http(s)://`` or bucket URL without brackets: nothing ``urlsplit`` could refuse).

    Raises:
        ValueError: ``href`` does not parse.
    """
    head, sep, _ = href.partition("://")
    if sep and head in _PLAIN_SCHEMES and href.isascii() and "[" not in href and "]" not in href:
        return head
    return urlsplit(href).scheme or "https"


def _write_atomic(path: str, doc: JSON) -> None:
    tmp = path + ".part"
    with open(tmp, "wb") as fh:
        fh.write(encode_json(doc))
    os.replace(tmp, path)


def localize_once(
    db: Manifest,
    output_dir: Path,
    dataset_asset_dir: Path,
    dataset_id: str,
    should_stop: Callable[[], bool] | None = None,
) -> Path | None:
    """:func:`localize_catalog` once per index generation and asset folder (a marker in the
    index says it was done); returns the catalogue's ``catalog.json`` (None while the index
    is incomplete, or when ``should_stop`` ended the rewrite: the next call does it).

    The download's index process calls it as soon as the index is built, while the transfers
    run; the download calls it again at its end, which then only reads the marker.
    """
    root = db.get_meta("catalog_root")
    if not root or db.get_meta("index_complete") != "1":
        return None
    catalog = output_dir / root
    if not catalog.is_file():
        return None
    marker = local_catalog_marker(db.get_meta("generation"), dataset_asset_dir)
    if db.get_meta_json("local_catalog") != marker:
        stats = localize_catalog(
            catalog.parent, output_dir, dataset_asset_dir, dataset_id, should_stop
        )
        log.debug("local catalogue of %s: %s", dataset_id, stats)
        if stats.stopped:
            return None
        db.set_meta({"local_catalog": marker})
    return catalog
