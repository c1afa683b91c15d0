"""Progress on stderr, fed by a job's events: tqdm bars on a terminal, plain lines elsewhere.

``download_dataset(progress=True)`` and ``mlhub download`` take :func:`console_progress`: two
tqdm bars (bytes and assets) when stderr is a terminal or the code runs in a Jupyter kernel
(tqdm draws widgets there), else :class:`LineProgress`, one plain line every few seconds, so a
log file gets no carriage returns and no cursor-movement escapes.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, TextIO

from ..units import human_bytes
from .events import (
    CatalogFetched,
    JobCancelled,
    JobFailed,
    JobFinished,
    ProgressSnapshot,
    ProgressUpdated,
)

#: Seconds between two lines of :class:`LineProgress`.
LINE_INTERVAL = 5.0


def console_progress(dataset_id: str, stream: TextIO | None = None) -> Any:
    """The progress callback for ``stream`` (default stderr): tqdm bars or plain lines."""
    out = stream if stream is not None else sys.stderr
    interactive = "ipykernel" in sys.modules
    with contextlib.suppress(AttributeError, ValueError):  # a closed or unusual stream
        interactive = interactive or out.isatty()
    return TqdmProgress(dataset_id) if interactive else LineProgress(dataset_id, out)


def _clock(seconds: float) -> str:
    minutes, sec = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}" if hours else f"{minutes}:{sec:02d}"


def describe_progress(dataset_id: str, snap: ProgressSnapshot) -> str:
    """One line: ``ds: 724/2825 assets, 12.3 MB of 57.9 MB, 1.2 MB/s, ETA 0:31``."""
    total = f"{snap.assets_total}" + ("" if snap.index_complete else "+")
    parts = [f"{dataset_id}: {snap.assets_finished}/{total} assets"]
    size = human_bytes(snap.bytes_done)
    if snap.bytes_total is not None:
        size += f" of {human_bytes(snap.bytes_total)}"
    parts.append(size)
    if snap.phase != "done":
        parts.append(f"{human_bytes(snap.rate)}/s")
        if snap.eta is not None:
            parts.append(f"ETA {_clock(snap.eta)}")
    extra = [
        f"{n} {what}"
        for n, what in (
            (snap.assets_failed, "failed"),
            (snap.assets_skipped, "already present"),
            (snap.retries, "retries"),
        )
        if n
    ]
    return ", ".join(parts + extra)


class LineProgress:
    """A plain progress line every ``interval`` seconds (and a last one), for logs and pipes."""

    def __init__(
        self, dataset_id: str, stream: TextIO | None = None, interval: float = LINE_INTERVAL
    ) -> None:
        self.dataset_id = dataset_id
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self._next = 0.0
        self._last: ProgressSnapshot | None = None
        self._printed: ProgressSnapshot | None = None

    def __call__(self, event: Any) -> None:
        if isinstance(event, CatalogFetched):
            verb = "reusing" if event.reused else "fetched"
            self._print(f"{self.dataset_id}: {verb} catalogue ({human_bytes(event.size)})")
        elif isinstance(event, ProgressUpdated):
            snap = event.snapshot
            if snap.phase not in ("transfer", "done") or snap.assets_total == 0:
                return
            self._last = snap
            now = time.monotonic()
            if now >= self._next or snap.phase == "done":
                self._next = now + self.interval
                self._show(snap)
        elif (
            isinstance(event, JobFinished | JobFailed | JobCancelled)
            and self._last is not None
            and self._last is not self._printed
        ):
            self._show(self._last)

    def _show(self, snap: ProgressSnapshot) -> None:
        self._printed = snap
        self._print(describe_progress(self.dataset_id, snap))

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


class TqdmProgress:
    """Two tqdm bars (bytes and assets) on stderr, driven by ProgressUpdated events."""

    def __init__(self, dataset_id: str) -> None:
        self.dataset_id = dataset_id
        self._bytes: Any = None
        self._assets: Any = None

    def __call__(self, event: Any) -> None:
        if isinstance(event, CatalogFetched):
            verb = "reusing" if event.reused else "fetched"
            print(
                f"{self.dataset_id}: {verb} catalogue ({human_bytes(event.size)})",
                file=sys.stderr,
            )
        elif isinstance(event, ProgressUpdated):
            snap = event.snapshot
            if snap.phase not in ("transfer", "done") or snap.assets_total == 0:
                return
            self._ensure()
            self._assets.total = snap.assets_total
            self._assets.n = snap.assets_finished
            self._assets.set_postfix_str(
                f"failed={snap.assets_failed} skipped={snap.assets_skipped}", refresh=False
            )
            if snap.bytes_total is not None:
                self._bytes.total = snap.bytes_total
            self._bytes.n = snap.bytes_done
            self._assets.refresh()
            self._bytes.refresh()
        elif isinstance(event, JobFinished | JobFailed | JobCancelled):
            self.close()

    def _ensure(self) -> None:
        if self._bytes is None:
            from tqdm.auto import tqdm

            self._bytes = tqdm(
                total=None,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=f"{self.dataset_id} bytes",
                file=sys.stderr,
                position=0,
                leave=True,
            )
            self._assets = tqdm(
                total=0,
                unit="asset",
                desc=f"{self.dataset_id} assets",
                file=sys.stderr,
                position=1,
                leave=True,
            )

    def close(self) -> None:
        for bar in (self._bytes, self._assets):
            if bar is not None:
                bar.refresh()
                bar.close()
        self._bytes = self._assets = None
