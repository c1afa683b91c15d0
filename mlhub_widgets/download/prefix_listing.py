"""What a sync copies: the listing of a prefix (or folder) as rows of the asset index.

:class:`SyncConfig` is a :class:`~.pipeline.DownloadConfig` whose assets are the objects below
a prefix instead of a catalogue's: their path is their key below the prefix (each part made
safe by :func:`~.paths.safe_component`, as a download does), their expected size the listed
one, and on S3 their expected checksum the MD5 that the ETag of an object written in one part
is. :class:`PrefixLister` fills the index from the listing in a thread, a batch at a time, so
transfers start on the first page; it has the interface of
:class:`~.index.IndexBuilder` that the transfer phase uses.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..exceptions import ConfigurationError
from ..net.objects import (
    ObjectInfo,
    is_object_url,
    iter_objects,
    md5_of_etag,
    parse_object_url,
)
from ..net.settings import NetworkSettings
from .destination import state_root
from .manifest import MANIFEST_NAME, Manifest, NewAsset
from .paths import is_reserved_name, safe_component
from .pipeline import DownloadConfig
from .report import ERR_REPORT_NAME

__all__ = ["PrefixLister", "SyncConfig", "is_own_file", "selected", "source_objects"]

_BATCH = 2000
_FIRST_BATCH = 128
_COMMIT_SECONDS = 0.1
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")
#: ``file:checksum`` multihash prefix of an MD5 digest.
MD5_MULTIHASH = "d50110"


@dataclass
class SyncConfig(DownloadConfig):
    """A sync: ``src`` (an object prefix or a local folder) to ``asset_dir`` (a local folder,
    or the staging root of an object destination). The index and ``err_report.csv`` live in
    ``state_dir``."""

    src: str = ""
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    state_dir: Path = field(default_factory=Path)
    network: NetworkSettings = field(default_factory=NetworkSettings)
    etag_checksums: bool = True

    @property
    def dataset_asset_dir(self) -> Path:
        return self.asset_dir

    @property
    def manifest_path(self) -> Path:
        return self.state_dir / MANIFEST_NAME

    @property
    def err_report_path(self) -> Path:
        return self.state_dir / ERR_REPORT_NAME

    @property
    def src_is_local(self) -> bool:
        return not is_object_url(self.src)


def local_state_dir(dest: Path) -> Path:
    """The state folder of a sync into the local folder ``dest`` (keyed by its path)."""
    text = os.fspath(dest)
    name = _SLUG.sub("-", dest.name or "root").strip("-")[:40] or "root"
    return state_root() / f"sync-{name}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def selected(rel: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Whether ``rel`` is copied: it matches one of ``include`` (all when empty) and none of
    ``exclude`` (``fnmatch`` globs on the path below the prefix; ``*`` also crosses ``/``)."""
    if include and not any(fnmatch.fnmatchcase(rel, p) for p in include):
        return False
    return not any(fnmatch.fnmatchcase(rel, p) for p in exclude)


def is_own_file(rel: str) -> bool:
    """Whether ``rel`` has a name a download keeps for its own state (its ``err_report.csv``,
    asset index, lock or ``.part`` files): a sync never copies those, it counts them."""
    return is_reserved_name(rel.rsplit("/", 1)[-1])


def safe_relpath(rel: str) -> str:
    """``rel`` with every part made safe for every file system (empty parts dropped)."""
    return "/".join(safe_component(part) for part in rel.split("/") if part)


def source_objects(cfg: SyncConfig) -> Iterator[tuple[str, ObjectInfo]]:
    """``(path below the prefix, object)`` for every object or file below ``cfg.src``
    (folder placeholders, keys ending in ``/``, are not files and are left out)."""
    src = cfg.src
    if is_object_url(src):
        prefix = src.rstrip("/") + "/" if parse_object_url(src).key.strip("/") else src
        cut = len(parse_object_url(prefix).key)
        for info in iter_objects(prefix, storage_options=cfg.storage_options, network=cfg.network):
            rel = info.key[cut:]
            if rel and not rel.endswith("/"):
                yield rel, info
        return
    root = Path(src)
    if not root.is_dir():
        raise ConfigurationError(f"{src} is not a folder")
    from ..net.objects import list_url

    for info in list_url(root):
        yield info.key, info


class PrefixLister:
    """Fills a sync's index from the source listing, in a thread (see the module docstring).

    Attributes (read by the transfer phase): ``done``, ``error``, ``selected``, ``items``,
    ``seconds``, ``seen_keys``, ``cancelled``.
    """

    def __init__(
        self,
        cfg: SyncConfig,
        start_seq: int,
        cancelled: threading.Event,
        on_progress: Callable[[int, int, int], None],
    ) -> None:
        self.cfg = cfg
        self.cancelled = cancelled
        self.on_progress = on_progress
        self._seq = start_seq
        self.assets = 0
        self.selected = 0
        self.excluded = 0
        self.reserved = 0
        self.bytes = 0
        self.seen_keys: dict[str, set[str]] = {}
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.seconds = 0.0
        self._thread: threading.Thread | None = None

    @property
    def items(self) -> int:
        """Objects listed so far (what a catalogue's items are to a download)."""
        return self.assets

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="mlhub-sync-list", daemon=True)
        self._thread.start()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def catalog_md5(self) -> str:
        return ""

    def run(self) -> None:
        """List and index in the calling thread; errors end up in :attr:`error`."""
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
        gen = db.begin_rebuild()
        batch: list[NewAsset] = []
        folders: Counter[str] = Counter()
        keys: Counter[tuple[str, str]] = Counter()
        size = _FIRST_BATCH
        last = time.monotonic()
        s3 = not cfg.src_is_local and parse_object_url(cfg.src).cloud == "s3"
        for rel, info in source_objects(cfg):
            if self.cancelled.is_set():
                return
            self.assets += 1
            if not selected(rel, cfg.include, cfg.exclude):
                self.excluded += 1
                continue
            if is_own_file(rel):
                self.reserved += 1
                continue
            path = safe_relpath(rel)
            folder = path.split("/", 1)[0] if "/" in path else "."
            md5 = md5_of_etag(info.etag) if s3 and cfg.etag_checksums else None
            url = Path(info.url).as_uri() if cfg.src_is_local else info.url
            batch.append(
                NewAsset(
                    path=path,
                    url=url,
                    collection_id=folder,
                    item_id=None,
                    item_ref=None,
                    asset_key=path.rsplit("/", 1)[-1],
                    media_type=None,
                    size=info.size,
                    checksum=MD5_MULTIHASH + md5 if md5 else None,
                    selected=True,
                )
            )
            folders[folder] += 1
            keys[(folder, "objects")] += 1
            self.seen_keys.setdefault(folder, set()).add("objects")
            self.selected += 1
            self.bytes += info.size
            now = time.monotonic()
            if len(batch) >= size or now - last > _COMMIT_SECONDS:
                self._flush(db, batch, gen)
                size, last = _BATCH, now
                self.on_progress(self.assets, self.assets, self.selected)
        self._flush(db, batch, gen)
        db.finish_rebuild(gen, keys, folders)
        db.set_meta({"index_complete": "1", "source": cfg.src, "items": str(self.assets)})

    def _flush(self, db: Manifest, batch: list[NewAsset], gen: int) -> None:
        if not batch:
            return
        with db.transaction():
            db.add_collections((f, '["objects"]', None) for f in {a.collection_id for a in batch})
            db.add_assets(batch, gen, self.next_seq)
        batch.clear()
