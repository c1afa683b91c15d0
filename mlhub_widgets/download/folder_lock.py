"""One download of a dataset per output folder at a time: an advisory lock file.

:func:`lock_folder` takes an exclusive lock on ``{folder}/.mlhub-download.lock`` without
waiting: ``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows (both released by the
operating system when the process ends, even by ``SIGKILL``, so a crashed run never blocks
the next one). The holder writes who it is (process id, host, start time, command) into the
file; a second download into the same folder fails at once with a
:class:`~mlhub_widgets.exceptions.FolderInUseError` that says so. Two jobs of one process
conflict too (each opens the file anew).

Failing at once rather than waiting is deliberate: the second run is almost always a mistake
(a cell run twice, a cron job overlapping the previous one), and a run that silently waits
looks hung. Run it again once the other one has ended; it resumes where that one stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from ..exceptions import FolderInUseError

__all__ = ["LOCK_NAME", "lock_folder"]

LOCK_NAME = ".mlhub-download.lock"

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)  # the lock covers the first byte
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _holder(path: Path) -> str:
    """Who holds the lock, as its file says (best effort)."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "another process"
    if not isinstance(info, dict):
        return "another process"
    started = info.get("started")
    when = (
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))
        if isinstance(started, int | float)
        else "an unknown time"
    )
    pid = info.get("pid")
    host = info.get("host")
    where = f"process {pid}" + (f" on {host}" if host and host != socket.gethostname() else "")
    command = str(info.get("command") or "")[:120]
    return f"{where} (started {when}{', ' + command if command else ''})"


def _describe_self(fd: int) -> None:
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": round(time.time()),
        "command": " ".join(sys.argv)[:200],
    }
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, json.dumps(info).encode("utf-8"))


@contextlib.contextmanager
def lock_folder(folder: Path, dataset_id: str) -> Iterator[Path]:
    """Hold the download lock of ``folder`` (created if needed) for the ``with`` block.

    Raises:
        FolderInUseError: another download holds it; the message names that process.
        OSError: the folder or the lock file cannot be created.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        if not _try_lock(fd):
            os.close(fd)
            raise FolderInUseError(
                f"{folder} is in use by another download of {dataset_id}: "
                f"{_holder(path)}. Wait for it to end (or stop it), then run this download "
                "again: it resumes where that one stopped."
            )
        try:  # the file we locked may have been removed by its last holder: lock the new one
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        _describe_self(fd)
        yield path
    finally:
        if sys.platform != "win32":  # removed while still held: no one can lock a stale file
            with contextlib.suppress(OSError):
                os.unlink(path)
        with contextlib.suppress(OSError):
            _unlock(fd)
        os.close(fd)
