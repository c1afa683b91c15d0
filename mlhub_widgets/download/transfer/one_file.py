"""One file: :func:`download_file` (synchronous) and :func:`fetch_file` (in a running loop),
optionally as parallel ranges (:mod:`.ranged`)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ...net.http import Credentials
from ...net.settings import NetworkSettings
from .attempt import (
    _Fail,
    _failed,
    _Job,
    _Retry,
)
from .engine import TransferEngine
from .ranged import _Ranged
from .spec import TransferControl, TransferOutcome, TransferSpec


async def fetch_file(
    url: str,
    dest: Path | str,
    *,
    size: int | None = None,
    checksum: str | None = None,
    parallel_ranges: int = 1,
    headers: Mapping[str, str] | None = None,
    credentials: Credentials | None = None,
    network: NetworkSettings | None = None,
    if_exists: str = "resume",
    connect_timeout: float = 10,
    read_timeout: float = 60,
    max_attempts: int = 8,
    max_retry_time: float = 300,
    backoff: float = 0.25,
    chunk_size: int = 1 << 20,
    on_bytes: Callable[[int], None] | None = None,
    on_retry: Callable[[TransferSpec, str, float], None] | None = None,
    control: TransferControl | None = None,
) -> TransferOutcome:
    """Fetch one file inside a running event loop (the async form of :func:`download_file`)."""
    spec = TransferSpec(url, Path(dest), size, checksum)
    creds = [credentials] if credentials is not None else []
    if headers:
        creds.append(Credentials.for_url(url, headers=headers))
    engine = TransferEngine(
        workers=1,
        per_host=max(1, parallel_ranges),
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_attempts=max_attempts,
        max_retry_time=max_retry_time,
        backoff=backoff,
        chunk_size=chunk_size,
        credentials=creds,
        network=network,
        if_exists=if_exists,
    )
    if parallel_ranges <= 1:
        outcomes: list[TransferOutcome] = []
        await engine.run(
            [spec], on_outcome=outcomes.append, on_bytes=on_bytes, on_retry=on_retry,
            control=control,
        )  # fmt: skip
        if outcomes:
            return outcomes[0]
        return _failed(_Job(spec), "cancelled", None, False)
    done = engine._done_already(spec)
    if done is not None:
        return done
    return await _run_ranged(engine, spec, parallel_ranges, on_bytes, on_retry, control)


async def _run_ranged(
    engine: TransferEngine,
    spec: TransferSpec,
    n: int,
    on_bytes: Callable[[int], None] | None,
    on_retry: Callable[[TransferSpec, str, float], None] | None,
    control: TransferControl | None,
) -> TransferOutcome:
    loop = asyncio.get_running_loop()
    client = engine._client()
    job = _Job(spec, first_start=loop.time())
    task = asyncio.current_task()
    cancelled = False

    def on_control() -> None:
        nonlocal cancelled
        if control is not None and control.cancelled and not cancelled and task is not None:
            cancelled = True
            task.cancel()

    unsubscribe = None
    if control is not None:

        def notify() -> None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(on_control)

        unsubscribe = control._subscribe(notify)
    try:
        while True:
            if control is not None:
                while control.paused and not control.cancelled:
                    await asyncio.sleep(0.1)
                if control.cancelled:
                    return _failed(job, "cancelled", None, False)
            try:
                return await _Ranged(engine, client, job, n, on_bytes, on_retry).attempt()
            except _Fail as exc:
                return _failed(job, exc.reason, exc.status, exc.permanent, exc.disk_full)
            except _Retry as exc:
                decision = engine._retry_delay(job, exc, loop.time(), on_retry)
                if isinstance(decision, TransferOutcome):
                    return decision
                if decision > 0:
                    await asyncio.sleep(decision)
    except asyncio.CancelledError:
        if not cancelled:
            raise
        return _failed(job, "cancelled", None, False)
    finally:
        if unsubscribe is not None:
            unsubscribe()
        await client.close()


def download_file(
    url: str,
    dest: Path | str,
    *,
    size: int | None = None,
    checksum: str | None = None,
    parallel_ranges: int = 1,
    headers: Mapping[str, str] | None = None,
    credentials: Credentials | None = None,
    network: NetworkSettings | None = None,
    if_exists: str = "resume",
    connect_timeout: float = 10,
    read_timeout: float = 60,
    max_attempts: int = 8,
    max_retry_time: float = 300,
    backoff: float = 0.25,
    chunk_size: int = 1 << 20,
    on_bytes: Callable[[int], None] | None = None,
    on_retry: Callable[[TransferSpec, str, float], None] | None = None,
    control: TransferControl | None = None,
) -> TransferOutcome:
    """Download one file synchronously, with the engine's verification, resume and retries.

    Meant for catalogue tarballs and collection archives. ``headers`` and ``credentials`` go
    only to their origin (``headers``: the origin of ``url``); credentials in ``url``'s query
    (``key``, ``sig``, ``X-Amz-*``...) are dropped when a redirect leaves its origin, and masked
    in every message. ``network`` sets proxy, TLS, timeouts and retries (replacing the
    timeout and retry arguments). With
    ``parallel_ranges > 1`` and a server that supports ranges, a file of 8 MiB or more is
    fetched as that many concurrent ranges into one ``.part`` (written at offsets), verified,
    and resumable hole by hole. Runs its own event loop (in a helper thread when the calling
    thread already runs one, as in Jupyter). Never raises for HTTP or disk failures: check
    :attr:`TransferOutcome.ok` and :attr:`TransferOutcome.error`.
    """

    def make() -> Any:
        return fetch_file(
            url, dest, size=size, checksum=checksum, parallel_ranges=parallel_ranges,
            headers=headers, credentials=credentials, network=network, if_exists=if_exists,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout, max_attempts=max_attempts, max_retry_time=max_retry_time,
            backoff=backoff, chunk_size=chunk_size, on_bytes=on_bytes, on_retry=on_retry,
            control=control,
        )  # fmt: skip

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        result: TransferOutcome = asyncio.run(make())
        return result
    box: list[Any] = []

    def target() -> None:
        try:
            box.append(asyncio.run(make()))
        except BaseException as exc:  # re-raised in the caller's thread
            box.append(exc)

    thread = threading.Thread(target=target, name="mlhub-download-file", daemon=True)
    thread.start()
    thread.join()
    if isinstance(box[0], BaseException):
        raise box[0]
    outcome: TransferOutcome = box[0]
    return outcome
