"""The transfer engine: moves asset bytes from HTTP(S) to disk, fast and never corrupt.

:class:`TransferEngine` runs inside an asyncio event loop and downloads many files at once over
keep-alive connections (the package's HTTP layer, :mod:`mlhub_widgets.net.http`, on aiohttp:
proxies, CAs, redirects and credentials as everywhere else). Every file goes through the same
safe path:

* bytes are written to ``dest.part`` and renamed to ``dest`` only after the byte count matches
  ``Content-Length``, the catalogue's ``file:size`` and ``file:checksum`` (multihash: sha2-256,
  md5, sha1, sha2-512, …) and the server's ``Content-MD5`` when it sends one; a body longer than
  the size it announced (or the catalogue's) is cut off before its extra bytes are written;
* a large body records its validator (ETag / Last-Modified) in ``dest.part.meta`` before its
  first byte is written, so an interrupted file (even by ``kill -9``) is resumed with
  ``Range`` + ``If-Range``; a server that answers ``200`` instead of ``206`` (the remote file
  changed, or no range support) restarts the file from byte 0 — two versions are never spliced;
* connection errors, timeouts, stalled or short bodies, 408/429 (``Retry-After``) and
  500/502/503/504 are retried with the package's :class:`~mlhub_widgets.net.retry.RetryPolicy`
  (exponential backoff with jitter, within ``max_attempts`` and ``max_retry_time`` per file),
  without holding a worker slot while waiting; 400/401/403/404/410, TLS failures and bad URLs
  fail that file at once;
* redirects are followed hop by hop by the HTTP layer; credentials (an API key, a source's
  headers, secrets in the URL's query) never go to another origin;
* a full disk fails that file with a clear message and removes its ``.part``.

:func:`download_file` is the synchronous one-file convenience (catalogue tarballs, collection
archives); with ``parallel_ranges > 1`` it fetches one large file as concurrent ranges.

Where the time goes: the HTTP work runs in the event loop; small bodies (up to ``chunk_size``)
arrive whole and are verified, written and renamed by the disk threads
(:data:`~.disk.DISK_THREADS`), because a file create costs from ~10 µs on tmpfs to several
hundred µs on a busy ext4 and must not stall the other connections. Larger bodies are written in
``chunk_size`` slices; when they must be hashed, a disk thread writes and hashes one slice while
the next arrives (without a checksum to compute, writing inline measured faster). Every write is
sequential from one position (no ``pwrite``): the engine runs wherever Python and aiohttp run.

Limitations: HTTP/1.1 (aiohttp has no HTTP/2), no ``fsync`` (a power loss may lose recently
renamed files; a killed process does not), ``Content-Encoding`` is refused by asking for
``identity``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator

from ...exceptions import ConfigurationError
from ...net.http import HttpClient
from ...net.redact import redact_url
from .attempt import (
    FileAttempts,
    _CallbackError,
    _Fail,
    _failed,
    _Job,
    _Retry,
)
from .disk import _DiskWorkers
from .spec import TransferControl, TransferOutcome, TransferSpec

log = logging.getLogger(__name__)


class TransferEngine(FileAttempts):
    """Download many files concurrently inside an asyncio event loop.

    Args:
        workers: most transfers in flight at once.
        per_host: most connections to one origin (default: ``workers``).
        connect_timeout: seconds for TCP (+TLS) set-up.
        read_timeout: seconds without a received byte before an attempt fails.
        max_attempts: requests per file, first one included.
        max_retry_time: seconds a file may spend between its first attempt and a retry.
        backoff: base of the exponential backoff (full jitter) in seconds.
        chunk_size: streaming buffer size; large bodies are written in slices this big.
        credentials: what may be sent to which origin (:class:`~mlhub_widgets.net.http.Credentials`:
            an API key, a source's ``Authorization`` header); never sent anywhere else.
        network: proxy, TLS, timeouts and retry policy (:class:`NetworkSettings`); when
            given, it replaces ``connect_timeout``/``read_timeout``/``max_attempts``/
            ``max_retry_time``/``backoff``.
        if_exists: what to do when ``dest`` already exists: ``"resume"`` (keep it when its size
            matches the expected size, or when no size is known; no request is made), ``"skip"``
            (keep it, whatever it is) or ``"overwrite"`` (fetch again).
        storage_options: options of the object stores ``s3://``, ``gs://`` and ``az://``
            specs are fetched from (:mod:`mlhub_widgets.net.objects`; see
            :mod:`.fetchers`).
    """

    def __repr__(self) -> str:
        return (
            f"<TransferEngine workers={self.workers} per_host={self.per_host} "
            f"if_exists={self.if_exists!r}>"
        )

    async def run(
        self,
        specs: Iterable[TransferSpec] | AsyncIterable[TransferSpec],
        *,
        on_outcome: Callable[[TransferOutcome], None],
        on_bytes: Callable[[int], None] | None = None,
        on_start: Callable[[TransferSpec], None] | None = None,
        on_retry: Callable[[TransferSpec, str, float], None] | None = None,
        control: TransferControl | None = None,
    ) -> None:
        """Fetch every spec, calling ``on_outcome`` once per spec as it finishes.

        ``specs`` is consumed lazily (at most ``workers`` transfers in flight, plus retries
        waiting for their backoff), so it can be a generator over millions of rows. Callbacks
        run in the event loop's thread and must be quick: ``on_bytes`` gets byte deltas (once
        per small file, once per ``chunk_size`` slice of a large one; bytes of a file that
        is restarted from scratch are counted again), ``on_start`` each attempt's start,
        ``on_retry`` ``(spec, reason, delay)`` before a retry waits.

        Specs whose ``dest`` is already there (see ``if_exists``) get an ``ok`` outcome with
        ``attempts == 0`` and no ``on_start``. When ``control`` is cancelled, running transfers
        are aborted without an outcome (their ``.part`` files stay for a resume) and ``run``
        returns normally. An exception raised by a callback stops the run and propagates.
        """
        run = _Run(self, self._client(), on_outcome, on_bytes, on_start, on_retry, control)
        await run.execute(specs)


class _Run:
    def __init__(
        self,
        engine: TransferEngine,
        client: HttpClient,
        on_outcome: Callable[[TransferOutcome], None],
        on_bytes: Callable[[int], None] | None,
        on_start: Callable[[TransferSpec], None] | None,
        on_retry: Callable[[TransferSpec, str, float], None] | None,
        control: TransferControl | None,
    ) -> None:
        self.engine = engine
        self.client = client
        self.loop = asyncio.get_running_loop()
        self.on_outcome = on_outcome
        self.on_bytes: Callable[[int], None] | None = None
        if on_bytes is not None:
            user_on_bytes = on_bytes

            def guarded_on_bytes(n: int) -> None:
                try:
                    user_on_bytes(n)
                except Exception as exc:
                    raise _CallbackError(exc) from exc

            self.on_bytes = guarded_on_bytes
        self.on_start = on_start
        self.on_retry = on_retry
        self.control = control
        self.ready: deque[_Job] = deque()
        self.deferred = 0
        self.max_deferred = 4 * engine.workers
        self.timers: set[asyncio.TimerHandle] = set()
        self.idle: list[asyncio.Future[None]] = []
        self.exhausted = False
        self.cancelled = False
        self.tasks: list[asyncio.Task[None]] = []
        self.pulling = False  # a worker is awaiting the async source: the others queue up
        self.pull_waiters: deque[asyncio.Future[None]] = deque()
        self._sync_iter: Iterator[TransferSpec] | None = None
        self._async_iter: AsyncIterator[TransferSpec] | None = None
        self.resumed = asyncio.Event()
        self.resumed.set()
        self.paused = False  # == not resumed.is_set(), cheaper to check once per file
        self.disk = _DiskWorkers(self.loop)

    async def execute(self, specs: Iterable[TransferSpec] | AsyncIterable[TransferSpec]) -> None:
        if isinstance(specs, AsyncIterable):
            self._async_iter = aiter(specs)
        else:
            self._sync_iter = iter(specs)
        unsubscribe: Callable[[], None] | None = None
        if self.control is not None:
            unsubscribe = self.control._subscribe(self._control_changed_threadsafe)
            self._control_changed()
        try:
            if self.cancelled:
                return
            self.tasks = [self.loop.create_task(self._worker()) for _ in range(self.engine.workers)]
            done, _ = await asyncio.wait(self.tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            if unsubscribe is not None:
                unsubscribe()
            for task in self.tasks:
                task.cancel()
            if self.tasks:
                await asyncio.gather(*self.tasks, return_exceptions=True)
            for timer in self.timers:
                timer.cancel()
            await self.client.close()
            self.disk.close()

    # -- control ------------------------------------------------------------------------------
    def _control_changed_threadsafe(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing left to control
            self.loop.call_soon_threadsafe(self._control_changed)

    def _control_changed(self) -> None:
        control = self.control
        if control is None:
            return
        if control.cancelled and not self.cancelled:
            self.cancelled = True
            for task in self.tasks:
                task.cancel()
        if control.paused and not control.cancelled:
            self.resumed.clear()
            self.paused = True
        else:
            self.resumed.set()
            self.paused = False

    async def _wait_unpaused(self) -> None:
        while not self.resumed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.resumed.wait(), 0.5)
            self._control_changed()  # in case a notification was lost

    # -- work distribution -----------------------------------------------------------------------
    async def _next_spec(self) -> TransferSpec | None:
        if self.exhausted:
            return None
        if self._sync_iter is not None:
            try:
                return next(self._sync_iter)
            except StopIteration:
                self.exhausted = True
                return None
        assert self._async_iter is not None
        # One worker at a time may await the async source (an async generator cannot be
        # re-entered); a plain flag costs less than an asyncio.Lock on this per-file path.
        while self.pulling:
            fut: asyncio.Future[None] = self.loop.create_future()
            self.pull_waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._wake_puller()  # it was this worker's turn: pass it on
                raise
            if self.exhausted:
                self._wake_puller()
                return None
        self.pulling = True
        try:
            return await anext(self._async_iter)
        except StopAsyncIteration:
            self.exhausted = True
            return None
        finally:
            self.pulling = False
            if self.pull_waiters:
                self._wake_puller()

    def _wake_puller(self) -> None:
        waiters = self.pull_waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def _push_ready(self, job: _Job, timer: asyncio.TimerHandle) -> None:
        self.timers.discard(timer)
        self.deferred -= 1
        self.ready.append(job)
        self._wake_one()

    def _wake_one(self) -> None:
        while self.idle:
            fut = self.idle.pop()
            if not fut.done():
                fut.set_result(None)
                return

    def _wake_all(self) -> None:
        while self.idle:
            fut = self.idle.pop()
            if not fut.done():
                fut.set_result(None)

    async def _worker(self) -> None:
        engine = self.engine
        while True:
            if self.paused:
                await self._wait_unpaused()
            if self.cancelled:
                return
            if self.ready:
                job = self.ready.popleft()
            else:
                spec = await self._next_spec()
                if spec is None:
                    if self.deferred == 0 and not self.ready:
                        self._wake_all()  # let the other idle workers see the end too
                        return
                    fut: asyncio.Future[None] = self.loop.create_future()
                    self.idle.append(fut)
                    await fut
                    continue
                done = None if spec.absent else engine._done_already(spec)
                if done is not None:
                    self.on_outcome(done)
                    continue
                job = _Job(spec, os.fspath(spec.dest))
            await self._process(job)

    async def _process(self, job: _Job) -> None:
        engine = self.engine
        loop = self.loop
        while True:
            if job.first_start < 0:
                job.first_start = loop.time()
            if self.on_start is not None:
                self.on_start(job.spec)
            try:
                outcome = await engine._attempt(self.client, job, self.on_bytes, self.disk)
            except _Fail as exc:
                self.on_outcome(_failed(job, exc.reason, exc.status, exc.permanent, exc.disk_full))
                return
            except _Retry as exc:
                decision = engine._retry_delay(job, exc, loop.time(), self.on_retry)
                if isinstance(decision, TransferOutcome):
                    self.on_outcome(decision)
                    return
                if decision <= 0:
                    continue
                if self.deferred < self.max_deferred:
                    # free this worker for other files while the retry waits
                    self.deferred += 1
                    self._defer(job, decision)
                    return
                await asyncio.sleep(decision)
                if not self.resumed.is_set():
                    await self._wait_unpaused()
                continue
            except asyncio.CancelledError:
                raise
            except _CallbackError as exc:
                raise exc.exc from None
            except ConfigurationError:
                raise  # a setting no request can use (a CA bundle): the run's error, not a file's
            except Exception as exc:  # a bug: report it for this file, keep the run going
                log.exception("unexpected error downloading %s", redact_url(job.spec.url))
                reason = f"internal error: {type(exc).__name__}"
                self.on_outcome(_failed(job, reason, None, True))
                return
            self.on_outcome(outcome)
            return

    def _defer(self, job: _Job, delay: float) -> None:
        def fire() -> None:
            self._push_ready(job, timer)

        timer = self.loop.call_later(delay, fire)
        self.timers.add(timer)
