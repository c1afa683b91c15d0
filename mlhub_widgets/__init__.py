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
    ClusterError,
    ConfigurationError,
    DiskFullError,
    DownloadError,
    EntityDoesNotExist,
    FolderInUseError,
    MissingDependencyError,
    MLHubException,
    MLHubHTTPError,
    MLHubResponseError,
    MLHubWarning,
    NoAssetsSelected,
    OutputFolderError,
    ProfileError,
    UnsafeArchiveError,
)

if TYPE_CHECKING:
    from .config.session import ANONYMOUS_PROFILE, Session, get_session
    from .discovery import collections, datasets, item_collection, items, models, tags
    from .discovery.export import to_geoparquet
    from .download import (
        DownloadJob,
        SyncJob,
        download_archive,
        download_dataset,
        plan_download,
        plan_sync,
        sync,
    )
    from .local import LocalDataset, open_local
    from .mlhub.collection import Collection
    from .mlhub.dataset import Dataset
    from .mlhub.ml_model import MLModel
    from .sources import open_source
    from .widgets import explorer

# A library never configures logging; this only stops Python's last-resort handler from
# printing our warnings (e.g. from background threads) when the application has no handler.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "ANONYMOUS_PROFILE",
    "APIKeyNotFound",
    "AuthenticationError",
    "CatalogError",
    "ClusterError",
    "Collection",
    "ConfigurationError",
    "Dataset",
    "DiskFullError",
    "DownloadError",
    "DownloadJob",
    "EntityDoesNotExist",
    "FolderInUseError",
    "LocalDataset",
    "MLHubException",
    "MLHubHTTPError",
    "MLHubResponseError",
    "MLHubWarning",
    "MLModel",
    "MissingDependencyError",
    "NoAssetsSelected",
    "OutputFolderError",
    "ProfileError",
    "Session",
    "SyncJob",
    "UnsafeArchiveError",
    "__version__",
    "collections",
    "datasets",
    "download_archive",
    "download_dataset",
    "explorer",
    "get_session",
    "item_collection",
    "items",
    "models",
    "open_local",
    "open_source",
    "plan_download",
    "plan_sync",
    "sync",
    "tags",
    "to_geoparquet",
]

# Everything but the exceptions is imported on first use, so that ``import mlhub_widgets`` and
# the ``mlhub`` command stay fast: discovery needs pandas/geopandas, the session requests (~70-130
# ms), the explorer ipywidgets (an optional extra); the helper processes a download starts import
# parts of this package that need none of them. Name -> the module (relative) that defines it.
_LAZY_EXPORTS = {
    **dict.fromkeys(
        ("collections", "datasets", "item_collection", "items", "models", "tags"), ".discovery"
    ),
    "Collection": ".mlhub.collection",
    "Dataset": ".mlhub.dataset",
    "MLModel": ".mlhub.ml_model",
    **dict.fromkeys(("ANONYMOUS_PROFILE", "Session", "get_session"), ".config.session"),
    **dict.fromkeys(
        (
            "DownloadJob",
            "SyncJob",
            "download_archive",
            "download_dataset",
            "plan_download",
            "plan_sync",
            "sync",
        ),
        ".download",
    ),
    "to_geoparquet": ".discovery.export",
    "open_source": ".sources",
    **dict.fromkeys(("LocalDataset", "open_local"), ".local"),
    "explorer": ".widgets",
}


def __getattr__(name: str) -> Any:
    module = _LAZY_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


def __dir__() -> list[str]:
    # lazy names too, for dir() and tab completion
    return sorted({*globals(), *_LAZY_EXPORTS})
