"""The hub's HTTP/1.1 layer: keep-alive, pipelining, malformed requests, HEAD; the CLI."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from argparse import Namespace
from urllib.parse import urlsplit

import pytest
import requests

from mlhub_widgets.hub import Hub
from mlhub_widgets.hub.cli import build_parser, run


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
    return sock


def read_responses(sock: socket.socket, n: int) -> list[tuple[bytes, bytes]]:
    """Read ``n`` responses (head, body) with Content-Length framing."""
    buf = b""
    out = []
    while len(out) < n:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                return out
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        is_head = False
        while len(buf) < length and not is_head:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
        out.append((head, buf[:length]))
        buf = buf[length:]
    return out


def test_pipelining_answers_in_order(hub: Hub) -> None:
    sock = connect(hub.url)
    paths = ["datasets/nasa_marine_debris", "models", "collections/nope", "datasets/bigearthnet_v1"]
    root = urlsplit(hub.url).path
    sock.sendall(b"".join(f"GET {root}{p} HTTP/1.1\r\nHost: h\r\n\r\n".encode() for p in paths))
    answers = read_responses(sock, len(paths))
    assert [a[0].split(b" ")[1] for a in answers] == [b"200", b"200", b"404", b"200"]
    assert b'"id":"nasa_marine_debris"' in answers[0][1]
    assert b'"id":"bigearthnet_v1"' in answers[3][1]
    sock.close()


def test_pipelined_requests_split_across_packets(hub: Hub) -> None:
    sock = connect(hub.storage_url)
    req = b"GET /files/mlhub_widgets_demo_crops/_common/test_split.csv HTTP/1.1\r\nHost: h\r\n\r\n"
    data = req * 3
    for i in range(0, len(data), 7):  # dribble the bytes
        sock.sendall(data[i : i + 7])
        time.sleep(0.001)  # the behaviour under test: requests split across packets
    answers = read_responses(sock, 3)
    assert len(answers) == 3 and answers[0][1] == answers[2][1]
    assert answers[0][1].startswith(b"field_id,country,crop_type")
    sock.close()


def test_connection_close_and_http10(hub: Hub) -> None:
    for request in (
        b"GET /mlhub/v1/models HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        b"GET /mlhub/v1/models HTTP/1.0\r\n\r\n",
    ):
        sock = connect(hub.url)
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        assert data.startswith(b"HTTP/1.1 200 OK")  # then the server closed the connection
        sock.close()


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nNoColonHere\r\n\r\n", b"400"),
        (b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", b"501"),
    ],
)
def test_malformed_requests(hub: Hub, raw: bytes, status: bytes) -> None:
    sock = connect(hub.storage_url)
    sock.sendall(raw)
    data = sock.recv(65536)
    assert data.split(b" ")[1] == status
    sock.close()


def test_request_body_is_consumed(hub: Hub) -> None:
    sock = connect(hub.url)
    sock.sendall(
        b"POST /mlhub/v1/datasets HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
        b"GET /mlhub/v1/models HTTP/1.1\r\n\r\n"
    )
    answers = read_responses(sock, 2)
    assert [a[0].split(b" ")[1] for a in answers] == [b"405", b"200"]
    sock.close()


def test_many_parallel_clients(hub: Hub) -> None:
    href = hub.storage_url + "files/mlhub_widgets_demo_crops/_common/train_split.csv"
    expected = hub.asset_bytes(href)
    errors: list[str] = []

    def worker() -> None:
        s = requests.Session()
        for _ in range(40):
            if s.get(href, timeout=10).content != expected:
                errors.append("mismatch")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_cli_run_prints_urls(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["--require-key", "abc"])
    assert isinstance(args, Namespace) and args.host == "127.0.0.1"
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(run(args, stop)))
    thread.start()
    deadline = time.time() + 10
    out = ""
    while "Press Ctrl-C" not in out and time.time() < deadline:
        time.sleep(0.05)
        out += capsys.readouterr().out
    stop.set()
    thread.join(10)
    assert result == [0]
    assert "MLHub API:  http://127.0.0.1:" in out and "/mlhub/v1/" in out
    assert "storage:    http://127.0.0.1:" in out
    assert "mlhub_widgets_demo_crops" in out and "nasa_marine_debris" in out


def test_python_dash_m() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlhub_widgets.hub", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("MLHub API:  http://127.0.0.1:")
        url = line.split()[-1]
        assert requests.get(url + "models", timeout=10).status_code == 200
        # SIGTERM once it says how to stop it (it prints the URLs first, then the datasets;
        # on a loaded machine a SIGTERM before that ended it with -15).
        rest = iter(proc.stdout.readline, "")
        assert any(line.startswith("Press Ctrl-C to stop.") for line in rest)
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0
