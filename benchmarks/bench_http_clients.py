#!/usr/bin/env python3
"""Race HTTP client libraries on the transfer engine's job (issue 13): which one can carry it?

    .venv/bin/python benchmarks/bench_http_clients.py                   # the README table
    .venv/bin/python benchmarks/bench_http_clients.py --quick           # smoke run, ~1 minute
    .venv/bin/python benchmarks/bench_http_clients.py --only small10k --clients engine,aiohttp
    .venv/bin/python benchmarks/bench_http_clients.py --only small10k --profile aiohttp

The hub (``mlhub_widgets.hub.serve``, synthetic datasets of ``bench_download.py``) runs in its
own process. Each download runs in a fresh interpreter with the same file list (the catalogue's
``file:size`` and ``file:checksum``), interleaved across clients (the order rotates every
repetition), 3 repetitions (``mem100k``: ``--mem-reps``, 1 by default), medians. The
downloaders are in ``http_clients.py``: the same per-file work for every library (GET over 64
keep-alive connections, status, body to ``dest.part``, sha2-256 check, rename), only the HTTP
calls differ; ``engine`` is the current ``TransferEngine`` with the same files.

Cases: ``small10k`` (10,000 assets of 1-4 KiB), ``wan1k`` (1,000 assets, the hub adds 20 ms per
response and 60 ms per new connection), ``large`` (20 x 50 MiB, with ``curl`` interleaved and the
verifying floor computed as ``bench_download.py`` does), ``mem100k`` (100,000 small assets:
peak RSS). ``--profile CLIENT`` runs that client once per case under ``py-spy record --native``
and prints where its CPU time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # this checkout's package first (children run this file)
sys.path.insert(0, str(HERE))

import bench_download as bd  # noqa: E402  (its data specs, disk hygiene, curl and floor)

WORK = bd.WORK
RESULTS = WORK / "http_clients_results.json"

HUB_CHILD = r"""
import json, sys
from mlhub_widgets.hub import FaultConfig, serve
data = sys.argv[1]
with serve(data) as hub:
    storage = hub.storage_url
    print(json.dumps({"storage": storage}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "faults":
            hub.faults = FaultConfig(**cmd["faults"])
            out = {}
        elif cmd["op"] == "urls":  # the catalogue's assets as the file list of every client
            ds, n = cmd["id"], 0
            with open(f"{data}/{ds}/{ds}_source/items.jsonl", encoding="utf-8") as src, \
                    open(cmd["tsv"], "w", encoding="utf-8") as dst:
                for text in src:
                    item = json.loads(text)
                    for key, asset in item["assets"].items():
                        url = hub.rewrite(asset["href"])
                        checksum = asset["file:checksum"]
                        assert url.startswith(storage) and checksum.startswith("1220"), url
                        path = url[len(storage):]
                        dest = f"{item['id']}/{key}.{path.rsplit('.', 1)[-1]}"
                        dst.write(f"{path}\t{asset['file:size']}\t{checksum[4:]}\t{dest}\n")
                        n += 1
            out = {"files": n}
        else:
            break
        print(json.dumps(out), flush=True)
"""


class HubProc:
    """The hub in its own process, driven over stdin/stdout."""

    def __init__(self, data: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HUB_CHILD, str(data)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        self.storage: str = self._read()["storage"]

    def _read(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the hub process died")
        return json.loads(line)

    def call(self, op: str, **kw: Any) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def cpu_s(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------------------------------------
# the child: one client, one download


def _status_kb(pid: int | str, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _watch_children(peaks: dict[str, int], own_cpu: list[float]) -> None:
    """Sample the VmHWM of this process's children (writer helpers) until it exits; keep this
    thread's own CPU time in ``own_cpu`` (it is not the client's)."""
    me = os.getpid()
    with open("/proc/self/cmdline", "rb") as fh:
        mine = fh.read()
    while True:
        own_cpu[0] = time.thread_time()
        try:
            for tid in os.listdir(f"/proc/{me}/task"):
                with open(f"/proc/{me}/task/{tid}/children") as fh:
                    for pid in fh.read().split():
                        with open(f"/proc/{pid}/cmdline", "rb") as cmd:
                            if cmd.read() == mine:  # (v)forked, not yet exec'd: our memory
                                continue
                        peaks[pid] = max(peaks.get(pid, 0), _status_kb(pid, "VmHWM:"))
        except OSError:
            pass
        time.sleep(0.05)


def _cpu(who: int) -> float:
    ru = resource.getrusage(who)
    return ru.ru_utime + ru.ru_stime


def child_main(cfg: dict[str, Any]) -> None:
    peaks: dict[str, int] = {}
    sampler_cpu = [0.0]
    threading.Thread(target=_watch_children, args=(peaks, sampler_cpu), daemon=True).start()
    import http_clients as hc

    started = time.perf_counter()
    hc.import_client(cfg["client"])
    import_s = time.perf_counter() - started
    rss_imported = _status_kb("self", "VmRSS:") / 1024
    specs = hc.read_specs(cfg["tsv"], cfg["storage"], cfg["out"])
    self0, helpers0, loop0 = (
        _cpu(resource.RUSAGE_SELF),
        _cpu(resource.RUSAGE_CHILDREN),
        time.thread_time(),
    )
    sampler0 = sampler_cpu[0]
    started = time.perf_counter()
    stats = hc.run(cfg["client"], cfg["storage"], specs)
    wall = time.perf_counter() - started
    cpu_loop = time.thread_time() - loop0  # this thread: the event loop
    cpu_self = _cpu(resource.RUSAGE_SELF) - self0 - (sampler_cpu[0] - sampler0)
    cpu_helpers = _cpu(resource.RUSAGE_CHILDREN) - helpers0  # the writer helper (waited for)
    cpu = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN)
    main_mb = _status_kb("self", "VmHWM:") / 1024
    helpers_mb = sum(peaks.values()) / 1024
    result = {
        "wall": wall,
        "cpu": cpu_self + cpu_helpers,
        "cpu_loop": cpu_loop,
        "cpu_threads": cpu_self - cpu_loop,  # the library's (or executor's) other threads
        "cpu_helpers": cpu_helpers,
        "process_cpu": cpu,
        "import_s": import_s,
        "rss_imported_mb": rss_imported,
        "rss_mb": main_mb + helpers_mb,
        "rss_main_mb": main_mb,
        "rss_helpers_mb": helpers_mb,
        "files": stats.files,
        "bytes": stats.bytes,
        "failed": stats.failed,
        "first_error": stats.first_error,
    }
    print(json.dumps(result), flush=True)


# ---------------------------------------------------------------------------------------------
# the parent


def run_client(
    hub: HubProc,
    client: str,
    tsv: Path,
    out: Path,
    profile: Path | None = None,
    *,
    quiet_disk: bool = True,
) -> dict[str, Any]:
    """One download by ``client`` in a fresh interpreter; whole-process wall and machine CPU
    measured here, the rest by the child. ``quiet_disk``: first wait until no inode freed by an
    earlier run is quarantined (``bench_download.settle``); profiles skip that (their disk work
    is in the writer helper, which is not profiled)."""
    cfg = {"client": client, "tsv": str(tsv), "storage": hub.storage, "out": str(out)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(cfg)]
    if profile is not None and profile.suffix == ".data":  # perf: every thread, native code
        cmd = ["perf", "record", "-F", "999", "-q", "-o", str(profile), "--", *cmd]
    elif profile is not None and profile.suffix == ".strace":  # system calls, all threads
        cmd = ["strace", "-f", "-c", "-o", str(profile), "--", *cmd]
    elif profile is not None:  # py-spy: Python frames (threads with a Python thread state)
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        cmd = [spy, "record", "--native", "-r", "200", "-f", "raw", "-o", str(profile), "--", *cmd]
    if quiet_disk:
        bd.settle()
    machine = bd._cpu_s()
    hub_cpu = hub.cpu_s()
    load = os.getloadavg()[0]
    started = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    process_wall = time.perf_counter() - started
    if res.returncode != 0:
        raise RuntimeError(f"{client} failed:\n{res.stderr[-3000:]}")
    # the child's last JSON line (py-spy prints its own lines after it)
    last = [line for line in res.stdout.splitlines() if line.startswith("{")][-1]
    r: dict[str, Any] = json.loads(last)
    r.update(bd._cpu_used(machine))
    r.update(process_wall=process_wall, hub_cpu=hub.cpu_s() - hub_cpu, load=load)
    if r["failed"]:
        raise RuntimeError(f"{client}: {r['failed']} files failed, first: {r['first_error']}")
    return r


def read_list(tsv: Path) -> list[tuple[str, int, str, str]]:
    rows = []
    with open(tsv, encoding="utf-8") as fh:
        for line in fh:
            path, size, hexdigest, rel = line.rstrip("\n").split("\t")
            rows.append((path, int(size), hexdigest, rel))
    return rows


def verify(out: Path, files: list[tuple[str, int, str, str]], sample: int = 50) -> None:
    """Every file there with its size, no ``.part`` left, and a sample's sha2-256 right."""
    import hashlib

    left = [p for p in out.rglob("*.part")]
    if left:
        raise AssertionError(f"{out}: {len(left)} .part files left, e.g. {left[0]}")
    for _path, size, _hex, rel in files:
        if (out / rel).stat().st_size != size:
            raise AssertionError(f"{out / rel}: wrong size")
    for _path, _size, hexdigest, rel in random.sample(files, min(sample, len(files))):
        with open(out / rel, "rb") as fh:
            if hashlib.file_digest(fh, "sha256").hexdigest() != hexdigest:
                raise AssertionError(f"{out / rel}: wrong sha2-256")


Row = dict[str, Any]


def summarise(case: str, client: str, runs: list[dict[str, Any]], *, process: bool) -> Row:
    """Medians over the repetitions of one client in one case."""

    def med(key: str) -> float:
        return float(statistics.median(r[key] for r in runs))

    walls = [r["process_wall"] if process else r["wall"] for r in runs]
    wall = statistics.median(walls)
    n = runs[0]["files"]
    nbytes = runs[0]["bytes"]
    return {
        "case": case,
        "client": client,
        "wall_s": wall,
        "wall_min": min(walls),
        "wall_max": max(walls),
        "process_wall_s": med("process_wall"),
        "transfer_wall_s": med("wall"),
        "requests_per_s": n / wall,
        "mb_per_s": nbytes / 1e6 / wall,
        "cpu_s": med("cpu"),
        "us_per_request": med("cpu") / n * 1e6,
        "us_loop": med("cpu_loop") / n * 1e6,
        "us_threads": med("cpu_threads") / n * 1e6,
        "us_helpers": med("cpu_helpers") / n * 1e6,
        "process_cpu_s": med("process_cpu"),
        "hub_cpu_s": med("hub_cpu"),
        "rss_mb": med("rss_mb"),
        "rss_main_mb": med("rss_main_mb"),
        "rss_imported_mb": med("rss_imported_mb"),
        "import_s": med("import_s"),
        "steal_s": max(r["steal_s"] for r in runs),
        "load": max(r["load"] for r in runs),
        "reps": len(runs),
    }


def print_row(row: Row) -> None:
    print(
        f"{row['case']:<9} {row['client']:<15} {row['wall_s']:7.2f}s "
        f"({row['wall_min']:.2f}-{row['wall_max']:.2f}) {row['requests_per_s']:8,.0f} req/s "
        f"{row['mb_per_s']:8.1f} MB/s  cpu {row['cpu_s']:5.2f}s "
        f"{row['us_per_request']:6.0f} us/req (loop {row['us_loop']:.0f}, threads "
        f"{row['us_threads']:.0f}, helper {row['us_helpers']:.0f})  hub {row['hub_cpu_s']:5.2f}s  "
        f"rss {row['rss_mb']:5.0f} MB (main {row['rss_main_mb']:.0f}, after imports "
        f"{row['rss_imported_mb']:.0f})  import {row['import_s']:.2f}s  "
        f"steal {row['steal_s']:.2f}s  load {row['load']:.1f}",
        flush=True,
    )


def race(
    hub: HubProc,
    case: str,
    clients: list[str],
    tsv: Path,
    reps: int,
    *,
    process_wall: bool = False,
    between: Any = None,
) -> list[Row]:
    """``reps`` interleaved rounds over ``clients`` (order rotated each round)."""
    files = read_list(tsv)
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
    for rep in range(reps):
        order = clients[rep % len(clients) :] + clients[: rep % len(clients)]
        for client in order:
            out = bd.fresh(f"http_{case}_{client}")
            r = run_client(hub, client, tsv, out)
            verify(out, files)
            bd.discard(out)
            runs[client].append(r)
            print(
                f"  {case} rep {rep + 1} {client:<15} {r['wall']:6.2f}s transfer, "
                f"{r['process_wall']:6.2f}s process, cpu {r['cpu']:.2f}s, "
                f"rss {r['rss_mb']:.0f} MB, steal {r['steal_s']:.2f}s",
                flush=True,
            )
        if between is not None:
            between(rep)
    rows = [summarise(case, c, runs[c], process=process_wall) for c in clients]
    for row in rows:
        print_row(row)
    return rows


def profile(hub: HubProc, case: str, client: str, tsv: Path, tool: str) -> None:
    """One run of ``client`` under py-spy or perf; print where the samples fall."""
    suffix = {"perf": "data", "strace": "strace"}.get(tool, "txt")
    raw = WORK / f"profile-{case}-{client}.{suffix}"
    out = WORK / "runs" / f"http_profile_{client}"
    shutil.rmtree(out, ignore_errors=True)
    r = run_client(hub, client, tsv, out, profile=raw, quiet_disk=False)
    shutil.rmtree(out)
    print(f"profile {case} {client}: {r['wall']:.2f}s transfer, cpu {r['cpu']:.2f}s; {raw}")
    if tool == "strace":
        print(f"system calls per request ({r['files']:,} requests), all threads and helpers:")
        for line in raw.read_text().splitlines()[2:]:
            parts = line.split()
            if len(parts) >= 5 and parts[3].isdigit() and int(parts[3]) >= r["files"] // 10:
                print(f"  {parts[-1]:<16} {int(parts[3]) / r['files']:6.2f}")
    elif tool == "perf":
        for sort, limit in (("comm,dso", "1"), ("comm,dso,sym", "0.8")):
            report = subprocess.run(
                [
                    "perf",
                    "report",
                    "-i",
                    str(raw),
                    "--stdio",
                    "-q",
                    "--sort",
                    sort,
                    "--percent-limit",
                    limit,
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            print(report.stdout.rstrip())
    else:
        print(summarise_profile(raw))


#: frames that mean a thread is blocked, not running (py-spy --native counts them as active)
WAITING = (
    "PyThread_acquire_lock_timed",
    "epoll_wait",
    "select_epoll_poll",
    "clock_nanosleep",
    "parking_lot",
    "park_timeout",
    "std::thread::park",
    "futex_wait",
    "pthread_cond_timedwait",
    "_queue_SimpleQueue_get",
)


def summarise_profile(raw: Path, top: int = 25) -> str:
    """py-spy's collapsed stacks: busy samples by leaf function (self), by function anywhere in
    the stack (inclusive) and by thread; blocked threads and this benchmark's RSS sampler are
    counted apart."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = waiting = sampler = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        if "_watch_children" in stack:
            sampler += n
            continue
        if any(mark in stack for mark in WAITING):
            waiting += n
            continue
        frames = stack.split(";")
        names = [_frame_name(f) for f in frames[1:]]
        threads["event loop" if "_run_once" in stack else "other threads"] += n
        if names:
            own[names[-1]] += n
        for name in set(names):
            incl[name] += n
    busy = max(1, total - waiting - sampler)
    lines = [
        f"{total} samples: {busy} busy, {waiting} blocked (idle threads, event loop "
        f"waiting), {sampler} in the benchmark's RSS sampler; shares below are of busy samples",
        "by thread: " + ", ".join(f"{t} {n / busy:.1%}" for t, n in threads.most_common()),
        "self (leaf frames):",
    ]
    lines += [f"  {n / busy:6.1%}  {f}" for f, n in own.most_common(top)]
    lines.append("inclusive:")
    lines += [f"  {n / busy:6.1%}  {f}" for f, n in incl.most_common(top)]
    return "\n".join(lines)


def _frame_name(frame: str) -> str:
    """``func (path/to/module.py:123)`` -> ``func (module.py)``."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    parts = where.split("/")
    short = "/".join(parts[-2:]) if "site-packages" in where or "lib/python" in where else parts[-1]
    return f"{name} ({short})" if where else name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 repetition")
    parser.add_argument("--only", help="comma-separated cases (small10k,wan1k,large,mem100k)")
    parser.add_argument("--clients", help="comma-separated clients (default: all)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--mem-reps",
        type=int,
        default=1,
        help="repetitions of mem100k (its peak RSS varied by <= 1 MB over 3; each run writes "
        "100,000 files)",
    )
    parser.add_argument("--profile", metavar="CLIENT", help="profile CLIENT once per case")
    parser.add_argument(
        "--profiler",
        choices=("py-spy", "perf", "strace"),
        default="py-spy",
        help="py-spy (Python frames), perf (every thread, native code; by thread and library) "
        "or strace (system calls per request)",
    )
    args = parser.parse_args()
    if args.child:
        child_main(json.loads(args.child))
        return 0

    import http_clients as hc

    clients = args.clients.split(",") if args.clients else list(hc.CLIENTS)
    unknown = set(clients) - set(hc.CLIENTS)
    if unknown:
        parser.error(f"unknown clients {sorted(unknown)}; choose from {', '.join(hc.CLIENTS)}")
    cases = args.only.split(",") if args.only else ["small10k", "wan1k", "large", "mem100k"]
    q = args.quick
    reps = 1 if q else args.reps
    n_small, n_big, n_wan = (800, 5_000, 200) if q else (10_000, 100_000, 1_000)
    n_large, large_size = (4, 8 << 20) if q else (20, 50 << 20)
    datasets = {  # the same specs (and folders) as bench_download.py
        "small10k": ("bench_small", (n_small // 2, 2, 1024, 4096, ("tif", "geojson"))),
        "wan1k": ("bench_wan", (n_wan // 2, 2, 1024, 4096, ("tif", "geojson"))),
        "large": ("bench_large", (n_large, 1, large_size, large_size, ("bin",))),
        "mem100k": ("bench_big", (n_big // 2, 2, 1024, 4096, ("tif", "geojson"))),
    }
    data = WORK / "data"
    print("preparing data ...", file=sys.stderr)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "mlhub_widgets"), str(HERE)],
        check=True,
    )
    bd.make_data(data, dict(datasets[c] for c in cases))
    bd.empty_trash()
    print(
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
        f"{time.strftime('%Y-%m-%d %H:%M')}",
        flush=True,
    )
    hub = HubProc(data)
    rows: list[Row] = []
    try:
        for case in cases:
            ds = datasets[case][0]
            tsv = WORK / f"{ds}.files.tsv"
            n = hub.call("urls", id=ds, tsv=str(tsv))["files"]
            print(f"{case}: {n:,} files from {ds}", flush=True)
            if case in ("small10k", "wan1k"):
                # untimed: the hub generates each asset on its first request and caches it
                warm = WORK / "runs" / "http_warmup"
                shutil.rmtree(warm, ignore_errors=True)
                run_client(hub, "engine", tsv, warm, quiet_disk=not args.profile)
                (bd.discard if not args.profile else shutil.rmtree)(warm)
            if case == "wan1k":
                hub.call("faults", faults={"latency_ms": 20, "connect_latency_ms": 60})
            try:
                if args.profile:
                    profile(hub, case, args.profile, tsv, args.profiler)
                elif case == "large":
                    rows += race_large(hub, clients, tsv, reps)
                else:
                    n_reps = min(reps, args.mem_reps) if case == "mem100k" else reps
                    rows += race(hub, case, clients, tsv, n_reps)
            finally:
                if case == "wan1k":
                    hub.call("faults", faults={})
    finally:
        hub.close()
        bd.empty_trash()
    if rows:
        RESULTS.write_text(json.dumps(rows, indent=1))
        print(f"results: {RESULTS}")
    return 0


def race_large(hub: HubProc, clients: list[str], tsv: Path, reps: int) -> list[Row]:
    """The large case: whole-process walls (as ``bench_download.py``), ``curl`` after every
    round, and the verifying floor: ``curl``'s CPU plus sha2-256 of every byte over the CPUs."""
    urls = [hub.storage + path for path, _s, _h, _r in read_list(tsv)]
    nbytes = sum(size for _p, size, _h, _r in read_list(tsv))
    curl_wall: list[float] = []
    curl_busy: list[float] = []

    def curl(rep: int) -> None:
        out = bd.fresh("http_large_curl")
        c = bd.run_curl(urls, out, verify=False)
        bd.discard(out)
        curl_wall.append(c["wall"])
        curl_busy.append(c["busy_s"])
        print(
            f"  large rep {rep + 1} curl            {c['wall']:6.2f}s process, "
            f"busy {c['busy_s']:.2f} CPU-s, steal {c['steal_s']:.2f}s",
            flush=True,
        )

    rows = race(hub, "large", clients, tsv, reps, process_wall=True, between=curl)
    ncpu = os.cpu_count() or 1
    hash_s = bd.sha256_core_s(nbytes)
    mc = nbytes / 1e6 / statistics.median(curl_wall)
    floor_s = max(statistics.median(curl_wall), (statistics.median(curl_busy) + hash_s) / ncpu)
    floor_mb = nbytes / 1e6 / floor_s
    print(
        f"  curl {mc:.0f} MB/s ({min(curl_wall):.2f}-{max(curl_wall):.2f} s), "
        f"{statistics.median(curl_busy):.2f} CPU-s; sha2-256 of {nbytes / 1e6:,.0f} MB "
        f"{hash_s:.2f} CPU-s: verifying floor {floor_s:.2f} s = {floor_mb:.0f} MB/s "
        f"= {floor_mb / mc:.0%} of curl",
        flush=True,
    )
    for row in rows:
        row.update(floor_mb_s=floor_mb, curl_mb_s=mc, of_floor=row["mb_per_s"] / floor_mb)
        print(f"  {row['client']:<15} {row['mb_per_s']:6.0f} MB/s = {row['of_floor']:.0%} of floor")
    return rows


if __name__ == "__main__":
    sys.exit(main())
