"""``mlhub hub`` and ``mlhub demo`` as a user starts them: real processes, real ports.

``mlhub hub`` and ``python -m mlhub_widgets.hub`` are one command; ``mlhub demo`` prints the URL
that its Voila really serves, and refuses a port that is taken instead of serving elsewhere.
"""

from __future__ import annotations

import json
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator

import psutil
import pytest

MLHUB = [sys.executable, "-m", "mlhub_widgets.cli"]


class Running:
    """A command started in the background whose output lines a test can wait for."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, pattern: str, timeout: float = 180) -> re.Match[str]:
        """The first output line matching ``pattern``; fails at EOF or after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if match := re.search(pattern, line):
                return match
        pytest.fail(f"no line matching {pattern!r}; output so far:\n" + "\n".join(self.seen))

    def stop(self) -> int:
        """SIGTERM, as a service manager or ``kill`` sends; returns the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another program listens on for the whole test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_mlhub_hub_is_python_m_hub() -> None:
    ours = subprocess.run([*MLHUB, "hub", "--help"], capture_output=True, text=True, timeout=60)
    theirs = subprocess.run(
        [sys.executable, "-m", "mlhub_widgets.hub", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ours.returncode == theirs.returncode == 0
    assert ours.stdout == theirs.stdout
    for option in ("--s3-port", "--latency-ms", "--error-rate", "--warm"):
        assert option in ours.stdout


def test_mlhub_hub_serves_until_sigterm() -> None:
    hub = Running([*MLHUB, "hub", "--port", "0", "--no-cache"])
    try:
        url = hub.wait_for(r"^MLHub API:\s+(\S+)").group(1)
        hub.wait_for(r"Press Ctrl-C to stop")
        with urllib.request.urlopen(f"{url}datasets", timeout=30) as response:
            ids = [d["id"] for d in json.load(response)]
        assert "nasa_marine_debris" in ids
    finally:
        status = hub.stop()
    assert status == 0


def test_mlhub_hub_on_a_busy_port_is_one_error_line(held_port: int) -> None:
    for command in ([*MLHUB, "hub"], [sys.executable, "-m", "mlhub_widgets.hub"]):
        result = subprocess.run(
            [*command, "--port", str(held_port)], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("mlhub hub: error: "), result.stderr
        assert str(held_port) in lines[0] and "in use" in lines[0]


def test_demo_refuses_a_busy_port(held_port: int) -> None:
    result = subprocess.run(
        [*MLHUB, "demo", "--port", str(held_port)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlhub: error: "), result.stderr
    assert f"port {held_port} on 127.0.0.1 is already in use" in lines[0]
    assert "--port" in lines[0]
    assert "Explorer" not in result.stdout and "hub" not in result.stdout


def test_demo_prints_the_url_its_voila_serves() -> None:
    demo = Running([*MLHUB, "demo", "--port", "0"])
    children: list[psutil.Process] = []
    try:
        port = int(demo.wait_for(r"^Explorer \(Voila\): http://127\.0\.0\.1:(\d+)/").group(1))
        children = psutil.Process(demo.proc.pid).children(recursive=True)
        voila = [p for p in children if "voila" in " ".join(p.cmdline())]
        assert len(voila) == 1
        listening = {
            c.laddr.port for c in voila[0].net_connections("tcp") if c.status == psutil.CONN_LISTEN
        }
        assert port in listening, f"the printed port {port}, Voila listens on {listening}"
        static = f"http://127.0.0.1:{port}/voila/static/voila.js"
        with urllib.request.urlopen(static, timeout=30) as response:
            assert response.status == 200
    finally:
        status = demo.stop()
    assert status == 0
    _, alive = psutil.wait_procs(children, timeout=60)
    assert alive == [], f"left running after the demo stopped: {alive}"
