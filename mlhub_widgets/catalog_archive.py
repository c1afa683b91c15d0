"""Safe, streaming reading of STAC catalogue tarballs (``{dataset_id}.tar.gz``).

:func:`iter_catalog` reads the archive **once, as a stream** (``tarfile`` ``r|*`` mode): every
member is checked, written under the destination directory, and — for JSON members — parsed and
handed to the caller straight away, so a download can select and fetch assets while the rest of
the catalogue is still being unpacked. Nothing is ever written outside the destination directory.

Rejected with :class:`UnsafeArchiveError` (the whole archive is refused at the first bad member):

* absolute member names, drive letters, backslashes, NUL bytes, ``..`` components;
* symbolic or hard links whose target is absolute or lies outside the archive root;
* character/block devices, FIFOs and any other special member type;
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
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, Protocol, Self, cast

from .exceptions import MLHubException

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
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(
            f"member name escapes the archive with '..': {name!r}", member=name
        )
    if len(parts) > limits.max_depth:
        raise UnsafeArchiveError(
            f"member name nested deeper than {limits.max_depth} levels: {name[:80]!r}",
            member=name,
        )
    return "/".join(parts) if parts else None


def _is_junk(rel: str) -> bool:
    parts = rel.split("/")
    base = parts[-1]
    return "__MACOSX" in parts or base.startswith("._") or base in _JUNK_NAMES


def _link_target(member: tarfile.TarInfo, rel: str) -> str:
    """The archive-relative path a link points to; raises if it leaves the archive."""
    target = member.linkname
    if not target or "\x00" in target:
        raise UnsafeArchiveError(f"link {rel!r} has an empty or invalid target", member=rel)
    if target.startswith("/") or (len(target) > 1 and target[1] == ":"):
        raise UnsafeArchiveError(
            f"link {rel!r} points to the absolute path {target!r}, outside the output folder",
            member=rel,
        )
    if member.issym():
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
    else:  # hard links name a member of the archive
        joined = posixpath.normpath(target)
    if joined == ".." or joined.startswith("../") or joined.startswith("/"):
        kind = "symbolic" if member.issym() else "hard"
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
        return self.root.joinpath(*rel.split("/"))

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
        self._fill(1)
        data, self._pending = self._pending, b""
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


#: ``tarfile``'s "zero block where a header should be" error (not in its public names).
_EOF_HEADER_ERROR: type[Exception] = getattr(tarfile, "EOFHeaderError", tarfile.HeaderError)


class _StrictTarInfo(tarfile.TarInfo):
    """Headers read strictly: an end of archive must be the end-of-archive marker.

    ``tarfile`` takes a missing, short or garbled header for the end of the archive; here
    only two zero blocks are (the reading ``TarFile`` gets ``mlhub_end_marker = True``), and
    anything else after a first zero block is an error.
    """

    @classmethod
    def fromtarfile(cls, tarfile: tarfile.TarFile) -> Self:
        fileobj: Any = tarfile.fileobj
        buf = fileobj.read(_BLOCK)
        if buf == _ZERO_BLOCK:
            if fileobj.read(_BLOCK) != _ZERO_BLOCK:
                raise CorruptArchiveError("the tar end-of-archive marker is incomplete")
            tarfile.mlhub_end_marker = True  # type: ignore[attr-defined]
            raise _EOF_HEADER_ERROR("end of file header")
        obj = None
        if buf[257:265] == _POSIX_MAGIC and buf[156:157] in (b"0", b"5"):
            obj = cls._fast(buf, tarfile.encoding, tarfile.errors)
        if obj is None:  # anything unusual: tarfile's own parser (and its errors)
            obj = cls.frombuf(buf, tarfile.encoding, tarfile.errors)
        obj.offset = fileobj.tell() - _BLOCK
        return cast(Self, obj._proc_member(tarfile))  # type: ignore[attr-defined]

    @classmethod
    def _fast(cls, buf: bytes, encoding: str, errors: str) -> Self | None:
        """``TarInfo.frombuf`` for the common member (a POSIX ustar regular file or folder
        with octal fields): ~3x faster. ``None`` for anything else (bad checksum included)."""
        try:
            mode, uid, gid, size, mtime, chksum = (
                int(f.split(b"\0", 1)[0].strip() or b"0", 8) for f in _NUMERIC.unpack_from(buf)
            )
            devmajor, devminor = (
                int(f.split(b"\0", 1)[0].strip() or b"0", 8) for f in _DEVICE.unpack_from(buf)
            )
        except ValueError:  # base-256 numbers, garbage
            return None
        if chksum != sum(buf) - sum(buf[148:156]) + 256:
            return None
        obj = cls()
        name = buf[0:100].split(b"\0", 1)[0].decode(encoding, errors)
        prefix = buf[345:500].split(b"\0", 1)[0].decode(encoding, errors)
        obj.type = buf[156:157]
        if obj.type == b"5":
            name = name.rstrip("/")
        obj.name = prefix + "/" + name if prefix else name
        obj.mode, obj.uid, obj.gid, obj.size, obj.mtime = mode, uid, gid, size, mtime
        obj.chksum = chksum
        obj.linkname = buf[157:257].split(b"\0", 1)[0].decode(encoding, errors)
        obj.uname = buf[265:297].split(b"\0", 1)[0].decode(encoding, errors)
        obj.gname = buf[297:329].split(b"\0", 1)[0].decode(encoding, errors)
        obj.devmajor, obj.devminor = devmajor, devminor
        return obj


_POSIX_MAGIC = b"ustar\x0000"
_NUMERIC = struct.Struct("100x8s8s8s12s12s8s")  # mode, uid, gid, size, mtime, chksum
_DEVICE = struct.Struct("329x8s8s")  # devmajor, devminor


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
        with tarfile.open(
            fileobj=cast(IO[bytes], stream), mode="r|", tarinfo=_StrictTarInfo
        ) as tar:
            while (member := tar.next()) is not None:
                tar.members.clear()  # type: ignore[attr-defined]  # TarFile keeps every TarInfo
                stats.members += 1
                if stats.members > limits.max_members:
                    raise UnsafeArchiveError(
                        f"the archive has more than {limits.max_members:,} members "
                        "(limit reached; refusing a possible tar bomb)"
                    )
                rel = member_path(member.name, limits=limits)
                if rel is None:
                    if member.isdir():
                        continue
                    raise UnsafeArchiveError(
                        f"member {member.name!r} has no usable name", member=member.name
                    )
                if _is_junk(rel):
                    stats.ignored_junk += 1
                    continue
                if member.isdir():
                    if writer is not None:
                        writer.mkdir(rel)
                    continue
                if member.issym() or member.islnk():
                    target = _link_target(member, rel)
                    if member.islnk() and writer is not None and target in extracted:
                        writer.sync()  # the target may still be queued
                        with open(writer.path(target), "rb") as src, writer.open(rel) as dst:
                            shutil.copyfileobj(src, dst, _CHUNK)
                        extracted.add(rel)
                        stats.links_copied += 1
                    else:
                        stats.links_skipped += 1
                        log.debug("skipping link member %s -> %s", rel, member.linkname)
                    continue
                if not member.isreg():
                    what = (
                        "a character device"
                        if member.ischr()
                        else "a block device"
                        if member.isblk()
                        else "a FIFO"
                        if member.isfifo()
                        else f"an unsupported member type {member.type!r}"
                    )
                    raise UnsafeArchiveError(
                        f"member {rel!r} is {what}; catalogue archives may only hold "
                        "files and folders",
                        member=rel,
                    )
                size = int(member.size)
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
                yield _read_member(tar, member, rel, size, writer, limits, stats)
                extracted.add(rel)
                stats.files += 1
            if not getattr(tar, "mlhub_end_marker", False):
                raise CorruptArchiveError(
                    f"the archive is cut short: it ends after {stats.members:,} members "
                    "without the tar end-of-archive marker"
                )
        stream.drain(_MAX_TRAILING)
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


def _read_member(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    rel: str,
    size: int,
    writer: _Writer | None,
    limits: ArchiveLimits,
    stats: ArchiveStats,
) -> CatalogEntry:
    src = tar.extractfile(member)
    if src is None:  # pragma: no cover - isreg() members always have data
        raise UnsafeArchiveError(f"member {rel!r} has no data", member=rel)
    path = writer.path(rel) if writer is not None else None
    is_json = rel.lower().endswith(".json") and size <= limits.max_json_size
    if is_json:
        raw = src.read()
        if len(raw) != size:
            raise CorruptArchiveError(f"the archive is cut short inside member {rel!r}")
        if writer is not None:
            writer.write(rel, raw)
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            stats.unreadable_json += 1
            log.debug("catalogue member %s is not valid JSON", rel)
            return CatalogEntry("json", rel, path, None, size)
        stats.json_parsed += 1
        kind = classify(data)
        return CatalogEntry(kind, rel, path, data if kind != "json" else None, size)
    written = 0
    if writer is not None:
        with writer.open(rel) as out:
            while True:
                chunk = src.read(_CHUNK)
                if not chunk:
                    break
                written += len(chunk)
                out.write(chunk)
    else:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
    if written != size:
        raise CorruptArchiveError(f"the archive is cut short inside member {rel!r}")
    return CatalogEntry("file", rel, path, None, size)
