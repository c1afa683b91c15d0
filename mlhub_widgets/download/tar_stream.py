"""The byte streams under :func:`~.catalog_archive.iter_catalog`: decompression, limits, tar.

:func:`open_tar` opens a catalogue archive for :mod:`tarfile`'s stream mode (``r|``) on top of
the standard library's decompressors (:mod:`gzip`, :mod:`bz2`, :mod:`lzma`: they check the
CRC-32 and size trailer or the end-of-stream marks, which tarfile's own ``r|gz`` does not),
with a meter in between that enforces :class:`ArchiveLimits` on the decompressed bytes (total
and ratio: compression bombs) and turns a damaged compressed stream into
:class:`CorruptArchiveError`. :func:`check_end` requires the tar end-of-archive marker and the
compressed trailer: tarfile alone takes an archive cut between two members, or a damaged
header, for the end.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import tarfile
import zlib
from dataclasses import dataclass, field, replace
from typing import IO, Any, Protocol, Self, cast

from ..exceptions import MLHubException, UnsafeArchiveError

__all__ = [
    "ArchiveLimits",
    "ArchiveStats",
    "CorruptArchiveError",
    "Readable",
    "check_end",
    "open_tar",
]

#: Largest GNU long name/link or PAX header accepted (a name is at most a few KiB); tarfile
#: reads such a header whole into memory.
_MAX_EXTENDED = 8 * 1024 * 1024
_EXTENDED_TYPES = frozenset(
    {tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE}
    | {tarfile.SOLARIS_XHDTYPE}
)
#: Bytes accepted after the tar end-of-archive marker (record padding is at most 10 KiB).
_MAX_TRAILING = 64 * 1024 * 1024
TAR_BUFFER = 64 * 1024


class Readable(Protocol):
    """A binary stream: what :func:`iter_catalog` needs from a file object."""

    def read(self, n: int = -1, /) -> bytes: ...


class CorruptArchiveError(MLHubException, tarfile.ReadError):
    """The catalogue archive is not a readable archive, or is cut short or damaged.

    An archive is complete only when the tar end-of-archive marker (two zero blocks) was read
    **and** the compressed stream ended with a valid trailer (gzip: CRC-32 and size; bz2 and
    xz: their end-of-stream marks). Also a :class:`tarfile.ReadError` for older callers.
    """


@dataclass(frozen=True)
class ArchiveLimits:
    """Bomb limits. Absolute caps fit the largest MLHub catalogues (~560k members) with room;
    :meth:`sized` tightens them for an archive of a known compressed size."""

    max_members: int = 5_000_000
    max_member_size: int = 8 * 1024**3
    max_total_size: int = 64 * 1024**3
    max_json_size: int = 64 * 1024**2
    """JSON members larger than this are extracted but not parsed."""
    stream_json_size: int = 1024**2
    """JSON members larger than this are parsed as they stream (memory: one chunk), and
    their top-level ``links`` keep no ``item``/``child`` links (a big collection lists every
    item: ~500 bytes of Python objects per link); the extracted file keeps them all."""
    max_name_length: int = 4096
    max_depth: int = 64
    max_ratio: int = 100
    """Most uncompressed bytes (tar headers included) per compressed byte, once
    :attr:`ratio_free_bytes` are out. Catalogues measure 12-32 (the hub's synthetic ones and
    the recorded nasa_marine_debris); zeros compress ~1,000 times."""
    ratio_free_bytes: int = 16 * 1024**2
    """Uncompressed bytes always allowed, whatever the ratio (small archives)."""
    free_members: int = 10_000
    """Members always allowed, whatever the compressed size."""
    bytes_per_member: int = 32
    """Compressed bytes each member beyond :attr:`free_members` must bring. Catalogues
    measure 90-110 per member; an empty member compresses to 5-7 bytes (an inode flood)."""

    def sized(self, compressed_size: int | None) -> ArchiveLimits:
        """These limits for an archive of ``compressed_size`` bytes (``None``: unknown):
        at most ``free_members + compressed_size / bytes_per_member`` members and
        ``max(ratio_free_bytes, max_ratio × compressed_size)`` bytes in all (each under its
        absolute cap)."""
        if compressed_size is None or compressed_size < 0:
            return self

        members = self.free_members + compressed_size // max(1, self.bytes_per_member)
        total = max(self.ratio_free_bytes, self.max_ratio * compressed_size)
        return replace(
            self,
            max_members=min(self.max_members, members),
            max_total_size=min(self.max_total_size, total),
        )


@dataclass
class ArchiveStats:
    """What :func:`iter_catalog` did (filled in while it runs)."""

    members: int = 0
    files: int = 0
    bytes: int = 0
    json_parsed: int = 0
    ignored_junk: int = 0
    links_copied: int = 0
    links_skipped: int = 0
    unreadable_json: int = 0
    compressed_bytes: int = 0
    expanded_bytes: int = 0
    kept: int = 0
    """Members not written because ``keep`` said a file of the download lives there."""
    kept_examples: list[str] = field(default_factory=list)
    """The first few of them."""
    not_rewritten: int = 0
    """STAC items and collections with assets written unchanged although ``rewrite`` was
    given (members too large to hold whole, written as they stream)."""


class _Counted:
    """The compressed input, counted, with the first bytes peeked to tell the format."""

    def __init__(self, raw: Readable) -> None:
        self._raw = raw
        self._head = b""
        self.count = 0

    def peek(self, n: int) -> bytes:
        while len(self._head) < n:
            data = self._raw.read(n - len(self._head))
            if not data:
                break
            self._head += data
        return self._head[:n]

    def read(self, n: int = -1) -> bytes:
        if self._head:
            data, self._head = (self._head, b"") if n < 0 else (self._head[:n], self._head[n:])
        else:
            data = self._raw.read(n)
        self.count += len(data)
        return data


_DECOMPRESS_ERRORS = (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile)


class _Meter:
    """The decompressed stream that tarfile reads: enforces the expansion and ratio limits
    and reports the compressed layer's damage as :class:`CorruptArchiveError`."""

    def __init__(self, counted: _Counted, limits: ArchiveLimits, stats: ArchiveStats) -> None:
        self._counted = counted
        self._limits = limits
        self._stats = stats
        head = counted.peek(6)
        self.kind = "tar"
        self._file: Any = counted
        if head.startswith(b"\x1f\x8b"):
            self.kind, self._file = "gzip", gzip.GzipFile(fileobj=cast(Any, counted), mode="rb")
        elif head.startswith(b"BZh"):
            self.kind, self._file = "bz2", bz2.BZ2File(cast(Any, counted))
        elif head.startswith(b"\xfd7zXZ\x00"):
            self.kind, self._file = "xz", lzma.LZMAFile(cast(Any, counted))  # noqa: SIM115
        self.total = 0
        #: the largest total the archive may reach (tar headers and padding included)
        self.cap = limits.max_total_size + limits.max_total_size // 8 + 64 * 1024**2

    def read(self, n: int = -1) -> bytes:
        try:
            data: bytes = self._file.read(n)
        except _DECOMPRESS_ERRORS as exc:
            raise self._damaged(exc) from None
        except OSError as exc:
            if exc.errno is not None:  # a real I/O error of the file
                raise
            raise self._damaged(exc) from None
        self.total += len(data)
        stats = self._stats
        stats.expanded_bytes = self.total
        stats.compressed_bytes = self._counted.count
        limits = self._limits
        if self.total > limits.ratio_free_bytes and self.total > limits.max_ratio * max(
            1, self._counted.count
        ):
            raise UnsafeArchiveError(
                f"the archive expands more than {limits.max_ratio} times: "
                f"{self.total:,} bytes from its first {self._counted.count:,} compressed "
                "bytes (refusing a possible compression bomb)"
            )
        if self.total > self.cap:
            raise UnsafeArchiveError(
                f"the archive expands to more than {self.cap:,} bytes of tar data "
                "(refusing a possible tar bomb)"
            )
        return data

    def close(self) -> None:
        """Close the decompressor (never the compressed input: its owner closes it)."""
        if self._file is not self._counted:
            self._file.close()

    def _damaged(self, exc: BaseException) -> CorruptArchiveError:
        if isinstance(exc, EOFError):
            return CorruptArchiveError(
                f"the {self.kind} stream is cut short: it ends without its end-of-stream trailer"
            )
        return CorruptArchiveError(f"the {self.kind} stream is damaged ({exc})")


@dataclass
class _HeaderEnd:
    """The last header block tarfile read (it takes several causes for the end)."""

    block: bytes = b""


def _tarinfo_class(end: _HeaderEnd) -> type[tarfile.TarInfo]:
    """A TarInfo that remembers its header block and refuses huge extended headers."""

    class _CheckedTarInfo(tarfile.TarInfo):
        @classmethod
        def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
            end.block = bytes(buf)
            return super().frombuf(buf, encoding, errors)

        def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
            # tarfile's documented hook for subclasses; it reads an extended header whole
            if self.type in _EXTENDED_TYPES and self.size > _MAX_EXTENDED:
                raise UnsafeArchiveError(
                    f"an extended tar header of {self.size:,} bytes is above the limit of "
                    f"{_MAX_EXTENDED:,} (refusing a possible tar bomb)"
                )
            if self.size < 0:
                raise CorruptArchiveError(
                    f"the archive is damaged: negative size in the tar header of {self.name!r}"
                )
            return cast(tarfile.TarInfo, super()._proc_member(tarfile_))  # type: ignore[misc]

    return _CheckedTarInfo


def open_tar(
    fileobj: Readable, limits: ArchiveLimits, stats: ArchiveStats
) -> tuple[tarfile.TarFile, _Meter, _HeaderEnd]:
    """Open ``fileobj`` (gzip, bz2, xz or plain tar) for tarfile's stream mode.

    Returns the tar file, the meter (close it after the tar file) and what :func:`check_end`
    needs. Raises :class:`CorruptArchiveError` when it is not a readable archive.
    """
    meter = _Meter(_Counted(fileobj), limits, stats)
    end = _HeaderEnd()
    try:
        tar = tarfile.open(  # noqa: SIM115 - the caller closes it
            fileobj=cast(IO[bytes], meter),
            mode="r|",
            bufsize=TAR_BUFFER,
            tarinfo=_tarinfo_class(end),
        )
    except (MLHubException, OSError):
        meter.close()
        raise
    except Exception as exc:  # tarfile's ReadError, or what it lets through (ValueError...)
        meter.close()
        raise CorruptArchiveError(f"not a readable tar archive ({reason(exc)})") from None
    return tar, meter, end


def reason(exc: BaseException) -> str:
    """A short text for an exception raised by tarfile."""
    text = str(exc)
    return text if isinstance(exc, tarfile.TarError) and text else f"{type(exc).__name__}: {text}"


def check_end(tar: tarfile.TarFile, meter: _Meter, end: _HeaderEnd, stats: ArchiveStats) -> None:
    """The archive ended: with its end-of-archive marker and its compressed trailer?"""
    block = end.block  # the header block at which tarfile stopped
    zero = bytes(tarfile.BLOCKSIZE)
    if block == zero:  # the first block of the end-of-archive marker
        second = tar.fileobj.read(tarfile.BLOCKSIZE) if tar.fileobj is not None else b""
        if second != zero:
            raise CorruptArchiveError("the tar end-of-archive marker is incomplete")
    elif len(block) == tarfile.BLOCKSIZE:  # a header tarfile could not read
        try:
            tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
            why = "unreadable header"
        except tarfile.HeaderError as exc:
            why = str(exc)
        raise CorruptArchiveError(
            f"the archive is damaged: {why} in the tar header at byte {tar.offset:,}"
        )
    else:  # no more data, or part of a header
        raise CorruptArchiveError(
            f"the archive is cut short: it ends after {stats.members:,} members "
            "without the tar end-of-archive marker"
        )
    left = _MAX_TRAILING
    while chunk := meter.read(TAR_BUFFER):  # the padding, so the trailer gets checked
        left -= len(chunk)
        if left < 0:
            raise CorruptArchiveError("too much data after the tar end-of-archive marker")
