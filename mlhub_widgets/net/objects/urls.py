"""Object-store URLs: what ``s3://``, ``gs://`` and ``az://`` name, and what no URL may become.

========================  =========  ==============================================
URL                       cloud      bucket / container, key
========================  =========  ==============================================
``s3://b/k`` ``s3a://``   S3         bucket ``b``, key ``k``
``gs://b/k`` ``gcs://``   GCS        bucket ``b``, key ``k``
``az://c/k`` ``azure://`` Azure      container ``c``, key ``k`` (account from the
                                     options or ``AZURE_STORAGE_ACCOUNT_NAME``)
``abfs[s]://c@a.dfs.core.windows.net/k``  Azure  container ``c`` of account ``a``
========================  =========  ==============================================

Any other ``scheme://`` (and a ``scheme:/`` that ``pathlib`` would turn into a folder named
``scheme:``) is refused with a one-line :class:`UnsupportedURLError` by
:func:`check_local_path`, so that ``-o s3:/bucket`` can never become a local folder.
"""

from __future__ import annotations

import os
import re
import string
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import quote, unquote, urljoin

from ...exceptions import ConfigurationError

__all__ = [
    "OBJECT_SCHEMES",
    "Cloud",
    "ObjectURL",
    "UnsupportedURLError",
    "check_local_path",
    "is_object_url",
    "join_object_url",
    "join_relative_path",
    "parse_object_url",
]

Cloud = Literal["s3", "gcs", "azure"]

#: URL scheme -> cloud.
OBJECT_SCHEMES: Final[dict[str, Cloud]] = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "azure": "azure",
    "abfs": "azure",
    "abfss": "azure",
}

#: ``scheme:`` at the start of a string (RFC 3986 scheme characters).
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


class UnsupportedURLError(ConfigurationError):
    """A URL whose scheme the package cannot read from or write to."""


@dataclass(frozen=True, slots=True)
class ObjectURL:
    """A parsed object-store URL.

    Attributes:
        cloud: ``"s3"``, ``"gcs"`` or ``"azure"``.
        scheme: the scheme as written (lower case): ``s3``, ``gs``, ``az``...
        bucket: the bucket (S3, GCS) or container (Azure).
        key: the object key or prefix, without a leading ``/`` (may be empty).
        account: the Azure storage account named in an ``abfs://`` URL, if any.
    """

    cloud: Cloud
    scheme: str
    bucket: str
    key: str
    account: str | None = None

    @property
    def root(self) -> str:
        """The URL of the bucket itself (``s3://b``)."""
        if self.account and self.scheme in ("abfs", "abfss"):
            return f"{self.scheme}://{self.bucket}@{self.account}.dfs.core.windows.net"
        return f"{self.scheme}://{self.bucket}"

    def with_key(self, key: str) -> ObjectURL:
        """The same bucket, another key."""
        return ObjectURL(self.cloud, self.scheme, self.bucket, key.lstrip("/"), self.account)

    def __str__(self) -> str:
        return f"{self.root}/{self.key}"


def is_object_url(text: str) -> bool:
    """True for ``s3://``, ``gs://``, ``az://``... URLs (see :data:`OBJECT_SCHEMES`)."""
    head, sep, _ = text.partition("://")
    return bool(sep) and head.lower() in OBJECT_SCHEMES


def parse_object_url(url: str) -> ObjectURL:
    """Split an object-store URL into cloud, bucket and key.

    Raises:
        UnsupportedURLError: not an object-store URL, or one without a bucket.
    """
    head, sep, rest = url.partition("://")
    scheme = head.lower()
    cloud = OBJECT_SCHEMES.get(scheme) if sep else None
    if cloud is None:
        raise UnsupportedURLError(f"not an object-store URL: {url!r}")
    netloc, _, key = rest.partition("/")
    account = None
    if "@" in netloc and cloud == "azure":
        netloc, _, host = netloc.partition("@")
        account = host.split(".", 1)[0] or None
    if not netloc:
        raise UnsupportedURLError(f"{url!r} names no bucket (write {scheme}://BUCKET/PREFIX)")
    if "?" in key or "#" in key:
        raise UnsupportedURLError(f"{url!r}: object URLs take no query or fragment")
    return ObjectURL(cloud, scheme, netloc, unquote(key), account)


def join_object_url(base: str, href: str) -> str:
    """``href`` resolved against the object URL ``base`` (a document in a bucket), as a
    browser would resolve it (``../x.json``, ``./a/b.tif``, ``/k``); absolute hrefs are kept."""
    if "://" in href:
        return href
    fast = _join_plain(base, href)
    if fast is not None:
        return fast
    head, _, rest = base.partition("://")
    # resolve as an https URL, whose rules are the same, then put the scheme back
    joined = urljoin(f"https://{rest.replace('%', '%25')}", quote(href, safe="/:@!$&'()*+,;=~."))
    return f"{head}://{unquote(joined.partition('://')[2])}"


#: Characters of an href :func:`_join_plain` resolves itself (no quoting can change them).
_PLAIN_HREF: Final = frozenset(string.ascii_letters + string.digits + "-_./~")


def _join_plain(base: str, href: str) -> str | None:
    """:func:`join_object_url` without ``urljoin`` for the hrefs of a catalogue walk (a name,
    ``./a/b.tif``, ``../../catalog.json``: three per item), or None when ``urljoin`` must
    decide (other characters, empty or dot segments, ``..`` above the bucket)."""
    if not href or href[0] == "/" or not _PLAIN_HREF.issuperset(href):
        return None
    if any(c in base for c in "?#;") or "/./" in base or "/../" in base:
        return None
    root = base.find("/", base.find("://") + 3)  # the slash after the bucket
    if root < 0 or "//" in href or base.find("//", root) >= 0:
        return None
    return join_relative_path(base, href, root)


def join_relative_path(base: str, href: str, root: int) -> str | None:
    """``urljoin(base, href)`` for a plain relative path (leading ``./`` and ``../`` only),
    without urllib: the hot path of catalogue walks. ``root`` is the index of the slash after
    the host or bucket in ``base``; None when ``urljoin`` must decide (``href`` climbs above
    it, or has dot segments inside)."""
    head = base[: base.rfind("/") + 1]
    rest = href
    while rest.startswith(("../", "./")):
        if rest.startswith("./"):
            rest = rest[2:]
            continue
        if len(head) - 1 <= root:  # already at the root
            return None
        head = head[: head.rfind("/", 0, len(head) - 1) + 1]
        rest = rest[3:]
    if "/./" in rest or "/../" in rest or rest in ("..", ".") or rest.endswith(("/..", "/.")):
        return None
    return head + rest


def _scheme_of(text: str) -> str | None:
    m = _SCHEME.match(text)
    if m is None:
        return None
    scheme = m.group(1)
    if len(scheme) == 1 and os.name == "nt":
        return None  # a drive letter: C:\data or C:/data
    return scheme


def check_local_path(text: str, what: str = "path") -> None:
    """Refuse a URL where a local path is expected.

    ``s3://b/k`` becomes ``s3:/b/k`` once it goes through :mod:`pathlib`, a folder named ``s3:``
    in the working directory: any ``scheme:/`` here is an error, with a hint for the URLs the
    package does read (object stores, HTTP).

    Raises:
        UnsupportedURLError: ``text`` starts with ``scheme:/``.
    """
    scheme = _scheme_of(text)
    if scheme is None:
        return
    rest = text[len(scheme) + 1 :]
    if not rest.startswith("/"):
        return  # "a:b.json" is a file name on POSIX
    low = scheme.lower()
    if low in OBJECT_SCHEMES and not rest.startswith("//"):
        fixed = f"{scheme}://{rest.lstrip('/')}"
        raise UnsupportedURLError(f"{what} {text!r} is not a valid URL: did you mean {fixed!r}?")
    if low in OBJECT_SCHEMES or low in ("http", "https"):
        raise UnsupportedURLError(f"{what} {text!r} is a URL, not a local path")
    supported = "s3://, gs://, az:// (and azure://, abfs://)"
    raise UnsupportedURLError(
        f"unsupported URL scheme {scheme}:// in {what} {text!r} "
        f"(object stores: {supported}; local paths have no scheme)"
    )
