"""Two downloads of one dataset into one folder: the second fails at once, naming the first.

The first download is held in the middle of its transfers by a hostile server written here
(one asset's answer waits for an event), so the second one meets it for sure; "at once"
means it never waits for that event: if it did, the test would hang past its deadlines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mlhub_widgets.cli import main as cli_main
from mlhub_widgets.download import (
    DownloadJob,
    DownloadSummary,
    download_dataset,
    plan_download,
)
from mlhub_widgets.download.folder_lock import LOCK_NAME
from mlhub_widgets.exceptions import FolderInUseError

from .hostile_server import catalogue_tarball, dataset_items, hostile_server, serve_dataset
from .reliability_support import record_figure

KEY = "k-concurrent"


def test_a_second_download_into_the_same_folder_fails_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    hold = threading.Event()
    with hostile_server() as server:
        items, files = dataset_items(server, "ds", 4)
        serve_dataset(server, "ds", catalogue_tarball("ds", items))
        other_items, other_files = dataset_items(server, "other", 2)
        serve_dataset(server, "other", catalogue_tarball("other", other_items))
        held = server.routes["/files/ds/i2.tif"]
        assert not callable(held)
        held.hold = hold
        first = DownloadJob("ds", out, root_url=server.api, api_key=KEY, workers=2).start()
        try:
            assert held.arrived.wait(60), "the first download never reached its transfers"
            pid = os.getpid()

            # another job of this process, a plan, the command line: refused, before a request
            requests = server.count("/mlhub/v1/")
            second = DownloadJob("ds", out, root_url=server.api, api_key=KEY).start()
            with pytest.raises(FolderInUseError, match=f"in use by another download of ds: "
                               f"process {pid}") as info:  # fmt: skip
                second.wait(timeout=30)
            assert second.state == "failed" and second.summary is None
            message = str(info.value)
            assert str(out / "ds") in message and "\n" not in message
            with pytest.raises(FolderInUseError):
                plan_download("ds", out, root_url=server.api, api_key=KEY)
            assert cli_main(["download", "ds", "-o", str(out), "-q", "--root-url", server.api,
                             "--api-key", KEY]) == 1  # fmt: skip
            err = capsys.readouterr().err
            assert err.startswith("mlhub: error: ") and f"process {pid}" in err, err
            assert server.count("/mlhub/v1/") == requests  # none of them sent anything

            # another process
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
            child = subprocess.run(
                [sys.executable, "-m", "mlhub_widgets.cli", "download", "ds", "-o", str(out),
                 "-q", "--root-url", server.api, "--api-key", KEY],
                capture_output=True, text=True, timeout=60, env=env,
            )  # fmt: skip
            assert child.returncode == 1, child.stderr
            assert child.stderr.startswith("mlhub: error: ") and child.stderr.count("\n") == 1
            assert f"process {pid}" in child.stderr and "Traceback" not in child.stderr

            # another dataset in the same folder is not held up
            summary = download_dataset("other", out, root_url=server.api, api_key=KEY,
                                       progress=False)  # fmt: skip
            assert isinstance(summary, DownloadSummary) and summary.complete
            assert first.state == "running"  # still held: nothing reported early
        finally:
            hold.set()
        summary = first.wait(timeout=60)
        assert summary.complete and summary.assets_downloaded == 4
        for rel, data in files.items():
            assert (out / "ds" / rel).read_bytes() == data
        for rel, data in other_files.items():
            assert (out / "other" / rel).read_bytes() == data
        # the lock went with the first download: the same command now runs (a no-op)
        assert not (out / "ds" / LOCK_NAME).exists()
        assert cli_main(["download", "ds", "-o", str(out), "-q", "--root-url", server.api,
                         "--api-key", KEY]) == 0  # fmt: skip
    record_figure(
        "test_reliability_concurrent.py::test_a_second_download_into_the_same_folder_fails_at_once",
        "second job, plan, CLI in-process and in another process: FolderInUseError / exit 1 "
        "naming the holder, 0 requests; another dataset in the folder completes meanwhile; "
        "the first completes byte-exact",
    )


def test_a_lock_left_by_a_killed_download_does_not_block(tmp_path: Path) -> None:
    """The lock file of a download killed with ``SIGKILL`` stays on disk, but the operating
    system released its lock: the next run goes ahead."""
    out = tmp_path / "out"
    (out / "ds").mkdir(parents=True)
    (out / "ds" / LOCK_NAME).write_text(json.dumps({"pid": 999999, "started": 0}))
    with hostile_server() as server:
        items, _files = dataset_items(server, "ds", 2)
        serve_dataset(server, "ds", catalogue_tarball("ds", items))
        summary = download_dataset("ds", out, root_url=server.api, api_key=KEY, progress=False)
    assert isinstance(summary, DownloadSummary) and summary.complete
    assert not (out / "ds" / LOCK_NAME).exists()
