"""Dataset downloads: catalogue → asset index → filters → transfers, as a controllable job.

:func:`download_dataset` is what ``Dataset.download()`` and ``mlhub download`` run. It keeps
radiant_mlhub's keywords and on-disk layout::

    {output_dir}/{dataset_id}.tar.gz                          the STAC catalogue tarball
    {output_dir}/{dataset_id}/...                             the unpacked catalogue
    {asset_dir}/{dataset_id}/{collection}/{item}/{key}{ext}   item assets
    {asset_dir}/{dataset_id}/{collection}/{key}{ext}          collection-level assets
    {asset_dir}/{dataset_id}/{collection}/_common/{key}{ext}  assets shared by all items
    {asset_dir}/{dataset_id}/err_report.csv                   failed assets (with a header)
    {asset_dir}/{dataset_id}/mlhub_assets.db                  the asset index (manifest)

but runs very differently: the catalogue is unpacked safely as a stream, items are filtered as
they arrive and transfers start while the index is still being built; the index is kept across
runs, so a re-run neither re-scans the catalogue nor asks the server about assets it already
has; files are written to ``.part`` and verified before they get their final name.

A :class:`DownloadJob` runs in a background thread with its own asyncio event loop and can be
paused, resumed and cancelled. It publishes small frozen-dataclass events (see
:data:`Event`) to subscribers **from that thread**: callbacks must be cheap and must not block
(hand the event to your UI's own loop if needed). :class:`ProgressUpdated` is throttled to
about 8 per second, so rendering it directly is fine.

The API key is only ever sent to the API's origin. Asset and catalogue storage never see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import errno
import hashlib
import json
import logging
import os
import queue
import re
import shutil
import sqlite3
import sys
import threading
import time
import types
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..config.session import Session, get_session
from ..exceptions import (
    CatalogError,
    DiskFullError,
    DownloadError,
    EntityDoesNotExist,
    MLHubException,
    NoAssetsSelected,
)
from ..filters import AssetFilter, FilterStats
from ..net.redact import redact_text, redact_url
from . import transfer
from .catalog_archive import (
    ArchiveLimits,
)
from .index import (
    Cancelled,
    IndexBuilder,
    IndexConfig,
    IndexProcess,
    filter_fingerprint,
    stats_dict,
)
from .manifest import (
    DONE,
    FAILED,
    MANIFEST_NAME,
    AssetRow,
    Manifest,
    Outcome,
)

__all__ = [
    "AssetFailed",
    "AssetFinished",
    "AssetRetried",
    "AssetStarted",
    "CatalogError",
    "CatalogFetched",
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
    "download_archive",
    "download_dataset",
    "plan_download",
]

log = logging.getLogger(__name__)

IfExists = Literal["resume", "skip", "overwrite"]
Phase = Literal["catalog", "index", "transfer", "done"]
JobState = Literal["pending", "running", "paused", "cancelling", "cancelled", "finished", "failed"]
IF_EXISTS_VALUES = ("resume", "skip", "overwrite")
ERR_REPORT_NAME = "err_report.csv"
ERR_REPORT_COLUMNS = (
    "collection_id",
    "item_id",
    "asset_key",
    "url",
    "path",
    "status",
    "error",
    "attempts",
)
DEFAULT_WORKERS = 64
#: Catalogue tarballs smaller than this (``stac_catalog_size`` of the catalogue info) are
#: indexed in a thread: starting the child interpreter takes ~0.1 s, building such a catalogue
#: in-process 1–3 ms per KiB (20 items, 4 KiB: 13 ms). Larger or unsized ones get the child.
INDEX_PROCESS_FROM_BYTES = 16 << 10
#: SQLite page cache of the download process's two manifest connections (rows are read and
#: updated in ``seq`` order): 4 MB less peak memory at 100,000 assets than SQLite's 2 MiB each.
TRANSFER_CACHE_KIB = 512
PROGRESS_INTERVAL = 0.125
_FETCH_ROWS = 512


# =============================================================================================
# events


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
class CollectionProgress:
    """Asset counts of one collection."""

    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class ProgressSnapshot:
    """An immutable view of a job's progress.

    ``assets_done`` counts assets transferred by this run, ``assets_skipped`` those already
    complete on disk; ``bytes_done`` includes the bytes of skipped files. Totals may grow while
    the index is still being built (``index_complete`` is False until then). ``bytes_total``
    is ``None`` when sizes are unknown. ``rate`` is smoothed (bytes/s); ``eta`` is in seconds.
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

    @property
    def assets_finished(self) -> int:
        """Assets that need no more work: done, skipped or failed."""
        return self.assets_done + self.assets_skipped + self.assets_failed

    @property
    def fraction(self) -> float:
        """Completion in ``[0, 1]`` (by bytes when sizes are known, else by assets)."""
        if self.bytes_total:
            return min(1.0, self.bytes_done / self.bytes_total)
        if self.assets_total:
            return min(1.0, self.assets_finished / self.assets_total)
        return 1.0 if self.phase == "done" else 0.0


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
    | JobPaused
    | JobResumed
    | ProgressUpdated
    | JobFinished
    | JobCancelled
    | JobFailed
)
Callback = Callable[[Any], None]


# =============================================================================================
# plans


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
        size = _human_bytes(self.bytes) + ("" if self.bytes_exact else " (estimated)")
        lines = [f"{self.dataset_id}: {self.assets} assets, {size} ({self.filter_description})"]
        for cid, info in self.per_collection.items():
            lines.append(f"  {cid}: {info['assets']} assets, {_human_bytes(info['bytes'])}")
        if self.items_excluded:
            parts = ", ".join(f"{n} {why}" for why, n in self.items_excluded.items())
            lines.append(f"  items excluded: {parts}")
        return "\n".join(lines)


def _human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


# =============================================================================================
# shared pipeline: session, catalogue, index


def _validate_common(if_exists: str, workers: int | None) -> None:
    if if_exists not in IF_EXISTS_VALUES:
        raise ValueError(
            f"if_exists must be one of {', '.join(IF_EXISTS_VALUES)}; got {if_exists!r}"
        )
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")


def _with_key(url: str, key: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "key"]
    query.append(("key", key))
    return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass
class _Config:
    dataset_id: str
    output_dir: Path
    asset_dir: Path
    catalog_only: bool
    if_exists: IfExists
    flt: AssetFilter
    collection_filter: Any
    workers: int
    session: Session | None
    session_kwargs: dict[str, Any]
    limits: ArchiveLimits
    source: Any = None  # a STAC Source (static catalogue, STAC API); None: the MLHub tarball

    @property
    def catalog_path(self) -> Path:
        return self.output_dir / f"{self.dataset_id}.tar.gz"

    @property
    def catalog_dir(self) -> Path:
        return self.output_dir / self.dataset_id

    @property
    def dataset_asset_dir(self) -> Path:
        return self.asset_dir / self.dataset_id

    @property
    def manifest_path(self) -> Path:
        return self.dataset_asset_dir / MANIFEST_NAME

    @property
    def err_report_path(self) -> Path:
        return self.dataset_asset_dir / ERR_REPORT_NAME

    def index_config(self) -> IndexConfig:
        return IndexConfig(
            dataset_id=self.dataset_id,
            output_dir=self.output_dir,
            catalog_path=self.catalog_path,
            manifest_path=self.manifest_path,
            flt=self.flt,
            limits=self.limits,
            source=self.source,
        )


def _make_config(
    dataset_id: str,
    output_dir: str | os.PathLike[str],
    *,
    asset_output_dir: str | os.PathLike[str] | None,
    catalog_only: bool,
    if_exists: str,
    bbox: object,
    intersects: object,
    datetime: object,
    collection_filter: object,
    session: Session | None,
    api_key: str | None,
    profile: str | None,
    root_url: str | None,
    workers: int | None,
    limits: ArchiveLimits | None,
    source: object = None,
) -> _Config:
    if not isinstance(dataset_id, str) or not dataset_id.strip():
        raise ValueError("dataset_id must be a non-empty string")
    if "/" in dataset_id or "\\" in dataset_id or dataset_id in (".", ".."):
        raise ValueError(f"dataset_id {dataset_id!r} cannot be used as a folder name")
    _validate_common(if_exists, workers)
    flt = AssetFilter.build(
        bbox=bbox, intersects=intersects, datetime=datetime, collection_filter=collection_filter
    )
    # absolute now: a background job must not follow a later os.chdir (in a notebook, say)
    out = Path(output_dir).expanduser().absolute()
    assets = Path(asset_output_dir).expanduser().absolute() if asset_output_dir is not None else out
    for name, path in (("output_dir", out), ("asset_output_dir", assets)):
        if path.exists() and not path.is_dir():
            raise ValueError(f"{name} {path} exists and is not a folder")
    src: Any = None
    if source is not None:
        from ..sources import open_source

        src = open_source(source)  # type: ignore[arg-type]
        if src.kind == "mlhub":  # the MLHub API: its catalogue tarball, as without a source
            session = session or getattr(src, "session", None)
            src = None
    return _Config(
        dataset_id=dataset_id,
        output_dir=out,
        asset_dir=assets,
        catalog_only=catalog_only,
        if_exists=if_exists,  # type: ignore[arg-type]
        flt=flt,
        collection_filter=collection_filter,
        workers=workers or DEFAULT_WORKERS,
        session=session,
        session_kwargs={"api_key": api_key, "profile": profile, "root_url": root_url},
        limits=limits or ArchiveLimits(),
        source=src,
    )


_EXCLUSION_LABELS = {
    "no_location": "without geometry or bbox",
    "outside_area": "outside the area",
    "no_date": "without a date",
    "bad_date": "with an unreadable date",
    "outside_dates": "outside the dates",
}


def _ignore_event(_event: Any) -> None:
    pass


class _Pipeline:
    """The steps shared by a download job and a plan: session, catalogue, index, selection."""

    def __init__(
        self, cfg: _Config, emit: Callable[[Any], None], cancelled: threading.Event
    ) -> None:
        self.cfg = cfg
        self.emit = emit
        self.cancelled = cancelled
        self.session: Session | None = cfg.session
        self.info: dict[str, Any] = {}
        self.builder: IndexBuilder | IndexProcess | None = None
        self.index_process: IndexProcess | None = None
        self.catalog_reused = False
        self.index_reused = False
        self.replanned = False
        self.start_seq = 0

    def get_session(self) -> Session:
        if self.session is None:
            self.session = get_session(**self.cfg.session_kwargs)
        return self.session

    def close(self) -> None:
        """Close the API session if this pipeline created it (its sockets are not left for
        the garbage collector) and drop references to the job (no reference cycle)."""
        if self.session is not None and self.session is not self.cfg.session:
            self.session.close()
        self.session = None
        self.discard_index_process()
        self.builder = None
        self.emit = _ignore_event

    # -- catalogue -----------------------------------------------------------------------------
    def fetch_catalog(self) -> None:
        if self.cfg.source is not None:
            self._source_catalog()
            return
        cfg = self.cfg
        session = self.get_session()
        ds = cfg.dataset_id
        self.info = dict(session.get_json(f"catalog/{ds}/info") or {})
        expected = self.info.get("stac_catalog_size")
        expected = expected if isinstance(expected, int) and expected > 0 else None
        if not cfg.catalog_only and (expected is None or expected >= INDEX_PROCESS_FROM_BYTES):
            self.spawn_index_process()  # its start-up overlaps the catalogue download
        cfg.output_dir.mkdir(parents=True, exist_ok=True)
        cfg.dataset_asset_dir.mkdir(parents=True, exist_ok=True)
        response = session.get(f"catalog/{ds}", allow_redirects=False)
        location = response.headers.get("Location")
        response.close()
        if response.status_code in (301, 302, 303, 307, 308) and location:
            url = session.url_for(location) if not urlsplit(location).scheme else location
        else:
            url = session.url_for(f"catalog/{ds}")
        if session.is_api_url(url) and session.api_key:
            url = _with_key(url, session.api_key)
        mode = "overwrite" if cfg.if_exists == "overwrite" else "resume"
        head_etag: str | None = None
        if mode == "resume" and cfg.catalog_path.exists():
            mode, head_etag = self._check_local_catalog(session, url, expected)
        outcome = transfer.download_file(url, cfg.catalog_path, size=expected, if_exists=mode)
        if not outcome.ok and outcome.disk_full:
            raise OSError(errno.ENOSPC, str(outcome.error), os.fspath(cfg.catalog_path))
        if not outcome.ok:
            raise MLHubException(
                f"could not download the catalogue of {ds} from {redact_url(url)}: "
                f"{redact_text(str(outcome.error), session.api_key)}"
            )
        size = cfg.catalog_path.stat().st_size
        self.catalog_reused = outcome.attempts == 0
        self.catalog_identity = {
            "size": size,
            "etag": outcome.etag or (head_etag if self.catalog_reused else None),
            "last_modified": outcome.last_modified,
        }
        self.emit(CatalogFetched(ds, cfg.catalog_path, size, self.catalog_reused))

    def _source_catalog(self) -> None:
        """A dataset of a STAC source: no tarball to fetch. Its identity is the source and its
        server-side filters; the catalogue is written while the index is built."""
        cfg = self.cfg
        cfg.source.get_dataset(cfg.dataset_id)  # EntityDoesNotExist before anything else
        cfg.output_dir.mkdir(parents=True, exist_ok=True)
        cfg.dataset_asset_dir.mkdir(parents=True, exist_ok=True)
        self.info = {}
        self.catalog_reused = False
        self.catalog_identity = {
            "size": 0,
            "etag": None,
            "last_modified": None,
            "source": cfg.source.fingerprint(cfg.flt),
        }
        self.emit(CatalogFetched(cfg.dataset_id, cfg.catalog_dir / "catalog.json", 0, False))

    def _check_local_catalog(
        self, session: Session, url: str, expected: int | None
    ) -> tuple[str, str | None]:
        """Is the local tarball still the server's? One HEAD to storage (never with the key).

        Returns the ``if_exists`` mode for the tarball fetch and the server's ETag.
        """
        local = self.cfg.catalog_path.stat().st_size
        if expected is not None and local != expected:
            return ("resume" if local < expected else "overwrite"), None
        with Manifest(self.cfg.manifest_path) as db:
            stored = db.get_meta_json("catalog")
        try:
            head = session.request("HEAD", url, allow_redirects=True, raise_errors=False)
        except MLHubException as exc:
            log.info("could not check the catalogue for changes (%s); using the local copy", exc)
            return "resume", None
        head.close()
        if head.status_code >= 400:
            return "resume", None
        etag = head.headers.get("ETag")
        length = head.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) != local:
            return "overwrite", None
        if isinstance(stored, dict) and stored.get("etag") and etag and stored["etag"] != etag:
            log.info(
                "the catalogue of %s changed on the server; fetching it again", self.cfg.dataset_id
            )
            return "overwrite", None
        return "resume", etag

    def collection_types(self) -> dict[str, list[str]]:
        """Collection types from ``/datasets/{id}`` (best effort: {} when unavailable)."""
        if self.cfg.source is not None:
            rec = self.cfg.source.get_dataset(self.cfg.dataset_id)
            return {
                str(c["id"]): [str(t) for t in c.get("types") or []]
                for c in rec.get("collections") or []
                if isinstance(c, Mapping) and isinstance(c.get("id"), str)
            }
        try:
            record = self.get_session().get_json(f"datasets/{self.cfg.dataset_id}")
        except MLHubException as exc:
            log.debug("no dataset record for %s: %s", self.cfg.dataset_id, exc)
            return {}
        out: dict[str, list[str]] = {}
        for c in record.get("collections") or [] if isinstance(record, Mapping) else []:
            if isinstance(c, Mapping) and isinstance(c.get("id"), str):
                out[c["id"]] = [str(t) for t in c.get("types") or []]
        return out

    # -- index -------------------------------------------------------------------------------
    def _stored_catalog_matches(self, db: Manifest) -> bool:
        stored = db.get_meta_json("catalog")
        if not isinstance(stored, dict) or db.get_meta("index_complete") != "1":
            return False
        ident = self.catalog_identity
        if stored.get("source") != ident.get("source"):
            return False
        if ident.get("source"):  # same source and server-side filters: the index stands
            root = db.get_meta("catalog_root")
            return bool(root) and (self.cfg.output_dir / str(root)).is_file()
        if stored.get("size") != ident["size"]:
            return False
        if stored.get("etag") and ident.get("etag"):
            same = bool(stored["etag"] == ident["etag"])
        else:
            same = stored.get("md5") == _file_md5(self.cfg.catalog_path)
        if not same:
            return False
        root = db.get_meta("catalog_root")
        return bool(root) and (self.cfg.output_dir / str(root)).is_file()

    def spawn_index_process(self) -> None:
        """Start the child interpreter that will build the index of a tarball, so that its
        start-up overlaps the catalogue download (see :mod:`mlhub_widgets.download.index`)."""
        if self.cfg.source is not None or self.index_process is not None:
            return
        try:
            self.index_process = IndexProcess.spawn()
        except OSError as exc:  # e.g. no usable sys.executable in an embedded interpreter
            log.info("building the index in a thread: cannot start a child interpreter (%s)", exc)

    def discard_index_process(self) -> None:
        """End the child interpreter if no build was handed to it."""
        proc, self.index_process = self.index_process, None
        if proc is not None:
            proc.discard()

    def prepare_index(self, db: Manifest, *, inline: bool) -> None:
        """Reuse, re-plan or (re)build the index. Builds inline, or in the background: in
        the child interpreter from :meth:`spawn_index_process` if there is one, else in a
        thread."""
        cfg = self.cfg
        if cfg.if_exists != "overwrite" and self._stored_catalog_matches(db):
            self.index_reused = True
            self._validate_collection_filter(db)
            if db.get_meta("filter") != filter_fingerprint(cfg.flt):
                self.replan(db)
                self.replanned = True
            self.discard_index_process()
            return
        self.start_seq = db.max_seq()
        emit = self.emit

        def on_progress(items: int, assets: int, selected: int) -> None:
            emit(IndexProgress(items, assets, selected))

        index_cfg = cfg.index_config()
        if not inline and self.index_process is not None:
            # the child now belongs to the build (spawned only for tarballs: no source)
            process, self.index_process = self.index_process, None
            self.builder = process
            process.begin(
                index_cfg, self.collection_types(), self.start_seq, on_progress, self.cancelled
            )
            return
        self.discard_index_process()
        builder = IndexBuilder(
            index_cfg, self.collection_types(), self.start_seq, on_progress, self.cancelled
        )
        self.builder = builder
        if inline:
            builder.run()
            self.finish_build(db)
        else:
            builder.start()

    def finish_build(self, db: Manifest) -> None:
        """After the builder: raise its error, record the catalogue identity, validate."""
        builder = self.builder
        assert builder is not None
        builder.done.wait()
        if builder.error is not None:
            raise builder.error
        db.set_meta({"catalog": {**self.catalog_identity, "md5": builder.catalog_md5()}})
        if builder.skipped_hrefs:
            log.warning("%d assets without a downloadable href were skipped", builder.skipped_hrefs)
        self._validate_collection_filter(db)

    def _validate_collection_filter(self, db: Manifest) -> None:
        if self.cfg.collection_filter is None:
            return
        AssetFilter.build(collection_filter=self.cfg.collection_filter, available=db.asset_keys())

    def collection_filter_ready(self) -> bool:
        """During a streaming build: every collection and key the filter names was seen."""
        cf = self.cfg.flt.collection_filter
        if cf is None or self.builder is None:
            return True
        seen = self.builder.seen_keys
        for cid, keys in cf.items():
            have = seen.get(cid)
            if have is None:
                return False
            if keys is not None and not keys <= have:
                return False
        return True

    def replan(self, db: Manifest) -> None:
        """Re-select assets of a stored index for new filters (no catalogue access)."""
        flt = self.cfg.flt
        stats = FilterStats()
        with db.transaction():
            if flt.bbox is None and flt.intersects is None and flt.datetime is None:
                db.match_all_items()
                stats.matched = db.item_count()
            else:
                for rows in db.iter_items():
                    updates = []
                    for item_id, _cid, spatial in rows:
                        item = json.loads(spatial) if spatial else {}
                        updates.append((int(flt.item_matches(item, stats)), item_id))
                    db.set_item_matches(updates)
            wanted = [
                (cid, key)
                for cid, keys in db.asset_keys().items()
                for key in keys
                if flt.wants_asset(cid, key)
            ]
            db.reselect(wanted)
        db.set_meta(
            {
                "filter": filter_fingerprint(flt),
                "filter_description": flt.describe(),
                "filter_stats": stats_dict(stats),
            }
        )

    def no_assets_error(self, db: Manifest) -> NoAssetsSelected:
        stats = db.get_meta_json("filter_stats") or {}
        excluded = ", ".join(
            f"{n} {_EXCLUSION_LABELS.get(k, k)}" for k, n in stats.items() if k != "matched" and n
        )
        detail = f"{stats.get('matched', 0)} items matched" + (
            f"; items excluded: {excluded}" if excluded else ""
        )
        return NoAssetsSelected(
            f"No asset of dataset {self.cfg.dataset_id!r} matches the filters "
            f"({self.cfg.flt.describe()}): {detail}. Nothing was downloaded."
        )

    def plan(self, db: Manifest) -> DownloadPlan:
        counts = db.counts()
        per = db.per_collection()
        exact = counts["sized"] == counts["selected"]
        total_assets = counts["assets"]
        if exact:
            nbytes = counts["known_bytes"]
        else:
            estimate = self.info.get("estimated_dataset_size")
            if isinstance(estimate, int | float) and total_assets:
                nbytes = int(estimate * counts["selected"] / total_assets)
            else:
                nbytes = counts["known_bytes"]
        stats = db.get_meta_json("filter_stats") or {}
        excluded = {
            _EXCLUSION_LABELS.get(k, k): int(n) for k, n in stats.items() if k != "matched" and n
        }
        per_out = {}
        for cid, info in per.items():
            b = info["bytes"]
            if (
                not exact
                and total_assets
                and isinstance(self.info.get("estimated_dataset_size"), int | float)
            ):
                b = int(self.info["estimated_dataset_size"] * info["assets"] / total_assets)
            per_out[cid] = {"assets": info["assets"], "bytes": b}
        return DownloadPlan(
            dataset_id=self.cfg.dataset_id,
            asset_keys=db.asset_keys(),
            collections={cid: c["types"] for cid, c in db.collections().items()},
            assets=counts["selected"],
            bytes=nbytes,
            bytes_exact=exact,
            per_collection=per_out,
            items_total=db.item_count(),
            items_matched=int(stats.get("matched", 0)),
            items_excluded=excluded,
            done=counts["done"],
            filter_description=self.cfg.flt.describe(),
            total_assets=total_assets,
        )


def _file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


# =============================================================================================
# the job


class DownloadJob:
    """A dataset download running in a background thread; pausable, resumable, cancellable.

    Create it with :func:`download_dataset` (``background=True``) or directly with the same
    arguments, then :meth:`start` it. Events go to :meth:`subscribe` callbacks, called from the
    job's thread (keep them cheap). A cancelled or failed job is resumed by creating a new job
    with the same arguments.
    """

    def __init__(
        self,
        dataset_id: str,
        output_dir: str | os.PathLike[str] = ".",
        *,
        asset_output_dir: str | os.PathLike[str] | None = None,
        catalog_only: bool = False,
        if_exists: str = "resume",
        bbox: object = None,
        intersects: object = None,
        datetime: object = None,
        collection_filter: object = None,
        session: Session | None = None,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        workers: int | None = None,
        limits: ArchiveLimits | None = None,
        source: object = None,
    ) -> None:
        self._cfg = _make_config(
            dataset_id,
            output_dir,
            asset_output_dir=asset_output_dir,
            catalog_only=catalog_only,
            if_exists=if_exists,
            bbox=bbox,
            intersects=intersects,
            datetime=datetime,
            collection_filter=collection_filter,
            session=session,
            api_key=api_key,
            profile=profile,
            root_url=root_url,
            workers=workers,
            limits=limits,
            source=source,
        )
        self._state: JobState = "pending"
        self._phase: Phase = "catalog"
        self._lock = threading.Lock()
        self._subscribers: list[Callback] = []
        self._subscribers_snapshot: tuple[Callback, ...] = ()
        self._cancel = threading.Event()
        self._finished = threading.Event()
        self._control = transfer.TransferControl()
        self._thread: threading.Thread | None = None
        self._summary: DownloadSummary | None = None
        self._error: BaseException | None = None
        self._started_at: float | None = None
        self._ended_at: float | None = None
        # counters (written by the job thread only)
        self._total = 0
        self._index_complete = False
        self._done = 0
        self._skipped = 0
        self._failed = 0
        self._retries = 0
        self._bytes_done = 0
        self._bytes_downloaded = 0
        self._bytes_total_known = 0
        self._sizes_known = True
        self._rate = 0.0
        self._rate_mark: tuple[float, int] | None = None
        self._per_total: Counter[str] = Counter()
        self._per_done: Counter[str] = Counter()
        self._per_skipped: Counter[str] = Counter()
        self._per_failed: Counter[str] = Counter()
        self._collisions = 0
        self._last_progress = 0.0

    # -- public API ----------------------------------------------------------------------------
    @property
    def dataset_id(self) -> str:
        """The dataset being downloaded."""
        return self._cfg.dataset_id

    @property
    def state(self) -> JobState:
        """``pending``, ``running``, ``paused``, ``cancelling``, ``cancelled``, ``finished`` or
        ``failed``."""
        return self._state

    @property
    def error(self) -> BaseException | None:
        """The error that ended a failed job."""
        return self._error

    @property
    def err_report_path(self) -> Path:
        """Where failed assets are listed."""
        return self._cfg.err_report_path

    @property
    def manifest_path(self) -> Path:
        """The asset index of this download."""
        return self._cfg.manifest_path

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback(event)`` for every event (from the job's thread); returns an
        unsubscribe function."""
        with self._lock:
            self._subscribers.append(callback)
            self._subscribers_snapshot = tuple(self._subscribers)

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._subscribers.remove(callback)
                self._subscribers_snapshot = tuple(self._subscribers)

        return unsubscribe

    def start(self) -> DownloadJob:
        """Start the job in a background thread (once). Returns the job."""
        with self._lock:
            if self._state != "pending":
                raise RuntimeError(f"the job is already {self._state}")
            self._state = "running"
            self._started_at = time.monotonic()
        self._thread = threading.Thread(
            target=self._run, name=f"mlhub-download-{self.dataset_id}", daemon=True
        )
        self._thread.start()
        return self

    def pause(self) -> None:
        """Start no new transfers (running ones finish) until :meth:`resume`."""
        with self._lock:
            if self._state != "running":
                return
            self._state = "paused"
        self._control.pause()
        self._emit(JobPaused())

    def resume(self) -> None:
        """Continue after :meth:`pause`."""
        with self._lock:
            if self._state != "paused":
                return
            self._state = "running"
        self._control.resume()
        self._emit(JobResumed())

    def cancel(self) -> None:
        """Stop as soon as possible; everything stays resumable (``.part`` files + index)."""
        with self._lock:
            if self._state in ("cancelled", "finished", "failed", "cancelling"):
                return
            if self._state == "pending":
                self._state = "cancelled"
                self._finished.set()
                return
            self._state = "cancelling"
        self._cancel.set()
        self._control.cancel()

    def wait(self, timeout: float | None = None) -> DownloadSummary:
        """Wait for the end; return the summary or raise the job's error.

        Raises:
            TimeoutError: still running after ``timeout`` seconds.
            DownloadError: some assets failed (see ``err_report.csv``).
        """
        if self._state == "pending":
            raise RuntimeError("the job was not started")
        if not self._finished.wait(timeout):
            raise TimeoutError(f"download of {self.dataset_id} still running after {timeout}s")
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()  # it only returns now: no thread of the job outlives wait()
        if self._error is not None:
            raise self._error
        if self._summary is None:  # cancelled before it started
            raise DownloadError(f"the download of {self.dataset_id} was cancelled before it began")
        return self._summary

    def done(self) -> bool:
        """True once the job ended (finished, failed or cancelled)."""
        return self._finished.is_set()

    @property
    def summary(self) -> DownloadSummary | None:
        """The summary once the job ended (also for failed and cancelled jobs)."""
        return self._summary

    @property
    def progress(self) -> ProgressSnapshot:
        """A snapshot of the current progress (safe to call from any thread)."""
        return self._snapshot()

    def __repr__(self) -> str:
        p = self._snapshot()
        return (
            f"<DownloadJob {self.dataset_id} {p.state} {p.phase} "
            f"{p.assets_finished}/{p.assets_total} assets>"
        )

    # -- events ----------------------------------------------------------------------------------
    def _emit(self, event: Any) -> None:
        subscribers = self._subscribers_snapshot
        for callback in subscribers:
            try:
                callback(event)
            except Exception:  # a broken subscriber must not break the download
                log.exception("download event callback %r failed", callback)

    def _snapshot(self) -> ProgressSnapshot:
        now = self._ended_at or time.monotonic()
        elapsed = now - self._started_at if self._started_at is not None else 0.0
        bytes_total = self._bytes_total_known if self._sizes_known else None
        eta: float | None = None
        if self._rate > 0 and bytes_total is not None:
            eta = max(0.0, (bytes_total - self._bytes_done) / self._rate)
        elif self._phase == "done":
            eta = 0.0
        per = {
            cid: CollectionProgress(
                total=n,
                done=self._per_done[cid],
                skipped=self._per_skipped[cid],
                failed=self._per_failed[cid],
            )
            for cid, n in sorted(self._per_total.items())
        }
        return ProgressSnapshot(
            state=self._state,
            phase=self._phase,
            assets_total=self._total,
            assets_done=self._done,
            assets_failed=self._failed,
            assets_skipped=self._skipped,
            bytes_done=self._bytes_done,
            bytes_total=bytes_total,
            rate=self._rate,
            eta=eta,
            retries=self._retries,
            elapsed=elapsed,
            index_complete=self._index_complete,
            per_collection=types.MappingProxyType(per),
        )

    def _tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_INTERVAL:
            return
        self._last_progress = now
        if self._rate_mark is not None:
            t0, b0 = self._rate_mark
            if now - t0 >= 0.1:
                inst = (self._bytes_downloaded - b0) / (now - t0)
                self._rate = inst if self._rate == 0 else 0.3 * inst + 0.7 * self._rate
                self._rate_mark = (now, self._bytes_downloaded)
        else:
            self._rate_mark = (now, self._bytes_downloaded)
        self._emit(ProgressUpdated(self._snapshot()))

    # -- the thread -------------------------------------------------------------------------------
    def _run(self) -> None:
        pipeline = _Pipeline(self._cfg, self._emit, self._cancel)
        try:
            summary = self._execute(pipeline)
        except Cancelled:
            self._finish_cancelled()
        except BaseException as exc:
            self._fail(self._disk_full_error(exc, pipeline) if _is_disk_full(exc) else exc)
        else:
            if self._cancel.is_set() and summary.cancelled:
                self._summary = summary
                self._finish_cancelled()
            elif summary.assets_failed:
                self._summary = summary
                self._fail(
                    DownloadError(
                        f"{summary.assets_failed} of {summary.assets_selected} assets of "
                        f"{self.dataset_id} failed; see {summary.err_report}. Run the download "
                        "again to retry only what is missing.",
                        failed=summary.assets_failed,
                        report=summary.err_report,
                    )
                )
            else:
                self._summary = summary
                self._phase = "done"
                self._ended_at = time.monotonic()
                with self._lock:
                    self._state = "finished"
                self._tick(force=True)
                self._emit(JobFinished(summary))
        finally:
            # everything the job opened is closed before anyone waiting is told it ended
            if pipeline.builder is not None:
                pipeline.builder.cancelled.set()
                pipeline.builder.join()
            pipeline.close()
            self._finished.set()

    def _disk_full_error(self, exc: BaseException, pipeline: _Pipeline) -> DiskFullError:
        """A clear error for a full disk: which folder, how much is free, how much is needed."""
        cfg = self._cfg
        where = getattr(exc, "filename", None)
        folder = cfg.dataset_asset_dir
        if isinstance(where, str) and not where.startswith(os.fspath(cfg.dataset_asset_dir)):
            folder = cfg.output_dir if where.startswith(os.fspath(cfg.output_dir)) else folder
        elif not isinstance(exc, sqlite3.Error) and self._phase in ("catalog", "index"):
            folder = cfg.output_dir
        try:
            free: str = _space(shutil.disk_usage(folder).free)
        except OSError:
            free = "unknown"
        missing = max(0, self._total - self._done - self._skipped)
        need: str
        if self._index_complete and self._sizes_known:
            left = max(0, self._bytes_total_known - self._bytes_done)
            need = f"About {_space(left)} more is needed for the {missing:,} selected assets "
            need += "not yet on disk."
        else:
            estimate = pipeline.info.get("estimated_dataset_size")
            if isinstance(estimate, int | float) and estimate > self._bytes_done:
                need = f"The dataset is estimated at {_space(estimate)}; about "
                need += f"{_space(estimate - self._bytes_done)} more is needed."
            elif self._bytes_total_known > self._bytes_done:
                need = f"At least {_space(self._bytes_total_known - self._bytes_done)} more "
                need += "is needed (the catalogue was not fully read)."
            else:
                need = "The space needed is not known yet (the catalogue was not fully read)."
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        detail = redact_text(text) or type(exc).__name__
        return DiskFullError(
            f"Disk full: no space left for the download of {cfg.dataset_id} in {folder} "
            f"({free} free). {need} The download stopped; the files completed so far are "
            "kept and nothing half-written has a final name. Free some space (or choose "
            "another output folder) and run the same download again: it resumes where it "
            f"stopped. ({detail})",
            failed=missing,
        )

    def _finish_cancelled(self) -> None:
        self._ended_at = time.monotonic()
        with self._lock:
            self._state = "cancelled"
        self._tick(force=True)
        if self._summary is not None:
            self._emit(JobCancelled(self._summary))

    def _fail(self, exc: BaseException) -> None:
        self._error = exc
        self._ended_at = time.monotonic()
        with self._lock:
            self._state = "failed"
        self._tick(force=True)
        self._emit(JobFailed(exc))

    def _execute(self, pipeline: _Pipeline) -> DownloadSummary:
        cfg = self._cfg
        started = time.monotonic()
        self._phase = "catalog"
        self._tick(force=True)
        pipeline.fetch_catalog()
        if self._cancel.is_set():
            raise Cancelled()
        self._phase = "index"
        self._tick(force=True)
        with Manifest(cfg.manifest_path, cache_kib=TRANSFER_CACHE_KIB) as db:
            pipeline.prepare_index(db, inline=cfg.catalog_only)
            if pipeline.builder is None:
                self._index_done(db, pipeline, started)
            if cfg.catalog_only:
                self._phase = "done"
                return self._summarize(db, started, catalog_only=True)
            if cfg.if_exists == "overwrite" and pipeline.builder is None:
                with db.transaction() as con:
                    con.execute("UPDATE assets SET state=0, bytes=0 WHERE selected=1")
            elif pipeline.builder is None:
                self._settle_done(db)
            self._phase = "transfer"
            self._tick(force=True)
            cancelled = asyncio.run(self._transfer(db, pipeline, started))
            if pipeline.builder is not None and not cancelled:
                pipeline.finish_build(db)
            summary = self._summarize(db, started, cancelled=cancelled)
            if not cancelled and summary.assets_selected == 0:
                raise pipeline.no_assets_error(db)
            return summary

    def _settle_done(self, db: Manifest) -> None:
        """Count assets recorded as done as skipped, without any request.

        ``resume`` checks each file's size on disk (a missing or different file goes back to
        pending); ``skip`` trusts the index.
        """
        if self._cfg.if_exists == "resume":
            base = os.fspath(self._cfg.dataset_asset_dir) + os.sep
            stale: list[int] = []
            for rows in db.iter_done():
                for asset_id, rel, size in rows:
                    try:
                        if os.stat(base + rel).st_size != size:
                            stale.append(asset_id)
                    except OSError:
                        stale.append(asset_id)
            if stale:
                log.info("%d assets recorded as done are missing or changed on disk", len(stale))
                db.mark_pending(stale)
        counts = db.counts()
        self._skipped = counts["done"]
        self._bytes_done = counts["done_bytes"]
        for cid, info in db.per_collection().items():
            self._per_skipped[cid] = info["done"]

    def _index_done(self, db: Manifest, pipeline: _Pipeline, started: float) -> None:
        counts = db.counts()
        self._total = counts["selected"]
        self._bytes_total_known = counts["known_bytes"]
        self._sizes_known = counts["sized"] == counts["selected"]
        for cid, info in db.per_collection().items():
            self._per_total[cid] = info["assets"]
        self._index_complete = True
        self._collisions = db.collisions()
        items = db.item_count()
        self._emit(
            IndexBuilt(
                items=items,
                assets=counts["assets"],
                selected=counts["selected"],
                reused=pipeline.index_reused,
                replanned=pipeline.replanned,
                seconds=time.monotonic() - started,
            )
        )
        if counts["selected"] == 0 and not self._cfg.catalog_only:
            raise pipeline.no_assets_error(db)

    # -- transfers (in the job's event loop) -------------------------------------------------
    async def _transfer(self, db: Manifest, pipeline: _Pipeline, started: float) -> bool:
        cfg = self._cfg
        base = cfg.dataset_asset_dir
        session = pipeline.get_session()
        writer = _OutcomeWriter(cfg.manifest_path)
        rows_by_tag: dict[int, AssetRow] = {}
        started_ids: set[int] = set()

        def on_start(spec: transfer.TransferSpec) -> None:
            row = rows_by_tag.get(int(spec.tag)) if spec.tag is not None else None
            if row is not None and row.id not in started_ids and self._subscribers_snapshot:
                started_ids.add(row.id)
                self._emit(
                    AssetStarted(
                        row.collection_id, row.item_id, row.asset_key, row.url, Path(spec.dest)
                    )
                )

        def on_bytes(n: int) -> None:
            self._bytes_done += n
            self._bytes_downloaded += n

        def on_retry(spec: transfer.TransferSpec, reason: str, delay: float) -> None:
            self._retries += 1
            row = rows_by_tag.get(int(spec.tag)) if spec.tag is not None else None
            url = row.url if row is not None else redact_url(spec.url)
            self._emit(AssetRetried(url, redact_text(str(reason)), delay))

        def on_outcome(out: transfer.TransferOutcome) -> None:
            if not out.ok and out.disk_full:
                # every further file would fail the same way: stop the job (the asset stays
                # pending, not failed: it is not its fault)
                raise OSError(errno.ENOSPC, str(out.error), os.fspath(out.spec.dest))
            if writer.error is not None:
                raise writer.error
            row = rows_by_tag.pop(int(out.spec.tag), None) if out.spec.tag is not None else None
            if row is None:
                return
            started_ids.discard(row.id)
            self._record_outcome(row, out, writer)

        engine = transfer.TransferEngine(workers=cfg.workers, if_exists=cfg.if_exists)
        loop = asyncio.get_running_loop()
        run = loop.create_task(
            engine.run(
                self._produce(db, pipeline, base, session, rows_by_tag),
                on_outcome=on_outcome,
                on_bytes=on_bytes,
                on_start=on_start,
                on_retry=on_retry,
                control=self._control,
            )
        )
        ticker = loop.create_task(self._ticker(writer, run))
        error: BaseException | None = None
        try:
            await run
        except asyncio.CancelledError:
            if writer.error is None or not run.cancelled():
                raise
            error = writer.error  # the ticker stopped the run: the index cannot be written
        except BaseException as exc:
            error = exc
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        try:
            await loop.run_in_executor(None, writer.close)
        except BaseException as exc:
            error = error or exc  # the first error is the one that tells what happened
        if error is not None:
            raise error
        builder = pipeline.builder
        if builder is not None and self._cancel.is_set():
            builder.join()  # it stops at the next catalogue member
        elif builder is not None and builder.error is not None:
            raise builder.error
        return self._cancel.is_set()

    async def _ticker(self, writer: _OutcomeWriter, run: asyncio.Task[None]) -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL)
            writer.maybe_flush()
            if writer.error is not None:  # e.g. a full disk: stop now, not after every file
                run.cancel()
                return
            self._tick()

    async def _produce(
        self,
        db: Manifest,
        pipeline: _Pipeline,
        base: Path,
        session: Session,
        rows_by_tag: dict[int, AssetRow],
    ) -> AsyncIterator[transfer.TransferSpec]:
        cfg = self._cfg
        builder = pipeline.builder
        last_seq = pipeline.start_seq
        if builder is not None and cfg.flt.collection_filter is not None:
            while not pipeline.collection_filter_ready() and not builder.done.is_set():
                await asyncio.sleep(0.02)
            if builder.done.is_set() and not pipeline.collection_filter_ready():
                builder.join()
                if builder.error is not None:
                    raise builder.error
                pipeline._validate_collection_filter(db)
        stale: list[int] = []
        key = session.api_key
        is_api_url = _OriginCache(session.is_api_url)
        loop = asyncio.get_running_loop()
        base_prefix = os.path.join(os.fspath(base), "")
        while True:
            if self._cancel.is_set():
                return
            finished_building = builder is None or builder.done.is_set()
            rows = db.rows_after(last_seq, _FETCH_ROWS, pending_only=builder is None)
            present: set[int] = set()
            if rows and cfg.if_exists != "overwrite":
                # which destinations exist, in one hand-over to a thread: a stat in the event
                # loop can wait for a directory lock held by a slow file create elsewhere
                present = await loop.run_in_executor(None, _present, base_prefix, rows)
            if not rows:
                if finished_building:
                    if builder is not None:
                        builder.join()
                        if builder.error is not None:
                            raise builder.error
                        # one more pass: rows committed just before the builder ended
                        rows = db.rows_after(last_seq, _FETCH_ROWS)
                    if not rows:
                        if builder is not None and not self._index_complete:
                            self._index_done_streaming(db, pipeline)
                        break
                else:
                    if builder is not None:
                        self._total = max(self._total, builder.selected)
                    await asyncio.sleep(0.02)
                    continue
            for row in rows:
                last_seq = row.seq
                if self._cancel.is_set():
                    return
                cid = row.collection_id
                if not self._index_complete:
                    self._per_total[cid] += 1
                    self._total = max(self._total, builder.selected if builder else 0)
                if row.state == DONE and cfg.if_exists != "overwrite":
                    if cfg.if_exists == "skip" or (
                        row.id in present and _complete_on_disk(base_prefix + row.path, row)
                    ):
                        self._skipped += 1
                        self._per_skipped[cid] += 1
                        self._bytes_done += row.bytes
                        continue
                    stale.append(row.id)
                if row.size is None:
                    self._sizes_known = False
                elif self._index_complete is False:
                    self._bytes_total_known += row.size
                rows_by_tag[row.id] = row
                url = row.url
                if key and is_api_url(url):
                    url = _with_key(url, key)
                yield transfer.TransferSpec(
                    url=url,
                    dest=base_prefix + row.path,  # a str: no pathlib in the hot loop
                    size=row.size,
                    checksum=row.checksum,
                    tag=row.id,
                    absent=cfg.if_exists != "overwrite" and row.id not in present,
                )
            if stale:
                db.mark_pending(stale)
                stale.clear()
        if stale:
            db.mark_pending(stale)

    def _index_done_streaming(self, db: Manifest, pipeline: _Pipeline) -> None:
        """The streaming build ended: fix totals from the index."""
        counts = db.counts()
        self._total = counts["selected"]
        self._bytes_total_known = counts["known_bytes"]
        self._sizes_known = counts["sized"] == counts["selected"]
        self._per_total.clear()
        for cid, info in db.per_collection().items():
            self._per_total[cid] = info["assets"]
        self._index_complete = True
        builder = pipeline.builder
        if builder is not None:
            self._emit(
                IndexBuilt(
                    items=builder.items,
                    assets=counts["assets"],
                    selected=counts["selected"],
                    reused=False,
                    replanned=False,
                    seconds=builder.seconds,
                )
            )

    def _record_outcome(
        self, row: AssetRow, out: transfer.TransferOutcome, writer: _OutcomeWriter
    ) -> None:
        cid = row.collection_id
        if out.ok:
            size = int(out.size or 0)
            transferred = out.attempts > 0
            if transferred:
                self._done += 1
                self._per_done[cid] += 1
            else:  # the engine found the file complete without a transfer
                self._skipped += 1
                self._per_skipped[cid] += 1
                self._bytes_done += size
            writer.add(
                Outcome(
                    row.id,
                    DONE,
                    size,
                    etag=out.etag,
                    last_modified=out.last_modified,
                    attempts=int(out.attempts or 0),
                    status=out.status,
                )
            )
            if transferred and self._subscribers_snapshot:
                self._emit(
                    AssetFinished(
                        cid,
                        row.item_id,
                        row.asset_key,
                        Path(out.spec.dest),
                        size,
                        int(out.resumed_from or 0),
                    )
                )
        else:
            reason = redact_text(str(out.error or "unknown error"))
            self._failed += 1
            self._per_failed[cid] += 1
            writer.add(
                Outcome(
                    row.id,
                    FAILED,
                    0,
                    attempts=int(out.attempts or 0),
                    status=out.status,
                    error=reason,
                )
            )
            self._emit(
                AssetFailed(
                    cid,
                    row.item_id,
                    row.asset_key,
                    row.url,
                    Path(out.spec.dest),
                    reason,
                    out.status,
                )
            )

    # -- summary ---------------------------------------------------------------------------------
    def _summarize(
        self,
        db: Manifest,
        started: float,
        *,
        cancelled: bool = False,
        catalog_only: bool = False,
    ) -> DownloadSummary:
        cfg = self._cfg
        counts = db.counts()
        report = None
        if not catalog_only:
            failed = write_err_report(db, cfg.err_report_path)
            report = cfg.err_report_path
            if failed != counts["failed"]:  # pragma: no cover - consistency guard
                log.debug("err_report rows %d vs failed %d", failed, counts["failed"])
        per = {
            cid: CollectionProgress(
                total=info["assets"],
                done=self._per_done[cid],
                skipped=self._per_skipped[cid],
                failed=info["failed"],
            )
            for cid, info in db.per_collection().items()
        }
        return DownloadSummary(
            dataset_id=cfg.dataset_id,
            catalog_path=cfg.catalog_path,
            catalog_dir=cfg.catalog_dir,
            asset_dir=cfg.dataset_asset_dir,
            manifest_path=cfg.manifest_path,
            err_report=report,
            assets_selected=0 if catalog_only else counts["selected"],
            assets_downloaded=self._done,
            assets_skipped=self._skipped,
            assets_failed=0 if catalog_only else counts["failed"],
            bytes_downloaded=self._bytes_downloaded,
            bytes_on_disk=counts["done_bytes"],
            retries=self._retries,
            path_collisions=db.collisions(),
            elapsed=time.monotonic() - started,
            cancelled=cancelled,
            catalog_only=catalog_only,
            per_collection=types.MappingProxyType(per),
        )


_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")


class _OriginCache:
    """``Session.is_api_url`` answered once per origin (it parses the URL each time)."""

    def __init__(self, check: Callable[[str], bool]) -> None:
        self._check = check
        self._seen: dict[str, bool] = {}

    def __call__(self, url: str) -> bool:
        match = _ORIGIN.match(url)
        if match is None:
            return self._check(url)
        origin = match.group()
        answer = self._seen.get(origin)
        if answer is None:
            if len(self._seen) > 256:
                self._seen.clear()
            answer = self._seen[origin] = self._check(origin + "/")
        return answer


def _present(prefix: str, rows: list[AssetRow]) -> set[int]:
    """Ids of the rows whose file (or ``.part``) exists under ``prefix`` (runs in a thread).

    A folder that does not exist is checked once, not once per file and ``.part``: on a first
    download, one call per item instead of two per asset."""
    out: set[int] = set()
    sep = os.sep
    folders: dict[str, bool] = {}
    lexists = os.path.lexists
    for row in rows:
        path = prefix + (row.path if sep == "/" else row.path.replace("/", sep))
        folder = path.rpartition(sep)[0]
        there = folders.get(folder)
        if there is None:
            there = folders[folder] = os.path.isdir(folder)
        if there and (lexists(path) or lexists(path + ".part")):
            out.add(row.id)
    return out


def _complete_on_disk(path: str, row: AssetRow) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    expected = row.size if row.size is not None else row.bytes
    return st.st_size == expected


_SQLITE_FULL = 13  # SQLITE_FULL: "database or disk is full"
_SQLITE_IOERR = 10


def _is_disk_full(exc: BaseException) -> bool:
    """A full disk or exceeded quota, as an OSError or as SQLite reports it."""
    for error in (exc, exc.__cause__):
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(error, sqlite3.Error):
            code = getattr(error, "sqlite_errorcode", None)
            if code is not None and code & 0xFF == _SQLITE_FULL:
                return True
            if "database or disk is full" in str(error):
                return True
    return False


def _space(n: float) -> str:
    """A byte count for messages: ``512 bytes``, ``12.3 kB``, ``4.5 MB``."""
    return f"{n:,.0f} bytes" if n < 1000 else _human_bytes(n)


class _OutcomeWriter:
    """Collects transfer outcomes in the event loop and writes them to the index in batches
    from a helper thread (one hand-over per batch, not per asset: thread wake-ups are costly
    under the GIL).

    The hand-over queue is bounded: when the index cannot keep up (its writes wait for the
    index process's transactions), the event loop waits instead of piling outcomes up in
    memory; the writer merges what queued up into one transaction to catch up.
    """

    BATCH = 1000
    INTERVAL = 0.25
    MAX_QUEUED = 16  # batches: ~16,000 outcomes, a few MB at most
    MERGE = 16  # batches written in one transaction when the writer is behind

    def __init__(self, path: Path) -> None:
        self._queue: queue.Queue[list[Outcome] | None] = queue.Queue(maxsize=self.MAX_QUEUED)
        self._path = path
        self._pending: list[Outcome] = []
        self._last = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="mlhub-index-writer", daemon=True)
        self._error: BaseException | None = None
        self._thread.start()

    def add(self, outcome: Outcome) -> None:
        self._pending.append(outcome)
        if len(self._pending) >= self.BATCH:
            self.flush()

    def maybe_flush(self) -> None:
        """Hand over what is pending if the last hand-over is old enough (called by a timer)."""
        if self._pending and time.monotonic() - self._last >= self.INTERVAL:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._put(self._pending)
            self._pending = []
        self._last = time.monotonic()

    def _put(self, item: list[Outcome] | None) -> None:
        while self._error is None and self._thread.is_alive():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        # the writer stopped (its error is raised by close() and seen by the job): drop it

    @property
    def error(self) -> BaseException | None:
        """The error that stopped the writer (e.g. a full disk), if any."""
        return self._error

    def close(self) -> None:
        self.flush()
        self._put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _loop(self) -> None:
        try:
            with Manifest(self._path, cache_kib=TRANSFER_CACHE_KIB) as db:
                while (batch := self._queue.get()) is not None:
                    last = False
                    for _ in range(self.MERGE - 1):  # catch up: what queued meanwhile, too
                        try:
                            more = self._queue.get_nowait()
                        except queue.Empty:
                            break
                        if more is None:
                            last = True
                            break
                        batch = batch + more
                    db.record(batch)  # one transaction: all of a batch or nothing
                    if last:
                        return
        except BaseException as exc:  # reported by close() and seen by the job at once
            self._error = exc


def write_err_report(db: Manifest, path: Path) -> int:
    """Write failed selected assets to ``path`` (CSV with a header); returns the row count."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        n = _write_err_rows(db, tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return n


def _write_err_rows(db: Manifest, tmp: Path) -> int:
    n = 0
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(ERR_REPORT_COLUMNS)
        for row in db.iter_rows(state=FAILED):
            writer.writerow(
                [
                    row.collection_id,
                    row.item_id or "",
                    row.asset_key,
                    redact_url(row.url),
                    row.path,
                    row.status if row.status is not None else "",
                    redact_text(row.error or ""),
                    row.attempts,
                ]
            )
            n += 1
    return n


# =============================================================================================
# terminal progress


class _TqdmProgress:
    """Two tqdm bars (bytes and assets) on stderr, driven by ProgressUpdated events."""

    def __init__(self, dataset_id: str) -> None:
        self.dataset_id = dataset_id
        self._bytes: Any = None
        self._assets: Any = None

    def __call__(self, event: Any) -> None:
        if isinstance(event, CatalogFetched):
            verb = "reusing" if event.reused else "fetched"
            print(
                f"{self.dataset_id}: {verb} catalogue ({_human_bytes(event.size)})",
                file=sys.stderr,
            )
        elif isinstance(event, ProgressUpdated):
            snap = event.snapshot
            if snap.phase not in ("transfer", "done") or snap.assets_total == 0:
                return
            self._ensure()
            self._assets.total = snap.assets_total
            self._assets.n = snap.assets_finished
            self._assets.set_postfix_str(
                f"failed={snap.assets_failed} skipped={snap.assets_skipped}", refresh=False
            )
            if snap.bytes_total is not None:
                self._bytes.total = snap.bytes_total
            self._bytes.n = snap.bytes_done
            self._assets.refresh()
            self._bytes.refresh()
        elif isinstance(event, JobFinished | JobFailed | JobCancelled):
            self.close()

    def _ensure(self) -> None:
        if self._bytes is None:
            from tqdm.auto import tqdm

            self._bytes = tqdm(
                total=None,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=f"{self.dataset_id} bytes",
                file=sys.stderr,
                position=0,
                leave=True,
            )
            self._assets = tqdm(
                total=0,
                unit="asset",
                desc=f"{self.dataset_id} assets",
                file=sys.stderr,
                position=1,
                leave=True,
            )

    def close(self) -> None:
        for bar in (self._bytes, self._assets):
            if bar is not None:
                bar.refresh()
                bar.close()
        self._bytes = self._assets = None


# =============================================================================================
# entry points


def download_dataset(
    dataset_id: str,
    output_dir: str | os.PathLike[str] = ".",
    *,
    asset_output_dir: str | os.PathLike[str] | None = None,
    catalog_only: bool = False,
    if_exists: str = "resume",
    bbox: object = None,
    intersects: object = None,
    datetime: object = None,
    collection_filter: object = None,
    session: Session | None = None,
    api_key: str | None = None,
    profile: str | None = None,
    root_url: str | None = None,
    workers: int | None = None,
    progress: bool | Callback = True,
    background: bool = False,
    source: object = None,
) -> DownloadSummary | DownloadJob:
    """Download a dataset's STAC catalogue and (filtered) assets; see the module docstring.

    Arguments are validated before any request. ``progress``: ``True`` for tqdm bars on
    stderr, ``False`` for none, or a callable receiving every event. With ``background=True``
    the running :class:`DownloadJob` is returned at once; otherwise the call blocks
    (Ctrl-C cancels the job, leaving it resumable) and returns a :class:`DownloadSummary`.

    ``source`` (a :class:`~mlhub_widgets.sources.Source`, or a URL/path for
    :func:`~mlhub_widgets.open_source`) downloads from a static STAC catalogue or a STAC API
    instead: the index is built from the source's stream of collections and items (a static
    catalogue is walked in parallel; a STAC API filters bbox/intersects/datetime on the
    server) and the catalogue is written to ``{output_dir}/{dataset_id}/`` in the same layout
    (no ``.tar.gz``). Filters, resume, retries, ``err_report.csv`` and progress are the same.

    Raises:
        ValueError / TypeError: bad arguments or filters (before any request);
            :class:`NoAssetsSelected` (a ValueError) when the filters select nothing.
        EntityDoesNotExist: the dataset has no catalogue.
        DownloadError: some assets failed; ``err_report.csv`` lists them. A re-run retries
            only what is missing or failed.
        DiskFullError: (a ``DownloadError``) no space left or a quota exceeded where files or
            the index are written: the job stops at once; the message names the folder, the
            free space and the space still needed. Free space and run again to resume.
        CatalogError: (a ``DownloadError``) the catalogue tarball is damaged, cut short (also
            exactly between two members) or not an archive; it is deleted, so a re-run
            fetches it anew.
    """
    job = DownloadJob(
        dataset_id,
        output_dir,
        asset_output_dir=asset_output_dir,
        catalog_only=catalog_only,
        if_exists=if_exists,
        bbox=bbox,
        intersects=intersects,
        datetime=datetime,
        collection_filter=collection_filter,
        session=session,
        api_key=api_key,
        profile=profile,
        root_url=root_url,
        workers=workers,
        source=source,
    )
    if progress is True:
        job.subscribe(_TqdmProgress(dataset_id))
    elif callable(progress):
        job.subscribe(progress)
    job.start()
    if background:
        return job
    try:
        return job.wait()
    except KeyboardInterrupt:
        job.cancel()
        with contextlib.suppress(BaseException):
            job.wait(timeout=30)
        raise


def plan_download(
    dataset_id: str,
    output_dir: str | os.PathLike[str] = ".",
    *,
    asset_output_dir: str | os.PathLike[str] | None = None,
    bbox: object = None,
    intersects: object = None,
    datetime: object = None,
    collection_filter: object = None,
    session: Session | None = None,
    api_key: str | None = None,
    profile: str | None = None,
    root_url: str | None = None,
    source: object = None,
) -> DownloadPlan:
    """What :func:`download_dataset` with these filters would fetch, without asset requests.

    Fetches (or reuses) the catalogue and the asset index exactly as a download does, so a
    following download starts at once.

    Raises:
        ValueError / TypeError: bad filters (unknown collections or keys list the valid ones).
    """
    cfg = _make_config(
        dataset_id,
        output_dir,
        asset_output_dir=asset_output_dir,
        catalog_only=False,
        if_exists="resume",
        bbox=bbox,
        intersects=intersects,
        datetime=datetime,
        collection_filter=collection_filter,
        session=session,
        api_key=api_key,
        profile=profile,
        root_url=root_url,
        workers=None,
        limits=None,
        source=source,
    )
    pipeline = _Pipeline(cfg, _ignore_event, threading.Event())
    try:
        pipeline.fetch_catalog()
        with Manifest(cfg.manifest_path) as db:
            pipeline.prepare_index(db, inline=True)
            return pipeline.plan(db)
    finally:
        pipeline.close()


def download_archive(
    collection_id: str,
    output_dir: str | os.PathLike[str] | None = None,
    *,
    if_exists: str = "resume",
    session: Session | None = None,
    api_key: str | None = None,
    profile: str | None = None,
    root_url: str | None = None,
    progress: bool = True,
) -> Path:
    """Download a collection archive (``/archive/{id}`` → storage) resumably and verified.

    The file is saved as ``{output_dir or cwd}/{last URL segment}``. Large files are fetched
    with parallel ranges; ``Content-MD5`` is checked when the storage sends it.

    Raises:
        EntityDoesNotExist: no such archive (it may not exist, or may still be generating).
        ValueError: ``output_dir`` is a file or ``if_exists`` is unknown.
    """
    _validate_common(if_exists, None)
    out = Path(output_dir).expanduser() if output_dir is not None else Path.cwd()
    if out.exists() and not out.is_dir():
        raise ValueError(f"output_dir {out} exists and is not a folder")
    sess = session or get_session(api_key=api_key, profile=profile, root_url=root_url)
    try:
        return _download_archive(collection_id, out, if_exists, sess, progress)
    finally:
        if sess is not session:
            sess.close()


def _download_archive(
    collection_id: str, out: Path, if_exists: str, sess: Session, progress: bool
) -> Path:
    try:
        response = sess.get(f"archive/{collection_id}", allow_redirects=False)
    except EntityDoesNotExist as exc:
        raise EntityDoesNotExist(
            exc.status_code,
            exc.method,
            exc.url,
            exc.detail,
            message=f'Archive "{collection_id}" does not exist and may still be generating. '
            "Please try again later.",
        ) from None
    location = response.headers.get("Location")
    response.close()
    if response.status_code in (301, 302, 303, 307, 308) and location:
        url = location if urlsplit(location).scheme else sess.url_for(location)
    else:
        url = sess.url_for(f"archive/{collection_id}")
    if sess.is_api_url(url) and sess.api_key:
        url = _with_key(url, sess.api_key)
    name = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1] or f"{collection_id}.tar.gz"
    out.mkdir(parents=True, exist_ok=True)
    dest = out / name
    if if_exists == "skip" and dest.exists():
        return dest
    size: int | None = None
    with contextlib.suppress(MLHubException):
        info = sess.get_json(f"archive/{collection_id}/info")
        if isinstance(info, Mapping) and isinstance(info.get("size"), int):
            size = int(info["size"])
    bar: Any = None
    on_bytes: Callable[[int], None] | None = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=size, unit="B", unit_scale=True, unit_divisor=1024, desc=name, file=sys.stderr
        )
        on_bytes = bar.update
    try:
        outcome = transfer.download_file(
            url,
            dest,
            size=size,
            if_exists=if_exists,
            parallel_ranges=8,
            on_bytes=on_bytes,
        )
    finally:
        if bar is not None:
            bar.close()
    if not outcome.ok:
        raise DownloadError(
            f"could not download archive {collection_id} from {redact_url(url)}: "
            f"{redact_text(str(outcome.error), sess.api_key)}",
            failed=1,
        )
    return dest


def iter_events_until_done(job: DownloadJob, timeout: float | None = None) -> Iterator[Any]:
    """Yield a job's events from the calling thread until it ends (for scripts and tests)."""
    q: queue.SimpleQueue[Any] = queue.SimpleQueue()
    unsubscribe = job.subscribe(q.put)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                event = q.get(timeout=remaining if remaining is not None else 1.0)
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    return
                if job.done() and q.empty():
                    return
                continue
            yield event
            if isinstance(event, JobFinished | JobFailed | JobCancelled):
                return
    finally:
        unsubscribe()
