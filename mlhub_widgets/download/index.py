"""The asset index of a dataset download: catalogue → per-asset rows in the manifest.

:class:`IndexBuilder` streams the catalogue (the MLHub tarball, or a STAC source's items),
unpacks it safely, applies the filters item by item and inserts one row per asset into the
SQLite manifest (:mod:`mlhub_widgets.download.manifest`), committing in batches so that the
transfers can start on the first rows while the rest is still being read.

For a tarball the work is CPU-bound Python (tar headers, JSON, filters, inserts). In the same
interpreter it would compete with the transfer event loop for the GIL, so a download runs it
in a child interpreter, :class:`IndexProcess`, started as soon as the catalogue info gives
the tarball's size (its imports overlap the tarball download). The two processes share
nothing but the manifest file: the parent reads the rows as they are committed. Tarballs
under ``download.INDEX_PROCESS_FROM_BYTES`` (a few dozen items: built faster than a child
starts), STAC sources (their items come over the network, through the job's session) and
systems that cannot start a child build in a thread; plans build inline.

This module may import the catalogue, manifest, filter and path modules, never the download
engine or the network session.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import pickle
import re
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from ..exceptions import CatalogError, DownloadError
from ..filters import AssetFilter, FilterStats
from ..net.objects.urls import OBJECT_SCHEMES
from ..net.redact import redact_url
from .catalog_archive import (
    ArchiveLimits,
    ArchiveStats,
    CatalogEntry,
    CorruptArchiveError,
    iter_catalog,
)
from .manifest import Manifest, NewAsset
from .paths import COMMON_ASSET_KEYS, COMMON_DIR, asset_extension, safe_component

__all__ = ["Cancelled", "IndexBuilder", "IndexConfig", "IndexProcess", "filter_fingerprint"]

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
    """

    dataset_id: str
    output_dir: Path
    catalog_path: Path
    manifest_path: Path
    flt: AssetFilter
    limits: ArchiveLimits
    source: Any = None


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


def _asset_url(href: str) -> str | None:
    """A fetchable URL for an asset href (HTTP(S), or an object store's ``s3://``, ``gs://``,
    ``az://``: fetched through obstore with the source's storage options), or None."""
    if href.startswith(("https://", "http://")) and len(href) > 8:
        return href
    parts = urlsplit(href)
    if parts.scheme in ("http", "https") and parts.netloc:
        return href
    if parts.scheme.lower() in OBJECT_SCHEMES and parts.netloc:
        return href
    return None


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
            self.error = exc
        finally:
            self.seconds = time.monotonic() - started
            self.done.set()

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
            with self._entries() as entries:
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
        db.set_meta(
            {
                "catalog_root": self.catalog_root or "",
                "index_complete": "1",
                "filter": filter_fingerprint(flt),
                "filter_description": flt.describe(),
                "filter_stats": stats_dict(self.stats),
                "items": str(self.items),
            }
        )

    @contextlib.contextmanager
    def _entries(self) -> Iterator[Iterator[Any]]:
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
                    )
                    try:
                        yield entries
                    finally:
                        entries.close()  # a walk ended early: stop its writer thread now
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

        writer = LocalCatalogWriter(cfg.output_dir, cfg.dataset_id)

        def stream() -> Iterator[Any]:
            for entry in cfg.source.iter_dataset(cfg.dataset_id, cfg.flt):
                writer.add(entry)
                yield replace(entry, name=writer.catalog_name) if entry.kind == "catalog" else entry
            writer.close()  # catalog.json last: the local copy is complete

        try:
            yield stream()
        finally:
            writer.abort()  # stops the writer thread if the walk ended early (no catalog.json)

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
                    redact_url(existing),
                    redact_url(asset.url),
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
        url = _asset_url(href) if isinstance(href, str) else None
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
        batch.append(
            NewAsset(
                path=_relpath(cid, item_id, key, url, media),
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
            self.selected += 1


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,198}[A-Za-z0-9_-]|[A-Za-z0-9_-]")
_DEVICE_STEMS = frozenset({"CON", "PRN", "AUX", "NUL"})


def _safe_fast(name: str) -> str:
    """``paths.safe_component`` with a fast path for plain ASCII names (the common case)."""
    if _PLAIN_NAME.fullmatch(name):
        stem = name.split(".", 1)[0].upper()
        if stem not in _DEVICE_STEMS and not (len(stem) == 4 and stem[:3] in ("COM", "LPT")):
            return name
    return safe_component(name)


@functools.lru_cache(maxsize=4096)
def _safe_cached(name: str) -> str:
    return _safe_fast(name)


def _relpath(
    collection_id: str, item_id: str | None, key: str, href: str, media: str | None
) -> str:
    """``paths.asset_relpath`` as a string, with the repeated components cached (hot loop)."""
    name = _safe_cached(key) + _extension(href, media)
    collection = _safe_cached(collection_id)
    if item_id is None:
        return f"{collection}/{name}"
    if key in COMMON_ASSET_KEYS:
        return f"{collection}/{COMMON_DIR}/{name}"
    return f"{collection}/{_safe_fast(item_id)}/{name}"


def _extension(href: str, media: str | None) -> str:
    """``paths.asset_extension`` with a fast path for plain http(s) URLs (the hot loop)."""
    if not href.startswith(("https://", "http://")) or any(c in href for c in "?#%\\"):
        return asset_extension(href, media)
    rest = href[href.index("://") + 3 :]
    slash = rest.find("/")
    if slash < 0:
        return asset_extension(href, media)
    stem, dot, suffix = rest[slash:].rpartition("/")[2].rpartition(".")
    return _extension_of(suffix if dot and stem.strip(".") else "", media)


@functools.lru_cache(maxsize=1024)
def _extension_of(suffix: str, media: str | None) -> str:
    return asset_extension(f"http://h/f.{suffix}" if suffix else "http://h/f", media)


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


# =============================================================================================
# the index in a child interpreter

_LEN = struct.Struct("!I")


def _send(out: IO[bytes], lock: threading.Lock, msg: object) -> None:
    data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    with lock:
        out.write(_LEN.pack(len(data)) + data)
        out.flush()


def _read_exact(read: Callable[[int], bytes], n: int) -> bytes:
    chunks: list[bytes] = []
    while n > 0:
        chunk = read(n)
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _receive(read: Callable[[int], bytes]) -> Any:
    """The next message read with ``read`` (a file's or a descriptor's), or None at the end
    of the stream."""
    head = _read_exact(read, _LEN.size)
    if len(head) < _LEN.size:
        return None
    (n,) = _LEN.unpack(head)
    data = _read_exact(read, n)
    if len(data) < n:
        return None
    return pickle.loads(data)  # our own child process, over its own pipe


def _portable_error(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a :class:`DownloadError` with its text."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return DownloadError(f"{type(exc).__name__}: {exc}")
    return exc


class _ForwardWarnings(logging.Handler):
    """In the child: hand warnings (and worse) to the parent, which logs them as its own."""

    def __init__(self, out: IO[bytes], lock: threading.Lock) -> None:
        super().__init__(logging.WARNING)
        self._out = out
        self._lock = lock

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            _send(self._out, self._lock, ("log", record.name, record.levelno, record.getMessage()))


def _child_main() -> int:
    """Entry point of the child interpreter: one build, requested over stdin."""
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the message stream
    lock = threading.Lock()
    stdin_fd = sys.stdin.fileno()  # read unbuffered: no read-ahead, no lock at shutdown

    def read(n: int) -> bytes:
        return os.read(stdin_fd, n)

    request = _receive(read)
    if request is None:  # the parent did not need us
        return 0
    cfg, collection_types, start_seq = request
    cancelled = threading.Event()

    def watch_parent() -> None:
        with contextlib.suppress(OSError):
            read(1)  # a byte: cancel; end of file: the parent is gone
        cancelled.set()

    threading.Thread(target=watch_parent, name="mlhub-index-parent", daemon=True).start()
    package = logging.getLogger(__name__.rpartition(".")[0])
    package.addHandler(_ForwardWarnings(out, lock))
    package.setLevel(logging.WARNING)

    def on_progress(items: int, assets: int, selected: int) -> None:
        _send(out, lock, ("progress", items, assets, selected))

    keys_sent = -1

    def on_commit() -> None:
        nonlocal keys_sent
        n_keys = sum(len(keys) for keys in builder.seen_keys.values())
        keys = builder.seen_keys if n_keys != keys_sent else None
        keys_sent = n_keys
        _send(out, lock, ("commit", builder.items, builder.assets, builder.selected, keys))

    builder = IndexBuilder(cfg, collection_types, start_seq, on_progress, cancelled, on_commit)
    builder.run()
    error = builder.error
    _send(
        out,
        lock,
        (
            "done",
            {
                "items": builder.items,
                "assets": builder.assets,
                "selected": builder.selected,
                "skipped_hrefs": builder.skipped_hrefs,
                "seen_keys": builder.seen_keys,
                "md5": builder.catalog_md5(),
                "error": None if error is None else _portable_error(error),
            },
        ),
    )
    return 0


_CHILD_CODE = (
    "import sys\n"
    "if sys.argv[1] not in sys.path: sys.path.insert(0, sys.argv[1])\n"
    "from mlhub_widgets.download.index import _child_main\n"
    "sys.exit(_child_main())\n"
)


class IndexProcess:
    """An :class:`IndexBuilder` in a child interpreter, with the builder's surface.

    :meth:`spawn` starts the interpreter (it imports while the parent fetches the
    catalogue); :meth:`begin` hands it the build; :meth:`discard` ends an unused one.
    Progress, the collections/keys seen so far and warnings come back over a pipe; the rows
    go straight into the manifest. Cancelling (setting ``cancelled``) stops the child at the
    next catalogue member; if the parent dies, the child sees its stdin close and stops too.
    """

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self.items = 0
        self.assets = 0
        self.selected = 0
        self.skipped_hrefs = 0
        self.seen_keys: dict[str, set[str]] = {}
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.cancelled = threading.Event()
        self.seconds = 0.0
        self._md5 = ""
        self._on_progress: Callable[[int, int, int], None] = lambda _i, _a, _s: None
        self._threads: list[threading.Thread] = []
        self._started = 0.0

    @classmethod
    def spawn(cls) -> IndexProcess:
        """Start an idle child interpreter. Raises OSError if it cannot be started."""
        package_parent = str(Path(__file__).resolve().parents[2])  # holds mlhub_widgets/
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0) if os.name == "nt" else 0
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD_CODE, package_parent],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            creationflags=flags,
        )
        return cls(proc)

    def begin(
        self,
        cfg: IndexConfig,
        collection_types: Mapping[str, list[str]],
        start_seq: int,
        on_progress: Callable[[int, int, int], None],
        cancelled: threading.Event,
    ) -> None:
        """Hand the child its build (``cfg.source`` must be None) and start following it."""
        if cfg.source is not None:
            raise ValueError("an index built from a STAC source runs in a thread, not a process")
        self.cancelled = cancelled
        self._on_progress = on_progress
        self._started = time.monotonic()
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            _send(stdin, threading.Lock(), (cfg, dict(collection_types), start_seq))
        except OSError as exc:  # the child died at start-up (its stderr says why)
            self.error = DownloadError(f"the catalogue indexer process did not start: {exc}")
            self._finish()
            return
        for target, name in (
            (self._follow, "mlhub-index-follow"),
            (self._watch, "mlhub-index-cancel"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def join(self) -> None:
        """Wait until the child ended and its last message was read."""
        self.done.wait()
        for thread in self._threads:
            thread.join()

    def catalog_md5(self) -> str:
        """MD5 of the catalogue tarball's bytes, as read by the child."""
        return self._md5

    def discard(self) -> None:
        """End a child that was spawned but never given a build."""
        with contextlib.suppress(OSError):
            self._proc.kill()
        self._close_pipes()
        self._proc.wait()

    def _close_pipes(self) -> None:
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def _watch(self) -> None:
        while not self.done.wait(0.05):
            if self.cancelled.is_set():
                stdin = self._proc.stdin
                with contextlib.suppress(OSError, ValueError):
                    if stdin is not None:
                        stdin.write(b"c")
                        stdin.flush()
                return

    def _follow(self) -> None:
        stdout = self._proc.stdout
        assert stdout is not None
        finished = False
        try:
            while (msg := _receive(stdout.read)) is not None:
                kind = msg[0]
                if kind == "commit":
                    _, self.items, self.assets, self.selected, keys = msg
                    if keys is not None:
                        self.seen_keys = keys
                elif kind == "progress":
                    _, self.items, self.assets, self.selected = msg
                    self._on_progress(self.items, self.assets, self.selected)
                elif kind == "log":
                    _, name, level, text = msg
                    logging.getLogger(name).log(level, "%s", text)
                elif kind == "done":
                    state = msg[1]
                    self.items, self.assets = state["items"], state["assets"]
                    self.selected, self.skipped_hrefs = state["selected"], state["skipped_hrefs"]
                    self.seen_keys, self._md5 = state["seen_keys"], state["md5"]
                    self.error = state["error"]
                    finished = True
        except Exception as exc:
            self.error = DownloadError(f"lost track of the catalogue indexer process: {exc}")
            finished = True
        code = self._proc.wait()
        if not finished:
            self.error = (
                Cancelled()
                if self.cancelled.is_set()
                else DownloadError(
                    f"the catalogue indexer process ended unexpectedly (exit status {code}); "
                    "run the download again to continue"
                )
            )
        self._finish()

    def _finish(self) -> None:
        self._close_pipes()
        self.seconds = time.monotonic() - self._started if self._started else 0.0
        self.done.set()


if __name__ == "__main__":  # pragma: no cover - started by IndexProcess.spawn
    sys.exit(_child_main())
