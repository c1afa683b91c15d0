"""Synchronous access to the HTTP layer, for the package's blocking calls.

Discovery (``mw.datasets()``, ``client.get_dataset()``), the STAC API reader and the static
catalogue walker are synchronous. They run their requests on one background event loop per
process (a daemon thread), through one shared :class:`~mlhub_widgets.net.http.HttpClient` per
:class:`~mlhub_widgets.net.settings.NetworkSettings`, so they pool connections across calls and
threads and behave exactly like the asynchronous download engine (same proxies, CAs, redirects,
limits and retry policy).

Calls block the calling thread, never the loop; calling them from the loop's own thread is an
error (it would deadlock). A Jupyter kernel's main thread is fine: its loop is a different one.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from .http import Credentials, Document, HttpClient, status_error
from .settings import NetworkSettings
from .tls import CA_BUNDLE_ENV_VARS

__all__ = ["fetch", "fetch_document", "run_sync", "shared_client"]

_T = TypeVar("_T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_clients: dict[tuple[NetworkSettings, tuple[str | None, ...]], HttpClient] = {}


def _reset_after_fork() -> None:
    global _loop, _thread, _lock
    _loop, _thread, _lock = None, None, threading.Lock()
    _clients.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    with _lock:
        if _loop is None or _thread is None or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def main() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            thread = threading.Thread(target=main, name="mlhub_widgets-net", daemon=True)
            thread.start()
            ready.wait()
            _loop, _thread = loop, thread
        return _loop


def _close_at_exit() -> None:
    """Close the shared clients' connections and stop the loop (no "unclosed" warnings)."""
    loop, thread = _loop, _thread
    if loop is None or thread is None or not thread.is_alive():
        return

    async def close_all() -> None:
        for client in list(_clients.values()):
            await client.close()
        _clients.clear()

    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(close_all(), loop).result(2.0)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(2.0)


atexit.register(_close_at_exit)


def run_sync(coro: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
    """Run ``coro`` on the background loop and wait for its result in this thread.

    Raises:
        RuntimeError: when called from the background loop's own thread.
    """
    loop = _background_loop()
    if threading.current_thread() is _thread:
        coro.close()
        raise RuntimeError("run_sync() called from the network thread itself")
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    try:
        return future.result(timeout)
    except (KeyboardInterrupt, concurrent.futures.TimeoutError):
        future.cancel()
        raise


#: Clients kept at once (one per settings and environment in use).
_MAX_CLIENTS = 8

#: Environment variables a client reads when it is made (proxies, CA bundles).
_ENV_VARS = (
    "http_proxy", "https_proxy", "all_proxy", "no_proxy", "REQUEST_METHOD",
    *(name.upper() for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")),
    *CA_BUNDLE_ENV_VARS,
)  # fmt: skip


async def shared_client(settings: NetworkSettings) -> HttpClient:
    """The background loop's client for ``settings`` and the current proxy and CA environment
    (a new one when ``HTTPS_PROXY``, ``SSL_CERT_FILE``... change, as ``requests`` would see
    them on its next request)."""
    key = (settings, tuple(os.environ.get(name) for name in _ENV_VARS))
    client = _clients.get(key)
    if client is None:
        while len(_clients) >= _MAX_CLIENTS:  # the oldest goes (dicts keep insertion order)
            await _clients.pop(next(iter(_clients))).close()
        client = _clients[key] = HttpClient(settings, limit=64)
    return client


def fetch(
    url: str,
    *,
    settings: NetworkSettings,
    credentials: Credentials | None = None,
    headers: Mapping[str, str] | None = None,
    method: str = "GET",
    json: Any = None,
    follow_redirects: bool = True,
    max_bytes: int | None = None,
) -> Document:
    """Blocking :meth:`HttpClient.fetch` on the shared client: any final status, retried."""

    async def go() -> Document:
        client = await shared_client(settings)
        return await client.fetch(
            url,
            method=method,
            credentials=credentials,
            headers=headers,
            json=json,
            follow_redirects=follow_redirects,
            max_bytes=max_bytes,
        )

    return run_sync(go())


def fetch_document(
    url: str,
    *,
    settings: NetworkSettings,
    credentials: Credentials | None = None,
    headers: Mapping[str, str] | None = None,
    not_found: str | None = None,
) -> Document:
    """A blocking GET of a whole document; raises for an error status (as
    :meth:`HttpClient.get_document`)."""
    doc = fetch(url, settings=settings, credentials=credentials, headers=headers)
    if doc.status >= 400:
        secrets = credentials.secrets() if credentials else ()
        raise status_error(doc, "GET", secrets, not_found)
    return doc
