"""One large file fetched as concurrent ranges into one ``.part``, resumable hole by hole."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import Final

from ...exceptions import NetworkError
from ...net.http import HttpClient
from ...net.retry import RETRY_STATUSES, retry_after_seconds
from .attempt import (
    FileAttempts,
    _Fail,
    _Job,
    _Mismatch,
    _Retry,
)
from .disk import _DiskError
from .fetchers import FetchedResponse
from .files import PART_FLAGS, open_part, unlink_quietly, write_all
from .http_helpers import (
    _parse_content_range,
    _reason,
    _validator,
)
from .resume import _read_meta, _write_meta
from .spec import TransferOutcome, TransferSpec

#: Files smaller than this are never split into ranges.
MIN_RANGED_SIZE: Final = 8 << 20
#: Smallest range a split produces.
MIN_SEGMENT: Final = 1 << 20
#: How often (seconds) a ranged download records its progress in ``.part.meta``.
META_INTERVAL: Final = 0.5


class _Restart(Exception):
    """A range answered 200: the remote file changed; everything starts over."""


class _Ranged:
    """One large file fetched as up to ``n`` concurrent ranges into one ``.part``.

    The ``.part.meta`` sidecar records the validator, the size and the byte ranges already on
    disk, so an interrupted download resumes only the holes.
    """

    def __init__(
        self,
        engine: FileAttempts,
        client: HttpClient,
        job: _Job,
        n: int,
        on_bytes: Callable[[int], None] | None,
        on_retry: Callable[[TransferSpec, str, float], None] | None,
    ) -> None:
        self.engine = engine
        self.client = client
        self.job = job
        self.spec = job.spec
        self.n = n
        self.on_bytes = on_bytes
        self.on_retry = on_retry
        self.dest = os.fspath(job.spec.dest)
        self.part = self.dest + ".part"
        self.meta_path = self.part + ".meta"
        self.loop = asyncio.get_running_loop()
        self.validator = ""
        self.total = 0
        self.done: list[tuple[int, int]] = []  # ranges complete before this attempt
        self.progress: dict[int, list[int]] = {}  # segment -> [start, written end]
        self.last_meta = 0.0

    # -- state ---------------------------------------------------------------------------------
    def _load(self) -> bool:
        spec = self.spec
        try:
            psize = os.stat(self.part).st_size
        except OSError:
            return False
        meta = _read_meta(self.meta_path)
        if meta is None or meta.get("url") != spec.url:
            return False
        validator = _validator(meta.get("etag"), meta.get("last_modified"))
        total = meta.get("size")
        if validator is None or not isinstance(total, int):
            return False
        if spec.size is not None and total != spec.size:
            return False
        ranges = meta.get("ranges")
        if ranges is None:
            ranges = [[0, min(psize, total)]]  # written sequentially
        try:
            spans = sorted((int(a), min(int(b), psize, total)) for a, b in ranges)
        except (TypeError, ValueError):
            return False
        self.validator = validator
        self.total = total
        self.job.etag = meta.get("etag")
        self.job.last_modified = meta.get("last_modified")
        self.done = _merge([(a, b) for a, b in spans if b > a])
        return True

    def _covered(self) -> list[tuple[int, int]]:
        spans = list(self.done)
        spans.extend((a, b) for a, b in self.progress.values() if b > a)
        return _merge(spans)

    def _save(self, force: bool = False) -> None:
        now = self.loop.time()
        if not force and now - self.last_meta < META_INTERVAL:
            return
        self.last_meta = now
        meta = {
            "url": self.spec.url,
            "etag": self.job.etag,
            "last_modified": self.job.last_modified,
            "size": self.total,
            "ranges": [list(r) for r in self._covered()],
        }
        try:
            _write_meta(self.meta_path, meta)
        except OSError as exc:
            raise _DiskError(exc) from None

    # -- transfer ------------------------------------------------------------------------------
    async def attempt(self) -> TransferOutcome:
        engine = self.engine
        job = self.job
        resumed = self._load() if not job.fresh else False
        if job.fresh:
            job.fresh = False
            unlink_quietly(self.part)
            unlink_quietly(self.meta_path)
        self.progress = {}
        if not resumed:
            probe = max(MIN_RANGED_SIZE, engine.chunk_size)
            resp = await engine._get(
                self.client, self.spec.url, {"Range": f"bytes=0-{probe - 1}"}, job
            )
            if resp.status != 206:
                # no range support (200), an error or an empty file: the sequential path
                return await engine._handle(job, resp, 0, None, False, self.on_bytes)
            cr = _parse_content_range(resp.headers.get("content-range"))
            validator = _validator(resp.headers.get("etag"), resp.headers.get("last-modified"))
            if cr is None or cr[0] != 0 or cr[2] is None or not validator:
                resp.release()  # cannot split safely: fetch it in one piece
                return await engine._attempt(self.client, job, self.on_bytes)
            self.total = cr[2]
            self.validator = validator
            job.etag = resp.headers.get("etag")
            job.last_modified = resp.headers.get("last-modified")
            job.status = 206
            if self.spec.size is not None and self.total != self.spec.size:
                resp.release()
                raise _Mismatch(
                    f"size mismatch: server sends {self.total:,} bytes, "
                    f"expected {self.spec.size:,}",
                    status=206,
                )
            first_end = cr[1] + 1
            self.done = []
            segments = [(0, first_end), *_split([(first_end, self.total)], self.n - 1)]
            first: FetchedResponse | None = resp
            job.resumed_from = 0
        else:
            missing = _holes(self.done, self.total)
            job.resumed_from = self.total - sum(b - a for a, b in missing)
            segments = _split(missing, self.n)
            first = None
        try:  # create (or truncate) the .part; each range then writes with its own descriptor
            os.close(open_part(self.part, PART_FLAGS | (0 if resumed else os.O_TRUNC)))
        except OSError as exc:
            if first is not None:
                first.release()
            raise engine._disk_failure(
                exc, self.spec, self.part, self.meta_path, self.total
            ) from None
        try:
            try:
                self._save(force=True)
            except _DiskError as exc:
                if first is not None:
                    first.release()
                raise engine._disk_failure(
                    exc.exc, self.spec, self.part, self.meta_path, self.total
                ) from None
            tasks = [
                asyncio.ensure_future(self._segment(i, a, b, first if i == 0 else None))
                for i, (a, b) in enumerate(segments)
            ]
            try:
                await asyncio.gather(*tasks)
            except BaseException:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
        except _Restart:
            unlink_quietly(self.part)
            unlink_quietly(self.meta_path)
            job.resumed_from = 0
            raise _Retry("the remote file changed; restarting it", delay=0.0) from None
        except _DiskError as exc:
            raise engine._disk_failure(
                exc.exc, self.spec, self.part, self.meta_path, self.total
            ) from None
        finally:
            with contextlib.suppress(_DiskError):
                if os.path.exists(self.part):
                    self._save(force=True)
        try:
            size = os.stat(self.part).st_size
        except OSError:
            size = -1
        if size != self.total:
            raise _Retry(f"incomplete file: {size:,} of {self.total:,} bytes")
        return await engine._finish(job, self.part, self.meta_path, size, 206, None)

    async def _segment(self, i: int, a: int, b: int, resp: FetchedResponse | None) -> None:
        """Fetch ``[a, b)`` into the ``.part``, retrying from where it stopped."""
        engine = self.engine
        job = self.job
        prog = self.progress.setdefault(i, [a, a])
        seg_job = _Job(self.spec, first_start=self.loop.time())
        while prog[1] < b:
            pos = prog[1]
            try:
                if resp is None:
                    extra = {"Range": f"bytes={pos}-{b - 1}", "If-Range": self.validator}
                    resp = await engine._get(self.client, self.spec.url, extra, seg_job)
                    job.attempts += 1
                await self._receive(resp, prog, b)
            except _Retry as exc:
                decision = engine._retry_delay(seg_job, exc, self.loop.time(), self.on_retry)
                if isinstance(decision, TransferOutcome):
                    reason = decision.error or exc.reason
                    raise _Fail(reason, status=exc.status, permanent=False) from None
                job.retries += 1
                if decision > 0:
                    await asyncio.sleep(decision)
            finally:
                resp = None

    async def _receive(self, resp: FetchedResponse, prog: list[int], b: int) -> None:
        status = resp.status
        if status == 200:
            resp.release()
            raise _Restart()
        if status != 206:
            resp.release()
            reason = _reason(resp)
            if status in RETRY_STATUSES:
                delay = retry_after_seconds(resp.headers.get("retry-after"))
                raise _Retry(reason, status=status, delay=delay)
            raise _Fail(reason, status=status)
        cr = _parse_content_range(resp.headers.get("content-range"))
        if cr is None or cr[0] != prog[1] or (cr[2] is not None and cr[2] != self.total):
            resp.release()
            raise _Restart()
        on_bytes = self.on_bytes
        try:
            fd = open_part(self.part, PART_FLAGS, prog[1])
        except OSError as exc:
            resp.release()
            raise _DiskError(exc) from None
        try:
            async for chunk in resp.iter_chunks():
                pos = prog[1]
                keep = min(len(chunk), b - pos)
                if keep <= 0:
                    resp.release()
                    break
                try:
                    write_all(fd, memoryview(chunk)[:keep] if keep < len(chunk) else chunk)
                except OSError as exc:
                    raise _DiskError(exc) from None
                prog[1] = pos + keep
                if on_bytes is not None:
                    on_bytes(keep)
                self._save()
        except NetworkError as exc:
            raise _Retry(str(exc)) from None
        finally:
            os.close(fd)
        if prog[1] < min(b, cr[1] + 1):
            raise _Retry(f"connection dropped at byte {prog[1]:,}")


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _holes(done: list[tuple[int, int]], total: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    pos = 0
    for a, b in _merge(done):
        if a > pos:
            out.append((pos, a))
        pos = max(pos, b)
    if pos < total:
        out.append((pos, total))
    return out


def _split(spans: list[tuple[int, int]], n: int) -> list[tuple[int, int]]:
    """Cut ``spans`` into at most ``max(n, len(spans))`` ranges of similar size."""
    spans = [s for s in spans if s[1] > s[0]]
    if not spans:
        return []
    total = sum(b - a for a, b in spans)
    target = max(MIN_SEGMENT, -(-total // max(1, n)))
    out: list[tuple[int, int]] = []
    for a, b in spans:
        pieces = max(1, round((b - a) / target))
        step = -(-(b - a) // pieces)
        out.extend((x, min(b, x + step)) for x in range(a, b, step))
    return out
