"""TLS with a private CA (trustme): the CA, and a TLS front for any plain loopback server.

Clients trust the CA only when told (``verify=``, ``--cacert``, ``SSL_CERT_FILE``,
obstore's ``root_certificate``); the autouse environment fixture removes the shell's CA
variables, so a client that ignores the setting fails with ``CERTIFICATE_VERIFY_FAILED``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .process import LOOPBACK, LoopThread, splice
from .proxy import PROXY_NAMES

#: Names in the server certificate: loopback plus every name the forward proxy resolves.
CERT_NAMES = ("localhost", "127.0.0.1", "::1", *PROXY_NAMES)


@dataclass
class TlsCA:
    """A private CA and one server certificate for :data:`CERT_NAMES`.

    Attributes:
        ca: the ``trustme.CA``.
        ca_pem: the CA certificate, for clients.
        server_pem: key and certificate chain in one file, for Python servers.
        cert_pem / key_pem: the same as two files (``moto_server -c/-k``, ``azurite --cert/--key``).
    """

    ca: Any
    ca_pem: Path
    server_pem: Path
    cert_pem: Path
    key_pem: Path

    def server_context(self) -> ssl.SSLContext:
        """An ``SSLContext`` for a server presenting the certificate."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.server_pem))
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """An ``SSLContext`` for a client that trusts only this CA."""
        return ssl.create_default_context(cafile=str(self.ca_pem))

    def trust_in_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Trust the CA through the environment (``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``,
        ``CURL_CA_BUNDLE``, ``AWS_CA_BUNDLE``) for one test."""
        for var in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "AWS_CA_BUNDLE"):
            monkeypatch.setenv(var, str(self.ca_pem))


@pytest.fixture(scope="session")
def tls_ca(tmp_path_factory: pytest.TempPathFactory) -> TlsCA:
    """A private CA (trustme) and a server certificate for loopback and the proxy's names."""
    import trustme

    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert(*CERT_NAMES)
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    cert.private_key_and_cert_chain_pem.write_to_path(str(folder / "server.pem"))
    cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    return TlsCA(
        ca, folder / "ca.pem", folder / "server.pem", folder / "cert.pem", folder / "key.pem"
    )


@dataclass
class TlsFront:
    """TLS terminator on ``127.0.0.1:port`` forwarding plain bytes to ``127.0.0.1:backend_port``."""

    port: int
    backend_port: int
    ca_pem: Path

    def url(self, host: str = "localhost") -> str:
        """``https://{host}:{port}`` (``host`` must be one of :data:`CERT_NAMES`)."""
        return f"https://{host}:{self.port}"


class TlsFronts:
    """TLS fronts on one event loop thread; each forwards to a plain server on loopback."""

    def __init__(self, ca: TlsCA) -> None:
        self.ca = ca
        self.loop = LoopThread("tls-front")
        self._ctx = ca.server_context()
        self._servers: list[asyncio.Server] = []

    def __call__(self, backend_port: int) -> TlsFront:
        """Start a TLS front for ``127.0.0.1:backend_port``."""

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                backend = asyncio.open_connection(LOOPBACK, backend_port)
                br, bw = await asyncio.wait_for(backend, 5)
            except (OSError, TimeoutError):
                writer.close()
                return
            await splice(reader, writer, br, bw)

        async def start() -> asyncio.Server:
            return await asyncio.start_server(
                handle, LOOPBACK, 0, ssl=self._ctx, ssl_handshake_timeout=10
            )

        server = self.loop.run(start())
        self._servers.append(server)
        return TlsFront(server.sockets[0].getsockname()[1], backend_port, self.ca.ca_pem)

    def close(self) -> None:
        for server in self._servers:
            self.loop.loop.call_soon_threadsafe(server.close)
        self.loop.close()


@pytest.fixture(scope="session")
def tls_front(tls_ca: TlsCA) -> Iterator[Callable[[int], TlsFront]]:
    """A factory: ``tls_front(port)`` puts TLS (the private CA's certificate) in front of
    ``127.0.0.1:port``; every front stops at the end of the session."""
    fronts = TlsFronts(tls_ca)
    try:
        yield fronts
    finally:
        fronts.close()
