"""The check a re-run makes before it trusts the asset index: is every file recorded as done
still on disk?

A file the user deleted since the last run must be fetched again, so none is taken on trust.
Two ways to know, per folder:

* **The folder is unchanged** since a check that found all its files (the index keeps the
  folder's *stamp*: inode, ``mtime`` and ``ctime`` at that check, in ``folder_stamps``,
  under the id of its first row, so that it is read by the same ranges of ids): then no
  file was deleted, renamed or added in it, since every change of a folder's entries gives it
  a new ``mtime`` and ``ctime`` (``ctime`` cannot be set back by anyone). One ``stat`` of the
  folder vouches for all its files. A task whose folders are all unchanged reads only the
  paths of its rows (to learn their folders), not the rows.
* **Otherwise each file is looked at**: missing, not a regular file or not of the recorded
  size, it goes back to pending. When all of a folder's files are there, its stamp is kept for
  the next run, unless the folder changed less than :data:`STAMP_MIN_AGE_NS` before the check
  began (a timestamp's granularity can be that coarse: a deletion right after the check might
  leave the same stamp), or the folder also holds files of assets recorded as done but not
  selected in this run: those were not looked at, and a stamp would vouch for them once
  they are selected again.

What a stamp cannot see is a file rewritten in place (truncated, edited) in a folder whose
entries did not change: such a file is only checked again once its folder changes.

With a cold page cache, looking at a file means reading its folder's block from the disk
(2 GB of random 4 KiB reads for 500,000 item folders), one at a time in a single thread; a
folder's stamp comes from the inode table, 16 folders per block. A pool of threads keeps
many reads in flight once the disk shows to be the limit (until then the calling thread
makes the ``stat`` calls while the pool loads rows, see :data:`CHECK_THREADS`); ``stat``
releases the GIL. Each thread reads its own range of rows and stamps through its own
connection to the index (SQLite works without the GIL, on both cores; one thread reading for
all of them was the bottleneck). Paths are resolved relative to the dataset folder's
descriptor (two or three components, not the whole absolute path).

A download of many assets ends with this check (:meth:`.job_run.JobRun._stamp_after_download`),
so that the re-run right after it finds the stamps of the folders it wrote.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from stat import S_ISREG
from typing import NamedTuple

from .manifest import Manifest

__all__ = [
    "CHECK_SPAN",
    "CHECK_THREADS",
    "STAMP_MIN_AGE_NS",
    "CheckResult",
    "Loaded",
    "Stamp",
    "check_done_files",
    "check_files",
]

log = logging.getLogger(__name__)

#: Threads of the check with a cold cache: a few reads in flight. More threads cost kernel
#: time, not wall: a cold check of 500,000 stamped folders here took 13-15 s (19-21 CPU-s,
#: two thirds of it system time) with 16 threads, 6-10 s (9-15 CPU-s) with 3-4; the first
#: check of 1,000,000 files 38 s (61 CPU-s) with 16, 30 s (38 CPU-s) with 3-4 (2-core VM).
#: With a warm cache, where a ``stat`` returns in a microsecond, every thread more only hands
#: the GIL around (16 threads: 3 million ``futex`` calls for 500,000
#: ``stat``; two threads of ``stat``: 10 % more CPU than one), so until a check shows that its
#: ``stat`` calls wait for the disk (:data:`COLD_STAT_NS` each, on average) the calling
#: thread checks alone while the pool loads the next :data:`WARM_LOADS` tasks' rows.
CHECK_THREADS = 4
WARM_LOADS = 2
COLD_STAT_NS = 20_000
#: Row ids per task (a few tasks per thread in flight: little memory).
CHECK_SPAN = 2000
#: SQLite page cache of each checking thread's connection (rows are read in id order).
READER_CACHE_KIB = 256
#: A folder changed less than this before the check began gets no stamp (FAT's timestamps
#: have a 2 s granularity; ext4's are finer).
STAMP_MIN_AGE_NS = 3_000_000_000

#: An asset id, its path relative to the dataset folder, its expected size.
Row = tuple[int, str, int]
Stamp = list[int]  # a folder's st_ino, st_mtime_ns, st_ctime_ns
StampRow = tuple[int, str, int, int, int]  # the id of a row in the folder, the folder, stamp


class Loaded(NamedTuple):
    """What a task loads (in its thread): the paths of the rows to check, in id order, the
    stamps kept for (some of) their folders, the rows themselves (read only when a folder's
    stamp does not vouch for its files), and which folders also hold rows recorded as done
    that are not among them (not selected; read only when a folder could get a stamp, which
    it then does not: those files were not looked at)."""

    paths: Sequence[str]
    stamps: Mapping[str, Stamp]
    rows: Callable[[], Sequence[Row]]
    unchecked: Callable[[], set[str]] = set

    @classmethod
    def of_rows(cls, rows: Sequence[Row], stamps: Mapping[str, Stamp]) -> Loaded:
        """Rows already read, and their folders' stamps."""
        return cls([rel for _id, rel, _size in rows], stamps, lambda: rows)


Load = Callable[[], Loaded]
#: Stamps are only trusted where a folder's ``mtime``/``ctime`` follow its entries (POSIX).
STAMPS = os.name == "posix"


class CheckResult:
    """What the check found: rows whose file is missing or changed, and how many files the
    stamp of their folder vouched for."""

    def __init__(self) -> None:
        self.changed: list[int] = []
        self.trusted = 0

    def __repr__(self) -> str:
        return f"<CheckResult {len(self.changed)} changed, {self.trusted} by stamp>"


def check_done_files(db: Manifest, base: Path) -> CheckResult:
    """Check every selected asset the index records as done: those whose file is missing or
    changed are marked pending (to be fetched again), then the stamps of the folders found
    whole are kept in the index for the next run (in that order: a stamp is never stored
    while a file of its folder is missing and still recorded as done). Stamps are a speed-up:
    when the disk is too full to store them, the check still counts."""
    staging = True

    def keep(rows: list[StampRow]) -> None:
        nonlocal staging
        if staging:
            try:
                db.stage_folder_stamps(rows)
            except sqlite3.Error as exc:
                if not _disk_full(exc):
                    raise
                log.info("folder stamps not kept (%s): the next run checks every file", exc)
                staging = False

    local = threading.local()
    readers: list[Manifest] = []
    lock = threading.Lock()

    def reader() -> Manifest:  # one connection per checking thread
        conn: Manifest | None = getattr(local, "db", None)
        if conn is None:
            conn = local.db = Manifest(db.path, cache_kib=READER_CACHE_KIB)
            with lock:
                readers.append(conn)
        return conn

    stamped = STAMPS and db.has_folder_stamps()

    def load(first: int) -> Loaded:
        conn = reader()
        end = first + CHECK_SPAN
        stamps = conn.folder_stamps(first, end) if stamped else {}
        if not stamps:  # every file is looked at
            unchecked = conn.unselected_done_folders(first, end)
            return Loaded.of_rows(conn.done_rows(first, end), {})._replace(
                unchecked=lambda: unchecked
            )
        # the rows themselves only if a folder changed
        return Loaded(
            conn.done_paths(first, end),
            stamps,
            lambda: reader().done_rows(first, end),
            lambda: reader().unselected_done_folders(first, end),
        )

    loads = ((lambda first=first: load(first)) for first in range(1, db.max_id() + 1, CHECK_SPAN))
    try:
        result = check_files(base, loads, keep_stamps=keep)
    finally:
        for conn in readers:
            conn.close()
    if result.changed:
        db.mark_pending(result.changed)
    try:
        kept = db.keep_folder_stamps()
    except sqlite3.Error as exc:
        if not _disk_full(exc):
            raise
        log.info("folder stamps not kept (%s): the next run checks every file", exc)
        kept = 0
    log.debug("%r; %d folder stamps kept", result, kept)
    return result


def _disk_full(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return (code is not None and code & 0xFF == 13) or "database or disk is full" in str(exc)


def check_files(
    base: str | os.PathLike[str],
    loads: Iterable[Load],
    *,
    keep_stamps: Callable[[list[StampRow]], None] = lambda rows: None,
    threads: int | None = None,
) -> CheckResult:
    """Check the files under ``base`` that ``loads`` return, one load per task in the pool's
    threads (consumed lazily, a few in flight). Each load returns rows and stamps kept for
    their folders (relative to ``base``, ``""`` for ``base`` itself). ``keep_stamps(rows)`` is
    called (in this thread) with ``(first id, folder, ino, mtime_ns, ctime_ns)`` of folders
    whose files were all there; a folder may come more than once, from several tasks: its
    stamp may be kept only if all agree."""
    result = CheckResult()
    try:
        fd = os.open(base, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except FileNotFoundError:
        for load in loads:
            result.changed += [asset_id for asset_id, _rel, _size in load().rows()]
        return result
    try:
        check = _checker(os.fspath(base), fd, time.time_ns() - STAMP_MIN_AGE_NS)

        def timed(loaded: Loaded) -> tuple[_Found, int]:
            started = time.perf_counter_ns()
            found = check(loaded)
            return found, (time.perf_counter_ns() - started) // max(1, found.stats)

        def task(load: Load) -> tuple[_Found, int]:  # cold: load and check in the pool
            return timed(load())

        threads = threads or CHECK_THREADS
        cold = False  # until a check shows that its ``stat`` calls wait for the disk
        with ThreadPoolExecutor(threads, thread_name_prefix="mlhub-disk-check") as pool:
            # warm: the pool loads the next rows (SQLite runs without the GIL) while this
            # thread checks; a second thread of ``stat`` calls only hands the GIL around
            running: deque[Future[tuple[_Found, int]] | Future[Loaded]] = deque()

            def collect() -> None:
                nonlocal cold
                done = running.popleft().result()
                found, ns_per_stat = timed(done) if isinstance(done, Loaded) else done
                result.changed += found.changed
                result.trusted += found.trusted
                if found.whole:
                    keep_stamps(found.whole)
                cold = ns_per_stat > COLD_STAT_NS

            for load in loads:
                if cold:  # the disk is the limit: many reads in flight
                    running.append(pool.submit(task, load))
                else:
                    running.append(pool.submit(load))
                while len(running) >= (2 * threads if cold else WARM_LOADS):
                    collect()
            while running:
                collect()
        return result
    finally:
        os.close(fd)


class _Found(NamedTuple):
    changed: list[int]  # ids of rows whose file is missing or changed
    trusted: int  # files vouched for by their folder's stamp
    whole: list[StampRow]  # folders whose files were all there
    stats: int  # ``stat`` calls made


def _checker(base: str, fd: int, young: int) -> Callable[[Loaded], _Found]:
    """A function checking one task's rows (run by the pool's threads or this one);
    ``young``: folders changed after this time (ns) get no stamp."""
    if os.stat in os.supports_dir_fd and os.sep == "/":

        def stat(rel: str) -> os.stat_result:
            return os.stat(rel or ".", dir_fd=fd)

    else:
        prefix = os.path.join(base, "")

        def stat(rel: str) -> os.stat_result:  # Windows: no dir_fd
            return os.stat(prefix + rel.replace("/", os.sep))

    def stamp_of(folder: str) -> Stamp | None:
        try:
            st = stat(folder)
        except OSError:
            return None
        return [st.st_ino, st.st_mtime_ns, st.st_ctime_ns]

    def check(loaded: Loaded) -> _Found:
        known = loaded.stamps
        now: dict[str, Stamp | None] = {}  # each folder's stamp, before its files: a change
        if known:  # in between shows; all unchanged: the rows are not even read
            now = {
                folder: stamp_of(folder) for folder in {p.rpartition("/")[0] for p in loaded.paths}
            }
            if all(s is not None and known.get(f) == s for f, s in now.items()):
                return _Found([], len(loaded.paths), [], len(now))
        changed: list[int] = []
        trusted = files = 0
        looked: dict[str, int] = {}  # folders whose files are looked at: their first row's id
        spoilt: set[str] = set()  # ... and those where one is missing or changed
        for asset_id, rel, size in loaded.rows():
            folder = rel.rpartition("/")[0] if STAMPS else ""
            if STAMPS:
                if folder in now:
                    stamp = now[folder]
                else:
                    stamp = now[folder] = stamp_of(folder)
                if stamp is None:
                    changed.append(asset_id)
                    continue
                if known.get(folder) == stamp:
                    trusted += 1
                    continue
                if folder not in looked:
                    looked[folder] = asset_id
            files += 1
            try:
                st = stat(rel)
            except OSError:
                changed.append(asset_id)
                spoilt.add(folder)
                continue
            if st.st_size != size or not S_ISREG(st.st_mode):
                changed.append(asset_id)
                spoilt.add(folder)
        kept: list[StampRow] = []  # folders found whole, changed long enough ago
        for folder, first in looked.items():
            s = now[folder]
            if s is not None and folder not in spoilt and max(s[1], s[2]) < young:
                kept.append((first, folder, s[0], s[1], s[2]))
        if kept:
            unchecked = loaded.unchecked()
            kept = [row for row in kept if row[1] not in unchecked]
        return _Found(changed, trusted, kept, len(now) + files)

    return check
