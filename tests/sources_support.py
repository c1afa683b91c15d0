"""Helpers for the source tests: the nasa_marine_debris catalogue on disk and over HTTP."""

from __future__ import annotations

import functools
import http.server
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from mlhub_widgets.hub import Hub
from tests.fixture_paths import NASA_CATALOG

_HUB: list[Hub] = []


def sources_hub(config: pytest.Config) -> Hub:
    """A bundled hub for the source tests only, started once per test session.

    Walking static catalogues makes thousands of requests; on a hub of their own they do not
    crowd the request log other tests read from the shared ``hub`` fixture.
    """
    if not _HUB:
        hub = Hub().start()
        config.add_cleanup(hub.stop)
        _HUB.append(hub)
    return _HUB[0]


FIXTURE = NASA_CATALOG
DATASET = "nasa_marine_debris"


def unpack(tarball: Path, dest: Path) -> Path:
    """Unpack a catalogue tarball (``data`` filter: no links, no escapes); the catalogue root."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "r:gz") as tf:
        tf.extractall(dest, filter="data")
    (root,) = [p for p in dest.iterdir() if (p / "catalog.json").is_file()]
    return root


_UNPACKED: dict[tuple[str, str], Path] = {}


def hub_catalog(hub: Hub, dataset_id: str, dest: Path) -> Path:
    """The hub's own catalogue tarball of ``dataset_id`` (asset hrefs on its storage origin),
    downloaded over HTTP and unpacked under ``dest``; returns the catalogue folder.

    Unpacked once per hub and dataset: later calls return the first folder (read-only use)."""
    key = (hub.storage_url, dataset_id)
    if key in _UNPACKED and _UNPACKED[key].is_dir():
        return _UNPACKED[key]
    url = f"{hub.storage_url}mlhub/catalogs/{dataset_id}.tar.gz"
    response = requests.get(url, timeout=60)
    response.raise_for_status()
    tarball = dest / f"{dataset_id}.tar.gz"
    dest.mkdir(parents=True, exist_ok=True)
    tarball.write_bytes(response.content)
    _UNPACKED[key] = unpack(tarball, dest / "unpacked")
    return _UNPACKED[key]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on loopback (a real server); yields its base URL."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def hub_static_url(hub: Hub, dataset_id: str = DATASET) -> str:
    """The hub's static-catalogue URL of a dataset. The hub serves every dataset's catalogue
    as a static catalogue: a URL it does not answer fails the test (a broken hub feature)."""
    url = f"{hub.storage_url}catalogs/{dataset_id}/catalog.json"
    status = requests.get(url, timeout=10).status_code
    assert status == 200, f"the bundled hub answers {status} to its static catalogue {url}"
    return url
