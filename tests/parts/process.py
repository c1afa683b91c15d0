"""What every part shares: free loopback ports, readiness with a deadline, stop by PID.

A part that cannot start fails the test with its command and the end of its log; nothing here
skips. ``PARTS_START_TIMEOUT`` (seconds, default 30) bounds each readiness wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest

LOOPBACK = "127.0.0.1"
START_TIMEOUT = float(os.environ.get("PARTS_START_TIMEOUT", "30"))
#: How often a part gets a new port when it exits at once (another xdist worker took its port).
PORT_ATTEMPTS = 3

#: Variables that point clients at a proxy or at trust roots; no part inherits them.
PROXY_VARS = tuple(
    v
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    for v in (name, name.upper())
)

T = TypeVar("T")


def fail(msg: str) -> NoReturn:
    """Fail the running test (or fixture) with ``msg`` and no traceback."""
    pytest.fail(msg, pytrace=False)


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


def tcp_open(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


#: urllib opener that never goes through HTTP(S)_PROXY from the environment.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_answers(url: str) -> bool:
    """True once the server sends any HTTP response (a 4xx counts: it is up)."""
    try:
        with DIRECT.open(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def find_exe(name: str, *extra: Path) -> str | None:
    """An executable next to the running interpreter (the venv), in ``extra`` or on PATH."""
    for folder in (Path(sys.executable).parent, *extra):
        path = folder / name
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return shutil.which(name)


def part_env(**extra: str) -> dict[str, str]:
    """The environment for a part's process: ours without proxy settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env.update(extra)
    return env


def wait_until(check: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
    """Poll ``check`` every 50 ms until it is true; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            fail(f"{what}: still not true after {timeout:.0f} s")
        time.sleep(0.05)  # polling interval of a readiness check, not synchronisation


class Proc:
    """A started subprocess whose output goes to a log file; stopped by its PID."""

    def __init__(
        self, name: str, cmd: list[str], log_path: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.name, self.cmd, self.log_path = name, cmd, log_path
        self.startup_s = float("nan")
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed by stop()
        try:
            self.popen = subprocess.Popen(
                cmd,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else part_env(),
            )
        except OSError as exc:
            self._log.close()
            fail(f"{name}: cannot start {cmd[0]!r}: {exc}")

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_text(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def describe(self) -> str:
        return f"command: {' '.join(self.cmd)}\nlog tail:\n{self.log_text()[-3000:]}"

    def wait_ready(self, check: Callable[[], bool], timeout: float = START_TIMEOUT) -> bool:
        """Wait until ``check()``; False if the process exited first; fails at the deadline."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.popen.poll() is not None:
                self.stop()
                return False
            if check():
                self.startup_s = time.monotonic() - t0
                return True
            time.sleep(0.05)  # readiness polling interval
        self.stop()
        fail(f"{self.name} not ready after {timeout:.0f} s.\n{self.describe()}")

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM to this PID only, SIGKILL after ``timeout`` seconds."""
        p = self.popen
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout)
        if not self._log.closed:
            self._log.close()


def start_on_free_port(
    name: str,
    command: Callable[[int], list[str]],
    ready: Callable[[int], bool],
    log_dir: Path,
    env: Mapping[str, str] | None = None,
) -> tuple[Proc, int]:
    """Start ``command(port)`` on a free port and wait until ``ready(port)``.

    A free port can be taken by another process (another xdist worker) before the part binds
    it; a part that exits before it is ready is started again on a new port, up to
    :data:`PORT_ATTEMPTS` times. Fails the test with the command and log tail otherwise.
    """
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = free_port()
        proc = Proc(name, command(port), log_dir / f"{name}-{attempt}.log", env)
        if proc.wait_ready(lambda port=port: ready(port)):  # type: ignore[misc]
            return proc, port
    fail(
        f"{name} exited before it was ready (code {proc.popen.returncode}, "
        f"{PORT_ATTEMPTS} attempts).\n{proc.describe()}"
    )


class LoopThread:
    """An asyncio event loop running in a daemon thread (for in-process servers)."""

    def __init__(self, name: str) -> None:
        self.errors: list[str] = []
        self.loop = asyncio.new_event_loop()
        # TLS handshakes that a client aborts (e.g. "unknown CA") land here, not in a test.
        self.loop.set_exception_handler(
            lambda loop, ctx: self.errors.append(str(ctx.get("exception") or ctx["message"]))
        )
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.run(cancel_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy ``reader`` to ``writer`` until EOF or an error, then close ``writer``."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def splice(
    r1: asyncio.StreamReader,
    w1: asyncio.StreamWriter,
    r2: asyncio.StreamReader,
    w2: asyncio.StreamWriter,
    limit_s: float = 120,
) -> None:
    """Copy bytes both ways until either side closes; never longer than ``limit_s``."""
    try:
        await asyncio.wait_for(asyncio.gather(pipe(r1, w2), pipe(r2, w1)), limit_s)
    except TimeoutError:
        pass
    finally:
        for w in (w1, w2):
            with contextlib.suppress(Exception):
                w.close()
