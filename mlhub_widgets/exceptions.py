"""The exception hierarchy of mlhub_widgets.

Everything the library raises on purpose derives from :class:`MLHubException`. HTTP failures
carry the status code, the method, the URL (with the API key masked) and the server's message.

::

    MLHubException
    ├── APIKeyNotFound          no key could be resolved, or a profile is unusable
    ├── ProfileError            the profiles file is unreadable or malformed (also APIKeyNotFound)
    ├── MLHubResponseError      the server answered something that is not what the API promises
    ├── MLHubHTTPError          any HTTP status >= 400 after retries
    │   ├── AuthenticationError 401: missing or wrong API key
    │   └── EntityDoesNotExist  404 on a dataset, collection, item, model, catalogue or archive
    ├── NoAssetsSelected        the filters leave nothing to download (also a ValueError)
    ├── ConfigurationError      a setting or argument cannot work (also a ValueError)
    │   └── OutputFolderError   the output folder cannot be created or written to
    ├── FolderInUseError        another download of the dataset runs in the same folder
    ├── UnsafeArchiveError      a catalogue archive member could escape or exhaust the folder
    └── DownloadError           a download finished with failed assets (see err_report.csv)
        ├── CatalogError        the dataset's catalogue is damaged or cut short
        └── DiskFullError       no space left where the download writes

Warnings the library wants a user to see (a link cycle in a catalogue, ...) are
:class:`MLHubWarning` warnings, issued with :func:`warnings.warn`.
"""

from __future__ import annotations

from pathlib import Path

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


class ConfigurationError(MLHubException, ValueError):
    """A setting or an argument cannot work as given (checked before anything is sent)."""


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


class MLHubWarning(UserWarning):
    """Something the user should know that does not stop the operation (e.g. a link cycle
    in a catalogue: the walk of that branch ends there)."""


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


__all__ = [
    "APIKeyNotFound",
    "AuthenticationError",
    "CatalogError",
    "ConfigurationError",
    "DiskFullError",
    "DownloadError",
    "EntityDoesNotExist",
    "FolderInUseError",
    "MLHubException",
    "MLHubHTTPError",
    "MLHubResponseError",
    "MLHubWarning",
    "NoAssetsSelected",
    "OutputFolderError",
    "ProfileError",
    "UnsafeArchiveError",
]
