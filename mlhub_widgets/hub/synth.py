"""Deterministic generated asset bytes.

The retired blob store held the real imagery; the hub serves *generated* stand-ins instead. An
asset's bytes are a pure function of its URL path, a version number (bumped by
``Hub.change_asset``) and its size, so every hub instance, test and benchmark sees the same files.

Generation is cheap: payload bytes are cut from one shared pseudo-random pool (4 MiB, made once),
and only the small structural header of each format is computed per file. Bodies up to
:data:`MATERIALIZE_LIMIT` are built as ``bytes``; larger ones are *virtual*: a header followed by a
window onto the pool repeated cyclically, streamed without ever existing in memory as a whole.
"""

from __future__ import annotations

import hashlib
import math
import random
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from . import formats

__all__ = [
    "MATERIALIZE_LIMIT",
    "Body",
    "default_size",
    "extension_for",
    "generate",
    "media_type_for",
    "path_hash",
    "pool",
    "pool_file",
    "synthetic_size",
]

POOL_SIZE = 4 * 1024 * 1024
POOL_SEED = 20220912
MATERIALIZE_LIMIT = 4 * 1024 * 1024
CHUNK = 1024 * 1024

_pool: bytes | None = None


def pool() -> bytes:
    """The shared pseudo-random byte pool (deterministic, built on first use)."""
    global _pool
    if _pool is None:
        _pool = random.Random(POOL_SEED).randbytes(POOL_SIZE)
    return _pool


_pool_file: BinaryIO | None = None
_pool_lock = threading.Lock()


def pool_file() -> BinaryIO:
    """An unlinked temporary file holding the pool twice, for zero-copy ``sendfile``.

    Any window of up to ``POOL_SIZE`` bytes starting within the first copy is contiguous.
    """
    global _pool_file
    with _pool_lock:
        if _pool_file is None:
            fh = tempfile.TemporaryFile(prefix="mlhub-hub-pool-")  # noqa: SIM115 - kept open
            fh.write(pool())
            fh.write(pool())
            fh.flush()
            _pool_file = fh
        return _pool_file


def path_hash(*parts: object) -> int:
    """A stable 64-bit hash of ``parts`` (independent of ``PYTHONHASHSEED``)."""
    text = "\x1f".join(map(str, parts)).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


MEDIA_TYPES = {
    "tif": "image/tiff; application=geotiff",
    "tiff": "image/tiff; application=geotiff",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "geojson": "application/geo+json",
    "json": "application/json",
    "npy": "application/octet-stream",
    "pdf": "application/pdf",
    "csv": "text/csv",
    "txt": "text/plain",
    "gz": "application/gzip",
    "tgz": "application/gzip",
    "zip": "application/zip",
    "nc": "application/netcdf",
}

# (min, max) bytes of generated assets by extension, chosen so that nasa_marine_debris' 2,825
# unique assets come to ~75 MB, close to the 77,207,762 B the API estimated.
SIZE_RANGES = {
    "tif": (60_000, 100_000),
    "tiff": (60_000, 100_000),
    "jpg": (15_000, 30_000),
    "jpeg": (15_000, 30_000),
    "png": (5_000, 20_000),
    "geojson": (500, 2_500),
    "json": (300, 1_500),
    "npy": (128, 640),
    "pdf": (400_000, 600_000),
    "csv": (2_000, 20_000),
}
DEFAULT_RANGE = (1_000, 10_000)


def extension(path: str) -> str:
    """The lower-case extension of the last path segment (``""`` if none)."""
    name = path.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


_MEDIA_EXT = {
    "image/tiff": ".tif",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "application/geo+json": ".geojson",
    "application/json": ".json",
    "application/pdf": ".pdf",
    "text/csv": ".csv",
}


def extension_for(media: object, href: str) -> str:
    """The file extension (with its dot) for media type ``media``, else of ``href``."""
    if isinstance(media, str):
        base = media.split(";")[0].strip().lower()
        if base in _MEDIA_EXT:
            return _MEDIA_EXT[base]
    ext = extension(href)
    return f".{ext}" if ext else ".bin"


def media_type_for(path: str) -> str:
    """The Content-Type the hub uses for ``path``, by extension."""
    if path.endswith(".tar.gz"):
        return "application/x-tar"
    return MEDIA_TYPES.get(extension(path), "application/octet-stream")


def default_size(path: str) -> int:
    """The size of a generated asset that no synthetic dataset governs."""
    lo, hi = SIZE_RANGES.get(extension(path), DEFAULT_RANGE)
    return lo + path_hash("size", path) % (hi - lo + 1)


def synthetic_size(seed: int, path: str, min_size: int, max_size: int) -> int:
    """The size of an asset of a synthetic benchmark dataset (see ``sample``)."""
    if max_size <= min_size:
        return min_size
    return min_size + path_hash("syn", seed, path) % (max_size - min_size + 1)


@dataclass(frozen=True, slots=True)
class Body:
    """A response body: ``head`` bytes, then ``size - len(head)`` bytes of the pool from ``start``.

    A body with ``size == len(head)`` is fully materialised. Bodies are immutable and cheap to
    slice: :meth:`chunks` yields ``memoryview`` windows, never copies of the pool.
    """

    size: int
    head: bytes
    start: int = 0

    @classmethod
    def of(cls, data: bytes) -> Body:
        """A materialised body."""
        return cls(len(data), data, 0)

    def chunks(
        self, first: int = 0, last: int | None = None, chunk: int = CHUNK
    ) -> Iterator[memoryview]:
        """Views of bytes ``first..last`` (inclusive; default: to the end)."""
        end = self.size if last is None else last + 1
        pos = first
        head = memoryview(self.head)
        while pos < end and pos < len(self.head):
            n = min(end, len(self.head), pos + chunk) - pos
            yield head[pos : pos + n]
            pos += n
        if pos >= end:
            return
        data = pool()
        view = memoryview(data)
        while pos < end:
            idx = (self.start + pos - len(self.head)) % len(data)
            n = min(end - pos, len(data) - idx, chunk)
            yield view[idx : idx + n]
            pos += n

    def read(self, first: int = 0, last: int | None = None) -> bytes:
        """The bytes ``first..last`` (inclusive) as one ``bytes`` object."""
        if first == 0 and last is None and self.size == len(self.head):
            return self.head
        return b"".join(bytes(c) for c in self.chunks(first, last))


def generate(path: str, size: int, version: int = 0) -> Body:
    """The generated body of the asset at URL path ``path`` (``version`` changes the bytes).

    Files up to :data:`MATERIALIZE_LIMIT` are valid files of the type their extension names
    (GeoTIFF, JPEG, PNG, GeoJSON, JSON, ``.npy``, PDF, CSV; anything else is raw bytes).
    Larger ones keep the structural header (GeoTIFF, ``.npy``) and stream pool bytes after it.
    """
    ext = extension(path)
    h = path_hash("body", path, version)
    data = pool()
    start = h % len(data)
    if size > MATERIALIZE_LIMIT:
        return Body(size, _large_head(ext, size, h), start)
    filler = formats._cycle(data, start, min(size, 1 << 20)) if size else b""
    out = _small(ext, path, size, h, filler)
    if len(out) != size:  # too small for the format's structure: raw bytes of the exact size
        out = formats._cycle(filler, 0, size)
    return Body.of(out)


def _tile_origin(h: int) -> tuple[float, float]:
    west = -180.0 + (h % 3_400_000) / 10_000.0
    north = -80.0 + ((h >> 24) % 1_600_000) / 10_000.0
    return round(west, 4), round(north, 4)


def _tiff_dims(budget: int, bands: int, bits: int) -> int:
    side = int(math.sqrt(max(1, budget) / (bands * bits // 8)))
    return max(1, side)


def _large_head(ext: str, size: int, h: int) -> bytes:
    if ext in ("tif", "tiff"):
        west, north = _tile_origin(h)
        side = _tiff_dims(size - 512, 1, 8)
        return formats.geotiff_header(
            side, side, 1, 8, west=west, north=north, res_x=0.0001, res_y=0.0001
        )
    if ext == "npy":
        count = size
        for _ in range(3):
            count = size - len(formats.npy_header(count))
        return formats.npy_header(count)
    return b""


def _small(ext: str, path: str, size: int, h: int, filler: bytes) -> bytes:
    if ext in ("tif", "tiff"):
        bands = 1 + h % 4 if size >= 4096 else 1
        west, north = _tile_origin(h)
        side = _tiff_dims(size - 512, bands, 8)
        head = formats.geotiff_header(
            side, side, bands, 8, west=west, north=north, res_x=0.0001, res_y=0.0001
        )
        while len(head) + side * side * bands > size and side > 1:
            side -= 1
            head = formats.geotiff_header(
                side, side, bands, 8, west=west, north=north, res_x=0.0001, res_y=0.0001
            )
        return head + formats._cycle(filler, 0, size - len(head)) if size > len(head) else head
    if ext in ("jpg", "jpeg"):
        side = min(64 + (h % 4) * 64, max(8, int(math.sqrt(max(0, size - 200) * 32))))
        return formats.jpeg_file(side, side, filler, size)
    if ext == "png":
        side = max(1, min(16 + h % 48, int(math.sqrt(max(1, size - 100) / 2))))
        return formats.png_file(side, side, formats._cycle(filler, 0, side * side), filler, size)
    if ext == "geojson":
        west, north = _tile_origin(h)
        feats: list[dict[str, object]] = []
        for i in range(1 + h % 3):
            x0, y0 = west + 0.001 * i, north - 0.001 * i
            ring = [[x0, y0], [x0 + 0.0008, y0], [x0 + 0.0008, y0 - 0.0008], [x0, y0 - 0.0008]]
            ring.append(ring[0])
            feats.append(
                {
                    "type": "Feature",
                    "properties": {"class": 1 + (h >> (i * 3)) % 7},
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                }
            )
        return formats.geojson_file(feats, size)
    if ext == "json":
        return formats.json_file({"path": path, "values": list(filler[:16])}, size)
    if ext == "npy":
        return formats.npy_file(filler, size)
    if ext == "pdf":
        return formats.pdf_file(path.rsplit("/", 1)[-1], filler, size)
    if ext == "csv":
        rows = [(i, (h >> (i % 48)) % 100_000 / 997.0, f"class_{i % 7}") for i in range(64)]
        return formats.csv_file(rows, size)
    return formats._cycle(filler, 0, size)
