"""Writable S3 buckets of the hub: objects and multipart uploads in a scratch folder.

Every object's bytes live in one scratch folder (a ``tempfile.mkdtemp`` folder made on the first
write and removed by :meth:`ScratchStore.close`); keys, sizes, ETags and metadata live in memory.
Small bodies (those the HTTP server buffers, under 256 KiB) are appended to one log file, so
uploading 10,000 small files creates no file per object (creating a file cost the hub 150 µs);
large ones are streamed into a :class:`SpoolFile` as they arrive and renamed into place, and a
completed multipart upload keeps its parts' files as they are (:class:`~.http.FileParts`), so
uploading 1 GB writes each byte to disk once. Space in the log is not reclaimed before close.

ETags follow S3: the MD5 of the bytes, quoted; for a multipart upload, the MD5 of the parts'
binary MD5s followed by ``-<number of parts>``. Every part but the last must hold at least 5 MiB
(``EntityTooSmall`` on completion otherwise), as on S3. All state changes happen on the hub's
event loop; only file copies run in its executor.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import re
import shutil
import tempfile
import time
import uuid
import zlib
from bisect import bisect_left, insort
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .http import FileBody, FileParts, http_date
from .s3_xml import S3Error, contents_tail
from .synth import Body

__all__ = [
    "MIN_PART_SIZE",
    "Bucket",
    "S3Object",
    "ScratchStore",
    "SpoolFile",
    "Upload",
    "multipart_etag",
]

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000
#: Request headers kept with an object and sent back with it.
STORED_HEADERS = ("cache-control", "content-disposition", "content-encoding", "content-language")
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
#: ``x-amz-checksum-*`` algorithms the hub verifies (others, e.g. CRC32C, are accepted unchecked).
CHECKSUMS = ("crc32", "sha1", "sha256")


@dataclass(slots=True)
class S3Object:
    """One object: its validators, and its bytes when they are at hand.

    Read-only dataset objects leave ``body`` unset (it is resolved per request from ``source``,
    a storage path); writable objects always have it.
    """

    size: int
    etag: str  # quoted
    last_modified: float
    content_type: str
    body: Body | FileBody | FileParts | None = None
    extra: tuple[tuple[str, str], ...] = ()  # stored headers, x-amz-meta-*
    source: str = ""
    version: int = 0
    checksums: tuple[tuple[str, str], ...] = ()  # (x-amz-checksum-<alg>, value)
    _tail: str = ""
    _headers: str = ""

    def tail(self) -> str:
        """Its ``<Contents>`` XML after ``<Key>`` (cached)."""
        if not self._tail:
            self._tail = contents_tail(self.etag, self.size, self.last_modified)
        return self._tail

    def headers(self) -> str:
        """Rendered headers of a full ``200`` answer, without ``Content-Length`` (cached)."""
        if not self._headers:
            lines = [
                f"Content-Type: {self.content_type}\r\nETag: {self.etag}\r\n"
                f"Last-Modified: {http_date(self.last_modified)}\r\nAccept-Ranges: bytes\r\n"
            ]
            lines += [f"{name}: {value}\r\n" for name, value in self.extra]
            self._headers = "".join(lines)
        return self._headers

    def files(self) -> list[Path]:
        """The scratch files holding its bytes."""
        if isinstance(self.body, FileParts):
            return [p.path for p in self.body.parts]
        if isinstance(self.body, FileBody):
            return [self.body.path]
        return []


def multipart_etag(digests: Iterable[bytes]) -> str:
    """S3's ETag of a multipart object from its parts' binary MD5s (quoted)."""
    parts = list(digests)
    return f'"{hashlib.md5(b"".join(parts)).hexdigest()}-{len(parts)}"'


class Digests:
    """MD5 of a body plus the checksums its request announced, computed as bytes arrive."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.md5 = hashlib.md5()
        self.crc32: int | None = 0 if "x-amz-checksum-crc32" in headers else None
        self.hashes = {
            alg: hashlib.new(alg)
            for alg in ("sha1", "sha256")
            if f"x-amz-checksum-{alg}" in headers
        }

    def update(self, data: bytes | memoryview) -> None:
        """Add the next bytes."""
        self.md5.update(data)
        if self.crc32 is not None:
            self.crc32 = zlib.crc32(data, self.crc32)
        for h in self.hashes.values():
            h.update(data)

    def verify(self, headers: dict[str, str]) -> tuple[tuple[str, str], ...]:
        """Check ``Content-MD5`` and ``x-amz-checksum-*``; the checksums to store and return."""
        sent = headers.get("content-md5")
        if sent is not None and sent.strip() != base64.b64encode(self.md5.digest()).decode():
            raise S3Error(
                400, "BadDigest", "The Content-MD5 you specified did not match what we received."
            )
        out = []
        got: dict[str, bytes] = {k: h.digest() for k, h in self.hashes.items()}
        if self.crc32 is not None:
            got["crc32"] = self.crc32.to_bytes(4, "big")
        for alg, digest in got.items():
            name = f"x-amz-checksum-{alg}"
            value = base64.b64encode(digest).decode()
            if headers[name].strip() != value:
                raise S3Error(
                    400,
                    "BadDigest",
                    f"The {alg.upper()} you specified did not match the calculated checksum.",
                )
            out.append((name, value))
        return tuple(out)


class SpoolFile:
    """A :class:`~.http.BodySink` writing a request body to a scratch file as it arrives."""

    def __init__(self, path: Path, headers: dict[str, str]) -> None:
        self.path = path
        self.digests = Digests(headers)
        self.size = 0
        self.error: OSError | None = None
        self._claimed = False
        self._fh = open(path, "wb")  # noqa: SIM115 - closed by close()/discard()

    def write(self, data: bytes | memoryview) -> None:
        """Append body bytes (a write error is kept and reported when the body is used)."""
        if self.error is None:
            try:
                self._fh.write(data)
            except OSError as exc:
                self.error = exc
        self.digests.update(data)
        self.size += len(data)

    def close(self) -> None:
        """The body is complete."""
        if not self._fh.closed:
            try:
                self._fh.close()
            except OSError as exc:
                self.error = self.error or exc

    def discard(self) -> None:
        """Remove the file unless it was claimed (idempotent)."""
        self.close()
        if not self._claimed:
            self._claimed = True
            self.path.unlink(missing_ok=True)

    def claim(self, dest: Path) -> None:
        """Move the finished body to ``dest`` (it belongs to an object or part from now on)."""
        if self.error is not None:
            raise S3Error(500, "InternalError", f"could not store the body: {self.error}")
        os.replace(self.path, dest)
        self._claimed = True


@dataclass(slots=True)
class Part:
    """One uploaded part of a multipart upload."""

    number: int
    body: FileBody
    digest: bytes
    last_modified: float

    @property
    def etag(self) -> str:
        """Its quoted ETag."""
        return f'"{self.digest.hex()}"'


@dataclass
class Upload:
    """A multipart upload in progress."""

    upload_id: str
    key: str
    initiated: float
    content_type: str
    extra: tuple[tuple[str, str], ...]
    parts: dict[int, Part] = field(default_factory=dict)


@dataclass
class Bucket:
    """A writable bucket: sorted keys, objects, uploads in progress."""

    name: str
    created: float
    keys: list[str] = field(default_factory=list)
    objects: dict[str, S3Object] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)


def stored_headers(headers: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The request headers an object keeps: standard ones and ``x-amz-meta-*``."""
    out = [(name.title(), headers[name]) for name in STORED_HEADERS if name in headers]
    out += [(k, v) for k, v in headers.items() if k.startswith("x-amz-meta-")]
    return tuple(out)


class ScratchStore:
    """The hub's writable buckets (``scratch`` exists from the start; more via CreateBucket)."""

    def __init__(self, parent: Path | None = None, buckets: Iterable[str] = ("scratch",)) -> None:
        self._parent = parent
        self._root: Path | None = None
        self._ids = itertools.count(1)
        self._log: BinaryIO | None = None
        self._log_path: Path | None = None
        self._log_size = 0
        self.buckets: dict[str, Bucket] = {b: Bucket(b, time.time()) for b in buckets}

    # -- files ---------------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        """The scratch folder (made on first use)."""
        if self._root is None:
            if self._parent is not None:
                self._parent.mkdir(parents=True, exist_ok=True)
            self._root = Path(tempfile.mkdtemp(prefix="mlhub-hub-s3-", dir=self._parent))
        return self._root

    def new_path(self, kind: str) -> Path:
        """A fresh file name in the scratch folder."""
        return self.root / f"{kind}-{next(self._ids)}"

    def spool(self, headers: dict[str, str]) -> SpoolFile:
        """A sink for a large request body."""
        return SpoolFile(self.new_path("in"), headers)

    def append(self, data: bytes) -> FileBody:
        """Store a small body at the end of the log file."""
        if self._log is None:
            self._log_path = self.new_path("log")
            self._log = open(self._log_path, "ab", buffering=0)  # noqa: SIM115 - closed by close()
        assert self._log_path is not None
        offset = self._log_size
        self._log.write(data)
        self._log_size += len(data)
        return FileBody(self._log_path, len(data), offset)

    def _remove(self, paths: Iterable[Path]) -> None:
        """Delete object or part files (never the shared log)."""
        for path in paths:
            if path != self._log_path:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        """Forget every object and remove the scratch folder."""
        for bucket in self.buckets.values():
            bucket.keys.clear()
            bucket.objects.clear()
            bucket.uploads.clear()
        if self._log is not None:
            self._log.close()
            self._log = self._log_path = None
            self._log_size = 0
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    # -- buckets -------------------------------------------------------------------------------

    def bucket(self, name: str) -> Bucket | None:
        """The writable bucket ``name``, if it exists."""
        return self.buckets.get(name)

    def create_bucket(self, name: str) -> None:
        """Create an empty bucket (``BucketAlreadyOwnedByYou`` if it exists)."""
        if not BUCKET_NAME.match(name) or ".." in name:
            raise S3Error(
                400, "InvalidBucketName", "The specified bucket is not valid.", BucketName=name
            )
        if name in self.buckets:
            raise S3Error(
                409,
                "BucketAlreadyOwnedByYou",
                "Your previous request to create the named bucket succeeded and you already "
                "own it.",
                BucketName=name,
            )
        self.buckets[name] = Bucket(name, time.time())

    def delete_bucket(self, name: str) -> None:
        """Delete an empty bucket (``BucketNotEmpty`` otherwise)."""
        bucket = self.buckets[name]
        if bucket.objects or bucket.uploads:
            raise S3Error(
                409,
                "BucketNotEmpty",
                "The bucket you tried to delete is not empty",
                BucketName=name,
            )
        del self.buckets[name]

    # -- objects -------------------------------------------------------------------------------

    def put(
        self,
        bucket: Bucket,
        key: str,
        data: bytes | SpoolFile,
        headers: dict[str, str],
    ) -> S3Object:
        """Store ``data`` (a small body, or a streamed one) as ``key``; returns the object."""
        if isinstance(data, SpoolFile):
            checksums = data.digests.verify(headers)
            body = FileBody(self.new_path("obj"), data.size)
            data.claim(body.path)
            digest = data.digests.md5.digest()
        else:
            digests = Digests(headers)
            digests.update(data)
            checksums = digests.verify(headers)
            body = self.append(data)
            digest = digests.md5.digest()
        obj = S3Object(
            body.size,
            f'"{digest.hex()}"',
            time.time(),
            headers.get("content-type") or "binary/octet-stream",
            body,
            stored_headers(headers),
            checksums=checksums,
        )
        self.commit(bucket, key, obj)
        return obj

    def commit(self, bucket: Bucket, key: str, obj: S3Object) -> None:
        """Make ``obj`` the object at ``key`` (removing the files of the one it replaces)."""
        old = bucket.objects.get(key)
        if old is None:
            insort(bucket.keys, key)
        else:
            self._remove(old.files())
        bucket.objects[key] = obj

    def delete(self, bucket: Bucket, key: str) -> bool:
        """Delete ``key``; whether it existed."""
        obj = bucket.objects.pop(key, None)
        if obj is None:
            return False
        del bucket.keys[bisect_left(bucket.keys, key)]
        self._remove(obj.files())
        return True

    def link_copy(self, obj: S3Object) -> FileBody | FileParts:
        """New scratch files with the bytes of a writable object (hard links, or the same
        slice of the append-only log: no copying)."""
        assert isinstance(obj.body, FileBody | FileParts)
        parts = obj.body.parts if isinstance(obj.body, FileParts) else (obj.body,)
        out = []
        for part in parts:
            if part.path == self._log_path:
                out.append(part)
                continue
            dest = self.new_path("obj")
            os.link(part.path, dest)
            out.append(FileBody(dest, part.size))
        return FileParts(tuple(out)) if isinstance(obj.body, FileParts) else out[0]

    # -- multipart uploads ---------------------------------------------------------------------

    def create_upload(self, bucket: Bucket, key: str, headers: dict[str, str]) -> Upload:
        """Start a multipart upload."""
        upload = Upload(
            uuid.uuid4().hex,
            key,
            time.time(),
            headers.get("content-type") or "binary/octet-stream",
            stored_headers(headers),
        )
        bucket.uploads[upload.upload_id] = upload
        return upload

    def upload(self, bucket: Bucket, upload_id: str) -> Upload:
        """An upload in progress (``NoSuchUpload`` otherwise)."""
        upload = bucket.uploads.get(upload_id)
        if upload is None:
            raise S3Error(
                404,
                "NoSuchUpload",
                "The specified upload does not exist. The upload ID may be invalid, or the "
                "upload may have been aborted or completed.",
                UploadId=upload_id,
            )
        return upload

    def upload_part(
        self, upload: Upload, number: int, data: bytes | SpoolFile, headers: dict[str, str]
    ) -> Part:
        """Store part ``number`` (replacing an earlier upload of the same number)."""
        if not 1 <= number <= MAX_PARTS:
            raise S3Error(
                400,
                "InvalidArgument",
                f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive",
                ArgumentName="partNumber",
                ArgumentValue=number,
            )
        path = self.new_path("part")
        if isinstance(data, SpoolFile):
            data.digests.verify(headers)
            data.claim(path)
            size, digest = data.size, data.digests.md5.digest()
        else:
            digests = Digests(headers)
            digests.update(data)
            digests.verify(headers)
            path.write_bytes(data)
            size, digest = len(data), digests.md5.digest()
        part = Part(number, FileBody(path, size), digest, time.time())
        old = upload.parts.get(number)
        if old is not None:
            self._remove([old.body.path])
        upload.parts[number] = part
        return part

    def complete(self, bucket: Bucket, upload: Upload, chosen: list[tuple[int, str]]) -> S3Object:
        """Assemble the listed ``(part number, ETag)`` into the object (S3's checks and ETag)."""
        if not chosen:
            raise S3Error(
                400, "MalformedXML", "The XML you provided was not well-formed or did not validate"
            )
        parts: list[Part] = []
        previous = 0
        for number, etag in chosen:
            if number <= previous:
                raise S3Error(
                    400,
                    "InvalidPartOrder",
                    "The list of parts was not in ascending order. Parts must be ordered by "
                    "part number.",
                    UploadId=upload.upload_id,
                )
            previous = number
            part = upload.parts.get(number)
            if part is None or etag.strip().strip('"') != part.digest.hex():
                raise S3Error(
                    400,
                    "InvalidPart",
                    "One or more of the specified parts could not be found. The part may not "
                    "have been uploaded, or the specified entity tag may not match the part's "
                    "entity tag.",
                    UploadId=upload.upload_id,
                    PartNumber=number,
                    ETag=etag,
                )
            parts.append(part)
        for part in parts[:-1]:
            if part.body.size < MIN_PART_SIZE:
                raise S3Error(
                    400,
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed object size.",
                    ProposedSize=part.body.size,
                    MinSizeAllowed=MIN_PART_SIZE,
                    PartNumber=part.number,
                    ETag=part.etag,
                )
        used = {p.number for p in parts}
        self._remove([p.body.path for n, p in upload.parts.items() if n not in used])
        del bucket.uploads[upload.upload_id]
        body = FileParts(tuple(p.body for p in parts))
        obj = S3Object(
            body.size,
            multipart_etag(p.digest for p in parts),
            time.time(),
            upload.content_type,
            body,
            upload.extra,
        )
        self.commit(bucket, upload.key, obj)
        return obj

    def abort(self, bucket: Bucket, upload: Upload) -> None:
        """Drop an upload and its parts."""
        del bucket.uploads[upload.upload_id]
        self._remove([p.body.path for p in upload.parts.values()])
