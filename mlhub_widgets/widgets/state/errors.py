"""Errors as the explorer shows them: one line for the user, never a traceback."""

from __future__ import annotations

from dataclasses import dataclass

from ...exceptions import (
    AuthenticationError,
    MLHubException,
    MLHubHTTPError,
    MLHubResponseError,
)


def friendly_error(exc: BaseException) -> str:
    """A message for the user (no traceback) for an exception raised by the core or the OS."""
    if isinstance(exc, AuthenticationError):
        return str(exc)
    if isinstance(exc, MLHubResponseError):
        return (
            f"The server answered, but not like an MLHub API: {exc}. Check the root URL "
            "(it must end at the API root, e.g. …/v1/)."
        )
    if isinstance(exc, MLHubHTTPError):
        return str(exc)
    if isinstance(exc, MLHubException):
        text = str(exc)
        if "ConnectionError" in text or "Timeout" in text or "failed after" in text:
            return (
                f"Cannot reach the server: {text}. Is the server running, is the URL right, and "
                "is the network up?"
            )
        return text
    if isinstance(exc, ValueError | TypeError):
        return str(exc)
    if isinstance(exc, PermissionError):
        return f"Permission denied: {exc.filename or exc}"
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    return f"Unexpected error ({type(exc).__name__}): {exc}"


@dataclass(frozen=True)
class FailedAsset:
    """One asset a download could not fetch."""

    collection: str
    item: str
    asset_key: str
    reason: str
    url: str = ""


def job_error_text(error: BaseException) -> str:
    from ...exceptions import DownloadError

    if isinstance(error, DownloadError):
        return (
            f"{error} Nothing is lost: press Start again to retry only the missing and failed "
            "assets (if_exists='resume')."
        )
    return f"The download stopped: {friendly_error(error)} Press Start again to resume it."
