"""The storage origin: a stand-in for the Azure blob store behind the MLHub.

Serves catalogue tarballs (``mlhub/catalogs/<dataset>.tar.gz``, built per hub), collection
archives (``mlhub/archives/<collection>.tar.gz``), real files of data-directory datasets
(``files/<dataset>/<path>``), generated assets (any other known ``mlhub/...`` path) and the
static STAC catalogues of the datasets (``catalogs/<dataset>/catalog.json`` and the documents it
links to, see :mod:`.static`).

Every blob carries ``Content-Length``, ``Content-Type``, ``Accept-Ranges: bytes``, a quoted
``ETag``, ``Last-Modified`` and, for bodies up to 4 MiB, ``Content-MD5`` (base64 MD5, as Azure
sends for single-shot uploads). ``Range`` (``a-b``, ``a-``, ``-n``) answers 206 with
``Content-Range``; an unsatisfiable range answers 416 with ``Content-Range: bytes */N``;
``If-Range`` (ETag or HTTP date) falls back to a full 200 on mismatch; ``If-None-Match`` answers
304. Multiple ranges are not supported: such requests get the full body (200), as RFC 9110 allows.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Protocol

from . import synth
from .faults import FaultConfig
from .http import FileBody, Request, Response, http_date
from .store import Store
from .synth import Body

__all__ = ["Blob", "StorageHub", "StorageRoutes", "blob_of", "blob_with_md5", "parse_range"]

#: Last-Modified of generated assets at version 0; each change adds one hour.
GENERATED_EPOCH = 1_662_998_400  # 2022-09-12T16:00:00Z
SMALL_FILE = 256 * 1024
MD5_LIMIT = synth.MATERIALIZE_LIMIT
CACHE_BYTES = 128 * 1024 * 1024


@dataclass(slots=True)
class Blob:
    """A servable object with its validators (treat as immutable)."""

    body: Body | FileBody
    content_type: str
    etag: str
    last_modified: float
    md5: str | None
    last_modified_http: str = ""
    full_headers: str = ""  # pre-rendered headers of a plain 200 answer

    def __post_init__(self) -> None:
        self.last_modified_http = http_date(self.last_modified)
        block = (
            f"Content-Type: {self.content_type}\r\nETag: {self.etag}\r\n"
            f"Last-Modified: {self.last_modified_http}\r\nAccept-Ranges: bytes\r\n"
        )
        if self.md5:
            block += f"Content-MD5: {self.md5}\r\n"
        self.full_headers = block

    @property
    def size(self) -> int:
        """Length of the whole object."""
        return self.body.size

    def read(self) -> bytes:
        """The whole object as bytes."""
        if isinstance(self.body, FileBody):
            return self.body.path.read_bytes()
        return self.body.read()


def blob_of(data: bytes, content_type: str, last_modified: float) -> Blob:
    """A materialised blob whose ETag and Content-MD5 derive from its bytes."""
    return blob_with_md5(Body.of(data), content_type, last_modified, hashlib.md5(data).digest())


def blob_with_md5(
    body: Body | FileBody, content_type: str, last_modified: float, digest: bytes
) -> Blob:
    """A blob whose ETag and Content-MD5 derive from ``digest``, the MD5 of its bytes."""
    etag = '"0x8D' + digest.hex()[:13].upper() + '"'
    return Blob(body, content_type, etag, last_modified, base64.b64encode(digest).decode())


def parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """Parse a single ``bytes=`` range against ``size``.

    Returns ``(first, last)`` inclusive, ``None`` when the header must be ignored (absent,
    malformed, several ranges) or ``"unsatisfiable"``.
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    a, sep, b = spec.strip().partition("-")
    if not sep:
        return None
    try:
        if a == "":
            n = int(b)
            if n < 0:
                return None
            if n == 0 or size == 0:
                return "unsatisfiable"
            return (max(0, size - n), size - 1)
        first = int(a)
        last = int(b) if b else None
    except ValueError:
        return None
    if first < 0 or (last is not None and last < first):
        return None
    if first >= size:
        return "unsatisfiable"
    return (first, size - 1 if last is None else min(last, size - 1))


class StaticBlobs(Protocol):
    """The hub's static catalogues, as the storage routes use them (see :mod:`.static`)."""

    def cheap(self, path: str) -> bool: ...
    def blob(self, path: str) -> Blob | None: ...


class StorageHub(Protocol):
    """What the storage routes need from the :class:`~.server.Hub` they serve (the hub's server
    module imports this one, so the routes name what they use instead of importing the hub)."""

    @property
    def store(self) -> Store: ...
    @property
    def faults(self) -> FaultConfig: ...
    @property
    def static(self) -> StaticBlobs: ...
    def catalog_blob_cached(self, ds_id: str) -> Blob | None: ...
    async def catalog_blob_async(self, ds_id: str) -> Blob: ...
    def archive_blob(self, collection_id: str) -> Blob | None: ...


class StorageRoutes:
    """Routes of the storage origin, bound to one :class:`Hub`."""

    def __init__(self, hub: StorageHub) -> None:
        self.hub = hub
        self.store = hub.store
        self.versions: dict[str, int] = {}
        self._cache: OrderedDict[str, Blob] = OrderedDict()
        self._cache_bytes = 0
        self._lock = threading.Lock()

    # -- resolution ----------------------------------------------------------------------------

    def kind(self, path: str) -> str:
        """Counter kind of a storage path (``path`` without leading slash)."""
        if path.startswith("mlhub/catalogs/"):
            return "catalog"
        if path.startswith("mlhub/archives/"):
            return "archive"
        if path.startswith(("mlhub/", "files/")):
            return "asset"
        if path.startswith("catalogs/"):
            return "static"
        return "other"

    def asset_blob(self, path: str) -> Blob | None:
        """The blob of an asset path (generated or a real file), or None if unknown."""
        with self._lock:
            hit = self._cache.get(path)
            if hit is not None:
                self._cache.move_to_end(path)
                return hit
        blob = self._resolve(path)
        if blob is not None and isinstance(blob.body, Body) and blob.size <= MD5_LIMIT:
            with self._lock:
                if path not in self._cache:
                    self._cache[path] = blob
                    self._cache_bytes += blob.size
                    while self._cache_bytes > CACHE_BYTES and self._cache:
                        _, old = self._cache.popitem(last=False)
                        self._cache_bytes -= old.size
        return blob

    def forget(self, path: str) -> None:
        """Drop a cached blob (after its content changed)."""
        with self._lock:
            old = self._cache.pop(path, None)
            if old is not None:
                self._cache_bytes -= old.size

    def _resolve(self, path: str) -> Blob | None:
        version = self.versions.get(path, 0)
        if path.startswith("files/"):
            _, ds_id, rel = ([*path.split("/", 2), "", ""])[:3]
            file = self.store.local_file(ds_id, rel) if ds_id and rel else None
            if file is None:
                return None
            st = file.stat()
            ctype = synth.media_type_for(path)
            mtime = st.st_mtime + 3600 * version
            if version:
                return self._generated(path, st.st_size, version, ctype, mtime)
            if st.st_size <= SMALL_FILE:
                return blob_of(file.read_bytes(), ctype, mtime)
            tag = synth.path_hash("file", path, st.st_mtime_ns, st.st_size)
            etag = f'"0x8D{tag:016X}"'
            md5 = None
            if st.st_size <= MD5_LIMIT:
                md5 = base64.b64encode(hashlib.md5(file.read_bytes()).digest()).decode()
            return Blob(FileBody(file, st.st_size), ctype, etag, mtime, md5)
        if not path.startswith("mlhub/") or path.startswith(("mlhub/catalogs/", "mlhub/archives/")):
            return None
        mtime = GENERATED_EPOCH + 3600 * version
        data = self.store.generated_asset(path)  # an asset of a generated catalogue
        if data is not None:
            ctype = synth.media_type_for(path)
            if version:
                return self._generated(path, len(data), version, ctype, mtime)
            return blob_of(data, ctype, mtime)
        spec = self.store.synthetic_spec(path)
        if spec is not None:
            if not spec.has(path):
                return None
            size = spec.size(path)
        elif path in self.store.known_blob_paths():
            size = synth.default_size(path)
        else:
            return None
        return self._generated(path, size, version, synth.media_type_for(path), mtime)

    @staticmethod
    def _generated(path: str, size: int, version: int, ctype: str, mtime: float) -> Blob:
        body = synth.generate(path, size, version)
        tag = synth.path_hash("etag", path, version, size)
        etag = f'"0x8D{tag:016X}"'
        md5 = None
        if size <= MD5_LIMIT:
            md5 = base64.b64encode(hashlib.md5(body.head).digest()).decode()
        return Blob(body, ctype, etag, mtime, md5)

    # -- serving -------------------------------------------------------------------------------

    def handle(self, req: Request, path: str) -> Response | Awaitable[Response]:
        """Answer ``req`` for storage ``path`` (no leading slash)."""
        if req.method not in ("GET", "HEAD"):
            return _plain(405, "Method Not Allowed")
        if path.startswith("catalogs/"):
            return self._static(req, path)
        if path.startswith("mlhub/catalogs/") and path.endswith(".tar.gz"):
            ds_id = path[len("mlhub/catalogs/") : -len(".tar.gz")]
            ds = self.store.datasets.get(ds_id)
            if ds is None or not ds.has_catalog:
                return _plain(404, "The specified blob does not exist.")
            cached = self.hub.catalog_blob_cached(ds_id)
            if cached is not None:
                return self.serve(req, path, cached)

            async def later() -> Response:
                blob = await self.hub.catalog_blob_async(ds_id)
                return self.serve(req, path, blob)

            return later()
        if path.startswith("mlhub/archives/") and path.endswith(".tar.gz"):
            archive = self.hub.archive_blob(path[len("mlhub/archives/") : -len(".tar.gz")])
            if archive is None:
                return _plain(404, "The specified blob does not exist.")
            return self.serve(req, path, archive)
        blob = self.asset_blob(path)
        if blob is None:
            return _plain(404, "The specified blob does not exist.")
        return self.serve(req, path, blob)

    def _static(self, req: Request, path: str) -> Response | Awaitable[Response]:
        """A document of a static STAC catalogue (off the event loop unless it is quick)."""
        if self.hub.static.cheap(path):
            blob = self.hub.static.blob(path)
            if blob is None:
                return _plain(404, "The specified blob does not exist.")
            return self.serve(req, path, blob)

        async def later() -> Response:
            loop = asyncio.get_running_loop()
            blob = await loop.run_in_executor(None, self.hub.static.blob, path)
            if blob is None:
                return _plain(404, "The specified blob does not exist.")
            return self.serve(req, path, blob)

        return later()

    def serve(self, req: Request, path: str, blob: Blob) -> Response:
        """A 200/206/304/416 response for ``blob`` honouring Range, If-Range, If-None-Match."""
        faults = self.hub.faults
        hdrs = req.headers
        if (
            "range" not in hdrs
            and "if-none-match" not in hdrs
            and not faults.no_ranges
            and not faults.no_range_paths
        ):
            return Response(200, blob.full_headers, blob.body, send_body=req.method == "GET")
        ranges_ok = not (faults.no_ranges or ("/" + path) in faults.no_range_paths)
        size = blob.size
        lm = blob.last_modified_http
        headers = [
            ("Content-Type", blob.content_type),
            ("ETag", blob.etag),
            ("Last-Modified", lm),
        ]
        if ranges_ok:
            headers.append(("Accept-Ranges", "bytes"))
        inm = req.headers.get("if-none-match")
        if inm and (inm.strip() == "*" or blob.etag in [t.strip() for t in inm.split(",")]):
            return Response(304, headers, None, length=0)
        rng = parse_range(req.headers.get("range", ""), size) if ranges_ok else None
        if rng is not None and "if-range" in hdrs and not _if_range_ok(hdrs["if-range"], blob):
            rng = None
        send = req.method == "GET"
        if rng == "unsatisfiable":
            return Response(416, [*headers, ("Content-Range", f"bytes */{size}")], None)
        if isinstance(rng, tuple):
            first, last = rng
            headers.append(("Content-Range", f"bytes {first}-{last}/{size}"))
            return Response(206, headers, blob.body, first, last, send_body=send)
        if blob.md5:
            headers.append(("Content-MD5", blob.md5))
        return Response(200, headers, blob.body, send_body=send)


def _if_range_ok(value: str, blob: Blob) -> bool:
    value = value.strip()
    if value.startswith(('"', "W/")):
        return value == blob.etag  # strong comparison only
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return False
    return int(when) == int(blob.last_modified)


def _plain(status: int, message: str) -> Response:
    body = Body.of(message.encode())
    return Response(status, [("Content-Type", "text/plain; charset=utf-8")], body)
