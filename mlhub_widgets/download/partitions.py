"""Partitions of a cluster download, and the task that downloads one on a Dask worker.

A download on a Dask cluster (:mod:`.distributed`) cuts the selected rows of the asset index
into :class:`Partition` objects sized by bytes (:func:`partition_size`): each one is a single
Dask task, :func:`run_partition`, which runs the same :class:`~.transfer.TransferEngine` as a
download on one machine (``.part`` files, verification, rename, resume with ``Range`` +
``If-Range``) and returns one :class:`PartitionResult` with every asset's outcome: one message
per partition, never one per asset. While it runs, the task sends a small
:data:`Heartbeat` (byte and file counts) every :data:`HEARTBEAT_INTERVAL` seconds through a
Dask ``Queue``, so that the client's progress moves between results; it follows the job's
pause flag (a Dask ``Event``) and stops at once when its Dask task is cancelled (the client
cancelled the job, or disconnected).

Why a retry is safe: a file gets its final name only once verified, so a worker killed
mid-partition leaves complete files and ``.part`` files. The partition's next attempt (on
another worker) finds the complete files and skips them without a request, resumes the
``.part`` files with ``Range`` + ``If-Range`` and fetches the rest; the client records each
asset once, from the attempt that completes.

Everything a task gets is plain data or a picklable function: :class:`EngineSettings` holds
the credentials (only those for origins the partition's assets are on), the network settings,
the source's signing function, the options of the object stores assets are read from, and an
object-store output (:class:`ObjectOutput`).

An object-store output (``output_dir="s3://bucket/prefix"``): each task builds its own
:class:`~.destination.ObjectDestination` on its worker and writes the objects itself (small
ones in one ``PUT``, large ones staged in the worker's own state folder, then uploaded: an
object only ever appears whole). Before its transfers, a task lists the objects below its
partition's folder (one request per 1,000 objects), so an attempt after a lost worker skips
what the lost attempt had uploaded, without a request to the source.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from ..net.http import Credentials, origin_of
from ..net.settings import NetworkSettings
from . import transfer

if TYPE_CHECKING:
    from .destination import ObjectDestination

log = logging.getLogger(__name__)

#: Partitions per task slot, at most: a few balance the load when files differ in size and
#: bound what a lost worker was doing; fewer when that would make partitions short (below).
PARTITIONS_PER_SLOT: Final = 4
#: Smallest byte target: a task costs a few milliseconds of scheduling and a fresh pool of
#: connections.
MIN_PARTITION_BYTES: Final = 4 << 20
#: Largest partition, whatever its number of files.
MAX_PARTITION_BYTES: Final = 2 << 30
#: A partition holds at least this many files per transfer its task runs at once (``workers``),
#: when there are enough for every slot: at its end a task runs fewer transfers than it may
#: (about ``workers / 2`` files' worth of time), which is a small share only of a long list.
FILES_PER_TRANSFER: Final = 16
#: Most assets in one partition, whatever their size: bounds the task's message (URLs and
#: paths, ~80 bytes an asset), its result and the client's memory per partition in flight.
MAX_PARTITION_ASSETS: Final = 4000
#: Bytes counted for an asset without ``file:size`` when partitions are cut.
UNKNOWN_ASSET_BYTES: Final = 1 << 20
#: Seconds between two heartbeats of a running partition (and between two looks at the pause
#: flag and at the task's own state).
HEARTBEAT_INTERVAL: Final = 0.5

#: ``[partition number, attempt, bytes, transferred, skipped, failed, retries]``: counts so
#: far of one attempt at one partition (a list: Dask queues carry msgpack data).
Heartbeat = list[Any]


@dataclass(frozen=True, slots=True)
class PartitionSize:
    """When a partition is full: ``bytes`` reached with at least ``min_assets`` files, or
    :data:`MAX_PARTITION_ASSETS` files, or :data:`MAX_PARTITION_BYTES`."""

    bytes: int
    min_assets: int


def partition_size(total_bytes: int, total_assets: int, slots: int, workers: int) -> PartitionSize:
    """How to cut ``total_assets`` files of ``total_bytes`` for ``slots`` tasks at once, each
    running ``workers`` transfers.

    The number of partitions is a multiple of the slots (each slot gets as many), up to
    :data:`PARTITIONS_PER_SLOT` per slot while each keeps :data:`FILES_PER_TRANSFER` files per
    transfer; the byte target is the total divided by it (within :data:`MIN_PARTITION_BYTES`
    and :data:`MAX_PARTITION_BYTES`), and a partition is not cut before its share of files.
    """
    slots = max(1, slots)
    long_enough = FILES_PER_TRANSFER * max(1, workers)
    per_slot = max(1, min(PARTITIONS_PER_SLOT, total_assets // (slots * long_enough)))
    count = slots * per_slot
    nbytes = max(MIN_PARTITION_BYTES, min(MAX_PARTITION_BYTES, total_bytes // count))
    min_assets = min(long_enough, max(1, total_assets // count), MAX_PARTITION_ASSETS)
    return PartitionSize(nbytes, min_assets)


@dataclass(frozen=True, slots=True)
class ObjectOutput:
    """An object-store output as a task rebuilds it on its worker.

    Attributes:
        url: the destination prefix (``s3://bucket/prefix``).
        storage_options: its store's options (credentials, endpoint...; they travel with each
            task: on a network you do not trust, run Dask with TLS).
        folder: the assets' folder below the destination (``"dataset"`` or ``""``).
    """

    url: str
    storage_options: dict[str, Any]
    folder: str

    def open(self, network: NetworkSettings | None) -> tuple[ObjectDestination, str]:
        """The destination on this worker (its own local state folder, for the ``.part`` of
        large objects) and the root the partition's paths are below (ending with a
        separator)."""
        from .destination import ObjectDestination

        dest = ObjectDestination(self.url, self.storage_options, network)
        root = dest.state_dir / self.folder if self.folder else dest.state_dir
        return dest, os.path.join(os.fspath(root), "")


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """How each task builds its :class:`~.transfer.TransferEngine` (plain data, picklable).

    Attributes:
        workers: transfers in flight in one task.
        if_exists: ``resume``, ``skip`` or ``overwrite``.
        credentials: what may be sent to which origin (see :meth:`for_partition`).
        network: proxy, TLS, timeouts and retries (a proxy from the environment and a CA
            bundle path are read on the worker).
        sign: a source's signing function, or None.
        storage_options: options of the object stores assets are read from (``s3://``...).
        output: an object-store output, or None (the assets' folder, which every worker sees).
    """

    workers: int
    if_exists: str
    credentials: tuple[Credentials, ...] = ()
    network: NetworkSettings | None = None
    sign: Callable[[str], str] | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)
    output: ObjectOutput | None = None

    def for_partition(self, part: Partition) -> EngineSettings:
        """These settings with only the credentials of origins the partition fetches from:
        an API key travels to a worker only when assets are served by the API's origin."""
        if not self.credentials:
            return self
        origins = part.origins()
        kept = tuple(c for c in self.credentials if c.origin in origins)
        if len(kept) == len(self.credentials):
            return self
        return replace(self, credentials=kept)


@dataclass(frozen=True, slots=True)
class Partition:
    """Assets for one task: their index ids, URLs, paths below ``root``, sizes, checksums.

    URLs are stored as ``url_prefix`` + tail (the prefix they share), to keep the task's
    message small.
    """

    job: str
    number: int
    root: str
    url_prefix: str
    ids: tuple[int, ...]
    url_tails: tuple[str, ...]
    paths: tuple[str, ...]
    sizes: tuple[int | None, ...]
    checksums: tuple[str | None, ...]
    nbytes: int = 0

    def __len__(self) -> int:
        return len(self.ids)

    def urls(self) -> list[str]:
        """Every asset's URL."""
        prefix = self.url_prefix
        return [prefix + tail for tail in self.url_tails]

    def origins(self) -> set[tuple[str, str, int]]:
        """The origins (scheme, host, port) the assets are fetched from."""
        prefix = self.url_prefix
        scheme_end = prefix.find("://")
        if scheme_end > 0 and prefix.find("/", scheme_end + 3) > 0:
            return {origin_of(prefix)}  # one origin for all
        return {origin_of(url) for url in self.urls()}

    def specs(
        self, root: str | None = None, there: ObjectDestination | None = None
    ) -> list[transfer.TransferSpec]:
        """The engine's specs, tagged with each asset's position in the partition; below
        ``root`` (default: :attr:`root`); with an object-store output ``there``, an asset is
        present when its object is (as ``there`` listed it) or its local ``.part`` is."""
        root = self.root if root is None else root
        present = present_positions(root, self.paths)
        if there is not None:
            present |= {i for i, p in enumerate(self.paths) if there.size_of(root + p) is not None}
        return [
            transfer.TransferSpec(
                url=url,
                dest=root + path,
                size=size,
                checksum=checksum,
                tag=i,
                absent=i not in present,
            )
            for i, (url, path, size, checksum) in enumerate(
                zip(self.urls(), self.paths, self.sizes, self.checksums, strict=True)
            )
        ]

    def rest(self, positions: Iterable[int], number: int) -> Partition:
        """A partition of the assets at ``positions`` (what is left of this one)."""
        keep = sorted(positions)
        return Partition(
            self.job,
            number,
            self.root,
            self.url_prefix,
            tuple(self.ids[i] for i in keep),
            tuple(self.url_tails[i] for i in keep),
            tuple(self.paths[i] for i in keep),
            tuple(self.sizes[i] for i in keep),
            tuple(self.checksums[i] for i in keep),
            sum(self.sizes[i] or UNKNOWN_ASSET_BYTES for i in keep),
        )


def common_folder(root: str, paths: Sequence[str]) -> Path:
    """The deepest folder below ``root`` holding every one of ``paths``."""
    folders = [p.rpartition("/")[0] for p in paths]
    shared = os.path.commonpath(folders) if all(folders) else ""
    return Path(root, shared) if shared else Path(root)


def present_positions(root: str, paths: Sequence[str]) -> set[int]:
    """Positions of the paths whose file (or ``.part``) exists below ``root``; a missing folder
    is looked at once, not once per file (on a first download: one call per item)."""
    out: set[int] = set()
    folders: dict[str, bool] = {}
    sep = os.sep
    for i, rel in enumerate(paths):
        path = root + (rel if sep == "/" else rel.replace("/", sep))
        folder = path.rpartition(sep)[0]
        there = folders.get(folder)
        if there is None:
            there = folders[folder] = os.path.isdir(folder)
        if there and (os.path.lexists(path) or os.path.lexists(path + ".part")):
            out.add(i)
    return out


@dataclass
class PartitionBuilder:
    """Collects specs of one job into partitions (see :class:`PartitionSize`)."""

    job: str
    root: str
    size: PartitionSize
    number: int = 0
    started: float = 0.0
    _ids: list[int] = field(default_factory=list)
    _urls: list[str] = field(default_factory=list)
    _paths: list[str] = field(default_factory=list)
    _sizes: list[int | None] = field(default_factory=list)
    _checksums: list[str | None] = field(default_factory=list)
    _bytes: int = 0

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def nbytes(self) -> int:
        """Bytes collected so far."""
        return self._bytes

    def add(
        self, asset_id: int, url: str, path: str, size: int | None, checksum: str | None
    ) -> None:
        """Add one asset (``path`` relative to ``root``)."""
        if not self._ids:
            self.started = time.monotonic()
        self._ids.append(asset_id)
        self._urls.append(url)
        self._paths.append(path)
        self._sizes.append(size)
        self._checksums.append(checksum)
        self._bytes += size if size is not None else UNKNOWN_ASSET_BYTES

    def full(self) -> bool:
        """Whether the partition is as large as it should be (see :class:`PartitionSize`)."""
        n = len(self._ids)
        if n >= MAX_PARTITION_ASSETS or self._bytes >= MAX_PARTITION_BYTES:
            return True
        # the nearest file boundary to the target (half a file short counts), so that the
        # total divided by the target gives as many partitions, without a small remainder
        near = self._bytes + self._bytes // (2 * n) if n else 0
        return near >= self.size.bytes and n >= self.size.min_assets

    def take(self) -> Partition:
        """The partition collected so far (then start a new one)."""
        urls = self._urls
        # character by character, as wanted: URLs share their origin and most of their path
        prefix = os.path.commonprefix(urls) if len(urls) > 1 else ""  # noqa: RUF071
        cut = len(prefix)
        self.number += 1
        part = Partition(
            self.job,
            self.number,
            self.root,
            prefix,
            tuple(self._ids),
            tuple(u[cut:] for u in urls) if cut else tuple(urls),
            tuple(self._paths),
            tuple(self._sizes),
            tuple(self._checksums),
            self._bytes,
        )
        self._ids, self._urls, self._paths, self._sizes, self._checksums = [], [], [], [], []
        self._bytes = 0
        return part


class AssetResult(NamedTuple):
    """One asset's outcome as a task returns it (its position in the partition)."""

    position: int
    ok: bool
    size: int
    status: int | None
    etag: str | None
    last_modified: str | None
    error: str | None
    permanent: bool
    attempts: int
    retries: int
    resumed_from: int
    disk_full: bool


@dataclass(frozen=True, slots=True)
class PartitionResult:
    """What one attempt at a partition did: the outcome of each asset it got to.

    ``complete``: every asset has an outcome (False when the task stopped early: a full disk,
    a cancelled task).
    """

    number: int
    attempt: str
    worker: str
    outcomes: tuple[AssetResult, ...]
    complete: bool
    seconds: float


def job_names(job: str) -> tuple[str, str]:
    """The Dask ``Event`` (pause flag) and ``Queue`` (heartbeats) names of a job."""
    return f"mlhub-pause-{job}", f"mlhub-progress-{job}"


class _Counts:
    """What an attempt has done so far (written by the engine's loop, read by the monitor)."""

    __slots__ = ("bytes", "failed", "retries", "skipped", "transferred")

    def __init__(self) -> None:
        self.bytes = 0
        self.transferred = 0
        self.skipped = 0
        self.failed = 0
        self.retries = 0

    def values(self) -> tuple[int, int, int, int, int]:
        return (self.bytes, self.transferred, self.skipped, self.failed, self.retries)


def run_partition(part: Partition, settings: EngineSettings) -> PartitionResult:
    """The Dask task: download one partition with the transfer engine; see the module
    docstring. Runs on a worker (it needs ``distributed``)."""
    dask: Any = importlib.import_module("distributed")  # untyped: used as Any

    started = time.monotonic()
    worker = dask.get_worker()
    key = dask.worker.thread_state.key
    client = dask.get_client()
    pause_name, queue_name = job_names(part.job)
    paused = dask.Event(pause_name, client=client)
    heartbeats = dask.Queue(queue_name, client=client)
    attempt = uuid.uuid4().hex[:12]
    control = transfer.TransferControl()
    counts = _Counts()

    def still_wanted() -> bool:
        """The task was not cancelled (by the client, or because it went away) and the
        worker is not closing (e.g. it lost its scheduler)."""
        if worker.status.name not in ("running", "paused"):  # paused: for lack of memory
            return False
        ts = worker.state.tasks.get(key)
        return ts is not None and ts.state in ("executing", "long-running")

    def follow_controls() -> None:
        if not still_wanted():
            control.cancel()  # the client cancelled the job, or went away
        elif paused.is_set() != control.paused:
            (control.pause if paused.is_set() else control.resume)()

    follow_controls()
    stop = threading.Event()

    def monitor() -> None:
        sent: tuple[int, ...] = ()
        while not stop.wait(HEARTBEAT_INTERVAL):
            try:
                follow_controls()
                now = counts.values()
                if now != sent:
                    heartbeats.put([part.number, attempt, *now])
                    sent = now
            except Exception as exc:  # the scheduler cannot be reached: this work is orphaned
                log.warning("partition %d stops: %s", part.number, exc)
                control.cancel()
                return

    watcher = threading.Thread(target=monitor, name=f"mlhub-partition-{part.number}", daemon=True)
    outcomes: list[AssetResult] = []
    root, there = part.root, None
    if settings.output is not None:
        there, root = settings.output.open(settings.network)
        if settings.if_exists != "overwrite":  # what an earlier attempt uploaded
            there.scan(common_folder(root, part.paths))
    engine = transfer.TransferEngine(
        workers=settings.workers,
        if_exists=settings.if_exists,
        credentials=settings.credentials,
        network=settings.network,
        sign=settings.sign,
        storage_options=settings.storage_options,
        destination=there,
    )

    def on_outcome(out: transfer.TransferOutcome) -> None:
        outcomes.append(
            AssetResult(
                int(out.spec.tag), out.ok, int(out.size or 0), out.status, out.etag,
                out.last_modified, out.error, out.permanent, int(out.attempts or 0),
                int(out.retries or 0), int(out.resumed_from or 0), out.disk_full,
            )
        )  # fmt: skip
        if out.ok:
            if out.attempts:
                counts.transferred += 1
            else:
                counts.skipped += 1
        elif out.disk_full:
            control.cancel()  # every other file on that disk would fail the same way
        else:
            counts.failed += 1

    def on_bytes(n: int) -> None:
        counts.bytes += n

    def on_retry(_spec: transfer.TransferSpec, _reason: str, _delay: float) -> None:
        counts.retries += 1

    watcher.start()
    try:
        asyncio.run(
            engine.run(
                part.specs(root, there),
                on_outcome=on_outcome,
                on_bytes=on_bytes,
                on_retry=on_retry,
                control=control,
            )
        )
    finally:
        stop.set()
        watcher.join()
    return PartitionResult(
        part.number,
        attempt,
        str(worker.address),
        tuple(outcomes),
        len(outcomes) == len(part),
        time.monotonic() - started,
    )
