"""The asset index built in a child interpreter (``download.index_process.IndexProcess``).

The oracle is the same builder run inline in this process: both must leave identical rows in
the manifest. The rest covers what a second process adds: cancelling it, a damaged tarball,
the child dying, the parent dying, warnings coming back, and starting without a child.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import sqlite3
import sys
import tarfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mlhub_widgets.download import download_dataset
from mlhub_widgets.download.catalog_archive import ArchiveLimits
from mlhub_widgets.download.index import (
    Cancelled,
    IndexBuilder,
    IndexConfig,
)
from mlhub_widgets.download.index_process import IndexProcess
from mlhub_widgets.exceptions import CatalogError, DownloadError
from mlhub_widgets.filters import AssetFilter
from mlhub_widgets.hub import Hub

from .reliability_support import child_outlives_killed_parent

DS = "nasa_marine_debris"
ROW_COLUMNS = "path, url, selected, size, checksum, collection_id, item_id, asset_key"


@pytest.fixture(scope="module")
def tarball(hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real nasa_marine_debris catalogue tarball, fetched once from the hub."""
    out = tmp_path_factory.mktemp("catalog")
    download_dataset(DS, out, root_url=hub.url, catalog_only=True, progress=False)
    path = out / f"{DS}.tar.gz"
    assert path.is_file()
    return path


def _config(tmp: Path, tarball: Path, flt: AssetFilter | None = None) -> IndexConfig:
    tmp.mkdir(parents=True, exist_ok=True)
    local = tmp / tarball.name
    shutil.copyfile(tarball, local)
    return IndexConfig(
        dataset_id=DS,
        output_dir=tmp,
        catalog_path=local,
        manifest_path=tmp / DS / "mlhub_assets.db",
        flt=flt or AssetFilter.build(),
        limits=ArchiveLimits(),
    )


def _rows(cfg: IndexConfig) -> list[tuple[Any, ...]]:
    with sqlite3.connect(cfg.manifest_path) as con:
        return con.execute(f"SELECT {ROW_COLUMNS} FROM assets ORDER BY path").fetchall()


def _run_process(cfg: IndexConfig, cancelled: threading.Event | None = None) -> IndexProcess:
    proc = IndexProcess.spawn()
    progress: list[tuple[int, int, int]] = []
    proc.begin(cfg, {}, 0, lambda *a: progress.append(a), cancelled or threading.Event())
    proc.join()
    return proc


def _run_inline(cfg: IndexConfig) -> IndexBuilder:
    builder = IndexBuilder(cfg, {}, 0, lambda *_a: None, threading.Event())
    builder.run()
    return builder


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"bbox": [-87.5610, 5.9137, -87.5555, 15.9191]},
        {"collection_filter": {"nasa_marine_debris_labels": ["labels"]}},
        {"datetime": "2018-12-15T00:00:00Z"},
    ],
    ids=["all", "bbox", "collection_filter", "datetime"],
)
def test_child_index_equals_inline_index(
    tarball: Path, tmp_path: Path, filters: dict[str, Any]
) -> None:
    flt = AssetFilter.build(**filters)
    inline_cfg = _config(tmp_path / "inline", tarball, flt)
    child_cfg = _config(tmp_path / "child", tarball, flt)
    inline = _run_inline(inline_cfg)
    child = _run_process(child_cfg)
    assert inline.error is None and child.error is None
    rows = _rows(child_cfg)
    assert rows == _rows(inline_cfg)
    assert len(rows) == 3530 - 705  # every href but the shared documentation PDF
    assert child.selected == inline.selected  # hrefs selected (before deduplication)
    assert (child.items, child.assets) == (inline.items, inline.assets)
    assert child.seen_keys == inline.seen_keys
    assert child.catalog_md5() == inline.catalog_md5()
    # the catalogue was unpacked by the child, like inline
    assert (child_cfg.output_dir / DS / "catalog.json").read_bytes() == (
        inline_cfg.output_dir / DS / "catalog.json"
    ).read_bytes()


def _asset_hrefs(folder: Path) -> list[str]:
    hrefs = []
    for path in folder.rglob("*.json"):
        doc = json.loads(path.read_bytes())
        if isinstance(doc, dict) and isinstance(doc.get("assets"), dict):
            hrefs += [a["href"] for a in doc["assets"].values()]
    return hrefs


def test_the_child_writes_the_local_catalogue_after_its_build(
    tarball: Path, tmp_path: Path
) -> None:
    # the child does it while the download's transfers run; the download finds it done
    child_cfg = _config(tmp_path / "child", tarball)
    inline_cfg = _config(tmp_path / "inline", tarball)
    child = _run_process(child_cfg)
    _run_inline(inline_cfg)
    assert child.error is None and child.done.is_set()
    local = _asset_hrefs(child_cfg.output_dir / DS)
    server = _asset_hrefs(inline_cfg.output_dir / DS)  # the inline builder leaves it as served
    assert len(local) == len(server) > 3000
    assert sum(h.startswith("http") for h in server) > 3000
    assert [h for h in local if h.startswith("http")] == []
    with sqlite3.connect(child_cfg.manifest_path) as con:
        marker = con.execute("SELECT value FROM meta WHERE key='local_catalog'").fetchone()
    assert marker is not None and json.loads(marker[0])["asset_dir"] == str(
        (child_cfg.output_dir / DS).resolve()
    )


def test_cancel_stops_the_child(tarball: Path, tmp_path: Path) -> None:
    cancelled = threading.Event()
    cancelled.set()  # before the first member: the child stops at once
    proc = _run_process(_config(tmp_path, tarball), cancelled)
    assert isinstance(proc.error, Cancelled)
    assert proc._proc.poll() is not None


def test_damaged_tarball_is_a_catalog_error_and_deleted(tarball: Path, tmp_path: Path) -> None:
    cfg = _config(tmp_path, tarball)
    data = cfg.catalog_path.read_bytes()
    cfg.catalog_path.write_bytes(data[: len(data) // 2])  # a download cut in the middle
    proc = _run_process(cfg)
    assert isinstance(proc.error, CatalogError)
    assert "damaged or incomplete" in str(proc.error)
    assert not cfg.catalog_path.exists(), "a damaged catalogue must not be reused"


def test_child_killed_is_an_error_naming_it(tarball: Path, tmp_path: Path) -> None:
    cfg = _config(tmp_path, tarball)
    cfg.catalog_path.unlink()
    os.mkfifo(cfg.catalog_path)  # the child blocks opening it: killed mid-build, surely
    proc = IndexProcess.spawn()
    proc.begin(cfg, {}, 0, lambda *_a: None, threading.Event())
    proc._proc.kill()
    proc.join()
    assert isinstance(proc.error, DownloadError)
    assert "indexer process ended unexpectedly (exit status -9)" in str(proc.error)


def test_child_dead_before_its_build_is_an_error(tarball: Path, tmp_path: Path) -> None:
    proc = IndexProcess.spawn()
    proc._proc.kill()
    proc._proc.wait()
    proc.begin(_config(tmp_path, tarball), {}, 0, lambda *_a: None, threading.Event())
    proc.join()
    assert isinstance(proc.error, DownloadError)
    assert "indexer process" in str(proc.error)


def _children() -> set[int]:
    me = os.getpid()
    pids: set[int] = set()
    for tid in os.listdir(f"/proc/{me}/task"):
        with contextlib.suppress(OSError):
            pids |= {int(p) for p in Path(f"/proc/{me}/task/{tid}/children").read_text().split()}
    return pids


def test_rerun_with_a_reused_index_leaves_no_child_behind(hub: Hub, tmp_path: Path) -> None:
    """The child is started speculatively with every job; when the index is reused (a no-op
    re-run) it is ended at once, not left running or as a zombie."""
    kw = {
        "root_url": hub.url,
        "progress": False,
        "collection_filter": {"nasa_marine_debris_labels": ["labels"]},
    }
    download_dataset(DS, tmp_path, **kw)
    before = _children()
    again = download_dataset(DS, tmp_path, **kw)
    assert again.assets_downloaded == 0 and again.assets_skipped == 706
    assert _children() <= before


def _tarball_with_shared_path(path: Path) -> None:
    """Two items with the same id in one collection: their assets share a saved path."""
    docs: dict[str, Any] = {
        f"{DS}/catalog.json": {
            "type": "Catalog",
            "id": "ds",
            "stac_version": "1.0.0",
            "description": "d",
            "links": [],
        },
        f"{DS}/c/collection.json": {
            "type": "Collection",
            "id": "c",
            "stac_version": "1.0.0",
            "description": "d",
            "license": "CC-BY-4.0",
            "links": [],
            "extent": {},
        },
    }
    for folder in ("a", "b"):
        docs[f"{DS}/c/{folder}/item.json"] = {
            "type": "Feature",
            "stac_version": "1.0.0",
            "id": "same",
            "collection": "c",
            "geometry": None,
            "bbox": None,
            "properties": {"datetime": "2020-01-01T00:00:00Z"},
            "links": [],
            "assets": {"image": {"href": f"http://storage.test/{folder}.tif"}},
        }
    with tarfile.open(path, "w:gz") as tar:
        for name, doc in docs.items():
            raw = json.dumps(doc).encode()
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))


def test_child_warnings_reach_the_parent_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = tmp_path / "src.tar.gz"
    _tarball_with_shared_path(src)
    cfg = _config(tmp_path / "out", src)
    with caplog.at_level(logging.WARNING, logger="mlhub_widgets"):
        proc = _run_process(cfg)
    assert proc.error is None
    assert proc.assets == 2 and len(_rows(cfg)) == 1
    shared = [r for r in caplog.records if "share the saved path" in r.getMessage()]
    assert shared and shared[0].name == "mlhub_widgets.download.index"


def test_child_ends_when_the_parent_dies(tarball: Path, tmp_path: Path) -> None:
    """A parent killed mid-index (SIGKILL) leaves no orphan indexing behind."""
    cfg = _config(tmp_path, tarball)
    script = textwrap.dedent(
        f"""
        import threading, sys, time
        from pathlib import Path
        from mlhub_widgets.download.index import IndexConfig
        from mlhub_widgets.download.index_process import IndexProcess
        from mlhub_widgets.download.catalog_archive import ArchiveLimits
        from mlhub_widgets.filters import AssetFilter
        cfg = IndexConfig({DS!r}, Path({str(cfg.output_dir)!r}), Path({str(cfg.catalog_path)!r}),
                          Path({str(cfg.manifest_path)!r}), AssetFilter.build(), ArchiveLimits())
        proc = IndexProcess.spawn()
        print(proc._proc.pid, flush=True)
        proc.begin(cfg, {{}}, 0, lambda *a: None, threading.Event())
        time.sleep(60)  # the parent lives, its child busy, until the test kills it
        """
    )
    if child_outlives_killed_parent(script, 20):
        pytest.fail("the index child kept running after its parent was killed")


def test_download_indexes_in_a_child(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    begun: list[IndexConfig] = []
    real_begin = IndexProcess.begin

    def spy(self: IndexProcess, cfg: IndexConfig, *args: Any) -> None:
        begun.append(cfg)
        real_begin(self, cfg, *args)

    monkeypatch.setattr(IndexProcess, "begin", spy)
    summary = download_dataset(
        DS,
        tmp_path,
        root_url=hub.url,
        collection_filter={"nasa_marine_debris_labels": ["labels"]},
        progress=False,
    )
    assert [c.dataset_id for c in begun] == [DS]
    assert summary.assets_downloaded == 706 and summary.assets_failed == 0


def test_download_without_a_child_interpreter_builds_in_a_thread(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    with caplog.at_level(logging.INFO, logger="mlhub_widgets"):
        summary = download_dataset(
            DS,
            tmp_path,
            root_url=hub.url,
            collection_filter={"nasa_marine_debris_labels": ["labels"]},
            progress=False,
        )
    assert summary.assets_downloaded == 706
    assert any("building the index in a thread" in r.getMessage() for r in caplog.records)


def test_transfers_start_while_the_child_still_indexes(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """Rows reach the transfers as the child commits them: the first asset request comes
    long before the index is complete (20,000 items)."""
    from mlhub_widgets.download import AssetStarted, IndexBuilt, IndexProgress
    from mlhub_widgets.hub import serve
    from tests.reliability_support import make_data_dir

    data = make_data_dir(tmp_path_factory.mktemp("stream"), "streamds", 20_000, 1, 64, 128)
    events: list[tuple[float, Any]] = []
    with serve(data) as hub:
        summary = download_dataset(
            "streamds",
            tmp_path,
            root_url=hub.url,
            progress=lambda e: events.append((time.monotonic(), e)),
        )
    assert summary.assets_downloaded == 20_000
    first_asset = next(t for t, e in events if isinstance(e, AssetStarted))
    index_built = next(t for t, e in events if isinstance(e, IndexBuilt))
    assert first_asset < index_built
    # and some progress of the index arrived after the first transfer started
    assert any(isinstance(e, IndexProgress) and t > first_asset for t, e in events)


def test_small_catalogues_are_indexed_without_a_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catalogue under INDEX_PROCESS_FROM_BYTES is indexed in a thread (a child interpreter
    would take longer to start than the whole build); a larger one in the child. Both
    downloads are complete either way."""
    from mlhub_widgets.client import get_catalog_info
    from mlhub_widgets.download.pipeline import INDEX_PROCESS_FROM_BYTES
    from mlhub_widgets.hub import serve
    from mlhub_widgets.hub.sample import make_synthetic_dataset

    data = tmp_path / "hubdata"
    make_synthetic_dataset(data, "tiny_cat", 6, 1, 256, 512, kinds=("tif",))
    make_synthetic_dataset(data, "wide_cat", 400, 1, 256, 512, kinds=("tif",))
    spawned: list[IndexProcess] = []
    real_spawn = IndexProcess.spawn

    def spawn() -> IndexProcess:
        spawned.append(real_spawn())
        return spawned[-1]

    monkeypatch.setattr(IndexProcess, "spawn", staticmethod(spawn))
    limit = INDEX_PROCESS_FROM_BYTES
    with serve(data, cache_dir=False) as hub:
        for ds, n, child in (("tiny_cat", 6, False), ("wide_cat", 400, True)):
            size = get_catalog_info(ds, root_url=hub.url)["stac_catalog_size"]
            assert (size >= limit) is child, (ds, size, limit)
            spawned.clear()
            summary = download_dataset(ds, tmp_path / ds, root_url=hub.url, progress=False)
            assert summary.assets_downloaded == n
            assert len(list((tmp_path / ds / ds).rglob("*.tif"))) == n
            assert bool(spawned) is child, (ds, spawned)
