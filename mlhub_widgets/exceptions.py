"""The exception hierarchy of mlhub_widgets.

Everything the library raises on purpose derives from :class:`MLHubException`. HTTP failures
carry the status code, the method, the URL (with the API key masked) and the server's message.

::

    MLHubException
    ├── APIKeyNotFound          no key could be resolved, or a profile is unusable
    ├── ProfileError            the profiles file is unreadable or malformed (also APIKeyNotFound)
    ├── ConfigurationError      a setting that cannot be used: proxy, CA bundle, storage option
    │   └── OutputFolderError   the output folder cannot be created or written to
    ├── NetworkError            a request could not complete: connection, proxy, TLS, timeout,
    │   │                       redirects, a body cut short (after retries where they help)
    │   └── TLSVerificationError  the server's certificate is not trusted
    ├── MLHubResponseError      the server answered something that is not what the API promises
    │   └── ResponseTooLarge    an answer is larger than the limit for its kind
    ├── MLHubHTTPError          any HTTP status >= 400 after retries
    │   ├── AuthenticationError 401: missing or wrong API key
    │   └── EntityDoesNotExist  404 on a dataset, collection, item, model, catalogue or archive
    ├── NoAssetsSelected        the filters leave nothing to download (also a ValueError)
    ├── MissingDependencyError  an optional extra is not installed (also an ImportError)
    ├── FolderInUseError        another download of the dataset runs in the same folder
    ├── UnsafeArchiveError      a catalogue archive member could escape or exhaust the folder
    └── DownloadError           a download finished with failed assets (see err_report.csv)
        ├── CatalogError        the dataset's catalogue is damaged or cut short
        ├── DiskFullError       no space left where the download writes
        └── ClusterError        a download's Dask cluster is unreachable, was lost or failed

Warnings a user must act on are :class:`MLHubWarning` subclasses, issued with
:func:`warnings.warn` so that notebooks show them (logging is for diagnostics only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .net.redact import redact_text, redact_url


class MLHubException(Exception):
    """Base class of every error raised on purpose by mlhub_widgets."""


class APIKeyNotFound(MLHubException):
    """No API key could be resolved from arguments, the environment or a profile."""


class ProfileError(APIKeyNotFound):
    """The profiles file, or a profile in it, is missing, unreadable or malformed."""


class MLHubResponseError(MLHubException):
    """The server sent a body that is not what the API promises (e.g. HTML instead of JSON)."""

    def __init__(self, message: str, *, url: str | None = None, status_code: int | None = None):
        self.url = redact_url(url) if url else None
        self.status_code = status_code
        super().__init__(redact_text(message))


class ResponseTooLarge(MLHubResponseError):
    """An answer is larger than the limit for its kind (e.g. an endless JSON body); the read
    stopped at the limit."""


class ConfigurationError(MLHubException, ValueError):
    """A setting cannot be used: a proxy URL, a CA bundle, a storage option, an output location."""


class NetworkError(MLHubException):
    """A request could not be completed: no connection, proxy or TLS failure, a timeout, too many
    redirects, or a body cut short — after the retries that could help.

    Attributes:
        url: the request URL with credentials masked.
        retryable: whether trying again later may succeed (a TLS verification failure or a
            redirect loop will not).
    """

    def __init__(self, message: str, *, url: str | None = None, retryable: bool = True) -> None:
        self.url = redact_url(url) if url else None
        self.retryable = retryable
        super().__init__(redact_text(message))


class TLSVerificationError(NetworkError):
    """The server's TLS certificate is not trusted (unknown CA, wrong host name, expired).

    Behind TLS inspection or a private CA, point ``SSL_CERT_FILE`` or ``REQUESTS_CA_BUNDLE`` at
    the CA bundle, or pass ``verify="ca.pem"``.
    """

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message, url=url, retryable=False)


class MLHubHTTPError(MLHubException):
    """The API answered with an HTTP error status (after any retries).

    Attributes:
        status_code: the HTTP status.
        method: the request method.
        url: the request URL with the ``key`` parameter masked.
        detail: the server's own message (``detail`` of a JSON error body), if any.
    """

    def __init__(
        self,
        status_code: int,
        method: str,
        url: str,
        detail: str | None = None,
        *,
        message: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.method = method.upper()
        self.url = redact_url(url)
        self.detail = redact_text(detail) if detail else None
        if message is None:
            message = f"{self.status_code} error for {self.method} {self.url}"
            if self.detail:
                message += f": {self.detail}"
        super().__init__(redact_text(message))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled with its fields (the download's index process sends its errors back)."""
        fields = (self.status_code, self.method, self.url, self.detail)
        return (_rebuild_http_error, (type(self), fields, str(self)), self.__dict__)


def _rebuild_http_error(
    cls: type[MLHubHTTPError], fields: tuple[int, str, str, str | None], message: str
) -> MLHubHTTPError:
    status_code, method, url, detail = fields
    return cls(status_code, method, url, detail, message=message)


class AuthenticationError(MLHubHTTPError):
    """401: the endpoint needs an API key and none, or a wrong one, was sent."""


class EntityDoesNotExist(MLHubHTTPError):
    """404: the requested dataset, collection, item, model, catalogue or archive does not exist."""


class DownloadError(MLHubException):
    """A download ended with assets that could not be fetched.

    The job is resumable: running the same download again retries only what is missing.
    """

    def __init__(self, message: str, *, failed: int = 0, report: Path | None = None) -> None:
        self.failed = failed
        self.report = report
        super().__init__(redact_text(message))


class NoAssetsSelected(MLHubException, ValueError):
    """The filters leave no asset to download (raised before any asset request)."""


class MissingDependencyError(MLHubException, ImportError):
    """A feature needs an optional package that is not installed; the message names the extra
    (``pip install 'mlhub_widgets[extra]'``)."""


class OutputFolderError(ConfigurationError):
    """The output folder cannot be created or written to: its parent is a file, it is on a
    read-only file system, or permission is denied. Nothing was downloaded."""


class FolderInUseError(MLHubException):
    """Another download of the same dataset is running in the same output folder.

    Two downloads into one folder would race on the same files and index, so the second one
    stops at once (before any request); the message names the process holding the folder.
    """


class UnsafeArchiveError(MLHubException):
    """A catalogue archive member could escape or exhaust the output folder, or clashes with
    the files the download keeps there; the whole archive is refused.

    Attributes:
        member: the name of the refused member, if one is to blame.
    """

    def __init__(self, message: str, *, member: str | None = None) -> None:
        self.member = member
        super().__init__(message)


class CatalogError(DownloadError):
    """The dataset's catalogue could not be read: damaged, cut short, or not an archive.

    The bad tarball is deleted and its index is never marked complete: a re-run fetches it
    anew (assets already on disk are kept).
    """


class DiskFullError(DownloadError):
    """No space left (or a quota exceeded) where the download writes; the job stopped.

    Files completed so far are kept (nothing half-written has a final name); free some space
    and run the same download again to resume.
    """


class ClusterError(DownloadError):
    """The Dask cluster of a download cannot be reached, was lost (the scheduler went away)
    or failed to run a partition. What completed is kept: running the same download again
    resumes it."""


class MLHubWarning(UserWarning):
    """Something the user should know and may act on; the operation went on."""


class InsecureTLSWarning(MLHubWarning):
    """TLS certificate verification is turned off (``verify=False``)."""


__all__ = [
    "APIKeyNotFound",
    "AuthenticationError",
    "CatalogError",
    "ClusterError",
    "ConfigurationError",
    "DiskFullError",
    "DownloadError",
    "EntityDoesNotExist",
    "FolderInUseError",
    "InsecureTLSWarning",
    "MLHubException",
    "MLHubHTTPError",
    "MLHubResponseError",
    "MLHubWarning",
    "MissingDependencyError",
    "NetworkError",
    "NoAssetsSelected",
    "OutputFolderError",
    "ProfileError",
    "ResponseTooLarge",
    "TLSVerificationError",
    "UnsafeArchiveError",
]
