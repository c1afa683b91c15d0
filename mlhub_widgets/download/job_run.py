"""The work of a download job: its counters, its events and the transfer phase.

:class:`JobRun` is the base of :class:`~mlhub_widgets.download.job.DownloadJob`, which adds the
thread and the controls (start, pause, resume, cancel, wait). The transfer phase runs in the
job's event loop: :meth:`JobRun._produce` reads selected rows from the asset index (while it is
still being built, when it streams) and hands them to the transfer engine as
:class:`~.transfer.TransferSpec`; every outcome updates the counters, is published as an event
and is written back to the index by the :class:`~.outcome_writer.OutcomeWriter`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import os
import re
import sqlite3
import threading
import time
import types
import warnings
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from ..exceptions import MLHubWarning
from ..net.http import Credentials
from ..net.redact import redact_text, redact_url
from ..net.settings import NetworkSettings
from . import transfer
from .catalog_archive import index_path_problem
from .disk_check import check_done_files
from .events import (
    AssetFailed,
    AssetFinished,
    AssetRetried,
    AssetStarted,
    Callback,
    CollectionProgress,
    DownloadSummary,
    IndexBuilt,
    JobState,
    Phase,
    ProgressSnapshot,
    ProgressUpdated,
)
from .manifest import (
    DONE,
    FAILED,
    AssetRow,
    Manifest,
    Outcome,
)
from .outcome_writer import OutcomeWriter
from .pipeline import DownloadConfig, Pipeline
from .report import write_err_report

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.125
#: Seconds of history the rate (and so the ETA) is averaged over: long enough that one slow or
#: fast file does not make them jump, short enough to follow a real change of speed.
RATE_WINDOW = 5.0
_FETCH_ROWS = 512
#: A download that completed at least this many assets ends with the re-run's check of files
#: (:meth:`JobRun._stamp_after_download`); below it, the first re-run's ``stat`` of every
#: file costs little (0.4 CPU-s at 50,000) and the check would only lengthen the download
#: (0.08 CPU-s at 10,000 assets: 2 % of that download).
STAMP_AFTER_DOWNLOAD = 50_000


class JobRun:
    """Counters, events and the transfer phase of one download (see the module docstring).

    Counters are written by the job's thread only; :meth:`_snapshot` reads them from any thread.
    """

    def __init__(self, cfg: DownloadConfig) -> None:
        self._cfg = cfg
        self._state: JobState = "pending"
        self._phase: Phase = "catalog"
        self._lock = threading.Lock()
        self._subscribers: list[Callback] = []
        self._subscribers_snapshot: tuple[Callback, ...] = ()
        self._cancel = threading.Event()
        self._control = transfer.TransferControl()
        self._started_at: float | None = None
        self._ended_at: float | None = None
        self._local_catalog: Path | None = None
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
        self._bytes_estimate: int | None = None
        self._rate = 0.0
        self._rate_samples: deque[tuple[float, int]] = deque()
        self._per_total: Counter[str] = Counter()
        self._per_done: Counter[str] = Counter()
        self._per_skipped: Counter[str] = Counter()
        self._per_failed: Counter[str] = Counter()
        self._collisions = 0
        self._last_progress = 0.0

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
        expected = bytes_total if bytes_total is not None else self._bytes_estimate
        eta: float | None = None
        if self._phase == "done":
            eta = 0.0
        elif self._rate > 0 and expected is not None and expected >= self._bytes_done:
            eta = (expected - self._bytes_done) / self._rate
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
            bytes_estimate=None if bytes_total is not None else self._bytes_estimate,
        )

    def _tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_INTERVAL:
            return
        self._last_progress = now
        self._update_rate(now)
        self._emit(ProgressUpdated(self._snapshot()))

    def _update_rate(self, now: float) -> None:
        """The mean rate over the last :data:`RATE_WINDOW` seconds (0 while paused)."""
        samples = self._rate_samples
        if self._state == "paused":
            samples.clear()
            self._rate = 0.0
            return
        samples.append((now, self._bytes_downloaded))
        while len(samples) > 2 and now - samples[1][0] >= RATE_WINDOW:
            samples.popleft()
        t0, b0 = samples[0]
        if now - t0 >= 0.5:
            self._rate = (self._bytes_downloaded - b0) / (now - t0)

    def _settle_done(self, db: Manifest) -> bool:
        """Count assets recorded as done as skipped, without any request; returns whether
        every selected asset is done (nothing left to transfer).

        ``resume`` checks the files on disk (:mod:`.disk_check`: a missing or changed file
        goes back to pending); ``skip`` trusts the index. The counts come from the
        index's totals, not from a scan of its rows.
        """
        if self._cfg.if_exists == "resume":
            dest = self._cfg.destination
            if dest is None:
                changed = check_done_files(db, self._cfg.dataset_asset_dir).changed
            else:  # an object store: its listing, made before the transfers, is the check
                rows = db.done_rows(0, db.max_id() + 1)
                changed = [i for i, rel, size in rows if dest.sizes.get(rel) != size]
                db.mark_pending(changed)
            if changed:
                n = len(changed)
                log.info("%d assets recorded as done are missing or changed on disk", n)
        counts = db.counts()
        self._skipped = counts["done"]
        self._bytes_done = counts["done_bytes"]
        for cid, info in db.per_collection().items():
            self._per_skipped[cid] = info["done"]
        return counts["done"] == counts["selected"]

    def _stamp_after_download(self, db: Manifest) -> None:
        """After a download that completed every selected asset on local disk: the re-run's
        check of files (:func:`.disk_check.check_done_files`) once more, so that the index
        keeps the stamps of the folders found whole and the next re-run trusts them instead
        of looking at every file (at a million assets, a ``stat`` of every file was most of
        that re-run). Folders written in the last :data:`.disk_check.STAMP_MIN_AGE_NS` get
        no stamp: the next re-run looks at their files. A file found missing (deleted while
        the download ran) goes back to pending, as a re-run would find it, with an
        :class:`.MLHubWarning`."""
        if self._cfg.destination is not None or self._cfg.if_exists == "skip":
            return  # an object store is checked by its listing; ``skip`` trusts the index
        counts = db.counts()
        if counts["done"] != counts["selected"] or counts["done"] < STAMP_AFTER_DOWNLOAD:
            return
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            changed = check_done_files(db, self._cfg.dataset_asset_dir).changed
        except (OSError, sqlite3.Error) as exc:  # a speed-up only: the download stands
            log.info("folders not stamped after the download (%s): the next run checks every "
                     "file", exc)  # fmt: skip
            return
        log.debug("check of %d files after the download: %.2f s, %.2f CPU-s", counts["done"],
                  time.perf_counter() - wall, time.process_time() - cpu)  # fmt: skip
        if changed:
            warnings.warn(
                f"{len(changed)} files written by this download in {self._cfg.dataset_asset_dir} "
                "were deleted or changed before it ended; they are marked pending: run the "
                "download again to fetch them",
                MLHubWarning,
                stacklevel=2,
            )

    def _index_done(self, db: Manifest, pipeline: Pipeline, started: float) -> None:
        counts = db.counts()
        self._total = counts["selected"]
        self._bytes_total_known = counts["known_bytes"]
        self._sizes_known = counts["sized"] == counts["selected"]
        self._bytes_estimate = pipeline.estimated_bytes(counts)
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
    async def _transfer(self, db: Manifest, pipeline: Pipeline, started: float) -> bool:
        cfg = self._cfg
        base = cfg.dataset_asset_dir
        writer = OutcomeWriter(cfg.manifest_path)
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

        def fail_now(row: AssetRow, reason: str) -> None:
            if writer.error is not None:
                raise writer.error
            self._record_failure(row, reason, None, 0, base / row.path, writer)

        credentials, network, sign = self._engine_inputs(pipeline)
        if cfg.destination is not None:
            cfg.destination.network = network
        engine = transfer.TransferEngine(
            workers=cfg.workers,
            if_exists=cfg.if_exists,
            credentials=credentials,
            network=network,
            sign=sign,
            storage_options=cfg.storage_options,
            destination=cfg.destination,
        )
        loop = asyncio.get_running_loop()
        run = loop.create_task(
            engine.run(
                self._produce(db, pipeline, base, rows_by_tag, fail_now),
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

    def _engine_inputs(
        self, pipeline: Pipeline
    ) -> tuple[list[Credentials], NetworkSettings, Callable[[str], str] | None]:
        """What may be sent where, the network settings and the href signer of the transfers:
        the source's, or the MLHub session's."""
        source = self._cfg.source
        if source is not None:
            return source.credentials(), source.network, source.signer()
        session = pipeline.get_session()
        return [session.credentials], session.network, None

    async def _ticker(self, writer: OutcomeWriter, run: asyncio.Task[None]) -> None:
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
        pipeline: Pipeline,
        base: Path,
        rows_by_tag: dict[int, AssetRow],
        fail_now: Callable[[AssetRow, str], None],
    ) -> AsyncIterator[transfer.TransferSpec]:
        cfg = self._cfg
        builder = pipeline.builder
        last_seq = pipeline.start_seq
        if builder is not None and cfg.flt.collection_filter is not None:
            while not pipeline.collection_filter_ready() and not builder.done.is_set():
                await asyncio.sleep(0.02)
            if builder.done.is_set() and not pipeline.collection_filter_ready():
                if builder.error is not None:
                    raise builder.error
                pipeline._validate_collection_filter(db)
        stale: list[int] = []
        url_problem = _OriginCache(_origin_problem)
        loop = asyncio.get_running_loop()
        base_prefix = os.path.join(os.fspath(base), "")
        while True:
            if self._cancel.is_set():
                return
            finished_building = builder is None or builder.done.is_set()
            rows = db.rows_after(last_seq, _FETCH_ROWS, pending_only=builder is None)
            present: set[int] = set()
            wrong: set[int] = set()
            if rows and cfg.if_exists != "overwrite":
                # which destinations exist, in one hand-over to a thread: a stat in the event
                # loop can wait for a directory lock held by a slow file create elsewhere
                present = await loop.run_in_executor(None, self._present, base_prefix, rows)
                # a file this index never recorded as downloaded (put there by someone else:
                # a catalogue, another tool) counts only if it matches its checksum (a local file:
                # an object at an object-store destination is taken on its listed size)
                unproven = [r for r in rows if r.id in present and r.state != DONE and r.checksum]
                if unproven:
                    wrong = await loop.run_in_executor(None, _wrong_files, base_prefix, unproven)
            if not rows:
                if finished_building:
                    if builder is not None:
                        # built (its error and counts are set before ``done``): not joined
                        # here, an index process writes the local catalogue after its build
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
                        self._estimate_while_indexing(pipeline, builder)
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
                    if builder is not None:
                        self._estimate_while_indexing(pipeline, builder)
                if row.state == DONE and cfg.if_exists != "overwrite":
                    if cfg.if_exists == "skip" or (
                        row.id in present and self._complete(base_prefix, row)
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
                problem = index_path_problem(row.path) or url_problem(row.url)
                if problem is not None:  # this asset fails alone; the others go on
                    fail_now(row, problem)
                    continue
                rows_by_tag[row.id] = row
                if row.id in wrong:
                    log.warning(
                        "%s is on disk but does not match its file:checksum; downloading it",
                        base_prefix + row.path,
                    )
                yield transfer.TransferSpec(
                    url=row.url,
                    dest=base_prefix + row.path,  # a str: no pathlib in the hot loop
                    size=row.size,
                    checksum=row.checksum,
                    tag=row.id,
                    # absent: no file to take as complete (none, or a wrong one to replace)
                    absent=cfg.if_exists != "overwrite"
                    and (row.id not in present or row.id in wrong),
                )
            if stale:
                db.mark_pending(stale)
                stale.clear()
        if stale:
            db.mark_pending(stale)

    def _estimate_while_indexing(self, pipeline: Pipeline, builder: Any) -> None:
        """While the index grows: the catalogue's size estimate, pro rata of the assets
        selected so far (exact without filters, a guess with them; fixed once it is built)."""
        if self._sizes_known or not builder.assets:
            return
        estimate = pipeline.info.get("estimated_dataset_size")
        if isinstance(estimate, int | float) and not isinstance(estimate, bool):
            self._bytes_estimate = int(estimate * builder.selected / builder.assets)

    def _present(self, prefix: str, rows: list[AssetRow]) -> set[int]:
        """Ids of the rows whose file (or ``.part``) exists: on disk, or at the object-store
        destination as listed before the transfers."""
        dest = self._cfg.destination
        if dest is None:
            return _present(prefix, rows)
        staged = _present(prefix, rows)  # a .part being fetched, to resume
        return staged | {row.id for row in rows if row.path in dest.sizes}

    def _complete(self, prefix: str, row: AssetRow) -> bool:
        dest = self._cfg.destination
        if dest is None:
            return _complete_on_disk(prefix + row.path, row)
        expected = row.size if row.size is not None else row.bytes
        return dest.sizes.get(row.path) == expected

    def _index_done_streaming(self, db: Manifest, pipeline: Pipeline) -> None:
        """The streaming build ended: fix totals from the index."""
        counts = db.counts()
        self._total = counts["selected"]
        self._bytes_total_known = counts["known_bytes"]
        self._sizes_known = counts["sized"] == counts["selected"]
        self._bytes_estimate = pipeline.estimated_bytes(counts)
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
        self, row: AssetRow, out: transfer.TransferOutcome, writer: OutcomeWriter
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
            self._record_failure(
                row, reason, out.status, int(out.attempts or 0), Path(out.spec.dest), writer
            )

    def _record_failure(
        self,
        row: AssetRow,
        reason: str,
        status: int | None,
        attempts: int,
        dest: Path,
        writer: OutcomeWriter,
    ) -> None:
        """Count, record and publish one failed asset."""
        cid = row.collection_id
        self._failed += 1
        self._per_failed[cid] += 1
        writer.add(Outcome(row.id, FAILED, 0, attempts=attempts, status=status, error=reason))
        self._emit(AssetFailed(cid, row.item_id, row.asset_key, row.url, dest, reason, status))

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
            # an object-store output: the self-contained catalogue is the one in the bucket
            # (beside the files); the copy in the state folder points at files not on disk
            local_catalog=None if cfg.destination is not None else self._local_catalog,
            per_collection=types.MappingProxyType(per),
        )


T = TypeVar("T")
_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")


class _OriginCache(Generic[T]):
    """A check of a URL answered once per origin (parsing every URL of a million-asset
    index would cost seconds): ``check(scheme://host[:port]/)``."""

    def __init__(self, check: Callable[[str], T]) -> None:
        self._check = check
        self._seen: dict[str, T] = {}

    def __call__(self, url: str) -> T:
        match = _ORIGIN.match(url)
        if match is None:
            return self._check(url)
        origin = match.group()
        if origin in self._seen:
            return self._seen[origin]
        if len(self._seen) > 256:
            self._seen.clear()
        answer = self._seen[origin] = self._check(origin + "/")
        return answer


def _origin_problem(origin: str) -> str | None:
    """Why an asset URL's origin (``scheme://host[:port]/``) cannot be fetched, if it
    cannot: one bad href (a port out of range, a broken IPv6 address) fails its own asset,
    never the job."""
    try:
        parts = urlsplit(origin)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        return f"invalid URL ({exc})"
    if parts.scheme in ("http", "https") and not parts.hostname:
        return f"invalid URL: no host ({origin[:60]!r})"
    return None  # other schemes: the transfer engine says whether it can fetch them


def _wrong_files(prefix: str, rows: list[AssetRow]) -> set[int]:
    """Ids of the rows whose file on disk does not match its ``file:checksum`` (runs in a
    thread; an unreadable checksum proves nothing and is left to the transfer)."""
    out: set[int] = set()
    for row in rows:
        assert row.checksum is not None
        path = prefix + (row.path if os.sep == "/" else row.path.replace("/", os.sep))
        try:
            name, digest = transfer.parse_checksum(row.checksum)
            if row.size is not None and os.stat(path).st_size != row.size:
                continue  # the engine sees the size differ and downloads it again
            hasher = hashlib.new(name)
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    hasher.update(chunk)
        except (ValueError, OSError):
            continue
        if hasher.digest() != digest:
            out.add(row.id)
    return out


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
