"""Tests of :mod:`mlhub_widgets.download.transfer.files`: how a whole small body is verified and
written (the disk threads run :func:`write_small` for every file up to 256 KiB)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from mlhub_widgets.download.transfer.files import write_small


def sha256(body: bytes) -> tuple[str, bytes]:
    return "sha256", hashlib.sha256(body).digest()


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith((".part", ".meta"))]


def test_write_small_writes_verified_bytes_and_creates_folders(tmp_path: Path) -> None:
    dest = tmp_path / "new" / "folder" / "a.tif"
    meta = tmp_path / "a.tif.part.meta"
    meta.write_text("{}")
    body = os.urandom(3000)
    assert write_small(f"{dest}.part", str(dest), body, str(meta), sha256(body), None) is None
    assert dest.read_bytes() == body
    assert not meta.exists() and leftovers(tmp_path) == []


def test_write_small_writes_nothing_on_a_mismatch(tmp_path: Path) -> None:
    dest = tmp_path / "a.tif"
    body = b"x" * 100
    result = write_small(f"{dest}.part", str(dest), body, None, sha256(b"other"), None)
    assert result == ("mismatch", 0, "checksum mismatch (sha2-256)")
    bad_md5 = write_small(f"{dest}.part", str(dest), body, None, None, "AAAAAAAAAAAAAAAAAAAAAA==")
    assert bad_md5 == ("mismatch", 0, "Content-MD5 mismatch")
    assert list(tmp_path.iterdir()) == []


def test_write_small_reports_a_failed_move_and_cleans_up(tmp_path: Path) -> None:
    dest = tmp_path / "taken"
    (dest / "inside").mkdir(parents=True)  # a non-empty folder holds the final name
    result = write_small(f"{dest}.part", str(dest), b"abc", None, None, None)
    assert result is not None and result[0] == "move" and result[1] != 0
    assert leftovers(tmp_path) == [] and dest.is_dir()
