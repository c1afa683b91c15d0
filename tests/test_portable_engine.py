"""A download needs nothing POSIX-only: it runs where ``os.pwrite`` and ``os.fork`` do not exist.

Windows has no ``os.pwrite``/``os.pread``, no ``os.fork`` and no ``os.register_at_fork``. The test
runs ``mlhub download`` in a new process (and so its asset index's child interpreter) with those
and the other POSIX-only file and process calls removed from :mod:`os` before anything is
imported (a ``sitecustomize`` module on ``PYTHONPATH``, which every interpreter of the run loads),
against the bundled hub over real HTTP. The hub cuts a quarter of the asset responses in the
middle, so resumes (``Range`` + ``If-Range``, the ``.part`` re-hashed from disk) and retries
run too. Every file must arrive whole and match the catalogue's ``file:checksum``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlhub_widgets.hub import FaultConfig, Hub, serve
from mlhub_widgets.hub.sample import make_synthetic_dataset

DS = "portable"
#: 120 items of one asset of 1 KiB to 2.5 MiB: small bodies (written whole by the disk threads),
#: streamed ones, and ones hashed by a disk thread while they stream (>= 2 MiB); the catalogue
#: is large enough (> 16 KiB) for the asset index to be built in a child interpreter.
ITEMS, MIN_SIZE, MAX_SIZE = 120, 1 << 10, 5 << 19
#: What Windows lacks and a fast engine might reach for. Removed in every interpreter of the run.
POSIX_ONLY = (
    "pwrite",
    "pread",
    "pwritev",
    "preadv",
    "fork",
    "forkpty",
    "register_at_fork",
    "posix_fallocate",
    "posix_fadvise",
    "sendfile",
    "copy_file_range",
)

SITECUSTOMIZE = f"""\
import os

for _name in {POSIX_ONLY!r}:
    if hasattr(os, _name):
        delattr(os, _name)
# one file per interpreter that ran without them (the test counts the download's processes)
_marks = os.environ.get("POSIX_FREE_MARKS")
if _marks:
    open(os.path.join(_marks, str(os.getpid())), "w").close()
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("portable-hub")
    make_synthetic_dataset(root, DS, ITEMS, 1, MIN_SIZE, MAX_SIZE, kinds=("bin",), seed=3)
    return root


@pytest.fixture()
def hub(data: Path) -> Iterator[Hub]:
    with serve(data, faults=FaultConfig(drop_rate=0.25, seed=5)) as running:
        yield running


def _expected(data: Path) -> dict[str, str]:
    """``{item id: file:checksum}`` from the hub's own item records."""
    lines = (data / DS / f"{DS}_source" / "items.jsonl").read_text().splitlines()
    items = [json.loads(line) for line in lines]
    return {item["id"]: item["assets"]["asset_0"]["file:checksum"] for item in items}


def _download(hub: Hub, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], int]:
    """``mlhub download`` without the POSIX-only calls; returns it and how many interpreters ran
    without them."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    marks = tmp_path / "marks"
    marks.mkdir()
    repo = Path(__file__).resolve().parents[1]
    check = "import os; assert not hasattr(os, 'pwrite') and not hasattr(os, 'fork')"
    script = f"{check}; from mlhub_widgets.cli.main import main; raise SystemExit(main())"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(repo)]),
        "POSIX_FREE_MARKS": str(marks),
    }
    args = ["download", DS, "-o", str(tmp_path / "out"), "--root-url", hub.url, "-q"]
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    return result, len(list(marks.iterdir()))


def test_a_download_runs_without_pwrite_pread_or_fork(hub: Hub, data: Path, tmp_path: Path) -> None:
    result, interpreters = _download(hub, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert interpreters == 2  # the download and its asset index's child interpreter

    folder = tmp_path / "out" / DS / f"{DS}_source"
    expected = _expected(data)
    got = {
        item: "1220" + hashlib.sha256((folder / item / "asset_0.bin").read_bytes()).hexdigest()
        for item in expected
        if (folder / item / "asset_0.bin").is_file()
    }
    assert got == expected  # every file there, byte for byte what the catalogue promises
    assert not list((tmp_path / "out").rglob("*.part"))

    asset_requests = [r for r in hub.requests if r.kind == "asset"]
    assert len(asset_requests) > ITEMS  # the cut responses were asked again...
    assert any(r.status == 206 for r in asset_requests)  # ...and resumed from their .part
