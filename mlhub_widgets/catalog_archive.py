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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, Protocol, cast

from .exceptions import MLHubException

__all__ = [
    "ArchiveLimits",
    "ArchiveStats",
    "CatalogEntry",
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
    order. :meth:`sync` waits for pending writes and raises the first write error.
    """

    def __init__(self, root: Path, *, background: bool = True) -> None:
        self.root = root
        self._dirs: set[str] = set()
        self._error: BaseException | None = None
        self._queue: queue.Queue[tuple[str, bytes | None] | None] | None = None
        self._thread: threading.Thread | None = None
        if background:
            self._queue = queue.Queue(maxsize=1024)
            self._thread = threading.Thread(
                target=self._loop, name="mlhub-catalog-writer", daemon=True
            )
            self._thread.start()

    def path(self, rel: str) -> Path:
        return self.root.joinpath(*rel.split("/"))

    # -- background ---------------------------------------------------------------------------
    def _loop(self) -> None:
        assert self._queue is not None
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                if self._error is None:
                    rel, data = job
                    if data is None:
                        self._mkdir_now(rel)
                    else:
                        with self._open_now(rel) as out:
                            out.write(data)
            except BaseException as exc:  # raised in the reading thread by sync()/close()
                self._error = exc
            finally:
                self._queue.task_done()

    def _check(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def sync(self) -> None:
        """Wait until every queued write is done; raise the first write error."""
        if self._queue is not None:
            self._queue.join()
        self._check()

    def close(self) -> None:
        """Finish pending writes and stop the helper thread."""
        if self._queue is not None and self._thread is not None:
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
            self._check()
            self._queue.put((rel, None))

    def write(self, rel: str, data: bytes) -> None:
        parent = posixpath.dirname(rel)
        if parent:
            self.mkdir(parent)
        if self._queue is None:
            with self._open_now(rel) as out:
                out.write(data)
        else:
            self._check()
            self._queue.put((rel, data))

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
        self.path(rel).mkdir(parents=True, exist_ok=True)

    def _open_now(self, rel: str) -> IO[bytes]:
        path = self.path(rel)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        flags |= getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(path, flags, 0o644)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, flags, 0o644)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            path.unlink()  # a stale symlink at the file's place: replace it, never follow it
            fd = os.open(path, flags, 0o644)
        return os.fdopen(fd, "wb")


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
) -> Iterator[CatalogEntry]:
    """Stream a (gzip/bz2/xz or plain) tar archive, extracting it safely below ``dest``.

    Yields a :class:`CatalogEntry` for every regular file (after it was written), with the
    parsed JSON of STAC catalogues, collections and items. With ``dest=None`` nothing is
    written (a dry read that still validates every member).

    Raises:
        UnsafeArchiveError: a hostile or oversized member (see the module docstring).
        tarfile.TarError: the file is not a readable tar archive.
    """
    limits = limits or ArchiveLimits()
    stats = stats if stats is not None else ArchiveStats()
    writer = _Writer(Path(dest), background=_BACKGROUND) if dest is not None else None
    if writer is not None:
        writer.root.mkdir(parents=True, exist_ok=True)
    if isinstance(source, str | os.PathLike):
        own = True
        fileobj: IO[bytes] = open(os.fspath(source), "rb")  # noqa: SIM115
    else:
        own = False
        fileobj = cast(IO[bytes], source)
    extracted = _RecentNames()
    try:
        with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
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
    except BaseException:
        if writer is not None:
            with contextlib.suppress(BaseException):
                writer.close()
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
            raise tarfile.ReadError(f"truncated archive member {rel!r}")
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
        raise tarfile.ReadError(f"truncated archive member {rel!r}")
    return CatalogEntry("file", rel, path, None, size)
