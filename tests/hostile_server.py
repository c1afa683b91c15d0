"""A hostile MLHub-like server written for the attack tests: plain ``http.server``, no hub.

:func:`hostile_server` starts a loopback server whose every answer the test chooses
(:class:`Answer`: status, headers, body, and an optional event to hold it back), so that an
attack does not depend on the bundled hub's fault flags. :func:`serve_dataset` puts a dataset
on it the way the MLHub API serves one (``catalog/{id}/info``, the catalogue tarball,
``datasets/{id}``), with a catalogue built by :func:`catalogue_tarball` from items made by
:func:`stac_item` and asset bytes served under ``/files/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tarfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

API = "mlhub/v1/"


@dataclass
class Answer:
    """What the server answers to one path."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    hold: threading.Event | None = None
    """If set, the answer waits until the event is set (at most 60 s)."""
    arrived: threading.Event = field(default_factory=threading.Event)
    """Set when a request for it arrives."""


Route = Answer | Callable[[str], Answer]
"""A fixed answer, or a function of the request method giving one."""


@dataclass
class HostileServer:
    """The running server: ``routes`` maps a path (no query) to its answer; 404 otherwise."""

    url: str = ""
    routes: dict[str, Route] = field(default_factory=dict)
    budget: int | None = None
    """Requests answered before every further one gets a 500 (a runaway client fails fast)."""
    requests: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def api(self) -> str:
        """The API root (``…/mlhub/v1/``)."""
        return self.url + API

    def json(self, path: str, doc: object, status: int = 200) -> None:
        """Answer ``path`` with ``doc`` as JSON."""
        body = json.dumps(doc).encode()
        self.routes[path] = Answer(status, body, {"Content-Type": "application/json"})

    def count(self, prefix: str = "") -> int:
        """Requests made so far to paths starting with ``prefix``."""
        with self.lock:
            return sum(n for path, n in self.requests.items() if path.startswith(prefix))


@contextlib.contextmanager
def hostile_server() -> Iterator[HostileServer]:
    """Start a :class:`HostileServer` on 127.0.0.1 (port 0); stop it at the end."""
    state = HostileServer()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _handle(self) -> None:
            path = urlsplit(self.path).path
            with state.lock:
                state.requests[path] += 1
                spent = state.budget is not None and sum(state.requests.values()) > state.budget
            route = state.routes.get(path) if not spent else Answer(500, b"request budget spent")
            answer = route(self.command) if callable(route) else route
            if answer is None:
                answer = Answer(
                    404, b'{"detail": "not found"}', {"Content-Type": "application/json"}
                )
            answer.arrived.set()
            if answer.hold is not None:
                answer.hold.wait(60)
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.body)

        do_GET = _handle
        do_HEAD = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, name="hostile-server", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


# ---------------------------------------------------------------------------------------------
# datasets


def checksum(data: bytes) -> str:
    """``file:checksum`` of ``data``: the sha2-256 multihash MLHub catalogues use."""
    return "1220" + hashlib.sha256(data).hexdigest()


def stac_item(item_id: str, collection: str, assets: dict[str, Any]) -> dict[str, Any]:
    """A minimal valid STAC item."""
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "collection": collection,
        "bbox": [10.0, 10.0, 10.1, 10.1],
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[10, 10], [10.1, 10], [10.1, 10.1], [10, 10.1], [10, 10]]],
        },
        "properties": {"datetime": "2021-06-01T00:00:00Z"},
        "links": [],
        "assets": assets,
    }


def file_asset(server: HostileServer, ds: str, name: str, data: bytes) -> dict[str, Any]:
    """Serve ``data`` under ``/files/{ds}/{name}``; return its asset (size and checksum)."""
    path = f"/files/{ds}/{name}"
    server.routes[path] = Answer(200, data, {"Content-Type": "image/tiff", "ETag": f'"{name}"'})
    return {
        "href": server.url + path[1:],
        "type": "image/tiff",
        "file:size": len(data),
        "file:checksum": checksum(data),
    }


def dataset_items(
    server: HostileServer, ds: str, n: int = 3
) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """``n`` items of collection ``c`` with one asset each (``image``, served with size and
    checksum); returns the items and the bytes of each asset by its saved path."""
    items, files = [], {}
    for i in range(n):
        data = os.urandom(200 + i)
        items.append(stac_item(f"i{i}", "c", {"image": file_asset(server, ds, f"i{i}.tif", data)}))
        files[f"c/i{i}/image.tif"] = data
    return items, files


def catalogue_tarball(
    ds: str,
    items: list[dict[str, Any]],
    *,
    extra: list[tuple[str, bytes]] = (),  # type: ignore[assignment]
    members: list[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]] = (),  # type: ignore[assignment]
) -> bytes:
    """A ``.tar.gz`` catalogue of ``ds`` (catalog, one collection ``c``, ``items``), then the
    ``extra`` files and raw ``members``, in that order."""
    catalog = {"type": "Catalog", "id": ds, "stac_version": "1.0.0", "description": "d",
               "links": []}  # fmt: skip
    collection = {
        "type": "Collection", "id": "c", "stac_version": "1.0.0", "description": "d",
        "license": "CC0-1.0", "links": [],
        "extent": {"spatial": {"bbox": [[10, 10, 11, 11]]},
                   "temporal": {"interval": [[None, None]]}},
    }  # fmt: skip
    docs = [
        (f"{ds}/catalog.json", json.dumps(catalog).encode()),
        (f"{ds}/c/collection.json", json.dumps(collection).encode()),
    ]
    for item in items:
        docs.append((f"{ds}/c/{item['id']}/{item['id']}.json", json.dumps(item).encode()))
    docs.extend(extra)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        for name, data in docs:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1_600_000_000, 0o644
            tar.addfile(info, io.BytesIO(data))
        for member in members:
            if isinstance(member, tuple):
                info, data = member
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(member)
    return buf.getvalue()


def serve_dataset(
    server: HostileServer,
    ds: str,
    tarball: bytes,
    *,
    info: object = None,
    etag: str | None = None,
) -> None:
    """Serve ``ds`` as the MLHub API does: its info (``stac_catalog_size``, unless ``info``
    is given), its record and its catalogue tarball (straight from the API path)."""
    api = "/" + API
    default = {"stac_catalog_size": len(tarball), "estimated_dataset_size": 1000}
    server.json(f"{api}catalog/{ds}/info", info if info is not None else default)
    server.json(
        f"{api}datasets/{ds}",
        {"id": ds, "title": ds, "collections": [{"id": "c", "types": ["source_imagery"]}]},
    )
    headers = {"Content-Type": "application/gzip", "ETag": f'"{etag or len(tarball)}"'}
    server.routes[f"{api}catalog/{ds}"] = Answer(200, tarball, headers)
