"""One attempt at one file: the request, the answer's checks, the body to ``.part``, the rename.

:class:`FileAttempts` holds the engine's settings and this per-file logic;
:class:`~.engine.TransferEngine` adds the run over many files. The exceptions here tell the run
what to do next (retry later, start over, give up).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import hashlib
import logging
import os
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

from ...net.http11 import ConnectionDropped, HTTPClient, HTTPClientError, ReadTimeout, Response
from ...net.redact import redact_text, redact_url
from ...net.retry import backoff_delay, retry_after_seconds
from .disk import _DiskError, _DiskWorkers, _write_chunk
from .file_writer import (
    HASH_LABEL,
    PART_FLAGS,
    open_part,
    unlink_quietly,
    write_small,
)
from .http_helpers import (
    _header_lines,
    _human,
    _origin,
    _parse_content_range,
    _reason,
    _strip_key,
    _user_agent,
    _validator,
)
from .resume import _contiguous, _read_meta, _write_meta
from .spec import TransferOutcome, TransferSpec
from .verify import (
    _expected_digest,
    _hash_file_async,
)

log = logging.getLogger(__name__)

RETRY_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS: Final = 5
#: Backoff never waits longer than this between two attempts (Retry-After may ask for more).
BACKOFF_CAP: Final = 30.0
#: Size or checksum mismatches are retried from scratch at most this many times in total.
MAX_MISMATCHES: Final = 3
_DISK_FULL: Final = frozenset({errno.ENOSPC, errno.EDQUOT})


class _Retry(Exception):
    """A transient failure: try again later (or at once when ``delay == 0``)."""

    def __init__(self, reason: str, *, status: int | None = None, delay: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.delay = delay


class _Mismatch(_Retry):
    """The bytes are not what the catalogue or the server promised: start over (bounded)."""


class _Fail(Exception):
    """A failure not worth retrying in this run."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        permanent: bool = True,
        disk_full: bool = False,
    ):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.permanent = permanent
        self.disk_full = disk_full


class _CallbackError(Exception):
    """A caller's callback raised: the run stops and re-raises the original exception."""

    def __init__(self, exc: Exception) -> None:
        super().__init__(repr(exc))
        self.exc = exc


def _network_reason(exc: BaseException) -> str:
    if isinstance(exc, HTTPClientError):
        return str(exc)
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


@dataclass(slots=True)
class _Job:
    spec: TransferSpec
    dest: str = ""
    attempts: int = 0
    retries: int = 0
    mismatches: int = 0
    first_start: float = -1.0
    waited: float = 0.0
    resumed_from: int = 0
    fresh: bool = False  # next attempt ignores any .part (starts at byte 0)
    status: int | None = None
    etag: str | None = None
    last_modified: str | None = None


def _failed(
    job: _Job, reason: str, status: int | None, permanent: bool, disk_full: bool = False
) -> TransferOutcome:
    part = os.fspath(job.spec.dest) + ".part"
    try:
        kept = os.stat(part).st_size
    except OSError:
        kept = 0
    return TransferOutcome(
        job.spec, False, kept, status if status is not None else job.status, job.etag,
        job.last_modified, redact_text(reason), permanent, job.attempts, job.retries,
        job.resumed_from, disk_full,
    )  # fmt: skip


class FileAttempts:
    """The settings of a :class:`~.engine.TransferEngine` and what it does for one file."""

    def __init__(
        self,
        *,
        workers: int = 64,
        per_host: int | None = None,
        connect_timeout: float = 10,
        read_timeout: float = 60,
        max_attempts: int = 8,
        max_retry_time: float = 300,
        backoff: float = 0.25,
        chunk_size: int = 1 << 20,
        headers: Mapping[str, str] | None = None,
        if_exists: str = "resume",
    ) -> None:
        if if_exists not in ("resume", "skip", "overwrite"):
            raise ValueError(
                f"if_exists must be 'resume', 'skip' or 'overwrite', not {if_exists!r}"
            )
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.per_host = per_host or workers
        self.connect_timeout = float(connect_timeout)
        self.read_timeout = float(read_timeout)
        self.max_attempts = max(1, max_attempts)
        self.max_retry_time = float(max_retry_time)
        self.backoff = float(backoff)
        self.chunk_size = max(64 * 1024, int(chunk_size))
        self.headers: dict[str, str] = dict(headers or {})
        self.if_exists = if_exists
        self._same_origin_headers = _header_lines(self.headers, cross_origin=False)
        self._cross_origin_headers = _header_lines(self.headers, cross_origin=True)
        self._user_agent = _user_agent(self.headers)
        #: TLS settings for https URLs (``None``: verify against certifi's or the system's CAs).
        self.ssl_context: ssl.SSLContext | None = None

    def _client(self) -> HTTPClient:
        return HTTPClient(
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            per_host=self.per_host,
            chunk_size=self.chunk_size,
            user_agent=self._user_agent,
            ssl_context=self.ssl_context,
        )

    # -- one attempt ----------------------------------------------------------------------------
    def _done_already(self, spec: TransferSpec) -> TransferOutcome | None:
        """The outcome for a ``dest`` that needs no request, per ``if_exists``."""
        mode = self.if_exists
        if mode == "overwrite":
            return None
        dest = os.fspath(spec.dest)
        try:
            size = os.stat(dest).st_size
        except (FileNotFoundError, NotADirectoryError):
            return None
        if mode == "resume":
            if spec.size is not None and size != spec.size:
                return None
            if os.path.exists(dest + ".part"):
                return None  # a newer download is under way: finish it
        return TransferOutcome(spec, True, size, None, None, None, None, False, 0, 0, 0)

    async def _attempt(
        self,
        client: HTTPClient,
        job: _Job,
        on_bytes: Callable[[int], None] | None,
        disk: _DiskWorkers | None = None,
    ) -> TransferOutcome:
        spec = job.spec
        dest = job.dest or os.fspath(spec.dest)
        part = dest + ".part"
        meta_path = part + ".meta"
        offset = 0
        validator: str | None = None
        known_total: int | None = None
        had_part = False
        if job.fresh:
            job.fresh = False
            had_part = True  # whatever is there is stale
        elif spec.absent and job.attempts == 0:
            pass  # the caller checked: neither the file nor a .part is there
        else:
            try:
                psize = os.stat(part).st_size
                had_part = True
            except (FileNotFoundError, NotADirectoryError):
                psize = -1
            if psize > 0:
                offset, validator, known_total = self._resume_point(spec, part, meta_path, psize)
        job.resumed_from = offset

        extra = ""
        if offset:
            extra = f"Range: bytes={offset}-\r\nIf-Range: {validator}\r\n"
        resp = await self._get(client, spec.url, extra, job)
        return await self._handle(job, resp, offset, known_total, had_part, on_bytes, disk)

    async def _handle(
        self,
        job: _Job,
        resp: Response,
        offset: int,
        known_total: int | None,
        had_part: bool,
        on_bytes: Callable[[int], None] | None,
        disk: _DiskWorkers | None = None,
    ) -> TransferOutcome:
        """Turn the answer to a GET (from ``offset``) into a verified file or an error."""
        spec = job.spec
        dest = job.dest or os.fspath(spec.dest)
        part = dest + ".part"
        meta_path = part + ".meta"
        status = resp.status
        job.status = status
        headers = resp.headers
        if status == 416 and offset:
            resp.discard()
            cr = _parse_content_range(headers.get("content-range"))
            if cr is not None and cr[2] == offset and known_total in (None, offset):
                # the .part was already complete (interrupted before the rename)
                return await self._finish(job, part, meta_path, offset, 416, None, None)
            unlink_quietly(part)
            unlink_quietly(meta_path)
            job.resumed_from = 0
            raise _Retry("range not satisfiable; restarting the file", status=416, delay=0.0)
        if status != 200 and status != 206:
            resp.discard()
            reason = _reason(resp)
            if status in RETRY_STATUSES:
                raise _Retry(
                    reason, status=status, delay=retry_after_seconds(headers.get("retry-after"))
                )
            raise _Fail(reason, status=status)

        etag = headers.get("etag")
        last_modified = headers.get("last-modified")
        job.etag = etag
        job.last_modified = last_modified
        if status == 206:
            cr = _parse_content_range(headers.get("content-range"))
            if not offset or cr is None or cr[0] != offset:
                resp.discard()
                job.fresh = True
                job.resumed_from = 0
                raise _Retry("server sent an unexpected range; restarting the file", delay=0.0)
            start = offset
            total = cr[2]
            if total is None and resp.length is not None:
                total = offset + resp.length
        else:
            start = 0
            total = resp.length
            if offset:
                log.debug("%s: full body instead of a range; restarting", redact_url(spec.url))
                job.resumed_from = 0
        if spec.size is not None and total is not None and total != spec.size:
            resp.discard()
            self._discard_part(part, meta_path, had_part)
            raise _Mismatch(
                f"size mismatch: server sends {total:,} bytes, expected {spec.size:,}",
                status=status,
            )
        if known_total is not None and total is not None and total != known_total:
            resp.discard()
            job.fresh = True
            job.resumed_from = 0
            raise _Retry("remote size changed; restarting the file", status=status, delay=0.0)

        md5_header = headers.get("content-md5") if status == 200 else None
        body = resp.body
        if body is not None and start == 0:
            # small body, complete in memory: verified and written by the helper (or a thread)
            if spec.size is not None and len(body) != spec.size:
                raise _Mismatch(f"size mismatch: got {len(body):,} bytes, expected {spec.size:,}")
            meta = meta_path if had_part else None
            expected = _expected_digest(spec)
            if disk is not None:
                failure = await disk.write_small((part, dest, body, meta, expected, md5_header))
            else:
                failure = write_small(part, dest, body, meta, expected, md5_header)
            if failure is not None:
                what, code, text = failure
                if what == "mismatch":
                    raise _Mismatch(text)
                if what == "move" and code not in _DISK_FULL:
                    raise _Fail(f"cannot move the download to {dest}: {text}")
                raise self._disk_failure(OSError(code, text), spec, part, meta_path, len(body))
            if on_bytes is not None:
                on_bytes(len(body))
            return TransferOutcome(
                spec, True, len(body), status, etag, last_modified, None, False,
                job.attempts, job.retries, 0,
            )  # fmt: skip
        return await self._stream(
            job, resp, part, meta_path, start, total, _expected_digest(spec), md5_header,
            had_part, on_bytes, disk,
        )  # fmt: skip

    def _resume_point(
        self, spec: TransferSpec, part: str, meta_path: str, psize: int
    ) -> tuple[int, str | None, int | None]:
        """Where to resume an existing ``.part``: ``(offset, If-Range validator, total)``."""
        meta = _read_meta(meta_path)
        if meta is None or meta.get("url") != spec.url:
            return 0, None, None
        validator = _validator(meta.get("etag"), meta.get("last_modified"))
        if validator is None:
            return 0, None, None
        total = meta.get("size")
        if not isinstance(total, int) or total < 0:
            total = None
        if spec.size is not None and total is not None and total != spec.size:
            return 0, None, None
        offset = psize
        if "ranges" in meta:  # written by a parallel-range download: keep the solid prefix
            offset = min(psize, _contiguous(meta["ranges"]))
            if offset < psize:
                try:
                    os.truncate(part, offset)
                except OSError:
                    return 0, None, None
                with contextlib.suppress(OSError):
                    _write_meta(meta_path, {k: v for k, v in meta.items() if k != "ranges"})
        if total is not None and offset > total:
            return 0, None, None
        if offset <= 0:
            return 0, None, None
        return offset, validator, total

    async def _get(self, client: HTTPClient, url: str, extra: str, job: _Job) -> Response:
        """GET ``url`` following redirects (credentials and ``key`` stay on the first origin)."""
        origin: tuple[str, str, int | None] | None = None
        current = url
        for hop in range(MAX_REDIRECTS + 1):
            if hop == 0:
                same = True
            else:
                if origin is None:
                    origin = _origin(url)
                same = _origin(current) == origin
            if not same:
                current = _strip_key(current)
            lines = (self._same_origin_headers if same else self._cross_origin_headers) + extra
            job.attempts += hop == 0
            try:
                resp = await client.request(current, lines)
            except ssl.SSLCertVerificationError as exc:
                raise _Fail(f"TLS certificate verification failed: {exc.verify_message}") from None
            except (HTTPClientError, OSError) as exc:
                raise _Retry(_network_reason(exc)) from None
            if resp.status not in REDIRECT_STATUSES:
                return resp
            location = resp.headers.get("location")
            resp.discard()
            if not location:
                raise _Fail(f"HTTP {resp.status} redirect without a Location", status=resp.status)
            current = urljoin(current, location)
            if urlsplit(current).scheme.lower() not in ("http", "https"):
                raise _Fail("redirect to a non-HTTP URL", status=resp.status)
        raise _Fail(f"more than {MAX_REDIRECTS} redirects", status=job.status)

    async def _stream(
        self,
        job: _Job,
        resp: Response,
        part: str,
        meta_path: str,
        start: int,
        total: int | None,
        expected: tuple[str, bytes] | None,
        md5_header: str | None,
        had_part: bool,
        on_bytes: Callable[[int], None] | None,
        disk: _DiskWorkers | None,
    ) -> TransferOutcome:
        spec = job.spec
        try:
            fd = open_part(part, PART_FLAGS | (os.O_TRUNC if start == 0 else 0))
        except OSError as exc:
            resp.discard()
            raise self._disk_failure(exc, spec, part, meta_path, total) from None
        pos = start
        last: list[asyncio.Future[None]] = []
        try:
            try:
                if start == 0:
                    if job.etag or job.last_modified:
                        meta = {
                            "url": spec.url,
                            "etag": job.etag,
                            "last_modified": job.last_modified,
                            "size": total,
                        }
                        _write_meta(meta_path, meta)
                    elif had_part:
                        unlink_quietly(meta_path)
            except OSError as exc:
                resp.discard()
                raise self._disk_failure(exc, spec, part, meta_path, total) from None
            hasher = None
            if expected is not None:
                hasher = (
                    hashlib.new(expected[0])
                    if start == 0
                    else await _hash_file_async(part, expected[0], start)
                )
            md5 = hashlib.md5() if md5_header and expected is None else None
            # Big bodies that must be hashed are written and hashed by a disk thread while the
            # next slice arrives (the connection double-buffers and waits for each write in
            # turn). Without hashing, inline writes measured faster: a thread hand-off per
            # slice costs more than the pwrite itself.
            threaded = (
                disk is not None
                and (hasher is not None or md5 is not None)
                and (total is None or total - start >= 2 * self.chunk_size)
            )

            def sink(view: memoryview) -> asyncio.Future[None] | None:
                nonlocal pos
                offset = pos
                pos += len(view)
                if on_bytes is not None:
                    on_bytes(len(view))
                if threaded:
                    assert disk is not None
                    fut = disk.submit(_write_chunk, fd, view, offset, hasher, md5)
                    last[:] = [fut]
                    return fut
                _write_chunk(fd, view, offset, hasher, md5)
                return None

            try:
                await resp.read_into(sink)
            except _DiskError as exc:
                raise self._disk_failure(exc.exc, spec, part, meta_path, total) from None
            except (HTTPClientError, OSError) as exc:
                if pos > start and not (job.etag or job.last_modified):
                    job.fresh = True  # nothing to validate a resume with
                if isinstance(exc, ConnectionDropped) and exc.expected is not None:
                    got = pos if total is not None else exc.received
                    of = total if total is not None else exc.expected
                    raise _Retry(f"connection dropped after {got:,} of {of:,} bytes") from None
                if isinstance(exc, ReadTimeout):
                    raise _Retry(f"{exc} after {pos:,} bytes") from None
                raise _Retry(_network_reason(exc)) from None
        finally:
            if last and not last[0].done():  # cancelled mid-write: close once it is done
                last[0].add_done_callback(lambda _: os.close(fd))
            else:
                os.close(fd)
        if total is not None and pos != total:
            raise _Retry(f"connection dropped after {pos:,} of {total:,} bytes")
        if (
            md5 is not None
            and md5_header
            and base64.b64encode(md5.digest()).decode() != md5_header.strip()
        ):
            self._discard_part(part, meta_path, True)
            raise _Mismatch("Content-MD5 mismatch", status=job.status)
        return await self._finish(job, part, meta_path, pos, job.status, hasher, expected)

    async def _finish(
        self,
        job: _Job,
        part: str,
        meta_path: str,
        size: int,
        status: int | None,
        hasher: Any,
        expected: tuple[str, bytes] | None = None,
    ) -> TransferOutcome:
        """Verify a complete ``.part`` against the spec, then rename it into place."""
        spec = job.spec
        if spec.size is not None and size != spec.size:
            self._discard_part(part, meta_path, True)
            raise _Mismatch(f"size mismatch: got {size:,} bytes, expected {spec.size:,}")
        if expected is None:
            expected = _expected_digest(spec)
        if expected is not None:
            if hasher is None:
                hasher = await _hash_file_async(part, expected[0], -1)
            if hasher.digest() != expected[1]:
                self._discard_part(part, meta_path, True)
                raise _Mismatch(f"checksum mismatch ({HASH_LABEL.get(expected[0], expected[0])})")
        self._publish(part, os.fspath(spec.dest))
        unlink_quietly(meta_path)
        return TransferOutcome(
            spec, True, size, status, job.etag, job.last_modified, None, False,
            job.attempts, job.retries, job.resumed_from,
        )  # fmt: skip

    def _publish(self, part: str, dest: str) -> None:
        try:
            os.replace(part, dest)
        except OSError as exc:
            unlink_quietly(part)
            if exc.errno in _DISK_FULL:
                spec = TransferSpec("", Path(dest))
                raise self._disk_failure(exc, spec, part, "", None) from None
            raise _Fail(f"cannot move the download to {dest}: {exc.strerror or exc}") from None

    @staticmethod
    def _discard_part(part: str, meta_path: str, had_part: bool) -> None:
        if had_part:
            unlink_quietly(part)
            unlink_quietly(meta_path)

    @staticmethod
    def _disk_failure(
        exc: OSError, spec: TransferSpec, part: str, meta_path: str, total: int | None
    ) -> _Fail:
        unlink_quietly(part)
        unlink_quietly(meta_path)
        dest = os.fspath(spec.dest)
        need = total if total is not None else spec.size
        if exc.errno in _DISK_FULL:
            what = "disk full" if exc.errno == errno.ENOSPC else "disk quota exceeded"
            needs = f" (needs {_human(need)})" if need is not None else ""
            return _Fail(f"{what} writing {dest}{needs}", disk_full=True)
        return _Fail(f"cannot write {dest}: {exc.strerror or exc}")

    def _retry_delay(
        self,
        job: _Job,
        exc: _Retry,
        now: float,
        on_retry: Callable[[TransferSpec, str, float], None] | None,
    ) -> float | TransferOutcome:
        """Seconds to wait before the next attempt, or the final outcome when giving up."""
        if isinstance(exc, _Mismatch):
            job.mismatches += 1
            job.fresh = True
            if job.mismatches >= min(MAX_MISMATCHES, self.max_attempts):
                return _failed(job, exc.reason, exc.status, True)
        delay = exc.delay
        if delay is None:
            delay = backoff_delay(job.attempts, self.backoff, BACKOFF_CAP)
        elapsed = now - job.first_start
        if job.attempts >= self.max_attempts:
            reason = f"{exc.reason} (gave up after {job.attempts} attempts)"
            return _failed(job, reason, exc.status, False)
        if elapsed + delay > self.max_retry_time:
            reason = f"{exc.reason} (gave up after {elapsed:.0f}s)"
            if exc.delay and exc.delay > self.max_retry_time:
                reason = f"{exc.reason} (Retry-After {exc.delay:.0f}s is too long)"
            return _failed(job, reason, exc.status, False)
        job.retries += 1
        log.debug(
            "retry %d of %s in %.2fs: %s", job.retries, redact_url(job.spec.url), delay, exc.reason
        )
        if on_retry is not None:
            on_retry(job.spec, redact_text(exc.reason), delay)
        return delay
