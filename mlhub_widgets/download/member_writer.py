"""Writes the members of a catalogue archive below one folder (see :mod:`.catalog_archive`).

:class:`MemberWriter` creates folders and files strictly below its root: it never follows a
link at the file's own place (``O_NOFOLLOW``), removes a file it could not finish, and turns a
file/folder clash (a member that is a file and then a folder, or a folder where a file is) into
an :class:`~mlhub_widgets.exceptions.UnsafeArchiveError` naming the member. Small files and
folders are written by a helper thread, in order, while the archive is parsed and indexed: on
slow file systems creating 100k files dominates.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ..exceptions import UnsafeArchiveError

__all__ = ["MemberWriter"]

_CREATE_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_TRUNC
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_CLASH = (errno.EEXIST, errno.ENOTDIR, errno.EISDIR)


def _clash(rel: str, exc: OSError, *, folder: bool) -> BaseException:
    """A clear error for a member that clashes with a file or folder, else ``exc``."""
    if exc.errno not in _CLASH:
        return exc
    if folder:
        why = "it is a folder in the archive, but a file of that name exists"
    elif exc.errno == errno.EISDIR:
        why = "it is a file in the archive, but a folder of that name exists"
    else:
        why = "a folder on its path is a file"
    return UnsafeArchiveError(
        f"catalogue member {rel!r} cannot be written: {why} (an earlier member of the "
        "archive, or a file already on disk)",
        member=rel,
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


class MemberWriter:
    """Creates folders and files strictly below ``root`` (see the module docstring).

    Work is handed to the helper thread in batches of :attr:`BATCH` (one wake-up per batch:
    wake-ups are costly under the GIL). :meth:`sync` waits for pending writes and raises the
    first write error.
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
        """Where ``rel`` (a checked relative POSIX path) is written."""
        return self.root / rel

    def native(self, rel: str) -> str:
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
        """Create the folder ``rel`` (and its parents)."""
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
        """Write the file ``rel`` (in the helper thread, after the writes queued before)."""
        parent = posixpath.dirname(rel)
        if parent:
            self.mkdir(parent)
        if self._queue is None:
            self._write_now(rel, data)
        else:
            self._put((rel, data))

    @contextlib.contextmanager
    def open(self, rel: str) -> Iterator[IO[bytes]]:
        """Open the file ``rel`` for writing, now (after the queued writes). A file left by an
        exception inside the ``with`` block is removed: nothing half-written keeps its name."""
        parent = posixpath.dirname(rel)
        if parent:
            self.mkdir(parent)
        self.sync()
        fh = os.fdopen(self._open_fd(rel), "wb")
        try:
            with fh:
                yield fh
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(self.native(rel))
            raise

    def _mkdir_now(self, rel: str) -> None:
        # The archive can never create links, so a folder link met here was made by the user
        # (e.g. a dataset folder moved to another disk) and is followed.
        try:
            _makedirs(self.native(rel))
        except OSError as exc:
            raise _clash(rel, exc, folder=True) from None

    def _open_fd(self, rel: str) -> int:
        path = self.native(rel)
        try:
            try:
                return os.open(path, _CREATE_FLAGS, 0o644)
            except FileNotFoundError:
                _makedirs(os.path.dirname(path))
                return os.open(path, _CREATE_FLAGS, 0o644)
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    raise
                os.unlink(path)  # a stale symlink at the file's place: replace it, never follow
                return os.open(path, _CREATE_FLAGS, 0o644)
        except OSError as exc:
            raise _clash(rel, exc, folder=False) from None

    def _write_now(self, rel: str, data: bytes) -> None:
        fd = self._open_fd(rel)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(self.native(rel))  # e.g. a full disk: no truncated file keeps its name
            raise
        os.close(fd)
