"""Blocking file-system work off the event loop: a few disk threads."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Final, TypeVar

from .files import Failure, write_all, write_small

log = logging.getLogger(__name__)
_R = TypeVar("_R")


class _DiskError(Exception):
    """A write to a ``.part`` failed (the caller turns it into the file's failure)."""

    def __init__(self, exc: OSError) -> None:
        super().__init__(str(exc))
        self.exc = exc


#: Threads that create, write and rename small files. Creating a file costs from ~10 µs (tmpfs)
#: to several hundred µs (a busy ext4 on a virtual disk): done inline, it would stall every
#: connection of the loop; in threads, creates overlap with the network and with each other.
#: Two, not more: every extra thread multiplies GIL hand-offs (futex calls: ~2-9k per 3,000
#: files with 1-2 threads, 22-34k with 4) for no measurable gain on a 2-core machine.
DISK_THREADS: Final = 2


#: ``write_small`` arguments: part path, final path, body, ``.meta`` path to remove (or None),
#: expected ``(hashlib name, digest)`` (or None) and the ``Content-MD5`` header (or None).
WriteArgs = tuple[str, str, bytes, str | None, tuple[str, bytes] | None, str | None]

_DiskItem = tuple["asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


class _DiskWorkers:
    """A few threads for blocking file-system calls, with as few thread wake-ups as possible.

    Work goes to a shared deque that busy threads drain on their own; sleeping threads are woken
    once per event-loop iteration (not once per call), and only as many as there are new
    calls. Results come back to the loop once per batch. Every wake-up is a futex call and
    often a GIL hand-off that stalls the loop, so this matters more than it seems.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, threads: int = DISK_THREADS) -> None:
        self.loop = loop
        self.n = max(1, threads)
        self.items: deque[_DiskItem] = deque()
        self.wake: queue.SimpleQueue[bool] = queue.SimpleQueue()  # False: stop
        self.lock = threading.Lock()
        self.sleeping = 0  # threads waiting on ``wake`` that no token was sent to yet
        self.kick_scheduled = False
        self.done: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        self.threads: list[threading.Thread] = []

    def write_small(self, args: WriteArgs) -> asyncio.Future[Failure]:
        """:func:`.files.write_small` in a disk thread."""
        return self.submit(write_small, *args)

    def submit(self, fn: Callable[..., _R], *args: Any) -> asyncio.Future[_R]:
        """Run ``fn(*args)`` in a disk thread; the future resolves in the loop."""
        if not self.threads:
            for i in range(self.n):
                thread = threading.Thread(target=self._run, name=f"mlhub-disk-{i}", daemon=True)
                thread.start()
                self.threads.append(thread)
        fut: asyncio.Future[_R] = self.loop.create_future()
        self.items.append((fut, fn, args))
        if not self.kick_scheduled:
            self.kick_scheduled = True
            self.loop.call_soon(self._kick)
        return fut

    def _kick(self) -> None:
        """Wake sleeping threads for the calls submitted since the last kick (loop thread)."""
        self.kick_scheduled = False
        with self.lock:
            count = min(self.sleeping, len(self.items))
            self.sleeping -= count
        for _ in range(count):
            self.wake.put(True)

    def _run(self) -> None:
        items = self.items
        running = True
        while True:
            try:
                fut, fn, args = items.popleft()
            except IndexError:
                if not running:
                    return
                with self.lock:
                    if items:
                        continue
                    self.sleeping += 1
                running = self.wake.get()
                continue
            try:
                result, exc = fn(*args), None
            except BaseException as error:  # handed to the awaiting coroutine
                result, exc = None, error
            with self.lock:
                self.done.append((fut, result, exc))
                first = len(self.done) == 1
            if first:
                with contextlib.suppress(RuntimeError):  # the loop is closed
                    self.loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        with self.lock:
            done, self.done = self.done, []
        for fut, result, exc in done:
            if fut.done():
                continue
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(result)

    def close(self) -> None:
        """Finish queued work and stop the threads (blocks for in-flight file calls only)."""
        for _ in self.threads:
            self.wake.put(False)
        for thread in self.threads:
            thread.join()
        self.threads = []
        self._deliver()


def _write_chunk(fd: int, view: bytes | bytearray, hasher: Any, md5: Any) -> None:
    """Write the next slice of a streamed body and feed the hashers."""
    try:
        write_all(fd, view)
    except OSError as exc:
        raise _DiskError(exc) from None
    if hasher is not None:
        hasher.update(view)
    if md5 is not None:
        md5.update(view)
