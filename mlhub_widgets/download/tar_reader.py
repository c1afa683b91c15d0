"""The tar reader of :mod:`.catalog_archive`: decompression and tar headers, read as a stream.

Reads gzip, bz2, xz or plain tar in large blocks (ustar, GNU and PAX headers) and reports a
damaged or truncated archive as :class:`CorruptArchiveError`. What a member may be and where it
may go is decided by :func:`~.catalog_archive.iter_catalog`, not here.
"""

from __future__ import annotations

import bz2
import lzma
import struct
import tarfile
import zlib
from collections.abc import Iterator
from typing import Any, Protocol

from ..exceptions import MLHubException


class Readable(Protocol):
    """A binary stream: what :func:`iter_catalog` needs from a file object."""

    def read(self, n: int = -1, /) -> bytes: ...


class UnsafeArchiveError(MLHubException):
    """The catalogue archive contains a member that could escape or exhaust the output folder."""

    def __init__(self, message: str, *, member: str | None = None) -> None:
        self.member = member
        super().__init__(message)


class CorruptArchiveError(MLHubException, tarfile.ReadError):
    """The catalogue archive is not a readable archive, or is cut short or damaged.

    An archive is complete only when the tar end-of-archive marker (two zero blocks) was read
    **and** the compressed stream ended with a valid trailer (gzip: CRC-32 and size; bz2 and
    xz: their end-of-stream marks). Also a :class:`tarfile.ReadError` for older callers.
    """


_BLOCK = tarfile.BLOCKSIZE
_ZERO_BLOCK = bytes(_BLOCK)
_READ_SIZE = 256 * 1024
#: Decompressed bytes read at a time by the tar reader.
_BUFFER = 1024 * 1024
#: Compressed bytes handed to the decompressor at a time: zlib copies what a call leaves
#: unconsumed (``unconsumed_tail``), so big inputs would be copied over and over.
_INPUT_SLICE = 64 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_BZ2_MAGIC = b"BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"
#: Bytes accepted after the tar end-of-archive marker (record padding is at most 10 KiB).
_MAX_TRAILING = 64 * 1024 * 1024


class _Decompressor:
    """A file-like reader of the decompressed bytes of a gzip, bz2, xz or plain stream.

    Unlike ``tarfile``'s stream mode it checks that the compressed stream is *complete*:
    :attr:`complete` is True only once the decompressor reached the end of the (last) stream
    with a valid trailer (gzip's CRC-32 and size are checked by zlib) and the input is
    exhausted. Concatenated streams (``cat a.gz b.gz``) and trailing NUL padding are accepted.
    """

    def __init__(self, raw: Readable) -> None:
        self._raw = raw
        self._pending = b""  # compressed input not yet handed to the decompressor
        self._input_done = False
        head = self._fill(len(_XZ_MAGIC))
        if head.startswith(_GZIP_MAGIC):
            self.kind = "gzip"
        elif head.startswith(_BZ2_MAGIC):
            self.kind = "bz2"
        elif head.startswith(_XZ_MAGIC):
            self.kind = "xz"
        else:
            self.kind = "tar"
        self._dec: Any = self._new() if self.kind != "tar" else None
        self._ended = False  # the current compressed stream reached its end

    def _fill(self, n: int) -> bytes:
        while len(self._pending) < n and not self._input_done:
            data = self._raw.read(_READ_SIZE)
            if not data:
                self._input_done = True
            else:
                self._pending += data
        return self._pending[:n]

    def _new(self) -> Any:
        if self.kind == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        if self.kind == "bz2":
            return bz2.BZ2Decompressor()
        return lzma.LZMADecompressor(lzma.FORMAT_XZ)

    @property
    def complete(self) -> bool:
        """The input is exhausted and every compressed stream ended with a valid trailer."""
        if not self._input_done or self._pending:
            return False
        return self.kind == "tar" or self._ended

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` decompressed bytes (``b""`` at the end of the input)."""
        if n is None or n < 0:
            n = _READ_SIZE
        if self.kind == "tar":
            if self._pending:
                out, self._pending = self._pending[:n], self._pending[n:]
                return out
            if self._input_done:
                return b""
            data = self._raw.read(n)
            if not data:
                self._input_done = True
            return data
        try:
            return self._inflate(n)
        except (zlib.error, OSError, lzma.LZMAError, EOFError) as exc:
            raise CorruptArchiveError(f"the {self.kind} stream is damaged ({exc})") from None

    def _inflate(self, n: int) -> bytes:
        while True:
            if self._ended:
                rest = self._fill(1)
                if not rest:
                    return b""
                if self._pending.strip(b"\0") == b"" and self._fill_all_zero():
                    return b""
                magic = self._fill(len(_XZ_MAGIC))
                if not magic.startswith(
                    {"gzip": _GZIP_MAGIC, "bz2": _BZ2_MAGIC, "xz": _XZ_MAGIC}[self.kind]
                ):
                    raise CorruptArchiveError(
                        f"unexpected data after the end of the {self.kind} stream"
                    )
                self._dec = self._new()
                self._ended = False
            if self.kind == "gzip":
                data = self._dec.unconsumed_tail or self._take()
                out = self._dec.decompress(data, n)
                if self._dec.eof:
                    self._ended = True
                    self._pending = self._dec.unused_data + self._pending
                if out:
                    return bytes(out)
                if not data and not self._ended:
                    return b""  # input exhausted before the end of the stream
            else:
                needs_input = self._dec.needs_input
                data = self._take() if needs_input else b""
                out = self._dec.decompress(data, n)
                if self._dec.eof:
                    self._ended = True
                    self._pending = self._dec.unused_data + self._pending
                if out:
                    return bytes(out)
                if needs_input and not data and not self._ended:
                    return b""

    def _take(self) -> bytes:
        """The next slice (at most :data:`_INPUT_SLICE` bytes) of compressed input."""
        self._fill(1)
        data, self._pending = self._pending[:_INPUT_SLICE], self._pending[_INPUT_SLICE:]
        return data

    def _fill_all_zero(self) -> bool:
        """Consume the rest of the input if it is only NUL padding."""
        while not self._input_done:
            if self._pending.strip(b"\0"):
                return False
            self._pending = b""
            self._fill(1)
        if self._pending.strip(b"\0"):
            return False
        self._pending = b""
        return True

    def drain(self, limit: int) -> None:
        """Read what follows the tar end-of-archive marker (padding), at most ``limit``
        bytes, so that the compressed stream's trailer gets checked."""
        left = limit
        while chunk := self.read(_READ_SIZE):
            left -= len(chunk)
            if left < 0:
                raise CorruptArchiveError("too much data after the tar end-of-archive marker")


_HEADER = struct.Struct("100s24x12s12x8sc100s8s80x155s12x")
"""The header fields read: name, size, checksum, type, link name, magic+version, prefix."""
_POSIX_MAGIC = b"ustar\x00"
_REGULAR = frozenset({b"0", b"\x00", b"7"})
#: Types without data blocks (``tarfile`` skips data only for regular and unknown types).
_NO_DATA = frozenset({b"1", b"2", b"3", b"4", b"5", b"6"})
_LONG_NAME, _LONG_LINK, _PAX, _PAX_SOLARIS, _PAX_GLOBAL = b"L", b"K", b"x", b"X", b"g"
_EXTENDED = frozenset({_LONG_NAME, _LONG_LINK, _PAX, _PAX_SOLARIS, _PAX_GLOBAL})
_SPARSE = b"S"
_SPECIAL = {b"3": "a character device", b"4": "a block device", b"6": "a FIFO"}
#: Largest GNU long name/link or PAX header accepted (a name is at most a few KiB).
_MAX_EXTENDED = 8 * 1024 * 1024

_Header = tuple[bytes, str, str, int]
"""A member's type flag, name, link target and data size (extended headers applied)."""


def _text(field: bytes) -> str:
    """A NUL-terminated name field, decoded like ``tarfile`` does (UTF-8, surrogateescape)."""
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _number(field: bytes) -> int:
    """A numeric header field: octal digits (NUL/space terminated) or GNU base-256 (the high
    bit of the first byte set, two's complement). Raises ``ValueError`` for garbage."""
    first = field[0]
    if first & 0x80:
        bits = 8 * len(field) - 1
        value = int.from_bytes(field, "big") & ~(1 << bits)
        return value - (1 << bits) if first & 0x40 else value
    digits = field.split(b"\0", 1)[0].strip()
    return int(digits, 8) if digits else 0


def _checksums(block: bytes) -> tuple[int, int]:
    """The unsigned and signed header checksums (the checksum field counted as spaces)."""
    rest = block[:148] + block[156:]
    unsigned = 256 + sum(rest)
    return unsigned, unsigned - 256 * sum(1 for b in rest if b & 0x80)


def _pax_records(data: bytes) -> dict[str, str]:
    """The ``"<length> <keyword>=<value>\\n"`` records of a PAX extended header (NUL padding
    after the last record is tolerated). Raises ``ValueError`` if malformed."""
    records: dict[str, str] = {}
    pos, end = 0, len(data)
    while pos < end:
        if data[pos] == 0 and data.count(0, pos) == end - pos:
            break
        space = data.find(b" ", pos, min(end, pos + 21))
        digits = data[pos:space] if space > pos else b""
        if not digits.isdigit():
            raise ValueError("bad record length")
        stop = pos + int(digits)
        equals = data.find(b"=", space + 1, stop - 1)
        if stop > end or equals <= space + 1 or data[stop - 1] != 0x0A:
            raise ValueError("bad record")
        key = data[space + 1 : equals].decode("utf-8", "surrogateescape")
        records[key] = data[equals + 1 : stop - 1].decode("utf-8", "surrogateescape")
        pos = stop
    return records


class _TarReader:
    """A streaming reader of tar headers and data over a :class:`_Decompressor`.

    Decompressed bytes are read in blocks of :data:`_BUFFER` and headers parsed in place:
    POSIX ustar (with its name prefix), GNU (long names and links, base-256 numbers) and PAX
    (``path``, ``linkpath`` and ``size``; global headers are read and ignored). Checksums are
    verified. After :meth:`next`, the member's data is read with :meth:`take`,
    :meth:`chunks` or :meth:`skip`, or left unread (the next :meth:`next` skips it). Memory
    holds one block, or one member read with :meth:`take`.
    """

    def __init__(self, stream: _Decompressor) -> None:
        self._stream = stream
        self._buf = b""
        self._pos = 0  # where the unread bytes start in _buf
        self._base = 0  # the archive offset of _buf[0]
        self._left = 0  # bytes of the current member (data and padding) not read yet
        self.end_marker = False
        """The end-of-archive marker (two zero blocks) was read."""

    @property
    def buffered(self) -> int:
        """Bytes read from the stream but not consumed."""
        return len(self._buf) - self._pos

    def _fill(self, n: int) -> int:
        """Make ``n`` bytes available at ``_pos``; return how many are (fewer only at the end
        of the stream)."""
        avail = len(self._buf) - self._pos
        if avail >= n:
            return avail
        parts = [self._buf[self._pos :]] if avail else []
        while avail < n:
            chunk = self._stream.read(max(_BUFFER, n - avail))
            if not chunk:
                break
            parts.append(chunk)
            avail += len(chunk)
        self._base += self._pos
        self._buf = b"".join(parts)
        self._pos = 0
        return avail

    def _skip(self, n: int) -> int:
        """Skip ``n`` bytes; return how many there were (fewer only at the end of the stream)."""
        done = 0
        while True:
            avail = len(self._buf) - self._pos
            if n - done <= avail:
                self._pos += n - done
                return n
            done += avail
            self._base += len(self._buf)
            self._buf, self._pos = self._stream.read(_BUFFER), 0
            if not self._buf:
                return done

    def _damaged(self, why: str, start: int) -> CorruptArchiveError:
        if start == 0:
            return CorruptArchiveError(f"not a readable tar archive ({why})")
        return CorruptArchiveError(
            f"the archive is damaged: {why} in the tar header at byte {start:,}"
        )

    def next(self) -> _Header | None:
        """The next member, or ``None`` at the end of the archive: :attr:`end_marker` tells
        whether the end-of-archive marker was read or the stream ended (cut short).

        Raises:
            CorruptArchiveError: a bad checksum or field, or an incomplete end marker.
            UnsafeArchiveError: an extended header above :data:`_MAX_EXTENDED` bytes.
        """
        ext: dict[str, str] | None = None  # from extended headers: the first one wins
        while True:
            if self._left:
                left, self._left = self._left, 0
                if self._skip(left) < left:
                    return None
            pos = self._pos
            start = self._base + pos
            if len(self._buf) - pos < _BLOCK:
                avail = self._fill(_BLOCK)
                if avail < _BLOCK:
                    if start == 0:
                        raise self._damaged("empty file" if not avail else "truncated header", 0)
                    return None
                pos = 0
            block = self._buf[pos : pos + _BLOCK]
            self._pos = pos + _BLOCK
            if block == _ZERO_BLOCK:
                if ext is not None:
                    raise self._damaged("an extended header without its member", start)
                if (
                    self._fill(_BLOCK) < _BLOCK
                    or self._buf[self._pos : self._pos + _BLOCK] != _ZERO_BLOCK
                ):
                    raise CorruptArchiveError("the tar end-of-archive marker is incomplete")
                self._pos += _BLOCK
                self.end_marker = True
                return None
            name, size_field, chksum_field, kind, linkname, magic, prefix = _HEADER.unpack(block)
            try:
                chksum = _number(chksum_field)
                size = _number(size_field)
            except ValueError:
                raise self._damaged("invalid header", start) from None
            if block.isascii():
                # bytes below 128 sum to at most 65,024: adler32's low half is 1 + that sum
                ok = chksum == (zlib.adler32(block) & 0xFFFF) - sum(chksum_field) + 255
            else:
                ok = chksum in _checksums(block)
            if not ok:
                raise self._damaged("bad checksum", start)
            if size < 0:
                raise self._damaged("negative size", start)
            if kind in _EXTENDED:
                if size > _MAX_EXTENDED:
                    raise UnsafeArchiveError(
                        f"an extended tar header of {size:,} bytes is above the limit of "
                        f"{_MAX_EXTENDED:,} (refusing a possible tar bomb)"
                    )
                self._left = size + (-size % _BLOCK)
                data = self.take(size)
                if len(data) < size:
                    return None
                if ext is None:
                    ext = {}
                if kind == _LONG_NAME:
                    ext.setdefault("path", _text(data))
                elif kind == _LONG_LINK:
                    ext.setdefault("linkpath", _text(data))
                else:
                    try:
                        records = _pax_records(data)
                    except ValueError:
                        raise self._damaged("a malformed PAX header", start) from None
                    if kind != _PAX_GLOBAL:
                        if "path" in records:
                            records["path"] = records["path"].rstrip("/")
                        for key, value in records.items():
                            ext.setdefault(key, value)
                continue
            path = _text(name)
            if prefix[0] and magic[:6] == _POSIX_MAGIC:
                path = _text(prefix) + "/" + path
            link = _text(linkname) if kind == b"1" or kind == b"2" else ""
            if kind == b"\x00" and path.endswith("/"):
                kind = b"5"  # a v7 folder
            if ext is not None:
                path = ext.get("path", path)
                link = ext.get("linkpath", link)
                if "size" in ext:
                    value = ext["size"]
                    if not (value.isascii() and value.strip().isdigit()):
                        raise self._damaged(f"an invalid PAX size {value[:20]!r}", start)
                    size = int(value)
                if any(key.startswith("GNU.sparse.") for key in ext):
                    kind = _SPARSE
            if kind == b"5":
                path = path.rstrip("/")
            self._left = 0 if kind in _NO_DATA else size + (-size % _BLOCK)
            return kind, path, link, size

    def take(self, size: int) -> bytes:
        """The current member's ``size`` bytes of data (fewer only if the stream ends)."""
        left = self._left
        pos = self._pos
        if pos + left > len(self._buf):
            self._fill(left)
            pos = 0
        buf = self._buf
        data = buf[pos : pos + size]
        end = min(pos + left, len(buf))
        self._left = left - (end - pos)
        self._pos = end
        return data

    def chunks(self, size: int) -> Iterator[memoryview]:
        """The current member's ``size`` bytes of data in pieces of at most one block."""
        want = size
        while want:
            if self._pos >= len(self._buf):
                self._base += len(self._buf)
                self._buf, self._pos = self._stream.read(_BUFFER), 0
                if not self._buf:
                    return
            n = min(want, len(self._buf) - self._pos)
            piece = memoryview(self._buf)[self._pos : self._pos + n]
            self._pos += n
            self._left -= n
            want -= n
            yield piece

    def skip(self, size: int) -> int:
        """Skip the current member's ``size`` bytes of data; return how many there were."""
        done = self._skip(size)
        self._left -= done
        return done
