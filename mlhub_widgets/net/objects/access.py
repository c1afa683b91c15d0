"""Opening any location the package reads: an object, an ``http(s)://`` URL or a local path.

For other parts of the package (static catalogues, discovery of local folders and prefixes):
:func:`read_url` gives the bytes, :func:`list_url` the files below a prefix or folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from ...exceptions import EntityDoesNotExist, MLHubException
from ..settings import NetworkSettings
from .config import StorageOptions
from .io import ObjectInfo, iter_objects, read_object
from .urls import UnsupportedURLError, check_local_path, is_object_url

__all__ = ["list_url", "read_url"]


def read_url(
    url: str | os.PathLike[str],
    *,
    storage_options: StorageOptions | None = None,
    network: NetworkSettings | None = None,
    max_bytes: int | None = None,
) -> bytes:
    """The bytes at an object URL, an ``http(s)://`` URL or a local path (blocking).

    Raises:
        EntityDoesNotExist: nothing there (404, a missing object or file).
        UnsupportedURLError: a scheme the package does not read.
        MLHubException: the other failures, one line each (access denied, network...).
    """
    text = os.fspath(url)
    network = network or NetworkSettings()
    if is_object_url(text):
        return read_object(
            text, storage_options=storage_options, network=network, max_bytes=max_bytes
        )
    if text.startswith(("http://", "https://")):
        from ..sync import fetch_document

        return fetch_document(text, settings=network, not_found=f"nothing at {text}").body
    check_local_path(text)
    cap = network.max_document_bytes if max_bytes is None else max_bytes
    try:
        with open(text, "rb") as fh:
            data = fh.read(cap + 1)
    except FileNotFoundError:
        raise EntityDoesNotExist(404, "GET", text, None, message=f"no file at {text}") from None
    if len(data) > cap:
        raise MLHubException(f"{text} is larger than {cap:,} bytes")
    return data


def list_url(
    url: str | os.PathLike[str],
    *,
    storage_options: StorageOptions | None = None,
    network: NetworkSettings | None = None,
) -> Iterator[ObjectInfo]:
    """Every object below an object prefix, or every file below a local folder (as
    :class:`ObjectInfo` with the file's path as ``url`` and its relative path as ``key``).

    Raises:
        UnsupportedURLError: a scheme the package does not list (``http(s)://`` included).
    """
    text = os.fspath(url)
    if is_object_url(text):
        yield from iter_objects(text, storage_options=storage_options, network=network)
        return
    check_local_path(text)
    if text.startswith(("http://", "https://")):
        raise UnsupportedURLError(f"cannot list {text}: HTTP has no listing")
    from datetime import UTC, datetime

    root = Path(text).expanduser()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            st = path.stat()
            yield ObjectInfo(
                str(path),
                path.relative_to(root).as_posix(),
                st.st_size,
                None,
                datetime.fromtimestamp(st.st_mtime, UTC),
            )
