"""Transfer outcomes written to the asset index in batches, from a helper thread."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

from .manifest import (
    Manifest,
    Outcome,
)

#: SQLite page cache of the download process's two manifest connections (rows are read and
#: updated in ``seq`` order): 4 MB less peak memory at 100,000 assets than SQLite's 2 MiB each.
TRANSFER_CACHE_KIB = 512


class OutcomeWriter:
    """Collects transfer outcomes in the event loop and writes them to the index in batches
    from a helper thread (one hand-over per batch, not per asset: thread wake-ups are costly
    under the GIL).

    The hand-over queue is bounded: when the index cannot keep up (its writes wait for the
    index process's transactions), the event loop waits instead of piling outcomes up in
    memory; the writer merges what queued up into one transaction to catch up.
    """

    BATCH = 1000
    INTERVAL = 0.25
    MAX_QUEUED = 16  # batches: ~16,000 outcomes, a few MB at most
    MERGE = 16  # batches written in one transaction when the writer is behind

    def __init__(self, path: Path) -> None:
        self._queue: queue.Queue[list[Outcome] | None] = queue.Queue(maxsize=self.MAX_QUEUED)
        self._path = path
        self._pending: list[Outcome] = []
        self._last = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="mlhub-index-writer", daemon=True)
        self._error: BaseException | None = None
        self._thread.start()

    def add(self, outcome: Outcome) -> None:
        self._pending.append(outcome)
        if len(self._pending) >= self.BATCH:
            self.flush()

    def maybe_flush(self) -> None:
        """Hand over what is pending if the last hand-over is old enough (called by a timer)."""
        if self._pending and time.monotonic() - self._last >= self.INTERVAL:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._put(self._pending)
            self._pending = []
        self._last = time.monotonic()

    def _put(self, item: list[Outcome] | None) -> None:
        while self._error is None and self._thread.is_alive():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        # the writer stopped (its error is raised by close() and seen by the job): drop it

    @property
    def error(self) -> BaseException | None:
        """The error that stopped the writer (e.g. a full disk), if any."""
        return self._error

    def close(self) -> None:
        self.flush()
        self._put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _loop(self) -> None:
        try:
            with Manifest(self._path, cache_kib=TRANSFER_CACHE_KIB) as db:
                while (batch := self._queue.get()) is not None:
                    last = False
                    for _ in range(self.MERGE - 1):  # catch up: what queued meanwhile, too
                        try:
                            more = self._queue.get_nowait()
                        except queue.Empty:
                            break
                        if more is None:
                            last = True
                            break
                        batch = batch + more
                    db.record(batch)  # one transaction: all of a batch or nothing
                    if last:
                        return
        except BaseException as exc:  # reported by close() and seen by the job at once
            self._error = exc
