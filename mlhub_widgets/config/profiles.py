"""API-key profiles in ``$MLHUB_HOME/profiles`` (default ``~/.mlhub/profiles``).

The file is INI, compatible with ``radiant_mlhub``::

    [default]
    api_key = 0123abcd...

    [staging]
    api_key = ...
    root_url = https://staging.example.org/mlhub/v1/
    proxy = http://proxy.example.org:3128
    verify = /etc/ssl/corp-ca.pem

``proxy`` (every request of the profile goes through it) and ``verify`` (a CA bundle to trust
as well, or ``false``) are optional.

Writes are atomic (temporary file + rename) and the file is created with mode 0600. Reading a
file that others may read, or one in a folder others may write to, issues a
:class:`~mlhub_widgets.exceptions.MLHubWarning` (shown in notebooks and on the command line).
Problems with the file raise :class:`ProfileError` naming the file and the profile, never a raw
``configparser`` traceback.
"""

from __future__ import annotations

import configparser
import logging
import os
import stat
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..exceptions import MLHubWarning, ProfileError

log = logging.getLogger(__name__)

HOME_ENV = "MLHUB_HOME"
DEFAULT_PROFILE = "default"


@dataclass(frozen=True)
class Profile:
    """One section of the profiles file."""

    name: str
    api_key: str
    root_url: str | None = None
    #: a proxy URL for every request of the profile (``None``: the environment's)
    proxy: str | None = None
    #: ``False``, or a CA bundle path to trust as well (``None``: the default)
    verify: bool | str | None = None

    def __repr__(self) -> str:  # never show the key
        return f"Profile(name={self.name!r}, api_key='***', root_url={self.root_url!r})"


def mlhub_home() -> Path:
    """The directory holding the profiles file: ``$MLHUB_HOME`` or ``~/.mlhub``."""
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser() if env else Path.home() / ".mlhub"


def profiles_path() -> Path:
    """Path of the profiles file (it may not exist)."""
    return mlhub_home() / "profiles"


def _parser() -> configparser.ConfigParser:
    # No interpolation: a '%' in a key must stay a '%'.
    return configparser.ConfigParser(interpolation=None)


def _read(path: Path) -> configparser.ConfigParser:
    parser = _parser()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return parser
    except OSError as exc:
        raise ProfileError(f"Cannot read profiles file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        _warn(
            f"Profiles file {path} is readable by other users (mode {stat.S_IMODE(mode):o}); "
            f"run: chmod 600 {path}"
        )
    try:
        folder_mode = path.parent.stat().st_mode
    except OSError:
        folder_mode = 0
    if folder_mode & (stat.S_IWGRP | stat.S_IWOTH) and not folder_mode & stat.S_ISVTX:
        _warn(
            f"Folder {path.parent} can be written by other users (mode "
            f"{stat.S_IMODE(folder_mode):o}), who could replace your profiles; "
            f"run: chmod 700 {path.parent}"
        )
    try:
        with path.open(encoding="utf-8") as fh:
            parser.read_file(fh)
    except UnicodeDecodeError:
        raise ProfileError(f"Profiles file {path} is not UTF-8 text.") from None
    except configparser.Error as exc:
        first_line = str(exc).splitlines()[0]
        raise ProfileError(f"Profiles file {path} is not valid INI: {first_line}") from None
    except OSError as exc:
        raise ProfileError(f"Cannot read profiles file {path}: {exc.strerror}") from None
    return parser


def _warn(message: str) -> None:
    log.warning("%s", message)
    warnings.warn(message, MLHubWarning, stacklevel=4)


def _profile(parser: configparser.ConfigParser, name: str, key: str, path: Path) -> Profile:
    root = parser.get(name, "root_url", fallback="").strip() or None
    proxy = parser.get(name, "proxy", fallback="").strip() or None
    raw_verify = parser.get(name, "verify", fallback="").strip()
    verify: bool | str | None
    if not raw_verify:
        verify = None
    elif raw_verify.lower() in ("false", "no", "off", "0"):
        verify = False
    elif raw_verify.lower() in ("true", "yes", "on", "1"):
        verify = True
    else:
        verify = raw_verify
    return Profile(name, key, root, proxy, verify)


def list_profiles(path: Path | None = None) -> list[Profile]:
    """Every profile in the file that has an ``api_key`` (an absent file gives ``[]``)."""
    path = path or profiles_path()
    parser = _read(path)
    out = []
    for name in parser.sections():
        key = parser.get(name, "api_key", fallback="").strip()
        if key:
            out.append(_profile(parser, name, key, path))
    return out


def load_profile(name: str | None = None, path: Path | None = None) -> Profile:
    """Read one profile (``name`` or ``default``).

    Raises:
        ProfileError: the file does not exist, is malformed, has no such section, or the
            section has no ``api_key``. The message names the file and the profile.
    """
    name = name or DEFAULT_PROFILE
    path = path or profiles_path()
    if not path.exists():
        raise ProfileError(
            f"Profile '{name}' not found: profiles file {path} does not exist "
            f"(create it with: mlhub configure --profile {name})"
        )
    parser = _read(path)
    if not parser.has_section(name):
        known = ", ".join(parser.sections()) or "none"
        raise ProfileError(
            f"Profile '{name}' not found in {path} (profiles there: {known}); "
            f"add it with: mlhub configure --profile {name}"
        )
    key = parser.get(name, "api_key", fallback="").strip()
    if not key:
        raise ProfileError(
            f"Profile '{name}' in {path} has no api_key; "
            f"set it with: mlhub configure --profile {name}"
        )
    return _profile(parser, name, key, path)


def save_profile(
    name: str, api_key: str, root_url: str | None = None, path: Path | None = None
) -> Path:
    """Create or replace one profile, keeping the others; returns the file's path.

    The directory is created (with parents, mode 0700) if needed; the file is written to a
    temporary file in the same directory with mode 0600 and renamed over the old one, so a
    crash never leaves a half-written file.
    """
    if not name or any(c in name for c in "[]\n\r"):
        raise ValueError(f"Invalid profile name {name!r}")
    api_key = api_key.strip()
    if not api_key or any(c.isspace() for c in api_key):
        raise ValueError("The API key must be a non-empty string without spaces")
    path = path or profiles_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    parser = _read(path)
    if not parser.has_section(name):
        parser.add_section(name)
    parser.set(name, "api_key", api_key)
    if root_url:
        parser.set(name, "root_url", root_url)
    elif parser.has_option(name, "root_url") and root_url is not None:
        parser.remove_option(name, "root_url")
    fd, tmp = tempfile.mkstemp(prefix=".profiles-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            parser.write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
