"""Helpers for the browser tests: Voila on loopback, headless Chromium, offline routing.

Built on shared/recipes/browser-widget-test (proven offline on this machine): Voila serves a
notebook on a free 127.0.0.1 port with private Jupyter dirs; Chromium (Debian's, through the
Playwright Python package) loads it; every non-loopback request is aborted so runs never wait on
DNS; Voila and its kernels run in their own process group and are stopped by that group.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

CHROMIUM = os.environ.get("MLHUB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Anything that is not loopback (Voila's CDN font CSS, OSM tiles) is aborted.
NON_LOOPBACK = re.compile(r"^(?!https?://(127\.0\.0\.1|localhost)[:/]).*")


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[Any], timeout: float = 60) -> None:
    """Poll a TCP connect (a GET would make Voila start a kernel)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"voila exited early with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"voila did not listen on {port} within {timeout}s")


def jupyter_env(root: Path) -> dict[str, str]:
    """The environment with private Jupyter config/data/runtime dirs under ``root``."""
    env = dict(os.environ)
    for name in ("CONFIG", "DATA", "RUNTIME"):
        path = root / name.lower()
        path.mkdir(parents=True, exist_ok=True)
        env[f"JUPYTER_{name}_DIR"] = str(path)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["IPYTHONDIR"] = str(root / "ipython")
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    return env


def _stop(proc: subprocess.Popen[Any], log: IO[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # jupyter_server shuts its kernels down on TERM
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    log.close()
    for _ in range(50):
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError("voila left processes behind in its group")


@contextmanager
def voila(notebook: Path, env: Mapping[str, str], log_path: Path) -> Iterator[str]:
    """Serve ``notebook`` with Voila on loopback; yields the page URL."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "voila",
        notebook.name,
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        "--show_tracebacks=True",
    ]
    log = open(log_path, "w")  # noqa: SIM115  (closed by _stop)
    proc = subprocess.Popen(
        cmd,
        cwd=notebook.parent,
        env=dict(env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}/"
    finally:
        _stop(proc, log)
