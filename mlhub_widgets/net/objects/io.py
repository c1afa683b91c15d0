"""Reading, listing and writing objects, blocking or asynchronous, with one-line errors.

Every function takes the object URL, the caller's ``storage_options`` and the package's
:class:`~mlhub_widgets.net.settings.NetworkSettings`; it finds the bucket's store
(:func:`~.stores.get_store`) and raises the package's exceptions (:func:`~.stores.object_error`),
never obstore's. The blocking forms release the GIL while they wait, so threads (the static
catalogue walker) run them in parallel.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ...exceptions import MLHubException, ResponseTooLarge
from ..settings import NetworkSettings
from .config import StorageOptions
from .stores import get_store, object_error
from .urls import ObjectURL, parse_object_url

__all__ = [
    "ObjectInfo",
    "aiter_objects",
    "delete_object_async",
    "head_object",
    "head_object_async",
    "iter_objects",
    "md5_of_etag",
    "put_object_async",
    "read_object",
    "read_object_async",
    "resolve",
]


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One object of a listing or a HEAD.

    Attributes:
        url: its URL (``s3://bucket/key``).
        key: its key in the bucket.
        size: its size in bytes.
        etag: its ETag as the store sends it (with quotes), if any.
        last_modified: when it was last written.
    """

    url: str
    key: str
    size: int
    etag: str | None
    last_modified: datetime | None

    @property
    def md5(self) -> str | None:
        """The MD5 hex of the bytes when the ETag is one (an S3 object written in one part:
        32 hex digits, no ``-N`` suffix), else None."""
        return md5_of_etag(self.etag)


_MD5_HEX = re.compile(r"[0-9a-f]{32}")  # ASCII hex only


def md5_of_etag(etag: str | None) -> str | None:
    """The MD5 hex an S3 single-part ETag carries (``"9e10…"``), else None."""
    if not etag:
        return None
    text = etag.strip().strip('"').lower()
    return text if _MD5_HEX.fullmatch(text) else None


def resolve(
    url: str,
    storage_options: StorageOptions | None = None,
    network: NetworkSettings | None = None,
    *,
    streaming: bool = False,
) -> tuple[Any, ObjectURL]:
    """``(store, parsed URL)`` for an object URL."""
    loc = parse_object_url(url)
    return get_store(loc, storage_options, network, streaming=streaming), loc


def _unsigned(store: Any) -> bool:
    try:
        return str(store.config.get("skip_signature", "")).lower() == "true"
    except Exception:  # pragma: no cover - a store without config
        return False


def _error(exc: Exception, store: Any, url: str, method: str) -> MLHubException:
    if isinstance(exc, MLHubException):
        return exc
    return object_error(exc, url, method, unsigned=_unsigned(store))


def _info(loc: ObjectURL, meta: Any) -> ObjectInfo:
    return ObjectInfo(
        str(loc.with_key(meta["path"])),
        meta["path"],
        int(meta["size"]),
        meta.get("e_tag"),
        meta.get("last_modified"),
    )


def read_object(
    url: str,
    *,
    storage_options: StorageOptions | None = None,
    network: NetworkSettings | None = None,
    max_bytes: int | None = None,
    store: Any = None,
) -> bytes:
    """The bytes of one object (blocking); ``store``: the bucket's store, if the caller
    holds it (else it is looked up).

    Raises:
        EntityDoesNotExist: no such object or bucket.
        AuthenticationError: access denied.
        ResponseTooLarge: the object is larger than ``max_bytes`` (default: the documents' cap).
        NetworkError, MLHubHTTPError, ConfigurationError: see :func:`~.stores.object_error`.
    """
    import obstore

    network = network or NetworkSettings()
    cap = network.max_document_bytes if max_bytes is None else max_bytes
    if store is None:
        store, loc = resolve(url, storage_options, network)
    else:
        loc = parse_object_url(url)
    try:
        result = obstore.get(store, loc.key)
        size = int(result.meta["size"])
        if size > cap:
            raise ResponseTooLarge(
                f"{url} is larger than {cap:,} bytes ({size:,}); not read", url=url
            )
        return bytes(result.bytes())
    except Exception as exc:
        raise _error(exc, store, url, "GET") from None


async def read_object_async(
    url: str,
    *,
    storage_options: StorageOptions | None = None,
    network: NetworkSettings | None = None,
) -> bytes:
    """The bytes of one object (in a running event loop)."""
    import obstore

    store, loc = resolve(url, storage_options, network)
    try:
        result = await obstore.get_async(store, loc.key)
        return bytes(await result.bytes_async())
    except Exception as exc:
        raise _error(exc, store, url, "GET") from None


def head_object(
    url: str,
    *,
    storage_options: StorageOptions | None = None,
    network: NetworkSettings | None = None,
) -> ObjectInfo:
    """Size, ETag and date of one object (blocking); raises like :func:`read_object`."""
    import obstore

    store, loc = resolve(url, storage_options, network)
    try:
        return _info(loc, obstore.head(store, loc.key))
    except Exception as exc:
        raise _error(exc, store, url, "HEAD") from None


async def head_object_async(
    url: str,
    *,
    storage_options: StorageOptions | None = None,
    network: NetworkSettings | None = None,
) -> ObjectInfo:
    """:func:`head_object` in a running event loop."""
    import obstore

    store, loc = resolve(url, storage_options, network)
    try:
        return _info(loc, await obstore.head_async(store, loc.key))
    except Exception as exc:
        raise _error(exc, store, url, "HEAD") from None


def iter_objects(
    url: str,
    *,
    storage_options: StorageOptions | None = None,
    network: NetworkSettings | None = None,
    page: int = 1000,
) -> Iterator[ObjectInfo]:
    """Every object below the prefix ``url`` (recursively, ``prefix/`` as a folder: ``a/b``
    lists ``a/b/...``, not ``a/bc``), in key order, as the pages arrive (blocking).

    Raises:
        EntityDoesNotExist: the bucket does not exist.
        AuthenticationError, NetworkError, ...: as :func:`read_object`.
    """
    import obstore

    store, loc = resolve(url, storage_options, network)
    prefix = loc.key.strip("/") or None
    try:
        for chunk in obstore.list(store, prefix, chunk_size=page):
            for meta in chunk:
                yield _info(loc, meta)
    except Exception as exc:
        raise _error(exc, store, url, "LIST") from None


async def put_object_async(
    url: str,
    data: bytes | memoryview | Path,
    *,
    storage_options: StorageOptions | None = None,
    network: NetworkSettings | None = None,
    part_size: int = 8 << 20,
    concurrency: int = 8,
    store: Any = None,
) -> str | None:
    """Write one object: in one request, or as a multipart upload (parts of ``part_size``)
    when ``data`` is a file larger than that; returns the new ETag.

    A failed multipart upload is aborted (obstore does it), so no part stays behind.
    ``store``: the bucket's store when the caller holds it already (else it is looked up).
    """
    import obstore

    if store is None:
        store, loc = resolve(url, storage_options, network)
    else:
        loc = parse_object_url(url)
    try:
        result = await obstore.put_async(
            store, loc.key, data, chunk_size=part_size, max_concurrency=concurrency
        )
    except Exception as exc:
        raise _error(exc, store, url, "PUT") from None
    etag = result.get("e_tag")
    return str(etag) if etag else None


async def delete_object_async(
    url: str,
    *,
    storage_options: StorageOptions | None = None,
    network: NetworkSettings | None = None,
) -> None:
    """Remove one object (no error when it is already gone)."""
    import obstore

    store, loc = resolve(url, storage_options, network)
    try:
        await obstore.delete_async(store, loc.key)
    except FileNotFoundError:
        return
    except Exception as exc:
        raise _error(exc, store, url, "DELETE") from None


async def aiter_objects(
    url: str,
    *,
    storage_options: StorageOptions | None = None,
    network: NetworkSettings | None = None,
    page: int = 1000,
) -> AsyncIterator[ObjectInfo]:
    """:func:`iter_objects` in a running event loop."""
    import obstore

    store, loc = resolve(url, storage_options, network)
    prefix = loc.key.strip("/") or None
    try:
        async for chunk in obstore.list(store, prefix, chunk_size=page):
            for meta in chunk:
                yield _info(loc, meta)
    except Exception as exc:
        raise _error(exc, store, url, "LIST") from None
