"""Output folders that cannot work give one clear line, never a traceback.

An output folder whose parent is a file, and a read-only output folder (a fresh download, and
the re-run of a finished one): ``mlhub download`` prints one ``mlhub: error:`` line and exits
with 2 (bad arguments or configuration, as the README documents), and the Python API raises
an :class:`~mlhub_widgets.exceptions.OutputFolderError` (an ``MLHubException`` and a
``ValueError``), before any request where the folder is known to be unusable up front.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlhub_widgets.cli import main as cli_main
from mlhub_widgets.download import DownloadSummary, download_dataset, plan_download
from mlhub_widgets.exceptions import MLHubException, OutputFolderError

from .hostile_server import (
    HostileServer,
    catalogue_tarball,
    dataset_items,
    hostile_server,
    serve_dataset,
)
from .reliability_support import mount_tmpfs, umount

KEY = "k-errors"


def _cli(server: HostileServer, out: Path) -> list[str]:
    return ["download", "ds", "-o", str(out), "-q", "--root-url", server.api, "--api-key", KEY]


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with hostile_server() as running:
        items, _ = dataset_items(running, "ds", 3)
        serve_dataset(running, "ds", catalogue_tarball("ds", items))
        yield running


def test_an_output_folder_below_a_file(
    server: HostileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    out = blocker / "sub" / "out"
    for call in (download_dataset, plan_download):
        with pytest.raises(OutputFolderError, match=f"cannot be created: {blocker} is not a"):
            call("ds", out, root_url=server.api, api_key=KEY)  # type: ignore[operator]
    assert cli_main(_cli(server, out)) == 2
    err = capsys.readouterr().err
    assert err == f"mlhub: error: output_dir {out} cannot be created: {blocker} is not a folder\n"
    assert server.count() == 0  # known before any request
    assert issubclass(OutputFolderError, MLHubException) and issubclass(
        OutputFolderError, ValueError
    )


@pytest.fixture
def read_only_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs remounted read-only by the test (root), else a folder without write permission
    (a user who is not root)."""
    path = tmp_path / "rofs"
    try:
        mount_tmpfs(path, "16m")
    except OSError:
        if os.geteuid() == 0:
            pytest.skip("needs a tmpfs mount to make a folder read-only for root")
        path.mkdir()
        yield path
        path.chmod(0o755)
        return
    try:
        yield path
    finally:
        umount(path)


def _make_read_only(path: Path) -> None:
    if os.path.ismount(path):
        subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
    else:
        for folder in [path, *(p for p in path.rglob("*") if p.is_dir())]:
            folder.chmod(0o555)


def test_a_read_only_output_folder(
    server: HostileServer, read_only_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    done = read_only_disk / "done"
    summary = download_dataset("ds", done, root_url=server.api, api_key=KEY, progress=False)
    assert isinstance(summary, DownloadSummary) and summary.complete
    _make_read_only(read_only_disk)
    requests = server.count()
    for out in (done, read_only_disk / "fresh"):  # the re-run of a finished one, a new one
        with pytest.raises(OutputFolderError, match="cannot be written to") as info:
            download_dataset("ds", out, root_url=server.api, api_key=KEY, progress=False)
        assert "read-only file system" in str(info.value) or "permission denied" in str(info.value)
        assert cli_main(_cli(server, out)) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"mlhub: error: output_dir {out} cannot be written to: ")
        assert err.count("\n") == 1 and "sqlite" not in err.lower(), err
    assert server.count() == requests
