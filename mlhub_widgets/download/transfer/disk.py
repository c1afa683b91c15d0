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


#: Threads for file-system calls. Creating a file costs from ~10 µs (tmpfs) to several hundred
#: µs (a busy ext4 on a virtual disk): done inline, it would stall every connection of the
#: loop; in a thread, creates overlap with the network. Two, not more: every extra thread
#: multiplies GIL hand-offs (futex calls: ~2-9k per 3,000 files with 1-2 threads, 22-34k with 4)
#: for no measurable gain on a 2-core machine.
DISK_THREADS: Final = 2


#: ``write_small`` arguments: part path, final path, body, ``.meta`` path to remove (or None),
#: expected ``(hashlib name, digest)`` (or None) and the ``Content-MD5`` header (or None).
WriteArgs = tuple[str, str, bytes, str | None, tuple[str, bytes] | None, str | None]

_DiskItem = tuple["asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


class _Worker:
    """One disk thread (started here) and its wake-up queue (``False``: stop)."""

    def __init__(self, run: Callable[[_Worker, bool], None], index: int) -> None:
        self.wake: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self.sleeping = False  # waiting on ``wake`` with no token sent to it yet
        self.thread = threading.Thread(
            target=run, args=(self, index == 0), name=f"mlhub-disk-{index}", daemon=True
        )
        self.thread.start()


class _DiskWorkers:
    """A few threads for blocking file-system calls, with as few thread wake-ups as possible.

    Two lanes. Small files (:meth:`write_small`: open, write, rename, each call a GIL hand-off)
    go to the first thread only: spread over both threads they made three threads contend for
    the GIL, and a prefix of 15,002 small objects took 3.92 s instead of 3.60 s (5 pairs). Slices
    of large files (:meth:`submit`: a write and a hash of 1 MiB, the GIL released for both) go to
    whichever thread is free: on one thread 20 x 50 MiB took 1.77 s instead of 1.45 s.

    Busy threads drain their lanes on their own; sleeping threads are woken once per event-loop
    iteration (not once per call), and only as many as there are new calls. Results come back
    to the loop once per batch. Every wake-up is a futex call and often a GIL hand-off that
    stalls the loop, so this matters more than it seems.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, threads: int = DISK_THREADS) -> None:
        self.loop = loop
        self.n = max(1, threads)
        self.workers: list[_Worker] = []  # started at the first call, again after close()
        self.items: deque[_DiskItem] = deque()  # any thread
        self.small: deque[_DiskItem] = deque()  # the first thread only
        self.lock = threading.Lock()
        self.kick_scheduled = False
        self.done: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []

    def write_small(self, args: WriteArgs) -> asyncio.Future[Failure]:
        """:func:`.files.write_small` in the first disk thread."""
        return self._queue(self.small, write_small, args)

    def submit(self, fn: Callable[..., _R], *args: Any) -> asyncio.Future[_R]:
        """Run ``fn(*args)`` in a disk thread; the future resolves in the loop."""
        return self._queue(self.items, fn, args)

    def _queue(
        self, lane: deque[_DiskItem], fn: Callable[..., _R], args: tuple[Any, ...]
    ) -> asyncio.Future[_R]:
        if not self.workers:
            self.workers = [_Worker(self._run, i) for i in range(self.n)]
        fut: asyncio.Future[_R] = self.loop.create_future()
        lane.append((fut, fn, args))
        if not self.kick_scheduled:
            self.kick_scheduled = True
            self.loop.call_soon(self._kick)
        return fut

    def _kick(self) -> None:
        """Wake sleeping threads for the calls submitted since the last kick (loop thread):
        the first for small files, then one per slice, the other threads first."""
        self.kick_scheduled = False
        if not self.workers:  # closed since the call was queued
            return
        first = self.workers[0]
        woken: list[_Worker] = []
        with self.lock:
            if self.small and first.sleeping:
                first.sleeping = False
                woken.append(first)
            wanted = len(self.items)
            for worker in (*self.workers[1:], first):
                if wanted <= 0:
                    break
                if worker.sleeping:
                    worker.sleeping = False
                    woken.append(worker)
                    wanted -= 1
        for worker in woken:
            worker.wake.put(True)

    def _run(self, worker: _Worker, takes_small: bool) -> None:
        small, items = self.small, self.items
        running = True
        while True:
            try:
                fut, fn, args = small.popleft() if takes_small and small else items.popleft()
            except IndexError:
                if not running:
                    return
                with self.lock:
                    if items or (takes_small and small):
                        continue
                    worker.sleeping = True
                running = worker.wake.get()
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
        for worker in self.workers:
            worker.wake.put(False)
        for worker in self.workers:
            worker.thread.join()
        self.workers = []
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
