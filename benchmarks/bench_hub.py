#!/usr/bin/env python3
"""Benchmark the bundled hub: small-asset req/s, large-file MB/s, start-up and tarball times.

    .venv/bin/python benchmarks/bench_hub.py                 # everything, ~1 minute
    .venv/bin/python benchmarks/bench_hub.py --only small    # small | large | catalog
    .venv/bin/python benchmarks/bench_hub.py --only catalog --huge   # 10k, 100k and 1M assets

``catalog`` (alias ``startup``) times, for synthetic datasets of 10k/100k(/1M) assets, a hub
process's start-up, first and second ``/items`` pages, catalogue tarball build + download (hub
CPU too), first ``/search`` and the hub's RSS; then restarts the hub on the same ports to show
the tarball served from the on-disk cache. To time a *client* without the hub's one-off work,
warm the hub first: ``hub.warm()`` / ``hub.catalog_blob(dataset_id)`` in process, or
``python -m mlhub_widgets.hub --warm`` (builds everything before printing the URLs).

The hub runs in its own process (``python -m mlhub_widgets.hub``), as it does for a downloader
under test, so the load generator does not share its interpreter. Load comes from ``wrk`` when
it is installed (``apt-get install wrk``), else from Python processes with raw keep-alive sockets
(slower: on a 2-core machine they then compete with the server for CPU, so the figure is a
lower bound). Datasets are written to ``benchmarks/_work/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlhub_widgets.hub import Hub  # noqa: E402
from mlhub_widgets.hub.sample import make_synthetic_dataset  # noqa: E402

WORK = ROOT / "benchmarks" / "_work"
MIB = 1024 * 1024


def start_hub(data: Path) -> tuple[subprocess.Popen[str], str, str]:
    """Run the hub in a child process; return (process, api url, storage url)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlhub_widgets.hub", "--data", str(data)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    api = proc.stdout.readline().split()[-1]
    storage = proc.stdout.readline().split()[-1]
    return proc, api, storage


def stop_hub(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(10)


def small_paths(dataset: str, n_items: int, per_item: int) -> list[str]:
    kinds = ("tif", "geojson", "npy")
    return [
        f"/mlhub/{dataset}/{dataset}_source/{dataset}_{i:07d}/asset_{k}.{kinds[k % 3]}"
        for i in range(n_items)
        for k in range(per_item)
    ]


def _client(args: tuple[str, int, list[str], float, int]) -> tuple[int, int]:
    """Keep-alive GETs over one connection, ``depth`` pipelined, for ``seconds``."""
    host, port, paths, seconds, depth = args
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reqs = [f"GET {p} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for p in paths]
    done = nbytes = 0
    buf = b""
    i = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        batch = [reqs[(i + j) % len(reqs)] for j in range(depth)]
        i += depth
        sock.sendall(b"".join(batch))
        for _ in range(depth):
            while True:
                end = buf.find(b"\r\n\r\n")
                if end >= 0:
                    break
                buf += sock.recv(1 << 20)
            head = buf[:end]
            m = re.search(rb"Content-Length: (\d+)", head)
            length = int(m.group(1)) if m else 0
            need = end + 4 + length
            while len(buf) < need:
                buf += sock.recv(1 << 20)
            assert head.startswith(b"HTTP/1.1 200"), head[:40]
            buf = buf[need:]
            done += 1
            nbytes += length
    sock.close()
    return done, nbytes


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_small(storage: str, paths: list[str], seconds: float, pid: int) -> None:
    parts = urlsplit(storage)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if shutil.which("wrk"):
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
            fh.write("paths = {" + ",".join(f'"{p}"' for p in paths[:20000]) + "}\n")
            fh.write(
                "i = 0\nrequest = function()\n  i = i % #paths + 1\n"
                "  return wrk.format('GET', paths[i])\nend\n"
            )
            script = fh.name
        for conns in (8, 64):
            cpu0 = cpu_seconds(pid)
            out = subprocess.run(
                ["wrk", "-t2", f"-c{conns}", f"-d{seconds:.0f}s", "-s", script, storage],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
            tps = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
            non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            reqs = re.search(r"(\d+) requests in", out)
            cpu = cpu_seconds(pid) - cpu0
            per = cpu / int(reqs.group(1)) * 1e6 if reqs else 0.0
            print(
                f"small assets (wrk, keep-alive, {conns} connections): "
                f"{float(rps.group(1)) if rps else 0:,.0f} req/s, "
                f"{tps.group(1) + ' ' + tps.group(2) if tps else '?'}/s"
                + (f", {non2xx.group(1)} non-2xx!" if non2xx else "")
                + f"; hub CPU {per:.0f} us/request = {1e6 / per if per else 0:,.0f} req/s per core"
            )
        os.unlink(script)
    for depth in (1, 16):
        procs = 2
        chunks = [(host, port, paths[i::procs], seconds, depth) for i in range(procs)]
        cpu0 = cpu_seconds(pid)
        t0 = time.perf_counter()
        with mp.Pool(procs) as pool:
            results = pool.map(_client, chunks)
        took = time.perf_counter() - t0
        n = sum(r[0] for r in results)
        b = sum(r[1] for r in results)
        print(
            f"small assets (python client, {procs} keep-alive connections, pipelining depth "
            f"{depth}): {n / seconds:,.0f} req/s, {b / seconds / 1e6:.1f} MB/s "
            f"({took:.1f}s wall); hub CPU "
            f"{(cpu_seconds(pid) - cpu0) / max(n, 1) * 1e6:.0f} us/request"
        )


def bench_large(storage: str, dataset: str, files: int, pid: int) -> None:
    parts = urlsplit(storage)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    paths = [
        f"/mlhub/{dataset}/{dataset}_source/{dataset}_{i:07d}/asset_0.bin" for i in range(files)
    ]
    buf = bytearray(4 * MIB)
    view = memoryview(buf)
    sock = socket.create_connection((host, port))
    total = 0
    cpu0 = cpu_seconds(pid)
    t0 = time.perf_counter()
    for path in paths:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        end = head.index(b"\r\n\r\n")
        m = re.search(rb"Content-Length: (\d+)", head[:end])
        assert m is not None and head.startswith(b"HTTP/1.1 200")
        remaining = int(m.group(1)) - (len(head) - end - 4)
        total += int(m.group(1))
        while remaining:
            got = sock.recv_into(view, min(remaining, len(buf)))
            if not got:
                raise RuntimeError("connection closed early")
            remaining -= got
    took = time.perf_counter() - t0
    sock.close()
    print(
        f"large files ({files} x {total // files // MIB} MiB, one keep-alive connection, "
        f"read to memory): {total / took / 1e9:.2f} GB/s ({took:.2f}s, hub CPU "
        f"{cpu_seconds(pid) - cpu0:.2f}s)"
    )
    if shutil.which("curl"):
        urls = [storage.rstrip("/") + p for p in paths]
        t0 = time.perf_counter()
        outputs = [arg for url in urls for arg in ("-o", "/dev/null", url)]
        subprocess.run(["curl", "-s", *outputs], check=True)
        took = time.perf_counter() - t0
        print(f"large files (curl -> /dev/null, sequential): {total / took / 1e9:.2f} GB/s")


def loopback_ceiling(nbytes: int = 1 << 30) -> float:
    """GB/s of a bare ``os.sendfile`` -> ``recv_into`` loop over loopback (the machine's limit)."""
    import threading

    with tempfile.TemporaryFile() as fh:
        fh.write(os.urandom(8 * MIB))
        fh.flush()
        srv = socket.create_server(("127.0.0.1", 0))
        port = srv.getsockname()[1]

        def serve() -> None:
            conn, _ = srv.accept()
            sent = 0
            while sent < nbytes:
                sent += os.sendfile(conn.fileno(), fh.fileno(), 0, min(8 * MIB, nbytes - sent))
            conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        client = socket.create_connection(("127.0.0.1", port))
        view = memoryview(bytearray(4 * MIB))
        got = 0
        t0 = time.perf_counter()
        while got < nbytes:
            n = client.recv_into(view)
            if not n:
                break
            got += n
        took = time.perf_counter() - t0
        client.close()
        srv.close()
        thread.join()
    return got / took / 1e9


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def memory_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size of a process in MB (Linux /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = re.search(r"VmRSS:\s+(\d+) kB", status)
    hwm = re.search(r"VmHWM:\s+(\d+) kB", status)
    return (int(rss.group(1)) / 1024 if rss else 0.0, int(hwm.group(1)) / 1024 if hwm else 0.0)


def bench_catalog(n_assets: int, per_item: int = 5) -> None:
    """Catalogue tarball build, first items page, search and RSS of a hub process.

    The hub runs in its own process on fixed ports with its catalogue cache in ``_work``; it is
    started twice, the second time to show the cached tarball after a restart.
    """
    import requests

    name = f"bench_start_{n_assets}"
    data = WORK / f"startup_{n_assets}"
    n_items = n_assets // per_item
    t0 = time.perf_counter()
    if not (data / name / "mlhub-dataset.json").is_file():
        make_synthetic_dataset(data, name, n_items, per_item, checksums=False)
    made = time.perf_counter() - t0
    hub = Hub(data, cache_dir=False).start()
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        blob = hub.catalog_blob(name)
        print(
            f"{n_assets:,} assets: catalogue tarball ({blob.size / 1e6:.1f} MB) built in process "
            f"in {time.perf_counter() - t0:.2f}s wall, {time.process_time() - c0:.2f}s CPU"
        )
    finally:
        hub.stop()
    cache = WORK / "catalog-cache"
    shutil.rmtree(cache, ignore_errors=True)
    ports = [f"--port={free_port()}", f"--storage-port={free_port()}", f"--cache-dir={cache}"]
    cid = f"{name}_source"
    for run in ("cold", "restarted"):
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlhub_widgets.hub", "--data", str(data), *ports],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert proc.stdout is not None
        api = proc.stdout.readline().split()[-1]
        proc.stdout.readline()
        started = time.perf_counter() - t0
        try:
            s = requests.Session()
            t0 = time.perf_counter()
            page = s.get(f"{api}collections/{cid}/items", params={"limit": 100}, timeout=600)
            first_page = time.perf_counter() - t0
            assert page.json()["context"]["matched"] == n_items
            nxt = next(x["href"] for x in page.json()["links"] if x["rel"] == "next")
            t0 = time.perf_counter()
            s.get(nxt, timeout=600).raise_for_status()
            second_page = time.perf_counter() - t0
            cpu0 = cpu_seconds(proc.pid)
            t0 = time.perf_counter()
            tar = s.get(f"{api}catalog/{name}", timeout=600)
            tar_s = time.perf_counter() - t0
            tar_cpu = cpu_seconds(proc.pid) - cpu0
            assert tar.status_code == 200
            t0 = time.perf_counter()
            found = s.get(
                f"{api}search", params={"bbox": "0,0,10,10", "limit": 100}, timeout=600
            ).json()
            search_s = time.perf_counter() - t0
            rss, peak = memory_mb(proc.pid)
        finally:
            stop_hub(proc)
        if run == "cold":
            print(
                f"{n_assets:,} assets ({n_items:,} items, items.jsonl "
                f"{(data / name / cid / 'items.jsonl').stat().st_size / 1e6:.0f} MB; written in "
                f"{made:.1f}s): hub start-up {started * 1000:.0f} ms; first items page (100) "
                f"{first_page * 1000:.0f} ms, second {second_page * 1000:.0f} ms; catalog "
                f"tarball {len(tar.content) / 1e6:.1f} MB built+served in {tar_s:.2f}s "
                f"(hub CPU {tar_cpu:.2f}s); first search (bbox, {found['numberMatched']:,} "
                f"matched) {search_s:.2f}s; hub RSS {rss:.0f} MB (peak {peak:.0f} MB)"
            )
        else:
            print(
                f"{n_assets:,} assets, hub restarted on the same ports: catalog tarball served "
                f"from the cache in {tar_s:.2f}s; first items page {first_page * 1000:.0f} ms"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", choices=("small", "large", "startup", "catalog"))
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--huge", action="store_true", help="also 1M assets (catalog/startup)")
    args = parser.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    if args.only in (None, "small"):
        data = WORK / "small"
        make_synthetic_dataset(data, "bench_small", 2000, 5, 1024, 4096, checksums=False)
        proc, _, storage = start_hub(data)
        try:
            bench_small(storage, small_paths("bench_small", 2000, 5), args.seconds, proc.pid)
        finally:
            stop_hub(proc)
    if args.only in (None, "large"):
        print(
            f"loopback ceiling (bare sendfile -> recv_into, no HTTP): {loopback_ceiling():.2f} GB/s"
        )
        data = WORK / "large"
        make_synthetic_dataset(data, "bench_big", 20, 1, 50 * MIB, 50 * MIB, kinds=("bin",),
                               checksums=False)  # fmt: skip
        proc, _, storage = start_hub(data)
        try:
            bench_large(storage, "bench_big", 20, proc.pid)
        finally:
            stop_hub(proc)
    if args.only in (None, "startup", "catalog"):
        for n in (10_000, 100_000, *((1_000_000,) if args.huge else ())):
            bench_catalog(n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
