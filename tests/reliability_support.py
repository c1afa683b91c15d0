"""Shared harness of the reliability, crash, hostile-input and load suites.

* synthetic datasets served by the bundled hub from a temporary data directory;
* byte-for-byte verification of a download against ``hub.asset_bytes``;
* an API proxy on loopback that can replace chosen answers (HTML error pages, 5xx);
* a downloader in a subprocess (for SIGKILL), tmpfs mounts (for a full disk);
* process metrics (open file descriptors, threads, RSS) and a figures log that feeds
  ``docs/guarantees.md`` (``test-artifacts/reliability/figures.json``, git-ignored).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from mlhub_widgets.hub import Hub
from mlhub_widgets.hub.sample import make_synthetic_dataset

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
FIGURES = ROOT / "test-artifacts" / "reliability" / "figures.json"
ERR_HEADER = "collection_id,item_id,asset_key,url,path,status,error,attempts"
INDEX_FILES = frozenset(
    {"mlhub_assets.db", "mlhub_assets.db-wal", "mlhub_assets.db-shm", "mlhub_assets.db-journal"}
    | {".mlhub-download.lock"}  # left on disk by a download killed with SIGKILL
)


# ---------------------------------------------------------------------------------------------
# datasets


def make_data_dir(
    root: Path,
    dataset_id: str,
    n_items: int,
    assets_per_item: int,
    min_size: int = 512,
    max_size: int = 4096,
    **kw: Any,
) -> Path:
    """A hub data directory holding one synthetic dataset; returns the data directory."""
    data = root / "hubdata"
    make_synthetic_dataset(data, dataset_id, n_items, assets_per_item, min_size, max_size, **kw)
    return data


def index_rows(asset_dir: Path, dataset_id: str, *, selected_only: bool = True) -> dict[str, str]:
    """``{saved relpath: url}`` from the download's asset index (read-only)."""
    db = asset_dir / dataset_id / "mlhub_assets.db"
    uri = f"file:{db}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as con:
        sql = "SELECT path, url FROM assets" + (" WHERE selected=1" if selected_only else "")
        return dict(con.execute(sql).fetchall())


def index_meta(asset_dir: Path, dataset_id: str) -> dict[str, str]:
    db = asset_dir / dataset_id / "mlhub_assets.db"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as con:
        return dict(con.execute("SELECT key, value FROM meta").fetchall())


def leftovers(root: Path) -> list[Path]:
    """``.part`` / ``.part.meta`` / ``.tmp`` files below ``root``."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.name.endswith((".part", ".part.meta", ".tmp")) and p.is_file()
    )


def asset_files(asset_dir: Path, dataset_id: str, catalog_json: bool = False) -> set[str]:
    """Relative paths of the regular files below ``asset_dir/dataset_id`` that are assets."""
    base = asset_dir / dataset_id
    out = set()
    for p in base.rglob("*"):
        if not p.is_file() or p.name in INDEX_FILES or p.name == "err_report.csv":
            continue
        if not catalog_json and p.suffix == ".json":
            continue
        if p.name.endswith((".part", ".part.meta")):
            continue
        out.add(p.relative_to(base).as_posix())
    return out


def verify_download(
    hub: Hub, asset_dir: Path, dataset_id: str, *, expect: int | None = None
) -> int:
    """Every selected asset is on disk under its final name and byte-identical to the hub's.

    Also: no ``.part`` left, no stray asset file. Returns the number of files checked.
    """
    rows = index_rows(asset_dir, dataset_id)
    if expect is not None:
        assert len(rows) == expect, f"{len(rows)} selected assets, expected {expect}"
    base = asset_dir / dataset_id
    bad = []
    for rel, url in rows.items():
        path = base / rel
        if not path.is_file() or path.read_bytes() != hub.asset_bytes(url):
            bad.append(rel)
    assert not bad, f"{len(bad)} missing or corrupt files, e.g. {bad[:5]}"
    assert not leftovers(base), f"left over: {leftovers(base)[:5]}"
    return len(rows)


def verify_some(hub: Hub, asset_dir: Path, dataset_id: str, rels: list[str]) -> None:
    """The given saved paths are on disk and byte-identical to the hub's."""
    rows = index_rows(asset_dir, dataset_id)
    base = asset_dir / dataset_id
    bad = [r for r in rels if (base / r).read_bytes() != hub.asset_bytes(rows[r])]
    assert not bad, f"{len(bad)} corrupt files, e.g. {bad[:5]}"


def verify_present(hub: Hub, asset_dir: Path, dataset_id: str) -> tuple[int, int]:
    """Whatever is under a final name is complete and correct. Returns (correct, absent)."""
    rows = index_rows(asset_dir, dataset_id)
    base = asset_dir / dataset_id
    ok = absent = 0
    for rel, url in rows.items():
        path = base / rel
        if not path.exists():
            absent += 1
            continue
        data = path.read_bytes()
        expected = hub.asset_bytes(url)
        assert data == expected, f"{rel}: {len(data)} bytes on disk, server has {len(expected)}"
        ok += 1
    return ok, absent


def err_rows(report: Path) -> list[dict[str, str]]:
    with report.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def storage_path(url: str) -> str:
    """The path part of a storage URL, as the hub logs it (``/mlhub/...``)."""
    from urllib.parse import urlsplit

    return urlsplit(url).path


# ---------------------------------------------------------------------------------------------
# figures for docs/guarantees.md

_fig_lock = threading.Lock()


def record_figure(test: str, figure: str, **numbers: Any) -> None:
    """Remember a measured figure (printed, and merged into ``test-artifacts``)."""
    print(f"[figure] {test}: {figure}")
    with _fig_lock:
        FIGURES.parent.mkdir(parents=True, exist_ok=True)
        try:
            data = json.loads(FIGURES.read_text())
        except (OSError, ValueError):
            data = {}
        data[test] = {"figure": figure, **numbers, "when": time.strftime("%Y-%m-%d %H:%M:%S")}
        FIGURES.write_text(json.dumps(data, indent=2, sort_keys=True))


# ---------------------------------------------------------------------------------------------
# an API proxy that can replace answers


@dataclass
class Canned:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/html"})


Override = Callable[[str, str], Canned | None]
"""``(method, path) -> Canned`` to answer instead of the hub, or ``None`` to forward."""


@dataclass
class ApiProxy:
    url: str = ""
    override: Override | None = None
    seen: list[tuple[str, str, int]] = field(default_factory=list)


@contextlib.contextmanager
def api_proxy(target_root: str) -> Iterator[ApiProxy]:
    """A loopback HTTP server forwarding ``/mlhub/v1/...`` to ``target_root`` (the hub's API),
    except where ``proxy.override`` answers. Redirects are passed through, not followed."""
    from urllib.parse import urlsplit

    state = ApiProxy()
    target = urlsplit(target_root)

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kw: Any) -> None:
            return None

    opener = urllib.request.build_opener(_NoRedirect())

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for k, v in headers.items():
                if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _handle(self) -> None:
            path = urlsplit(self.path).path
            canned = state.override(self.command, path) if state.override else None
            if canned is not None:
                state.seen.append((self.command, path, canned.status))
                self._send(canned.status, canned.headers, canned.body)
                return
            url = f"{target.scheme}://{target.netloc}{self.path}"
            req = urllib.request.Request(url, method=self.command)
            for k in ("Accept", "Range", "If-Range", "Authorization"):
                if self.headers.get(k):
                    req.add_header(k, self.headers[k])
            try:
                with opener.open(req, timeout=30) as resp:
                    status, headers, body = resp.status, dict(resp.headers.items()), resp.read()
            except urllib.error.HTTPError as exc:
                status, headers, body = exc.code, dict(exc.headers.items()), exc.read()
            state.seen.append((self.command, path, status))
            self._send(status, headers, body)

        do_GET = _handle
        do_HEAD = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}{target.path}"
    thread = threading.Thread(target=server.serve_forever, name="api-proxy", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_port_url() -> str:
    """An API root on a loopback port nobody listens on (any request would be refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mlhub/v1/"


# ---------------------------------------------------------------------------------------------
# the downloader in a subprocess

_CHILD = r"""
import json, os, sys, time
from mlhub_widgets.download import download_dataset
args = json.loads(sys.argv[1])
t0 = time.monotonic()
summary = download_dataset(args.pop("dataset_id"), args.pop("output_dir"), progress=False, **args)
print(json.dumps({"downloaded": summary.assets_downloaded, "skipped": summary.assets_skipped,
                  "selected": summary.assets_selected, "failed": summary.assets_failed,
                  "retries": summary.retries, "seconds": time.monotonic() - t0}))
"""


def start_child(
    dataset_id: str, output_dir: Path, root_url: str, **kw: Any
) -> subprocess.Popen[str]:
    """Start ``download_dataset`` in a fresh Python process (stdout: a JSON summary line)."""
    args = {"dataset_id": dataset_id, "output_dir": str(output_dir), "root_url": root_url, **kw}
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLHUB_")}
    env["MLHUB_HOME"] = str(output_dir.parent / ".mlhub-home")
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.Popen(
        [PYTHON, "-c", _CHILD, json.dumps(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(ROOT),
        env=env,
    )


def sigkill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the child (by its pid) and reap it."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)


def finish_child(proc: subprocess.Popen[str], timeout: float = 120) -> dict[str, Any]:
    """Wait for a child to end; return its JSON summary (fails with its stderr otherwise)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        sigkill(proc)
        raise AssertionError(f"the download did not finish within {timeout}s") from None
    assert proc.returncode == 0, f"child failed ({proc.returncode}): {err[-3000:]}"
    return dict(json.loads(out.strip().splitlines()[-1]))


def wait_for(
    cond: Callable[[], bool], timeout: float, proc: subprocess.Popen[str] | None = None
) -> bool:
    """Poll ``cond`` every 2 ms until true; False on timeout or when ``proc`` ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, sqlite3.Error):
            if cond():
                return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.002)
    return False


# ---------------------------------------------------------------------------------------------
# small file systems


def mount_tmpfs(path: Path, size: str) -> str:
    """Mount a tmpfs of ``size`` at ``path``; returns how ("tmpfs"), or raises OSError."""
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        raise OSError(f"mount failed: {res.stderr.strip()}")
    return "tmpfs"


def remount_tmpfs(path: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)


def umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


# ---------------------------------------------------------------------------------------------
# process metrics


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def open_fds() -> dict[int, str]:
    """This process's open descriptors and what each points at (``socket:[…]``, a path)."""
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # the listing's own descriptor, closed by now
            continue
    return found


def _status_kb(field_name: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def rss_mb() -> float:
    return _status_kb("VmRSS") / 1024


def peak_rss_mb() -> float:
    return _status_kb("VmHWM") / 1024


def reset_peak_rss() -> bool:
    """Reset VmHWM (Linux: write 5 to clear_refs); False when not permitted."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class RssSampler:
    """Samples this process's RSS every 50 ms in a thread (max kept)."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb())
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def child_outlives_killed_parent(script: str, seconds: float) -> bool:
    """Run ``script`` (it starts a child process and prints the child's pid), kill it with
    SIGKILL, and tell whether the child was still running ``seconds`` later (then kill it)."""
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    os.kill(child, 0)  # running
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return False
        try:
            state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        if state == "Z":  # ended; only waiting for init to reap it
            return False
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(child, signal.SIGKILL)
    return True
