"""Safe, streaming reading of STAC catalogue tarballs (``{dataset_id}.tar.gz``).

:func:`iter_catalog` reads the archive **once, as a stream** (its own tar reader,
:mod:`.tar_reader`, over the decompressed bytes, read in large blocks: ustar, GNU and PAX
headers): every member is checked, written under the destination directory, and — for JSON
members — parsed and handed to the caller straight away, so a download can select and fetch
assets while the rest of the catalogue is still being unpacked. Nothing is ever written outside
the destination directory.

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

import contextlib
import errno
import json
import logging
import os
import posixpath
import queue
import shutil
import tarfile
import threading
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, cast

from ..exceptions import MLHubException
from .stac_json import load_without_item_links
from .tar_reader import (
    _MAX_TRAILING,
    _REGULAR,
    _SPARSE,
    _SPECIAL,
    CorruptArchiveError,
    Readable,
    UnsafeArchiveError,
    _Decompressor,
    _TarReader,
)

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
