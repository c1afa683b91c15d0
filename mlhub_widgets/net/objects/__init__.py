"""Object storage: ``s3://``, ``gs://`` and ``az://`` on obstore (Rust, maintained, measured).

The one place that turns an object URL + ``storage_options`` + the environment into a store:

* :mod:`.urls`: which schemes are object stores (:data:`OBJECT_SCHEMES`), parsing and joining
  object URLs, and the one-line error for a URL where a local path is expected;
* :mod:`.config`: storage options and each cloud's environment (keys, regions, endpoints,
  profiles, anonymous access), and the package's network settings (proxy, CAs, timeouts,
  retries) mapped onto obstore's options;
* :mod:`.stores`: one store per bucket and configuration (cached), obstore's errors as the
  package's one-line exceptions;
* :mod:`.io`: read, head, list, put, delete (blocking and asynchronous).

For other parts of the package (static catalogues, discovery of local folders), three small
functions open any location the package reads: :func:`read_url` (bytes of an object, an
``http(s)://`` URL or a file), :func:`list_url` (the files below an object prefix or a folder)
and :func:`is_object_url`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .access import (
        list_url,
        read_url,
    )
    from .config import (
        StorageOptions,
        normalise_options,
        parse_storage_option,
    )
    from .io import (
        ObjectInfo,
        aiter_objects,
        delete_object_async,
        head_object,
        head_object_async,
        iter_objects,
        md5_of_etag,
        put_object_async,
        read_object,
        read_object_async,
        resolve,
    )
    from .stores import (
        clear_stores,
        get_store,
        object_error,
    )
    from .urls import (
        OBJECT_SCHEMES,
        ObjectURL,
        UnsupportedURLError,
        check_local_path,
        is_object_url,
        join_object_url,
        parse_object_url,
    )

__all__ = [
    "OBJECT_SCHEMES",
    "ObjectInfo",
    "ObjectURL",
    "StorageOptions",
    "UnsupportedURLError",
    "aiter_objects",
    "check_local_path",
    "clear_stores",
    "delete_object_async",
    "get_store",
    "head_object",
    "head_object_async",
    "is_object_url",
    "iter_objects",
    "join_object_url",
    "list_url",
    "md5_of_etag",
    "normalise_options",
    "object_error",
    "parse_object_url",
    "parse_storage_option",
    "put_object_async",
    "read_object",
    "read_object_async",
    "read_url",
    "resolve",
]

#: Loaded on first use: importing the package (the asset index's child process checks schemes
#: with :mod:`.urls`) must not load the network settings, ssl or obstore.
_LAZY = {
    **dict.fromkeys(("list_url", "read_url"), ".access"),
    **dict.fromkeys(("StorageOptions", "normalise_options", "parse_storage_option"), ".config"),
    **dict.fromkeys(
        (
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
        ),
        ".io",
    ),
    **dict.fromkeys(("clear_stores", "get_store", "object_error"), ".stores"),
    **dict.fromkeys(
        (
            "OBJECT_SCHEMES",
            "ObjectURL",
            "UnsupportedURLError",
            "check_local_path",
            "is_object_url",
            "join_object_url",
            "parse_object_url",
        ),
        ".urls",
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
