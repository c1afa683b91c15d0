"""The bundled hub behind public URLs: over TLS, on names only the forward proxy resolves.

The hub binds 127.0.0.1 as always; :class:`PublicHub` only changes the URLs it hands out
(``hub.url``, ``hub.storage_url`` and every link, redirect and asset href in its responses):

===================  ========================================  ============================
fixture              ``hub.url``                               reached
===================  ========================================  ============================
``tls_hub``          ``https://localhost:P/mlhub/v1/``         directly; trust the CA
``proxied_hub``      ``http://hub.test.invalid:P/mlhub/v1/``   only via ``forward_proxy``
``proxied_tls_hub``  ``https://hub.test.invalid:P/mlhub/v1/``  via the proxy, with the CA
===================  ========================================  ============================

The storage origin is ``storage_url`` on the same scheme (``storage.test.invalid`` for the
proxied ones). For a hub of the test's own (faults, a key, other data) use the factory
``make_public_hub(tls=..., proxied=..., **serve_kwargs)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from mlhub_widgets.hub import Hub

from .proxy import HUB_NAME, STORAGE_NAME
from .tls import TlsCA, TlsFronts

API_PATH = "/mlhub/v1/"


class PublicHub(Hub):
    """A :class:`Hub` whose URLs name public origins instead of its loopback ports.

    ``hub.loopback_url`` / ``hub.loopback_storage_url`` are the ports it really binds.
    """

    public_url = ""
    public_storage_url = ""

    @property
    def url(self) -> str:
        return self.public_url or super().url

    @property
    def storage_url(self) -> str:
        return self.public_storage_url or super().storage_url

    @property
    def loopback_url(self) -> str:
        return super().url

    @property
    def loopback_storage_url(self) -> str:
        return super().storage_url

    def _to_loopback(self, url: str) -> str:
        if self.public_storage_url and url.startswith(self.public_storage_url):
            return self.loopback_storage_url + url[len(self.public_storage_url) :]
        return url

    def asset_bytes(self, url: str) -> bytes:
        return super().asset_bytes(self._to_loopback(url))

    def change_asset(self, url: str) -> None:
        super().change_asset(self._to_loopback(url))


@contextlib.contextmanager
def public_hub(ca: TlsCA | None, *, proxied: bool, **serve_kwargs: Any) -> Iterator[PublicHub]:
    """Run a :class:`PublicHub`: TLS in front of both origins when ``ca`` is given, and
    proxy-only names (:data:`HUB_NAME`, :data:`STORAGE_NAME`) when ``proxied``."""
    hub = PublicHub(**serve_kwargs)
    fronts = TlsFronts(ca) if ca is not None else None
    try:
        hub.start()
        api_port = urlsplit(hub.loopback_url).port
        st_port = urlsplit(hub.loopback_storage_url).port
        assert api_port is not None and st_port is not None
        if fronts is not None:
            api_port, st_port = fronts(api_port).port, fronts(st_port).port
        scheme = "https" if ca is not None else "http"
        api_host, st_host = (HUB_NAME, STORAGE_NAME) if proxied else ("localhost", "localhost")
        hub.public_url = f"{scheme}://{api_host}:{api_port}{API_PATH}"
        hub.public_storage_url = f"{scheme}://{st_host}:{st_port}/"
        yield hub
    finally:
        hub.stop()
        if fronts is not None:
            fronts.close()


@pytest.fixture(scope="session")
def tls_hub(tls_ca: TlsCA) -> Iterator[PublicHub]:
    """The bundled hub over TLS (private CA) on ``localhost``: ``https://localhost:P/mlhub/v1/``."""
    with public_hub(tls_ca, proxied=False) as hub:
        yield hub


@pytest.fixture(scope="session")
def proxied_hub() -> Iterator[PublicHub]:
    """The bundled hub over plain HTTP on names only ``forward_proxy`` resolves."""
    with public_hub(None, proxied=True) as hub:
        yield hub


@pytest.fixture(scope="session")
def proxied_tls_hub(tls_ca: TlsCA) -> Iterator[PublicHub]:
    """The bundled hub over TLS (private CA) on names only ``forward_proxy`` resolves."""
    with public_hub(tls_ca, proxied=True) as hub:
        yield hub


@pytest.fixture
def make_public_hub(tls_ca: TlsCA) -> Iterator[Callable[..., PublicHub]]:
    """A factory for a test's own hub: ``make_public_hub(tls=True, proxied=False,
    require_key=KEY)`` (keyword arguments of :class:`Hub`); stopped after the test."""
    with contextlib.ExitStack() as stack:

        def make(*, tls: bool, proxied: bool, **serve_kwargs: Any) -> PublicHub:
            return stack.enter_context(
                public_hub(tls_ca if tls else None, proxied=proxied, **serve_kwargs)
            )

        yield make
