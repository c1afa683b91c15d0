"""Checksums: ``file:checksum`` multihashes parsed; files hashed (off the event loop when large)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any, Final

from .spec import TransferSpec

# multihash codes -> hashlib names (https://github.com/multiformats/multicodec)
_MULTIHASH: Final = {
    0x11: "sha1",
    0x12: "sha256",
    0x13: "sha512",
    0x14: "sha3_512",
    0x15: "sha3_384",
    0x16: "sha3_256",
    0x20: "sha384",
    0xD5: "md5",
}
_PLAIN_HEX: Final = {16: "md5", 20: "sha1", 32: "sha256", 64: "sha512"}
#: Hashing of file prefixes larger than this runs in a thread, not in the event loop.
_HASH_INLINE_LIMIT: Final = 8 << 20

log = logging.getLogger(__name__)


def parse_checksum(text: str) -> tuple[str, bytes]:
    """Split a ``file:checksum`` value into ``(hashlib name, digest)``.

    Accepts multihash hex (``1220…`` sha2-256, ``d50110…`` md5, ``1114…`` sha1, ``1340…``
    sha2-512, sha3 and sha2-384) and, as a fallback, plain md5/sha1/sha256/sha512 hex.

    Raises:
        ValueError: not hex, or an unsupported hash function.
    """
    if len(text) == 68 and text.startswith("1220"):  # sha2-256, what MLHub catalogues use
        return "sha256", bytes.fromhex(text[4:])
    if len(text) == 38 and text.startswith("d50110"):  # md5: a sync's S3 ETags
        return "md5", bytes.fromhex(text[6:])
    raw = bytes.fromhex(text.strip())
    code, pos = _varint(raw, 0)
    length, pos = _varint(raw, pos)
    name = _MULTIHASH.get(code) if code is not None else None
    if name is not None and length is not None and len(raw) - pos == length:
        return name, raw[pos:]
    plain = _PLAIN_HEX.get(len(raw))
    if plain is not None:
        return plain, raw
    raise ValueError(f"unsupported checksum {text[:16]!r}…")


def _varint(raw: bytes, pos: int) -> tuple[int | None, int]:
    value = shift = 0
    while pos < len(raw) and shift < 63:
        byte = raw[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None, pos


def _expected_digest(spec: TransferSpec) -> tuple[str, bytes] | None:
    if not spec.checksum:
        return None
    try:
        return parse_checksum(spec.checksum)
    except ValueError:
        log.warning("cannot verify %s: %s", spec.dest, f"unsupported checksum {spec.checksum!r}")
        return None


def _hash_file(path: str, name: str, end: int, chunk: int = 1 << 20) -> Any:
    """Hash the first ``end`` bytes of ``path`` (the whole file when ``end < 0``)."""
    hasher = hashlib.new(name)
    with open(path, "rb", buffering=0) as fh:
        remaining = end if end >= 0 else 1 << 62
        buf = bytearray(chunk)
        view = memoryview(buf)
        while remaining > 0:
            n = fh.readinto(view[: min(chunk, remaining)])
            if not n:
                break
            hasher.update(view[:n])
            remaining -= n
    return hasher


async def _hash_file_async(path: str, name: str, end: int) -> Any:
    if 0 <= end <= _HASH_INLINE_LIMIT:
        return _hash_file(path, name, end)
    return await asyncio.get_running_loop().run_in_executor(None, _hash_file, path, name, end)
