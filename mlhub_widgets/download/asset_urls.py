"""Asset hrefs as the index keeps them: the fetchable URL of an href and the path its file is
saved at, with fast paths for the plain cases (the index's hot loop runs them per asset).

Used by :mod:`.index` and :mod:`.local_catalog`; imports only :mod:`.paths` and the URL
schemes, so both may use it without importing each other.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit

from ..net.objects.urls import OBJECT_SCHEMES
from .paths import COMMON_ASSET_KEYS, COMMON_DIR, asset_extension, safe_component

__all__ = ["asset_url", "fast_relpath"]

#: A bucket name that ``urlsplit`` takes as it is (S3, GCS and Azure rules allow no more).
_PLAIN_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]*")


def asset_url(href: str) -> str | None:
    """A fetchable URL for an asset href (HTTP(S), or an object store's ``s3://``, ``gs://``,
    ``az://``: fetched through obstore with the source's storage options), or None.

    An href with one of these schemes that does not parse (a port out of range, a broken IPv6
    host) is kept as it is: the download fails that asset alone, with the reason."""
    if href.startswith(("https://", "http://")) and len(href) > 8:
        return href
    scheme, sep, rest = href.partition("://")
    if sep and scheme in OBJECT_SCHEMES:  # the common bucket href, without urlsplit
        bucket = rest.split("/", 1)[0]
        if _PLAIN_BUCKET.fullmatch(bucket):
            return href
    try:
        parts = urlsplit(href)
    except ValueError:
        scheme = href.partition("://")[0].lower()
        return href if scheme in ("http", "https") or scheme in OBJECT_SCHEMES else None
    if parts.scheme in ("http", "https") and parts.netloc:
        return href
    if parts.scheme.lower() in OBJECT_SCHEMES and parts.netloc:
        return href
    return None


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,198}[A-Za-z0-9_-]|[A-Za-z0-9_-]")
_DEVICE_STEMS = frozenset({"CON", "PRN", "AUX", "NUL"})


def _safe_fast(name: str) -> str:
    """``paths.safe_component`` with a fast path for plain ASCII names (the common case)."""
    if _PLAIN_NAME.fullmatch(name):
        stem = name.split(".", 1)[0].upper()
        if stem not in _DEVICE_STEMS and not (len(stem) == 4 and stem[:3] in ("COM", "LPT")):
            return name
    return safe_component(name)


@functools.lru_cache(maxsize=4096)
def _safe_cached(name: str) -> str:
    return _safe_fast(name)


def fast_relpath(
    collection_id: str, item_id: str | None, key: str, href: str, media: str | None
) -> str:
    """``paths.asset_relpath`` as a string, with the repeated components cached (hot loop)."""
    name = _safe_cached(key) + _extension(href, media)
    collection = _safe_cached(collection_id)
    if item_id is None:
        return f"{collection}/{name}"
    if key in COMMON_ASSET_KEYS:
        return f"{collection}/{COMMON_DIR}/{name}"
    return f"{collection}/{_safe_fast(item_id)}/{name}"


#: URL beginnings :func:`_extension` takes the fast path for.
_PLAIN_URL_STARTS = ("https://", "http://", *(f"{scheme}://" for scheme in OBJECT_SCHEMES))


def _extension(href: str, media: str | None) -> str:
    """``paths.asset_extension`` with a fast path for plain http(s) and object URLs (the hot
    loop)."""
    if not href.startswith(_PLAIN_URL_STARTS) or any(c in href for c in "?#%\\"):
        return asset_extension(href, media)
    rest = href[href.index("://") + 3 :]
    slash = rest.find("/")
    if slash < 0:
        return asset_extension(href, media)
    stem, dot, suffix = rest[slash:].rpartition("/")[2].rpartition(".")
    return _extension_of(suffix if dot and stem.strip(".") else "", media)


@functools.lru_cache(maxsize=1024)
def _extension_of(suffix: str, media: str | None) -> str:
    return asset_extension(f"http://h/f.{suffix}" if suffix else "http://h/f", media)
