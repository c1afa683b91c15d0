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
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import unquote, urlsplit

from ...exceptions import MLHubException, NetworkError
from ...net.http import Credentials, HttpClient, Origin, origin_of
from ...net.objects import is_object_url
from ...net.redact import redact_text, redact_url
from ...net.retry import RETRY_STATUSES, RetryPolicy, retry_after_seconds
from ...net.settings import NetworkSettings
from ...units import human_bytes
from .disk import _DiskError, _DiskWorkers, _write_chunk
from .fetchers import FetchedResponse, ObjectFetcher
from .files import HASH_LABEL, PART_FLAGS, open_part, unlink_quietly, write_small
from .http_helpers import _parse_content_range, _reason, _validator
from .resume import _contiguous, _read_meta, _write_meta
from .spec import Destination, TransferOutcome, TransferSpec
from .verify import (
    _expected_digest,
    _hash_file_async,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: Bodies up to this size are read whole, then verified and written in one go by a disk thread;
#: larger ones stream to ``.part`` (and can be resumed when cut).
SMALL_BODY: Final = 256 * 1024
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
    resigned: bool = False  # a refused signed URL was signed again once


def file_url_path(url: str) -> str:
    """The local path of a ``file://`` URL."""
    return unquote(urlsplit(url).path)


def unfetchable_reason(href: str) -> str:
    """Why the engine cannot fetch ``href`` (a failed asset's reason in ``err_report.csv``)."""
    if not href:
        return "the asset has no href"
    scheme, sep, _ = href.partition("://")
    if sep and scheme.replace("+", "").replace("-", "").replace(".", "").isalnum():
        return f"cannot fetch {scheme}:// hrefs ({redact_url(href)})"
    return f"relative href {redact_url(href)!r} has no base URL to resolve it against"


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
        credentials: Iterable[Credentials] = (),
        network: NetworkSettings | None = None,
        sign: Callable[[str], str] | None = None,
        if_exists: str = "resume",
        storage_options: Mapping[str, Any] | None = None,
        destination: Destination | None = None,
    ) -> None:
        if if_exists not in ("resume", "skip", "overwrite"):
            raise ValueError(
                f"if_exists must be 'resume', 'skip' or 'overwrite', not {if_exists!r}"
            )
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.per_host = per_host or workers
        if network is None:
            network = NetworkSettings(
                connect_timeout=float(connect_timeout),
                read_timeout=float(read_timeout),
                retry=RetryPolicy(
                    max_attempts=max(1, max_attempts),
                    backoff=float(backoff),
                    backoff_cap=BACKOFF_CAP,
                    max_retry_time=float(max_retry_time),
                ),
            )
        #: proxy, TLS, timeouts and the retry policy of every request
        self.network = network
        self.retry = network.retry
        self.max_attempts = network.retry.max_attempts
        self.chunk_size = max(64 * 1024, int(chunk_size))
        self.if_exists = if_exists
        #: per origin, what may be sent to it (an API key, a source's headers)
        self.credentials: dict[Origin, Credentials] = {c.origin: c for c in credentials}
        #: gives a freshly signed URL for an asset href (a source's ``modifier``), or None
        self.sign = sign
        #: GETs of object URLs (``s3://``, ``gs://``, ``az://``): obstore, these options
        self.objects = ObjectFetcher(storage_options, network)
        #: where verified files go instead of their ``dest`` (an object store), or None
        self.destination = destination

    def _client(self) -> HttpClient:
        return HttpClient(
            self.network,
            limit=max(self.workers, self.per_host),
            limit_per_host=self.per_host,
        )

    # -- one attempt ----------------------------------------------------------------------------
    def _done_already(self, spec: TransferSpec) -> TransferOutcome | None:
        """The outcome for a ``dest`` that needs no request, per ``if_exists``."""
        mode = self.if_exists
        if mode == "overwrite":
            return None
        dest = os.fspath(spec.dest)
        if self.destination is not None:
            there = self.destination.size_of(dest)
            if there is None or (mode == "resume" and spec.size not in (None, there)):
                return None
            return TransferOutcome(spec, True, there, None, None, None, None, False, 0, 0, 0)
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
        client: HttpClient,
        job: _Job,
        on_bytes: Callable[[int], None] | None,
        disk: _DiskWorkers | None = None,
    ) -> TransferOutcome:
        spec = job.spec
        if self.destination is not None and spec.url.startswith("file://"):
            return await self._upload_local(job, on_bytes)
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

        extra = {"Range": f"bytes={offset}-", "If-Range": validator or ""} if offset else None
        url = spec.url
        if self.sign is not None:
            url = await self._signed(url)
        resp = await self._get(client, url, extra, job)
        return await self._handle(job, resp, offset, known_total, had_part, on_bytes, disk)

    async def _handle(
        self,
        job: _Job,
        resp: FetchedResponse,
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
            resp.release()
            cr = _parse_content_range(headers.get("content-range"))
            if cr is not None and cr[2] == offset and known_total in (None, offset):
                # the .part was already complete (interrupted before the rename)
                return await self._finish(job, part, meta_path, offset, 416, None, None)
            unlink_quietly(part)
            unlink_quietly(meta_path)
            job.resumed_from = 0
            raise _Retry("range not satisfiable; restarting the file", status=416, delay=0.0)
        if status != 200 and status != 206:
            resp.release()
            reason = _reason(resp)
            if status in (401, 403) and self.sign is not None and not job.resigned:
                job.resigned = True  # the signature was refused or has expired: sign again once
                raise _Retry(f"{reason}; signing the URL again", status=status, delay=0.0)
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
                resp.release()
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
            resp.release()
            self._discard_part(part, meta_path, had_part)
            raise _Mismatch(
                f"size mismatch: server sends {total:,} bytes, expected {spec.size:,}",
                status=status,
            )
        if known_total is not None and total is not None and total != known_total:
            resp.release()
            job.fresh = True
            job.resumed_from = 0
            raise _Retry("remote size changed; restarting the file", status=status, delay=0.0)

        md5_header = headers.get("content-md5") if status == 200 else None
        if total is None:
            total = spec.size  # a chunked body must still stop at the catalogue's size
        if start == 0 and resp.length is not None and resp.length <= SMALL_BODY:
            try:
                body = await resp.read(resp.length)
            except NetworkError as exc:
                raise _Retry(str(exc)) from None
            # small body, complete in memory: verified and written by a disk thread (or inline)
            if spec.size is not None and len(body) != spec.size:
                raise _Mismatch(f"size mismatch: got {len(body):,} bytes, expected {spec.size:,}")
            meta = meta_path if had_part else None
            expected = _expected_digest(spec)
            if self.destination is not None:
                put = self.destination.put_small(dest, body, expected, md5_header)
                mismatch = await self._upload(put)
                if mismatch is not None:
                    raise _Mismatch(mismatch)
                if meta is not None:
                    unlink_quietly(meta)
                failure = None
            elif disk is not None:
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

    async def _signed(self, href: str) -> str:
        """``href`` signed by :attr:`sign` (in a thread: a signer may fetch a token)."""
        assert self.sign is not None
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, self.sign, href)
        except Exception as exc:
            raise _Fail(f"cannot sign the URL: {type(exc).__name__}: {exc}") from None

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

    async def _get(
        self, client: HttpClient, url: str, extra: dict[str, str] | None, job: _Job
    ) -> FetchedResponse:
        """GET ``url``: over HTTP(S) following redirects (see :meth:`HttpClient.send`:
        credentials stay on their origin at every hop), or from an object store
        (:class:`~.fetchers.ObjectFetcher`: the same answer for ``s3://``, ``gs://``, ``az://``)."""
        job.attempts += 1
        try:
            if not url.startswith(("https://", "http://")):
                if not is_object_url(url):
                    raise _Fail(unfetchable_reason(url))
                return await self.objects.send(url, extra, job.spec.size, client)
            credentials = self.credentials.get(origin_of(url)) if self.credentials else None
            return await client.send(url, credentials=credentials, headers=extra)
        except NetworkError as exc:
            if exc.retryable:
                raise _Retry(str(exc)) from None
            raise _Fail(str(exc)) from None

    async def _stream(
        self,
        job: _Job,
        resp: FetchedResponse,
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
            fd = open_part(part, PART_FLAGS | (os.O_TRUNC if start == 0 else 0), start)
        except OSError as exc:
            resp.release()
            raise self._disk_failure(exc, spec, part, meta_path, total) from None
        pos = start
        pending: asyncio.Future[None] | None = None
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
                resp.release()
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
            # next slice arrives (one write in flight per file, so writes stay in order).
            # Without hashing, inline writes measured faster than a thread hand-off per slice.
            threaded = (
                disk is not None
                and (hasher is not None or md5 is not None)
                and (total is None or total - start >= 2 * self.chunk_size)
            )
            chunks: list[bytes] = []
            buffered = 0
            slice_size = self.chunk_size
            try:
                async for chunk in resp.iter_chunks():
                    if total is not None and pos + buffered + len(chunk) > total:
                        resp.release()
                        raise _Mismatch(
                            f"size mismatch: the server sent more than {total:,} bytes",
                            status=job.status,
                        )
                    chunks.append(chunk)
                    buffered += len(chunk)
                    if buffered < slice_size:
                        continue
                    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                    chunks.clear()
                    pos += buffered
                    buffered = 0
                    if on_bytes is not None:
                        on_bytes(len(data))
                    if threaded:
                        assert disk is not None
                        if pending is not None:
                            await pending
                        pending = disk.submit(_write_chunk, fd, data, hasher, md5)
                    else:
                        _write_chunk(fd, data, hasher, md5)
                if chunks:
                    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                    pos += buffered
                    if on_bytes is not None:
                        on_bytes(len(data))
                    if pending is not None:
                        await pending
                        pending = None
                    _write_chunk(fd, data, hasher, md5)
                if pending is not None:
                    await pending
                    pending = None
            except _DiskError as exc:
                raise self._disk_failure(exc.exc, spec, part, meta_path, total) from None
            except NetworkError as exc:
                if chunks:  # what did arrive is a valid prefix: keep it for the resume
                    if pending is not None:
                        await pending
                        pending = None
                    with contextlib.suppress(_DiskError):
                        _write_chunk(fd, b"".join(chunks), hasher, md5)
                        pos += buffered
                if pos > start and not (job.etag or job.last_modified):
                    job.fresh = True  # nothing to validate a resume with
                of = f" of {total:,}" if total is not None else ""
                raise _Retry(f"{exc} (after {pos - start:,}{of} bytes)") from None
        finally:
            if pending is not None and not pending.done():  # cancelled mid-write
                pending.add_done_callback(lambda _: os.close(fd))
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
        if self.destination is not None:
            await self._upload(self.destination.publish(part, os.fspath(spec.dest), size))
        else:
            self._publish(part, os.fspath(spec.dest))
        unlink_quietly(meta_path)
        return TransferOutcome(
            spec, True, size, status, job.etag, job.last_modified, None, False,
            job.attempts, job.retries, job.resumed_from,
        )  # fmt: skip

    async def _upload(self, work: Coroutine[Any, Any, _T]) -> _T:
        """Await a write to the :attr:`destination`; its failures become the file's: retried
        when trying again may help (a dropped connection, a 503), else final."""
        job_error: MLHubException
        try:
            return await work
        except NetworkError as exc:
            if exc.retryable:
                raise _Retry(f"upload failed: {exc}") from None
            job_error = exc
        except MLHubException as exc:
            job_error = exc
        status = getattr(job_error, "status_code", None)
        if isinstance(status, int) and status in RETRY_STATUSES:
            raise _Retry(f"upload failed: {job_error}", status=status)
        raise _Fail(f"upload failed: {job_error}", status=status)

    async def _upload_local(
        self, job: _Job, on_bytes: Callable[[int], None] | None
    ) -> TransferOutcome:
        """A local file (``file://`` spec) copied to the :attr:`destination` as it is."""
        assert self.destination is not None
        spec = job.spec
        job.attempts += 1
        path = file_url_path(spec.url)
        try:
            size = os.stat(path).st_size
        except OSError as exc:
            raise _Fail(f"cannot read {path}: {exc.strerror or exc}") from None
        if spec.size is not None and size != spec.size:
            raise _Fail(f"{path} changed: {size:,} bytes, listed with {spec.size:,}")
        await self._upload(self.destination.upload_file(path, os.fspath(spec.dest), size))
        if on_bytes is not None:
            on_bytes(size)
        return TransferOutcome(
            spec, True, size, 200, None, None, None, False, job.attempts, job.retries, 0
        )

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
            needs = f" (needs {human_bytes(need)})" if need is not None else ""
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
        elapsed = now - job.first_start
        decision = self.retry.next_delay(job.attempts, elapsed, exc.delay)
        if isinstance(decision, str):
            return _failed(job, f"{exc.reason} ({decision})", exc.status, False)
        delay = decision
        job.retries += 1
        log.debug(
            "retry %d of %s in %.2fs: %s", job.retries, redact_url(job.spec.url), delay, exc.reason
        )
        if on_retry is not None:
            on_retry(job.spec, redact_text(exc.reason), delay)
        return delay
