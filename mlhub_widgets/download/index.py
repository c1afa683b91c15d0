"""The asset index of a dataset download: catalogue → per-asset rows in the manifest.

:class:`IndexBuilder` streams the catalogue (the MLHub tarball, or a STAC source's items),
unpacks it safely, applies the filters item by item and inserts one row per asset into the
SQLite manifest (:mod:`mlhub_widgets.download.manifest`), committing in batches so that the
transfers can start on the first rows while the rest is still being read.

For a tarball the work is CPU-bound Python (tar headers, JSON, filters, inserts). In the same
interpreter it would compete with the transfer event loop for the GIL, so a download runs it
in a child interpreter, :class:`~.index_process.IndexProcess`, started as soon as the
catalogue info gives the tarball's size (its imports overlap the tarball download). The two
processes share nothing but the manifest file: the parent reads the rows as they are
committed. Tarballs
under ``download.INDEX_PROCESS_FROM_BYTES`` (a few dozen items: built faster than a child
starts), STAC sources (their items come over the network, through the job's session) and
systems that cannot start a child build in a thread; plans build inline.

This module may import the catalogue, manifest, filter and path modules, never the download
engine or the network session.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..exceptions import CatalogError, DiskFullError
from ..filters import AssetFilter, FilterStats
from .asset_urls import asset_url, fast_relpath
from .catalog_archive import (
    ArchiveLimits,
    ArchiveStats,
    CatalogEntry,
    CorruptArchiveError,
    Rewrite,
    iter_catalog,
)
from .local_catalog import encode_json, local_catalog_marker, localized_copy
from .manifest import Manifest, NewAsset
from .paths import COMMON_ASSET_KEYS
from .report import shown_url

__all__ = ["Cancelled", "IndexBuilder", "IndexConfig", "filter_fingerprint"]

log = logging.getLogger(__name__)

_FIRST_BATCH = 128
_INDEX_BATCH = 2000
_INDEX_COMMIT_SECONDS = 0.1


@dataclass(frozen=True)
class IndexConfig:
    """What building a dataset's asset index needs (picklable when ``source`` is None).

    Attributes:
        dataset_id: the dataset.
        output_dir: where the catalogue is unpacked (``{output_dir}/{dataset_id}/...``).
        catalog_path: the catalogue tarball.
        manifest_path: the SQLite manifest to fill.
        flt: the filters.
        limits: archive safety limits.
        source: a STAC source to stream the items from instead of the tarball.
        dataset_asset_dir: where the assets are saved (``{asset_dir}/{dataset}``): the local
            copy of a streamed catalogue is written with asset hrefs pointing there.
    """

    dataset_id: str
    output_dir: Path
    catalog_path: Path
    manifest_path: Path
    flt: AssetFilter
    limits: ArchiveLimits
    source: Any = None
    dataset_asset_dir: Path | None = None


def filter_fingerprint(flt: AssetFilter) -> str:
    """A stable text identity of the filters (stored with the index: a rerun with other
    filters re-plans the selection instead of reusing it)."""
    intersects = None
    if flt.intersects is not None:
        from shapely import to_wkb  # only with a geometry: shapely costs ~0.1 s to import

        intersects = hashlib.sha256(to_wkb(flt.intersects)).hexdigest()
    doc = {
        "bbox": list(flt.bbox) if flt.bbox is not None else None,
        "intersects": intersects,
        "datetime": flt.datetime.to_stac() if flt.datetime is not None else None,
        "collection_filter": {
            cid: sorted(keys) if keys is not None else None
            for cid, keys in sorted(flt.collection_filter.items())
        }
        if flt.collection_filter is not None
        else None,
    }
    return json.dumps(doc, sort_keys=True)


def spatial_fields(item: Mapping[str, Any]) -> str:
    props = item.get("properties")
    keep: dict[str, Any] = {}
    if isinstance(props, Mapping):
        for key in ("datetime", "start_datetime", "end_datetime"):
            if key in props:
                keep[key] = props[key]
    return json.dumps(
        {"bbox": item.get("bbox"), "geometry": item.get("geometry"), "properties": keep},
        separators=(",", ":"),
    )


def _finished_assets(cfg: IndexConfig, db: Manifest) -> Callable[[str], bool] | None:
    """For :func:`iter_catalog`'s ``keep``: is a catalogue member (a path relative to the
    output folder) where a downloaded asset of this dataset lives? ``None`` when that cannot
    be (the assets live in another folder, or none is downloaded yet)."""
    asset_root = cfg.manifest_path.parent  # {asset_dir}/{dataset_id}
    try:
        inner = asset_root.relative_to(cfg.output_dir).as_posix()
    except ValueError:
        return None
    if not db.has_done():
        return None
    prefix = "" if inner == "." else inner + "/"

    def keep(rel: str) -> bool:
        return rel.startswith(prefix) and db.is_done(rel[len(prefix) :])

    return keep


class Cancelled(Exception):
    """Internal: the job was cancelled while preparing."""


class IndexBuilder:
    """Unpacks the catalogue and fills the index: inline, in its own thread, or in a child
    interpreter (:class:`IndexProcess`)."""

    def __init__(
        self,
        cfg: IndexConfig,
        collection_types: Mapping[str, list[str]],
        start_seq: int,
        on_progress: Callable[[int, int, int], None],
        cancelled: threading.Event,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.collection_types = collection_types
        self.on_progress = on_progress
        self.on_commit = on_commit
        self.cancelled = cancelled
        self._seq = start_seq
        self.items = 0
        self.assets = 0
        self.selected = 0
        # saved paths of selected common assets: many items share one ``_common`` file, which
        # is one row of the index and one download, so it counts once in ``selected``
        self._selected_common: set[str] = set()
        self.skipped_hrefs = 0
        self.stats = FilterStats()
        self.archive_stats = ArchiveStats()
        self.item_rows: list[tuple[int, str, str, str, int]] = []
        self.key_counts: Counter[tuple[str, str]] = Counter()
        self.item_counts: Counter[str] = Counter()
        self.seen_keys: dict[str, set[str]] = {}
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.catalog_root: str | None = None
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.seconds = 0.0
        self._thread: threading.Thread | None = None

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.run, name=f"mlhub-index-{self.cfg.dataset_id}", daemon=True
        )
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def catalog_md5(self) -> str:
        """MD5 of the catalogue tarball's bytes, as read while unpacking it."""
        return self.md5.hexdigest()

    def run(self) -> None:
        """Build the index in the calling thread; errors end up in :attr:`error`."""
        started = time.monotonic()
        try:
            with Manifest(self.cfg.manifest_path) as db:
                self._build(db)
        except BaseException as exc:  # handed to the job, which re-raises it
            self.error = self._unpacking_disk_full(exc) or exc
        finally:
            self.seconds = time.monotonic() - started
            self.done.set()

    def _unpacking_disk_full(self, exc: BaseException) -> DiskFullError | None:
        """A clear error for a disk that filled up while the catalogue was unpacked."""
        cfg = self.cfg
        if cfg.source is not None or not (
            isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
        ):
            return None
        stats = self.archive_stats
        try:
            compressed = cfg.catalog_path.stat().st_size
            free = f"{shutil.disk_usage(cfg.output_dir).free:,} bytes free"
        except OSError:
            return None
        limit = cfg.limits.sized(compressed).max_total_size
        error = DiskFullError(
            f"Disk full: no space left to unpack the catalogue of {cfg.dataset_id} in "
            f"{cfg.output_dir} ({free}) after {stats.expanded_bytes:,} bytes; its "
            f"{compressed:,}-byte tarball may unpack to at most {limit:,} bytes. Nothing "
            "half-written keeps its name. Free some space (or choose another output folder) "
            "and run the same download again."
        )
        error.__cause__ = exc
        return error

    def _build(self, db: Manifest) -> None:
        cfg = self.cfg
        flt = cfg.flt
        gen = db.begin_rebuild()
        batch: list[NewAsset] = []
        collections: list[tuple[str, str, str | None]] = []
        last_commit = time.monotonic()
        last_event = last_commit
        batch_size = _FIRST_BATCH
        tx = db.transaction()
        tx.__enter__()
        try:
            with self._entries(db) as entries:
                for entry in entries:
                    if self.cancelled.is_set():
                        raise Cancelled()
                    if entry.kind == "item":
                        self._item(entry, flt, batch)
                    elif entry.kind == "collection":
                        self._collection(entry, flt, batch, collections)
                    elif entry.kind == "catalog" and (
                        self.catalog_root is None
                        or entry.name.count("/") < self.catalog_root.count("/")
                    ):
                        self.catalog_root = entry.name
                    now = time.monotonic()
                    if len(batch) >= batch_size or now - last_commit > _INDEX_COMMIT_SECONDS:
                        batch_size = _INDEX_BATCH  # the first commit is small: transfers start
                        self._flush(db, batch, collections, gen)
                        tx.__exit__(None, None, None)
                        tx = db.transaction()
                        tx.__enter__()
                        last_commit = now
                        if self.on_commit is not None:
                            self.on_commit()
                        if now - last_event > 0.25:
                            self.on_progress(self.items, self.assets, self.selected)
                            last_event = now
            self._flush(db, batch, collections, gen)
        except BaseException as exc:
            tx.__exit__(type(exc), exc, None)
            raise
        tx.__exit__(None, None, None)
        # collections that only appear through items still get a row
        db.finish_rebuild(gen, self.key_counts, self.item_counts)
        meta: dict[str, Any] = {
            "catalog_root": self.catalog_root or "",
            "index_complete": "1",
            "filter": filter_fingerprint(flt),
            "filter_description": flt.describe(),
            "filter_stats": stats_dict(self.stats),
            "items": str(self.items),
        }
        if cfg.dataset_asset_dir is not None and (
            cfg.source is not None or self.archive_stats.not_rewritten == 0
        ):
            # the catalogue was written with local hrefs: nothing left to rewrite
            meta["local_catalog"] = local_catalog_marker(str(gen), cfg.dataset_asset_dir)
        db.set_meta(meta)

    @contextlib.contextmanager
    def _entries(self, db: Manifest) -> Iterator[Iterator[Any]]:
        """The catalogue's entries: unpacked from the tarball, or streamed from the source
        (and written as a local static catalogue in the same layout as they go by)."""
        cfg = self.cfg
        if cfg.source is None:
            try:
                with open(cfg.catalog_path, "rb") as raw:
                    entries = iter_catalog(
                        _HashingReader(raw, self.md5),
                        cfg.output_dir,
                        limits=cfg.limits,
                        stats=self.archive_stats,
                        root=cfg.dataset_id,  # the catalogue stays in the dataset's folder
                        compressed_size=os.fstat(raw.fileno()).st_size,
                        keep=_finished_assets(cfg, db),
                        rewrite=self._local_document(),
                    )
                    try:
                        yield entries
                    finally:
                        entries.close()  # a walk ended early: stop its writer thread now
                stats = self.archive_stats
                if stats.kept:
                    log.warning(
                        "%d members of the catalogue of %s were not unpacked: downloaded "
                        "assets live at their paths (e.g. %s)",
                        stats.kept,
                        cfg.dataset_id,
                        ", ".join(stats.kept_examples[:3]),
                    )
            except CorruptArchiveError as exc:
                # never taken as complete, and not reused: the next run fetches it anew
                with contextlib.suppress(OSError):
                    cfg.catalog_path.unlink()
                raise CatalogError(
                    f"The catalogue of {cfg.dataset_id} ({cfg.catalog_path}) is damaged or "
                    f"incomplete: {exc}. The file was deleted; run the download again to "
                    "fetch it anew (assets already downloaded are kept)."
                ) from exc
            return
        from dataclasses import replace

        from .catalog_writer import LocalCatalogWriter

        writer = LocalCatalogWriter(cfg.output_dir, cfg.dataset_id, cfg.dataset_asset_dir)

        def stream() -> Iterator[Any]:
            for entry in cfg.source.iter_dataset(cfg.dataset_id, cfg.flt):
                writer.add(entry)
                yield replace(entry, name=writer.catalog_name) if entry.kind == "catalog" else entry
            writer.close()  # catalog.json last: the local copy is complete

        try:
            yield stream()
        finally:
            writer.abort()  # stops the writer thread if the walk ended early (no catalog.json)

    def _local_document(self) -> Rewrite | None:
        """How the unpacked catalogue is written with local asset hrefs (its items and
        collections written once, already local: :func:`.local_catalog.localized_copy`)."""
        cfg = self.cfg
        if cfg.dataset_asset_dir is None:
            return None
        output_dir, assets_root = cfg.output_dir, os.fspath(cfg.dataset_asset_dir)

        def rewrite(_rel: str, path: Path, doc: Any) -> bytes | None:
            local = localized_copy(doc, os.fspath(path), output_dir, assets_root, cfg.dataset_id)
            return None if local is None else encode_json(local)

        return rewrite

    def _flush(
        self,
        db: Manifest,
        batch: list[NewAsset],
        collections: list[tuple[str, str, str | None]],
        gen: int,
    ) -> None:
        if collections:
            db.add_collections(collections)
            collections.clear()
        if self.item_rows:
            db.add_items(self.item_rows)
            self.item_rows.clear()
        if batch:
            for asset, existing in db.add_assets(batch, gen, self.next_seq):
                log.warning(
                    "%s and %s share the saved path %s; only the first is downloaded",
                    shown_url(existing),
                    shown_url(asset.url),
                    asset.path,
                )
            batch.clear()

    def _collection(
        self,
        entry: CatalogEntry,
        flt: AssetFilter,
        batch: list[NewAsset],
        collections: list[tuple[str, str, str | None]],
    ) -> None:
        data = entry.data or {}
        cid = str(data.get("id"))
        types_ = self.collection_types.get(cid, [])
        title = data.get("title")
        collections.append((cid, json.dumps(types_), str(title) if title else None))
        self.seen_keys.setdefault(cid, set())
        assets = data.get("assets")
        if isinstance(assets, Mapping):
            for key, asset in assets.items():
                self._asset(cid, None, None, str(key), asset, True, flt, batch)

    def _item(self, entry: CatalogEntry, flt: AssetFilter, batch: list[NewAsset]) -> None:
        item = entry.data or {}
        item_id = str(item["id"])
        cid = item.get("collection")
        if not isinstance(cid, str) or not cid:
            parts = entry.name.split("/")
            cid = parts[-3] if len(parts) >= 3 else self.cfg.dataset_id
        matched = flt.item_matches(item, self.stats)
        self.items += 1
        item_ref = self.items
        self.item_rows.append((item_ref, cid, item_id, spatial_fields(item), int(matched)))
        self.item_counts[cid] += 1
        keys = self.seen_keys.setdefault(cid, set())
        for key, asset in (item.get("assets") or {}).items():
            keys.add(str(key))
            self._asset(cid, item_id, item_ref, str(key), asset, matched, flt, batch)

    def _asset(
        self,
        cid: str,
        item_id: str | None,
        item_ref: int | None,
        key: str,
        asset: object,
        matched: bool,
        flt: AssetFilter,
        batch: list[NewAsset],
    ) -> None:
        if not isinstance(asset, Mapping):
            return
        href = asset.get("href")
        url = asset_url(href) if isinstance(href, str) else None
        self.key_counts[(cid, key)] += 1
        if url is None:
            # kept, so that the transfer fails it with its reason (err_report.csv, exit 1):
            # nothing is skipped without the user seeing it
            self.skipped_hrefs += 1
            url = href if isinstance(href, str) else ""
        media_raw = asset.get("type")
        media = media_raw if isinstance(media_raw, str) else None
        size = asset.get("file:size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            size = None
        checksum = asset.get("file:checksum")
        selected = matched and flt.wants_asset(cid, key)
        path = fast_relpath(cid, item_id, key, url, media)
        batch.append(
            NewAsset(
                path=path,
                url=url,
                collection_id=cid,
                item_id=item_id,
                item_ref=item_ref,
                asset_key=key,
                media_type=media,
                size=size,
                checksum=checksum if isinstance(checksum, str) else None,
                selected=selected,
            )
        )
        self.assets += 1
        if selected:
            if item_id is not None and key in COMMON_ASSET_KEYS:
                if path in self._selected_common:
                    return
                self._selected_common.add(path)
            self.selected += 1


def stats_dict(stats: FilterStats) -> dict[str, int]:
    out = {"matched": stats.matched}
    for reason, n in stats.excluded.items():
        out[reason.name.lower()] = n
    return out


class _HashingReader:
    """Wraps a binary file, hashing what is read (the catalogue's MD5, computed for free)."""

    def __init__(self, raw: IO[bytes], digest: Any) -> None:
        self._raw = raw
        self._digest = digest

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self._digest.update(data)
        return data

    def tell(self) -> int:
        return self._raw.tell()
