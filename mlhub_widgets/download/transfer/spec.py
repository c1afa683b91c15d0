"""What the engine is given and gives back: :class:`TransferSpec`, :class:`TransferOutcome`,
the pause/cancel switch :class:`TransferControl`, and what a :class:`Destination` other than the
local disk provides."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from ...net.redact import redact_url

IfExists = Literal["resume", "skip", "overwrite"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TransferSpec:
    """One file to fetch.

    Attributes:
        url: absolute http(s) URL of the bytes.
        dest: final path; bytes go to ``dest + ".part"`` and are renamed after verification.
        size: expected size in bytes (the catalogue's ``file:size``), if known.
        checksum: expected multihash hex (``file:checksum``: ``"1220"`` + sha256 hex,
            ``"d50110"`` + md5 hex, …), if known; plain md5/sha1/sha256/sha512 hex also works.
        tag: the caller's id for this transfer, handed back untouched in the outcome.
        absent: the caller has just checked that neither ``dest`` nor ``dest.part`` exists: the
            engine skips its own checks (file-system calls in the event loop) on the first
            attempt.
    """

    url: str
    dest: Path | str
    size: int | None = None
    checksum: str | None = None
    tag: Any = None
    absent: bool = False

    def __repr__(self) -> str:  # the URL may carry an API key: never show it
        return (
            f"TransferSpec(url={redact_url(self.url)!r}, dest={self.dest!r}, size={self.size!r}, "
            f"checksum={self.checksum!r}, tag={self.tag!r})"
        )


@dataclass(frozen=True, slots=True)
class TransferOutcome:
    """What happened to one :class:`TransferSpec`.

    Attributes:
        spec: the spec.
        ok: the file is complete and verified under ``spec.dest``.
        size: the file's size when ``ok``; otherwise the bytes kept in ``.part`` for a resume.
        status: the last HTTP status (``None``: no request was needed, or none got an answer).
        etag: the ``ETag`` of the fetched representation, if any.
        last_modified: its ``Last-Modified``, if any.
        error: short, human and redacted description of the failure (``None`` when ``ok``).
        permanent: the failure is not worth retrying in this run (404, 403, disk full, …).
        attempts: requests made (redirect hops not counted; 0 when the file was already there).
        retries: attempts that followed a failed one.
        resumed_from: bytes of an existing ``.part`` reused instead of downloaded again.
        disk_full: the failure is a full disk or an exceeded quota (``ENOSPC``/``EDQUOT``):
            every other file on that disk would fail too, so a caller should stop.
    """

    spec: TransferSpec
    ok: bool
    size: int
    status: int | None
    etag: str | None
    last_modified: str | None
    error: str | None
    permanent: bool
    attempts: int
    retries: int
    resumed_from: int
    disk_full: bool = False


class TransferControl:
    """Pause, resume or cancel a running :meth:`TransferEngine.run` from any thread.

    ``pause`` stops new transfers from starting (running ones finish); ``cancel`` aborts the
    running ones at once, leaving their ``.part`` files (and validators) for a later resume,
    and makes ``run`` return. Cancelling is final for this control object.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paused = False
        self._cancelled = False
        self._listeners: list[Callable[[], None]] = []

    @property
    def paused(self) -> bool:
        """True between :meth:`pause` and :meth:`resume`."""
        return self._paused

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._cancelled

    def pause(self) -> None:
        """Stop starting new transfers (thread-safe)."""
        with self._lock:
            self._paused = True
        self._notify()

    def resume(self) -> None:
        """Start transfers again after :meth:`pause` (thread-safe)."""
        with self._lock:
            self._paused = False
        self._notify()

    def cancel(self) -> None:
        """Abort running transfers and end :meth:`TransferEngine.run` (thread-safe)."""
        with self._lock:
            self._cancelled = True
        self._notify()

    def _subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def _notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener()
            except Exception:  # pragma: no cover - a closed loop, typically
                log.debug("transfer control listener failed", exc_info=True)

    def __repr__(self) -> str:
        state = "cancelled" if self._cancelled else "paused" if self._paused else "running"
        return f"<TransferControl {state}>"


class Destination(Protocol):
    """Where verified files go instead of their local ``dest`` (an object store:
    :class:`mlhub_widgets.download.destination.ObjectDestination`). ``dest`` paths still name
    the files: local staging paths that map one to one to the destination's objects."""

    def size_of(self, local: str | os.PathLike[str]) -> int | None:
        """Size of what ``local`` maps to at the destination (None: not there)."""

    async def put_small(
        self,
        dest: str,
        body: bytes,
        expected: tuple[str, bytes] | None,
        md5_header: str | None,
    ) -> str | None:
        """Verify a whole body and write it; the mismatch reason (nothing written) or None."""

    async def publish(self, part: str, dest: str, size: int) -> None:
        """Move a verified ``.part`` to the destination (and remove it locally)."""

    async def upload_file(self, path: str, dest: str, size: int) -> None:
        """Copy the local file ``path`` to the destination as ``dest``."""
