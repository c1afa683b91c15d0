"""Errors as the explorer shows them: one line for the user, never a traceback.

The messages are written here from the exception's *class* and its fields (status code, URL,
file name), not copied from its text: the text of a library exception is written for a
programmer (it names the request that failed, or the command-line tool to run), and the text
of a transport error is the HTTP library's own (``HTTPConnectionPool(...): Max retries…``).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from ... import exceptions as _exceptions
from ...exceptions import (
    APIKeyNotFound,
    AuthenticationError,
    CatalogError,
    DiskFullError,
    DownloadError,
    EntityDoesNotExist,
    MLHubException,
    MLHubHTTPError,
    MLHubResponseError,
)

#: ``NetworkError`` / ``TLSVerificationError`` come with the new network layer; until then a
#: transport failure is an :class:`MLHubException` raised while handling an ``OSError`` (the
#: HTTP library's connection errors are ``OSError`` subclasses), which :func:`_transport`
#: recognises by class too.
_NETWORK_ERROR: type[BaseException] | None = getattr(_exceptions, "NetworkError", None)
_TLS_ERROR: type[BaseException] | None = getattr(_exceptions, "TLSVerificationError", None)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_tls(exc: BaseException) -> bool:
    for e in _chain(exc):
        if _TLS_ERROR is not None and isinstance(e, _TLS_ERROR):
            return True
        if isinstance(e, ssl.SSLError):
            return True
        if type(e).__name__ == "SSLError" and isinstance(e, OSError):  # requests' SSLError
            return True
    return False


def _transport(exc: BaseException) -> bool:
    """True when no answer came back: refused, unreachable, timed out, TLS failed."""
    if _NETWORK_ERROR is not None and isinstance(exc, _NETWORK_ERROR):
        return True
    if isinstance(exc, MLHubHTTPError | MLHubResponseError):
        return False
    if isinstance(exc, MLHubException):
        return any(isinstance(e, OSError | TimeoutError) for e in list(_chain(exc))[1:])
    return False


def _server(url: str | None) -> str:
    """``scheme://host:port`` of a URL (what a user recognises), or ``"the server"``."""
    if not url:
        return "the server"
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def friendly_error(exc: BaseException, *, url: str | None = None, key_sent: bool = True) -> str:
    """A message for the user (no traceback) for an exception raised by the core or the OS.

    ``url`` is the server the work talked to (named in connection messages); ``key_sent`` says
    whether an API key was sent (a 401 then means a wrong key, else a missing one).
    """
    where = _server(url or getattr(exc, "url", None))
    if _is_tls(exc) and (_transport(exc) or not isinstance(exc, MLHubException)):
        return (
            f"The TLS certificate of {where} is not trusted. Behind a company proxy or a "
            "private CA, point SSL_CERT_FILE at its CA bundle and restart the kernel."
        )
    if _transport(exc):
        return (
            f"Cannot reach {where}: no answer. Is the server running, is the URL right, and "
            "is the network up?"
        )
    if isinstance(exc, AuthenticationError):
        if key_sent:
            return f"The API key was rejected by {where}. Check the key, or choose another profile."
        return (
            f"No API key was sent, and {where} needs one: enter it in the API key field, or "
            "choose a profile."
        )
    if isinstance(exc, APIKeyNotFound):
        return f"No usable API key: {exc}"
    if isinstance(exc, EntityDoesNotExist):
        return f"Not found on {where}: {exc.detail or 'HTTP 404'}"
    if isinstance(exc, MLHubResponseError):
        return (
            f"{where} answered, but not like an MLHub API. Check the root URL (it must end at "
            "the API root, e.g. …/v1/)."
        )
    if isinstance(exc, MLHubHTTPError):
        detail = f": {exc.detail}" if exc.detail else ""
        return f"{where} answered HTTP {exc.status_code}{detail}"
    if isinstance(exc, MLHubException):
        return str(exc)
    if isinstance(exc, ValueError | TypeError):
        return str(exc)
    if isinstance(exc, PermissionError):
        return f"Permission denied: {exc.filename or exc}"
    if isinstance(exc, OSError):
        what = exc.strerror or type(exc).__name__
        return f"{what}: {exc.filename}" if exc.filename else what
    return f"Unexpected error ({type(exc).__name__}): {exc}"


@dataclass(frozen=True)
class FailedAsset:
    """One asset a download could not fetch."""

    collection: str
    item: str
    asset_key: str
    reason: str
    url: str = ""


def job_error_text(error: BaseException, *, dataset_id: str, output_dir: str) -> str:
    """What the Download tab says when a job ends with ``error`` (a ``JobFailed`` event)."""
    if isinstance(error, DiskFullError):
        return f"{error} Free some space, then Start resumes where the download stopped."
    if isinstance(error, CatalogError):
        return (
            f"The catalogue of {dataset_id} could not be read ({error}). Start fetches it anew; "
            "files already downloaded are kept."
        )
    if isinstance(error, DownloadError):
        n = error.failed
        what = f"{n} asset{'s' if n != 1 else ''}" if n else "Some assets"
        return (
            f"{what} could not be downloaded (listed below). Start again retries only those "
            "and the missing ones; every complete file is kept."
        )
    if isinstance(error, EntityDoesNotExist):
        return metadata_only_reason(dataset_id)
    if isinstance(error, OSError) and not isinstance(error, MLHubException):
        target = error.filename or output_dir
        what = error.strerror or type(error).__name__
        return f"Cannot write to {target}: {what}. Choose another output directory."
    return f"The download stopped: {friendly_error(error)}"


def metadata_only_reason(dataset_id: str) -> str:
    """Why a dataset whose catalogue the server does not have cannot be downloaded."""
    return (
        f"Metadata only: the server has no STAC catalogue for {dataset_id}, so its assets "
        "cannot be listed or downloaded (its record and collections are still shown)."
    )
