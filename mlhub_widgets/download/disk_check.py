"""The check a re-run makes before it trusts the asset index: is every file recorded as done
still on disk, at its recorded size?

A file the user deleted (or changed) since the last run must be fetched again, so each one is
looked at (one ``stat``). With a cold page cache that is one small random read of the disk per
folder and file, which a single thread does one at a time (40 s for a million files here); a
pool of threads keeps many reads in flight, which the disk serves in parallel. ``stat``
releases the GIL; paths are resolved relative to the dataset folder's descriptor, so the
kernel walks two or three components instead of the whole absolute path.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from stat import S_ISREG

__all__ = ["CHECK_THREADS", "changed_files"]

#: Threads of the check: enough reads in flight for a cold cache (a virtual disk serves dozens
#: at once), few enough that with a warm cache, where every ``stat`` returns at once, handing
#: the GIL around costs little.
CHECK_THREADS = 16

Row = tuple[int, str, int]  # asset id, path relative to the dataset folder, expected size


def changed_files(
    base: str | os.PathLike[str],
    batches: Iterable[Sequence[Row]],
    *,
    threads: int = CHECK_THREADS,
) -> list[int]:
    """Ids of the rows whose file under ``base`` is missing, is not a regular file, or does
    not have the expected size. ``batches`` is consumed lazily (a few batches in flight)."""
    try:
        fd = os.open(base, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except FileNotFoundError:
        return [asset_id for rows in batches for asset_id, _rel, _size in rows]
    try:
        check = _checker(os.fspath(base), fd)
        changed: list[int] = []
        with ThreadPoolExecutor(threads, thread_name_prefix="mlhub-disk-check") as pool:
            running: deque[Future[list[int]]] = deque()
            for rows in batches:
                running.append(pool.submit(check, rows))
                if len(running) >= 2 * threads:
                    changed += running.popleft().result()
            while running:
                changed += running.popleft().result()
        return changed
    finally:
        os.close(fd)


def _checker(base: str, fd: int) -> Callable[[Sequence[Row]], list[int]]:
    """A function checking one batch of rows (run by the pool's threads)."""
    if os.stat in os.supports_dir_fd and os.sep == "/":

        def check(rows: Sequence[Row]) -> list[int]:
            stat = os.stat
            out = []
            for asset_id, rel, size in rows:
                try:
                    st = stat(rel, dir_fd=fd)
                except OSError:
                    out.append(asset_id)
                    continue
                if st.st_size != size or not S_ISREG(st.st_mode):
                    out.append(asset_id)
            return out

        return check
    prefix = os.path.join(base, "")

    def check_by_path(rows: Sequence[Row]) -> list[int]:  # Windows: no dir_fd
        out = []
        for asset_id, rel, size in rows:
            try:
                st = os.stat(prefix + rel.replace("/", os.sep))
            except OSError:
                out.append(asset_id)
                continue
            if st.st_size != size or not S_ISREG(st.st_mode):
                out.append(asset_id)
        return out

    return check_by_path
