"""The bundled hub: three HTTP origins (API, storage, S3) on one asyncio loop in a daemon thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Literal, NamedTuple
from urllib.parse import urlsplit

from . import synth
from .api import ApiRoutes, json_bytes
from .catalog import CatalogCache, build_catalog, default_cache_dir
from .faults import NO_FAULT, FaultConfig, FaultDecision, FaultState
from .http import FileBody, Handler, HTTPProtocol, Request, Response, SinkFactory
from .s3 import S3Routes
from .static import StaticCatalogs
from .storage import Blob, StorageRoutes, blob_of, blob_with_md5
from .store import BLOB_ROOT, FILES_PLACEHOLDER, RECORDED_ROOTS, Store, record_mtime
from .synth import Body

__all__ = ["API_PATH", "Hub", "RequestRecord", "serve"]

log = logging.getLogger(__name__)

API_PATH = "/mlhub/v1/"
Origin = Literal["api", "storage", "s3"]
MAX_RECORDS = 20_000


class RequestRecord(NamedTuple):
    """One request as the hub saw it."""

    origin: str
    method: str
    path: str
    query_keys: tuple[str, ...]
    status: int
    kind: str
    key_present: bool
    connection: int
    time: float


class Hub:
    """An MLHub-compatible server for tests, notebooks and benchmarks.

    ``Hub(...)`` loads the data directory (cheap: items and tarballs load lazily);
    :meth:`start` binds the three origins on loopback and serves them from a daemon thread;
    :meth:`stop` shuts everything down. Also usable as a context manager.

    Args:
        data_dir: a data directory (see :mod:`.store`); ``None`` for the bundled sample data.
        host: interface to bind; loopback by default.
        port: API port (0: any free port).
        storage_port: storage port (0: any free port).
        s3_port: port of the S3 origin (0: any free port; see :mod:`.s3`).
        s3_dir: folder in which the S3 origin makes its scratch folder for written objects
            (``None``: the system temp dir); the scratch folder is removed by :meth:`stop`.
        require_key: if set, items, catalogue and archive routes need ``?key=`` or
            ``Authorization: Bearer`` with this value (401 otherwise).
        faults: initial :class:`FaultConfig` (none by default).
        cache_dir: where built catalogue tarballs are kept across restarts (keyed by the hub's
            URLs and the dataset's files); ``None``: ``$MLHUB_HUB_CACHE`` or a folder in the
            temp dir; ``False``: keep them in memory only.

    Benchmarks should build what they need before timing a client: :meth:`warm` (or
    :meth:`catalog_blob` per dataset) builds the catalogue tarballs and indexes the items.
    """

    def __init__(
        self,
        data_dir: Path | str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        storage_port: int = 0,
        s3_port: int = 0,
        s3_dir: Path | str | None = None,
        require_key: str | None = None,
        faults: FaultConfig | None = None,
        cache_dir: Path | str | Literal[False] | None = None,
    ) -> None:
        self.store = Store(data_dir)
        self._cache = (
            None
            if cache_dir is False
            else CatalogCache(Path(cache_dir) if cache_dir is not None else default_cache_dir())
        )
        self.host = host
        self._port = port
        self._storage_port = storage_port
        self._s3_port = s3_port
        self.require_key = require_key
        self._faults = faults or FaultConfig()
        self._fault_state = FaultState()
        self._url = ""
        self._storage_url = ""
        self._s3_url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.Server] = []
        self._conns: set[HTTPProtocol] = set()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._counters: dict[tuple[str, str], int] = {}
        self._keys_seen: dict[str, int] = {"api": 0, "storage": 0, "s3": 0}
        self._records: deque[RequestRecord] = deque(maxlen=MAX_RECORDS)
        self._catalogs: dict[str, Blob] = {}
        self._catalog_locks: dict[str, threading.Lock] = {}
        self._archives: dict[str, Blob] = {}
        self._estimates: dict[str, int] = {}
        self._lock = threading.Lock()
        self.api = ApiRoutes(self)
        self.storage = StorageRoutes(self)
        self.static = StaticCatalogs(self)
        self.s3 = S3Routes(self, Path(s3_dir) if s3_dir is not None else None)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Hub:
        """Bind the three origins and start serving in a daemon thread; returns ``self``."""
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []
        self._executor = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="mlhub-hub")
        loop.set_default_executor(self._executor)

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                origins: list[tuple[int, Handler, SinkFactory | None]] = [
                    (self._port, self._handle_api, None),
                    (self._storage_port, self._handle_storage, None),
                    (self._s3_port, self._handle_s3, self.s3.sink),
                ]
                for port, handler, sink in origins:
                    server = loop.run_until_complete(
                        loop.create_server(
                            lambda h=handler, s=sink: self._protocol(h, s),  # type: ignore[misc]
                            self.host,
                            port,
                            backlog=2048,
                            reuse_address=True,
                        )
                    )
                    self._servers.append(server)
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=run, name="mlhub-hub", daemon=True)
        thread.start()
        ready.wait()
        if failure:
            self._executor.shutdown(wait=False)
            self._servers.clear()
            raise failure[0]
        self._loop = loop
        self._thread = thread
        api_port = self._servers[0].sockets[0].getsockname()[1]
        st_port = self._servers[1].sockets[0].getsockname()[1]
        s3_port = self._servers[2].sockets[0].getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._url = f"http://{host}:{api_port}{API_PATH}"
        self._storage_url = f"http://{host}:{st_port}/"
        self._s3_url = f"http://{host}:{s3_port}"
        self._executor.submit(self._warm_up)
        return self

    def _warm_up(self) -> None:
        """Index items files and generated assets in the background, so first requests are fast."""
        try:
            for cid in self.store.jsonl_collections():
                self.store.items(cid)
            self.store.known_blob_paths()
        except Exception:  # pragma: no cover - reported again on first use
            log.exception("indexing the hub's assets failed")

    def stop(self) -> None:
        """Stop serving, close every connection, remove the S3 scratch folder (idempotent)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            for server in self._servers:
                server.close()
            for conn in list(self._conns):
                conn.close()
            for server in self._servers:
                await server.wait_closed()
            loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), loop)
        thread.join(timeout=10)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._loop = None
        self._thread = None
        self._servers = []
        self.s3.close()

    def __enter__(self) -> Hub:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _protocol(self, handler: Handler, sink: SinkFactory | None = None) -> HTTPProtocol:
        proto = HTTPProtocol(handler, self._conns.discard, sink)
        self._conns.add(proto)
        return proto

    # -- public state --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The API root, ending with ``/`` (e.g. ``http://127.0.0.1:41234/mlhub/v1/``)."""
        if not self._url:
            raise RuntimeError("the hub is not started")
        return self._url

    @property
    def storage_url(self) -> str:
        """The storage origin, ending with ``/`` (a second port on the same host)."""
        if not self._storage_url:
            raise RuntimeError("the hub is not started")
        return self._storage_url

    @property
    def s3_url(self) -> str:
        """The S3 endpoint, without trailing slash, for ``--endpoint-url`` / ``endpoint_url``.

        Path-style buckets: ``radiantearth`` (every dataset, read-only) and ``scratch``
        (writable); see :mod:`.s3`.
        """
        if not self._s3_url:
            raise RuntimeError("the hub is not started")
        return self._s3_url

    @property
    def faults(self) -> FaultConfig:
        """The active fault configuration; assign a new :class:`FaultConfig` at any time."""
        return self._faults

    @faults.setter
    def faults(self, value: FaultConfig | None) -> None:
        self._faults = value or FaultConfig()
        self._fault_state.reset()

    def counters(self) -> dict[tuple[str, str], int]:
        """Requests so far by ``(kind, method)``.

        Kinds: api/catalog/archive/asset/static (static catalogue documents)/other, and on the
        S3 origin s3-list/s3-object/s3-multipart/s3-bucket.
        """
        return self._counters.copy()

    def count(self, kind: str | None = None, method: str | None = None) -> int:
        """Sum of :meth:`counters` matching ``kind`` and/or ``method``."""
        return sum(
            n
            for (k, m), n in self._counters.copy().items()
            if (kind is None or k == kind) and (method is None or m == method)
        )

    @property
    def requests(self) -> list[RequestRecord]:
        """The most recent requests (up to 20,000), oldest first."""
        return list(self._records)

    def keys_seen(self, origin: Origin = "storage") -> int:
        """Requests on ``origin`` that carried a ``key`` parameter or an Authorization header
        (on the S3 origin also a presigned URL's ``X-Amz-Signature``)."""
        return self._keys_seen[origin]

    def reset_counters(self) -> None:
        """Zero the counters, the key tally and the request log."""
        self._counters = {}
        self._keys_seen = {"api": 0, "storage": 0, "s3": 0}
        self._records.clear()

    def dataset_ids(self) -> list[str]:
        """Ids of every dataset the hub serves, in ``/datasets`` order."""
        return list(self.store.datasets)

    def rewrite(self, text: str) -> str:
        """Point recorded API roots, blob-store URLs and file placeholders at this hub."""
        for root in RECORDED_ROOTS:
            text = text.replace(root, self.url)
        text = text.replace(BLOB_ROOT, self.storage_url)
        return text.replace(FILES_PLACEHOLDER, self.storage_url + "files/")

    # -- assets --------------------------------------------------------------------------------

    def _storage_path(self, url: str) -> str:
        if "://" in url:
            parts = urlsplit(url)
            if url.startswith(BLOB_ROOT):
                return parts.path.lstrip("/")
            if self._storage_url and not url.startswith(self._storage_url):
                raise ValueError(f"not a URL of this hub's storage origin: {url}")
            return parts.path.lstrip("/")
        return url.lstrip("/")

    def asset_bytes(self, url: str) -> bytes:
        """The exact bytes the storage origin serves for ``url`` (or a storage path)."""
        path = self._storage_path(url)
        if path.startswith("mlhub/catalogs/") and path.endswith(".tar.gz"):
            return self.catalog_blob(path[len("mlhub/catalogs/") : -len(".tar.gz")]).read()
        if path.startswith("mlhub/archives/") and path.endswith(".tar.gz"):
            archive = self.archive_blob(path[len("mlhub/archives/") : -len(".tar.gz")])
            if archive is None:
                raise KeyError(url)
            return archive.read()
        blob = self.storage.asset_blob(path)
        if blob is None:
            raise KeyError(url)
        return blob.read()

    def change_asset(self, url: str) -> None:
        """Give the asset new bytes, ETag and Last-Modified from now on (same size and type)."""
        path = self._storage_path(url)
        if self.storage.asset_blob(path) is None:
            raise KeyError(url)
        with self._lock:
            self.storage.versions[path] = self.storage.versions.get(path, 0) + 1
        self.storage.forget(path)
        self.s3.datasets.asset_changed()

    # -- catalogues and archives ---------------------------------------------------------------

    def catalog_blob_cached(self, ds_id: str) -> Blob | None:
        """The built catalogue tarball of a dataset, if built already."""
        return self._catalogs.get(ds_id)

    def catalog_blob(self, ds_id: str) -> Blob:
        """Build (once) and return the catalogue tarball of ``ds_id`` for this hub's URLs.

        This is the way to pre-build ("warm") a catalogue before timing a client: the first
        call builds it (or finds it in the on-disk cache), later calls and requests reuse it.
        """
        hit = self._catalogs.get(ds_id)
        if hit is not None:
            return hit
        with self._lock:
            lock = self._catalog_locks.setdefault(ds_id, threading.Lock())
        with lock:
            hit = self._catalogs.get(ds_id)
            if hit is not None:
                return hit
            t0 = time.perf_counter()
            ds = self.store.datasets[ds_id]
            mtime = record_mtime(ds)
            how = "built"
            blob: Blob | None = None
            if self._cache is not None:
                path = self._cache.path_for(ds, self.url, self.storage_url)
                found = self._cache.lookup(path)
                if found is None:
                    try:
                        found = self._cache.store(
                            path, lambda fh: build_catalog(self.store, ds, self.rewrite, fh)
                        )
                    except OSError as exc:
                        log.warning("catalogue cache %s unusable: %s", self._cache.directory, exc)
                else:
                    how = "found cached"
                if found is not None:
                    size, md5 = found
                    blob = blob_with_md5(
                        FileBody(path, size), "application/octet-stream", mtime, md5
                    )
            if blob is None:
                buf = io.BytesIO()
                build_catalog(self.store, ds, self.rewrite, buf)
                blob = blob_of(buf.getvalue(), "application/octet-stream", mtime)
            self._catalogs[ds_id] = blob
            log.info(
                "%s catalog %s (%d B) in %.2fs", how, ds_id, blob.size, time.perf_counter() - t0
            )
            return blob

    def warm(
        self, *ds_ids: str, catalogs: bool = True, items: bool = True, objects: bool = True
    ) -> None:
        """Do up front what the first requests for ``ds_ids`` (default: all) would do.

        Builds the catalogue tarballs (:meth:`catalog_blob`), opens the collections' items
        with their id index and lists the datasets' objects in the S3 origin's bucket (sizes
        and ETags of every document and asset), so a benchmark times only the client. Needs a
        started hub.
        """
        for ds_id in ds_ids or tuple(self.store.datasets):
            ds = self.store.datasets[ds_id]
            if catalogs and ds.has_catalog:
                self.catalog_blob(ds_id)
            if objects and ds.has_catalog:
                self.s3.datasets.index(ds_id)
            if items:
                for cid in ds.collection_ids:
                    self.store.items(cid).ids()

    def static_catalog_url(self, ds_id: str) -> str:
        """URL of the root of the static STAC catalogue of ``ds_id`` (see :mod:`.static`).

        ``{storage_url}catalogs/{ds_id}/catalog.json``: relative links to the collections and
        items, asset hrefs absolute on the storage origin.
        """
        if ds_id not in self.store.datasets or not self.store.datasets[ds_id].has_catalog:
            raise KeyError(f"dataset {ds_id} has no catalogue")
        return self.static.url(ds_id)

    async def catalog_blob_async(self, ds_id: str) -> Blob:
        """:meth:`catalog_blob` without blocking the event loop."""
        hit = self._catalogs.get(ds_id)
        if hit is not None:
            return hit
        return await asyncio.get_running_loop().run_in_executor(None, self.catalog_blob, ds_id)

    async def estimated_size_async(self, ds_id: str) -> int:
        """Sum of the sizes of a dataset's unique assets (computed once, off the loop)."""
        if ds_id not in self._estimates:

            def size_of(href: str) -> int | None:
                try:
                    path = self._storage_path(self.rewrite(href))
                except ValueError:
                    return None
                spec = self.store.synthetic_spec(path)
                if spec is not None:
                    return spec.size(path)
                if path.startswith("files/"):
                    ds, _, rel = path[len("files/") :].partition("/")
                    file = self.store.local_file(ds, rel)
                    return file.stat().st_size if file else None
                return synth.default_size(path)

            total = await asyncio.get_running_loop().run_in_executor(
                None, self.store.estimated_size, ds_id, size_of
            )
            self._estimates[ds_id] = total
        return self._estimates[ds_id]

    def archive_blob(self, collection_id: str) -> Blob | None:
        """The collection archive blob, or None."""
        hit = self._archives.get(collection_id)
        if hit is None:
            path = self.store.archives.get(collection_id)
            if path is None:
                return None
            hit = blob_of(path.read_bytes(), "application/x-tar", path.stat().st_mtime)
            self._archives[collection_id] = hit
        return hit

    # -- dispatch ------------------------------------------------------------------------------

    def _record(self, origin: str, req: Request, kind: str, status: int) -> None:
        key = (kind, req.method)
        counters = self._counters
        counters[key] = counters.get(key, 0) + 1
        has_key = (
            "key" in req.query or "authorization" in req.headers or "X-Amz-Signature" in req.query
        )
        if has_key:
            self._keys_seen[origin] += 1
        self._records.append(
            RequestRecord(
                origin,
                req.method,
                req.path,
                tuple(req.query),
                status,
                kind,
                has_key,
                req.conn.id,
                time.time(),
            )
        )

    def _fault_response(self, origin: Origin, req: Request, decision: FaultDecision) -> Response:
        assert decision.status is not None
        xml = origin == "s3"
        headers = [("Content-Type", "application/xml" if xml else "application/json")]
        if decision.retry_after is not None:
            ra = decision.retry_after
            headers.append(("Retry-After", str(int(ra)) if ra == int(ra) else f"{ra:g}"))
        detail = {404: "The specified blob does not exist.", 403: "Forbidden"}.get(
            decision.status, "Injected fault"
        )
        if xml:
            body = Body.of(self.s3.fault_body(decision.status))
        else:
            body = Body.of(json_bytes({"detail": detail}))
        return Response(
            decision.status,
            headers,
            body,
            send_body=req.method != "HEAD",
            fault=FaultDecision(delay=decision.delay) if decision.delay else NO_FAULT,
        )

    def _apply(
        self, origin: Origin, req: Request, kind: str, result: Response | Awaitable[Response]
    ) -> Response | Awaitable[Response]:
        faults = self._faults
        if not faults.active:
            if isinstance(result, Response):
                self._record(origin, req, kind, result.status)
                return result
            return self._finish_async(origin, req, kind, result, None)
        decision = self._fault_state.decide(
            faults, origin, kind, req.method, req.path, req.first_on_connection
        )
        if decision.status is not None:
            if isinstance(result, Coroutine):
                result.close()  # never awaited: the fault answers instead
            resp = self._fault_response(origin, req, decision)
            self._record(origin, req, kind, resp.status)
            return resp
        if isinstance(result, Response):
            if decision.delay or decision.cut or decision.bandwidth:
                result.fault = decision
            self._record(origin, req, kind, result.status)
            return result
        return self._finish_async(origin, req, kind, result, decision)

    async def _finish_async(
        self,
        origin: Origin,
        req: Request,
        kind: str,
        result: Awaitable[Response],
        decision: FaultDecision | None,
    ) -> Response:
        resp = await result
        if decision is not None and (decision.delay or decision.cut or decision.bandwidth):
            resp.fault = decision
        self._record(origin, req, kind, resp.status)
        return resp

    def _handle_api(self, req: Request) -> Response | Awaitable[Response]:
        path = req.path
        if path.startswith(API_PATH) or path == API_PATH[:-1]:
            result = self.api.handle(req, path[len(API_PATH) :])
            return self._apply("api", req, "api", result)
        resp = self.api.error(req, 404, "Not Found")
        return self._apply("api", req, "other", resp)

    def _handle_storage(self, req: Request) -> Response | Awaitable[Response]:
        path = req.path.lstrip("/")
        kind = self.storage.kind(path)
        return self._apply("storage", req, kind, self.storage.handle(req, path))

    def _handle_s3(self, req: Request) -> Response | Awaitable[Response]:
        return self._apply("s3", req, self.s3.kind(req), self.s3.handle(req))


@contextmanager
def serve(
    data_dir: Path | str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    storage_port: int = 0,
    s3_port: int = 0,
    s3_dir: Path | str | None = None,
    require_key: str | None = None,
    faults: FaultConfig | None = None,
    cache_dir: Path | str | Literal[False] | None = None,
) -> Iterator[Hub]:
    """Run a :class:`Hub` for the duration of a ``with`` block.

    >>> with serve() as hub:                       # doctest: +SKIP
    ...     requests.get(hub.url + "datasets").json()
    """
    hub = Hub(
        data_dir,
        host=host,
        port=port,
        storage_port=storage_port,
        s3_port=s3_port,
        s3_dir=s3_dir,
        require_key=require_key,
        faults=faults,
        cache_dir=cache_dir,
    )
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()
