"""The entry points: :func:`download_dataset`, :func:`plan_download`, :func:`download_archive`.

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

A :class:`~.job.DownloadJob` runs in a background thread with its own asyncio event loop and can
be paused, resumed and cancelled. It publishes small frozen-dataclass events (see
:data:`~.events.Event`) to subscribers **from that thread**: callbacks must be cheap and must not
block (hand the event to your UI's own loop if needed). :class:`~.events.ProgressUpdated` is
throttled to about 8 per second, so rendering it directly is fine.

The API key is only ever sent to the API's origin. Asset and catalogue storage never see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ..config.session import Session, get_session
from ..exceptions import (
    DownloadError,
    EntityDoesNotExist,
    MLHubException,
)
from ..net.objects import StorageOptions
from ..net.redact import redact_text, redact_url
from ..types import BBoxLike, CollectionFilter, DatetimeLike, IntersectsLike
from . import transfer
from .destination import ObjectDestination
from .events import Callback, DownloadPlan, DownloadSummary
from .job import DownloadJob
from .manifest import Manifest
from .pipeline import (
    Pipeline,
    ignore_event,
    make_config,
    output_folder_error,
    output_location,
    validate_common,
)
from .progress import console_progress

if TYPE_CHECKING:
    from ..sources import SourceLike
    from .distributed import ClusterLike

log = logging.getLogger(__name__)


def download_dataset(
    dataset_id: str,
    output_dir: str | os.PathLike[str] = ".",
    *,
    asset_output_dir: str | os.PathLike[str] | None = None,
    catalog_only: bool = False,
    if_exists: str = "resume",
    bbox: BBoxLike | None = None,
    intersects: IntersectsLike | None = None,
    datetime: DatetimeLike = None,
    collection_filter: CollectionFilter | None = None,
    session: Session | None = None,
    api_key: str | None = None,
    profile: str | None = None,
    root_url: str | None = None,
    workers: int | None = None,
    progress: bool | Callback = True,
    background: bool = False,
    source: SourceLike | None = None,
    storage_options: StorageOptions | None = None,
    output_storage_options: StorageOptions | None = None,
    cluster: ClusterLike | None = None,
) -> DownloadSummary | DownloadJob:
    """Download a dataset's STAC catalogue and (filtered) assets; see the module docstring.

    Arguments are validated before any request. ``progress``: ``True`` for tqdm bars on
    stderr (a plain line every few seconds when stderr is not a terminal, e.g. a log file),
    ``False`` for none, or a callable receiving every event. ``workers``: concurrent
    transfers (default :data:`~mlhub_widgets.download.DEFAULT_WORKERS`, 64). With
    ``background=True`` the running :class:`DownloadJob` is returned at once; otherwise the
    call blocks (Ctrl-C cancels the job, leaving it resumable) and returns a
    :class:`DownloadSummary`.

    ``source`` (a :class:`~mlhub_widgets.sources.Source`, or a URL/path for
    :func:`~mlhub_widgets.open_source`) downloads from a static STAC catalogue or a STAC API
    instead: the index is built from the source's stream of collections and items (a static
    catalogue is walked in parallel; a STAC API filters bbox/intersects/datetime on the
    server) and the catalogue is written to ``{output_dir}/{dataset_id}/`` in the same layout
    (no ``.tar.gz``). Filters, resume, retries, ``err_report.csv`` and progress are the same.

    Object storage: asset hrefs at ``s3://``, ``gs://`` and ``az://`` are fetched through
    obstore with ``storage_options`` (added to the source's own; credentials, ``endpoint``,
    ``skip_signature`` for public buckets...; each cloud's environment variables apply too).
    ``output_dir`` may be an object-store prefix (``s3://bucket/prefix``): the same layout is
    written there (small files in one ``PUT``, large ones as multipart uploads, nothing
    half-written ever visible), with ``output_storage_options``; the asset index and the
    ``.part`` files of large objects stay in a local state folder keyed by the destination
    (see :mod:`mlhub_widgets.download.destination`), so a rerun resumes and uploads nothing
    that is already there.

    ``cluster`` runs the transfers on a Dask cluster (the ``[distributed]`` extra): a
    scheduler address (``"tcp://host:8786"``), ``"local:N"`` (a ``LocalCluster`` of N worker
    processes for this download), a ``distributed.Client`` or a Dask cluster object
    (dask-jobqueue, dask-kubernetes, Coiled). The catalogue and the index stay here; the
    selected assets are cut into partitions sized by bytes, each downloaded by one Dask task
    with the same engine (``workers`` transfers at once per task) into ``asset_output_dir``,
    which every worker must see at the same path. The job is the same :class:`DownloadJob`
    (it also publishes :class:`~.events.ClusterConnected` with the Dask dashboard's link);
    see ``docs/scale-out.md``.

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
        ClusterError: (a ``DownloadError``) the Dask scheduler cannot be reached or went
            away, or a partition failed on a worker; a re-run resumes.
        MissingDependencyError: ``cluster`` without Dask distributed installed (an
            ImportError naming the ``[distributed]`` extra).
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
        storage_options=storage_options,
        output_storage_options=output_storage_options,
        cluster=cluster,
    )
    if progress is True:
        job.subscribe(console_progress(dataset_id))
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
    bbox: BBoxLike | None = None,
    intersects: IntersectsLike | None = None,
    datetime: DatetimeLike = None,
    collection_filter: CollectionFilter | None = None,
    session: Session | None = None,
    api_key: str | None = None,
    profile: str | None = None,
    root_url: str | None = None,
    source: SourceLike | None = None,
    storage_options: StorageOptions | None = None,
    output_storage_options: StorageOptions | None = None,
) -> DownloadPlan:
    """What :func:`download_dataset` with these filters would fetch, without asset requests.

    Fetches (or reuses) the catalogue and the asset index exactly as a download does, so a
    following download starts at once.

    Raises:
        ValueError / TypeError: bad filters (unknown collections or keys list the valid ones).
    """
    cfg = make_config(
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
        storage_options=storage_options,
        output_storage_options=output_storage_options,
    )
    pipeline = Pipeline(cfg, ignore_event, threading.Event())
    try:
        with pipeline.locked():
            pipeline.fetch_catalog()
            with Manifest(cfg.manifest_path) as db:
                pipeline.prepare_index(db, inline=True)
                return pipeline.plan(db)
    except (OSError, sqlite3.Error) as exc:
        error = output_folder_error(exc, cfg)
        if error is None:
            raise
        raise error from exc
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
    output_storage_options: StorageOptions | None = None,
) -> Path | str:
    """Download a collection archive (``/archive/{id}`` → storage) resumably and verified.

    The file is saved as ``{output_dir or cwd}/{last URL segment}``. Large files are fetched
    with parallel ranges; ``Content-MD5`` is checked when the storage sends it. An
    object-store ``output_dir`` (``s3://bucket/prefix``) gets the archive as a multipart
    upload, after it was fetched and verified in the destination's local state folder (the
    local copy is removed once the upload is checked); the object URL is returned. An object
    already there with the archive's size is not uploaded again.

    Raises:
        EntityDoesNotExist: no such archive (it may not exist, or may still be generating).
        ValueError: ``output_dir`` is a file, an unsupported URL, or ``if_exists`` is unknown.
    """
    validate_common(if_exists, None)
    destination, out = output_location(output_dir or Path.cwd(), output_storage_options, "-o")
    if out.exists() and not out.is_dir():
        raise ValueError(f"output_dir {out} exists and is not a folder")
    sess = session or get_session(api_key=api_key, profile=profile, root_url=root_url)
    if destination is not None:
        destination.network = sess.network
    return _download_archive(collection_id, out, if_exists, sess, progress, destination)


def _missing_archive_message(collection_id: str, sess: Session) -> str:
    """Why ``archive/{id}`` answered 404, as ``archive/{id}/info`` tells it."""
    try:
        info = sess.get_json(f"archive/{collection_id}/info")
    except MLHubException:
        return f'collection "{collection_id}" has no archive on this server'
    size = info.get("size") if isinstance(info, Mapping) else None
    listed = f" ({size:,} bytes)" if isinstance(size, int) else ""
    return (
        f'the server lists an archive of collection "{collection_id}"{listed} '
        "but has no file for it (404)"
    )


def _download_archive(
    collection_id: str,
    out: Path,
    if_exists: str,
    sess: Session,
    progress: bool,
    destination: ObjectDestination | None = None,
) -> Path | str:
    try:
        url = sess.locate(f"archive/{collection_id}")
    except EntityDoesNotExist as exc:
        raise EntityDoesNotExist(
            exc.status_code,
            exc.method,
            exc.url,
            exc.detail,
            message=_missing_archive_message(collection_id, sess),
        ) from None
    path = urlsplit(url).path
    name = unquote(path.rsplit("/", 1)[-1])
    if not name or name.startswith(".") or any(c in name for c in "/\\\0"):
        name = f"{collection_id}.tar.gz"  # the URL names a folder, or no safe file name
    out.mkdir(parents=True, exist_ok=True)
    dest = out / name
    if if_exists == "skip" and dest.exists() and destination is None:
        return dest
    size: int | None = None
    with contextlib.suppress(MLHubException):
        info = sess.get_json(f"archive/{collection_id}/info")
        if isinstance(info, Mapping) and isinstance(info.get("size"), int):
            size = int(info["size"])
    if destination is not None and if_exists != "overwrite":
        there = destination.scan(out).get(name)
        if there is not None and (if_exists == "skip" or size in (None, there)):
            return destination.object_url(dest)
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
            credentials=sess.credentials,
            network=sess.network,
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
    if destination is not None:
        local_size = dest.stat().st_size
        asyncio.run(destination.upload_file(os.fspath(dest), os.fspath(dest), local_size))
        dest.unlink()
        return destination.object_url(dest)
    return dest
