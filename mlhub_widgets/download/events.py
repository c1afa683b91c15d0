"""What a download tells its caller: events, progress snapshots, the summary and the plan.

A :class:`~mlhub_widgets.download.job.DownloadJob` publishes these small frozen dataclasses to
its subscribers **from its own thread** (see :data:`Event`); :class:`ProgressUpdated` is
throttled to about 8 per second. :func:`~mlhub_widgets.download.api.plan_download` returns a
:class:`DownloadPlan`.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

from ..units import human_bytes

Phase = Literal["catalog", "index", "transfer", "done"]
JobState = Literal["pending", "running", "paused", "cancelling", "cancelled", "finished", "failed"]


@dataclass(frozen=True, slots=True)
class CatalogFetched:
    """The catalogue tarball is on disk (``reused``: it was already complete)."""

    dataset_id: str
    path: Path
    size: int
    reused: bool


@dataclass(frozen=True, slots=True)
class IndexProgress:
    """Periodic progress while the catalogue is being unpacked and indexed."""

    items: int
    assets: int
    selected: int


@dataclass(frozen=True, slots=True)
class IndexBuilt:
    """The asset index is complete (``reused``: taken from a previous run, not rebuilt)."""

    items: int
    assets: int
    selected: int
    reused: bool
    replanned: bool
    seconds: float


@dataclass(frozen=True, slots=True)
class AssetStarted:
    """A transfer began (the first request for this asset is being sent)."""

    collection_id: str
    item_id: str | None
    asset_key: str
    url: str
    path: Path


@dataclass(frozen=True, slots=True)
class AssetFinished:
    """An asset is complete and verified on disk."""

    collection_id: str
    item_id: str | None
    asset_key: str
    path: Path
    size: int
    resumed_from: int


@dataclass(frozen=True, slots=True)
class AssetFailed:
    """An asset could not be fetched (listed in ``err_report.csv``)."""

    collection_id: str
    item_id: str | None
    asset_key: str
    url: str
    path: Path
    reason: str
    status: int | None


@dataclass(frozen=True, slots=True)
class AssetRetried:
    """A request failed and will be retried after ``delay`` seconds."""

    url: str
    reason: str
    delay: float


@dataclass(frozen=True, slots=True)
class JobPaused:
    """No new transfers start until :meth:`DownloadJob.resume`."""


@dataclass(frozen=True, slots=True)
class JobResumed:
    """Transfers start again after a pause."""


@dataclass(frozen=True, slots=True)
class ClusterConnected:
    """A download on a Dask cluster reached its scheduler (before its first partition).

    ``dashboard_url`` is the Dask dashboard's address, None when the scheduler serves none;
    ``workers`` and ``threads`` are what the cluster has now (an adaptive one grows later).
    """

    scheduler: str
    dashboard_url: str | None
    workers: int
    threads: int


@dataclass(frozen=True, slots=True)
class CollectionProgress:
    """Asset counts of one collection."""

    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0


#: The most a progress fraction says while work is left (shown as a whole percentage: 99 %).
_UNFINISHED_MAX = 0.99


@dataclass(frozen=True, slots=True)
class ProgressSnapshot:
    """An immutable view of a job's progress.

    ``assets_done`` counts assets transferred by this run, ``assets_skipped`` those already
    complete on disk; ``bytes_done`` includes the bytes of skipped files. Totals may grow while
    the index is still being built (``index_complete`` is False until then). ``bytes_total``
    is ``None`` when sizes are unknown; ``bytes_estimate`` is then the catalogue's estimate of
    the selected bytes (``estimated_dataset_size`` pro rata of the selected assets), or ``None``.
    ``rate`` is the mean rate over the last few seconds (bytes/s); ``eta`` is in seconds (from
    ``bytes_total``, else from ``bytes_estimate``).
    """

    state: JobState
    phase: Phase
    assets_total: int
    assets_done: int
    assets_failed: int
    assets_skipped: int
    bytes_done: int
    bytes_total: int | None
    rate: float
    eta: float | None
    retries: int
    elapsed: float
    index_complete: bool
    per_collection: Mapping[str, CollectionProgress] = field(
        default_factory=lambda: types.MappingProxyType({})
    )
    bytes_estimate: int | None = None

    @property
    def assets_finished(self) -> int:
        """Assets that need no more work: done, skipped or failed."""
        return self.assets_done + self.assets_skipped + self.assets_failed

    @property
    def fraction(self) -> float:
        """Completion in ``[0, 1]`` (by bytes when sizes are known, else by assets), through
        :meth:`bounded`."""
        if self.bytes_total:
            value = self.bytes_done / self.bytes_total
        elif self.assets_total:
            value = self.assets_finished / self.assets_total
        else:
            return 1.0 if self.phase == "done" else 0.0
        return self.bounded(value)

    @property
    def work_left(self) -> bool:
        """True while the index is still being built or an asset is not finished yet."""
        return not self.index_complete or self.assets_finished < self.assets_total

    def bounded(self, value: float) -> float:
        """A completion ``value`` as a bar shows it: at most 1, and below 1 while
        :attr:`work_left` (the transfers may catch up with the totals known so far while the
        catalogue is still read)."""
        return min(_UNFINISHED_MAX if self.work_left else 1.0, value)


@dataclass(frozen=True, slots=True)
class ProgressUpdated:
    """Throttled progress (about 8 per second while the job runs, plus a final one)."""

    snapshot: ProgressSnapshot


@dataclass(frozen=True)
class DownloadSummary:
    """What a finished (or cancelled) download did."""

    dataset_id: str
    catalog_path: Path
    catalog_dir: Path
    asset_dir: Path
    manifest_path: Path
    err_report: Path | None
    assets_selected: int
    assets_downloaded: int
    assets_skipped: int
    assets_failed: int
    bytes_downloaded: int
    bytes_on_disk: int
    retries: int
    path_collisions: int
    elapsed: float
    cancelled: bool = False
    catalog_only: bool = False
    per_collection: Mapping[str, CollectionProgress] = field(default_factory=dict)
    #: The downloaded catalogue's ``catalog.json``, its asset hrefs pointing at the local files
    #: (a self-contained STAC catalogue: :func:`mlhub_widgets.open_local` reads it). None for
    #: an object-store output: the catalogue is ``{url}/{dataset}/catalog.json`` in the bucket,
    #: beside the files, which :func:`~mlhub_widgets.open_local` does not read (copy it first:
    #: ``mlhub sync {url}/{dataset}/ -o FOLDER``).
    local_catalog: Path | None = None
    #: Objects a sync left out because they have a name a download keeps for its own state
    #: (``err_report.csv``, the asset index, ``*.part``): e.g. the report of the download
    #: that filled the source prefix.
    reserved_skipped: int = 0

    @property
    def complete(self) -> bool:
        """True when every selected asset is on disk."""
        return not self.cancelled and self.assets_failed == 0

    def __str__(self) -> str:
        mb = self.bytes_downloaded / 1e6
        text = (
            f"{self.dataset_id}: {self.assets_selected} assets selected, "
            f"{self.assets_downloaded} downloaded ({mb:.1f} MB), "
            f"{self.assets_skipped} already present, {self.assets_failed} failed "
            f"in {self.elapsed:.1f}s"
        )
        if self.cancelled:
            text += " (cancelled; run again to resume)"
        if self.reserved_skipped:
            text += (
                f"; {self.reserved_skipped} not copied (err_report.csv or another name "
                "mlhub keeps for its own state)"
            )
        return text


@dataclass(frozen=True, slots=True)
class JobFinished:
    """The job ended without failed assets."""

    summary: DownloadSummary


@dataclass(frozen=True, slots=True)
class JobCancelled:
    """The job was cancelled; everything done so far is kept and a new job resumes it."""

    summary: DownloadSummary


@dataclass(frozen=True, slots=True)
class JobFailed:
    """The job ended with an error (a :class:`DownloadError` when assets failed)."""

    error: BaseException


Event: TypeAlias = (
    CatalogFetched
    | IndexProgress
    | IndexBuilt
    | AssetStarted
    | AssetFinished
    | AssetFailed
    | AssetRetried
    | ClusterConnected
    | JobPaused
    | JobResumed
    | ProgressUpdated
    | JobFinished
    | JobCancelled
    | JobFailed
)
Callback = Callable[[Any], None]


@dataclass(frozen=True)
class DownloadPlan:
    """What a download with given filters would fetch (from :func:`plan_download`).

    Attributes:
        asset_keys: ``{collection_id: [asset keys]}`` the catalogue offers.
        collections: ``{collection_id: [types]}`` (``source_imagery``, ``labels``, ...).
        assets: selected asset count (after deduplication of shared files).
        bytes: selected bytes: exact when ``bytes_exact``, else estimated.
        bytes_exact: every selected asset announces its size (``file:size``).
        per_collection: ``{collection_id: {"assets": n, "bytes": b}}``.
        items_total: items in the catalogue; ``items_matched``: items passing the filters.
        items_excluded: ``{reason: count}`` of items left out (e.g. ``"without a date"``).
        done: selected assets already complete on disk (per the index).
    """

    dataset_id: str
    asset_keys: dict[str, list[str]]
    collections: dict[str, list[str]]
    assets: int
    bytes: int
    bytes_exact: bool
    per_collection: dict[str, dict[str, int]]
    items_total: int
    items_matched: int
    items_excluded: dict[str, int]
    done: int
    filter_description: str
    total_assets: int

    def __str__(self) -> str:
        lines = [
            f"{self.dataset_id}: {self.assets} assets, {self._size(self.bytes)} "
            f"({self.filter_description})"
        ]
        for cid, info in self.per_collection.items():
            lines.append(f"  {cid}: {info['assets']} assets, {self._size(info['bytes'])}")
        if self.items_excluded:
            parts = ", ".join(f"{n} {why}" for why, n in self.items_excluded.items())
            lines.append(f"  items excluded: {parts}")
        return "\n".join(lines)

    def _size(self, n: int) -> str:
        """``57.9 MB``, ``57.9 MB (estimated)``, or ``size unknown`` when nothing gives one."""
        if self.bytes_exact:
            return human_bytes(n)
        return f"{human_bytes(n)} (estimated)" if n else "size unknown"
