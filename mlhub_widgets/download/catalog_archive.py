"""Safe, streaming reading of STAC catalogue tarballs (``{dataset_id}.tar.gz``).

:func:`iter_catalog` reads the archive **once, as a stream** (its own tar reader over the
decompressed bytes, read in large blocks: ustar, GNU and PAX headers): every member is checked,
written under the destination directory, and — for JSON members — parsed and handed to the caller
straight away, so a download can select and fetch assets while the rest of the catalogue is still
being unpacked. Nothing is ever written outside the destination directory.

Rejected with :class:`UnsafeArchiveError` (the whole archive is refused at the first bad member):

* absolute member names, drive letters, backslashes, NUL bytes, ``..`` components;
* symbolic or hard links whose target is absolute or lies outside the archive root;
* character/block devices, FIFOs, sparse files and any other special member type;
* more than :attr:`ArchiveLimits.max_members` members, a member larger than
  :attr:`ArchiveLimits.max_member_size`, or more than :attr:`ArchiveLimits.max_total_size`
  bytes in all (tar bombs).

macOS junk (``._*`` AppleDouble files, ``.DS_Store``, ``__MACOSX/``) is skipped silently. Links
that stay inside the archive are not created as links: a hard link is written as a copy of its
(already extracted) target, a symbolic link is skipped. JSON members are classified by content,
never by file name alone: an *item* is a ``Feature`` with ``stac_version`` and an ``assets``
object, so GeoJSON label files or JSON assets shipped in a catalogue are never taken for items.
"""

from __future__ import annotations

import bz2
import contextlib
import errno
import json
import logging
import lzma
import os
import posixpath
import queue
import shutil
import struct
import tarfile
import threading
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, Protocol, cast

from ..exceptions import MLHubException
from .stac_json import load_without_item_links

__all__ = [
    "ArchiveLimits",
    "ArchiveStats",
    "CatalogEntry",
    "CorruptArchiveError",
    "UnsafeArchiveError",
    "iter_catalog",
    "member_path",
]

log = logging.getLogger(__name__)

EntryKind = Literal["catalog", "collection", "item", "json", "file"]
_CHUNK = 1024 * 1024
_BACKGROUND = True
_JUNK_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


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


@dataclass(frozen=True)
class ArchiveLimits:
    """Tar-bomb limits. Defaults fit the largest MLHub catalogues (~560k members) with room."""

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


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One regular-file member of a catalogue archive.

    Attributes:
        kind: ``"catalog"``, ``"collection"``, ``"item"``, ``"json"`` (other JSON) or ``"file"``.
        name: the normalised member name (POSIX, relative, e.g. ``ds/coll/item/item.json``).
        path: where it is written, or ``None`` when extraction is off. Small files are
            written by a helper thread: the file is complete once the iteration has ended.
        data: the parsed JSON object for catalogues, collections and items, else ``None``.
            For a member above :attr:`ArchiveLimits.stream_json_size` its ``links`` hold no
            ``item``/``child`` links (the file on disk has them).
        size: the member size in bytes.
    """

    kind: EntryKind
    name: str
    path: Path | None
    data: dict[str, Any] | None
    size: int


def member_path(name: str, *, limits: ArchiveLimits | None = None) -> str | None:
    """Normalise a member name to a safe relative POSIX path.

    Returns ``None`` for names that are only ``.``/empty (the archive root). Raises
    :class:`UnsafeArchiveError` for absolute names, ``..`` components and similar.
    """
    limits = limits or ArchiveLimits()
    if "\x00" in name:
        raise UnsafeArchiveError(f"member name contains a NUL byte: {name!r}", member=name)
    if len(name) > limits.max_name_length:
        raise UnsafeArchiveError(
            f"member name longer than {limits.max_name_length} characters: {name[:80]!r}...",
            member=name,
        )
    if "\\" in name:
        raise UnsafeArchiveError(f"member name contains a backslash: {name!r}", member=name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":" and name[0].isalpha()):
        raise UnsafeArchiveError(f"absolute member name: {name!r}", member=name)
    rel = name
    parts = name.split("/")
    if "" in parts or "." in parts:
        parts = [p for p in parts if p not in ("", ".")]
        rel = "/".join(parts)
    if ".." in parts:
        raise UnsafeArchiveError(
            f"member name escapes the archive with '..': {name!r}", member=name
        )
    if len(parts) > limits.max_depth:
        raise UnsafeArchiveError(
            f"member name nested deeper than {limits.max_depth} levels: {name[:80]!r}",
            member=name,
        )
    return rel if parts else None


def _is_junk(rel: str) -> bool:
    base = rel.rpartition("/")[2]
    if base.startswith("._") or base in _JUNK_NAMES:
        return True
    return "__MACOSX" in rel and "__MACOSX" in rel.split("/")


def _link_target(target: str, symbolic: bool, rel: str) -> str:
    """The archive-relative path a link points to; raises if it leaves the archive."""
    if not target or "\x00" in target:
        raise UnsafeArchiveError(f"link {rel!r} has an empty or invalid target", member=rel)
    if target.startswith("/") or (len(target) > 1 and target[1] == ":"):
        raise UnsafeArchiveError(
            f"link {rel!r} points to the absolute path {target!r}, outside the output folder",
            member=rel,
        )
    if symbolic:
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
    else:  # hard links name a member of the archive
        joined = posixpath.normpath(target)
    if joined == ".." or joined.startswith("../") or joined.startswith("/"):
        kind = "symbolic" if symbolic else "hard"
        raise UnsafeArchiveError(
            f"{kind} link {rel!r} -> {target!r} points outside the output folder", member=rel
        )
    return joined


def classify(data: object) -> EntryKind:
    """Tell STAC catalogues, collections and items apart from other JSON documents."""
    if not isinstance(data, dict):
        return "json"
    kind = data.get("type")
    if kind == "Feature":
        if "stac_version" in data and isinstance(data.get("assets"), dict) and data.get("id"):
            return "item"
        return "json"
    if kind == "Collection" and data.get("id"):
        return "collection"
    if kind == "Catalog" and data.get("id"):
        return "catalog"
    return "json"


class _Writer:
    """Creates directories and files strictly below ``root`` (no link following at the leaf).

    Small files and directories are written by a helper thread (the catalogue is parsed and
    indexed meanwhile: on slow file systems creating 100k files dominates); writes keep their
    order. Work is handed over in batches of :attr:`BATCH` (one thread wake-up per batch, not
    per file: wake-ups are costly under the GIL). :meth:`sync` waits for pending writes and
    raises the first write error.
    """

    BATCH = 64

    def __init__(self, root: Path, *, background: bool = True) -> None:
        self.root = root
        self._prefix = os.path.join(os.fspath(root), "")
        self._dirs: set[str] = set()
        self._error: BaseException | None = None
        self._queue: queue.Queue[list[tuple[str, bytes | None]] | None] | None = None
        self._batch: list[tuple[str, bytes | None]] = []
        self._thread: threading.Thread | None = None
        if background:
            self._queue = queue.Queue(maxsize=16)
            self._thread = threading.Thread(
                target=self._loop, name="mlhub-catalog-writer", daemon=True
            )
            self._thread.start()

    def path(self, rel: str) -> Path:
        return self.root / rel  # rel is a checked relative POSIX path (see member_path)

    def _native(self, rel: str) -> str:
        """The path of ``rel`` as a plain string (no ``Path`` objects in the hot loop)."""
        return self._prefix + (rel if os.sep == "/" else rel.replace("/", os.sep))

    # -- background ---------------------------------------------------------------------------
    def _loop(self) -> None:
        assert self._queue is not None
        while True:
            batch = self._queue.get()
            try:
                if batch is None:
                    return
                for rel, data in batch:
                    if self._error is not None:
                        break
                    if data is None:
                        self._mkdir_now(rel)
                    else:
                        self._write_now(rel, data)
            except BaseException as exc:  # raised in the reading thread by sync()/close()
                self._error = exc
            finally:
                self._queue.task_done()

    def _put(self, job: tuple[str, bytes | None]) -> None:
        assert self._queue is not None
        self._check()
        self._batch.append(job)
        if len(self._batch) >= self.BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._batch and self._queue is not None:
            batch, self._batch = self._batch, []
            self._queue.put(batch)

    def _check(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def sync(self) -> None:
        """Wait until every queued write is done; raise the first write error."""
        if self._queue is not None:
            self._flush()
            self._queue.join()
        self._check()

    def close(self) -> None:
        """Finish pending writes and stop the helper thread."""
        if self._queue is not None and self._thread is not None:
            self._flush()
            self._queue.put(None)
            self._thread.join()
            self._queue = None
        self._check()

    # -- operations ---------------------------------------------------------------------------
    def mkdir(self, rel: str) -> None:
        if rel in self._dirs:
            return
        if len(self._dirs) >= 20_000:  # bounded memory; mkdir(exist_ok) again is harmless
            self._dirs.clear()
        self._dirs.add(rel)
        if self._queue is None:
            self._mkdir_now(rel)
        else:
            self._put((rel, None))

    def write(self, rel: str, data: bytes) -> None:
        parent = posixpath.dirname(rel)
        if parent:
            self.mkdir(parent)
        if self._queue is None:
            self._write_now(rel, data)
        else:
            self._put((rel, data))

    def open(self, rel: str) -> IO[bytes]:
        """Open a file for writing synchronously (after the queued writes)."""
        parent = posixpath.dirname(rel)
        if parent:
            self.mkdir(parent)
        self.sync()
        return self._open_now(rel)

    def _mkdir_now(self, rel: str) -> None:
        # The archive can never create links (see iter_catalog), so a directory link met here
        # was made by the user (e.g. a dataset folder moved to another disk) and is followed.
        _makedirs(self._native(rel))

    def _open_fd(self, rel: str) -> int:
        path = self._native(rel)
        try:
            return os.open(path, _CREATE_FLAGS, 0o644)
        except FileNotFoundError:
            _makedirs(os.path.dirname(path))
            return os.open(path, _CREATE_FLAGS, 0o644)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            os.unlink(path)  # a stale symlink at the file's place: replace it, never follow it
            return os.open(path, _CREATE_FLAGS, 0o644)

    def _write_now(self, rel: str, data: bytes) -> None:
        fd = self._open_fd(rel)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    def _open_now(self, rel: str) -> IO[bytes]:
        return os.fdopen(self._open_fd(rel), "wb")


_CREATE_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_TRUNC
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


def _makedirs(path: str) -> None:
    """``mkdir -p`` with one system call in the common case (the parent exists)."""
    try:
        os.mkdir(path)
    except FileExistsError:
        if not os.path.isdir(path):
            raise
    except FileNotFoundError:
        os.makedirs(path, exist_ok=True)


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


class _RecentNames:
    """Names of extracted files, for hard links (which point back at earlier members).

    Remembers at most ``limit`` names (memory stays bounded on huge catalogues); a hard link
    to a member forgotten since is skipped like one whose target is not in the archive.
    """

    def __init__(self, limit: int = 50_000) -> None:
        self._names: set[str] = set()
        self._limit = limit

    def add(self, name: str) -> None:
        if len(self._names) >= self._limit:
            self._names.clear()
        self._names.add(name)

    def __contains__(self, name: object) -> bool:
        return name in self._names


def iter_catalog(
    source: str | os.PathLike[str] | Readable,
    dest: str | os.PathLike[str] | None,
    *,
    limits: ArchiveLimits | None = None,
    stats: ArchiveStats | None = None,
) -> Generator[CatalogEntry, None, None]:
    """Stream a (gzip/bz2/xz or plain) tar archive, extracting it safely below ``dest``.

    Yields a :class:`CatalogEntry` for every regular file (after it was written), with the
    parsed JSON of STAC catalogues, collections and items. With ``dest=None`` nothing is
    written (a dry read that still validates every member).

    The archive must be complete: a missing tar end-of-archive marker or a compressed stream
    without its trailer (a download cut short, even exactly between two members) raises
    :class:`CorruptArchiveError` after the entries before the cut were yielded.

    Raises:
        UnsafeArchiveError: a hostile or oversized member (see the module docstring).
        CorruptArchiveError: the file is not a readable archive, or is cut short or damaged
            (also a ``tarfile.ReadError``).
    """
    limits = limits or ArchiveLimits()
    stats = stats if stats is not None else ArchiveStats()
    if isinstance(source, str | os.PathLike):
        own = True
        fileobj: IO[bytes] = open(os.fspath(source), "rb")  # noqa: SIM115
    else:
        own = False
        fileobj = cast(IO[bytes], source)
    writer: _Writer | None = None
    extracted = _RecentNames()
    try:
        if dest is not None:
            Path(dest).mkdir(parents=True, exist_ok=True)
            writer = _Writer(Path(dest), background=_BACKGROUND)
        stream = _Decompressor(fileobj)
        reader = _TarReader(stream)
        while (header := reader.next()) is not None:
            kind, name, linkname, size = header
            stats.members += 1
            if stats.members > limits.max_members:
                raise UnsafeArchiveError(
                    f"the archive has more than {limits.max_members:,} members "
                    "(limit reached; refusing a possible tar bomb)"
                )
            rel = member_path(name, limits=limits)
            if rel is None:
                if kind == b"5":
                    continue
                raise UnsafeArchiveError(f"member {name!r} has no usable name", member=name)
            if kind == _SPARSE:  # its data is not the file: never written
                raise _refused_type(rel, kind)
            if _is_junk(rel):
                stats.ignored_junk += 1
                continue
            if kind == b"5":
                if writer is not None:
                    writer.mkdir(rel)
                continue
            if kind == b"1" or kind == b"2":
                symbolic = kind == b"2"
                target = _link_target(linkname, symbolic, rel)
                if not symbolic and writer is not None and target in extracted:
                    writer.sync()  # the target may still be queued
                    with open(writer.path(target), "rb") as src, writer.open(rel) as dst:
                        shutil.copyfileobj(src, dst, _CHUNK)
                    extracted.add(rel)
                    stats.links_copied += 1
                else:
                    stats.links_skipped += 1
                    log.debug("skipping link member %s -> %s", rel, linkname)
                continue
            if kind not in _REGULAR:
                raise _refused_type(rel, kind)
            if size > limits.max_member_size:
                raise UnsafeArchiveError(
                    f"member {rel!r} is {size:,} bytes, above the limit of "
                    f"{limits.max_member_size:,}",
                    member=rel,
                )
            stats.bytes += size
            if stats.bytes > limits.max_total_size:
                raise UnsafeArchiveError(
                    f"the archive expands to more than {limits.max_total_size:,} bytes "
                    "(refusing a possible tar bomb)",
                    member=rel,
                )
            yield _read_member(reader, rel, size, writer, limits, stats)
            extracted.add(rel)
            stats.files += 1
        if not reader.end_marker:
            raise CorruptArchiveError(
                f"the archive is cut short: it ends after {stats.members:,} members "
                "without the tar end-of-archive marker"
            )
        stream.drain(_MAX_TRAILING - reader.buffered)
        if not stream.complete:
            raise CorruptArchiveError(
                f"the {stream.kind} stream is cut short: it ends without its end-of-stream trailer"
            )
    except BaseException as exc:
        if writer is not None:
            with contextlib.suppress(BaseException):
                writer.close()
        if isinstance(exc, tarfile.TarError | EOFError | zlib.error) and not isinstance(
            exc, MLHubException
        ):
            raise CorruptArchiveError(f"not a readable tar archive ({exc})") from exc
        raise
    else:
        if writer is not None:
            writer.close()
    finally:
        if own:
            fileobj.close()


def _refused_type(rel: str, kind: bytes) -> UnsafeArchiveError:
    what = _SPECIAL.get(kind, f"an unsupported member type {kind!r}")
    return UnsafeArchiveError(
        f"member {rel!r} is {what}; catalogue archives may only hold files and folders",
        member=rel,
    )


def _read_member(
    reader: _TarReader,
    rel: str,
    size: int,
    writer: _Writer | None,
    limits: ArchiveLimits,
    stats: ArchiveStats,
) -> CatalogEntry:
    """Read (and write) the data of the regular member ``rel`` whose header was just read."""
    path = writer.path(rel) if writer is not None else None
    is_json = size <= limits.max_json_size and rel.lower().endswith(".json")
    if is_json and size > limits.stream_json_size:
        return _read_big_json(reader, rel, path, size, writer, stats)
    if is_json:
        raw = reader.take(size)
        if len(raw) != size:
            raise CorruptArchiveError(f"the archive is cut short inside member {rel!r}")
        if writer is not None:
            writer.write(rel, raw)
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            data = _UNREADABLE
        return _json_entry(rel, path, size, data, stats)
    if writer is not None:
        written = 0
        with writer.open(rel) as out:
            for chunk in reader.chunks(size):
                written += len(chunk)
                out.write(chunk)
    else:
        written = reader.skip(size)
    if written != size:
        raise CorruptArchiveError(f"the archive is cut short inside member {rel!r}")
    return CatalogEntry("file", rel, path, None, size)


def _read_big_json(
    reader: _TarReader,
    rel: str,
    path: Path | None,
    size: int,
    writer: _Writer | None,
    stats: ArchiveStats,
) -> CatalogEntry:
    """A large JSON member, written and parsed chunk by chunk (see
    :attr:`ArchiveLimits.stream_json_size`)."""
    written = 0

    def feed(out: IO[bytes] | None) -> Iterator[bytes | memoryview]:
        nonlocal written
        for chunk in reader.chunks(size):
            written += len(chunk)
            if out is not None:
                out.write(chunk)
            yield chunk

    with writer.open(rel) if writer is not None else contextlib.nullcontext() as out:
        chunks = feed(out)
        try:
            data = load_without_item_links(chunks)
        except (ValueError, UnicodeDecodeError):
            for _ in chunks:  # the rest of the member still goes to disk
                pass
            data = _UNREADABLE
    if written != size:
        raise CorruptArchiveError(f"the archive is cut short inside member {rel!r}")
    return _json_entry(rel, path, size, data, stats)


_UNREADABLE: Any = object()  # a JSON member that does not parse


def _json_entry(
    rel: str, path: Path | None, size: int, data: Any, stats: ArchiveStats
) -> CatalogEntry:
    """The entry of a JSON member, from its parsed ``data`` (or :data:`_UNREADABLE`)."""
    if data is _UNREADABLE:
        stats.unreadable_json += 1
        log.debug("catalogue member %s is not valid JSON", rel)
        return CatalogEntry("json", rel, path, None, size)
    stats.json_parsed += 1
    kind = classify(data)
    return CatalogEntry(kind, rel, path, data if kind != "json" else None, size)
