"""Object storage as a destination: ``-o s3://bucket/prefix`` (``gs://``, ``az://``).

The layout in the bucket is the one on disk (``{prefix}/{dataset}/{collection}/{item}/...``,
the catalogue, ``err_report.csv``). What a download keeps for itself stays on the local disk, in
a **state folder keyed by the destination**: ``$MLHUB_STATE_DIR`` or the user cache folder
(``~/.cache/mlhub_widgets/destinations/<bucket>-<prefix>-<hash>/``; ``%LOCALAPPDATA%`` on
Windows). It holds the asset index (``mlhub_assets.db``, which makes a rerun resumable), the
catalogue before it is uploaded, and the ``.part`` files of large objects being fetched.

How bytes get there, through :class:`ObjectDestination` (the transfer engine calls it where it
would write and rename a local file):

* a small body (up to 256 KiB) is verified in memory (size, ``file:checksum``) and written with
  one ``PUT``;
* a large body is fetched to a local ``.part`` (resumable), verified, then uploaded — as a
  multipart upload (8 MiB parts) above 8 MiB — and its size checked with a ``HEAD``; the local
  ``.part`` is removed;
* on S3, every upload carries a SHA-256 checksum the store verifies (``x-amz-checksum-sha256``);
  ``storage_options={"checksum_algorithm": "none"}`` turns it off for S3-compatible stores
  that refuse it;
* an object only ever appears whole: a ``PUT`` is atomic, a multipart upload is invisible until
  it completes, and obstore aborts one that fails (a process killed during a multipart upload
  leaves an incomplete upload, never an object: S3's ``AbortIncompleteMultipartUpload``
  lifecycle rule removes those).

Before transfers, the destination prefix is listed once (one request per 1,000 objects): assets
already there with their expected size are not fetched again, so a rerun uploads nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Final

from ..exceptions import NetworkError
from ..net.objects import (
    StorageOptions,
    head_object_async,
    iter_objects,
    normalise_options,
    parse_object_url,
    put_object_async,
    resolve,
)
from ..net.settings import NetworkSettings
from .paths import is_reserved_name
from .transfer.files import body_mismatch, unlink_quietly

__all__ = ["PART_SIZE", "ObjectDestination", "layout_files", "publish_files", "state_root"]

#: Above this size an upload is a multipart upload with parts of this size (``aws s3 cp``'s).
PART_SIZE: Final = 8 << 20
#: Parts of one object uploaded at once.
PART_CONCURRENCY: Final = 8
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def state_root() -> Path:
    """Where destination state folders live: ``$MLHUB_STATE_DIR``, else the user cache folder
    (``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux, ``~/Library/Caches`` on macOS,
    ``%LOCALAPPDATA%`` on Windows) + ``mlhub_widgets/destinations``."""
    explicit = os.environ.get("MLHUB_STATE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mlhub_widgets" / "destinations"


class ObjectDestination:
    """An object-store prefix that downloads and syncs write to (see the module docstring).

    Args:
        url: ``s3://bucket/prefix`` (``gs://``, ``az://``...).
        storage_options: options of the destination's store (credentials, endpoint...).
        network: proxy, TLS, timeouts and retries (the job sets its own before transfers).

    Raises:
        UnsupportedURLError: not an object-store URL, or one without a bucket.
    """

    def __init__(
        self,
        url: str,
        storage_options: StorageOptions | None = None,
        network: NetworkSettings | None = None,
    ) -> None:
        loc = parse_object_url(url)
        self.loc = loc.with_key(loc.key.strip("/"))
        self.url = str(self.loc).rstrip("/")
        opts = normalise_options(storage_options)
        if loc.cloud == "s3":
            algorithm = str(opts.get("checksum_algorithm", "sha256")).strip().lower()
            if algorithm in ("", "none", "false", "off"):
                opts.pop("checksum_algorithm", None)
            else:
                opts["checksum_algorithm"] = algorithm
        self.storage_options: dict[str, Any] = opts
        self._network = network or NetworkSettings()
        self._store: Any = None
        endpoint = str(opts.get("endpoint") or opts.get("base_url") or "")
        ident = f"{self.url}|{endpoint}".encode()
        name = _SLUG.sub("-", f"{self.loc.bucket}-{self.loc.key}").strip("-")[:60]
        #: the local state folder of this destination (index, catalogue, ``.part`` files)
        self.state_dir = state_root() / f"{name}-{hashlib.sha256(ident).hexdigest()[:12]}"
        #: objects found below the scanned prefix: path relative to it -> size
        self.sizes: dict[str, int] = {}
        self._scanned: Path | None = None

    @property
    def network(self) -> NetworkSettings:
        """Proxy, TLS, timeouts and retries of the destination's requests."""
        return self._network

    @network.setter
    def network(self, value: NetworkSettings) -> None:
        self._network = value
        self._store = None

    def __repr__(self) -> str:
        return f"<ObjectDestination {self.url} state={self.state_dir}>"

    # -- paths ---------------------------------------------------------------------------------
    def object_url(self, local: str | os.PathLike[str]) -> str:
        """The object URL of a local path below :attr:`state_dir` (the same relative path)."""
        rel = Path(local).relative_to(self.state_dir).as_posix()
        return self.url if rel == "." else f"{self.url}/{rel}"

    def relative(self, local: str | os.PathLike[str]) -> str | None:
        """The path of ``local`` relative to the scanned folder, or None outside it."""
        if self._scanned is None:
            return None
        try:
            return Path(local).relative_to(self._scanned).as_posix()
        except ValueError:
            return None

    # -- listing -------------------------------------------------------------------------------
    def scan(self, folder: Path) -> dict[str, int]:
        """List the objects below ``folder``'s object prefix (blocking; one request per 1,000
        objects) and remember their sizes for :meth:`size_of`.

        Raises:
            EntityDoesNotExist: the bucket does not exist.
            AuthenticationError: listing is denied.
        """
        prefix = self.object_url(folder).rstrip("/") + "/"
        cut = len(parse_object_url(prefix).key)
        sizes: dict[str, int] = {}
        for info in iter_objects(
            prefix, storage_options=self.storage_options, network=self.network
        ):
            sizes[info.key[cut:]] = info.size
        self.sizes = sizes
        self._scanned = folder
        return sizes

    def size_of(self, local: str | os.PathLike[str]) -> int | None:
        """Size of the object a local path maps to, as the last :meth:`scan` found it."""
        rel = self.relative(local)
        return None if rel is None else self.sizes.get(rel)

    # -- writing -------------------------------------------------------------------------------
    async def put_small(
        self,
        dest: str,
        body: bytes,
        expected: tuple[str, bytes] | None,
        md5_header: str | None,
    ) -> str | None:
        """Verify a whole small body, then write it as the object for ``dest``.

        Returns:
            A mismatch reason (nothing was written), or None.

        Raises:
            MLHubException: the upload failed (``NetworkError.retryable`` tells whether to
                try again).
        """
        mismatch = body_mismatch(expected, body, md5_header)
        if mismatch is not None:
            return mismatch
        await self._put(self.object_url(dest), body)
        self._record(dest, len(body))
        return None

    async def publish(self, part: str, dest: str, size: int) -> None:
        """Upload a verified ``.part`` as the object for ``dest``, check its size, remove the
        ``.part`` (and its ``.meta``)."""
        await self.upload_file(part, dest, size)
        unlink_quietly(part)
        unlink_quietly(part + ".meta")

    async def upload_file(self, path: str, dest: str, size: int) -> None:
        """Upload the local file ``path`` (of ``size`` bytes) as the object for ``dest``;
        multipart above :data:`PART_SIZE`, then a ``HEAD`` checks the stored size."""
        url = self.object_url(dest)
        await self._put(url, Path(path))  # read by obstore; multipart above PART_SIZE
        if size > PART_SIZE:
            info = await head_object_async(
                url, storage_options=self.storage_options, network=self.network
            )
            if info.size != size:
                raise NetworkError(
                    f"{url} holds {info.size:,} bytes after the upload, expected {size:,}",
                    url=url,
                )
        self._record(dest, size)

    async def _put(self, url: str, data: bytes | Path) -> None:
        # shielded: a cancelled job lets an upload finish (or fail and be aborted) instead of
        # dropping it half-way, which would leave an incomplete multipart upload behind
        if self._store is None:  # looked up once: a lookup costs ~30 µs, small files many
            self._store = resolve(self.url, self.storage_options, self.network)[0]
        task = asyncio.ensure_future(
            put_object_async(
                url,
                data,
                storage_options=self.storage_options,
                network=self.network,
                part_size=PART_SIZE,
                concurrency=PART_CONCURRENCY,
                store=self._store,
            )
        )
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            await asyncio.wait([task])
            raise

    def _record(self, dest: str, size: int) -> None:
        rel = self.relative(dest)
        if rel is not None:
            self.sizes[rel] = size


#: Files of a download's local state that are not part of its layout in the bucket.
_LOCAL_ONLY = re.compile(r"(^|/)mlhub_assets\.db(-wal|-shm|-journal)?$|\.part(\.meta)?$")
_RECORD = "uploaded.json"


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


async def publish_files(
    dest: ObjectDestination, files: list[Path], *, concurrency: int = 32
) -> int:
    """Upload local files of the state folder (the catalogue, ``err_report.csv``) to their
    place at the destination, skipping those uploaded before unchanged (recorded with their
    MD5 in ``uploaded.json``) and still there. Returns how many were uploaded.

    Raises:
        MLHubException: an upload failed (after obstore's retries).
    """
    record_path = dest.state_dir / _RECORD
    try:
        record: dict[str, list[Any]] = json.loads(record_path.read_text())
    except (OSError, ValueError):
        record = {}
    todo: list[tuple[Path, str, str, int]] = []
    for path in files:
        rel = path.relative_to(dest.state_dir).as_posix()
        if _LOCAL_ONLY.search(rel):
            continue
        size = path.stat().st_size
        md5 = await asyncio.to_thread(_md5, path)
        there = dest.size_of(path)
        unchanged = record.get(rel) == [size, md5]
        # skipped when unchanged and the listing shows it (or cannot: outside the scan)
        if unchanged and (there == size or (there is None and dest.relative(path) is None)):
            continue
        todo.append((path, rel, md5, size))
    gate = asyncio.Semaphore(concurrency)

    async def one(path: Path, rel: str, md5: str, size: int) -> None:
        async with gate:
            await dest.upload_file(os.fspath(path), os.fspath(path), size)
        record[rel] = [size, md5]

    try:
        await asyncio.gather(*(one(*t) for t in todo))
    finally:
        record_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = record_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, record_path)
    return len(todo)


def layout_files(folder: Path, *extra: Path) -> list[Path]:
    """The files below ``folder`` that belong in the bucket (none the download keeps for
    itself: the index, the folder lock, ``.part`` files), plus ``extra`` files that exist."""
    found = (
        [p for p in sorted(folder.rglob("*")) if p.is_file() and not is_reserved_name(p.name)]
        if folder.is_dir()
        else []
    )
    return list(dict.fromkeys([*found, *(p for p in extra if p.is_file())]))
