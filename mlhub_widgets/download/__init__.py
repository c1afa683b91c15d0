"""Dataset downloads: catalogue → asset index → filters → transfers, as a controllable job.

The public names (:func:`download_dataset`, :func:`plan_download`, :func:`download_archive`,
:func:`sync` and :func:`plan_sync` (a prefix without a catalogue), :class:`DownloadJob` and the
events it publishes) are imported from here; they load on first use,
because the asset index's child interpreter imports :mod:`.index` (and so this package) and
needs none of the rest. ``docs/architecture.md`` follows one download through the modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..exceptions import CatalogError, DiskFullError, NoAssetsSelected
    from .api import download_archive, download_dataset, plan_download
    from .defaults import DEFAULT_WORKERS
    from .events import (
        AssetFailed,
        AssetFinished,
        AssetRetried,
        AssetStarted,
        Callback,
        CatalogFetched,
        ClusterConnected,
        CollectionProgress,
        DownloadPlan,
        DownloadSummary,
        Event,
        IndexBuilt,
        IndexProgress,
        JobCancelled,
        JobFailed,
        JobFinished,
        JobPaused,
        JobResumed,
        ProgressSnapshot,
        ProgressUpdated,
    )
    from .job import DownloadJob, iter_events_until_done
    from .prefix_sync import SyncJob, SyncPlan, plan_sync, sync

__all__ = [
    "DEFAULT_WORKERS",
    "AssetFailed",
    "AssetFinished",
    "AssetRetried",
    "AssetStarted",
    "Callback",
    "CatalogError",
    "CatalogFetched",
    "ClusterConnected",
    "CollectionProgress",
    "DiskFullError",
    "DownloadJob",
    "DownloadPlan",
    "DownloadSummary",
    "Event",
    "IndexBuilt",
    "IndexProgress",
    "JobCancelled",
    "JobFailed",
    "JobFinished",
    "JobPaused",
    "JobResumed",
    "NoAssetsSelected",
    "ProgressSnapshot",
    "ProgressUpdated",
    "SyncJob",
    "SyncPlan",
    "download_archive",
    "download_dataset",
    "iter_events_until_done",
    "plan_download",
    "plan_sync",
    "sync",
]

# name -> the module (relative) that defines it
_LAZY_EXPORTS = {
    **dict.fromkeys(
        (
            "AssetFailed",
            "AssetFinished",
            "AssetRetried",
            "AssetStarted",
            "Callback",
            "CatalogFetched",
            "ClusterConnected",
            "CollectionProgress",
            "DownloadPlan",
            "DownloadSummary",
            "Event",
            "IndexBuilt",
            "IndexProgress",
            "JobCancelled",
            "JobFailed",
            "JobFinished",
            "JobPaused",
            "JobResumed",
            "ProgressSnapshot",
            "ProgressUpdated",
        ),
        ".events",
    ),
    **dict.fromkeys(("DownloadJob", "iter_events_until_done"), ".job"),
    "DEFAULT_WORKERS": ".defaults",
    **dict.fromkeys(("download_archive", "download_dataset", "plan_download"), ".api"),
    **dict.fromkeys(("SyncJob", "SyncPlan", "plan_sync", "sync"), ".prefix_sync"),
    # the errors a download raises, also importable from here (they live in exceptions)
    **dict.fromkeys(("CatalogError", "DiskFullError", "NoAssetsSelected"), "..exceptions"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_EXPORTS})
