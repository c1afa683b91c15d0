"""Where a local dataset's documents and files are read from: the one place that knows.

A downloaded dataset is a folder today (paths and ``file://`` URLs); an object-storage prefix
(``s3://bucket/prefix/``) is the next kind. Everything in :mod:`mlhub_widgets.local` reads
through :func:`read_bytes`, :func:`exists` and :func:`join`, and pystac through
:class:`DatasetStacIO`, so a new kind of location is a new branch in these three functions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pystac

__all__ = [
    "DatasetStacIO",
    "exists",
    "is_remote",
    "join",
    "local_path",
    "normalise_root",
    "read_bytes",
]

_REMOTE_SCHEMES = frozenset({"http", "https", "s3", "gs", "az", "abfs", "ftp"})


def is_remote(href: str) -> bool:
    """A URL this module does not read (http(s), object storage...)."""
    scheme = urlsplit(href).scheme.lower()
    return scheme in _REMOTE_SCHEMES


def local_path(href: str) -> Path:
    """The file a local href names (a path or a ``file://`` URL).

    Raises:
        ValueError: ``href`` is not local; the message names what is supported.
    """
    parts = urlsplit(href)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if is_remote(href):
        raise ValueError(
            f"{href!r} is not on this machine: open_local reads a downloaded dataset in a "
            "local folder (object-storage prefixes such as s3:// are not supported yet)"
        )
    return Path(href)


def join(base: str, href: str) -> str:
    """``href`` resolved against the document ``base`` it appears in (a normalised path for
    local documents; remote hrefs are returned as they are)."""
    if is_remote(href) or urlsplit(href).scheme == "file":
        return href
    if os.path.isabs(href):
        return os.path.normpath(href)
    folder = os.path.dirname(str(local_path(base)))
    return os.path.normpath(os.path.join(folder, href.replace("/", os.sep)))


def read_bytes(href: str) -> bytes:
    """The content of a local document or file.

    Raises:
        OSError: it cannot be read. ValueError: ``href`` is not local.
    """
    return local_path(href).read_bytes()


def exists(href: str) -> bool:
    """Whether a local file exists (False for remote hrefs: nothing is on this machine)."""
    if is_remote(href):
        return False
    return local_path(href).is_file()


class DatasetStacIO(pystac.stac_io.DefaultStacIO):
    """pystac's reader, through :func:`read_bytes` (local documents only, never the network)."""

    def read_text_from_href(self, href: str) -> str:
        """Read a catalogue document."""
        return read_bytes(href).decode("utf-8")

    def write_text_to_href(self, href: str, txt: str) -> None:
        """Write a document (pystac's ``save``), creating its folder."""
        path = local_path(href)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(txt, encoding="utf-8")

    def __repr__(self) -> str:
        return "DatasetStacIO()"


def normalise_root(path: str | os.PathLike[Any]) -> str:
    """The ``catalog.json`` of a dataset folder (or the given ``.json`` file), absolute.

    Raises:
        FileNotFoundError: there is no catalogue there. ValueError: not a local path (one line
            saying how to copy an object-storage prefix to a folder).
    """
    text = os.fspath(path)
    if is_remote(text):
        copy = text.rstrip("/").removesuffix("/catalog.json")
        raise ValueError(
            f"open_local reads local folders only, not {text}: copy the dataset first "
            f"(mlhub sync {copy}/ -o FOLDER) and open that folder"
        )
    where = local_path(text).expanduser().resolve()
    candidate = where if where.suffix == ".json" else where / "catalog.json"
    if not candidate.is_file():
        raise FileNotFoundError(
            f"no STAC catalogue at {candidate}: give the folder mlhub download wrote "
            "({output_dir}/{dataset}) or its catalog.json"
        )
    return str(candidate)
