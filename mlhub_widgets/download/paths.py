"""Where a downloaded asset is saved.

The layout matches radiant_mlhub's, so tools built on its output keep working::

    {asset_dir}/{dataset_id}/{collection_id}/{item_id}/{asset_key}{ext}   item asset
    {asset_dir}/{dataset_id}/{collection_id}/{asset_key}{ext}             collection-level asset
    {asset_dir}/{dataset_id}/{collection_id}/_common/{asset_key}{ext}     common asset of items

Unlike radiant_mlhub, every id and key taken from a catalogue goes through
:func:`safe_component`, so a hostile catalogue cannot write outside the output directory, and the
extension comes from the URL path's real suffix (then the media type), never from a substring
test. ``docs/paths.md`` documents the mapping with examples.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from .folder_lock import LOCK_NAME
from .manifest import MANIFEST_NAME
from .report import ERR_REPORT_NAME

__all__ = [
    "COMMON_ASSET_KEYS",
    "COMMON_DIR",
    "MAX_COMPONENT_BYTES",
    "RESERVED_NAMES",
    "asset_extension",
    "asset_relpath",
    "is_reserved_name",
    "resolve_inside",
    "safe_component",
]

RESERVED_NAMES: frozenset[str] = frozenset(
    {
        MANIFEST_NAME,
        *(MANIFEST_NAME + suffix for suffix in ("-wal", "-shm", "-journal")),
        ERR_REPORT_NAME,
        ERR_REPORT_NAME + ".tmp",
        LOCK_NAME,
    }
)
"""The files a download keeps in ``{asset_dir}/{dataset_id}/`` (the asset index, the error
report, the folder lock): no catalogue member or asset may ever have these names."""
_RESERVED_SUFFIXES = (".part", ".part.meta")  # a transfer's unfinished file and its sidecar


def is_reserved_name(name: str) -> bool:
    """A file name the download keeps for itself: the asset index and its SQLite files, the
    error report, the folder lock, or a transfer's ``.part``/``.part.meta`` (whose bytes a
    resume would trust)."""
    return name in RESERVED_NAMES or name.endswith(_RESERVED_SUFFIXES)


COMMON_ASSET_KEYS: frozenset[str] = frozenset(
    {"documentation", "readme", "test_split", "train_split", "validation_split"}
)
"""Item asset keys saved once per collection under ``_common`` (same file for every item)."""

COMMON_DIR = "_common"
MAX_COMPONENT_BYTES = 200
"""Longest path component we write, in UTF-8 bytes (file systems allow 255)."""

_HASH_SEP = "~"  # never part of an unchanged name, so changed names cannot collide with them
_HASH_LEN = 12  # hex digits of SHA-256: 48 bits

_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"{dev}{n}" for dev in ("COM", "LPT") for n in (*"0123456789", "¹", "²", "³")}
)


#: Plain characters are what ``str.isalnum()`` accepts, plus ``-_. `` (``\w`` is alphanumeric
#: or ``_``): one rule for the test of a whole name and for the replacement of the others.
_PLAIN_NAME = re.compile(r"[\w\-. ]+")
_NOT_PLAIN = re.compile(r"[^\w\-. ]")


def _is_reserved(name: str) -> bool:
    """Windows device names, also with an extension or trailing spaces: ``con``, ``NUL.txt``."""
    stem = name.split(".", 1)[0].rstrip(" ")
    return stem.upper() in _WINDOWS_RESERVED


def _is_unchanged(name: str) -> bool:
    if not name or name in (".", ".."):
        return False
    if name[0] == " " or name[-1] in " .":
        return False
    ascii = name.isascii()  # one byte per character, and nothing to normalise
    if (len(name) if ascii else len(name.encode("utf-8", "surrogatepass"))) > MAX_COMPONENT_BYTES:
        return False
    if _PLAIN_NAME.fullmatch(name) is None:
        return False
    if not ascii and not unicodedata.is_normalized("NFC", name):
        return False  # macOS would store it under another byte sequence
    return not _is_reserved(name)


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_LEN]


def safe_component(name: str) -> str:
    """Map an id or asset key to one file-name component that is safe on every platform.

    Ordinary names (letters, digits, ``-``, ``_``, ``.``, inner spaces; NFC; at most 200 UTF-8
    bytes; not ``.``/``..``; no trailing dot; not a Windows device name such as ``CON`` or
    ``nul.txt``) are returned unchanged. Anything else is rewritten: other characters become
    ``_``, leading/trailing spaces and trailing dots are dropped, device names get a ``_``
    prefix, long names are cut, and ``~`` plus 12 hex digits of the SHA-256 of the original name
    are appended. ``~`` never occurs in an unchanged name, so distinct inputs give distinct
    outputs (up to a 48-bit hash collision). The result depends on the input only, never on
    the platform.

    Raises:
        TypeError: ``name`` is not a string.
    """
    if not isinstance(name, str):
        raise TypeError(f"a path component must be a string, got {type(name).__name__}")
    if _is_unchanged(name):
        return name
    base = unicodedata.normalize("NFC", name)  # readable: "e" + U+0301 stays "é"
    base = _NOT_PLAIN.sub("_", base)
    base = base.strip(" ").rstrip(". ")
    if base in ("", ".", ".."):
        base = "_"
    if _is_reserved(base):
        base = "_" + base
    suffix = _HASH_SEP + _digest(name)
    budget = MAX_COMPONENT_BYTES - len(suffix)
    encoded = base.encode("utf-8", "surrogatepass")
    if len(encoded) > budget:
        base = encoded[:budget].decode("utf-8", "ignore").rstrip(". ") or "_"
    return base + suffix


# --------------------------------------------------------------------------------------------
# extensions

_EXT_RE = re.compile(r"\.[A-Za-z0-9]{1,16}")

_MEDIA_TYPE_EXT: dict[str, str] = {
    "image/tiff": ".tif",
    "image/tif": ".tif",
    "image/geotiff": ".tif",
    "image/jp2": ".jp2",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/geo+json": ".geojson",
    "application/geojson": ".geojson",
    "application/json": ".json",
    "application/ld+json": ".json",
    "application/pdf": ".pdf",
    "text/csv": ".csv",
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/html": ".html",
    "text/xml": ".xml",
    "application/xml": ".xml",
    "application/zip": ".zip",
    "application/gzip": ".gz",
    "application/x-gzip": ".gz",
    "application/x-tar": ".tar",
    "application/x-npy": ".npy",
    "application/npy": ".npy",
    "application/x-hdf5": ".h5",
    "application/x-hdf": ".hdf",
    "application/netcdf": ".nc",
    "application/x-netcdf": ".nc",
    "application/vnd.apache.parquet": ".parquet",
    "application/x-parquet": ".parquet",
    "application/geopackage+sqlite3": ".gpkg",
    "application/vnd.google-earth.kml+xml": ".kml",
    "application/vnd.google-earth.kmz": ".kmz",
    "application/x-ndjson": ".ndjson",
    "application/vnd.laszip": ".laz",
    "application/vnd.zarr": ".zarr",
}
_STRUCTURED_SUFFIX_EXT = {"+json": ".json", "+xml": ".xml", "+zip": ".zip"}


def _media_type_extension(media_type: str | None) -> str:
    if not media_type or not isinstance(media_type, str):
        return ""
    main = media_type.split(";", 1)[0].strip().lower()
    ext = _MEDIA_TYPE_EXT.get(main)
    if ext:
        return ext
    for structured, ext in _STRUCTURED_SUFFIX_EXT.items():
        if main.endswith(structured):
            return ext
    return ""


def asset_extension(href: str, media_type: str | None = None) -> str:
    """The file extension for an asset: the URL path's suffix, else one from the media type.

    Only the last segment of the URL *path* counts (``…/x.tiff`` → ``.tiff``; a ``.json`` in a
    directory name, the query or the fragment does not). A suffix must be 1-16 ASCII letters or
    digits after the dot. Without a usable suffix the media type decides (``image/tiff`` →
    ``.tif``, ``application/geo+json`` → ``.geojson``, …); unknown → ``""``. Never raises for
    a string ``href``.
    """
    if not isinstance(href, str):
        raise TypeError(f"href must be a string, got {type(href).__name__}")
    try:
        path = urlsplit(href).path
    except ValueError:  # e.g. an invalid IPv6 host
        path = href.split("?", 1)[0].split("#", 1)[0]
    last = unquote(path).replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, suffix = last.rpartition(".")
    if dot and stem.strip(".") and _EXT_RE.fullmatch("." + suffix):
        return "." + suffix
    return _media_type_extension(media_type)


# --------------------------------------------------------------------------------------------
# paths


def asset_relpath(
    collection_id: str,
    item_id: str | None,
    asset_key: str,
    href: str,
    media_type: str | None = None,
) -> PurePosixPath:
    """Where an asset goes, relative to ``{asset_dir}/{dataset_id}``.

    ``item_id=None`` is a collection-level asset (``{collection}/{key}{ext}``); an item asset
    whose key is in :data:`COMMON_ASSET_KEYS` goes to ``{collection}/_common/{key}{ext}``;
    any other item asset to ``{collection}/{item}/{key}{ext}``. Every part is passed through
    :func:`safe_component`.
    """
    name = safe_component(asset_key) + asset_extension(href, media_type)
    collection = safe_component(collection_id)
    if item_id is None:
        return PurePosixPath(collection, name)
    if asset_key in COMMON_ASSET_KEYS:
        return PurePosixPath(collection, COMMON_DIR, name)
    return PurePosixPath(collection, safe_component(item_id), name)


def resolve_inside(root: Path, rel: PurePosixPath | str) -> Path:
    """``root / rel``, proven to stay inside ``root`` (symlinks resolved); else ValueError.

    ``rel`` must be relative and free of ``..``; the joined path, with symlinks of existing
    parts resolved, must still be below the resolved root.
    """
    rel_path = PurePosixPath(rel)
    text = str(rel)
    if "\x00" in text:
        raise ValueError(f"path {text!r} contains a NUL character")
    if rel_path.is_absolute() or text.startswith(("\\", "/")) or re.match(r"[A-Za-z]:", text):
        raise ValueError(f"path {text!r} must be relative to {root}")
    if ".." in re.split(r"[\\/]", text):
        raise ValueError(f"path {text!r} must not contain '..'")
    if not rel_path.parts or rel_path == PurePosixPath("."):
        raise ValueError("an empty path does not name a file inside the output directory")
    root_resolved = Path(os.path.realpath(root))
    target = Path(os.path.realpath(root_resolved.joinpath(*rel_path.parts)))
    if target == root_resolved or not target.is_relative_to(root_resolved):
        raise ValueError(f"path {text!r} would be saved outside {root_resolved} (at {target})")
    return Path(root).joinpath(*rel_path.parts)
