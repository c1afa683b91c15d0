"""Safe streaming extraction of catalogue tarballs (mlhub_widgets.download.catalog_archive)."""

from __future__ import annotations

import io
import json
import os
import random
import tarfile
from pathlib import Path
from typing import Any

import pytest

from mlhub_widgets.download.catalog_archive import (
    ArchiveLimits,
    ArchiveStats,
    CorruptArchiveError,
    UnsafeArchiveError,
    classify,
    iter_catalog,
    member_path,
)
from tests.fixture_paths import NASA_CATALOG, SU_SAR_CATALOG

FIXTURE = NASA_CATALOG
MOCK = SU_SAR_CATALOG


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def _file(name: str, data: bytes = b"{}") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def _special(name: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info, None


def _all_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_real_catalogue_streams_items_collections_and_catalog(tmp_path: Path) -> None:
    stats = ArchiveStats()
    kinds: dict[str, int] = {}
    item_ids = set()
    entries = list(iter_catalog(FIXTURE, tmp_path, stats=stats))
    for entry in entries:
        kinds[entry.kind] = kinds.get(entry.kind, 0) + 1
        assert entry.path is not None and entry.path.is_file()
        assert entry.path.stat().st_size == entry.size
        if entry.kind == "item":
            assert entry.data is not None
            item_ids.add(entry.data["id"])
    assert kinds == {"item": 1412, "collection": 2, "catalog": 1}
    assert len(item_ids) == 1412
    assert stats.json_parsed == 1415
    # byte-identical to what tarfile itself would extract
    with tarfile.open(FIXTURE) as tar:
        member = tar.getmember("nasa_marine_debris/catalog.json")
        expected = tar.extractfile(member).read()  # type: ignore[union-attr]
    assert (tmp_path / "nasa_marine_debris/catalog.json").read_bytes() == expected


def test_macos_junk_is_ignored(tmp_path: Path) -> None:
    stats = ArchiveStats()
    names = [e.name for e in iter_catalog(MOCK, tmp_path, stats=stats)]
    assert stats.ignored_junk > 0
    assert not any(n.rsplit("/", 1)[-1].startswith("._") for n in names)
    assert not any(n.endswith(".DS_Store") for n in names)
    assert not [p for p in tmp_path.rglob("._*")]


def test_json_assets_are_not_items() -> None:
    label = {"type": "FeatureCollection", "features": []}
    geojson_feature = {"type": "Feature", "id": "x", "geometry": None, "properties": {}}
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "i", "assets": {}}
    assert classify(label) == "json"
    assert classify(geojson_feature) == "json"
    assert classify(item) == "item"
    assert classify([1, 2]) == "json"


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../escaped.txt", "'..'"),
        ("ds/../../escaped.txt", "'..'"),
        ("/tmp/absolute.txt", "absolute"),
        ("C:/windows.txt", "absolute"),
        ("ds\\..\\x.txt", "backslash"),
    ],
)
def test_hostile_names_rejected(tmp_path: Path, name: str, why: str) -> None:
    out = tmp_path / "out"
    archive = _tar(tmp_path / "bad.tar.gz", [_file("ds/ok.json"), _file(name, b"evil")])
    with pytest.raises(UnsafeArchiveError, match=why):
        list(iter_catalog(archive, out))
    # nothing outside the output folder, nothing from the hostile member
    assert _all_files(tmp_path) - {"bad.tar.gz"} <= {"out", "out/ds", "out/ds/ok.json"}
    assert not Path("/tmp/absolute.txt").exists() or name != "/tmp/absolute.txt"


@pytest.mark.parametrize(
    ("member", "why"),
    [
        (_link("ds/sym", "/etc/passwd", tarfile.SYMTYPE), "absolute path"),
        (_link("ds/sym", "../../outside", tarfile.SYMTYPE), "outside the output folder"),
        (_link("ds/hard", "../outside", tarfile.LNKTYPE), "outside the output folder"),
        (_link("ds/hard", "/etc/passwd", tarfile.LNKTYPE), "absolute path"),
        (_special("ds/dev", tarfile.CHRTYPE), "character device"),
        (_special("ds/blk", tarfile.BLKTYPE), "block device"),
        (_special("ds/fifo", tarfile.FIFOTYPE), "FIFO"),
    ],
)
def test_hostile_links_and_special_files_rejected(
    tmp_path: Path, member: tuple[tarfile.TarInfo, None], why: str
) -> None:
    out = tmp_path / "out"
    archive = _tar(tmp_path / "bad.tar.gz", [_file("ds/a.json"), member, _file("ds/b.json")])
    with pytest.raises(UnsafeArchiveError, match=why):
        list(iter_catalog(archive, out))
    assert not (out / "ds" / "b.json").exists()  # stopped at the bad member
    for p in out.rglob("*"):
        assert not p.is_symlink()
        assert p.resolve().is_relative_to(out.resolve())


def test_links_inside_are_copied_or_skipped_never_created(tmp_path: Path) -> None:
    out = tmp_path / "out"
    archive = _tar(
        tmp_path / "ok.tar.gz",
        [
            _file("ds/a.json", b'{"x": 1}'),
            _link("ds/hard.json", "ds/a.json", tarfile.LNKTYPE),
            _link("ds/sym.json", "a.json", tarfile.SYMTYPE),
        ],
    )
    stats = ArchiveStats()
    list(iter_catalog(archive, out, stats=stats))
    assert (out / "ds/hard.json").read_bytes() == b'{"x": 1}'
    assert not (out / "ds/hard.json").is_symlink()
    assert not os.path.lexists(out / "ds/sym.json")
    assert (stats.links_copied, stats.links_skipped) == (1, 1)


def test_member_count_bomb_rejected(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "bomb.tar.gz", [_file(f"ds/{i}.json") for i in range(50)])
    with pytest.raises(UnsafeArchiveError, match="more than 20 members"):
        list(iter_catalog(archive, tmp_path / "out", limits=ArchiveLimits(max_members=20)))
    assert len(list((tmp_path / "out" / "ds").iterdir())) <= 20


def test_size_bombs_rejected(tmp_path: Path) -> None:
    big = b"0" * 5000
    archive = _tar(tmp_path / "big.tar.gz", [_file("ds/a.bin", big), _file("ds/b.bin", big)])
    with pytest.raises(UnsafeArchiveError, match="above the limit"):
        list(iter_catalog(archive, tmp_path / "o1", limits=ArchiveLimits(max_member_size=4000)))
    with pytest.raises(UnsafeArchiveError, match="expands to more than"):
        list(iter_catalog(archive, tmp_path / "o2", limits=ArchiveLimits(max_total_size=8000)))
    assert not (tmp_path / "o2" / "ds" / "b.bin").exists()


def test_existing_symlink_at_file_place_is_replaced_not_followed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "ds").mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (out / "ds" / "a.json").symlink_to(victim)  # left by someone else, pointing outside
    (out / "ds" / "b.json").symlink_to("inside.json")  # a stale link pointing inside
    archive = _tar(tmp_path / "ok.tar.gz", [_file("ds/a.json", b'{"y": 2}'), _file("ds/b.json")])
    list(iter_catalog(archive, out))
    assert victim.read_text() == "keep me"
    assert json.loads((out / "ds/a.json").read_text()) == {"y": 2}
    for name in ("a.json", "b.json"):
        assert not (out / "ds" / name).is_symlink()  # replaced, never written through
    assert not (out / "ds" / "inside.json").exists()


def test_dry_read_writes_nothing(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "ok.tar.gz", [_file("ds/catalog.json", b'{"type":"Catalog","id":"c"}')]
    )
    entries = list(iter_catalog(archive, None))
    assert [e.kind for e in entries] == ["catalog"]
    assert entries[0].path is None
    assert _all_files(tmp_path) == {"ok.tar.gz"}


def test_member_path_normalises() -> None:
    assert member_path("./ds//a/./b.json") == "ds/a/b.json"
    assert member_path("./") is None
    with pytest.raises(UnsafeArchiveError):
        member_path("a/\x00b")


# ---------------------------------------------------------------------------------------------
# complete archives only: the end-of-archive marker and the compressed stream's trailer


def _plain_tar(n: int = 40) -> tuple[bytes, list[tarfile.TarInfo]]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for i in range(n):
            data = json.dumps({"id": f"i{i}", "pad": "x" * 700}).encode()
            info = tarfile.TarInfo(f"ds/c/i{i}/i{i}.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        return raw, tar.getmembers()


def _read_all(data: bytes) -> int:
    return sum(1 for _ in iter_catalog(io.BytesIO(data), None))


@pytest.mark.parametrize(
    "codec",
    [
        ("gzip", lambda b: __import__("gzip").compress(b)),
        ("bz2", lambda b: __import__("bz2").compress(b)),
        ("xz", lambda b: __import__("lzma").compress(b)),
        ("plain", lambda b: b),
    ],
    ids=lambda c: c[0],
)
def test_complete_archives_are_read_and_cut_ones_refused(codec: Any) -> None:
    name, compress = codec
    raw, members = _plain_tar()
    assert _read_all(compress(raw)) == 40
    # cut exactly after a member: tarfile alone would take it for the end of the archive
    m = members[25]
    boundary = m.offset_data + (m.size + 511) // 512 * 512
    with pytest.raises(CorruptArchiveError, match="end-of-archive marker"):
        _read_all(compress(raw[:boundary]))
    with pytest.raises(CorruptArchiveError, match="end-of-archive marker is incomplete"):
        _read_all(compress(raw[:boundary] + bytes(512)))
    if name != "plain":  # the compressed stream itself cut short, or damaged
        whole = compress(raw)
        with pytest.raises(CorruptArchiveError, match="cut short"):
            _read_all(whole[:-6])
        if name == "gzip":  # bz2 and lzma ignore what follows their last stream, as bzip2 does
            with pytest.raises(CorruptArchiveError):
                _read_all(whole + b"trailing junk")
    with pytest.raises(tarfile.ReadError):  # still a ReadError for older callers
        _read_all(compress(raw[: members[10].offset_data + 100]))


def test_gzip_crc_and_concatenation() -> None:
    import gzip

    raw, _ = _plain_tar()
    whole = gzip.compress(raw)
    assert _read_all(whole + gzip.compress(b"") + bytes(64)) == 40
    bad = bytearray(whole)
    bad[-6] ^= 1  # the CRC-32 of the trailer
    with pytest.raises(CorruptArchiveError, match="damaged"):
        _read_all(bytes(bad))


def test_not_an_archive_is_a_clear_error(tmp_path: Path) -> None:
    for data in (b"<!DOCTYPE html><html>502</html>" * 40, b""):
        with pytest.raises(CorruptArchiveError, match="not a readable tar archive"):
            _read_all(data)
    with pytest.raises(CorruptArchiveError):
        list(iter_catalog(io.BytesIO(b"\x1f\x8b" + b"garbage" * 50), tmp_path / "out"))


def test_abandoned_iteration_stops_the_writer_thread(tmp_path: Path) -> None:
    import threading

    def writers() -> int:
        return sum(t.name == "mlhub-catalog-writer" for t in threading.enumerate())

    raw, _ = _plain_tar()
    before = writers()
    entries = iter_catalog(io.BytesIO(raw), tmp_path / "out")
    next(entries)
    assert writers() == before + 1
    entries.close()  # joins the writer thread, not left for the garbage collector
    assert writers() == before


# ---------------------------------------------------------------------------------------------
# extraction against tarfile's own as the oracle: formats, long and non-ASCII names, odd headers

_FORMATS = {"ustar": tarfile.USTAR_FORMAT, "gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT}


def _item(i: int, pad: int = 2000) -> bytes:
    return json.dumps(
        {"type": "Feature", "stac_version": "1.0.0", "id": f"i{i}", "assets": {}, "p": "x" * pad}
    ).encode()


def _build(members: list[tuple[tarfile.TarInfo, bytes | None]], fmt: int, **kw: Any) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, **kw) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _oracle(raw: bytes) -> list[tuple[str, int, bytes]]:
    """Regular files as tarfile itself lists and extracts them."""
    out = []
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:*") as tar:
        for m in tar.getmembers():
            if m.isreg():
                name = member_path(m.name)
                assert name is not None
                out.append((name, m.size, tar.extractfile(m).read()))  # type: ignore[union-attr]
    return out


def _ours(raw: bytes, dest: Path | None) -> list[tuple[str, int, bytes | None]]:
    entries = list(iter_catalog(io.BytesIO(raw), dest))  # files are complete at the end
    return [(e.name, e.size, e.path.read_bytes() if e.path else None) for e in entries]


def _catalogue_members(long: bool) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    members: list[tuple[tarfile.TarInfo, bytes | None]] = []
    folder = tarfile.TarInfo("ds/c")
    folder.type = tarfile.DIRTYPE
    members.append((folder, None))
    for i in range(30):
        sub = ("d" * 60 + "/") * (i % 4) if long else ""
        name = f"ds/c/{sub}item_{i:04d}/item_{i:04d}.json"
        members.append((tarfile.TarInfo(name), _item(i, pad=37 * i)))
    members.append((tarfile.TarInfo("ds/c/data.bin"), random.Random(5).randbytes(70_000)))
    members.append((tarfile.TarInfo("ds/c/empty.json"), b""))
    members.append((tarfile.TarInfo("ds/c/bad.json"), b"{not json"))
    return members


@pytest.mark.parametrize("long", [False, True], ids=["short-names", "long-names"])
def test_tar_formats_give_identical_entries_and_bytes(tmp_path: Path, long: bool) -> None:
    results = {}
    for label, fmt in _FORMATS.items():
        if long and fmt == tarfile.USTAR_FORMAT:
            continue  # names above 255 characters do not fit in ustar
        raw = _build(_catalogue_members(long), fmt)
        expected = _oracle(raw)
        assert _ours(raw, tmp_path / label) == expected
        assert [(n, s) for n, s, _ in _ours(raw, None)] == [(n, s) for n, s, _ in expected]
        results[label] = expected
    first = next(iter(results.values()))
    assert all(r == first for r in results.values())
    assert len(first) == 33


def test_gnu_long_names_and_links_match_tarfile(tmp_path: Path) -> None:
    name = "ds/" + "/".join(["folder_" + "n" * 40] * 5) + "/item.json"  # > 100, > 255 chars
    link = tarfile.TarInfo("ds/" + "l" * 150 + ".json")
    link.type, link.linkname = tarfile.LNKTYPE, name
    raw = _build([(tarfile.TarInfo(name), _item(1)), (link, None)], tarfile.GNU_FORMAT)
    assert b"././@LongLink" in raw  # really GNU 'L'/'K' headers
    stats = ArchiveStats()
    entries = list(iter_catalog(io.BytesIO(raw), tmp_path, stats=stats))
    assert [(e.name, e.size) for e in entries] == [(n, s) for n, s, _ in _oracle(raw)]
    assert entries[0].kind == "item"
    assert stats.links_copied == 1
    assert (tmp_path / link.name).read_bytes() == _item(1)


def test_pax_long_and_non_ascii_names_match_tarfile(tmp_path: Path) -> None:
    names = [
        "ds/" + ("p" * 100 + "/") * 3 + "item.json",  # longer than ustar's 255
        "ds/été/ünïcödé_日本.json",
        "ds/c/" + "é" * 120 + ".json",
    ]
    members = [(tarfile.TarInfo(n), _item(i)) for i, n in enumerate(names)]
    raw = _build(members, tarfile.PAX_FORMAT, pax_headers={"comment": "a global header"})
    assert b"path=" in raw
    expected = _oracle(raw)
    assert [n for n, _, _ in expected] == names
    assert _ours(raw, tmp_path) == expected
    assert sorted(p.name for p in (tmp_path / "ds" / "été").iterdir()) == ["ünïcödé_日本.json"]


def _set_field(raw: bytes, header: int, start: int, value: bytes, *, signed: bool = False) -> bytes:
    """Overwrite a header field and recompute the header's checksum."""
    data = bytearray(raw)
    data[header + start : header + start + len(value)] = value
    block = data[header : header + 512]
    block[148:156] = b" " * 8
    chksum = sum(b - 256 if signed and b > 127 else b for b in block)
    data[header + 148 : header + 156] = b"%06o\x00 " % chksum
    return bytes(data)


def test_base256_size_field(tmp_path: Path) -> None:
    payload = _item(7)
    raw = _build([(tarfile.TarInfo("ds/c/i.json"), payload)], tarfile.GNU_FORMAT)
    raw = _set_field(raw, 0, 124, b"\x80" + len(payload).to_bytes(11, "big"))
    assert raw[124] == 0x80
    assert _ours(raw, tmp_path) == _oracle(raw) == [("ds/c/i.json", len(payload), payload)]
    negative = _set_field(raw, 0, 124, b"\xff" * 12)  # -1
    with pytest.raises(CorruptArchiveError, match="negative size"):
        _read_all(negative)


def test_signed_checksum_is_accepted() -> None:
    raw = _build([(tarfile.TarInfo("ds/ç.json"), b"{}")], tarfile.GNU_FORMAT)
    raw = _set_field(raw, 0, 0, "ds/ç.json".encode(), signed=True)
    assert _ours(raw, None) == [("ds/ç.json", 2, None)]


def test_corrupted_header_checksum_is_refused() -> None:
    raw, members = _plain_tar(5)
    first = bytearray(raw)
    first[10] ^= 0x01  # a name byte of the first header
    with pytest.raises(CorruptArchiveError, match=r"not a readable tar archive \(bad checksum\)"):
        _read_all(bytes(first))
    later = bytearray(raw)
    later[members[3].offset + 20] ^= 0x01
    entries = []
    with pytest.raises(CorruptArchiveError, match="bad checksum"):
        entries.extend(iter_catalog(io.BytesIO(bytes(later)), None))
    assert len(entries) == 3  # the members before the damage were streamed
    field = bytearray(raw)
    field[members[2].offset + 124 : members[2].offset + 136] = b"12x45678901\x00"
    with pytest.raises(CorruptArchiveError, match="damaged: bad checksum"):
        _read_all(bytes(field))
    field = _set_field(raw, members[2].offset, 124, b"12x45678901\x00")  # checksum fixed
    with pytest.raises(CorruptArchiveError, match="damaged: invalid header"):
        _read_all(field)


def test_pax_size_and_malformed_pax_headers() -> None:
    data = b'{"a": 1}'
    info = tarfile.TarInfo("ds/a.json")
    info.pax_headers = {"size": str(len(data)), "mtime": "1.5", "SCHILY.xattr.user.x": "y"}
    raw = _build([(info, data), (tarfile.TarInfo("ds/b.json"), b"{}")], tarfile.PAX_FORMAT)
    assert _ours(raw, None) == [(n, s, None) for n, s, _ in _oracle(raw)]
    # a record without its "=": tarfile up to 3.12 ignores the rest of the header, 3.13 refuses
    # the archive; the download does what the running Python's tarfile does
    bad = raw.replace(b" size=", b" size ", 1)
    try:
        expected = [(n, s, None) for n, s, _ in _oracle(bad)]
    except tarfile.ReadError:
        with pytest.raises(CorruptArchiveError, match="not a readable tar archive"):
            _ours(bad, None)
    else:
        assert _ours(bad, None) == expected


def test_sparse_members_are_refused() -> None:
    raw = _build([(tarfile.TarInfo("ds/s.bin"), b"x" * 10)], tarfile.GNU_FORMAT)
    with pytest.raises(UnsafeArchiveError, match="is a sparse file"):
        _read_all(_set_field(raw, 0, 156, b"S"))
    info = tarfile.TarInfo("ds/s.bin")
    info.pax_headers = {"GNU.sparse.map": "0,10", "GNU.sparse.size": "10"}  # PAX sparse 0.1
    raw = _build([(info, b"x" * 10)], tarfile.PAX_FORMAT)
    with pytest.raises(UnsafeArchiveError, match="is a sparse file"):
        _read_all(raw)
    info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}  # 1.0, no map
    raw = _build([(info, b"x" * 10)], tarfile.PAX_FORMAT)
    with pytest.raises(CorruptArchiveError, match="not a readable tar archive"):
        _read_all(raw)  # tarfile raises a bare ValueError there
    raw = _build([(tarfile.TarInfo("ds/u.bin"), b"x" * 10)], tarfile.GNU_FORMAT)
    with pytest.raises(UnsafeArchiveError, match="unsupported member type b'Z'"):
        _read_all(_set_field(raw, 0, 156, b"Z"))


def test_oversized_extended_header_is_refused() -> None:
    header = tarfile.TarInfo("././@LongLink")
    header.type, header.size = tarfile.GNUTYPE_LONGNAME, 512 * 1024**2
    raw = header.tobuf(tarfile.GNU_FORMAT)
    with pytest.raises(UnsafeArchiveError, match="extended tar header"):
        _read_all(raw + bytes(4096))


def test_v7_headers_and_folders() -> None:
    raw = _build(
        [(tarfile.TarInfo("ds/"), None), (tarfile.TarInfo("ds/a.json"), b"[1]")],
        tarfile.USTAR_FORMAT,
    )
    for header in (0, 512):  # no magic: a v7 header
        raw = _set_field(raw, header, 257, bytes(8))
    raw = _set_field(raw, 0, 156, b"\x00")  # a v7 folder: a regular type, a trailing slash
    assert _ours(raw, None) == [("ds/a.json", 3, None)]
    assert [n for n, _, _ in _oracle(raw)] == ["ds/a.json"]


@pytest.mark.parametrize("codec", ["gz", "bz2", "xz"])
def test_big_members_stream_across_blocks(tmp_path: Path, codec: str) -> None:
    big_json = json.dumps({"type": "Catalog", "id": "c", "pad": "y" * 3_000_000}).encode()
    zeros = bytes(9 * 1024 * 1024)  # compresses ~1000:1: many outputs per input slice
    noise = os.urandom(1_500_000)
    members = [
        (tarfile.TarInfo("ds/catalog.json"), big_json),
        (tarfile.TarInfo("ds/zeros.bin"), zeros),
        (tarfile.TarInfo("ds/noise.bin"), noise),
        (tarfile.TarInfo("ds/after.json"), b"{}"),
    ]
    path = tmp_path / f"big.tar.{codec}"
    with tarfile.open(path, f"w:{codec}") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    entries = list(iter_catalog(path, tmp_path / "out"))
    assert [(e.kind, e.name) for e in entries] == [
        ("catalog", "ds/catalog.json"),
        ("file", "ds/zeros.bin"),
        ("file", "ds/noise.bin"),
        ("json", "ds/after.json"),
    ]
    for info, data in members:
        assert (tmp_path / "out" / info.name).read_bytes() == data
    assert [e.size for e in iter_catalog(path, None)] == [len(d) for _, d in members]


# -- big catalogue documents: parsed as they stream, item links left out -----------------------


def test_big_collection_is_streamed_without_item_links(tmp_path: Path) -> None:
    links = [{"rel": "root", "href": "../catalog.json"}] + [
        {"rel": "item", "href": f"i{i}/i{i}.json", "type": "application/json"} for i in range(3000)
    ]
    collection = {
        "type": "Collection",
        "id": "c",
        "stac_version": "1.0.0",
        "links": links,
        "assets": {"documentation": {"href": "https://example.com/doc.pdf"}},
    }
    raw = json.dumps(collection, indent=1).encode()
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "i0", "assets": {}}
    archive = _tar(
        tmp_path / "a.tar.gz",
        [_file("ds/c/collection.json", raw), _file("ds/c/i0/i0.json", json.dumps(item).encode())],
    )
    limits = ArchiveLimits(stream_json_size=64 * 1024)
    assert len(raw) > limits.stream_json_size
    stats = ArchiveStats()
    entries = {
        e.name: e for e in iter_catalog(archive, tmp_path / "out", limits=limits, stats=stats)
    }
    big = entries["ds/c/collection.json"]
    assert big.kind == "collection" and big.data is not None
    assert big.data["links"] == links[:1]  # the item links are not kept in memory
    assert big.data["assets"] == collection["assets"]
    assert (tmp_path / "out" / "ds/c/collection.json").read_bytes() == raw  # but are on disk
    assert entries["ds/c/i0/i0.json"].data == item  # small members: parsed whole, as before
    assert stats.json_parsed == 2 and stats.unreadable_json == 0


def test_big_invalid_json_is_extracted_whole_and_counted(tmp_path: Path) -> None:
    raw = b'{"type": "Collection", "links": [' + b'{"rel": "item"},' * 10_000 + b"oops"
    archive = _tar(tmp_path / "a.tar.gz", [_file("ds/c/collection.json", raw)])
    stats = ArchiveStats()
    limits = ArchiveLimits(stream_json_size=1024)
    entries = list(iter_catalog(archive, tmp_path / "out", limits=limits, stats=stats))
    assert [(e.kind, e.data) for e in entries] == [("json", None)]
    assert (tmp_path / "out" / "ds/c/collection.json").read_bytes() == raw
    assert stats.unreadable_json == 1


# -- the catalogue's namespace, bomb limits sized from the archive -------------------------------


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("other/x.json", "lies outside the catalogue's folder 'ds/'"),
        ("top.json", "lies outside the catalogue's folder 'ds/'"),
        ("ds/mlhub_assets.db", "name of a file the download keeps"),
        ("ds/c/mlhub_assets.db-wal", "name of a file the download keeps"),
        ("ds/err_report.csv", "name of a file the download keeps"),
        ("ds/.mlhub-download.lock", "name of a file the download keeps"),
        ("ds/c/i/image.tif.part", "name of a file the download keeps"),
        ("ds/c/i/image.tif.part.meta", "name of a file the download keeps"),
    ],
)
def test_members_stay_in_the_root_folder_and_off_reserved_names(
    tmp_path: Path, name: str, why: str
) -> None:
    archive = _tar(tmp_path / "a.tar.gz", [_file("ds/ok.json"), _file(name, b"x")])
    with pytest.raises(UnsafeArchiveError, match=why):
        list(iter_catalog(archive, tmp_path / "out", root="ds"))
    assert not (tmp_path / "out" / name).exists()
    if "outside" in why:  # without a root any folder goes; a reserved name never does
        assert len(list(iter_catalog(archive, None))) == 2


def test_kept_members_are_parsed_not_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "ds").mkdir(parents=True)
    (out / "ds" / "asset.json").write_text("finished asset")
    archive = _tar(tmp_path / "a.tar.gz", [_file("ds/asset.json", b'{"a": 1}')])
    stats = ArchiveStats()
    entries = list(iter_catalog(archive, out, stats=stats, keep=lambda rel: rel == "ds/asset.json"))
    assert [e.kind for e in entries] == ["json"] and stats.kept == 1
    assert (out / "ds" / "asset.json").read_text() == "finished asset"


def test_limits_are_sized_from_the_compressed_size() -> None:
    limits = ArchiveLimits()
    assert limits.sized(None) == limits
    small = limits.sized(1_000)  # a tiny archive: the free allowances
    assert small.max_members == 10_000 + 1_000 // 32
    assert small.max_total_size == 16 * 1024**2
    big = limits.sized(1_000_000_000)  # a huge one: the absolute caps
    assert big.max_total_size == 64 * 1024**3
    assert big.max_members == 5_000_000
    assert limits.sized(10_000_000).max_total_size == 1_000_000_000


def test_rewrite_writes_other_bytes_for_parsed_members_and_counts_big_ones(
    tmp_path: Path,
) -> None:
    """``rewrite=`` replaces what is written for a JSON member (the entry keeps the parsed
    original); a member too large to hold whole is written as it streams, and a STAC
    document with assets among them is counted as not rewritten."""
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "i", "assets": {"a": {"href": "x"}}}
    big = {**item, "id": "big", "links": [{"rel": "item", "href": f"{n}.json"} for n in range(40)]}
    src = _tar(
        tmp_path / "c.tar.gz",
        [
            _file("ds/i.json", json.dumps(item).encode()),
            _file("ds/big.json", json.dumps(big).encode()),
            _file("ds/notes.txt", b"plain"),
        ],
    )
    seen: list[str] = []

    def rewrite(rel: str, path: Path, data: Any) -> bytes | None:
        seen.append(rel)
        assert path == tmp_path / "out" / rel
        return b'{"rewritten": true}' if data["id"] == "i" else None

    stats = ArchiveStats()
    limits = ArchiveLimits(stream_json_size=600)
    entries = {
        e.name: e
        for e in iter_catalog(src, tmp_path / "out", limits=limits, stats=stats, rewrite=rewrite)
    }
    assert seen == ["ds/i.json"]  # never called for the streamed member, nor for other files
    assert entries["ds/i.json"].data == item  # the caller still gets the member's own JSON
    assert (tmp_path / "out/ds/i.json").read_bytes() == b'{"rewritten": true}'
    assert json.loads((tmp_path / "out/ds/big.json").read_bytes()) == big
    assert (tmp_path / "out/ds/notes.txt").read_bytes() == b"plain"
    assert stats.not_rewritten == 1
