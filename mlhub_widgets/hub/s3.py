"""The hub's S3 origin: a path-style S3 REST API on its own port (``hub.s3_url``).

Buckets:

* ``radiantearth`` (read-only): every dataset with a catalogue, in Source Cooperative's layout
  (see :mod:`.s3_datasets`): ``aws s3 sync s3://radiantearth/<dataset>/ DIR --endpoint-url
  {hub.s3_url} --no-sign-request`` copies its static catalogue and assets.
* ``scratch`` (writable, empty at start) and any bucket made with ``CreateBucket``: objects and
  multipart uploads in a scratch folder removed when the hub stops (see :mod:`.s3_store`).

Operations: ``ListBuckets``; ``ListObjectsV2`` and ``ListObjects`` (prefix, delimiter, max-keys up
to 1,000, continuation-token / start-after / marker, ``encoding-type=url``); ``HeadBucket``,
``GetBucketLocation``, ``CreateBucket``, ``DeleteBucket``; ``GetObject`` / ``HeadObject`` with
``Range: bytes=a-b`` (206 + ``Content-Range``; ``InvalidRange`` 416), ``If-Range``, ``If-Match``,
``If-None-Match``, ``If-Modified-Since``, ``If-Unmodified-Since``; ``PutObject`` (``Content-MD5``
and ``x-amz-checksum-crc32|sha1|sha256`` verified; conditional ``If-None-Match: *`` /
``If-Match``), ``CopyObject``, ``DeleteObject``, ``DeleteObjects``; multipart uploads (create,
upload part, complete, abort, ``ListMultipartUploads``, ``ListParts``). Anything else answers
``NotImplemented`` (501). Errors are S3's XML ``<Error>`` documents with S3's codes and statuses.

Requests may be anonymous (``--no-sign-request``, ``skip_signature=True``) or signed (SigV4
``Authorization`` header or presigned query): **signatures are not verified** — this is a test
server; any credentials work. Virtual-hosted-style addressing is not supported (clients use path
style against an IP endpoint anyway). Requests are counted by kind: ``s3-list``, ``s3-object``,
``s3-multipart``, ``s3-bucket`` (``hub.count("s3-object", "GET")``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote
from xml.sax.saxutils import escape

from .faults import FaultConfig
from .http import MAX_BODY, BodySink, FileBody, FileParts, Request, Response, http_date
from .s3_datasets import DATASETS_BUCKET, DatasetBucket, DatasetsHub
from .s3_store import Bucket, S3Object, ScratchStore, SpoolFile, Upload, stored_headers
from .s3_xml import (
    XML_TYPE,
    ListWalk,
    S3Error,
    document,
    element_texts,
    error_xml,
    iso_time,
    list_v1_xml,
    list_v2_xml,
    parse_xml,
    successor,
    token_bound,
)
from .storage import parse_range
from .synth import Body


class S3Hub(DatasetsHub, Protocol):
    """What the S3 routes need from the :class:`~.server.Hub` they serve."""

    @property
    def faults(self) -> FaultConfig: ...
    @property
    def s3_url(self) -> str: ...


__all__ = ["DATASETS_BUCKET", "SCRATCH_BUCKET", "S3Routes"]

log = logging.getLogger(__name__)

SCRATCH_BUCKET = "scratch"
MAX_KEYS = 1000
#: Query keys naming S3 sub-resources the hub does not implement.
UNSUPPORTED = frozenset(
    (
        "acl", "tagging", "versioning", "policy", "cors", "lifecycle", "website", "logging",
        "notification", "replication", "encryption", "object-lock", "retention", "legal-hold",
        "torrent", "versions", "restore", "select", "attributes", "ownershipControls",
        "publicAccessBlock", "requestPayment", "accelerate", "analytics", "inventory", "metrics",
        "intelligent-tiering", "policyStatus",
    )
)  # fmt: skip
CONDITIONS = frozenset(
    ("range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since")
)
FAULT_CODES = {403: "AccessDenied", 404: "NoSuchKey", 429: "SlowDown", 503: "SlowDown"}


class _Pending(Exception):
    """Raised by a route that needs slow work (an index build, a document) off the loop."""

    def __init__(self, work: Callable[[], object]) -> None:
        super().__init__("pending")
        self.work = work


class NullSink:
    """Swallows the body of a request that will be refused (it is never kept in memory)."""

    error = None

    def write(self, data: bytes | memoryview) -> None:
        """Drop ``data``."""

    def close(self) -> None:
        """Nothing to finish."""

    def discard(self) -> None:
        """Nothing to remove."""


def _first(req: Request, name: str, default: str | None = None) -> str | None:
    values = req.query.get(name)
    return values[0] if values else default


def _etags(value: str) -> list[str]:
    return [t.strip().removeprefix("W/").strip('"') for t in value.split(",")]


def _http_time(value: str) -> float | None:
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


class S3Routes:
    """The S3 origin of one :class:`Hub`."""

    def __init__(self, hub: S3Hub, scratch_dir: Path | None = None) -> None:
        self.hub = hub
        self.datasets = DatasetBucket(hub)
        self.scratch = ScratchStore(scratch_dir, (SCRATCH_BUCKET,))
        self._ids = itertools.count(1)
        self.created = time.time()

    def close(self) -> None:
        """Remove every stored object and the scratch folder."""
        self.scratch.close()

    # -- classification ------------------------------------------------------------------------

    def kind(self, req: Request) -> str:
        """Counter kind: ``s3-list``, ``s3-object``, ``s3-multipart`` or ``s3-bucket``."""
        bucket, _, key = req.path[1:].partition("/")
        q = req.query
        if not bucket:
            return "s3-list"
        if not key:
            if req.method == "POST":
                return "s3-object"  # DeleteObjects
            if req.method == "GET" and "location" not in q and not (q.keys() & UNSUPPORTED):
                return "s3-list"
            return "s3-bucket"
        if "uploadId" in q:
            return "s3-list" if req.method == "GET" else "s3-multipart"
        if req.method == "POST" and "uploads" in q:
            return "s3-multipart"
        return "s3-object"

    def sink(
        self, method: str, target: str, headers: dict[str, str], length: int
    ) -> BodySink | None:
        """Where a large request body goes: a scratch file for an object or part upload,
        memory for an XML document up to 16 MiB, nowhere for anything else."""
        if method == "POST":
            return None if length <= MAX_BODY else NullSink()
        bucket, _, key = unquote(target.partition("?")[0])[1:].partition("/")
        if method == "PUT" and key and self.scratch.bucket(bucket) is not None:
            return self.scratch.spool(headers)
        return NullSink()

    # -- dispatch ------------------------------------------------------------------------------

    def handle(self, req: Request) -> Response | Awaitable[Response]:
        """Answer one request."""
        try:
            return self._answer(req, slow_ok=False)
        except _Pending as pending:
            return self._after(req, pending.work)

    async def _after(self, req: Request, work: Callable[[], object]) -> Response:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, work)
        except Exception as exc:  # answered as an S3 error; the log keeps the traceback
            log.exception("hub S3 request %s %s failed", req.method, req.target)
            return self.error(req, S3Error(500, "InternalError", str(exc)))
        result = self._answer(req, slow_ok=True)
        return await result if not isinstance(result, Response) else result

    def _answer(self, req: Request, *, slow_ok: bool) -> Response | Awaitable[Response]:
        try:
            return self._route(req, slow_ok)
        except S3Error as err:
            return self.error(req, err)
        finally:
            if req.sink is not None:
                req.sink.discard()  # a no-op once an object or part claimed the file

    def error(self, req: Request, err: S3Error) -> Response:
        """The XML error answer of ``err``."""
        rid = f"{next(self._ids):016X}"
        body = Body.of(error_xml(err, req.path, rid))
        headers = [("Content-Type", XML_TYPE), ("x-amz-request-id", rid)]
        return Response(err.status, headers, body, send_body=req.method != "HEAD")

    def fault_body(self, status: int) -> bytes:
        """The XML body of a fault injected with ``status`` (see :class:`.FaultConfig`)."""
        code = FAULT_CODES.get(status, "InternalError")
        err = S3Error(status, code, "Injected fault")
        return error_xml(err, "", f"{next(self._ids):016X}")

    def _route(self, req: Request, slow_ok: bool) -> Response | Awaitable[Response]:
        name, _, key = req.path[1:].partition("/")
        self._check_faults(req, name, key)
        if req.method == "POST" and isinstance(req.sink, NullSink):
            raise S3Error(400, "MaxMessageLengthExceeded", "Your request was too big.")
        if not name:
            if req.method not in ("GET", "HEAD"):
                raise S3Error(405, "MethodNotAllowed", "The specified method is not allowed.")
            return self._list_buckets(req)
        if req.query.keys() & UNSUPPORTED:
            raise S3Error(501, "NotImplemented", "This sub-resource is not implemented by the hub.")
        if name == DATASETS_BUCKET:
            return self._datasets_request(req, key, slow_ok)
        bucket = self.scratch.bucket(name)
        if bucket is None:
            if not key and req.method == "PUT":
                self.scratch.create_bucket(name)
                return Response(200, [("Location", f"/{name}")])
            raise S3Error(
                404, "NoSuchBucket", "The specified bucket does not exist", BucketName=name
            )
        if not key:
            return self._bucket_request(req, bucket)
        return self._object_request(req, bucket, key)

    def _check_faults(self, req: Request, bucket: str, key: str) -> None:
        faults = self.hub.faults
        if not (faults.forbidden or faults.missing):
            return
        if req.path in faults.forbidden or f"/{bucket}" in faults.forbidden:
            raise S3Error(403, "AccessDenied", "Access Denied")
        if req.path in faults.missing:
            if key:
                raise S3Error(404, "NoSuchKey", "The specified key does not exist.", Key=key)
            raise S3Error(404, "NoSuchBucket", "The specified bucket does not exist")

    # -- the read-only datasets bucket ---------------------------------------------------------

    def _datasets_request(
        self, req: Request, key: str, slow_ok: bool
    ) -> Response | Awaitable[Response]:
        m = req.method
        if not key:
            if m == "PUT":
                raise S3Error(
                    409,
                    "BucketAlreadyExists",
                    "The requested bucket name is not available.",
                    BucketName=DATASETS_BUCKET,
                )
            if m in ("GET", "HEAD"):
                return self._bucket_reads(req, None)
            raise S3Error(403, "AccessDenied", "Access Denied")
        if m not in ("GET", "HEAD"):
            raise S3Error(403, "AccessDenied", "Access Denied")
        ds_id = key.partition("/")[0]
        if not self.datasets.has_dataset(ds_id):
            raise self._no_such_key(key)
        if not self.datasets.ready(ds_id):
            if not slow_ok:
                raise _Pending(lambda: self.datasets.index(ds_id))
            self.datasets.index(ds_id)
        obj = self.datasets.lookup(key)
        if obj is None:
            raise self._no_such_key(key)
        if m == "HEAD":  # the listing knows the size: no need to render or generate the bytes
            return self._serve(req, obj, None)
        if not self.datasets.body_cheap(obj) and not slow_ok:
            raise _Pending(lambda: self.datasets.body(obj))
        body = self.datasets.body(obj)
        if body is None:
            raise self._no_such_key(key)
        return self._serve(req, obj, body)

    @staticmethod
    def _no_such_key(key: str) -> S3Error:
        return S3Error(404, "NoSuchKey", "The specified key does not exist.", Key=key)

    # -- bucket-level requests -----------------------------------------------------------------

    def _bucket_request(self, req: Request, bucket: Bucket) -> Response:
        m = req.method
        if m in ("GET", "HEAD"):
            return self._bucket_reads(req, bucket)
        if m == "PUT":
            self.scratch.create_bucket(bucket.name)  # raises: it exists
        if m == "DELETE":
            self.scratch.delete_bucket(bucket.name)
            return Response(204)
        if m == "POST" and "delete" in req.query:
            return self._delete_objects(req, bucket)
        raise S3Error(405, "MethodNotAllowed", "The specified method is not allowed.")

    def _bucket_reads(self, req: Request, bucket: Bucket | None) -> Response:
        """HEAD, ``?location``, ``?uploads`` and listings of a bucket (None: the datasets')."""
        name = DATASETS_BUCKET if bucket is None else bucket.name
        if req.method == "HEAD":
            return Response(200, [("x-amz-bucket-region", "us-east-1")])
        if "location" in req.query:
            return self._xml(document("LocationConstraint", ""))
        if "uploads" in req.query:
            return self._list_uploads(req, name, bucket)
        return self._list_objects(req, name, bucket)

    def _list_buckets(self, req: Request) -> Response:
        rows = [(DATASETS_BUCKET, self.created)] + [
            (b.name, b.created) for b in self.scratch.buckets.values()
        ]
        body = "".join(
            f"<Bucket><Name>{escape(n)}</Name><CreationDate>{iso_time(t)}</CreationDate></Bucket>"
            for n, t in sorted(rows)
        )
        owner = "<Owner><ID>mlhub-hub</ID><DisplayName>mlhub-hub</DisplayName></Owner>"
        return self._xml(document("ListAllMyBucketsResult", f"{owner}<Buckets>{body}</Buckets>"))

    def _list_objects(self, req: Request, name: str, bucket: Bucket | None) -> Response:
        v2 = _first(req, "list-type") == "2"
        prefix = _first(req, "prefix", "") or ""
        delimiter = _first(req, "delimiter", "") or ""
        encoding = _first(req, "encoding-type")
        if encoding not in (None, "url"):
            raise S3Error(400, "InvalidArgument", "Invalid Encoding Method specified in Request")
        try:
            max_keys = min(MAX_KEYS, int(_first(req, "max-keys", str(MAX_KEYS)) or MAX_KEYS))
        except ValueError:
            max_keys = -1
        if max_keys < 0:
            raise S3Error(
                400, "InvalidArgument", "Provided max-keys not an integer or within integer range"
            )
        token = _first(req, "continuation-token") if v2 else None
        start_after = _first(req, "start-after") if v2 else None
        marker = "" if v2 else _first(req, "marker", "") or ""
        lower: tuple[str, bool] = ("", True)
        if token is not None:
            lower = token_bound(token)
        elif start_after:
            lower = (start_after, False)
        elif marker:
            prefix_marker = delimiter and marker.endswith(delimiter)
            lower = (successor(marker), True) if prefix_marker else (marker, False)
        walk = ListWalk(prefix, delimiter, lower, max_keys)
        params = tuple(sorted((k, tuple(v)) for k, v in req.query.items() if k[:6] != "X-Amz-"))
        if bucket is None:
            cached = self.datasets.page(params)
            if cached is not None:
                return self._xml(cached)
            needed = self.datasets.needed(walk)
            if needed:
                raise _Pending(lambda: [self.datasets.index(d) for d in needed])
            self.datasets.fill(walk)
            rows = []
            for k, _ in walk.keys:
                obj = self.datasets.lookup(k)
                if obj is not None:
                    rows.append((k, obj.tail()))
        else:
            walk.feed(bucket.keys)
            rows = [(k, bucket.objects[k].tail()) for k, _ in walk.keys]
        url = encoding == "url"
        if v2:
            data = list_v2_xml(name, walk, rows, url=url, token=token, start_after=start_after)
        else:
            data = list_v1_xml(name, walk, rows, url=url, marker=marker)
        if bucket is None:
            self.datasets.keep_page(params, data)
        return self._xml(data)

    def _list_uploads(self, req: Request, name: str, bucket: Bucket | None) -> Response:
        prefix = _first(req, "prefix", "") or ""
        key_marker = _first(req, "key-marker", "") or ""
        uploads = sorted(
            (u for u in (bucket.uploads.values() if bucket else ()) if u.key.startswith(prefix)),
            key=lambda u: (u.key, u.initiated),
        )
        uploads = [u for u in uploads if u.key > key_marker]
        try:
            limit = min(MAX_KEYS, int(_first(req, "max-uploads", str(MAX_KEYS)) or MAX_KEYS))
        except ValueError:
            raise S3Error(400, "InvalidArgument", "max-uploads must be an integer") from None
        page, more = uploads[:limit], len(uploads) > limit
        rows = "".join(
            f"<Upload><Key>{escape(u.key)}</Key><UploadId>{u.upload_id}</UploadId>"
            f"<StorageClass>STANDARD</StorageClass><Initiated>{iso_time(u.initiated)}</Initiated>"
            "</Upload>"
            for u in page
        )
        nxt = (
            f"<NextKeyMarker>{escape(page[-1].key)}</NextKeyMarker>"
            f"<NextUploadIdMarker>{page[-1].upload_id}</NextUploadIdMarker>"
            if more and page
            else ""
        )
        body = (
            f"<Bucket>{escape(name)}</Bucket><KeyMarker>{escape(key_marker)}</KeyMarker>"
            f"<UploadIdMarker></UploadIdMarker>{nxt}<Prefix>{escape(prefix)}</Prefix>"
            f"<MaxUploads>{limit}</MaxUploads><IsTruncated>{'true' if more else 'false'}"
            f"</IsTruncated>{rows}"
        )
        return self._xml(document("ListMultipartUploadsResult", body))

    def _delete_objects(self, req: Request, bucket: Bucket) -> Response:
        root = parse_xml(req.body)
        quiet = (element_texts(root, "Quiet") or "").lower() == "true"
        out = []
        for el in root.findall("Object"):
            key = element_texts(el, "Key")
            if not key:
                raise S3Error(
                    400,
                    "MalformedXML",
                    "The XML you provided was not well-formed or did not validate",
                )
            self.scratch.delete(bucket, key)
            if not quiet:
                out.append(f"<Deleted><Key>{escape(key)}</Key></Deleted>")
        return self._xml(document("DeleteResult", "".join(out)))

    # -- object-level requests -----------------------------------------------------------------

    def _object_request(
        self, req: Request, bucket: Bucket, key: str
    ) -> Response | Awaitable[Response]:
        m, q = req.method, req.query
        upload_id = _first(req, "uploadId")
        if upload_id is not None:
            upload = self.scratch.upload(bucket, upload_id)
            if upload.key != key:
                raise self._no_such_upload(upload_id)
            if m == "PUT":
                number = _first(req, "partNumber", "") or ""
                if not number.isdigit():
                    raise S3Error(400, "InvalidArgument", "Part number must be an integer")
                part = self.scratch.upload_part(upload, int(number), self._body(req), req.headers)
                return Response(200, [("ETag", part.etag)])
            if m == "POST":
                chosen = []
                for el in parse_xml(req.body).findall("Part"):
                    number = element_texts(el, "PartNumber") or ""
                    if not number.strip().isdigit():
                        raise S3Error(
                            400,
                            "MalformedXML",
                            "The XML you provided was not well-formed or did not validate",
                        )
                    chosen.append((int(number), element_texts(el, "ETag") or ""))
                obj = self.scratch.complete(bucket, upload, chosen)
                location = f"{self.hub.s3_url}/{bucket.name}/{key}"
                etag = obj.etag.replace('"', "&quot;")
                body = (
                    f"<Location>{escape(location)}</Location><Bucket>{escape(bucket.name)}</Bucket>"
                    f"<Key>{escape(key)}</Key><ETag>{etag}</ETag>"
                )
                return self._xml(document("CompleteMultipartUploadResult", body))
            if m == "DELETE":
                self.scratch.abort(bucket, upload)
                return Response(204)
            if m == "GET":
                return self._list_parts(bucket, upload)
            raise S3Error(405, "MethodNotAllowed", "The specified method is not allowed.")
        if m == "POST" and "uploads" in q:
            upload = self.scratch.create_upload(bucket, key, req.headers)
            body = (
                f"<Bucket>{escape(bucket.name)}</Bucket><Key>{escape(key)}</Key>"
                f"<UploadId>{upload.upload_id}</UploadId>"
            )
            return self._xml(document("InitiateMultipartUploadResult", body))
        if m in ("GET", "HEAD"):
            found = bucket.objects.get(key)
            if found is None or found.body is None:
                raise self._no_such_key(key)
            return self._serve(req, found, found.body)
        if m == "PUT":
            self._check_put_conditions(req, bucket, key)
            if "x-amz-copy-source" in req.headers:
                return self._copy(req, bucket, key)
            obj = self.scratch.put(bucket, key, self._body(req), req.headers)
            return Response(200, [("ETag", obj.etag), *obj.checksums])
        if m == "DELETE":
            self.scratch.delete(bucket, key)
            return Response(204)
        raise S3Error(405, "MethodNotAllowed", "The specified method is not allowed.")

    @staticmethod
    def _no_such_upload(upload_id: str) -> S3Error:
        return S3Error(
            404, "NoSuchUpload", "The specified upload does not exist.", UploadId=upload_id
        )

    @staticmethod
    def _body(req: Request) -> bytes | SpoolFile:
        sink = req.sink
        if isinstance(sink, SpoolFile):
            return sink
        return req.body

    def _check_put_conditions(self, req: Request, bucket: Bucket, key: str) -> None:
        existing = bucket.objects.get(key)
        inm = req.headers.get("if-none-match")
        if inm is not None and inm.strip() == "*" and existing is not None:
            raise S3Error(
                412,
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
                Condition="If-None-Match",
            )
        im = req.headers.get("if-match")
        if im is not None:
            if existing is None:
                raise self._no_such_key(key)
            if existing.etag.strip('"') not in _etags(im) and im.strip() != "*":
                raise S3Error(
                    412,
                    "PreconditionFailed",
                    "At least one of the pre-conditions you specified did not hold",
                    Condition="If-Match",
                )

    def _list_parts(self, bucket: Bucket, upload: Upload) -> Response:
        rows = "".join(
            f"<Part><PartNumber>{p.number}</PartNumber><LastModified>{iso_time(p.last_modified)}"
            f"</LastModified><ETag>{p.etag.replace(chr(34), '&quot;')}</ETag>"
            f"<Size>{p.body.size}</Size></Part>"
            for _, p in sorted(upload.parts.items())
        )
        last = max(upload.parts, default=0)
        body = (
            f"<Bucket>{escape(bucket.name)}</Bucket><Key>{escape(upload.key)}</Key>"
            f"<UploadId>{upload.upload_id}</UploadId><PartNumberMarker>0</PartNumberMarker>"
            f"<NextPartNumberMarker>{last}</NextPartNumberMarker><MaxParts>10000</MaxParts>"
            f"<IsTruncated>false</IsTruncated><StorageClass>STANDARD</StorageClass>{rows}"
        )
        return self._xml(document("ListPartsResult", body))

    def _copy(self, req: Request, bucket: Bucket, key: str) -> Response | Awaitable[Response]:
        source = unquote(req.headers["x-amz-copy-source"].partition("?")[0]).lstrip("/")
        src_name, _, src_key = source.partition("/")
        if not src_key:
            raise S3Error(
                400,
                "InvalidArgument",
                "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            )
        replace = req.headers.get("x-amz-metadata-directive", "COPY").upper() == "REPLACE"

        def finish(src: S3Object, body: FileBody | FileParts) -> Response:
            ctype = (
                (req.headers.get("content-type") or src.content_type)
                if replace
                else src.content_type
            )
            extra = stored_headers(req.headers) if replace else src.extra
            obj = S3Object(src.size, src.etag, time.time(), ctype, body, extra)
            self.scratch.commit(bucket, key, obj)
            etag = obj.etag.replace('"', "&quot;")
            doc = f"<LastModified>{iso_time(obj.last_modified)}</LastModified><ETag>{etag}</ETag>"
            return self._xml(document("CopyObjectResult", doc))

        if src_name == DATASETS_BUCKET:
            ds_id = src_key.partition("/")[0]
            if not self.datasets.has_dataset(ds_id):
                raise self._no_such_key(src_key)

            async def from_datasets() -> Response:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, self.datasets.index, ds_id)
                src = self.datasets.lookup(src_key)
                if src is None:
                    return self.error(req, self._no_such_key(src_key))
                dest = self.scratch.new_path("obj")
                found = await loop.run_in_executor(None, self._write_dataset_object, src, dest)
                if not found:
                    return self.error(req, self._no_such_key(src_key))
                return finish(src, FileBody(dest, src.size))

            return from_datasets()
        src_bucket = self.scratch.bucket(src_name)
        if src_bucket is None:
            raise S3Error(
                404, "NoSuchBucket", "The specified bucket does not exist", BucketName=src_name
            )
        src = src_bucket.objects.get(src_key)
        if src is None:
            raise self._no_such_key(src_key)
        return finish(src, self.scratch.link_copy(src))

    def _write_dataset_object(self, obj: S3Object, dest: Path) -> bool:
        body = self.datasets.body(obj)
        if body is None:
            return False
        if isinstance(body, FileBody):
            shutil.copyfile(body.path, dest)
            return True
        with open(dest, "wb") as fh:
            for chunk in body.chunks():
                fh.write(chunk)
        return True

    # -- reading objects -----------------------------------------------------------------------

    def _serve(
        self, req: Request, obj: S3Object, body: Body | FileBody | FileParts | None
    ) -> Response:
        """A 200/206/304/412/416 answer for ``obj`` with S3's conditional and range rules
        (``body`` may be None for HEAD)."""
        h = req.headers
        send = req.method == "GET"
        if not h.keys() & CONDITIONS:
            return Response(
                200, obj.headers(), body, send_body=send, length=self._length(body, obj.size)
            )
        etag = obj.etag.strip('"')
        modified = int(obj.last_modified)
        if "if-match" in h:
            if etag not in _etags(h["if-match"]) and h["if-match"].strip() != "*":
                raise self._precondition("If-Match")
        elif "if-unmodified-since" in h:
            since = _http_time(h["if-unmodified-since"])
            if since is not None and modified > since:
                raise self._precondition("If-Unmodified-Since")
        validators = [("ETag", obj.etag), ("Last-Modified", http_date(obj.last_modified))]
        if "if-none-match" in h:
            inm = h["if-none-match"]
            if inm.strip() == "*" or etag in _etags(inm):
                return Response(304, validators, None, length=0)
        elif "if-modified-since" in h:
            since = _http_time(h["if-modified-since"])
            if since is not None and modified <= since:
                return Response(304, validators, None, length=0)
        size = obj.size
        rng = parse_range(h.get("range", ""), size)
        if rng is not None and "if-range" in h and not self._if_range_ok(h["if-range"], obj):
            rng = None
        if rng == "unsatisfiable":
            raise S3Error(
                416,
                "InvalidRange",
                "The requested range is not satisfiable",
                RangeRequested=h.get("range", ""),
                ActualObjectSize=size,
            )
        if isinstance(rng, tuple):
            first, last = rng
            headers = obj.headers() + f"Content-Range: bytes {first}-{last}/{size}\r\n"
            length = self._length(body, last - first + 1)
            return Response(206, headers, body, first, last, send_body=send, length=length)
        return Response(200, obj.headers(), body, send_body=send, length=self._length(body, size))

    @staticmethod
    def _length(body: object, length: int) -> int | None:
        """The Content-Length to announce when there is no body at hand (HEAD)."""
        return length if body is None else None

    @staticmethod
    def _if_range_ok(value: str, obj: S3Object) -> bool:
        value = value.strip()
        if value.startswith(('"', "W/")):
            return value == obj.etag
        when = _http_time(value)
        return when is not None and int(when) == int(obj.last_modified)

    @staticmethod
    def _precondition(condition: str) -> S3Error:
        return S3Error(
            412,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
            Condition=condition,
        )

    @staticmethod
    def _xml(data: bytes) -> Response:
        return Response(200, [("Content-Type", XML_TYPE)], Body.of(data))
