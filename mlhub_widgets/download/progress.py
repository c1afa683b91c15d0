"""Terminal progress: two tqdm bars (bytes and assets) on stderr, fed by a job's events."""

from __future__ import annotations

import sys
from typing import Any

from .events import (
    CatalogFetched,
    JobCancelled,
    JobFailed,
    JobFinished,
    ProgressUpdated,
    human_bytes,
)


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
