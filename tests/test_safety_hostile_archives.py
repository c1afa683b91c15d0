"""Hostile catalogue archives, end to end, from a hostile server written here (no hub).

Each attack drives the public entry points (``mlhub download``, ``download_dataset``,
``DownloadJob``) against :mod:`tests.hostile_server`:

* a dataset's catalogue that plants an asset index (and a catalogue) for another dataset in
  the same output folder, or a member at an asset's path with the right size and the wrong
  bytes;
* compression bombs (a member declared far larger than its archive could hold; a member that
  expands more than 100 times mid-stream), an inode flood of empty members;
* a member that is a file and then a folder.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import os
import sqlite3
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlhub_widgets.cli import main as cli_main
from mlhub_widgets.download import DownloadJob, DownloadSummary, download_dataset
from mlhub_widgets.download.catalog_archive import ArchiveLimits
from mlhub_widgets.download.index import filter_fingerprint
from mlhub_widgets.download.manifest import Manifest
from mlhub_widgets.exceptions import DiskFullError, DownloadError, UnsafeArchiveError
from mlhub_widgets.filters import AssetFilter

from .hostile_server import (
    HostileServer,
    catalogue_tarball,
    dataset_items,
    file_asset,
    hostile_server,
    serve_dataset,
    stac_item,
)
from .reliability_support import err_rows, mount_tmpfs, record_figure, umount

KEY = "k-hostile"


def _cli(server: HostileServer, ds: str, out: Path) -> list[str]:
    return ["download", ds, "-o", str(out), "-q", "--root-url", server.api, "--api-key", KEY]


def _tree(root: Path) -> list[Path]:
    return [Path(d) / n for d, dirs, files in os.walk(root) for n in dirs + files]


# =============================================================================================
# item 1: a catalogue never makes a later download write outside the output folder


def _crafted_index(path: Path, ds: str, *, tarball: bytes, etag: str, rows: list[tuple]) -> bytes:
    """An asset index of ``ds`` that matches its served catalogue (so a download reuses it)
    and lists ``rows`` of ``(path, url)``."""
    with Manifest(path) as db:
        db.set_meta(
            {
                "catalog": {"size": len(tarball), "etag": etag, "last_modified": None},
                "index_complete": "1",
                "catalog_root": f"{ds}/catalog.json",
                "filter": filter_fingerprint(AssetFilter.build()),
                "filter_stats": {"matched": len(rows)},
            }
        )
    with contextlib.closing(sqlite3.connect(path)) as con:
        con.execute("INSERT INTO collections(collection_id, types) VALUES ('c', '[]')")
        con.execute("INSERT INTO asset_keys VALUES ('c', 'image', ?)", (len(rows),))
        for seq, (rel, url) in enumerate(rows, 1):
            con.execute(
                "INSERT INTO assets(path, url, collection_id, asset_key, selected, seq) "
                "VALUES (?, ?, 'c', 'image', 1, ?)",
                (rel, url, seq),
            )
        con.commit()
        con.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    return path.read_bytes()


def test_a_catalogue_cannot_plant_another_datasets_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Dataset A's tarball holds ``B/mlhub_assets.db`` (an index for B whose row writes
    outside the folder) and ``B/catalog.json``: A is refused, B's download stays inside."""
    out = tmp_path / "out"
    outside = tmp_path / "outside"
    with hostile_server() as server:
        b_items, b_files = dataset_items(server, "B", 2)
        b_tarball = catalogue_tarball("B", b_items)
        serve_dataset(server, "B", b_tarball, etag="B-v1")
        evil_url = b_items[0]["assets"]["image"]["href"]
        crafted = _crafted_index(
            tmp_path / "crafted.db",
            "B",
            tarball=b_tarball,
            etag='"B-v1"',
            rows=[("../../outside/pwned.tif", evil_url), ("c/i0/image.tif", evil_url)],
        )
        a_items, _ = dataset_items(server, "A", 2)
        a_tarball = catalogue_tarball(
            "A",
            a_items,
            extra=[("B/mlhub_assets.db", crafted), ("B/catalog.json", b'{"type": "Catalog"}')],
        )
        serve_dataset(server, "A", a_tarball)

        assert cli_main(_cli(server, "A", out)) == 1
        err = capsys.readouterr().err
        assert err.startswith("mlhub: error: ") and err.count("\n") == 1, err
        assert "'B/mlhub_assets.db' lies outside the catalogue's folder 'A/'" in err
        assert not (out / "B").exists()

        assert cli_main(_cli(server, "B", out)) == 0, capsys.readouterr().err
    assert not outside.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crafted.db", "out"]
    for rel, data in b_files.items():
        assert (out / "B" / rel).read_bytes() == data
    with contextlib.closing(sqlite3.connect(out / "B" / "mlhub_assets.db")) as con:
        paths = {row[0] for row in con.execute("SELECT path FROM assets")}
    assert paths == set(b_files)  # B's own index, built from B's catalogue


def test_index_paths_are_checked_like_tar_members(tmp_path: Path) -> None:
    """An asset index written by someone else (reused because it matches the catalogue):
    its row that escapes the folder fails alone, with the reason; nothing is written
    outside; the other row downloads."""
    out = tmp_path / "out"
    with hostile_server() as server:
        items, files = dataset_items(server, "B", 2)
        tarball = catalogue_tarball("B", items)
        serve_dataset(server, "B", tarball, etag="B-v1")
        url = items[0]["assets"]["image"]["href"]
        folder = out / "B"
        folder.mkdir(parents=True)
        (folder / "catalog.json").write_text("{}")
        rows = [("../../outside/pwned.tif", url), ("c/i0/image.tif", url)]
        _crafted_index(folder / "mlhub_assets.db", "B", tarball=tarball, etag='"B-v1"', rows=rows)
        with pytest.raises(DownloadError, match="1 of 2 assets of B failed") as info:
            download_dataset("B", out, root_url=server.api, api_key=KEY, progress=False)
    assert not (tmp_path / "outside").exists()
    assert (out / "B" / "c/i0/image.tif").read_bytes() == files["c/i0/image.tif"]
    [row] = err_rows(info.value.report)  # type: ignore[arg-type]
    assert row["path"].endswith("../../outside/pwned.tif")
    assert "escapes the archive with '..'" in row["error"] or "'..'" in row["error"]


def test_a_catalogue_member_never_passes_for_an_asset(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A member at an asset's path, with the asset's size and other bytes: never taken as
    downloaded (its checksum is checked), and a later catalogue never overwrites a finished
    asset with one."""
    out = tmp_path / "out"
    caplog.set_level(logging.WARNING)
    with hostile_server() as server:
        items, files = dataset_items(server, "A", 3)
        rel = "c/i1/image.tif"
        fake = bytes(len(files[rel]))  # right size, wrong bytes
        serve_dataset(server, "A", catalogue_tarball("A", items, extra=[(f"A/{rel}", fake)]))
        summary = download_dataset("A", out, root_url=server.api, api_key=KEY, progress=False)
        assert isinstance(summary, DownloadSummary) and summary.complete
        for path, data in files.items():
            assert (out / "A" / path).read_bytes() == data, path
        assert server.count("/files/A/i1.tif") == 1  # fetched, not taken from the catalogue
        assert any("does not match its file:checksum" in r.getMessage() for r in caplog.records)

        # a new version of the catalogue, with the same member over the finished asset
        items.append(stac_item("i9", "c", {"image": file_asset(server, "A", "i9.tif", b"n" * 99)}))
        v2 = catalogue_tarball("A", items, extra=[(f"A/{rel}", fake)])
        serve_dataset(server, "A", v2, etag="A-v2")
        caplog.clear()
        summary = download_dataset("A", out, root_url=server.api, api_key=KEY, progress=False)
        assert isinstance(summary, DownloadSummary) and summary.complete
        assert summary.assets_downloaded == 1  # only the new asset
    for path, data in files.items():
        assert (out / "A" / path).read_bytes() == data, path
    assert any("were not unpacked" in r.getMessage() and rel in r.getMessage()
               for r in caplog.records)  # fmt: skip


# =============================================================================================
# item 5: compression bombs and inode floods


def _tar_member(name: str, data: bytes, size: int | None = None) -> bytes:
    """One tar member as bytes (header, data, padding); ``size`` overrides the header's."""
    info = tarfile.TarInfo(name)
    info.size = len(data) if size is None else size
    return info.tobuf(tarfile.GNU_FORMAT) + data + bytes(-len(data) % tarfile.BLOCKSIZE)


def _zeros_member_gzip(ds: str, size: int, *, noise: int = 0) -> bytes:
    """A gzip catalogue whose member ``{ds}/c/zeros.bin`` holds ``size`` zero bytes (a whole
    number of MiB, as concatenated gzip streams: making it costs nothing), then ``noise``
    random bytes in another member (compressed bytes a size-based limit counts)."""
    with tarfile.open(fileobj=io.BytesIO(catalogue_tarball(ds, []))) as src:
        head = [_tar_member(m.name, src.extractfile(m).read()) for m in src]  # type: ignore[union-attr]
    head.append(_tar_member(f"{ds}/c/zeros.bin", b"", size=size))
    tail = _tar_member(f"{ds}/c/noise.bin", os.urandom(noise)) if noise else b""
    mib = gzip.compress(bytes(1 << 20), 9)
    parts = [gzip.compress(b"".join(head), 9), mib * (size >> 20)]
    parts.append(gzip.compress(tail + bytes(2 * tarfile.BLOCKSIZE), 9))
    return b"".join(parts)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MiB tmpfs where it can be mounted (root), else a plain folder: a bomb that is not
    refused fills the tmpfs (the test then fails quickly instead of writing gigabytes)."""
    path = tmp_path / "smallfs"
    try:
        mount_tmpfs(path, "48m")
    except OSError:
        path.mkdir(exist_ok=True)
        yield path
        return
    try:
        yield path
    finally:
        umount(path)


def test_a_member_larger_than_the_archive_can_hold_is_refused_unwritten(
    small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = "bomb"
    tarball = _zeros_member_gzip(ds, 1 << 30)  # 1 GiB of zeros in ~1 MB
    with hostile_server() as server:
        serve_dataset(server, ds, tarball)
        assert cli_main(_cli(server, ds, small_disk / "out")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "expands to more than" in err and "'bomb/c/zeros.bin' of 1,073,741,824 bytes" in err
    assert not (small_disk / "out" / ds / "c" / "zeros.bin").exists()  # not a byte written
    used = sum(p.stat().st_size for p in _tree(small_disk) if p.is_file())
    assert used < 4 << 20, used
    record_figure(
        "test_safety_hostile_archives.py::"
        "test_a_member_larger_than_the_archive_can_hold_is_refused_unwritten",
        f"{len(tarball):,}-byte tarball declaring a 1 GiB member: refused at its header, "
        f"{used:,} bytes on disk",
    )


def test_a_member_expanding_too_fast_is_refused_and_removed(
    small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The member fits the size limit (the archive carries 2 MB of noise after it), but
    expands ~1,000 times: refused at 16 MiB with the ratio named; its partial file removed."""
    ds = "ratio"
    tarball = _zeros_member_gzip(ds, 192 << 20, noise=2 << 20)
    with hostile_server() as server:
        serve_dataset(server, ds, tarball)
        job = DownloadJob(ds, small_disk / "out", root_url=server.api, api_key=KEY)
        with pytest.raises(UnsafeArchiveError, match="expands more than 100 times") as info:
            job.start().wait(timeout=120)
    assert len(str(info.value)) < 300
    assert not (small_disk / "out" / ds / "c" / "zeros.bin").exists()
    unpacked = _tree(small_disk / "out" / ds)
    assert not [p for p in unpacked if p.is_file() and p.stat().st_size > 1 << 20]


def test_a_full_disk_while_unpacking_is_clear_and_leaves_no_partial_file(
    small_disk: Path,
) -> None:
    """A catalogue within every limit (64 MiB expanding ~30 times) on a 48 MiB disk: a
    ``DiskFullError`` that says the catalogue was being unpacked, and no cut file keeps its
    name."""
    if not os.path.ismount(small_disk):
        pytest.skip("needs a small tmpfs (root): on a big disk this catalogue just fits")
    ds = "big"
    chunk = 64 << 10
    data = b"".join(os.urandom(2048) + bytes(chunk - 2048) for _ in range(1024))
    tarball = catalogue_tarball(ds, [], extra=[(f"{ds}/c/big.bin", data)])
    with hostile_server() as server:
        serve_dataset(server, ds, tarball)
        with pytest.raises(DiskFullError) as info:
            download_dataset(ds, small_disk / "out", root_url=server.api, api_key=KEY,
                             progress=False)  # fmt: skip
    text = str(info.value)
    assert text.startswith(f"Disk full: no space left to unpack the catalogue of {ds} in ")
    assert "run the same download again" in text
    assert not (small_disk / "out" / ds / "c" / "big.bin").exists()


def test_an_inode_flood_is_refused_by_the_member_limit(tmp_path: Path) -> None:
    """40,000 empty members in ~250 kB: the member limit sized from the archive's size
    (10,000 + one per 32 compressed bytes) refuses it long before the end."""
    ds = "flood"
    empties = []
    for i in range(40_000):
        info = tarfile.TarInfo(f"{ds}/c/f/{i:06d}")
        empties.append(info)
    tarball = catalogue_tarball(ds, [], members=empties)
    defaults = ArchiveLimits()
    limit = defaults.free_members + len(tarball) // defaults.bytes_per_member
    with hostile_server() as server:
        serve_dataset(server, ds, tarball)
        with pytest.raises(UnsafeArchiveError, match=f"more than {limit:,} members"):
            download_dataset(ds, tmp_path / "out", root_url=server.api, api_key=KEY, progress=False)
    created = len(list((tmp_path / "out" / ds / "c" / "f").iterdir()))
    assert created < limit < 40_000
    record_figure(
        "test_safety_hostile_archives.py::test_an_inode_flood_is_refused_by_the_member_limit",
        f"40,000 empty members in a {len(tarball):,}-byte tarball: refused after {limit:,} "
        f"members ({created:,} files created)",
        limit=limit,
    )


# =============================================================================================
# item 12: a member that is a file and then a folder


@pytest.mark.parametrize("order", ["file-then-folder", "folder-then-file"])
def test_a_file_and_folder_clash_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], order: str
) -> None:
    ds = "clash"
    folder = tarfile.TarInfo(f"{ds}/c/x")
    folder.type = tarfile.DIRTYPE
    file = (tarfile.TarInfo(f"{ds}/c/x"), b"{}")
    inner = (tarfile.TarInfo(f"{ds}/c/x/y.json"), b"{}")
    members: list = [file, inner] if order == "file-then-folder" else [folder, file]
    with hostile_server() as server:
        serve_dataset(server, ds, catalogue_tarball(ds, [], members=members))
        with pytest.raises(UnsafeArchiveError, match="cannot be written"):
            download_dataset(ds, tmp_path / "api", root_url=server.api, api_key=KEY,
                             progress=False)  # fmt: skip
        assert cli_main(_cli(server, ds, tmp_path / "cli")) == 1
    err = capsys.readouterr().err
    assert err.startswith("mlhub: error: catalogue member 'clash/c/x") and err.count("\n") == 1
    assert "Traceback" not in err and "Error:" not in err.split(": error: ", 1)[1][:20]


def test_the_catalogue_info_is_json_object_or_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``/catalog/{id}/info`` answering a list, a string or a number: one line, exit 1 (the
    server's fault, not the arguments'), an ``MLHubException`` from the API."""
    from mlhub_widgets.exceptions import MLHubResponseError

    ds = "info"
    with hostile_server() as server:
        for info in ([1, 2], "text", 42):
            serve_dataset(server, ds, catalogue_tarball(ds, []), info=info)
            with pytest.raises(MLHubResponseError, match="not a JSON object"):
                download_dataset(ds, tmp_path / "o", root_url=server.api, api_key=KEY,
                                 progress=False)  # fmt: skip
            assert cli_main(_cli(server, ds, tmp_path / "o")) == 1
            err = capsys.readouterr().err
            assert err.startswith("mlhub: error: the catalogue info of info is not a JSON")
            assert err.count("\n") == 1, err
            assert json.dumps(info) in err
