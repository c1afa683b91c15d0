"""mlhub_widgets: find and download Earth-observation ML training data from notebooks.

The package is a headless core (session → discovery → filters → download engine → events) with
thin Jupyter widget views on top (:mod:`mlhub_widgets.widgets`) and an ``mlhub`` command line.
"""

from __future__ import annotations

from ._version import __version__
from .exceptions import (
    APIKeyNotFound,
    AuthenticationError,
    DownloadError,
    EntityDoesNotExist,
    MLHubException,
    MLHubHTTPError,
    MLHubResponseError,
    ProfileError,
)
from .session import ANONYMOUS_PROFILE, Session, get_session

__all__ = [
    "ANONYMOUS_PROFILE",
    "APIKeyNotFound",
    "AuthenticationError",
    "DownloadError",
    "EntityDoesNotExist",
    "MLHubException",
    "MLHubHTTPError",
    "MLHubResponseError",
    "ProfileError",
    "Session",
    "__version__",
    "get_session",
]
