"""Copy a prefix without a catalogue: :func:`sync` and ``mlhub sync SRC -o DEST``.

Not every dataset kept its STAC catalogue when it moved to an object store. ``sync`` lists a
prefix and copies every object below it (or those the ``include``/``exclude`` globs select)
with the download engine: parallel transfers, the same verification (the listed size; on S3
the MD5 that a single-part object's ETag is), resume of large objects, retries, progress
events (a :class:`SyncJob` is a :class:`~.job.DownloadJob`), ``err_report.csv`` and an index
that makes a rerun copy only what is missing or changed::

    mw.sync("s3://radiantearth/ref_african_crops_kenya_02/", "data/kenya",
            storage_options={"endpoint": "https://data.source.coop", "skip_signature": True})

Sources: an object-store prefix (``s3://``, ``gs://``, ``az://``) or a local folder.
Destinations: a local folder or an object-store prefix (see :mod:`.destination`), so a local
folder can be uploaded and a prefix copied between buckets. The layout is kept: the object
``{src}/a/b.tif`` becomes ``{dest}/a/b.tif``. The index and ``err_report.csv`` live in a local
state folder keyed by the destination (``$MLHUB_STATE_DIR``, or the user cache folder), so the
destination holds nothing but the copied files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigurationError, NoAssetsSelected
from ..filters import AssetFilter
from ..net.http import Credentials
from ..net.objects import StorageOptions, is_object_url, parse_object_url
from ..net.settings import NetworkSettings
from ..units import human_bytes
from .catalog_archive import ArchiveLimits
from .defaults import DEFAULT_WORKERS
from .events import Callback, DownloadSummary, IndexProgress
from .job import DownloadJob
from .manifest import Manifest
from .outcome_writer import TRANSFER_CACHE_KIB
from .pipeline import Pipeline, output_location, validate_common
from .prefix_listing import (
    PrefixLister,
    SyncConfig,
    is_own_file,
    local_state_dir,
    safe_relpath,
    selected,
    source_objects,
)
from .progress import console_progress

if TYPE_CHECKING:
    from .distributed import ClusterLike

__all__ = ["SyncJob", "SyncPlan", "plan_sync", "sync"]


def _config(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    include: Sequence[str] | None,
    exclude: Sequence[str] | None,
    if_exists: str,
    workers: int | None,
    storage_options: StorageOptions | None,
    output_storage_options: StorageOptions | None,
    network: NetworkSettings | None,
    etag_checksums: bool,
) -> SyncConfig:
    validate_common(if_exists, workers)
    text = os.fspath(src)
    destination, folder = output_location(dest, output_storage_options, "destination")
    if is_object_url(text):
        loc = parse_object_url(text)  # a clear error for a URL without a bucket
        name = (loc.key.strip("/").rsplit("/", 1)[-1] or loc.bucket) if loc.key else loc.bucket
    else:
        output_location(text, None, "source")  # any other scheme: a one-line error
        if destination is None:
            raise ConfigurationError(
                f"sync copies from or to an object store; {text} and {dest} are both local "
                "folders (use cp or rsync)"
            )
        root = Path(text).expanduser().absolute()
        if not root.is_dir():
            raise ConfigurationError(f"source {text} is not a folder")
        text, name = os.fspath(root), root.name or "files"
    state = destination.state_dir if destination is not None else local_state_dir(folder)
    for pattern in (*(include or ()), *(exclude or ())):
        if not isinstance(pattern, str) or not pattern:
            raise ValueError(f"include/exclude patterns are non-empty strings, got {pattern!r}")
    return SyncConfig(
        dataset_id=name,
        output_dir=state,
        asset_dir=folder,
        catalog_only=False,
        if_exists=if_exists,  # type: ignore[arg-type]
        flt=AssetFilter.build(),
        collection_filter=None,
        workers=workers or DEFAULT_WORKERS,
        session=None,
        session_kwargs={},
        limits=ArchiveLimits(),
        storage_options=dict(storage_options or {}),
        destination=destination,
        src=text,
        include=tuple(include or ()),
        exclude=tuple(exclude or ()),
        state_dir=state,
        network=network or NetworkSettings(),
        etag_checksums=etag_checksums,
    )


class SyncJob(DownloadJob):
    """A sync running in a background thread: a :class:`DownloadJob` whose assets are the
    objects below a prefix (pause, resume, cancel, events and summary are the same). Create it
    with :func:`sync` (``background=True``) or with the same arguments, then :meth:`start` it.
    """

    def __init__(
        self,
        src: str | os.PathLike[str],
        dest: str | os.PathLike[str] = ".",
        *,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        if_exists: str = "resume",
        workers: int | None = None,
        storage_options: StorageOptions | None = None,
        output_storage_options: StorageOptions | None = None,
        network: NetworkSettings | None = None,
        etag_checksums: bool = True,
        cluster: ClusterLike | None = None,
    ) -> None:
        target = None
        if cluster is not None:
            from .distributed import parse_cluster

            target = parse_cluster(cluster)
        cfg = _config(
            src, dest, include=include, exclude=exclude, if_exists=if_exists, workers=workers,
            storage_options=storage_options, output_storage_options=output_storage_options,
            network=network, etag_checksums=etag_checksums,
        )  # fmt: skip
        super(DownloadJob, self).__init__(cfg)
        self._sync = cfg
        self._cluster = target
        self._cluster_transfer = None
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None
        self._summary: DownloadSummary | None = None
        self._error: BaseException | None = None

    def _engine_inputs(
        self, pipeline: Pipeline
    ) -> tuple[list[Credentials], NetworkSettings, Callable[[str], str] | None]:
        return [], self._sync.network, None

    def _execute(self, pipeline: Pipeline) -> DownloadSummary:
        cfg = self._sync
        started = time.monotonic()
        self._phase = "index"
        self._tick(force=True)
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        if cfg.destination is None:
            cfg.asset_dir.mkdir(parents=True, exist_ok=True)
        with Manifest(cfg.manifest_path, cache_kib=TRANSFER_CACHE_KIB) as db:
            if cfg.destination is not None:
                cfg.destination.network = cfg.network
                cfg.destination.scan(cfg.dataset_asset_dir)
            pipeline.start_seq = db.max_seq()
            emit = self._emit

            def on_progress(items: int, assets: int, chosen: int) -> None:
                emit(IndexProgress(items, assets, chosen))

            lister = PrefixLister(cfg, pipeline.start_seq, self._cancel, on_progress)
            pipeline.builder = lister  # type: ignore[assignment]
            lister.start()
            self._phase = "transfer"
            self._tick(force=True)
            import asyncio

            cancelled = asyncio.run(self._transfer(db, pipeline, started))
            lister.join()
            if lister.error is not None:
                raise lister.error
            if not cancelled and lister.selected == 0:
                what = "match the include/exclude globs" if lister.assets else "are there"
                raise NoAssetsSelected(
                    f"nothing to copy: no objects below {cfg.src} {what} ({lister.assets:,} listed)"
                )
            summary = self._summarize(db, started, cancelled=cancelled)
            return dataclasses.replace(summary, reserved_skipped=lister.reserved)


def sync(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str] = ".",
    *,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    if_exists: str = "resume",
    workers: int | None = None,
    storage_options: StorageOptions | None = None,
    output_storage_options: StorageOptions | None = None,
    network: NetworkSettings | None = None,
    etag_checksums: bool = True,
    progress: bool | Callback = True,
    background: bool = False,
    cluster: ClusterLike | None = None,
) -> DownloadSummary | SyncJob:
    """Copy every object below a prefix (or every file below a folder) to ``dest``.

    Args:
        src: ``s3://bucket/prefix`` (``gs://``, ``az://``), or a local folder to upload.
        dest: a local folder, or an object-store prefix.
        include: globs of the paths below ``src`` to copy (all when omitted).
        exclude: globs of paths not to copy (applied after ``include``).
        if_exists: ``"resume"`` (keep what is complete: same size), ``"skip"`` or
            ``"overwrite"``.
        workers: concurrent transfers (default 64).
        storage_options: the source's store options (``{"endpoint": ..., "skip_signature":
            True}`` for Source Cooperative); each cloud's environment applies too.
        output_storage_options: the destination's store options.
        network: proxy, TLS, timeouts and retries.
        etag_checksums: verify S3 objects written in one part against the MD5 their ETag is
            (turn off for buckets encrypted with SSE-KMS or SSE-C, whose ETags are not MD5s).
        progress: ``True`` for tqdm bars, ``False`` for none, or a callable for every event.
        background: return the running :class:`SyncJob` at once.
        cluster: run the transfers on a Dask cluster, as :func:`download_dataset` does (a
            scheduler address, ``"local:N"``, a ``distributed.Client`` or a cluster object;
            the ``[distributed]`` extra; see ``docs/scale-out.md``). Every worker reads the
            source and writes the destination: an object store, or a folder it sees at the
            same path.

    Returns:
        The :class:`DownloadSummary` (objects are its "assets"), or the job.

    Raises:
        ValueError / ConfigurationError: bad arguments, unsupported URLs, local to local.
        EntityDoesNotExist, AuthenticationError: the bucket is missing or access is denied.
        DownloadError: some objects failed (``err_report.csv`` in the state folder); a rerun
            retries only those.
    """
    job = SyncJob(
        src, dest, include=include, exclude=exclude, if_exists=if_exists, workers=workers,
        storage_options=storage_options, output_storage_options=output_storage_options,
        network=network, etag_checksums=etag_checksums, cluster=cluster,
    )  # fmt: skip
    if progress is True:
        job.subscribe(console_progress(job.dataset_id))
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


@dataclass(frozen=True)
class SyncPlan:
    """What :func:`sync` would copy (from :func:`plan_sync`, which lists but copies nothing).

    Attributes:
        source, destination: the two locations.
        objects, bytes: objects below the source that the globs select, and their size.
        excluded: objects the globs leave out.
        reserved: objects never copied, having a name a download keeps for its own state
            (e.g. the ``err_report.csv`` of the download that filled the prefix).
        present, present_bytes: selected objects already at the destination with their size.
    """

    source: str
    destination: str
    objects: int
    bytes: int
    excluded: int
    present: int
    present_bytes: int
    reserved: int = 0

    @property
    def to_copy(self) -> int:
        """Objects a sync would transfer."""
        return self.objects - self.present

    def __str__(self) -> str:
        left = self.bytes - self.present_bytes
        return (
            f"{self.source} -> {self.destination}: {self.objects:,} objects "
            f"({human_bytes(self.bytes)}) selected, {self.excluded:,} excluded; "
            f"{self.present:,} already there; {self.to_copy:,} to copy ({human_bytes(left)})"
            + (
                f"; {self.reserved:,} not copied (err_report.csv or another name mlhub keeps "
                "for its own state)"
                if self.reserved
                else ""
            )
        )


def plan_sync(
    src: str | os.PathLike[str],
    dest: str | os.PathLike[str] = ".",
    *,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    storage_options: StorageOptions | None = None,
    output_storage_options: StorageOptions | None = None,
    network: NetworkSettings | None = None,
) -> SyncPlan:
    """List the source (and the destination) and say what :func:`sync` would copy."""
    cfg = _config(
        src, dest, include=include, exclude=exclude, if_exists="resume", workers=None,
        storage_options=storage_options, output_storage_options=output_storage_options,
        network=network, etag_checksums=True,
    )  # fmt: skip
    there: dict[str, int] | None = None
    if cfg.destination is not None:
        cfg.destination.network = cfg.network
        there = cfg.destination.scan(cfg.dataset_asset_dir)
    objects = nbytes = excluded = present = present_bytes = reserved = 0
    base = cfg.asset_dir
    for rel, info in source_objects(cfg):
        if not selected(rel, cfg.include, cfg.exclude):
            excluded += 1
            continue
        if is_own_file(rel):
            reserved += 1
            continue
        objects += 1
        nbytes += info.size
        path = safe_relpath(rel)
        if there is not None:
            size: Any = there.get(path)
        else:
            try:
                size = (base / path).stat().st_size
            except OSError:
                size = None
        if size == info.size:
            present += 1
            present_bytes += info.size
    shown = cfg.destination.url if cfg.destination is not None else os.fspath(base)
    return SyncPlan(cfg.src, shown, objects, nbytes, excluded, present, present_bytes, reserved)
