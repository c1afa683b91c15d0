"""The steps a download and a plan share: configuration, session, catalogue, asset index.

:func:`make_config` validates the arguments of :func:`~mlhub_widgets.download.download_dataset`
before any request; :class:`Pipeline` fetches (or reuses) the catalogue, builds, reuses or
re-plans the index (:mod:`.index`) and turns it into a :class:`~.events.DownloadPlan`.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import hashlib
import json
import logging
import os
import pickle
import re
import sqlite3
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..config.session import Session, get_session
from ..exceptions import (
    MLHubException,
    MLHubResponseError,
    NetworkError,
    NoAssetsSelected,
    OutputFolderError,
)
from ..filters import AssetFilter, FilterStats
from ..net.objects import StorageOptions, check_local_path, is_object_url
from ..net.redact import redact_text, redact_url
from ..types import BBoxLike, CollectionFilter, DatetimeLike, IntersectsLike
from . import transfer
from .catalog_archive import ArchiveLimits, index_path_problem
from .defaults import DEFAULT_WORKERS
from .destination import ObjectDestination
from .events import CatalogFetched, DownloadPlan, IndexProgress
from .folder_lock import lock_folder
from .index import (
    IndexBuilder,
    IndexConfig,
    filter_fingerprint,
    stats_dict,
)
from .index_process import IndexProcess
from .local_catalog import localize_once
from .manifest import (
    MANIFEST_NAME,
    Manifest,
)
from .report import ERR_REPORT_NAME

if TYPE_CHECKING:
    from ..sources import SourceLike
    from ..sources.static_catalog import StaticCatalogSource

log = logging.getLogger(__name__)

IfExists = Literal["resume", "skip", "overwrite"]
IF_EXISTS_VALUES = ("resume", "skip", "overwrite")
#: Catalogue tarballs smaller than this (``stac_catalog_size`` of the catalogue info) are
#: indexed in a thread: starting the child interpreter takes ~0.1 s, building such a catalogue
#: in-process 1–3 ms per KiB (20 items, 4 KiB: 13 ms). Larger or unsized ones get the child.
INDEX_PROCESS_FROM_BYTES = 16 << 10
#: A static STAC catalogue whose collections link at least this many items (or an unknown
#: number, through child catalogues) is walked and indexed in the child interpreter too:
#: fetching, parsing and copying its item documents would otherwise compete with the
#: transfers for the GIL (10,000 assets in 5,000 items from a bucket: see benchmarks/README,
#: "the catalogue walk in the index process"). Smaller ones stay in a thread, where the walk
#: starts at once instead of after the child's ~0.2 s start-up.
INDEX_PROCESS_FROM_ITEMS = 1_000


def validate_common(if_exists: str, workers: int | None) -> None:
    if if_exists not in IF_EXISTS_VALUES:
        raise ValueError(
            f"if_exists must be one of {', '.join(IF_EXISTS_VALUES)}; got {if_exists!r}"
        )
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")


@dataclass
class DownloadConfig:
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
    #: options of the object stores asset hrefs (``s3://``...) are fetched from
    storage_options: dict[str, Any] = field(default_factory=dict)
    #: an object-store output (``-o s3://...``): files go there, the state stays local
    destination: ObjectDestination | None = None

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
            dataset_asset_dir=self.dataset_asset_dir,
        )


def make_config(
    dataset_id: str,
    output_dir: str | os.PathLike[str],
    *,
    asset_output_dir: str | os.PathLike[str] | None,
    catalog_only: bool,
    if_exists: str,
    bbox: BBoxLike | None,
    intersects: IntersectsLike | None,
    datetime: DatetimeLike,
    collection_filter: CollectionFilter | None,
    session: Session | None,
    api_key: str | None,
    profile: str | None,
    root_url: str | None,
    workers: int | None,
    limits: ArchiveLimits | None,
    source: SourceLike | None = None,
    storage_options: StorageOptions | None = None,
    output_storage_options: StorageOptions | None = None,
) -> DownloadConfig:
    if not isinstance(dataset_id, str) or not dataset_id.strip():
        raise ValueError("dataset_id must be a non-empty string")
    if "/" in dataset_id or "\\" in dataset_id or dataset_id in (".", ".."):
        raise ValueError(f"dataset_id {dataset_id!r} cannot be used as a folder name")
    validate_common(if_exists, workers)
    flt = AssetFilter.build(
        bbox=bbox, intersects=intersects, datetime=datetime, collection_filter=collection_filter
    )
    destination, out = output_location(output_dir, output_storage_options, "output_dir")
    if asset_output_dir is not None:
        if destination is not None:
            raise ValueError("asset_output_dir cannot be used with an object-store output_dir")
        check_local_path(os.fspath(asset_output_dir), "asset_output_dir")
    # absolute now: a background job must not follow a later os.chdir (in a notebook, say)
    assets = Path(asset_output_dir).expanduser().absolute() if asset_output_dir is not None else out
    for name, path in (("output_dir", out), ("asset_output_dir", assets)):
        check_output_folder(name, path)
    src: Any = None
    options = dict(storage_options or {})
    if source is not None:
        from ..sources import open_source

        src = open_source(source, storage_options=storage_options)
        options = {**src.storage_options, **options}
        if src.kind == "mlhub":  # the MLHub API: its catalogue tarball, as without a source
            session = session or getattr(src, "session", None)
            src = None
    return DownloadConfig(
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
        storage_options=options,
        destination=destination,
    )


def check_output_folder(name: str, path: Path) -> None:
    """Can ``path`` be created (if missing) and written to? Checked before any request.

    Raises:
        OutputFolderError: it is a file, a folder on its way is a file, or the nearest
            existing folder is read-only (a read-only file system, or no permission).
    """
    existing = path
    while not os.path.lexists(existing) and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        if existing == path:
            raise OutputFolderError(f"{name} {path} exists and is not a folder")
        raise OutputFolderError(f"{name} {path} cannot be created: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputFolderError(
            f"{name} {path} cannot be written to: {_why_not_writable(existing)}"
        )


def _why_not_writable(folder: Path) -> str:
    with contextlib.suppress(OSError, AttributeError):  # no statvfs on Windows
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f"{folder} is on a read-only file system"
    return f"permission denied for {folder}"


def output_folder_error(exc: BaseException, cfg: DownloadConfig) -> OutputFolderError | None:
    """An :class:`OutputFolderError` for an error that says the output folder cannot be
    written (read-only, no permission, a file in the way), else ``None``.

    Network errors are never folder errors (an untrusted certificate's ``SSLError`` carries
    errno 1, ``EPERM``)."""
    if isinstance(exc, NetworkError):
        return None
    for error in (exc, exc.__cause__, exc.__context__):
        if isinstance(error, ssl.SSLError | ConnectionError):
            return None
        if isinstance(error, OSError) and error.errno in _FOLDER_ERRNOS:
            where = error.filename or cfg.dataset_asset_dir
            text = error.strerror or str(error)
            return OutputFolderError(
                f"cannot write the download of {cfg.dataset_id} to {where}: {text}. Choose "
                "another output folder, or make this one writable; nothing is lost."
            )
        if isinstance(error, sqlite3.Error) and _SQLITE_READONLY.search(str(error)):
            return OutputFolderError(
                f"cannot write the asset index {cfg.manifest_path}: {error}. Choose another "
                "output folder, or make this one writable; nothing is lost."
            )
    return None


_FOLDER_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR})
_SQLITE_READONLY = re.compile(r"readonly database|read-only|unable to open database file")


def output_location(
    output: str | os.PathLike[str], options: StorageOptions | None, what: str
) -> tuple[ObjectDestination | None, Path]:
    """``(destination, local folder)`` for an output: an object-store URL gives its
    :class:`ObjectDestination` and the local state folder; a path gives ``(None, path)``.

    Raises:
        UnsupportedURLError: any other ``scheme://`` (or ``scheme:/``), never a local folder.
    """
    text = os.fspath(output)
    if is_object_url(text):
        destination = ObjectDestination(text, options)
        return destination, destination.state_dir
    check_local_path(text, what)
    # absolute now: a background job must not follow a later os.chdir (in a notebook, say)
    return None, Path(text).expanduser().absolute()


EXCLUSION_LABELS = {
    "no_location": "without geometry or bbox",
    "outside_area": "outside the area",
    "no_date": "without a date",
    "bad_date": "with an unreadable date",
    "outside_dates": "outside the dates",
}


def ignore_event(_event: Any) -> None:
    pass


class Pipeline:
    """The steps shared by a download job and a plan: session, catalogue, index, selection."""

    def __init__(
        self, cfg: DownloadConfig, emit: Callable[[Any], None], cancelled: threading.Event
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

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the download lock of the dataset's folders (:mod:`.folder_lock`): a second
        download or plan of the dataset into the same folder fails at once."""
        cfg = self.cfg
        with contextlib.ExitStack() as stack:
            stack.enter_context(lock_folder(cfg.dataset_asset_dir, cfg.dataset_id))
            if cfg.catalog_dir != cfg.dataset_asset_dir:
                stack.enter_context(lock_folder(cfg.catalog_dir, cfg.dataset_id))
            yield

    def get_session(self) -> Session:
        if self.session is None:
            self.session = get_session(**self.cfg.session_kwargs)
        return self.session

    def close(self) -> None:
        """Drop references to the session and the job (no reference cycle)."""
        self.session = None
        self.discard_index_process()
        self.builder = None
        self.emit = ignore_event

    # -- catalogue -----------------------------------------------------------------------------
    def fetch_catalog(self) -> None:
        if self.cfg.source is not None:
            self._source_catalog()
            return
        cfg = self.cfg
        session = self.get_session()
        ds = cfg.dataset_id
        info = session.get_json(f"catalog/{ds}/info")
        if info is not None and not isinstance(info, Mapping):
            shown = json.dumps(info)[:60] if isinstance(info, str | int | float | list) else ""
            raise MLHubResponseError(
                f"the catalogue info of {ds} is not a JSON object: the server sent a "
                f"{type(info).__name__} ({shown})",
                url=session.url_for(f"catalog/{ds}/info"),
            )
        self.info = dict(info or {})
        expected = self.info.get("stac_catalog_size")
        if not isinstance(expected, int) or isinstance(expected, bool) or expected <= 0:
            expected = None
        if not cfg.catalog_only and (expected is None or expected >= INDEX_PROCESS_FROM_BYTES):
            self.spawn_index_process()  # its start-up overlaps the catalogue download
        cfg.output_dir.mkdir(parents=True, exist_ok=True)
        cfg.dataset_asset_dir.mkdir(parents=True, exist_ok=True)
        url = session.locate(f"catalog/{ds}")
        mode = "overwrite" if cfg.if_exists == "overwrite" else "resume"
        head_etag: str | None = None
        if mode == "resume" and cfg.catalog_path.exists():
            mode, head_etag = self._check_local_catalog(session, url, expected)
        outcome = transfer.download_file(
            url,
            cfg.catalog_path,
            size=expected,
            if_exists=mode,
            credentials=session.credentials,
            network=session.network,
        )
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

    # -- the local catalogue ---------------------------------------------------------------
    def write_local_catalog(self, db: Manifest) -> Path | None:
        """Point the unpacked catalogue's asset hrefs at the downloaded files (see
        :mod:`.local_catalog`), once per index generation and asset folder; returns the
        catalogue's ``catalog.json`` (None while the index is incomplete). An index process
        does it while the transfers run: this waits for it to end, then finishes the job if
        it did not."""
        if self.builder is not None:
            self.builder.join()
        return localize_once(
            db, self.cfg.output_dir, self.cfg.dataset_asset_dir, self.cfg.dataset_id
        )

    # -- index -------------------------------------------------------------------------------
    def _stored_catalog_matches(self, db: Manifest) -> bool:
        stored = db.get_meta_json("catalog")
        if not isinstance(stored, dict) or db.get_meta("index_complete") != "1":
            return False
        ident = self.catalog_identity
        if stored.get("source") != ident.get("source"):
            return False
        if ident.get("source"):  # same source and server-side filters: the index stands
            return self._catalog_root_present(db)
        if stored.get("size") != ident["size"]:
            return False
        if stored.get("etag") and ident.get("etag"):
            same = bool(stored["etag"] == ident["etag"])
        else:
            same = stored.get("md5") == _file_md5(self.cfg.catalog_path)
        if not same:
            return False
        return self._catalog_root_present(db)

    def _catalog_root_present(self, db: Manifest) -> bool:
        """The unpacked catalogue's root document, as the index names it, is on disk (a
        path from the index is checked like a tar member's before it is used)."""
        root = db.get_meta("catalog_root")
        if not root or index_path_problem(root) is not None:
            return False
        return (self.cfg.output_dir / root).is_file()

    def _source_for_process(self) -> StaticCatalogSource | None:
        """A copy of the job's static catalogue source for the index process (see
        :data:`INDEX_PROCESS_FROM_ITEMS`), or None to walk it in a thread: other sources, a
        small catalogue, or options that cannot be handed to another interpreter (e.g. a
        credential provider function). The copy has no ``modifier``: the walk reads documents
        unmodified, and assets are signed where they are downloaded, here."""
        from ..sources.static_catalog import StaticCatalogSource

        source = self.cfg.source
        if not isinstance(source, StaticCatalogSource):
            return None
        links = source.item_links(self.cfg.dataset_id)
        if links is not None and links < INDEX_PROCESS_FROM_ITEMS:
            return None
        portable = copy.copy(source)
        portable.modifier = None
        try:
            pickle.dumps(portable, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # any pickling failure: walk it here
            log.info("walking the catalogue in a thread: its source cannot be copied (%s)", exc)
            return None
        return portable

    def spawn_index_process(self) -> None:
        """Start the child interpreter that will build the index: a tarball's (its start-up
        overlaps the catalogue download), or a large static catalogue's (see
        :data:`INDEX_PROCESS_FROM_ITEMS`)."""
        if self.index_process is not None:
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
        if not inline and cfg.source is not None:
            portable = self._source_for_process()
            if portable is not None:
                index_cfg = replace(index_cfg, source=portable)
                self.spawn_index_process()
        if not inline and self.index_process is not None:
            # the child now belongs to the build (a tarball's, or the copied source's)
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
            f"{n} {EXCLUSION_LABELS.get(k, k)}" for k, n in stats.items() if k != "matched" and n
        )
        detail = f"{stats.get('matched', 0)} items matched" + (
            f"; items excluded: {excluded}" if excluded else ""
        )
        return NoAssetsSelected(
            f"No asset of dataset {self.cfg.dataset_id!r} matches the filters "
            f"({self.cfg.flt.describe()}): {detail}. Nothing was downloaded."
        )

    def estimated_bytes(self, counts: Mapping[str, int]) -> int | None:
        """The catalogue's estimate of the selected bytes (``estimated_dataset_size`` pro rata
        of the selected assets), for selections whose assets do not all have a ``file:size``;
        ``None`` when every size is known or the catalogue has no estimate."""
        estimate = self.info.get("estimated_dataset_size")
        if counts["sized"] == counts["selected"] or not counts["assets"]:
            return None
        if not isinstance(estimate, int | float) or isinstance(estimate, bool):
            return None
        return int(estimate * counts["selected"] / counts["assets"])

    def plan(self, db: Manifest) -> DownloadPlan:
        counts = db.counts()
        per = db.per_collection()
        exact = counts["sized"] == counts["selected"]
        total_assets = counts["assets"]
        estimated = self.estimated_bytes(counts)
        nbytes = counts["known_bytes"] if estimated is None else estimated
        stats = db.get_meta_json("filter_stats") or {}
        excluded = {
            EXCLUSION_LABELS.get(k, k): int(n) for k, n in stats.items() if k != "matched" and n
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
