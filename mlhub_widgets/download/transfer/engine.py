"""The transfer engine: moves asset bytes from HTTP(S) to disk, fast and never corrupt.

:class:`TransferEngine` runs inside an asyncio event loop and downloads many files at once over
keep-alive connections (one pool per origin, see :mod:`mlhub_widgets.net.http11`). Every file goes
through the same safe path:

* bytes are written to ``dest.part`` and renamed to ``dest`` only after the byte count matches
  ``Content-Length``, the catalogue's ``file:size`` and ``file:checksum`` (multihash: sha2-256,
  md5, sha1, sha2-512, …) and the server's ``Content-MD5`` when it sends one;
* a large body records its validator (ETag / Last-Modified) in ``dest.part.meta`` before its
  first byte is written, so an interrupted file (even by ``kill -9``) is resumed with
  ``Range`` + ``If-Range``; a server that answers ``200`` instead of ``206`` (the remote file
  changed, or no range support) restarts the file from byte 0 — two versions are never spliced;
* connection errors, timeouts, short bodies, 429 (``Retry-After``) and 500/502/503/504 are retried
  with exponential backoff and jitter, within ``max_attempts`` and ``max_retry_time`` per file,
  without holding a worker slot while waiting; 400/401/403/404/410 fail at once;
* redirects are followed (at most 5); the ``key`` query parameter and credentials headers never
  go to another origin;
* a full disk fails that file with a clear message and removes its ``.part``.

:func:`download_file` is the synchronous one-file convenience (catalogue tarballs, collection
archives); with ``parallel_ranges > 1`` it fetches one large file as concurrent ranges.

Where the time goes: the HTTP work (~50 µs of CPU per small file) runs in the event loop;
small bodies are verified, written and renamed by a helper process (:mod:`.file_writer`, from
the :data:`WRITER_PROCESS_AFTER`-th file of a run; disk threads before that or when it cannot
run), because a file create costs from ~10 µs on tmpfs to several hundred µs on a busy ext4 and
must not stall the other connections, and disk threads hand the GIL back and forth with the
loop on every system call. Streamed bodies are written by the disk threads
(:data:`DISK_THREADS`). Bodies above 2 × ``chunk_size`` that must be
hashed are double-buffered: a disk thread writes and hashes one slice while the connection
receives the next (without a checksum to compute, writing inline from the event loop measured
faster).

Limitations: HTTP/1.1 only (no HTTP/2, no pipelining), no proxy support (``HTTPS_PROXY`` and
friends are ignored), no ``fsync`` (a power loss may lose recently renamed files; a killed
process does not), ``Content-Encoding`` is refused by asking for ``identity``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import hashlib
import json
import logging
import os
import queue
import ssl
import threading
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final, Literal, TypeVar
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from ...config.session import USER_AGENT, backoff_delay, retry_after_seconds
from ...net.http11 import ConnectionDropped, HTTPClient, HTTPClientError, ReadTimeout, Response
from ...net.redact import redact_text, redact_url
from .file_writer import (
    HASH_LABEL,
    PART_FLAGS,
    Failure,
    WriteArgs,
    WriterProcess,
    open_part,
    unlink_quietly,
    write_all,
    write_small,
)

__all__ = [
    "TransferControl",
    "TransferEngine",
    "TransferOutcome",
    "TransferSpec",
    "download_file",
    "fetch_file",
    "parse_checksum",
]

log = logging.getLogger(__name__)
_R = TypeVar("_R")

IfExists = Literal["resume", "skip", "overwrite"]

RETRY_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS: Final = 5
#: Backoff never waits longer than this between two attempts (Retry-After may ask for more).
BACKOFF_CAP: Final = 30.0
#: Size or checksum mismatches are retried from scratch at most this many times in total.
MAX_MISMATCHES: Final = 3
#: Headers that never follow a redirect to another origin.
_CREDENTIAL_HEADERS: Final = frozenset({"authorization", "cookie", "proxy-authorization"})
_DISK_FULL: Final = frozenset({errno.ENOSPC, errno.EDQUOT})
#: Hashing of file prefixes larger than this runs in a thread, not in the event loop.
_HASH_INLINE_LIMIT: Final = 8 << 20

# multihash codes -> hashlib names (https://github.com/multiformats/multicodec)
_MULTIHASH: Final = {
    0x11: "sha1",
    0x12: "sha256",
    0x13: "sha512",
    0x14: "sha3_512",
    0x15: "sha3_384",
    0x16: "sha3_256",
    0x20: "sha384",
    0xD5: "md5",
}
_PLAIN_HEX: Final = {16: "md5", 20: "sha1", 32: "sha256", 64: "sha512"}


# ---------------------------------------------------------------------------------------------
# public data types
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# checksums
# ---------------------------------------------------------------------------------------------
def parse_checksum(text: str) -> tuple[str, bytes]:
    """Split a ``file:checksum`` value into ``(hashlib name, digest)``.

    Accepts multihash hex (``1220…`` sha2-256, ``d50110…`` md5, ``1114…`` sha1, ``1340…``
    sha2-512, sha3 and sha2-384) and, as a fallback, plain md5/sha1/sha256/sha512 hex.

    Raises:
        ValueError: not hex, or an unsupported hash function.
    """
    if len(text) == 68 and text.startswith("1220"):  # sha2-256, what MLHub catalogues use
        return "sha256", bytes.fromhex(text[4:])
    raw = bytes.fromhex(text.strip())
    code, pos = _varint(raw, 0)
    length, pos = _varint(raw, pos)
    name = _MULTIHASH.get(code) if code is not None else None
    if name is not None and length is not None and len(raw) - pos == length:
        return name, raw[pos:]
    plain = _PLAIN_HEX.get(len(raw))
    if plain is not None:
        return plain, raw
    raise ValueError(f"unsupported checksum {text[:16]!r}…")


def _varint(raw: bytes, pos: int) -> tuple[int | None, int]:
    value = shift = 0
    while pos < len(raw) and shift < 63:
        byte = raw[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None, pos


def _expected_digest(spec: TransferSpec) -> tuple[str, bytes] | None:
    if not spec.checksum:
        return None
    try:
        return parse_checksum(spec.checksum)
    except ValueError:
        log.warning("cannot verify %s: %s", spec.dest, f"unsupported checksum {spec.checksum!r}")
        return None


def _hash_file(path: str, name: str, end: int, chunk: int = 1 << 20) -> Any:
    """Hash the first ``end`` bytes of ``path`` (the whole file when ``end < 0``)."""
    hasher = hashlib.new(name)
    with open(path, "rb", buffering=0) as fh:
        remaining = end if end >= 0 else 1 << 62
        buf = bytearray(chunk)
        view = memoryview(buf)
        while remaining > 0:
            n = fh.readinto(view[: min(chunk, remaining)])
            if not n:
                break
            hasher.update(view[:n])
            remaining -= n
    return hasher


async def _hash_file_async(path: str, name: str, end: int) -> Any:
    if 0 <= end <= _HASH_INLINE_LIMIT:
        return _hash_file(path, name, end)
    return await asyncio.get_running_loop().run_in_executor(None, _hash_file, path, name, end)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _human(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:,.0f} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


def _strip_key(url: str) -> str:
    parts = urlsplit(url)
    if not parts.query or "key=" not in parts.query.lower():
        return url
    pairs = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() != "key"
    ]
    return urlunsplit(parts._replace(query=urlencode(pairs)))


def _header_lines(headers: Mapping[str, str] | None, *, cross_origin: bool) -> str:
    if not headers:
        return ""
    out = []
    for name, value in headers.items():
        low = name.lower()
        if low in ("host", "content-length", "transfer-encoding", "connection", "range"):
            continue
        if low in ("if-range", "accept-encoding", "user-agent"):
            continue
        if cross_origin and low in _CREDENTIAL_HEADERS:
            continue
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            raise ValueError(f"header {name!r} contains a line break")
        out.append(f"{name}: {value}\r\n")
    return "".join(out)


def _user_agent(headers: Mapping[str, str] | None) -> str:
    for name, value in (headers or {}).items():
        if name.lower() == "user-agent":
            return value
    return USER_AGENT


def _parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """``bytes a-b/N`` -> ``(a, b, N)``; ``bytes */N`` -> ``(-1, -1, N)``; else None."""
    if not value:
        return None
    unit, _, rest = value.strip().partition(" ")
    if unit.lower() != "bytes":
        return None
    span, _, total_text = rest.partition("/")
    total = int(total_text) if total_text.strip().isdigit() else None
    span = span.strip()
    if span == "*":
        return (-1, -1, total)
    first, _, last = span.partition("-")
    if not (first.isdigit() and last.isdigit()):
        return None
    return int(first), int(last), total


def _validator(etag: Any, last_modified: Any) -> str | None:
    """What to send in ``If-Range``: a strong ETag, else Last-Modified (weak ETags can't)."""
    if isinstance(etag, str) and etag and not etag.startswith("W/"):
        return etag
    if isinstance(last_modified, str) and last_modified:
        return last_modified
    return None


def _reason(resp: Response) -> str:
    phrase = resp.reason
    if not phrase:
        with contextlib.suppress(ValueError):
            phrase = HTTPStatus(resp.status).phrase
    return f"HTTP {resp.status} {phrase}".rstrip()


def _read_meta(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as fh:
            meta = json.loads(fh.read(65536))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _write_meta(path: str, meta: Mapping[str, Any]) -> None:
    data = json.dumps(meta, separators=(",", ":")).encode()
    tmp = path + ".tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(fd, data, 0)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        unlink_quietly(tmp)
        raise


def _contiguous(ranges: Any) -> int:
    """Length of the prefix ``[0, n)`` covered by a meta ``ranges`` list."""
    try:
        spans = sorted((int(a), int(b)) for a, b in ranges)
    except (TypeError, ValueError):
        return 0
    end = 0
    for a, b in spans:
        if a > end:
            break
        end = max(end, b)
    return end


# ---------------------------------------------------------------------------------------------
# blocking file-system work off the event loop
# ---------------------------------------------------------------------------------------------
#: Threads that create, write and rename small files. Creating a file costs from ~10 µs (tmpfs)
#: to several hundred µs (a busy ext4 on a virtual disk): done inline, it would stall every
#: connection of the loop; in threads, creates overlap with the network and with each other.
#: Two, not more: every extra thread multiplies GIL hand-offs (futex calls: ~2-9k per 3,000
#: files with 1-2 threads, 22-34k with 4) for no measurable gain on a 2-core machine.
DISK_THREADS: Final = 2


#: A run hands small files to a helper process (:mod:`.file_writer`) from this many on; fewer
#: are not worth starting an interpreter for. 10,000 small files: 2.12-2.22 s with threads,
#: 1.89-1.95 s with the helper (the disk threads' lock hand-offs stalled the event loop).
WRITER_PROCESS_AFTER: Final = 16

_DiskItem = tuple["asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


class _DiskWorkers:
    """A few threads for blocking file-system calls, with as few thread wake-ups as possible.

    Work goes to a shared deque that busy threads drain on their own; sleeping threads are woken
    once per event-loop iteration (not once per call), and only as many as there are new
    calls. Results come back to the loop once per batch. Every wake-up is a futex call and
    often a GIL hand-off that stalls the loop, so this matters more than it seems.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, threads: int = DISK_THREADS) -> None:
        self.loop = loop
        self.n = max(1, threads)
        self.items: deque[_DiskItem] = deque()
        self.wake: queue.SimpleQueue[bool] = queue.SimpleQueue()  # False: stop
        self.lock = threading.Lock()
        self.sleeping = 0  # threads waiting on ``wake`` that no token was sent to yet
        self.kick_scheduled = False
        self.done: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        self.threads: list[threading.Thread] = []
        self.small_files = 0
        self.writer: WriterProcess | None = None
        self.writer_failed = False

    def write_small(self, args: WriteArgs) -> asyncio.Future[Failure]:
        """:func:`.file_writer.write_small` in the helper process (threads for the first few
        files of a run, or when the helper cannot run)."""
        writer = self.writer
        if writer is None:
            self.small_files += 1
            if self.small_files >= WRITER_PROCESS_AFTER and not self.writer_failed:
                try:
                    writer = self.writer = WriterProcess.spawn(self.loop, self._write_in_thread)
                except OSError as exc:
                    self.writer_failed = True
                    log.info("writing small files in threads: %s", exc)
            if writer is None:
                return self._write_in_thread(args)
        return writer.submit(args)

    def _write_in_thread(self, args: WriteArgs) -> asyncio.Future[Failure]:
        return self.submit(write_small, *args)

    def submit(self, fn: Callable[..., _R], *args: Any) -> asyncio.Future[_R]:
        """Run ``fn(*args)`` in a disk thread; the future resolves in the loop."""
        if not self.threads:
            for i in range(self.n):
                thread = threading.Thread(target=self._run, name=f"mlhub-disk-{i}", daemon=True)
                thread.start()
                self.threads.append(thread)
        fut: asyncio.Future[_R] = self.loop.create_future()
        self.items.append((fut, fn, args))
        if not self.kick_scheduled:
            self.kick_scheduled = True
            self.loop.call_soon(self._kick)
        return fut

    def _kick(self) -> None:
        """Wake sleeping threads for the calls submitted since the last kick (loop thread)."""
        self.kick_scheduled = False
        with self.lock:
            count = min(self.sleeping, len(self.items))
            self.sleeping -= count
        for _ in range(count):
            self.wake.put(True)

    def _run(self) -> None:
        items = self.items
        running = True
        while True:
            try:
                fut, fn, args = items.popleft()
            except IndexError:
                if not running:
                    return
                with self.lock:
                    if items:
                        continue
                    self.sleeping += 1
                running = self.wake.get()
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
        """Finish queued work and stop the threads and the helper process (blocks for
        in-flight file calls only)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        for _ in self.threads:
            self.wake.put(False)
        for thread in self.threads:
            thread.join()
        self.threads = []
        self._deliver()


def _write_chunk(fd: int, view: memoryview, offset: int, hasher: Any, md5: Any) -> None:
    """Write one slice of a streamed body at ``offset`` and feed the hashers."""
    try:
        write_all(fd, view, offset)
    except OSError as exc:
        raise _DiskError(exc) from None
    if hasher is not None:
        hasher.update(view)
    if md5 is not None:
        md5.update(view)


# ---------------------------------------------------------------------------------------------
# internal errors of one attempt
# ---------------------------------------------------------------------------------------------
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


class _DiskError(Exception):
    def __init__(self, exc: OSError) -> None:
        super().__init__(str(exc))
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


# ---------------------------------------------------------------------------------------------
# the engine
# ---------------------------------------------------------------------------------------------
class TransferEngine:
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
        headers: extra request headers (``Authorization``/``Cookie`` never cross origins).
        if_exists: what to do when ``dest`` already exists: ``"resume"`` (keep it when its size
            matches the expected size, or when no size is known; no request is made), ``"skip"``
            (keep it, whatever it is) or ``"overwrite"`` (fetch again).
    """

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

    def __repr__(self) -> str:
        return (
            f"<TransferEngine workers={self.workers} per_host={self.per_host} "
            f"if_exists={self.if_exists!r}>"
        )

    def _client(self) -> HTTPClient:
        return HTTPClient(
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            per_host=self.per_host,
            chunk_size=self.chunk_size,
            user_agent=self._user_agent,
            ssl_context=self.ssl_context,
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


# ---------------------------------------------------------------------------------------------
# one run of the engine: workers, deferred retries, pause/cancel
# ---------------------------------------------------------------------------------------------
class _Run:
    def __init__(
        self,
        engine: TransferEngine,
        client: HTTPClient,
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
            self.client.close()
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


# ---------------------------------------------------------------------------------------------
# one file: download_file / fetch_file, optionally as parallel ranges
# ---------------------------------------------------------------------------------------------
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
        engine: TransferEngine,
        client: HTTPClient,
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
        self.fd = -1

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
                self.client, self.spec.url, f"Range: bytes=0-{probe - 1}\r\n", job
            )
            if resp.status != 206:
                # no range support (200), an error or an empty file: the sequential path
                return await engine._handle(job, resp, 0, None, False, self.on_bytes)
            cr = _parse_content_range(resp.headers.get("content-range"))
            validator = _validator(resp.headers.get("etag"), resp.headers.get("last-modified"))
            if cr is None or cr[0] != 0 or cr[2] is None or not validator:
                resp.discard()  # cannot split safely: fetch it in one piece
                return await engine._attempt(self.client, job, self.on_bytes)
            self.total = cr[2]
            self.validator = validator
            job.etag = resp.headers.get("etag")
            job.last_modified = resp.headers.get("last-modified")
            job.status = 206
            if self.spec.size is not None and self.total != self.spec.size:
                resp.discard()
                raise _Mismatch(
                    f"size mismatch: server sends {self.total:,} bytes, "
                    f"expected {self.spec.size:,}",
                    status=206,
                )
            first_end = cr[1] + 1
            self.done = []
            segments = [(0, first_end), *_split([(first_end, self.total)], self.n - 1)]
            first: Response | None = resp
            job.resumed_from = 0
        else:
            missing = _holes(self.done, self.total)
            job.resumed_from = self.total - sum(b - a for a, b in missing)
            segments = _split(missing, self.n)
            first = None
        try:
            self.fd = open_part(self.part, PART_FLAGS | (0 if resumed else os.O_TRUNC))
        except OSError as exc:
            if first is not None:
                first.discard()
            raise engine._disk_failure(
                exc, self.spec, self.part, self.meta_path, self.total
            ) from None
        try:
            try:
                self._save(force=True)
            except _DiskError as exc:
                if first is not None:
                    first.discard()
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
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1
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

    async def _segment(self, i: int, a: int, b: int, resp: Response | None) -> None:
        """Fetch ``[a, b)`` into the ``.part``, retrying from where it stopped."""
        engine = self.engine
        job = self.job
        prog = self.progress.setdefault(i, [a, a])
        seg_job = _Job(self.spec, first_start=self.loop.time())
        while prog[1] < b:
            pos = prog[1]
            try:
                if resp is None:
                    extra = f"Range: bytes={pos}-{b - 1}\r\nIf-Range: {self.validator}\r\n"
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

    async def _receive(self, resp: Response, prog: list[int], b: int) -> None:
        status = resp.status
        if status == 200:
            resp.discard()
            raise _Restart()
        if status != 206:
            resp.discard()
            reason = _reason(resp)
            if status in RETRY_STATUSES:
                delay = retry_after_seconds(resp.headers.get("retry-after"))
                raise _Retry(reason, status=status, delay=delay)
            raise _Fail(reason, status=status)
        cr = _parse_content_range(resp.headers.get("content-range"))
        if cr is None or cr[0] != prog[1] or (cr[2] is not None and cr[2] != self.total):
            resp.discard()
            raise _Restart()
        fd = self.fd
        on_bytes = self.on_bytes

        def sink(view: memoryview) -> None:
            pos = prog[1]
            keep = min(len(view), b - pos)
            if keep <= 0:
                return
            try:
                write_all(fd, view[:keep] if keep < len(view) else view, pos)
            except OSError as exc:
                raise _DiskError(exc) from None
            prog[1] = pos + keep
            if on_bytes is not None:
                on_bytes(keep)
            self._save()

        try:
            await resp.read_into(sink)
        except (HTTPClientError, OSError) as exc:
            raise _Retry(_network_reason(exc)) from None
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


async def fetch_file(
    url: str,
    dest: Path | str,
    *,
    size: int | None = None,
    checksum: str | None = None,
    parallel_ranges: int = 1,
    headers: Mapping[str, str] | None = None,
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
    engine = TransferEngine(
        workers=1,
        per_host=max(1, parallel_ranges),
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_attempts=max_attempts,
        max_retry_time=max_retry_time,
        backoff=backoff,
        chunk_size=chunk_size,
        headers=headers,
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
        client.close()


def download_file(
    url: str,
    dest: Path | str,
    *,
    size: int | None = None,
    checksum: str | None = None,
    parallel_ranges: int = 1,
    headers: Mapping[str, str] | None = None,
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

    Meant for catalogue tarballs and collection archives. ``url`` may carry an API ``key``: it is
    dropped when a redirect leaves the URL's origin, and masked in every message. With
    ``parallel_ranges > 1`` and a server that supports ranges, a file of 8 MiB or more is
    fetched as that many concurrent ranges into one ``.part`` (written at offsets), verified,
    and resumable hole by hole. Runs its own event loop (in a helper thread when the calling
    thread already runs one, as in Jupyter). Never raises for HTTP or disk failures: check
    :attr:`TransferOutcome.ok` and :attr:`TransferOutcome.error`.
    """

    def make() -> Any:
        return fetch_file(
            url, dest, size=size, checksum=checksum, parallel_ranges=parallel_ranges,
            headers=headers, if_exists=if_exists, connect_timeout=connect_timeout,
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
