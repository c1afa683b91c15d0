"""Safe streaming extraction of catalogue tarballs (mlhub_widgets.catalog_archive)."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from mlhub_widgets.catalog_archive import (
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


@pytest.mark.skipif(not FIXTURE.exists(), reason="recorded catalogue fixture missing")
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


@pytest.mark.skipif(not MOCK.exists(), reason="mock catalogue fixture missing")
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
    (out / "ds" / "a.json").symlink_to(victim)
    archive = _tar(tmp_path / "ok.tar.gz", [_file("ds/a.json", b'{"y": 2}')])
    list(iter_catalog(archive, out))
    assert victim.read_text() == "keep me"
    assert json.loads((out / "ds/a.json").read_text()) == {"y": 2}


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
