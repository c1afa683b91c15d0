"""Benchmark: walking a 10,000-item static STAC catalogue over HTTP, ours vs pystac.

Generates a dataset (``mlhub_widgets.hub.sample.make_synthetic_dataset``: one collection of
``--items`` items), serves it as a static catalogue over HTTP on loopback in its own process, then
times in fresh subprocesses, interleaved, ``--repeat`` times each:

* **mlhub_widgets**: ``StaticCatalogSource(url).iter_items(...)`` — the walk the download engine
  uses to index a catalogue (thread pool, keep-alive connections, bounded read-ahead);
* **pystac**: ``pystac.Catalog.from_file(url).get_all_items()`` — pystac's own walk (one
  document after another with its default ``StacIO``).

Both start from the root ``catalog.json`` URL and end with every item parsed as JSON (pystac:
``pystac.Item`` objects, its only output). Wall time excludes interpreter start-up and imports.

The catalogue is served by the bundled hub (``{storage_url}catalogs/<dataset>/catalog.json``)
when it serves static catalogues, else (``--server files``, or when the hub does not) the hub's
catalogue tarball is unpacked and served by a threaded HTTP/1.1 file server (keep-alive, no
Nagle delay), also in its own process.

Run::

    .venv/bin/python benchmarks/bench_static_walk.py                 # 10,000 items, 3 repeats
    .venv/bin/python benchmarks/bench_static_walk.py --items 2000 --repeat 1 --json
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DATASET = "static_walk_bench"

OURS = r"""
import json, sys, time
from mlhub_widgets.sources import StaticCatalogSource
url, workers = sys.argv[1], int(sys.argv[2])
t0, c0 = time.perf_counter(), time.process_time()
with StaticCatalogSource(url, workers=workers) as src:
    cids = [c["id"] for c in src.list_collections()]
    n = sum(1 for _ in src.iter_items(cids))
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"wall": wall, "cpu": cpu, "n": n}))
"""

PYSTAC = r"""
import json, sys, time, warnings
import pystac
url = sys.argv[1]
warnings.simplefilter("ignore")
t0, c0 = time.perf_counter(), time.process_time()
cat = pystac.Catalog.from_file(url)
n = sum(1 for _ in cat.get_all_items())
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"wall": wall, "cpu": cpu, "n": n}))
"""

FILE_SERVER = r"""
import functools, http.server, sys
class H(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(H, directory=sys.argv[1]))
srv.daemon_threads = True
print(f"serving: http://127.0.0.1:{srv.server_address[1]}/", flush=True)
srv.serve_forever()
"""


@contextmanager
def process_printing(args: list[str], pattern: str, count: int = 1) -> Iterator[list[str]]:
    """Run ``args``; yield group 1 of the first ``count`` output lines matching ``pattern``."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        found: list[str] = []
        deadline = time.monotonic() + 120
        rx = re.compile(pattern)
        while len(found) < count and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            m = rx.match(line)
            if m:
                found.append(m.group(1))
        if not found:
            raise RuntimeError(f"{args[:3]} did not start")
        yield found
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def get(url: str) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=600) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


@contextmanager
def static_catalogue(work: Path, n_items: int, server: str) -> Iterator[tuple[str, str]]:
    """Yield ``(catalog.json URL, how it is served)``."""
    from mlhub_widgets.hub.sample import make_synthetic_dataset

    data = work / "data"
    make_synthetic_dataset(data / "datasets", DATASET, n_items, 2)
    hub_cmd = [sys.executable, "-m", "mlhub_widgets.hub", "--data", str(data)]
    with process_printing(hub_cmd, r"(?:MLHub API|storage):\s+(\S+)", 2) as (api, storage):
        static = f"{storage}catalogs/{DATASET}/catalog.json"
        if server in ("auto", "hub") and get(static)[0] == 200:
            yield static, "the bundled hub (static catalogue route)"
            return
        if server == "hub":
            raise SystemExit("the hub does not serve static catalogues yet; use --server files")
        status, body = get(f"{api}catalog/{DATASET}")
        if status != 200:
            raise RuntimeError(f"could not fetch the catalogue tarball ({status})")
    tarball = work / "catalog.tar.gz"
    tarball.write_bytes(body)
    with tarfile.open(tarball, "r:gz") as tf:
        tf.extractall(work / "files", filter="data")
    cmd = [sys.executable, "-c", FILE_SERVER, str(work / "files")]
    with process_printing(cmd, r"serving:\s+(\S+)") as (base,):
        yield f"{base}{DATASET}/catalog.json", "a threaded HTTP/1.1 file server"


def run_variant(code: str, args: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=1800
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--server", choices=("auto", "hub", "files"), default="auto")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="bench-static-walk-") as tmp,
        static_catalogue(Path(tmp), args.items, args.server) as (url, how),
    ):
        run_variant(OURS, [url, str(args.workers)])  # warm the server's caches
        runs: dict[str, list[dict[str, Any]]] = {"mlhub_widgets": [], "pystac": []}
        for _ in range(args.repeat):
            runs["mlhub_widgets"].append(run_variant(OURS, [url, str(args.workers)]))
            runs["pystac"].append(run_variant(PYSTAC, [url]))

    summary: dict[str, Any] = {
        "items": args.items,
        "server": how,
        "workers": args.workers,
        "repeat": args.repeat,
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
    }
    for name, rs in runs.items():
        assert all(r["n"] == args.items for r in rs), (name, [r["n"] for r in rs])
        wall = statistics.median(r["wall"] for r in rs)
        summary[name] = {
            "wall_s": round(wall, 3),
            "cpu_s": round(statistics.median(r["cpu"] for r in rs), 3),
            "items_per_s": round(args.items / wall),
        }
    ratio = summary["mlhub_widgets"]["items_per_s"] / summary["pystac"]["items_per_s"]
    summary["ratio"] = round(ratio, 2)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{args.items} items served by {how}; median of {args.repeat} runs")
    print(f"{'walker':<16}{'wall s':>9}{'CPU s':>9}{'items/s':>10}")
    for name in ("mlhub_widgets", "pystac"):
        r = summary[name]
        print(f"{name:<16}{r['wall_s']:>9.2f}{r['cpu_s']:>9.2f}{r['items_per_s']:>10,}")
    print(f"mlhub_widgets / pystac: {ratio:.1f}x items/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
