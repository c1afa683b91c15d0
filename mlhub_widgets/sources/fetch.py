"""Reading STAC JSON documents from files, HTTP(S) URLs and object stores, from many threads.

URLs go through the package's HTTP layer (:mod:`mlhub_widgets.net`): proxies, CAs, the retry
policy, a size cap and a deadline per document; headers given for a source go only to the
source's origin, also across redirects. ``s3://``, ``gs://`` and ``az://`` documents are read
through :mod:`mlhub_widgets.net.objects` with the source's ``storage_options``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from ..exceptions import EntityDoesNotExist, MLHubException
from ..net.http import Credentials
from ..net.objects import (
    check_local_path,
    is_object_url,
    join_object_url,
    read_object,
    resolve,
)
from ..net.objects.urls import join_relative_path
from ..net.settings import NetworkSettings
from ..net.sync import fetch_document

__all__ = ["JsonReader", "is_remote", "is_url", "resolve_href"]


def is_url(href: str) -> bool:
    """True for ``http://`` and ``https://`` hrefs."""
    return href.startswith(("http://", "https://"))


def is_remote(href: str) -> bool:
    """True for hrefs that are not local paths: HTTP(S) and object-store URLs."""
    return is_url(href) or is_object_url(href)


def resolve_href(href: str, base: str) -> str:
    """An href made absolute against the document it appears in (URL or file path)."""
    if is_url(href) or "://" in href:
        return href
    if is_url(base):
        return _join_url(base, href)
    if is_object_url(base):
        return join_object_url(base, href)
    if href.startswith("file://"):
        return unquote(urlsplit(href).path)
    if os.path.isabs(href):
        return os.path.normpath(href)
    return os.path.normpath(os.path.join(os.path.dirname(base), href))


def _join_url(base: str, href: str) -> str:
    """``urljoin`` with a fast path for plain relative paths (``a/b.json``, ``../c.json``)."""
    if "?" in base or "#" in base or href.startswith(("/", "?", "#")) or ":" in href:
        return urljoin(base, href)
    root = base.find("/", base.find("//") + 2)  # the slash after the host
    if root < 0:
        return urljoin(base, href)
    joined = join_relative_path(base, href, root)
    return joined if joined is not None else urljoin(base, href)


class JsonReader:
    """Reads JSON documents by href; safe to call from many threads at once.

    Args:
        network: proxy, TLS, timeouts, retries and the size cap of every request.
        credentials: headers (``Authorization``...) for one origin, sent nowhere else.
        storage_options: options of the object stores documents are read from.
    """

    def __init__(
        self,
        *,
        network: NetworkSettings | None = None,
        credentials: Credentials | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.network = network or NetworkSettings()
        self.credentials = credentials
        self.storage_options = dict(storage_options or {})
        self._stores: dict[tuple[str, ...], Any] = {}  # one lookup per bucket
        self.headers = {"Accept": "application/json, application/geo+json;q=0.9, */*;q=0.1"}
        #: documents requested over HTTP so far
        self.requests = 0

    def __getstate__(self) -> dict[str, Any]:
        """A copy for another interpreter opens its own stores."""
        state = self.__dict__.copy()
        state["_stores"] = {}
        return state

    def read(self, href: str) -> Any:
        """The parsed JSON document at ``href`` (URL or file path).

        Raises:
            EntityDoesNotExist: 404, a missing object or a missing file.
            UnsupportedURLError: a scheme the package does not read.
            MLHubHTTPError: another HTTP error status after retries.
            NetworkError: the document could not be fetched.
            MLHubException: the document is not JSON.
        """
        if is_object_url(href):
            self.requests += 1
            bucket = href.split("/", 3)[:3]
            store = self._stores.get(tuple(bucket))
            if store is None:
                store = self._stores[tuple(bucket)] = resolve(
                    href, self.storage_options, self.network
                )[0]
            data = read_object(
                href, storage_options=self.storage_options, network=self.network, store=store
            )
            return self._decode(data, href)
        if not is_url(href):
            check_local_path(href, "STAC document")
            try:
                with open(href, "rb") as fh:
                    data = fh.read(self.network.max_document_bytes + 1)
            except FileNotFoundError:
                raise EntityDoesNotExist(
                    404, "GET", href, None, message=f"STAC document not found: {href}"
                ) from None
            if len(data) > self.network.max_document_bytes:
                raise MLHubException(
                    f"{href} is larger than {self.network.max_document_bytes:,} bytes"
                )
            return self._decode(data, href)
        self.requests += 1
        doc = fetch_document(
            href,
            settings=self.network,
            credentials=self.credentials,
            headers=self.headers,
            not_found=f"STAC document not found: {href}",
        )
        return self._decode(doc.body, href)

    @staticmethod
    def _decode(data: bytes, href: str) -> Any:
        try:
            return json.loads(data)
        except ValueError as exc:
            raise MLHubException(f"{href} is not a JSON document: {exc}") from None
