"""mlhub_widgets: find and download Earth-observation ML training data from notebooks.

The package is a headless core (session → discovery → filters → download engine → events) with
thin Jupyter widget views on top (:mod:`mlhub_widgets.widgets`) and an ``mlhub`` command line.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .exceptions import (
    APIKeyNotFound,
    AuthenticationError,
    CatalogError,
    DiskFullError,
    DownloadError,
    EntityDoesNotExist,
    MLHubException,
    MLHubHTTPError,
    MLHubResponseError,
    NoAssetsSelected,
    ProfileError,
)

if TYPE_CHECKING:
    from .session import ANONYMOUS_PROFILE, Session, get_session

# A library never configures logging; this only stops Python's last-resort handler from
# printing our warnings (e.g. from background threads) when the application has no handler.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "ANONYMOUS_PROFILE",
    "APIKeyNotFound",
    "AuthenticationError",
    "CatalogError",
    "Collection",
    "Dataset",
    "DiskFullError",
    "DownloadError",
    "DownloadJob",
    "EntityDoesNotExist",
    "MLHubException",
    "MLHubHTTPError",
    "MLHubResponseError",
    "MLModel",
    "NoAssetsSelected",
    "ProfileError",
    "Session",
    "__version__",
    "collections",
    "datasets",
    "download_archive",
    "download_dataset",
    "explorer",
    "get_session",
    "items",
    "models",
    "open_source",
    "plan_download",
    "tags",
]

# Discovery (pandas/geopandas) and the object layer are imported on first use, so that
# ``import mlhub_widgets`` and the ``mlhub`` command stay fast. ``models`` is the
# :mod:`mlhub_widgets.models` module, which is callable: ``mlhub_widgets.models()`` is
# :func:`mlhub_widgets.discovery.models` and ``mlhub_widgets.models.Dataset`` the class.
_DISCOVERY_EXPORTS = frozenset({"collections", "datasets", "items", "tags"})
_MODEL_EXPORTS = {"Collection": "Collection", "Dataset": "Dataset", "MLModel": "MLModel"}
# The session (and requests, ~70-130 ms to import) too: the helper processes a download starts
# import parts of this package that never talk to the API.
_SESSION_EXPORTS = frozenset({"ANONYMOUS_PROFILE", "Session", "get_session"})
_DOWNLOAD_EXPORTS = frozenset(
    {"DownloadJob", "download_archive", "download_dataset", "plan_download"}
)


def __getattr__(name: str) -> Any:
    # Lazy export: ``import mlhub_widgets`` must not import ipywidgets (an optional extra).
    if name in _DISCOVERY_EXPORTS:
        return getattr(importlib.import_module(".discovery", __name__), name)
    if name == "models" or name in _MODEL_EXPORTS:
        # import_module, not ``from . import models``: that would recurse into __getattr__
        module = importlib.import_module(".models", __name__)
        return module if name == "models" else getattr(module, _MODEL_EXPORTS[name])
    if name in _SESSION_EXPORTS:
        return getattr(importlib.import_module(".session", __name__), name)
    if name in _DOWNLOAD_EXPORTS:
        return getattr(importlib.import_module(".download", __name__), name)
    if name == "open_source":
        return importlib.import_module(".sources", __name__).open_source
    if name == "explorer":
        from .widgets import explorer

        return explorer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
