"""The ``mlhub`` command as a user runs it: a real process, a real hub, real pipes and folders.

Every error is one ``mlhub: error:`` line with the documented exit status (``cli/main.py``), a
closed standard output ends the command quietly, an estimate writes nothing, progress in a log
file is plain lines, and ``mlhub info`` and ``mlhub archive`` tell the same story.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from mlhub_widgets.hub import Hub, serve

DS = "nasa_marine_debris"
BBOX = "--bbox=-87.5610,5.9137,-87.5555,15.9191"  # 9 assets


def mlhub(
    *args: str,
    prefix: Sequence[str] = (),
    env: dict[str, str] | None = None,
    stdout: int | None = subprocess.PIPE,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``python -m mlhub_widgets.cli ARGS`` in a new process, as a user would type ``mlhub``."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "mlhub_widgets.cli", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )


def assert_one_error_line(result: subprocess.CompletedProcess[str], status: int) -> str:
    """The command failed with ``status`` and printed exactly one ``mlhub: error:`` line."""
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlhub: error: "), result.stderr
    return lines[0]


def without_write_permission_checks() -> list[str]:
    """A prefix that makes the command obey folder permissions, as root too.

    root ignores a folder's mode bits through CAP_DAC_OVERRIDE; ``setpriv`` (util-linux)
    drops it from the bounding set, so the command meets "Permission denied" as any user.
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to test permissions as root"
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]


@pytest.fixture(scope="module")
def own_hub() -> Iterator[Hub]:
    """A hub of this module only (request counters that no other test touches)."""
    with serve() as running:
        yield running


# -- errors: one line, the documented status ---------------------------------------------------


def test_read_only_output_folder_is_one_error_line(tmp_path: Path, own_hub: Hub) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    result = mlhub(
        "download", DS, "-o", str(folder), "-q", BBOX, "--root-url", own_hub.url,
        prefix=without_write_permission_checks(),
    )  # fmt: skip
    line = assert_one_error_line(result, 2)  # an unusable output folder is bad configuration
    assert line == (
        f"mlhub: error: output_dir {folder} cannot be written to: permission denied for {folder}"
    )
    assert list(folder.iterdir()) == []


def test_output_folder_inside_a_file_is_one_error_line(tmp_path: Path, own_hub: Hub) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    out = a_file / "data"
    result = mlhub("download", DS, "-o", str(out), "-q", BBOX, "--root-url", own_hub.url)
    assert assert_one_error_line(result, 2) == (
        f"mlhub: error: output_dir {out} cannot be created: {a_file} is not a folder"
    )
    # an existing file as the folder itself is a bad argument (2), still one line
    result = mlhub("download", DS, "-o", str(a_file), "-q", "--root-url", own_hub.url)
    assert "is not a folder" in assert_one_error_line(result, 2)


def test_unreachable_server_and_unknown_dataset_are_one_line(own_hub: Hub) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/mlhub/v1/"
    assert_one_error_line(mlhub("datasets", "--root-url", dead), 1)
    line = assert_one_error_line(mlhub("info", "no_such_dataset", "--root-url", own_hub.url), 1)
    assert "no_such_dataset" in line
    line = assert_one_error_line(mlhub("items", "x", "--bbox=1,2", "--root-url", own_hub.url), 2)
    assert "bbox" in line


def test_closed_standard_output_ends_quietly(own_hub: Hub) -> None:
    """``mlhub datasets | head``: the reader is gone before the table is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = mlhub("datasets", "--root-url", own_hub.url, stdout=write_end)
    finally:
        os.close(write_end)
    assert result.returncode == 141  # 128 + SIGPIPE, as a tool killed by SIGPIPE
    assert result.stderr == ""


def test_table_piped_into_head(own_hub: Hub) -> None:
    """The shell pipeline itself: head's lines arrive, no traceback whatever the timing."""
    shell = (
        f"{sys.executable} -m mlhub_widgets.cli items {DS}_labels --all --format csv "
        f"--root-url {own_hub.url} | head -n 3"
    )
    result = subprocess.run(
        ["bash", "-c", shell], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 3
    assert result.stderr == ""


# -- --estimate writes nothing; an unknown size says so -------------------------------------


def test_estimate_writes_nothing(tmp_path: Path, own_hub: Hub) -> None:
    out, scratch = tmp_path / "data", tmp_path / "tmp"
    scratch.mkdir()
    own_hub.reset_counters()
    result = mlhub(
        "download", DS, "-o", str(out), "--estimate", BBOX, "--root-url", own_hub.url,
        env={"TMPDIR": str(scratch)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"{DS}: 9 assets" in result.stdout
    assert f"{DS}_labels: 5 assets" in result.stdout
    assert not out.exists(), "an estimate must not write into the output folder"
    assert list(scratch.iterdir()) == [], "the temporary catalogue must be removed"
    assert own_hub.count("asset") == 0


def test_unknown_size_is_not_zero_bytes(tmp_path: Path, own_hub: Hub) -> None:
    """A static catalogue without ``file:size`` and without a dataset estimate."""
    result = mlhub(
        "download", DS, "-o", str(tmp_path), "--estimate",
        "--source", own_hub.static_catalog_url(DS),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"{DS}: 2825 assets, size unknown" in result.stdout
    assert "0 B" not in result.stdout


# -- progress in a log file -------------------------------------------------------------------


def test_progress_in_a_log_file_is_plain_lines(tmp_path: Path, own_hub: Hub) -> None:
    log = tmp_path / "download.log"
    with log.open("w") as err:
        proc = subprocess.run(
            [sys.executable, "-m", "mlhub_widgets.cli", "download", DS, "-o", str(tmp_path),
             BBOX, "--root-url", own_hub.url],
            stdout=subprocess.PIPE, stderr=err, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert proc.returncode == 0
    text = log.read_text()
    assert "\x1b" not in text and "\r" not in text, repr(text)
    lines = text.splitlines()
    assert lines[0].startswith(f"{DS}: fetched catalogue")
    assert lines[-1].startswith(f"{DS}: 9/9 assets")


# -- mlhub info and mlhub archive agree with the hub's archive endpoints ---------------------


def _status(url: str) -> int:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_info_and_archive_tell_the_same_story(tmp_path: Path, own_hub: Hub) -> None:
    dataset = "bigearthnet_v1"
    info = mlhub("info", dataset, "--root-url", own_hub.url)
    assert info.returncode == 0, info.stderr
    record = json.loads(urllib.request.urlopen(f"{own_hub.url}datasets/{dataset}").read())
    seen = set()
    for collection in (c["id"] for c in record["collections"]):
        listed = _status(f"{own_hub.url}archive/{collection}/info") == 200
        served = _status(f"{own_hub.url}archive/{collection}") in (301, 302, 303, 307)
        line = next(x for x in info.stdout.splitlines() if x.strip().startswith(collection))
        archive = mlhub("archive", collection, "-o", str(tmp_path), "--root-url", own_hub.url)
        if served:
            assert archive.returncode == 0, archive.stderr
            assert "archive" not in line
        elif listed:
            assert "but the server has no file for it" in line
            message = assert_one_error_line(archive, 1)
            assert "lists an archive" in message and "has no file for it" in message
        else:
            assert line.endswith("(no archive)")
            message = assert_one_error_line(archive, 1)
            assert message.endswith(f'collection "{collection}" has no archive on this server')
        assert "may still be generating" not in archive.stderr
        seen.add((listed, served))
    # the bundled data has both kinds this test is about
    assert {(True, False), (False, False)} <= seen
