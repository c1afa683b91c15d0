"""Hostile input, end to end: catalogues, names, hrefs, filters and profiles meant to do harm.

Everything goes through the public entry points (``download_dataset``, ``DownloadJob``,
``plan_download``, ``mlhub download``) against the bundled hub serving a real data directory,
so the whole download path is exercised, not only the unit that is supposed to catch the
problem (``tests/test_catalog_archive.py``, ``test_paths.py``, ``test_filters.py`` and
``test_profiles.py`` cover the units).
"""

from __future__ import annotations

import io
import json
import logging
import os
import stat
import tarfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlhub_widgets.cli import main as cli_main
from mlhub_widgets.config import profiles
from mlhub_widgets.download import (
    DownloadJob,
    DownloadSummary,
    download_dataset,
    plan_download,
)
from mlhub_widgets.download.catalog_archive import ArchiveLimits, UnsafeArchiveError
from mlhub_widgets.download.paths import asset_relpath
from mlhub_widgets.exceptions import DownloadError, MLHubException, ProfileError
from mlhub_widgets.hub import FaultConfig, Hub, serve
from mlhub_widgets.hub.store import API_PLACEHOLDER, BLOB_ROOT, FILES_PLACEHOLDER

from .reliability_support import (
    ERR_HEADER,
    asset_files,
    closed_port_url,
    err_rows,
    index_meta,
    index_rows,
    make_data_dir,
    record_figure,
    verify_download,
    verify_some,
)

KEY = "SECRET-key-7f3a9c0e51"


# =============================================================================================
# prebuilt catalogue tarballs served from a hub data directory


@dataclass
class Member:
    """One tar member to write (regular file unless ``kind`` says otherwise)."""

    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    linkname: str = ""
    size: int | None = None  # only for header-only members


def _json(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=True).encode("utf-8")


def _item(item_id: str, collection: str, assets: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "collection": collection,
        "bbox": [10.0, 10.0, 10.1, 10.1],
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[10, 10], [10.1, 10], [10.1, 10.1], [10, 10.1], [10, 10]]],
        },
        "properties": {"datetime": "2021-06-01T00:00:00Z"},
        "links": [],
        "assets": assets,
    }


def _collection(cid: str, assets: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "Collection",
        "id": cid,
        "stac_version": "1.0.0",
        "description": "hostile test collection",
        "license": "CC0-1.0",
        "extent": {
            "spatial": {"bbox": [[10, 10, 11, 11]]},
            "temporal": {"interval": [[None, None]]},
        },
        "links": [],
    }
    if assets:
        out["assets"] = assets
    return out


def _blob(ds: str, n: int) -> dict[str, Any]:
    return {"href": f"{BLOB_ROOT}mlhub/{ds}/blob_{n:05d}.tif", "type": "image/tiff"}


def write_prebuilt(data_dir: Path, ds: str, members: list[Member], collections: list[str]) -> Path:
    """A dataset folder whose catalogue is the given tarball (the hub serves it as built)."""
    folder = data_dir / ds
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as tf:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.type = m.kind
            info.mtime = 1_600_000_000
            info.mode = 0o644
            if m.kind == tarfile.REGTYPE:
                info.size = len(m.data)
                tf.addfile(info, io.BytesIO(m.data))
            else:
                info.linkname = m.linkname
                if m.kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                    info.devmajor, info.devminor = 1, 3
                tf.addfile(info)
    (folder / "catalog.tar.gz").write_bytes(buf.getvalue())
    record = {
        "id": ds,
        "title": f"hostile dataset {ds}",
        "collections": [{"id": c, "types": ["source_imagery"]} for c in collections],
    }
    (folder / "mlhub-dataset.json").write_text(json.dumps(record))
    return folder


def _base_members(ds: str, n_items: int = 6) -> list[Member]:
    members = [
        Member(f"{ds}/catalog.json", _json({"type": "Catalog", "id": ds, "stac_version": "1.0.0",
                                            "description": "x", "links": []})),
        Member(f"{ds}/c/collection.json", _json(_collection("c"))),
    ]  # fmt: skip
    for i in range(n_items):
        item = _item(f"i{i}", "c", {"image": _blob(ds, i)})
        members.append(Member(f"{ds}/c/i{i}/i{i}.json", _json(item)))
    return members


def _tree(root: Path) -> list[Path]:
    return [Path(dirpath) / n for dirpath, dirs, files in os.walk(root) for n in dirs + files]


@dataclass
class HostileCase:
    name: str
    members: Callable[[str, Path], list[Member]]
    match: str
    limits: ArchiveLimits | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _escape_dotdot(ds: str, outside: Path) -> list[Member]:
    return [Member(f"{ds}/c/../../../../escape.json", b"{}")]


def _absolute(ds: str, outside: Path) -> list[Member]:
    return [Member(str(outside / "absolute.json"), b"{}")]


def _symlink_absolute_then_write_through(ds: str, outside: Path) -> list[Member]:
    return [
        Member(f"{ds}/c/lnk", kind=tarfile.SYMTYPE, linkname=str(outside)),
        Member(f"{ds}/c/lnk/pwned.json", b'{"pwned": true}'),
    ]


def _symlink_relative_escape(ds: str, outside: Path) -> list[Member]:
    return [
        Member(f"{ds}/c/up", kind=tarfile.SYMTYPE, linkname="../../../../outside"),
        Member(f"{ds}/c/up/pwned.json", b'{"pwned": true}'),
    ]


def _hardlink_absolute(ds: str, outside: Path) -> list[Member]:
    return [Member(f"{ds}/c/passwd", kind=tarfile.LNKTYPE, linkname="/etc/passwd")]


def _hardlink_escape(ds: str, outside: Path) -> list[Member]:
    return [Member(f"{ds}/c/hl", kind=tarfile.LNKTYPE, linkname="../../outside/secret.txt")]


def _char_device(ds: str, outside: Path) -> list[Member]:
    return [Member(f"{ds}/c/null", kind=tarfile.CHRTYPE)]


def _block_device(ds: str, outside: Path) -> list[Member]:
    return [Member(f"{ds}/c/sda", kind=tarfile.BLKTYPE)]


def _fifo(ds: str, outside: Path) -> list[Member]:
    return [Member(f"{ds}/c/fifo", kind=tarfile.FIFOTYPE)]


def _member_count_bomb(ds: str, outside: Path) -> list[Member]:
    return [Member(f"{ds}/c/bomb/{i:05d}.txt", b"x") for i in range(3000)]


def _member_size_bomb(ds: str, outside: Path) -> list[Member]:
    return [Member(f"{ds}/c/zeros.bin", bytes(12 * 1024 * 1024))]


def _total_size_bomb(ds: str, outside: Path) -> list[Member]:
    return [Member(f"{ds}/c/part{i}.bin", bytes(1024 * 1024)) for i in range(12)]


def _long_name(ds: str, outside: Path) -> list[Member]:
    return [Member(f"{ds}/c/" + "n" * 5000 + ".json", b"{}")]


def _deep_nesting(ds: str, outside: Path) -> list[Member]:
    return [Member(f"{ds}/" + "/".join(["d"] * 100) + "/deep.json", b"{}")]


HOSTILE_CASES = [
    HostileCase("dotdot", _escape_dotdot, r"escapes the archive with '\.\.'"),
    HostileCase("absolute", _absolute, "absolute member name"),
    HostileCase("symlink-absolute", _symlink_absolute_then_write_through, "absolute path"),
    HostileCase("symlink-escape", _symlink_relative_escape, "points outside the output folder"),
    HostileCase("hardlink-absolute", _hardlink_absolute, "absolute path '/etc/passwd'"),
    HostileCase("hardlink-escape", _hardlink_escape, "points outside the output folder"),
    HostileCase("char-device", _char_device, "is a character device"),
    HostileCase("block-device", _block_device, "is a block device"),
    HostileCase("fifo", _fifo, "is a FIFO"),
    HostileCase(
        "member-count-bomb",
        _member_count_bomb,
        "more than 2,000 members",
        limits=ArchiveLimits(max_members=2000),
    ),
    HostileCase(
        "member-size-bomb",
        _member_size_bomb,
        "above the limit of 1,048,576",
        limits=ArchiveLimits(max_member_size=1024 * 1024),
    ),
    HostileCase(
        "total-size-bomb",
        _total_size_bomb,
        "expands to more than 5,000,000 bytes",
        limits=ArchiveLimits(max_total_size=5_000_000),
    ),
    HostileCase("long-name", _long_name, "longer than 4096 characters"),
    HostileCase("deep-nesting", _deep_nesting, "nested deeper than 64 levels"),
]


@pytest.mark.parametrize("case", HOSTILE_CASES, ids=[c.name for c in HOSTILE_CASES])
def test_hostile_catalogue_rejected_nothing_outside(tmp_path: Path, case: HostileCase) -> None:
    ds = "hostile_tar"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("do not touch")
    members = _base_members(ds)
    # the hostile members come after some items, so transfers may already be under way
    members[4:4] = case.members(ds, outside)
    data = tmp_path / "hubdata"
    write_prebuilt(data, ds, members, ["c"])
    sandbox = tmp_path / "sandbox"
    out = sandbox / "out"
    before_outside = sorted(_tree(outside))
    with serve(data) as hub:
        for attempt in (1, 2):  # a re-run meets the same refusal: never "complete"
            job = DownloadJob(ds, out, root_url=hub.url, limits=case.limits, workers=4)
            with pytest.raises(UnsafeArchiveError, match=case.match) as info:
                job.start().wait(timeout=120)
            assert job.state == "failed", attempt
            assert hub.count("catalog", "GET") >= 1  # the hub really served the tarball
        assert len(str(info.value)) < 500  # one clear sentence, not a dump
    # nothing outside the output directory, nothing odd inside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hubdata", "outside", "sandbox"]
    assert sorted(p.name for p in sandbox.iterdir()) == ["out"]
    assert sorted(_tree(outside)) == before_outside
    assert (outside / "secret.txt").read_text() == "do not touch"
    assert not (tmp_path / "escape.json").exists()
    for path in _tree(out):
        mode = path.lstat().st_mode
        assert stat.S_ISREG(mode) or stat.S_ISDIR(mode), f"{path} is not a plain file or folder"
        assert path.resolve().is_relative_to(out.resolve())
    # the index was never marked complete
    meta = index_meta(out, ds)
    assert meta.get("index_complete") != "1"


# =============================================================================================
# hostile names in a served catalogue

HOSTILE_COLLECTIONS = [
    "plain_collection",
    "../../escape_collection",
    "/abs/collection",
    "..",
    "CON",
    "nul\x00byte",
    "ctl\x01\x1f\x7fchars",
    "c" * 1000,
]
HOSTILE_ITEMS = [
    "plain_item",
    ".",
    "..",
    "../../../../etc/passwd",
    "/etc/passwd",
    "a/b/c",
    "a\\b",
    "nul\x00item",
    "line\nbreak\r\t",
    "COM1",
    "lpt9.txt",
    "aux",
    "trailing.",
    " padded ",
    "cafe\u0301",
    "café",
    "i" * 1000,
]
HOSTILE_KEYS = [
    "image",
    "../key",
    "/abs_key",
    "NUL",
    "con.json",
    "k\x00ey",
    "k\x1b[31mred",
    "k" * 1000,
    "a:b*c?d",
    "documentation",
]


def _hostile_names_dataset(data_dir: Path, ds: str) -> dict[str, tuple[str, str | None, str]]:
    """Write the dataset; return ``{blob path: (collection, item, key)}`` of every asset."""
    members = [
        Member(f"{ds}/catalog.json", _json({"type": "Catalog", "id": ds, "stac_version": "1.0.0",
                                            "description": "x", "links": []})),
    ]  # fmt: skip
    expected: dict[str, tuple[str, str | None, str]] = {}
    n = 0
    for ci, cid in enumerate(HOSTILE_COLLECTIONS):
        col_assets = {}
        for key in HOSTILE_KEYS[:4]:
            # collection-level assets: real files of the dataset folder (the hub only
            # generates bytes for blob paths that items name)
            rel = f"assets/col_{n:05d}.tif"
            local = data_dir / ds / rel
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(os.urandom(300 + n))
            col_assets[key] = {"href": f"{FILES_PLACEHOLDER}{ds}/{rel}", "type": "image/tiff"}
            expected[f"files/{ds}/{rel}"] = (cid, None, key)
            n += 1
        members.append(Member(f"{ds}/col{ci}/collection.json", _json(_collection(cid, col_assets))))
        items = HOSTILE_ITEMS if ci < 2 else HOSTILE_ITEMS[:3]
        for ii, item_id in enumerate(items):
            assets = {}
            for key in HOSTILE_KEYS:
                if key == "documentation" and ii > 0:  # one shared file per collection
                    continue
                assets[key] = _blob(ds, n)
                expected[f"mlhub/{ds}/blob_{n:05d}.tif"] = (cid, item_id, key)
                n += 1
            member = f"{ds}/col{ci}/item{ii}/item{ii}.json"
            members.append(Member(member, _json(_item(item_id, cid, assets))))
    # hrefs that must never be followed: local files and relative escapes
    evil = {
        "local_file": {"href": "file:///etc/passwd", "type": "text/plain"},
        "relative_escape": {"href": "../../../../../../etc/passwd", "type": "text/plain"},
    }
    members.append(
        Member(
            f"{ds}/col0/evil/evil.json", _json(_item("evil_hrefs", HOSTILE_COLLECTIONS[0], evil))
        )
    )
    write_prebuilt(data_dir, ds, members, HOSTILE_COLLECTIONS)
    return expected


def test_hostile_names_stay_inside_and_are_stable(tmp_path: Path) -> None:
    ds = "hostile_names"
    data = tmp_path / "hubdata"
    expected = _hostile_names_dataset(data, ds)
    sandbox = tmp_path / "sandbox"
    out, again = sandbox / "out", sandbox / "again"
    with serve(data) as hub:
        job = download_dataset(ds, out, root_url=hub.url, progress=False, background=True)
        with pytest.raises(DownloadError, match=f"2 of {len(expected) + 2} assets"):
            job.wait()
        summary = job.summary
        assert isinstance(summary, DownloadSummary)
        # the two evil hrefs are never followed: failed assets, with their reasons
        assert summary.assets_selected == len(expected) + 2 and summary.assets_failed == 2
        report = job.err_report_path.read_text()
        assert "cannot fetch file:// hrefs" in report and "no base URL" in report
        assert hub.count("asset", "GET") == len(expected)
        # the documented mapping (docs/paths.md): paths.asset_relpath of the original names
        rows = {r: u for r, u in index_rows(out, ds).items() if u.startswith(hub.storage_url)}
        verify_some(hub, out, ds, list(rows))
        n = len(rows)
        assert n == len(expected)
        by_blob = {url.split(hub.storage_url, 1)[1]: rel for rel, url in rows.items()}
        assert set(by_blob) == set(expected)
        for blob, (cid, item_id, key) in expected.items():
            want = asset_relpath(cid, item_id, key, hub.storage_url + blob, "image/tiff")
            assert by_blob[blob] == str(want), (cid, item_id, key)
        assert asset_files(out, ds) == set(rows)
        # every path on disk is inside the output directory; components are short and clean
        real_out = out.resolve()
        for path in _tree(sandbox):
            assert path.resolve().is_relative_to(sandbox.resolve())
            assert not path.is_symlink()
        for rel in rows:
            assert (out / ds / rel).resolve().is_relative_to(real_out)
            for part in rel.split("/"):
                assert part not in ("", ".", "..") and len(part.encode()) <= 255, part
                assert not any(ord(ch) < 32 or ch in '\\:*?"<>|' for ch in part), part
        passwd = Path("/etc/passwd").read_bytes()
        assert not any(p.is_file() and p.read_bytes() == passwd for p in _tree(sandbox))
        # second run: a no-op (no asset request), same paths
        hub.reset_counters()
        job = download_dataset(ds, out, root_url=hub.url, progress=False, background=True)
        with pytest.raises(DownloadError):
            job.wait()  # the two evil hrefs fail again, and nothing else is asked for
        rerun = job.summary
        assert isinstance(rerun, DownloadSummary)
        assert hub.count("asset") == 0
        assert rerun.assets_skipped == len(expected) and rerun.assets_downloaded == 0
        assert {r: u for r, u in index_rows(out, ds).items() if r in rows} == rows
        # another folder, another process state: the very same relative paths
        job = download_dataset(ds, again, root_url=hub.url, progress=False, background=True)
        with pytest.raises(DownloadError):
            job.wait()
        assert asset_files(again, ds) == asset_files(out, ds)
    record_figure(
        "test_safety_hostile.py::test_hostile_names_stay_inside_and_are_stable",
        f"{n} assets with hostile ids/keys ({len(HOSTILE_COLLECTIONS)} collections, "
        f"{len(HOSTILE_ITEMS)} item ids, {len(HOSTILE_KEYS)} keys): all inside, "
        "mapping = paths.asset_relpath, re-run 0 asset requests",
        assets=n,
    )


# =============================================================================================
# the API key never leaves the API origin, and is never written anywhere


def _key_dataset(root: Path) -> Path:
    data = make_data_dir(root, "keyds", 150, 2, 256, 4096)
    items = data / "keyds" / "keyds_source" / "items.jsonl"
    extra = _item(
        "api_origin_assets",
        "keyds_source",
        {
            # on the API origin: the key is sent there (same origin) but must not be written
            "api_ok": {"href": f"{API_PLACEHOLDER}datasets", "type": "application/json"},
            "api_missing": {"href": f"{API_PLACEHOLDER}no/such/asset.tif", "type": "image/tiff"},
        },
    )
    with items.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(extra) + "\n")
    return data


def test_api_key_never_reaches_storage_nor_any_output(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    data = _key_dataset(tmp_path)
    out = tmp_path / "out"
    events: list[Any] = []
    with serve(data, require_key=KEY) as hub:
        plan_download("keyds", out, root_url=hub.url, api_key=KEY)
        urls = sorted(u for u in index_rows(out, "keyds").values() if "/keyds_source/" in u)
        hub.faults = FaultConfig(
            missing=frozenset(urls[:3]),
            error_rate=0.05,
            error_statuses=(503,),
            retry_after=0.05,
            drop_rate=0.02,
            seed=11,
        )
        job = download_dataset(
            "keyds", out, root_url=hub.url, api_key=KEY, progress=True, background=True
        )
        assert isinstance(job, DownloadJob)
        job.subscribe(events.append)
        with pytest.raises(DownloadError) as info:
            job.wait(timeout=120)
        storage_keys = hub.keys_seen("storage")
        api_keys = hub.keys_seen("api")
        api_asset_requests = [r for r in hub.requests if r.path.endswith("/no/such/asset.tif")]
    assert storage_keys == 0, "the API key reached the storage origin"
    assert api_keys > 0  # it was sent where it belongs
    assert api_asset_requests and all(r.key_present for r in api_asset_requests)
    error = info.value
    assert error.failed == 4  # 3 missing on storage + 1 missing on the API origin
    secret = KEY.encode()
    # err_report.csv: rows for the failures, no key
    report = out / "keyds" / "err_report.csv"
    text = report.read_text()
    assert len(err_rows(report)) == 4 and KEY not in text
    # the asset index (every sqlite file, raw bytes), every catalogue file, every asset
    for path in _tree(out):
        if path.is_file():
            assert secret not in path.read_bytes(), f"the key is written in {path}"
    # logs at DEBUG (the hub's own server-side logs aside)
    client_records = [r for r in caplog.records if not r.name.startswith("mlhub_widgets.hub")]
    assert client_records, "expected some client log records at DEBUG"
    for record in client_records:
        rendered = record.getMessage()
        if record.exc_info:
            rendered += "".join(traceback.format_exception(*record.exc_info))
        assert KEY not in rendered, f"key logged by {record.name}: {rendered[:200]}"
    # progress bars and anything else on stdout/stderr
    captured = capsys.readouterr()
    assert KEY not in captured.out and KEY not in captured.err
    # the job's objects: summary, progress, every event, the error
    shown = [repr(job), repr(job.progress), repr(job.summary), str(job.summary)]
    shown += [str(error), repr(error), repr(error.args)]
    shown += [repr(e) for e in events]
    assert any("AssetFailed" in s for s in shown) and any("AssetRetried" in s for s in shown)
    for s in shown:
        assert KEY not in s, s[:300]
    record_figure(
        "test_safety_hostile.py::test_api_key_never_reaches_storage_nor_any_output",
        f"{len(urls) + 2} assets, key required: 0 storage requests with the key "
        f"({api_keys} API requests with it); 0 occurrences in {len(client_records)} DEBUG log "
        f"records, err_report.csv ({len(err_rows(report))} rows), sqlite files, catalogue, "
        f"{len(events)} events",
    )


# =============================================================================================
# filter arguments: specific errors before any network call


@pytest.fixture(scope="module")
def fuzz_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    root = tmp_path_factory.mktemp("fuzzhub")
    with serve(make_data_dir(root, "fuzzds", 40, 3, 128, 512)) as hub:
        yield hub


@pytest.fixture(scope="module")
def fuzz_planned(fuzz_hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fuzzplanned")
    plan_download("fuzzds", out, root_url=fuzz_hub.url)
    return out


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
lon = st.floats(-180, 180)
lat = st.floats(-90, 90)
not_a_number = st.one_of(st.text(max_size=5), st.booleans(), st.none(), st.just([1.0]))


@st.composite
def bad_bbox(draw: st.DrawFn) -> tuple[object, type[Exception], str]:
    kind = draw(st.sampled_from(["length", "type", "container", "lon", "lat", "order", "nan"]))
    if kind == "length":
        n = draw(st.integers(0, 9).filter(lambda n: n not in (4, 6)))
        return draw(st.lists(finite, min_size=n, max_size=n)), ValueError, "bbox must have 4"
    if kind == "type":
        box: list[object] = [draw(lon), draw(lat), draw(lon), draw(lat)]
        box[draw(st.integers(0, 3))] = draw(not_a_number)
        return box, TypeError, "bbox element"
    if kind == "container":
        value = draw(
            st.one_of(st.text(max_size=10), st.integers(), st.dictionaries(st.text(), finite))
        )
        return value, TypeError, "bbox must be a list"
    if kind == "lon":
        bad = draw(st.one_of(st.floats(180.001, 1e9), st.floats(-1e9, -180.001)))
        box = [draw(lon), draw(lat), draw(lon), draw(lat)]
        box[draw(st.sampled_from([0, 2]))] = bad
        return box, ValueError, "longitude .* outside \\[-180, 180\\]"
    if kind == "lat":
        bad = draw(st.one_of(st.floats(90.001, 1e9), st.floats(-1e9, -90.001)))
        box = [draw(lon), draw(lat), draw(lon), draw(lat)]
        box[draw(st.sampled_from([1, 3]))] = bad
        return box, ValueError, "latitude .* outside \\[-90, 90\\]"
    if kind == "order":
        south = draw(st.floats(-89, 89))
        north = draw(st.floats(-90, south - 0.001))
        return [draw(lon), south, draw(lon), north], ValueError, "greater than north"
    box = [draw(lon), draw(lat), draw(lon), draw(lat)]
    box[draw(st.integers(0, 3))] = draw(
        st.sampled_from([float("nan"), float("inf"), -float("inf")])
    )
    return box, ValueError, "finite"


def _ring(x: float, y: float) -> list[list[float]]:
    return [[x, y], [x + 1, y], [x + 1, y + 1], [x, y + 1], [x, y]]


@st.composite
def bad_intersects(draw: st.DrawFn) -> tuple[object, type[Exception], str]:
    x, y = draw(st.floats(-170, 170)), draw(st.floats(-80, 80))
    kind = draw(st.sampled_from(
        ["text", "type", "unknown", "nocoords", "unclosed", "range", "empty", "feature", "bowtie"]
    ))  # fmt: skip
    if kind == "text":
        return "{" + draw(st.text(max_size=20)), ValueError, "not valid GeoJSON text"
    if kind == "type":
        return (
            draw(st.one_of(st.integers(), st.floats(), st.lists(finite))),
            TypeError,
            "intersects",
        )
    if kind == "unknown":
        gtype = draw(st.text(min_size=1, max_size=12).filter(lambda t: t not in _GEOJSON_TYPES))
        return {"type": gtype, "coordinates": [x, y]}, ValueError, "intersects"
    if kind == "nocoords":
        return {"type": "Polygon"}, ValueError, "has no 'coordinates'"
    if kind == "unclosed":
        return {"type": "Polygon", "coordinates": [_ring(x, y)[:-1]]}, ValueError, "intersects"
    if kind == "range":
        bad_x = draw(st.floats(181, 1e6))
        return {"type": "Point", "coordinates": [bad_x, y]}, ValueError, "intersects"
    if kind == "empty":
        return {"type": "MultiPolygon", "coordinates": []}, ValueError, "empty"
    if kind == "feature":
        return {"type": "Feature", "geometry": None, "properties": {}}, ValueError, "no geometry"
    bowtie = [[x, y], [x + 1, y + 1], [x + 1, y], [x, y + 1], [x, y]]
    return {"type": "Polygon", "coordinates": [bowtie]}, ValueError, "intersects"


_GEOJSON_TYPES = {
    "Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
    "GeometryCollection", "Feature", "FeatureCollection",
}  # fmt: skip

aware_tz = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-12), max_value=timedelta(hours=14))
)
naive_dt = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2030, 1, 1))
aware_dt = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2030, 1, 1), timezones=aware_tz
)


@st.composite
def bad_datetime(draw: st.DrawFn) -> tuple[object, type[Exception], str]:
    kind = draw(st.sampled_from(
        ["naive", "naive-pair", "naive-text", "reversed", "reversed-text", "type", "pair-len",
         "garbage", "slashes"]
    ))  # fmt: skip
    if kind == "naive":
        return draw(naive_dt), ValueError, "timezone"
    if kind == "naive-pair":
        pair = [draw(naive_dt), draw(aware_dt)]
        if draw(st.booleans()):
            pair.reverse()
        return tuple(pair), ValueError, "timezone"
    if kind == "naive-text":
        return draw(naive_dt).strftime("%Y-%m-%dT%H:%M:%S"), ValueError, "timezone"
    if kind == "reversed":
        a = draw(aware_dt)
        b = a - draw(st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=999)))
        return (a, b), ValueError, "before its start"
    if kind == "reversed-text":
        day = draw(
            st.dates(min_value=datetime(1991, 1, 1).date(), max_value=datetime(2029, 1, 1).date())
        )
        before = day - timedelta(days=draw(st.integers(1, 300)))
        return f"{day.isoformat()}/{before.isoformat()}", ValueError, "before its start"
    if kind == "type":
        return draw(st.one_of(st.integers(), st.floats(), st.booleans())), TypeError, "datetime"
    if kind == "pair-len":
        n = draw(st.sampled_from([0, 1, 3, 4]))
        return [draw(aware_dt) for _ in range(n)], ValueError, "pair"
    if kind == "garbage":
        text = draw(st.text(alphabet="abcxyz!#", min_size=1, max_size=12))
        return text, ValueError, "not an ISO 8601 date"
    return "2020-01-01/2020-02-01/2020-03-01", ValueError, "exactly one '/'"


@st.composite
def bad_collection_filter(draw: st.DrawFn) -> tuple[object, type[Exception], str]:
    kind = draw(st.sampled_from(["type", "bare-string", "key-type", "id-type", "empty"]))
    if kind == "type":
        value = draw(st.one_of(st.text(max_size=8), st.lists(st.text(max_size=4)), st.integers()))
        return value, TypeError, "collection_filter must be a dict"
    if kind == "bare-string":
        return {"fuzzds_source": draw(st.text(min_size=1, max_size=8))}, TypeError, "did you mean"
    if kind == "key-type":
        bad = draw(st.one_of(st.integers(), st.none(), st.floats(allow_nan=False)))
        return {"fuzzds_source": ["asset_0", bad]}, TypeError, "asset keys must be strings"
    if kind == "id-type":
        return {draw(st.integers()): []}, TypeError, "collection ids"
    return {"fuzzds_source": [" "]}, ValueError, "empty asset key"


BAD_ARGUMENTS = st.one_of(
    bad_bbox().map(lambda t: ({"bbox": t[0]}, t[1], t[2])),
    bad_intersects().map(lambda t: ({"intersects": t[0]}, t[1], t[2])),
    bad_datetime().map(lambda t: ({"datetime": t[0]}, t[1], t[2])),
    bad_collection_filter().map(lambda t: ({"collection_filter": t[0]}, t[1], t[2])),
    st.just(({"bbox": [0, 0, 1, 1], "intersects": {"type": "Point", "coordinates": [0, 0]}},
             ValueError, "bbox")),
)  # fmt: skip

_FUZZ_COUNT = {"examples": 0}


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=BAD_ARGUMENTS, entry=st.sampled_from(["download", "background", "plan"]))
def test_fuzzed_filters_fail_specifically_before_any_request(
    fuzz_hub: Hub, tmp_path: Path, case: tuple[dict[str, Any], type[Exception], str], entry: str
) -> None:
    kwargs, error, match = case
    _FUZZ_COUNT["examples"] += 1
    before = fuzz_hub.count()
    for root in (closed_port_url(), fuzz_hub.url):  # a request would fail differently there
        with pytest.raises(error, match=match) as info:
            if entry == "plan":
                plan_download("fuzzds", tmp_path / "o", root_url=root, **kwargs)
            else:
                download_dataset(
                    "fuzzds",
                    tmp_path / "o",
                    root_url=root,
                    progress=False,
                    background=entry == "background",
                    **kwargs,
                )
        # the specific class, not a subclass raised by a network failure
        assert not isinstance(info.value, MLHubException), info.value
    assert fuzz_hub.count() == before, "a request was sent for invalid arguments"
    assert not (tmp_path / "o").exists(), "something was written for invalid arguments"


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    cid=st.text(min_size=1, max_size=20).filter(lambda s: s.strip() and s != "fuzzds_source"),
    key=st.text(min_size=1, max_size=20).filter(lambda s: s.strip() and not s.startswith("asset_")),
    which=st.sampled_from(["collection", "key"]),
)
def test_fuzzed_unknown_collections_and_keys_list_valid_ones(
    fuzz_hub: Hub, fuzz_planned: Path, cid: str, key: str, which: str
) -> None:
    cf = {cid: []} if which == "collection" else {"fuzzds_source": [key]}
    fuzz_hub.reset_counters()
    match = "valid collections: 'fuzzds_source'" if which == "collection" else "valid asset keys"
    for entry in ("plan", "download"):
        with pytest.raises(ValueError, match=match) as info:
            if entry == "plan":
                plan_download("fuzzds", fuzz_planned, root_url=fuzz_hub.url, collection_filter=cf)
            else:
                download_dataset(
                    "fuzzds", fuzz_planned, root_url=fuzz_hub.url, collection_filter=cf,
                    progress=False,
                )  # fmt: skip
        if which == "key":
            assert "asset_0" in str(info.value)
    assert fuzz_hub.count("asset") == 0


def test_fuzz_figure() -> None:
    record_figure(
        "test_safety_hostile.py::test_fuzzed_filters_fail_specifically_before_any_request",
        f"{_FUZZ_COUNT['examples']} hypothesis examples × 2 roots (closed port, hub) × "
        "download/background/plan: specific ValueError/TypeError, 0 requests, nothing written",
        examples=_FUZZ_COUNT["examples"],
    )


# =============================================================================================
# the profiles file: clear messages, never a configparser traceback


@pytest.fixture(scope="module")
def profile_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    root = tmp_path_factory.mktemp("profilehub")
    with serve(make_data_dir(root, "profds", 5, 1, 64, 128), require_key=KEY) as hub:
        yield hub


BROKEN_PROFILES: list[tuple[str, bytes | None, str | None, str]] = [
    # (case id, file content (None: a directory), profile argument, expected message part)
    ("no-section-header", b"api_key = abc\n", "default", "not valid INI"),
    ("garbage-text", b"\x7fELF garbage ][ \n=== \n", "default", "not valid INI"),
    ("binary", bytes(range(128, 256)) * 4, "default", "not UTF-8"),
    ("unclosed-section", b"[default\napi_key = abc\n", "default", "not valid INI"),
    ("duplicate-section", b"[a]\napi_key=1\n[a]\napi_key=2\n", "a", "not valid INI"),
    ("duplicate-option", b"[a]\napi_key=1\napi_key=2\n", "a", "not valid INI"),
    ("missing-section", b"[default]\napi_key = abc\n", "work", "Profile 'work' not found in"),
    ("section-without-key", b"[work]\nroot_url = http://x/\n", "work", "has no api_key"),
    ("empty-file", b"", "work", "profiles there: none"),
    ("is-a-directory", None, "default", "Cannot read profiles file"),
    ("default-lookup-garbage", b"\x00\x01[[[", None, "not valid INI"),
]


def _write_profiles(content: bytes | None) -> Path:
    path = profiles.profiles_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
        path.chmod(0o600)
    return path


def _chain(exc: BaseException) -> list[BaseException]:
    out, seen = [], set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        out.append(cur)
        cur = cur.__cause__ or (None if cur.__suppress_context__ else cur.__context__)
    return out


@pytest.mark.parametrize(
    ("content", "profile", "match"),
    [c[1:] for c in BROKEN_PROFILES],
    ids=[c[0] for c in BROKEN_PROFILES],
)
def test_broken_profiles_give_clear_errors(
    profile_hub: Hub,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes | None,
    profile: str | None,
    match: str,
) -> None:
    path = _write_profiles(content)
    profile_hub.reset_counters()
    with pytest.raises(ProfileError, match=match) as info:
        download_dataset("profds", tmp_path / "o", root_url=profile_hub.url, profile=profile,
                         progress=False)  # fmt: skip
    message = str(info.value)
    assert str(path) in message
    if profile:
        assert profile in message or "INI" in message or "UTF-8" in message or "read" in message
    assert "\n" not in message and "Traceback" not in message
    shown = [type(e).__module__ for e in _chain(info.value)]
    assert not any(m.startswith("configparser") for m in shown), shown
    assert profile_hub.count() == 0  # the key is resolved before anything is sent
    # the command line: exit status 2, one clear line, no traceback
    argv = ["download", "profds", "-o", str(tmp_path / "cli"), "-q", "--root-url", profile_hub.url]
    if profile:
        argv += ["--profile", profile]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "configparser" not in err
    assert err.startswith("mlhub: error: ") and str(path) in err
    assert profile_hub.count() == 0


def test_profile_from_environment_that_does_not_exist(
    profile_hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_profiles(b"[default]\napi_key = abc\n")
    monkeypatch.setenv("MLHUB_PROFILE", "nope")
    with pytest.raises(ProfileError, match=r"Profile 'nope' not found .*profiles there: default"):
        download_dataset("profds", tmp_path / "o", root_url=profile_hub.url, progress=False)
    assert cli_main(["download", "profds", "-o", str(tmp_path), "-q", "--root-url",
                     profile_hub.url]) == 2  # fmt: skip


def test_world_readable_profiles_warn_and_still_work(
    profile_hub: Hub,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _write_profiles(f"[work]\napi_key = {KEY}\n".encode())
    path.chmod(0o644)
    caplog.set_level(logging.WARNING)
    summary = download_dataset(
        "profds", tmp_path / "o", root_url=profile_hub.url, profile="work", progress=False
    )
    assert isinstance(summary, DownloadSummary) and summary.complete
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("readable by other users" in w and f"chmod 600 {path}" in w for w in warnings)
    assert not any(KEY in w for w in warnings)
    caplog.clear()
    argv = ["download", "profds", "-o", str(tmp_path / "cli"), "-q", "--profile", "work",
            "--root-url", profile_hub.url]  # fmt: skip
    assert cli_main(argv) == 0
    assert KEY not in capsys.readouterr().err


def test_naive_and_aware_datetimes_documented_behaviour(fuzz_hub: Hub, tmp_path: Path) -> None:
    """Aware datetimes and dates are accepted (the download runs); naive ones never are."""
    aware = (datetime(2020, 1, 1, tzinfo=UTC), datetime(2021, 1, 1, tzinfo=UTC))
    summary = download_dataset(
        "fuzzds", tmp_path / "o", root_url=fuzz_hub.url, datetime=aware, progress=False
    )
    assert isinstance(summary, DownloadSummary) and summary.assets_selected > 0
    with pytest.raises(ValueError, match="timezone"):
        download_dataset(
            "fuzzds",
            tmp_path / "o",
            root_url=closed_port_url(),
            datetime=(datetime(2020, 1, 1), aware[1]),
            progress=False,
        )
    assert verify_download(fuzz_hub, tmp_path / "o", "fuzzds") == summary.assets_selected


def test_err_report_header_constant_matches_product() -> None:
    from mlhub_widgets.download.report import ERR_REPORT_COLUMNS

    assert ",".join(ERR_REPORT_COLUMNS) == ERR_HEADER
