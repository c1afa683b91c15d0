"""Minimal downloaders, one per HTTP library, doing what the transfer engine does per file.

Used by ``bench_http_clients.py`` (each run in a fresh interpreter). Every downloader gets the
same work and the same disk path:

* 64 requests in flight over one pool of keep-alive connections (64 worker coroutines pulling
  from one shared iterator of files, so a slow response holds one slot only);
* ``GET``, status check (200 only; obstore raises on any other), body size check;
* a small body (up to :data:`SMALL_MAX`) is read whole and handed to :class:`SmallWriter`, a
  helper process that checks its sha2-256, writes ``dest.part`` and renames it to ``dest``
  (the engine's deleted ``file_writer`` did the same when this comparison was made, so the
  event loop pays only for pickling; the engine now writes small files in its disk threads,
  :mod:`mlhub_widgets.download.transfer.disk`);
* a large body is streamed in slices of at least :data:`SLICE` bytes; a disk thread writes and
  hashes slice *n* while the connection receives slice *n + 1* (:class:`LargeFile`); after the
  last slice the size and digest are checked and ``dest.part`` becomes ``dest``.

Only the library-specific part differs: :data:`CLIENTS` maps a name to a factory returning
``(small, large, close)`` coroutines. ``engine`` is the current ``TransferEngine`` (its own
writer, verification and pools), driven with the same file list.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import fcntl
import hashlib
import importlib
import os
import pickle
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

WORKERS = 64
SMALL_MAX = 1 << 20  # bodies up to this are read whole
SLICE = 1 << 20  # large bodies go to disk in slices of at least this many bytes
DISK_THREADS = 2
BATCH_MAX = 256  # small files per message to the writer helper


@dataclass(frozen=True, slots=True)
class FileSpec:
    """One file: ``url`` (absolute), ``path`` (relative to the storage origin), expected
    ``size`` and ``sha256`` digest, and ``dest`` (absolute path)."""

    url: str
    path: str
    size: int
    sha256: bytes
    dest: str


def read_specs(tsv: str, storage: str, out: str) -> Iterator[FileSpec]:
    """Stream the file list (one ``path<TAB>size<TAB>sha256 hex<TAB>relative dest`` per line):
    no downloader holds the whole list in memory."""
    with open(tsv, encoding="utf-8") as fh:
        for line in fh:
            path, size, hexdigest, rel = line.rstrip("\n").split("\t")
            yield FileSpec(
                storage + path, path, int(size), bytes.fromhex(hexdigest), f"{out}/{rel}"
            )


class Failed(Exception):
    """A file that could not be fetched or verified."""


# ---------------------------------------------------------------------------------------------
# disk: small files in a helper process, large ones in threads

WRITER_CODE = r"""
import hashlib, os, pickle, sys
FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
def read_exact(n):
    parts = []
    while n:
        b = os.read(0, min(n, 1 << 20))
        if not b:
            return None
        parts.append(b)
        n -= len(b)
    return b"".join(parts)
while True:
    head = read_exact(4)
    if head is None:
        break
    errors = []
    for dest, body, digest in pickle.loads(read_exact(int.from_bytes(head, "big"))):
        if hashlib.sha256(body).digest() != digest:
            errors.append(f"{dest}: sha2-256 mismatch")
            continue
        part = dest + ".part"
        try:
            try:
                fd = os.open(part, FLAGS, 0o644)
            except FileNotFoundError:
                os.makedirs(os.path.dirname(part), exist_ok=True)
                fd = os.open(part, FLAGS, 0o644)
            try:
                view = memoryview(body)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            os.rename(part, dest)
        except OSError as exc:
            errors.append(f"{dest}: {exc}")
    os.write(1, ("\t".join(errors) + "\n").encode())
"""


class SmallWriter:
    """Small bodies to a helper interpreter over a pipe, in batches of what arrived during one
    event-loop iteration; each caller awaits its batch's answer (a list of failures)."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", WRITER_CODE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.wfd = self.proc.stdin.fileno()
        self.rfd = self.proc.stdout.fileno()
        fcntl.fcntl(self.wfd, 1031, 1 << 20)  # F_SETPIPE_SZ: room for a few batches
        self.batch: list[tuple[str, pickle.PickleBuffer, bytes]] = []
        self.batch_future: asyncio.Future[list[str]] = self.loop.create_future()
        self.sent: collections.deque[asyncio.Future[list[str]]] = collections.deque()
        self.answers = b""
        self.loop.add_reader(self.rfd, self._on_answer)

    def write(self, spec: FileSpec, body: Any) -> asyncio.Future[list[str]]:
        if not self.batch:
            self.loop.call_soon(self._flush)
        self.batch.append((spec.dest, pickle.PickleBuffer(body), spec.sha256))
        future = self.batch_future
        if len(self.batch) >= BATCH_MAX:
            self._flush()
        return future

    def _flush(self) -> None:
        if not self.batch:
            return
        data = pickle.dumps(self.batch, protocol=5)
        data = len(data).to_bytes(4, "big") + data
        view = memoryview(data)
        while view:  # blocking: the helper's back-pressure stalls the loop, as in the engine
            view = view[os.write(self.wfd, view) :]
        self.sent.append(self.batch_future)
        self.batch = []
        self.batch_future = self.loop.create_future()

    def _on_answer(self) -> None:
        data = os.read(self.rfd, 1 << 16)
        if not data:
            self.loop.remove_reader(self.rfd)
            for fut in self.sent:
                fut.set_exception(Failed("the writer helper died"))
            self.sent.clear()
            return
        *lines, self.answers = (self.answers + data).split(b"\n")
        for line in lines:
            errors = line.decode().split("\t") if line else []
            self.sent.popleft().set_result(errors)

    async def close(self) -> None:
        self._flush()
        while self.sent:
            await asyncio.wait([self.sent[-1]])
        self.loop.remove_reader(self.rfd)
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        await self.loop.run_in_executor(None, self.proc.wait)


def _write_slice(fd: int, hasher: Any, chunks: list[Any]) -> None:
    total = sum(len(c) for c in chunks)
    done = os.writev(fd, chunks)
    if done != total:  # a short write: finish the rest one chunk at a time
        for c in chunks:
            view = memoryview(c)
            skip = min(done, len(view))
            done -= skip
            view = view[skip:]
            while view:
                view = view[os.write(fd, view) :]
    for c in chunks:
        hasher.update(c)


class LargeFile:
    """``dest.part`` written and hashed by a disk thread, one slice behind the network."""

    def __init__(self, spec: FileSpec, pool: concurrent.futures.Executor) -> None:
        self.spec = spec
        self.pool = pool
        self.loop = asyncio.get_running_loop()
        self.part = spec.dest + ".part"
        os.makedirs(os.path.dirname(self.part), exist_ok=True)
        self.fd = os.open(self.part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.hasher = hashlib.sha256()
        self.size = 0
        self.pending: asyncio.Future[None] | None = None

    async def add(self, chunks: list[Any]) -> None:
        if self.pending is not None:
            await self.pending
        self.size += sum(len(c) for c in chunks)
        self.pending = self.loop.run_in_executor(
            self.pool, _write_slice, self.fd, self.hasher, chunks
        )

    async def finish(self, ok: bool) -> None:
        """Wait for the last slice; publish the file if ``ok`` and it verifies."""
        try:
            if self.pending is not None:
                await self.pending
        finally:
            os.close(self.fd)
        if ok and self.size == self.spec.size and self.hasher.digest() == self.spec.sha256:
            os.rename(self.part, self.spec.dest)
            return
        os.unlink(self.part)
        if ok:
            raise Failed(f"{self.spec.dest}: {self.size} bytes or sha2-256 mismatch")


async def grouped(chunks: AsyncIterator[Any]) -> AsyncIterator[list[Any]]:
    """Chunks as the library yields them, grouped into lists of at least :data:`SLICE`
    bytes (no copy: the disk thread writes a list with one ``writev``)."""
    group: list[Any] = []
    n = 0
    async for chunk in chunks:
        group.append(chunk)
        n += len(chunk)
        if n >= SLICE:
            yield group
            group, n = [], 0
    if group:
        yield group


# ---------------------------------------------------------------------------------------------
# the shared driver

Small = Callable[[FileSpec], Awaitable[Any]]
Large = Callable[[FileSpec], AsyncIterator[list[Any]]]


@dataclass
class Stats:
    """What a run did."""

    files: int = 0
    bytes: int = 0
    failed: int = 0
    first_error: str = ""


class Downloader:
    """The per-file work shared by every library: fetch, check, write, verify, rename."""

    def __init__(self, small: Small, large: Large) -> None:
        self.small = small
        self.large = large
        self.stats = Stats()
        self.writer = SmallWriter()
        self.pool = concurrent.futures.ThreadPoolExecutor(DISK_THREADS)

    async def fetch(self, spec: FileSpec) -> None:
        try:
            if spec.size <= SMALL_MAX:
                body = await self.small(spec)
                if len(body) != spec.size:
                    raise Failed(f"{len(body)} bytes, expected {spec.size}")
                errors = await self.writer.write(spec, body)
                mine = [e for e in errors if e.startswith(spec.dest + ":")]
                if mine:
                    raise Failed(mine[0])
            else:
                sink = LargeFile(spec, self.pool)
                ok = False
                try:
                    async for group in self.large(spec):
                        await sink.add(group)
                    ok = True
                finally:
                    await sink.finish(ok)
        except Exception as exc:  # counted and shown: the benchmark fails the run
            self.stats.failed += 1
            self.stats.first_error = self.stats.first_error or f"{spec.url}: {exc!r}"
            return
        self.stats.files += 1
        self.stats.bytes += spec.size

    async def with_workers(self, specs: Iterator[FileSpec]) -> None:
        """:data:`WORKERS` coroutines pulling from one iterator (what the engine does)."""

        async def worker() -> None:
            for spec in specs:
                await self.fetch(spec)

        await asyncio.gather(*(worker() for _ in range(WORKERS)))

    async def in_batches(self, specs: Iterator[FileSpec]) -> None:
        """``asyncio.gather`` over batches of :data:`WORKERS` files (obstore's documented
        pattern): each batch waits for its slowest file."""
        batch: list[FileSpec] = []
        for spec in specs:
            batch.append(spec)
            if len(batch) == WORKERS:
                await asyncio.gather(*(self.fetch(s) for s in batch))
                batch = []
        await asyncio.gather(*(self.fetch(s) for s in batch))

    async def close(self) -> None:
        await self.writer.close()
        self.pool.shutdown()


# ---------------------------------------------------------------------------------------------
# the libraries: each factory returns (small, large, close)

Client = tuple[Small, Large, Callable[[], Awaitable[None]]]


def _check(status: int, spec: FileSpec) -> None:
    if status != 200:
        raise Failed(f"HTTP {status}")


async def make_aiohttp(storage: str, *, trust_env: bool = True, tuned: bool = False) -> Client:
    """aiohttp, one ``TCPConnector`` of 64.

    ``trust_env=True`` makes aiohttp look up ``~/.netrc`` and the proxy variables on *every*
    request, each in a thread of the default executor (aiohttp 3.14); with ``False`` the caller
    resolves the proxy once per origin and passes ``proxy=`` (here: none). Tuned: no DNS cache
    expiry, no decompression, a 1 MiB read buffer, ``readany()`` for streamed bodies."""
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
    if tuned:
        connector = aiohttp.TCPConnector(
            limit=WORKERS, ttl_dns_cache=None, enable_cleanup_closed=False
        )
        session = aiohttp.ClientSession(
            connector=connector,
            trust_env=trust_env,
            timeout=timeout,
            auto_decompress=False,
            read_bufsize=SLICE,
        )
    else:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=WORKERS), trust_env=trust_env, timeout=timeout
        )

    async def small(spec: FileSpec) -> Any:
        async with session.get(spec.url) as resp:
            _check(resp.status, spec)
            return await resp.read()

    async def chunks(resp: Any) -> AsyncIterator[bytes]:
        while data := await resp.content.readany():
            yield data

    async def large(spec: FileSpec) -> AsyncIterator[list[Any]]:
        async with session.get(spec.url) as resp:
            _check(resp.status, spec)
            body = chunks(resp) if tuned else resp.content.iter_any()
            async for group in grouped(body):
                yield group

    return small, large, session.close


async def make_httpx(storage: str, *, module: str = "httpx", tuned: bool = False) -> Client:
    """httpx ``AsyncClient`` (``trust_env`` is its default), HTTP/1.1, a pool of 64.

    ``module="httpx2"``: the fork of httpx/httpcore with the pool assignment fixed.
    Tuned: no connection cap in the pool (the 64 workers still bound it), so no request ever
    queues for a connection (the queue is where httpcore 1.0.9 spends its time)."""
    httpx = importlib.import_module(module)
    limits = httpx.Limits(
        max_connections=None if tuned else WORKERS, max_keepalive_connections=WORKERS
    )
    client = httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60, connect=10))

    async def small(spec: FileSpec) -> Any:
        resp = await client.get(spec.url)
        _check(resp.status_code, spec)
        return resp.content

    async def large(spec: FileSpec) -> AsyncIterator[list[Any]]:
        async with client.stream("GET", spec.url) as resp:
            _check(resp.status_code, spec)
            async for group in grouped(resp.aiter_raw()):
                yield group

    return small, large, client.aclose


async def make_obstore(storage: str, *, one_call: bool = False) -> Client:
    """obstore ``HTTPStore`` over the storage origin (reqwest + tokio under the hood); errors
    are exceptions (no status to check); obstore's own retries off (the engine retries).

    A small body takes two calls, ``get_async`` then ``bytes_async``: two hand-offs from the
    tokio threads to the event loop. ``one_call``: ``get_range_async(0, size)`` instead, one
    hand-off (a ``Range`` request: the catalogue gives the size)."""
    import obstore
    from obstore.store import HTTPStore

    store = HTTPStore.from_url(
        storage.rstrip("/"),
        client_options={
            "allow_http": True,
            "connect_timeout": "10s",
            "timeout": "60s",
            "pool_max_idle_per_host": str(WORKERS),
        },
        retry_config={"max_retries": 0},
    )

    async def small(spec: FileSpec) -> Any:
        if one_call:
            return await obstore.get_range_async(store, spec.path, start=0, end=spec.size)
        result = await obstore.get_async(store, spec.path)
        return await result.bytes_async()

    async def large(spec: FileSpec) -> AsyncIterator[list[Any]]:
        result = await obstore.get_async(store, spec.path)
        async for chunk in result.stream(min_chunk_size=SLICE):
            yield [chunk]

    async def close() -> None:
        return None

    return small, large, close


async def run_library(name: str, storage: str, specs: Iterator[FileSpec]) -> Stats:
    """Download ``specs`` with library variant ``name`` (see :data:`LIBRARIES`)."""
    make, pattern = LIBRARIES[name]
    small, large, close = await make(storage)
    downloader = Downloader(small, large)
    try:
        if pattern == "batches":
            await downloader.in_batches(specs)
        else:
            await downloader.with_workers(specs)
    finally:
        await downloader.close()
        await close()
    return downloader.stats


LIBRARIES: dict[str, tuple[Callable[[str], Awaitable[Client]], str]] = {
    "aiohttp": (lambda s: make_aiohttp(s), "workers"),
    "aiohttp-noenv": (lambda s: make_aiohttp(s, trust_env=False), "workers"),
    "aiohttp-tuned": (lambda s: make_aiohttp(s, trust_env=False, tuned=True), "workers"),
    "httpx": (lambda s: make_httpx(s), "workers"),
    "httpx-tuned": (lambda s: make_httpx(s, tuned=True), "workers"),
    "httpx2": (lambda s: make_httpx(s, module="httpx2"), "workers"),
    "obstore": (lambda s: make_obstore(s), "workers"),
    "obstore-range": (lambda s: make_obstore(s, one_call=True), "workers"),
    "obstore-gather": (lambda s: make_obstore(s), "batches"),
}


#: where the engine lives (the package is being reorganised: the first that exists is used)
ENGINE_MODULES = ("mlhub_widgets.transfer", "mlhub_widgets.download.transfer")


def engine_module() -> Any:
    """The module holding ``TransferEngine`` and ``TransferSpec``."""
    for name in ENGINE_MODULES:
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if not name.startswith(str(exc.name)):  # a missing dependency, not a moved module
                raise
    raise ModuleNotFoundError(f"none of {', '.join(ENGINE_MODULES)} exists")


def run_engine(storage: str, specs: Iterator[FileSpec]) -> Stats:
    """The current engine with the same files: ``TransferEngine(workers=64).run``."""
    engine = engine_module()
    stats = Stats()

    def on_outcome(outcome: Any) -> None:
        if outcome.ok:
            stats.files += 1
            stats.bytes += outcome.size
        else:
            stats.failed += 1
            stats.first_error = stats.first_error or str(outcome.error)

    todo = (
        engine.TransferSpec(s.url, s.dest, s.size, "1220" + s.sha256.hex(), absent=True)
        for s in specs
    )
    asyncio.run(engine.TransferEngine(workers=WORKERS).run(todo, on_outcome=on_outcome))
    return stats


def run(name: str, storage: str, specs: Iterator[FileSpec]) -> Stats:
    """Run client ``name`` (``engine`` or a key of :data:`LIBRARIES`) to completion."""
    if name == "engine":
        return run_engine(storage, specs)
    return asyncio.run(run_library(name, storage, specs))


CLIENTS = ("engine", *LIBRARIES)


def import_client(name: str) -> None:
    """Import what client ``name`` needs (timed separately from the transfer)."""
    if name == "engine":
        engine_module()
        return
    importlib.import_module(name.split("-")[0])
