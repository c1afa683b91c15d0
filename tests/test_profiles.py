"""Profiles file: permissions, atomic writes, clear errors, and `mlhub configure`/`profiles`."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mlhub_widgets.cli import main
from mlhub_widgets.config import profiles
from mlhub_widgets.config.session import get_session
from mlhub_widgets.exceptions import ProfileError

KEY = "abcdef0123456789abcdef0123456789"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("MLHUB_API_KEY", "MLHUB_PROFILE", "MLHUB_ROOT_URL"):
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / "nested" / "mlhub-home"  # nested: parents must be created
    monkeypatch.setenv("MLHUB_HOME", str(path))
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_save_creates_private_file_and_keeps_other_profiles(home: Path) -> None:
    profiles.save_profile("default", KEY)
    profiles.save_profile("work", "other-key", "http://127.0.0.1:9/mlhub/v1/")
    path = home / "profiles"
    assert mode(path) == 0o600
    assert mode(home) == 0o700
    found = {p.name: p for p in profiles.list_profiles()}
    assert found["default"].api_key == KEY and found["default"].root_url is None
    assert found["work"].root_url == "http://127.0.0.1:9/mlhub/v1/"
    assert KEY not in repr(found["default"])
    # the file stays compatible with radiant_mlhub: plain INI, [section] api_key = ...
    assert f"[default]\napi_key = {KEY}\n" in path.read_text()


def test_write_is_atomic(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    profiles.save_profile("default", KEY)
    before = (home / "profiles").read_bytes()

    def crash(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        profiles.save_profile("default", "new-key")
    assert (home / "profiles").read_bytes() == before
    assert sorted(p.name for p in home.iterdir()) == ["profiles"]  # no temp file left behind


def test_wide_permissions_give_a_warning(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    profiles.save_profile("default", KEY)
    (home / "profiles").chmod(0o644)
    with caplog.at_level(logging.WARNING):
        assert profiles.load_profile().api_key == KEY
    assert "readable by other users" in caplog.text and "chmod 600" in caplog.text
    assert KEY not in caplog.text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("api_key = no section header\n", "not valid INI"),
        ("[default\napi_key = x\n", "not valid INI"),
        ("[default]\napi_key = a\n[default]\napi_key = b\n", "not valid INI"),
        ("[other]\napi_key = x\n", "Profile 'default' not found"),
        ("[default]\nroot_url = http://x.test/\n", "has no api_key"),
    ],
)
def test_broken_files_give_clear_errors(home: Path, content: str, message: str) -> None:
    home.mkdir(parents=True)
    (home / "profiles").write_text(content)
    (home / "profiles").chmod(0o600)
    with pytest.raises(ProfileError, match=message) as err:
        profiles.load_profile("default")
    assert str(home / "profiles") in str(err.value)
    # no configparser traceback chained to the error
    assert err.value.__cause__ is None
    assert err.value.__context__ is None or err.value.__suppress_context__


def test_binary_garbage_is_reported(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "profiles").write_bytes(b"\xff\xfe\x00garbage")
    (home / "profiles").chmod(0o600)
    with pytest.raises(ProfileError, match="not UTF-8"):
        profiles.load_profile()


def test_percent_in_key_survives(home: Path) -> None:
    profiles.save_profile("default", "abc%def%%")
    assert get_session().api_key == "abc%def%%"


def test_invalid_names_and_keys_are_rejected(home: Path) -> None:
    with pytest.raises(ValueError, match="profile name"):
        profiles.save_profile("bad]name", KEY)
    with pytest.raises(ValueError, match="API key"):
        profiles.save_profile("default", "has space")


# ------------------------------------------------------------------ the command line
def run_cli(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLHUB_")}
    env["MLHUB_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "mlhub_widgets.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_configure_reads_key_from_stdin(home: Path) -> None:
    result = run_cli(home, "configure", "--profile", "team", stdin=KEY + "\n")
    assert result.returncode == 0, result.stderr
    assert "Wrote profile 'team'" in result.stdout and KEY not in result.stdout
    assert profiles.load_profile("team").api_key == KEY
    assert mode(home / "profiles") == 0o600

    listing = run_cli(home, "profiles")
    assert listing.returncode == 0
    assert "team" in listing.stdout and KEY not in listing.stdout
    assert "****" + KEY[-6:] in listing.stdout


def test_configure_with_root_url_and_empty_key(home: Path) -> None:
    ok = run_cli(home, "configure", "--api-key", KEY, "--root-url", "http://127.0.0.1:1/v1/")
    assert ok.returncode == 0
    assert profiles.load_profile().root_url == "http://127.0.0.1:1/v1/"
    empty = run_cli(home, "configure", "--profile", "x", stdin="\n")
    assert empty.returncode == 2 and "no API key given" in empty.stderr


def test_version_and_usage_exit_codes(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert "mlhub_widgets" in capsys.readouterr().out
    assert main(["no-such-command"]) == 2


def test_profile_errors_are_one_line_with_exit_code_2(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "profiles").write_text("garbage\n")
    (home / "profiles").chmod(0o600)
    result = run_cli(home, "profiles")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "not valid INI" in result.stderr
    assert "Traceback" not in result.stderr
