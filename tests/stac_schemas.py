"""Offline JSON schemas for stac-validator, stac-api-validator and pystac's validation.

The validators fetch the STAC, extension and GeoJSON schemas from ``schemas.stacspec.org``,
``stac-extensions.github.io`` and ``geojson.org``: stac-validator with ``requests``, pystac with
its default StacIO. CI has no network, so :func:`offline_schemas` answers those fetches from
``tests/data/stac-schemas/<host>/<path>`` (see the README there for where each file comes from),
through a ``requests`` transport adapter and a pystac StacIO. A schema that is not shipped
answers 404 (or ``FileNotFoundError``), which the validators report as a failed schema fetch;
any other host off this machine is refused with a clear error instead of a slow DNS failure.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pystac
import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

SCHEMA_DIR = Path(__file__).parent / "data" / "stac-schemas"
SCHEMA_HOSTS = frozenset(p.name for p in SCHEMA_DIR.iterdir() if p.is_dir())
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class LocalSchemaAdapter(BaseAdapter):
    """Answers GETs of schema URLs from :data:`SCHEMA_DIR`; counts what it served."""

    def __init__(self) -> None:
        super().__init__()
        self.served: set[str] = set()
        self.missing: set[str] = set()

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """Serve one schema (404 when it is not shipped)."""
        url = str(request.url)
        parts = urlsplit(url)
        path = SCHEMA_DIR / parts.netloc / parts.path.lstrip("/")
        resp = requests.Response()
        resp.url = url
        resp.request = request
        resp.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
        if path.is_file() and SCHEMA_DIR in path.resolve().parents:
            resp.status_code = 200
            resp._content = path.read_bytes()
            self.served.add(url)
        else:
            resp.status_code = 404
            resp.reason = "Not Found"
            resp._content = b'{"detail":"schema not shipped in tests/data/stac-schemas"}'
            self.missing.add(url)
        return resp

    def close(self) -> None:
        """Nothing to release."""


class RefusedAdapter(BaseAdapter):
    """Refuses requests to hosts other than loopback and the schema hosts."""

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """Raise a clear ConnectionError."""
        raise requests.ConnectionError(f"offline test: no request to {request.url}")

    def close(self) -> None:
        """Nothing to release."""


def _local_schema(url: str) -> Path | None:
    """The shipped file of a schema URL (None: not a schema host)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None
    if (parts.hostname or "") not in SCHEMA_HOSTS:
        if (parts.hostname or "") not in LOOPBACK:
            raise ConnectionError(f"offline test: no request to {url}")
        return None
    return SCHEMA_DIR / parts.netloc / parts.path.lstrip("/")


class OfflineStacIO(pystac.stac_io.DefaultStacIO):
    """pystac's reader, with schema URLs read from :data:`SCHEMA_DIR`."""

    def read_text_from_href(self, href: str) -> str:
        """Read a shipped schema, or anything else as pystac does."""
        local = _local_schema(href)
        if local is not None:
            return local.read_text(encoding="utf-8")
        return super().read_text_from_href(href)


@contextmanager
def offline_schemas() -> Iterator[LocalSchemaAdapter]:
    """Within the block, every ``requests`` session resolves schema URLs locally."""
    adapter = LocalSchemaAdapter()
    refused = RefusedAdapter()
    original = requests.Session.get_adapter

    def get_adapter(self: requests.Session, url: str) -> BaseAdapter:
        host = urlsplit(url).hostname or ""
        if host in SCHEMA_HOSTS:
            return adapter
        if host not in LOOPBACK:
            return refused
        return original(self, url)

    previous_io = type(pystac.StacIO.default())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(requests.Session, "get_adapter", get_adapter)
        pystac.StacIO.set_default(OfflineStacIO)
        _clear_schema_caches()
        try:
            yield adapter
        finally:
            _clear_schema_caches()
            pystac.StacIO.set_default(previous_io)


def _clear_schema_caches() -> None:
    """Forget schemas stac-validator cached (a failed fetch must not outlive the block)."""
    from stac_validator import utilities

    utilities.fetch_and_parse_schema.cache_clear()  # type: ignore[attr-defined]


def stac_validator_errors(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """stac-validator's messages for one STAC object (core and extension schemas), [] if valid."""
    from stac_validator.validate import StacValidate

    validator = StacValidate()
    if validator.validate_dict(dict(document)):
        return []
    return list(validator.message)


def walk_stac(root: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every document reachable from a STAC catalogue (URL or file) through child/item links.

    The documents are read as JSON exactly as served or written (pystac would upgrade them to
    its own STAC version), each once, in link order.
    """
    todo = [str(root)]
    seen: set[str] = set()
    while todo:
        href = todo.pop(0)
        if href in seen:
            continue
        seen.add(href)
        if urlsplit(href).scheme in ("http", "https"):
            response = requests.get(href, timeout=30)
            response.raise_for_status()
            doc = response.json()
        else:
            doc = json.loads(Path(href).read_text(encoding="utf-8"))
        yield href, doc
        for link in doc.get("links") or []:
            if link.get("rel") in ("child", "item"):
                todo.append(_join(href, str(link["href"])))


def _join(base: str, href: str) -> str:
    if urlsplit(base).scheme in ("http", "https"):
        return urljoin(base, href)
    return str((Path(base).parent / href).resolve()) if not Path(href).is_absolute() else href
