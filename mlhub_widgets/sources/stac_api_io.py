"""pystac-client's input/output on the package's HTTP layer.

pystac-client reads a STAC API with its own ``requests`` session. :class:`NetStacApiIO` replaces
its :meth:`request` so that a STAC API source behaves like every other request of the package:
the session's proxy and CA settings, the retry policy, a deadline and a size cap per page, and
headers that go to the API's origin only. It also ends a search whose ``next`` link leads back
to a page already read (a server paging in a circle would otherwise never stop).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from pystac.link import Link
from pystac_client.exceptions import APIError
from pystac_client.stac_api_io import StacApiIO

from ..exceptions import MLHubResponseError
from ..net.http import Credentials, error_detail
from ..net.redact import redact_url
from ..net.settings import NetworkSettings
from ..net.sync import fetch

__all__ = ["NetStacApiIO"]

_BODY_METHODS = ("POST", "PUT", "PATCH")


def _with_query(url: str, parameters: dict[str, Any] | None) -> str:
    if not parameters:
        return url
    pairs: list[tuple[str, str]] = []
    for key, value in parameters.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, dict):
            value = json.dumps(value, separators=(",", ":"))
        pairs.append((str(key), str(value)))
    parts = urlsplit(url)
    query = urlencode(pairs)
    return urlunsplit(parts._replace(query=f"{parts.query}&{query}" if parts.query else query))


def _page_key(href: Any, method: Any, body: Any) -> str:
    return json.dumps([href, str(method).upper(), body or None], sort_keys=True, default=str)


class NetStacApiIO(StacApiIO):
    """A :class:`pystac_client.stac_api_io.StacApiIO` whose requests use
    :mod:`mlhub_widgets.net`.

    Args:
        network: proxy, TLS, timeouts, retries and size caps.
        credentials: headers for the API's origin (never sent to another host).
    """

    def __init__(self, network: NetworkSettings, credentials: Credentials | None = None) -> None:
        super().__init__(max_retries=None)
        self.network = network
        self.credentials = credentials

    def request(
        self,
        href: str,
        method: str | None = None,
        headers: dict[str, str] | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> str:
        """One request; the body as text (pystac-client's contract: :class:`APIError` for
        any answer outside 2xx)."""
        method = (method or "GET").upper()
        body = parameters if method in _BODY_METHODS else None
        url = href if method in _BODY_METHODS else _with_query(href, parameters)
        doc = fetch(
            url,
            settings=self.network,
            credentials=self.credentials,
            headers={"Accept": "application/geo+json, application/json;q=0.9", **(headers or {})},
            method=method,
            json=body,
        )
        if not 200 <= doc.status < 300:
            detail = error_detail(doc.body, doc.content_type) or f"HTTP {doc.status}"
            error = APIError(f"{method} {redact_url(doc.url)}: {detail}")
            error.status_code = doc.status
            raise error
        return doc.body.decode("utf-8", "replace")

    def get_pages(
        self,
        url: str,
        method: str | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Pages of a paged endpoint (``/search``, ``/collections``), following ``next`` links.

        Raises:
            MLHubResponseError: a ``next`` link repeats one already followed (a loop).
        """
        verb = (method or "GET").upper()
        first = (
            _page_key(url, verb, parameters)
            if verb in _BODY_METHODS
            else _page_key(_with_query(url, parameters), "GET", None)
        )
        seen = {first}
        page = self.read_json(url, method=method, parameters=parameters)
        while page.get("features") or page.get("collections"):
            yield page
            link = next((lk for lk in page.get("links", []) if lk.get("rel") == "next"), None)
            if link is None:
                return
            key = _page_key(link.get("href"), link.get("method", "GET"), link.get("body"))
            if key in seen:
                raise MLHubResponseError(
                    f"pagination loop: {redact_url(str(link.get('href')))} was already read",
                    url=str(link.get("href")),
                )
            seen.add(key)
            page = self.read_json(Link.from_dict(link), parameters=parameters)
