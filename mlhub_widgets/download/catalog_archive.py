"""Safe, streaming reading of STAC catalogue tarballs (``{dataset_id}.tar.gz``).

:func:`iter_catalog` reads the archive **once, as a stream**: the standard library decompresses
it (:mod:`gzip`, :mod:`bz2`, :mod:`lzma`, which check the trailers: CRC-32 and size, end-of-stream
marks; see :mod:`.tar_stream`) and :mod:`tarfile` parses it in stream mode (``r|``). Every member
is checked, written under the destination folder and — for JSON members — parsed and handed to
the caller straight away, so a download can select and fetch assets while the rest of the
catalogue is still being unpacked. Nothing is ever written outside the destination folder.

Links and every member that is not a plain file or folder go through
:func:`tarfile.data_filter` (PEP 706). Plain files and folders are checked by name (below) and
written without following a link at their own place; the data filter would add two
``realpath`` calls for each (about 10 ``lstat``: the index build of 100,000 assets took 17 CPU-s
instead of 9-11, ``benchmarks/bench_index.py``) whose only other verdict, a folder link made by
the user, is one this module deliberately follows.

Rejected with :class:`UnsafeArchiveError` (the whole archive is refused at the first bad member):

* absolute member names, drive letters, backslashes, NUL bytes, ``..`` components;
* with ``root``: any member outside the folder ``root/`` (a dataset's catalogue stays in its
  own folder, so it cannot touch another dataset's files);
* names the download keeps for itself (:data:`~.paths.RESERVED_NAMES`: the asset index, the
  error report, the folder lock; ``.part`` and ``.part.meta`` files);
* symbolic or hard links whose target is absolute or lies outside the archive root, character
  and block devices, FIFOs, sparse files and any other special member type;
* a member that is a file and then a folder (or the other way round);
* bombs, by :class:`ArchiveLimits`: too many members, a member too large, too many bytes in
  all, or a decompression ratio above :attr:`ArchiveLimits.max_ratio`. The member count and
  the expansion are bounded by the archive's compressed size (see :meth:`ArchiveLimits.sized`)
  and by absolute caps; a member that does not fit is refused **before a byte of it is
  written**, and a file cut by a refusal while being written is removed.

Rejected with :class:`CorruptArchiveError`: not an archive, a damaged header or compressed
stream, or an archive cut short — also exactly between two members (the tar end-of-archive
marker is required, and the compressed stream's trailer).

macOS junk (``._*`` AppleDouble files, ``.DS_Store``, ``__MACOSX/``) is skipped silently. Links
that stay inside the archive are not created as links: a hard link is written as a copy of its
(already extracted) target, a symbolic link is skipped. JSON members are classified by content,
never by file name alone: an *item* is a ``Feature`` with ``stac_version`` and an ``assets``
object, so GeoJSON label files or JSON assets shipped in a catalogue are never taken for items.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import posixpath
import shutil
import tarfile
import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, cast

from ..exceptions import MLHubException, UnsafeArchiveError
from .member_writer import MemberWriter
from .paths import is_reserved_name
from .stac_json import load_without_item_links
from .tar_stream import (
    ArchiveLimits,
    ArchiveStats,
    CorruptArchiveError,
    Readable,
    check_end,
    open_tar,
    reason,
)

__all__ = [
    "ArchiveLimits",
    "ArchiveStats",
    "CatalogEntry",
    "CorruptArchiveError",
    "UnsafeArchiveError",
    "index_path_problem",
    "iter_catalog",
    "member_path",
]

log = logging.getLogger(__name__)

EntryKind = Literal["catalog", "collection", "item", "json", "file"]
_CHUNK = 1024 * 1024
_BACKGROUND = True
_JUNK_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})

#: ``rewrite(rel, path, data)``: for a parsed JSON member, the bytes to write instead of the
#: member's own (``data`` must not be changed: it is what the caller gets), or None to write
#: the member as it is.
Rewrite = Callable[[str, Path, Any], bytes | None]


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


#: What :func:`member_path` checks against when no limits are given (made once: it runs for
#: every asset of a download).
_DEFAULT_LIMITS = ArchiveLimits()


def member_path(name: str, *, limits: ArchiveLimits | None = None) -> str | None:
    """Normalise a member name to a safe relative POSIX path.

    Returns ``None`` for names that are only ``.``/empty (the archive root). Raises
    :class:`UnsafeArchiveError` for absolute names, ``..`` components and similar.
    """
    limits = limits or _DEFAULT_LIMITS
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


def index_path_problem(rel: str) -> str | None:
    """Why a path read from the asset index cannot be written (``None``: it can).

    The same checks as a tar member's name (:func:`member_path`), plus: already normalised,
    and not a name the download keeps for itself. The index builder only writes such paths;
    this guards against an index that someone else wrote."""
    try:
        normal = member_path(rel)
    except UnsafeArchiveError as exc:
        return str(exc).replace("member name", "path", 1)
    if normal != rel:
        return f"path {rel!r} is not a normalised relative path"
    if is_reserved_name(rel.rpartition("/")[2]):
        return f"path {rel!r} has the name of a file the download keeps for itself"
    return None


def _is_junk(rel: str) -> bool:
    base = rel.rpartition("/")[2]
    if base.startswith("._") or base in _JUNK_NAMES:
        return True
    return "__MACOSX" in rel and "__MACOSX" in rel.split("/")


# `object`: it reads untrusted catalogue JSON, so it must take anything
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


# =============================================================================================
# checks of one member


def _refused_type(rel: str, member: tarfile.TarInfo) -> UnsafeArchiveError:
    if member.ischr():
        what = "a character device"
    elif member.isblk():
        what = "a block device"
    elif member.isfifo():
        what = "a FIFO"
    elif member.issparse():
        what = "a sparse file"
    else:
        what = f"an unsupported member type {member.type!r}"
    return UnsafeArchiveError(
        f"member {rel!r} is {what}; catalogue archives may only hold files and folders",
        member=rel,
    )


def _link_target(member: tarfile.TarInfo, rel: str) -> str:
    """The archive-relative path a link points to; raises if it leaves the archive."""
    target = member.linkname
    symbolic = member.issym()
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


class _MemberCheck:
    """Where a member may go: its normalised name, inside ``root/``, not a reserved name;
    links and special members must pass :func:`tarfile.data_filter` below the real
    destination folder."""

    def __init__(self, dest: str | None, root: str | None, limits: ArchiveLimits) -> None:
        self.root = root
        self.limits = limits
        base = os.path.realpath(dest) if dest is not None else os.path.abspath(os.sep)
        # the filter resolves links below the dataset's own folder: a dataset folder that is
        # a link made by the user (moved to another disk) stays usable
        self.filter_dest = os.path.join(base, root) if root else base
        self._prefix = root + "/" if root else ""

    def name(self, member: tarfile.TarInfo) -> str | None:
        """The checked relative path of ``member`` (``None``: the archive root itself)."""
        rel = member_path(member.name, limits=self.limits)
        if rel is None:
            return None
        root = self.root
        if root is not None and rel != root and not rel.startswith(self._prefix):
            raise UnsafeArchiveError(
                f"member {rel!r} lies outside the catalogue's folder {root + '/'!r}: a "
                "dataset's catalogue may only write into its own folder",
                member=rel,
            )
        if is_reserved_name(rel.rpartition("/")[2]):
            raise UnsafeArchiveError(
                f"member {rel!r} has the name of a file the download keeps for itself "
                "(the asset index, the error report, the folder lock or an unfinished "
                "transfer)",
                member=rel,
            )
        return rel

    def inside_root(self, target: str, rel: str) -> None:
        """A link's target must lie in ``root/`` too."""
        root = self.root
        if root is not None and target != root and not target.startswith(self._prefix):
            raise UnsafeArchiveError(
                f"link {rel!r} points outside the catalogue's folder {root + '/'!r}",
                member=rel,
            )

    def filtered(self, member: tarfile.TarInfo, rel: str, link: str | None) -> None:
        """Run :func:`tarfile.data_filter` (special files, link targets, the real path of
        the destination); raise :class:`UnsafeArchiveError` with a plain message."""
        inner = rel[len(self._prefix) :] if rel != self.root else "."
        changes: dict[str, Any] = {"name": inner}
        if link is not None and not member.issym():
            changes["linkname"] = link[len(self._prefix) :] if self._prefix else link
        try:
            tarfile.data_filter(member.replace(**changes, deep=False), self.filter_dest)
        except tarfile.SpecialFileError:
            raise _refused_type(rel, member) from None
        except (tarfile.AbsoluteLinkError, tarfile.LinkOutsideDestinationError):
            raise UnsafeArchiveError(
                f"link {rel!r} -> {member.linkname!r} points outside the output folder",
                member=rel,
            ) from None
        except tarfile.FilterError as exc:
            raise UnsafeArchiveError(
                f"member {rel!r} would be written outside the output folder ({exc})",
                member=rel,
            ) from None


# =============================================================================================
# the archive


def iter_catalog(
    source: str | os.PathLike[str] | Readable,
    dest: str | os.PathLike[str] | None,
    *,
    limits: ArchiveLimits | None = None,
    stats: ArchiveStats | None = None,
    root: str | None = None,
    compressed_size: int | None = None,
    keep: Callable[[str], bool] | None = None,
    rewrite: Rewrite | None = None,
) -> Generator[CatalogEntry, None, None]:
    """Stream a (gzip/bz2/xz or plain) tar archive, extracting it safely below ``dest``.

    Yields a :class:`CatalogEntry` for every regular file (after it was written), with the
    parsed JSON of STAC catalogues, collections and items. With ``dest=None`` nothing is
    written (a dry read that still validates every member).

    Args:
        root: the only top-level folder members may use (a dataset's id); ``None``: any.
        compressed_size: the archive's size in bytes, to size the limits
            (:meth:`ArchiveLimits.sized`); read from the file when ``source`` is a path.
        keep: called with a regular member's relative path; ``True`` means a file the
            download must keep lives there (a finished asset): the member is not written
            (its JSON is still parsed) and is counted in :attr:`ArchiveStats.kept`.

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
        if compressed_size is None:
            compressed_size = os.fstat(fileobj.fileno()).st_size
    else:
        own = False
        fileobj = cast(IO[bytes], source)
    limits = limits.sized(compressed_size)
    writer: MemberWriter | None = None
    try:
        if dest is not None:
            Path(dest).mkdir(parents=True, exist_ok=True)
            writer = MemberWriter(Path(dest), background=_BACKGROUND)
        check = _MemberCheck(os.fspath(dest) if dest is not None else None, root, limits)
        yield from _members(fileobj, writer, check, limits, stats, keep, rewrite)
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


def _members(
    fileobj: IO[bytes],
    writer: MemberWriter | None,
    check: _MemberCheck,
    limits: ArchiveLimits,
    stats: ArchiveStats,
    keep: Callable[[str], bool] | None,
    rewrite: Rewrite | None,
) -> Iterator[CatalogEntry]:
    tar, meter, end = open_tar(fileobj, limits, stats)
    extracted = _RecentNames()
    current = ""
    try:
        while True:
            try:
                member = tar.next()
            except (MLHubException, OSError):
                raise
            except tarfile.ReadError as exc:  # skipping the data of the previous member
                if current:
                    raise CorruptArchiveError(
                        f"the archive is cut short inside member {current!r} ({exc})"
                    ) from None
                raise CorruptArchiveError(f"the archive is damaged ({exc})") from None
            except Exception as exc:  # what tarfile lets through (ValueError, ...)
                raise CorruptArchiveError(f"the archive is damaged ({reason(exc)})") from None
            cast(Any, tar).members.clear()  # tarfile keeps them all otherwise: memory stays flat
            if member is None:
                break
            current = ""
            stats.members += 1
            if stats.members > limits.max_members:
                raise UnsafeArchiveError(
                    f"the archive has more than {limits.max_members:,} members "
                    "(limit reached; refusing a possible tar bomb or inode flood)"
                )
            rel = check.name(member)
            if rel is None:
                if member.isdir():
                    continue
                raise UnsafeArchiveError(f"member {member.name!r} has no usable name")
            if member.issparse():  # its data is not the file: never written
                raise _refused_type(rel, member)
            if _is_junk(rel):
                stats.ignored_junk += 1
                continue
            if member.islnk() or member.issym():
                target = _link_target(member, rel)
                check.inside_root(target, rel)
                check.filtered(member, rel, target)
                _copy_link(member, rel, target, writer, extracted, stats)
                continue
            if not (member.isreg() or member.isdir()):
                check.filtered(member, rel, None)  # refuses it: a device, a FIFO, unknown
            if member.isdir():
                if writer is not None:
                    writer.mkdir(rel)
                continue
            _check_size(member, rel, limits, stats)
            current = rel
            kept = writer is not None and keep is not None and keep(rel)
            try:
                if kept:
                    assert writer is not None
                    stats.kept += 1
                    if len(stats.kept_examples) < 5:
                        stats.kept_examples.append(rel)
                    listed = writer.path(rel)
                    entry = _read_member(tar, member, rel, None, limits, stats, listed=listed)
                else:
                    entry = _read_member(tar, member, rel, writer, limits, stats, rewrite=rewrite)
            except CorruptArchiveError as exc:  # the compressed stream, inside the member
                raise CorruptArchiveError(f"{exc}, inside member {rel!r}") from None
            except tarfile.ReadError:
                raise CorruptArchiveError(
                    f"the archive is cut short inside member {rel!r}"
                ) from None
            yield entry
            if not kept:
                extracted.add(rel)
            stats.files += 1
        check_end(tar, meter, end, stats)
    finally:
        tar.close()
        meter.close()


def _check_size(
    member: tarfile.TarInfo, rel: str, limits: ArchiveLimits, stats: ArchiveStats
) -> None:
    """Refuse a member that does not fit the limits, before any of it is written."""
    size = member.size
    if size > limits.max_member_size:
        raise UnsafeArchiveError(
            f"member {rel!r} is {size:,} bytes, above the limit of {limits.max_member_size:,}",
            member=rel,
        )
    stats.bytes += size
    if stats.bytes > limits.max_total_size:
        raise UnsafeArchiveError(
            f"the archive expands to more than {limits.max_total_size:,} bytes "
            f"(member {rel!r} of {size:,} bytes does not fit; the limit comes from the "
            "archive's compressed size; refusing a possible tar bomb)",
            member=rel,
        )


def _copy_link(
    member: tarfile.TarInfo,
    rel: str,
    target: str,
    writer: MemberWriter | None,
    extracted: _RecentNames,
    stats: ArchiveStats,
) -> None:
    """A hard link inside the archive is written as a copy of its target; others skipped."""
    if member.islnk() and writer is not None and target in extracted:
        writer.sync()  # the target may still be queued
        with open(writer.path(target), "rb") as src, writer.open(rel) as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
        extracted.add(rel)
        stats.links_copied += 1
    else:
        stats.links_skipped += 1
        log.debug("skipping link member %s -> %s", rel, member.linkname)


def _read_member(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    rel: str,
    writer: MemberWriter | None,
    limits: ArchiveLimits,
    stats: ArchiveStats,
    *,
    listed: Path | None = None,
    rewrite: Rewrite | None = None,
) -> CatalogEntry:
    """Read (and write) the data of the regular member ``rel``, just returned by tarfile."""
    size = member.size
    path = writer.path(rel) if writer is not None else listed
    data_file = tar.extractfile(member)
    assert data_file is not None  # a regular member
    is_json = size <= limits.max_json_size and rel.lower().endswith(".json")
    if is_json and size > limits.stream_json_size:
        entry = _read_big_json(data_file, rel, path, size, writer, stats)
        if rewrite is not None and entry.data is not None and "assets" in entry.data:
            stats.not_rewritten += 1
        return entry
    if is_json:
        raw = data_file.read(size)
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            data = _UNREADABLE
        if writer is not None:
            assert path is not None
            new = None if rewrite is None or data is _UNREADABLE else rewrite(rel, path, data)
            writer.write(rel, raw if new is None else new)
        return _json_entry(rel, path, size, data, stats)
    if writer is not None:
        with writer.open(rel) as out:
            while chunk := data_file.read(_CHUNK):
                out.write(chunk)
    return CatalogEntry("file", rel, path, None, size)


def _read_big_json(
    data_file: IO[bytes],
    rel: str,
    path: Path | None,
    size: int,
    writer: MemberWriter | None,
    stats: ArchiveStats,
) -> CatalogEntry:
    """A large JSON member, written and parsed chunk by chunk (see
    :attr:`ArchiveLimits.stream_json_size`)."""

    def feed(out: IO[bytes] | None) -> Iterator[bytes]:
        while chunk := data_file.read(_CHUNK):
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
