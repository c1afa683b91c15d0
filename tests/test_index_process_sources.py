"""A large static STAC catalogue is walked and indexed in the download's child interpreter
(``pipeline.INDEX_PROCESS_FROM_ITEMS``): the result is the one a walk in a thread gives, and
what the walk reports (errors, warnings) reaches the caller as before; the source's
``modifier`` still signs every asset here.

Real parts: the bundled hub's S3 origin (a 1,000-item catalogue in its bucket) and a small
HTTP server of this test suite for signed assets.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import mlhub_widgets as mw
from mlhub_widgets.download import (
    DownloadJob,
    DownloadSummary,
    IndexProgress,
    index_process,
    pipeline,
)
from mlhub_widgets.exceptions import EntityDoesNotExist, MLHubWarning
from mlhub_widgets.hub import FaultConfig, Hub, serve
from mlhub_widgets.hub.sample import make_synthetic_dataset
from mlhub_widgets.sources import Source

from .hostile_server import dataset_items, hostile_server
from .objects_support import hub_public, tree

pytestmark = pytest.mark.usefixtures("object_state")

BIG = "walk1k"  # 1,000 items of one asset: at the threshold
N = pipeline.INDEX_PROCESS_FROM_ITEMS


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("walk") / "hubdata"
    make_synthetic_dataset(folder, BIG, N, 1, 16, 64)
    return folder


@pytest.fixture(scope="module")
def hub(data: Path) -> Iterator[Hub]:
    with serve(data) as running:
        yield running


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the index processes started (one entry per child)."""
    calls: list[int] = []
    spawn = index_process.IndexProcess.spawn.__func__  # type: ignore[attr-defined]

    def counting(cls: type[index_process.IndexProcess]) -> index_process.IndexProcess:
        calls.append(1)
        return spawn(cls)  # type: ignore[no-any-return]

    monkeypatch.setattr(index_process.IndexProcess, "spawn", classmethod(counting))
    return calls


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file of a download but the index (SQLite, not comparable byte for byte)."""
    return {k: v for k, v in tree(folder).items() if "mlhub_assets.db" not in k}


def _download(src: Source, out: Path) -> DownloadSummary:
    summary = mw.download_dataset(BIG, out, source=src, progress=False)
    assert isinstance(summary, DownloadSummary)
    return summary


def test_a_large_catalogue_gives_what_a_walk_in_a_thread_gives(
    hub: Hub, tmp_path: Path, spawned: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = mw.open_source(f"s3://radiantearth/{BIG}/", storage_options=hub_public(hub))
    first = _download(src, tmp_path / "process")
    assert spawned == [1]
    assert first.complete and first.assets_downloaded == N
    gets = hub.count("s3-object", "GET")
    again = _download(src, tmp_path / "process")  # the index is reused: no walk, no child
    assert again.assets_downloaded == 0 and again.assets_skipped == first.assets_downloaded
    assert hub.count("s3-object", "GET") == gets and spawned == [1]

    monkeypatch.setattr(pipeline, "INDEX_PROCESS_FROM_ITEMS", 10**9)
    in_thread = _download(src, tmp_path / "thread")
    assert spawned == [1] and in_thread.assets_downloaded == first.assets_downloaded
    by_process, by_thread = _tree(tmp_path / "process"), _tree(tmp_path / "thread")
    assert len(by_process) > 2 * N  # items and assets
    assert by_process.keys() == by_thread.keys()
    assert [k for k in by_process if by_process[k] != by_thread[k]] == []
    copy = json.loads((tmp_path / "process" / BIG / "catalog.json").read_bytes())
    assert copy["type"] == "Catalog"


def _folder_catalogue(root: Path, items: list[dict[str, Any]], missing: int | None) -> Path:
    """``items`` as a static catalogue in ``root`` (collection ``c``); the item at index
    ``missing`` is linked but not written."""
    links = []
    for i, item in enumerate(items):
        rel = f"{item['id']}/{item['id']}.json"
        links.append({"rel": "item", "href": rel})
        if i != missing:
            (root / "c" / item["id"]).mkdir(parents=True)
            (root / "c" / rel).write_text(json.dumps(item))
    collection = {
        "type": "Collection", "id": "c", "stac_version": "1.0.0", "description": "d",
        "license": "CC0-1.0", "extent": {"spatial": {"bbox": [[10, 10, 11, 11]]},
                                         "temporal": {"interval": [[None, None]]}},
        "links": links,
    }  # fmt: skip
    (root / "c" / "collection.json").write_text(json.dumps(collection))
    catalog = {"type": "Catalog", "id": "ds", "stac_version": "1.0.0", "description": "d",
               "links": [{"rel": "child", "href": "c/collection.json"}]}  # fmt: skip
    (root / "catalog.json").write_text(json.dumps(catalog))
    return root / "catalog.json"


@pytest.mark.parametrize("where", ["process", "thread"])
def test_a_missing_item_document_is_the_same_error_in_the_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spawned: list[int], where: str
) -> None:
    monkeypatch.setattr(pipeline, "INDEX_PROCESS_FROM_ITEMS", 1 if where == "process" else 10**9)
    with hostile_server() as server:
        items, _files = dataset_items(server, "ds", 6)
        catalogue = _folder_catalogue(tmp_path / "stac", items, missing=4)
        with pytest.raises(EntityDoesNotExist, match=r"^STAC document not found: .*i4\.json$"):
            mw.download_dataset("ds", tmp_path / "out", source=str(catalogue), progress=False)
    assert spawned == ([1] if where == "process" else [])


def test_the_modifier_signs_every_asset_here_while_the_child_walks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spawned: list[int]
) -> None:
    """A modifier (here a closure, which no other interpreter could be given) is not sent to
    the child: the walk reads documents unmodified, and each asset is signed where it is
    downloaded."""
    monkeypatch.setattr(pipeline, "INDEX_PROCESS_FROM_ITEMS", 1)
    signed: list[str] = []

    def sign(item: dict[str, Any]) -> dict[str, Any]:
        for asset in item["assets"].values():
            signed.append(asset["href"])
            asset["href"] += "?sig=1"
        return item

    with hostile_server() as server:
        items, files = dataset_items(server, "ds", 12)
        catalogue = _folder_catalogue(tmp_path / "stac", items, missing=None)
        src = mw.open_source(str(catalogue), modifier=sign)
        summary = mw.download_dataset("ds", tmp_path / "out", source=src, progress=False)
    assert spawned == [1]
    assert isinstance(summary, DownloadSummary) and summary.assets_downloaded == 12
    assert sorted(signed) == sorted(i["assets"]["image"]["href"] for i in items)
    for rel, data in files.items():
        assert (tmp_path / "out" / "ds" / rel).read_bytes() == data


def test_a_warning_of_the_walk_in_the_process_reaches_the_caller(
    tmp_path: Path, spawned: list[int]
) -> None:
    """A collection that also links to child catalogues (item count unknown: walked in the
    process) and back to itself: the walk's MLHubWarning is issued in the caller's process,
    where a notebook shows it."""
    with hostile_server() as server:
        items, files = dataset_items(server, "ds", 3)
        catalogue = _folder_catalogue(tmp_path / "stac", items, missing=None)
        collection = tmp_path / "stac" / "c" / "collection.json"
        doc = json.loads(collection.read_text())
        doc["links"].append({"rel": "child", "href": "collection.json"})  # a cycle
        collection.write_text(json.dumps(doc))
        with pytest.warns(MLHubWarning, match="already visited"):
            summary = mw.download_dataset(
                "ds", tmp_path / "out", source=str(catalogue), progress=False
            )
    assert spawned == [1]
    assert isinstance(summary, DownloadSummary) and summary.assets_downloaded == 3
    for rel, data in files.items():
        assert (tmp_path / "out" / "ds" / rel).read_bytes() == data


def test_cancelled_while_the_process_walks_then_resumed(
    data: Path, hub: Hub, tmp_path: Path
) -> None:
    """Cancel as soon as the first items are indexed (every response 10 ms late: the walk
    takes over a second): the child stops (no interpreter left behind), the job reports
    cancelled, and a rerun completes with every file byte-identical to a download that was
    never interrupted."""
    slow = contextlib.ExitStack()
    late = slow.enter_context(serve(data, faults=FaultConfig(latency_ms=10)))
    src = mw.open_source(f"s3://radiantearth/{BIG}/", storage_options=hub_public(late))
    indexed = threading.Event()

    def on_event(event: Any) -> None:
        if isinstance(event, IndexProgress) and event.items > 0:
            indexed.set()

    before = set(psutil.Process().children(recursive=True))
    job = mw.download_dataset(BIG, tmp_path / "out", source=src, progress=on_event, background=True)
    assert isinstance(job, DownloadJob) and indexed.wait(30)
    job.cancel()
    summary = job.wait(timeout=60)
    slow.close()
    assert summary.cancelled and summary.assets_downloaded < N
    left = [p for p in psutil.Process().children(recursive=True) if p not in before]
    assert [p for p in left if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    src = mw.open_source(f"s3://radiantearth/{BIG}/", storage_options=hub_public(hub))
    again = _download(src, tmp_path / "out")
    assert again.complete and again.assets_downloaded + again.assets_skipped == N
    assert _download(src, tmp_path / "whole").complete
    assert _tree(tmp_path / "out") == _tree(tmp_path / "whole")
