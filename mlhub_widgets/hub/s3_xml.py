"""S3 REST API documents: error bodies, listings, multipart results, and the listing walk.

The shapes follow Amazon S3's API reference (``ListBucketResult``, ``Error``, ...), in the
``http://s3.amazonaws.com/doc/2006-03-01/`` namespace, with ``encoding-type=url`` honoured the way
botocore decodes it (``quote_plus`` of keys and prefixes).
"""

from __future__ import annotations

import base64
import binascii
import time
import xml.etree.ElementTree as ET
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus
from xml.sax.saxutils import escape

__all__ = [
    "NS",
    "ListWalk",
    "S3Error",
    "decode_token",
    "element_texts",
    "encode_token",
    "error_xml",
    "iso_time",
    "parse_xml",
    "successor",
    "token_bound",
]

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
XML_TYPE = "application/xml"


class S3Error(Exception):
    """An S3 error answer: ``code`` (``NoSuchKey``...), HTTP ``status`` and extra XML fields."""

    def __init__(self, status: int, code: str, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields


def error_xml(err: S3Error, resource: str, request_id: str) -> bytes:
    """The ``<Error>`` document of ``err``."""
    extra = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in err.fields.items())
    return (
        f"{HEAD}<Error><Code>{err.code}</Code><Message>{escape(err.message)}</Message>{extra}"
        f"<Resource>{escape(resource)}</Resource><RequestId>{request_id}</RequestId></Error>"
    ).encode()


def iso_time(ts: float) -> str:
    """S3's timestamp format: ``2022-09-12T16:00:00.000Z``."""
    whole = int(ts)
    ms = round((ts - whole) * 1000)
    if ms == 1000:
        whole, ms = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{ms:03d}Z"


def text(value: str, url: bool) -> str:
    """A key or prefix as a listing shows it (URL-encoded with ``encoding-type=url``)."""
    return quote_plus(value, safe="/") if url else escape(value)


def successor(prefix: str) -> str:
    """The smallest string greater than every string that starts with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def encode_token(kind: str, value: str) -> str:
    """An opaque continuation token: after key ``value`` (``K``) or common prefix (``P``)."""
    return base64.urlsafe_b64encode((kind + value).encode()).decode()


def decode_token(token: str) -> tuple[str, str]:
    """``(kind, value)`` of :func:`encode_token`; ``InvalidArgument`` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    if raw[:1] not in ("K", "P") or (raw[:1] == "P" and len(raw) < 2):
        raise S3Error(400, "InvalidArgument", "The continuation token provided is incorrect")
    return raw[0], raw[1:]


def token_bound(token: str) -> tuple[str, bool]:
    """The lower bound ``(value, inclusive)`` a continuation token resumes from."""
    kind, value = decode_token(token)
    return (successor(value), True) if kind == "P" else (value, False)


def parse_xml(body: bytes) -> ET.Element:
    """A request document's root element, namespaces dropped; ``MalformedXML`` if invalid."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise S3Error(
            400, "MalformedXML", "The XML you provided was not well-formed or did not validate"
        ) from None
    for el in root.iter():
        if "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    return root


def element_texts(el: ET.Element, tag: str) -> str | None:
    """The text of ``el``'s child ``tag`` (``""`` when empty), or None when absent."""
    child = el.find(tag)
    return None if child is None else (child.text or "")


@dataclass
class ListWalk:
    """One page of a listing, filled block by block from sorted key lists.

    ``lower`` is the first allowed key: ``(value, inclusive)``. Keys sharing ``prefix`` and
    holding ``delimiter`` after it collapse into common prefixes; each key or common prefix
    counts towards ``max_keys``. When the page is full and one more entry exists,
    ``truncated`` is set and :meth:`feed` returns False (stop feeding).
    """

    prefix: str
    delimiter: str
    lower: tuple[str, bool]
    max_keys: int
    keys: list[tuple[str, Any]] = field(default_factory=list)  # (key, block it came from)
    prefixes: list[str] = field(default_factory=list)
    last: tuple[str, str] | None = None  # ("K", key) or ("P", common prefix) emitted last
    truncated: bool = False

    @property
    def count(self) -> int:
        """Entries on the page so far."""
        return len(self.keys) + len(self.prefixes)

    def before(self, block_prefix: str) -> bool:
        """Whether every key starting with ``block_prefix`` lies past the lower bound."""
        value, inclusive = self.lower
        return block_prefix > value or (inclusive and block_prefix == value)

    def beyond(self, block_prefix: str) -> bool:
        """Whether no key starting with ``block_prefix`` can reach the lower bound."""
        value, inclusive = self.lower
        end = successor(block_prefix)
        return end < value or (end == value and not inclusive)

    def collapses(self, block_prefix: str) -> str | None:
        """The common prefix that every key of a block collapses into, if the page's prefix
        and delimiter decide it from ``block_prefix`` alone."""
        d = self.delimiter
        if not d or not block_prefix.startswith(self.prefix):
            return None
        j = block_prefix.find(d, len(self.prefix))
        return block_prefix[: j + len(d)] if j >= 0 else None

    def plan(self, blocks: Sequence[str]) -> list[tuple[str, bool]]:
        """Which of the sorted ``blocks`` (key prefixes that partition the keys, none a prefix
        of another) a page visits: ``(block, True)`` when the page's prefix and delimiter
        collapse the whole block into one common prefix (``feed([block])`` stands for it, no
        need to know its keys), ``(block, False)`` when its keys must be fed."""
        out = []
        for block in blocks:
            if not (block.startswith(self.prefix) or self.prefix.startswith(block)):
                continue
            if self.beyond(block):
                continue
            out.append((block, self.collapses(block) is not None and self.before(block)))
        return out

    def feed(self, keys: Sequence[str], block: Any = None) -> bool:
        """Add the matching keys of sorted ``keys``; False once the page is complete."""
        if self.max_keys <= 0:
            return False
        value, inclusive = self.lower
        i = bisect_left(keys, value) if inclusive else bisect_right(keys, value)
        p, d = self.prefix, self.delimiter
        if p:
            i = max(i, bisect_left(keys, p))
        n = len(keys)
        lp = len(p)
        while i < n:
            k = keys[i]
            if not k.startswith(p):
                break
            if d:
                j = k.find(d, lp)
                if j >= 0:
                    cp = k[: j + len(d)]
                    if self.count >= self.max_keys:
                        self.truncated = True
                        return False
                    self.prefixes.append(cp)
                    self.last = ("P", cp)
                    self.lower = (successor(cp), True)
                    i = bisect_left(keys, successor(cp), i + 1)
                    continue
            if self.count >= self.max_keys:
                self.truncated = True
                return False
            self.keys.append((k, block))
            self.last = ("K", k)
            self.lower = (k, False)
            i += 1
        return True

    def next_token(self) -> str | None:
        """The continuation token of the next page (None when this is the last)."""
        if not self.truncated or self.last is None:
            return None
        return encode_token(*self.last)


def list_v2_xml(
    bucket: str,
    walk: ListWalk,
    rows: Sequence[tuple[str, str]],
    *,
    url: bool,
    token: str | None,
    start_after: str | None,
) -> bytes:
    """A ``ListObjectsV2`` page; ``rows`` are ``(key, XML tail after </Key>)``."""
    out = [f'{HEAD}<ListBucketResult xmlns="{NS}"><Name>{escape(bucket)}</Name>']
    out.append(f"<Prefix>{text(walk.prefix, url)}</Prefix>")
    if walk.delimiter:
        out.append(f"<Delimiter>{text(walk.delimiter, url)}</Delimiter>")
    out.append(f"<MaxKeys>{walk.max_keys}</MaxKeys><KeyCount>{walk.count}</KeyCount>")
    out.append(f"<IsTruncated>{'true' if walk.truncated else 'false'}</IsTruncated>")
    if token is not None:
        out.append(f"<ContinuationToken>{escape(token)}</ContinuationToken>")
    nxt = walk.next_token()
    if nxt is not None:
        out.append(f"<NextContinuationToken>{nxt}</NextContinuationToken>")
    if start_after is not None:
        out.append(f"<StartAfter>{text(start_after, url)}</StartAfter>")
    if url:
        out.append("<EncodingType>url</EncodingType>")
    out += [f"<Contents><Key>{text(k, url)}</Key>{tail}" for k, tail in rows]
    out += [
        f"<CommonPrefixes><Prefix>{text(p, url)}</Prefix></CommonPrefixes>" for p in walk.prefixes
    ]
    out.append("</ListBucketResult>")
    return "".join(out).encode()


def list_v1_xml(
    bucket: str, walk: ListWalk, rows: Sequence[tuple[str, str]], *, url: bool, marker: str
) -> bytes:
    """A ``ListObjects`` (version 1) page."""
    out = [f'{HEAD}<ListBucketResult xmlns="{NS}"><Name>{escape(bucket)}</Name>']
    out.append(f"<Prefix>{text(walk.prefix, url)}</Prefix><Marker>{text(marker, url)}</Marker>")
    out.append(f"<MaxKeys>{walk.max_keys}</MaxKeys>")
    if walk.delimiter:
        out.append(f"<Delimiter>{text(walk.delimiter, url)}</Delimiter>")
    out.append(f"<IsTruncated>{'true' if walk.truncated else 'false'}</IsTruncated>")
    if walk.truncated and walk.delimiter and walk.last is not None:
        out.append(f"<NextMarker>{text(walk.last[1], url)}</NextMarker>")
    if url:
        out.append("<EncodingType>url</EncodingType>")
    out += [f"<Contents><Key>{text(k, url)}</Key>{tail}" for k, tail in rows]
    out += [
        f"<CommonPrefixes><Prefix>{text(p, url)}</Prefix></CommonPrefixes>" for p in walk.prefixes
    ]
    out.append("</ListBucketResult>")
    return "".join(out).encode()


def contents_tail(etag: str, size: int, last_modified: float) -> str:
    """What follows ``<Key>`` in a listing's ``<Contents>`` (cached per object)."""
    quoted = etag.replace('"', "&quot;")
    return (
        f"<LastModified>{iso_time(last_modified)}</LastModified>"
        f"<ETag>{quoted}</ETag><Size>{size}</Size>"
        "<StorageClass>STANDARD</StorageClass></Contents>"
    )


def document(root: str, body: str) -> bytes:
    """A small response document ``<root xmlns=...>body</root>``."""
    return f'{HEAD}<{root} xmlns="{NS}">{body}</{root}>'.encode()
