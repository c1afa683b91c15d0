"""Tiny, dependency-free encoders for the file formats the bundled hub serves.

Every encoder returns a *valid* file of its type and can pad it to an exact byte size, so that a
generated asset matches the ``file:size`` a catalogue announces. Padding always goes where the
format allows opaque data: after the pixel strip of a TIFF, in ``COM`` segments of a JPEG, in a
private ancillary chunk of a PNG, in an unreferenced stream object of a PDF, in the data array of a
``.npy`` file, or as trailing whitespace of JSON.

The functions are pure: the same arguments always give the same bytes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
import zlib
from collections.abc import Sequence

__all__ = [
    "csv_file",
    "geojson_file",
    "geotiff",
    "geotiff_header",
    "jpeg_file",
    "json_file",
    "multihash",
    "npy_file",
    "npy_header",
    "pdf_file",
    "png_file",
]


def multihash(data: bytes) -> str:
    """The STAC ``file:checksum`` of ``data``: a sha2-256 multihash in hex (``1220...``)."""
    return "1220" + hashlib.sha256(data).hexdigest()


# TIFF field types
_SHORT, _LONG, _DOUBLE = 3, 4, 12
_TYPE_SIZE = {_SHORT: 2, _LONG: 4, _DOUBLE: 8}


def geotiff_header(
    width: int,
    height: int,
    bands: int,
    bits: int,
    *,
    west: float,
    north: float,
    res_x: float,
    res_y: float,
) -> bytes:
    """The header and IFD of a little-endian, uncompressed, single-strip GeoTIFF in EPSG:4326.

    The pixel strip (``width * height * bands * bits / 8`` bytes, band-interleaved by pixel)
    must follow the returned bytes immediately; anything after the strip is ignored by readers.
    """
    if bits not in (8, 16):
        raise ValueError("bits must be 8 or 16")
    if width < 1 or height < 1 or bands < 1:
        raise ValueError("width, height and bands must be positive")
    template, tiepoint = _geotiff_template(width, height, bands, bits, res_x, res_y)
    out = bytearray(template)
    struct.pack_into("<dd", out, tiepoint + 24, west, north)  # the tiepoint's X and Y
    return bytes(out)


@functools.lru_cache(maxsize=1024)
def _geotiff_template(
    width: int, height: int, bands: int, bits: int, res_x: float, res_y: float
) -> tuple[bytes, int]:
    """The header for the origin (0, 0), and where the ModelTiepoint doubles are in it (the
    hub makes one header per generated GeoTIFF asset: only the origin changes)."""
    strip_bytes = width * height * bands * bits // 8
    geokeys = [1, 1, 0, 3, 1024, 0, 1, 2, 1025, 0, 1, 1, 2048, 0, 1, 4326]
    entries: list[tuple[int, int, list[int] | list[float]]] = [
        (256, _LONG, [width]),
        (257, _LONG, [height]),
        (258, _SHORT, [bits] * bands),
        (259, _SHORT, [1]),  # no compression
        (262, _SHORT, [1]),  # min-is-black
        (273, _LONG, [0]),  # strip offset, patched below
        (277, _SHORT, [bands]),
        (278, _LONG, [height]),
        (279, _LONG, [strip_bytes]),
        (284, _SHORT, [1]),  # chunky
    ]
    if bands > 1:
        entries.append((338, _SHORT, [0] * (bands - 1)))  # extra samples: unspecified
    entries += [
        (339, _SHORT, [1] * bands),  # unsigned integers
        (33550, _DOUBLE, [res_x, res_y, 0.0]),  # ModelPixelScale
        (33922, _DOUBLE, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),  # ModelTiepoint (origin set later)
        (34735, _SHORT, geokeys),  # GeoKeyDirectory
    ]
    ifd_offset = 8
    ifd_size = 2 + 12 * len(entries) + 4
    extra_offset = ifd_offset + ifd_size
    extra = bytearray()
    layout: list[tuple[int, int, int, bytes]] = []
    for tag, ftype, values in entries:
        fmt = {_SHORT: "H", _LONG: "I", _DOUBLE: "d"}[ftype]
        packed = struct.pack(f"<{len(values)}{fmt}", *values)
        layout.append((tag, ftype, len(values), packed))
        if len(packed) > 4:
            if len(extra) % 2:
                extra += b"\0"
            extra += packed
    header_len = extra_offset + len(extra)
    if header_len % 2:
        header_len += 1
    out = bytearray(b"II*\0" + struct.pack("<I", ifd_offset))
    out += struct.pack("<H", len(entries))
    cursor = extra_offset
    tiepoint = 0
    for tag, ftype, count, packed in layout:
        if tag == 273:
            packed = struct.pack("<I", header_len)
        if len(packed) > 4:
            if cursor % 2:
                cursor += 1
            if tag == 33922:
                tiepoint = cursor
            out += struct.pack("<HHII", tag, ftype, count, cursor)
            cursor += len(packed)
        else:
            out += struct.pack("<HHI", tag, ftype, count) + packed.ljust(4, b"\0")
    out += struct.pack("<I", 0)  # no next IFD
    out += extra
    out += b"\0" * (header_len - len(out))
    return bytes(out), tiepoint


def geotiff(
    width: int,
    height: int,
    bands: int,
    bits: int,
    pixels: bytes,
    *,
    west: float,
    north: float,
    res_x: float,
    res_y: float,
) -> bytes:
    """A complete GeoTIFF (see :func:`geotiff_header`) with ``pixels`` as its strip."""
    head = geotiff_header(
        width, height, bands, bits, west=west, north=north, res_x=res_x, res_y=res_y
    )
    need = width * height * bands * bits // 8
    if len(pixels) != need:
        raise ValueError(f"expected {need} pixel bytes, got {len(pixels)}")
    return head + pixels


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def jpeg_file(width: int, height: int, filler: bytes = b"", size: int | None = None) -> bytes:
    """A baseline greyscale JPEG (uniform mid-grey) of ``width`` x ``height`` pixels.

    The image uses one-symbol Huffman tables, so every 8x8 block costs two bits. With ``size``
    the file is padded to exactly that many bytes with ``COM`` segments cut from ``filler``
    (bytes after ``EOI`` if fewer than four bytes are missing).
    """
    app0 = _jpeg_segment(0xE0, b"JFIF\0" + bytes([1, 1, 0, 0, 1, 0, 1, 0, 0]))
    dqt = _jpeg_segment(0xDB, b"\0" + bytes([1] * 64))
    sof = _jpeg_segment(0xC0, struct.pack(">BHHBBBB", 8, height, width, 1, 1, 0x11, 0))
    dht_dc = _jpeg_segment(0xC4, b"\x00" + bytes([1] + [0] * 15) + b"\x00")
    dht_ac = _jpeg_segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00")
    sos = _jpeg_segment(0xDA, bytes([1, 1, 0x00, 0, 63, 0]))
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    nbits = 2 * blocks
    nbytes = (nbits + 7) // 8
    data = bytearray(nbytes)
    spare = nbytes * 8 - nbits
    if spare:
        data[-1] = (1 << spare) - 1  # pad the last byte with one-bits
    tail = bytes(data) + b"\xff\xd9"
    head = b"\xff\xd8" + app0
    body = dqt + sof + dht_dc + dht_ac + sos
    base = len(head) + len(body) + len(tail)
    if size is None or size <= base:
        return head + body + tail
    missing = size - base
    coms = bytearray()
    pos = 0
    while missing >= 4:
        payload_len = min(missing - 4, 65533)
        if 0 < missing - 4 - payload_len < 4:
            payload_len -= 4  # leave room for one more segment
        chunk = _cycle(filler, pos, payload_len)
        pos += payload_len
        coms += _jpeg_segment(0xFE, chunk)
        missing -= payload_len + 4
    return head + bytes(coms) + body + tail + b"\0" * missing


def _cycle(filler: bytes, start: int, n: int) -> bytes:
    """``n`` bytes read cyclically from ``filler`` starting at ``start`` (zeros if empty)."""
    if n <= 0:
        return b""
    if not filler:
        return b"\0" * n
    start %= len(filler)
    if start + n <= len(filler):
        return filler[start : start + n]
    out = bytearray()
    while len(out) < n:
        take = min(n - len(out), len(filler) - start)
        out += filler[start : start + take]
        start = 0
    return bytes(out)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_file(
    width: int, height: int, pixels: bytes, filler: bytes = b"", size: int | None = None
) -> bytes:
    """An 8-bit greyscale PNG; with ``size``, padded with a private ``prVt`` chunk."""
    if len(pixels) != width * height:
        raise ValueError("pixels must hold width*height bytes")
    raw = b"".join(b"\0" + pixels[r * width : (r + 1) * width] for r in range(height))
    ihdr = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    idat = _png_chunk(b"IDAT", zlib.compress(raw, 6))
    iend = _png_chunk(b"IEND", b"")
    sig = b"\x89PNG\r\n\x1a\n"
    base = len(sig) + len(ihdr) + len(idat) + len(iend)
    if size is None or size <= base:
        return sig + ihdr + idat + iend
    missing = size - base
    if missing < 12:
        return sig + ihdr + idat + iend + b"\0" * missing
    pad = _png_chunk(b"prVt", _cycle(filler, 0, missing - 12))
    return sig + ihdr + pad + idat + iend


def npy_header(count: int) -> bytes:
    """The header of a NumPy ``.npy`` v1.0 file holding a 1-D ``uint8`` array of ``count``."""
    text = f"{{'descr': '|u1', 'fortran_order': False, 'shape': ({count},), }}"
    raw_len = 10 + len(text) + 1
    padded = ((raw_len + 63) // 64) * 64
    text = text + " " * (padded - raw_len) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin-1")


def npy_file(payload: bytes, size: int | None = None) -> bytes:
    """A ``.npy`` file of a ``uint8`` vector; with ``size`` the vector fills exactly that size."""
    if size is None:
        return npy_header(len(payload)) + payload
    count = max(0, size - 128)
    for _ in range(3):  # the header length depends on the digits of count
        header = npy_header(count)
        count = max(0, size - len(header))
    header = npy_header(count)
    return header + _cycle(payload, 0, count)


def pdf_file(title: str, filler: bytes = b"", size: int | None = None) -> bytes:
    """A one-page PDF (a coloured rectangle); ``size`` pads it with an unreferenced stream."""
    content = b"0.16 0.42 0.62 rg 72 72 468 648 re f 1 1 1 rg 96 660 420 40 re f"
    safe_title = "".join(c for c in title if c.isalnum() or c in " -_.")[:100]

    def build(pad_len: int) -> bytes:
        objs = [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
            b" /Resources << >> >>",
            b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
            b"<< /Title (" + safe_title.encode("ascii") + b") >>",
        ]
        if pad_len >= 0:
            objs.append(
                b"<< /Length %d >>\nstream\n" % pad_len
                + _cycle(filler, 0, pad_len)
                + b"\nendstream"
            )
        out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for i, obj in enumerate(objs, start=1):
            offsets.append(len(out))
            out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
        xref = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
        for off in offsets:
            out += b"%010d 00000 n \n" % off
        out += b"trailer\n<< /Size %d /Root 1 0 R /Info 5 0 R >>\n" % (len(objs) + 1)
        out += b"startxref\n%d\n%%%%EOF\n" % xref
        return bytes(out)

    plain = build(-1)
    if size is None or size <= len(plain) + 64:
        return plain
    pad = size - len(build(0))
    for _ in range(4):
        got = len(build(pad))
        if got == size:
            break
        pad += size - got
    out = build(pad)
    if len(out) < size:
        out += b"\n" * (size - len(out))
    return out


def geojson_file(
    features: Sequence[dict[str, object]], size: int | None = None, indent: int | None = None
) -> bytes:
    """A GeoJSON FeatureCollection, padded with trailing whitespace to ``size`` if given."""
    text = json.dumps(
        {"type": "FeatureCollection", "features": list(features)},
        indent=indent,
        separators=None if indent else (",", ":"),
    ).encode("utf-8")
    return _pad_text(text, size)


def json_file(obj: object, size: int | None = None) -> bytes:
    """A JSON document, padded with trailing whitespace to ``size`` if given."""
    return _pad_text(json.dumps(obj, separators=(",", ":")).encode("utf-8"), size)


def _pad_text(text: bytes, size: int | None) -> bytes:
    if size is None or len(text) + 1 >= size:
        return text + b"\n"
    return text + b" " * (size - len(text) - 1) + b"\n"


def csv_file(rows: Sequence[tuple[int, float, str]], size: int | None = None) -> bytes:
    """A CSV table ``id,value,label``; with ``size``, rows are cut or the last label widened."""
    header = b"id,value,label\n"
    lines = [b"%d,%.6f,%s\n" % (i, v, label.encode("ascii")) for i, v, label in rows]
    if size is None:
        return header + b"".join(lines)
    out = bytearray(header)
    idx = 0
    while lines and len(out) + len(lines[idx % len(lines)]) <= size - 20:
        line = lines[idx % len(lines)]
        if idx >= len(lines):
            _i, v, label = rows[idx % len(rows)]
            line = b"%d,%.6f,%s\n" % (idx, v, label.encode("ascii"))
        out += line
        idx += 1
    remaining = size - len(out)
    last = b"%d,0.000000," % idx
    if remaining >= len(last) + 2:
        out += last + b"x" * (remaining - len(last) - 1) + b"\n"
    else:
        out += b" " * max(0, remaining - 1) + (b"\n" if remaining > 0 else b"")
    return bytes(out[:size]) if len(out) > size else bytes(out)
