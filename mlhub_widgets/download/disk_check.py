"""The check a re-run makes before it trusts the asset index: is every file recorded as done
still on disk?

A file the user deleted since the last run must be fetched again, so none is taken on trust.
Two ways to know, per folder:

* **The folder is unchanged** since a check that found all its files (the index keeps the
  folder's *stamp*: inode, ``mtime`` and ``ctime`` at that check, in ``folders``): then no
  file was deleted, renamed or added in it, since every change of a folder's entries gives it
  a new ``mtime`` and ``ctime`` (``ctime`` cannot be set back by anyone). One ``stat`` of the
  folder vouches for all its files.
* **Otherwise each file is looked at**: missing, not a regular file or not of the recorded
  size, it goes back to pending. When all of a folder's files are there, its stamp is kept for
  the next run, unless the folder changed less than :data:`STAMP_MIN_AGE_NS` before the check
  began (a timestamp's granularity can be that coarse: a deletion right after the check might
  leave the same stamp).

What a stamp cannot see is a file rewritten in place (truncated, edited) in a folder whose
entries did not change: such a file is only checked again once its folder changes.

With a cold page cache, looking at a file means reading its folder's block from the disk
(2 GB of random 4 KiB reads for 500,000 item folders), one at a time in a single thread; a
folder's stamp comes from the inode table, 16 folders per block. A pool of threads keeps
many reads in flight; ``stat`` releases the GIL. Paths are resolved relative to the dataset
folder's descriptor (two or three components, not the whole absolute path).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from stat import S_ISREG

from .manifest import Manifest

__all__ = [
    "CHECK_BATCH",
    "CHECK_THREADS",
    "STAMP_MIN_AGE_NS",
    "CheckResult",
    "Stamp",
    "check_done_files",
    "check_files",
]

log = logging.getLogger(__name__)

#: Threads of the check: enough reads in flight for a cold cache (a virtual disk serves dozens
#: at once), few enough that with a warm cache, where every ``stat`` returns at once, handing
#: the GIL around costs little.
CHECK_THREADS = 16
#: Rows per task (a few tasks per thread in flight: little memory).
CHECK_BATCH = 1000
#: A folder changed less than this before the check began gets no stamp (FAT's timestamps
#: have a 2 s granularity; ext4's are finer).
STAMP_MIN_AGE_NS = 3_000_000_000

Row = tuple[int, str, int]  # asset id, path relative to the dataset folder, expected size
Stamp = tuple[int, int, int]  # a folder's st_ino, st_mtime_ns, st_ctime_ns
#: Stamps are only trusted where a folder's ``mtime``/``ctime`` follow its entries (POSIX).
STAMPS = os.name == "posix"


class CheckResult:
    """What the check found: rows to fetch again, and the stamps of folders found whole."""

    def __init__(self) -> None:
        self.changed: list[int] = []
        self.trusted = 0  # files vouched for by their folder's stamp

    def __repr__(self) -> str:
        return f"<CheckResult {len(self.changed)} changed, {self.trusted} by stamp>"


def check_done_files(db: Manifest, base: Path) -> CheckResult:
    """Check every selected asset the index records as done: those whose file is missing or
    changed are marked pending (to be fetched again), then the stamps of the folders found
    whole are kept in the index for the next run (in that order: a stamp is never stored
    while a file of its folder is missing and still recorded as done). Stamps are a speed-up:
    when the disk is too full to store them, the check still counts."""
    staging = True

    def keep(rows: list[tuple[str, int, int, int]]) -> None:
        nonlocal staging
        if staging:
            try:
                db.stage_folder_stamps(rows)
            except sqlite3.Error as exc:
                if not _disk_full(exc):
                    raise
                log.info("folder stamps not kept (%s): the next run checks every file", exc)
                staging = False

    result = check_files(
        base, db.iter_done(CHECK_BATCH), stamps_of=db.folder_stamps, keep_stamps=keep
    )
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
    batches: Iterable[Sequence[Row]],
    *,
    stamps_of: Callable[[set[str]], Mapping[str, Stamp]] = lambda folders: {},
    keep_stamps: Callable[[list[tuple[str, int, int, int]]], None] = lambda stamps: None,
    threads: int = CHECK_THREADS,
) -> CheckResult:
    """Check the files of ``batches`` (consumed lazily, a few batches in flight) under
    ``base``. ``stamps_of(folders)`` returns the stamps kept for those folders (paths relative
    to ``base``, ``""`` for ``base`` itself); ``keep_stamps(rows)`` is given ``(folder, ino,
    mtime_ns, ctime_ns)`` for folders whose files were all there (a folder may come more than
    once, from several batches: its stamp can be kept only if all agree)."""
    result = CheckResult()
    try:
        fd = os.open(base, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except FileNotFoundError:
        result.changed = [asset_id for rows in batches for asset_id, _rel, _size in rows]
        return result
    try:
        check = _checker(os.fspath(base), fd, time.time_ns() - STAMP_MIN_AGE_NS)
        with ThreadPoolExecutor(threads, thread_name_prefix="mlhub-disk-check") as pool:
            running: deque[Future[tuple[list[int], int, list[tuple[str, int, int, int]]]]]
            running = deque()

            def collect() -> None:
                changed, trusted, whole = running.popleft().result()
                result.changed += changed
                result.trusted += trusted
                if whole:
                    keep_stamps(whole)

            for rows in batches:
                known: Mapping[str, Stamp] = {}
                if STAMPS:
                    known = stamps_of({rel.rpartition("/")[0] for _i, rel, _s in rows})
                running.append(pool.submit(check, rows, known))
                if len(running) >= 2 * threads:
                    collect()
            while running:
                collect()
        return result
    finally:
        os.close(fd)


def _checker(
    base: str, fd: int, young: int
) -> Callable[
    [Sequence[Row], Mapping[str, Stamp]], tuple[list[int], int, list[tuple[str, int, int, int]]]
]:
    """A function checking one batch of rows (run by the pool's threads); ``young``: folders
    changed after this time (ns) get no stamp."""
    if os.stat in os.supports_dir_fd and os.sep == "/":

        def stat(rel: str) -> os.stat_result:
            return os.stat(rel or ".", dir_fd=fd)

    else:
        prefix = os.path.join(base, "")

        def stat(rel: str) -> os.stat_result:  # Windows: no dir_fd
            return os.stat(prefix + rel.replace("/", os.sep))

    def check(
        rows: Sequence[Row], known: Mapping[str, Stamp]
    ) -> tuple[list[int], int, list[tuple[str, int, int, int]]]:
        changed: list[int] = []
        trusted = 0
        folders: dict[str, Stamp | None] = {}  # this batch's folders: stamp now, None if gone
        whole: dict[str, Stamp] = {}  # ...those that may keep their stamp
        for asset_id, rel, size in rows:
            folder = rel.rpartition("/")[0] if STAMPS else ""
            if STAMPS:
                if folder in folders:
                    now = folders[folder]
                else:  # the folder's stamp first, then its files: a later change shows
                    try:
                        st = stat(folder)
                        now = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
                    except OSError:
                        now = None
                    folders[folder] = now
                    if now is not None and max(now[1], now[2]) < young:
                        whole[folder] = now
                if now is None:
                    changed.append(asset_id)
                    continue
                if known.get(folder) == now:
                    trusted += 1
                    continue
            try:
                st = stat(rel)
            except OSError:
                changed.append(asset_id)
                whole.pop(folder, None)
                continue
            if st.st_size != size or not S_ISREG(st.st_mode):
                changed.append(asset_id)
                whole.pop(folder, None)
        kept = [(f, *s) for f, s in whole.items() if known.get(f) != s]
        return changed, trusted, kept

    return check
