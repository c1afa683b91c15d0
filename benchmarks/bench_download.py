#!/usr/bin/env python3
"""Benchmark dataset downloads: mlhub_widgets vs radiant_mlhub 0.5.5 on the bundled hub.

    .venv/bin/python benchmarks/bench_download.py --quick          # smoke run, ~1 minute
    .venv/bin/python benchmarks/bench_download.py                  # the README table
    .venv/bin/python benchmarks/bench_download.py --with-1m        # + 1M assets: full, no-op
    .venv/bin/python benchmarks/bench_download.py --only noop1m --cold --baseline /tmp/base
    .venv/bin/python benchmarks/bench_download.py --peer-100k      # + the peer at 100k (slow)
    .venv/bin/python benchmarks/bench_download.py --only small10k,noop100k

The hub runs in its own process (the downloader under test never shares its interpreter), and
every download runs in a fresh child process, so wall time includes interpreter start and
imports; peak RSS is the download process's own plus that of the index process it
starts (the peaks added: an upper bound of what they hold at once). The peer runs from
``.venv-peer`` (created with ``python3.11 -m venv .venv-peer && .venv-peer/bin/pip install
radiant-mlhub==0.5.5`` when missing) with ``MLHUB_ROOT_URL`` pointing at the hub. Data and
downloads go to ``benchmarks/_work/`` (git-ignored). Every full download is verified (file
count and sizes).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "_work"
PEER_VENV = ROOT / ".venv-peer"
PEER_PY = PEER_VENV / "bin" / "python"
KEY = "bench-key"
HUB_PORTS = WORK / "hub-ports.json"

# ---------------------------------------------------------------------------------------------
# child processes

HUB_CHILD = r"""
import json, sys
from mlhub_widgets.hub import Hub, FaultConfig
try:  # the ports of the previous run: the same catalogue URLs, so its outputs stay no-ops
    hub = Hub(sys.argv[1], **json.loads(sys.argv[2])).start()
except OSError:  # taken meanwhile: new ones
    hub = Hub(sys.argv[1]).start()
print(json.dumps({"api": hub.url, "storage": hub.storage_url, "s3": hub.s3_url}), flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "counters":
        out = {f"{k}/{m}": n for (k, m), n in hub.counters().items()}
        out["keys_seen_storage"] = hub.keys_seen("storage")
    elif cmd["op"] == "reset":
        hub.reset_counters(); out = {}
    elif cmd["op"] == "faults":
        hub.faults = FaultConfig(**cmd["faults"]); out = {}
    elif cmd["op"] == "warm_objects":  # the S3 origin's listing of a dataset (sizes, ETags)
        hub.warm(cmd["id"], catalogs=False); out = {}
    elif cmd["op"] == "warm":
        from mlhub_widgets.config.session import get_session
        out = get_session(root_url=hub.url, api_key="x").get_json(f"catalog/{cmd['id']}/info")
    else:
        break
    print(json.dumps(out), flush=True)
hub.stop()
"""

OURS_CHILD = r"""
import json, os, resource, sys, threading, time
t0 = time.perf_counter()
args = json.loads(sys.argv[1])

def hwm_kb(pid="self"):
    # VmHWM: a process's own high-water mark (ru_maxrss also counts the parent's RSS at fork)
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0

child_peak = {}  # each child's own VmHWM (the index process), sampled until it exits
def watch_children():
    me = os.getpid()
    kids = set()
    n = 0
    while True:
        if n % 4 == 0:  # new children are rare: look for them every 0.2 s only
            try:
                for tid in os.listdir(f"/proc/{me}/task"):
                    kids.update(open(f"/proc/{me}/task/{tid}/children").read().split())
            except OSError:
                pass
        n += 1
        for pid in kids:
            child_peak[pid] = max(child_peak.get(pid, 0), hwm_kb(pid))
        time.sleep(0.05)
threading.Thread(target=watch_children, daemon=True).start()

from mlhub_widgets.download import AssetStarted, download_dataset
first = []
job = download_dataset(args.pop("dataset_id"), args.pop("out"), progress=False,
                       background=True, **args)
def on_event(e):  # only until the first asset request: no per-asset events afterwards
    if not first and isinstance(e, AssetStarted):
        first.append(time.perf_counter() - t0)
        unsubscribe()
unsubscribe = job.subscribe(on_event)
s = job.wait()
wall = time.perf_counter() - t0
rss = hwm_kb() / 1024
index_rss = sum(child_peak.values()) / 1024  # the children's peaks, added
print(json.dumps({"wall": wall, "first_asset": first[0] if first else None,
                  "rss_mb": rss + index_rss, "rss_main_mb": rss, "rss_index_mb": index_rss,
                  "downloaded": s.assets_downloaded, "skipped": s.assets_skipped,
                  "selected": s.assets_selected, "bytes": s.bytes_downloaded,
                  "failed": s.assets_failed,
                  # CPU-seconds of the download process (user + system) and of the children it
                  # waited for: what the run cost, whatever else the machine was doing
                  "cpu_s": sum(os.times()[:2]), "children_cpu_s": sum(os.times()[2:4])}))
"""

PEER_CHILD = r"""
import json, logging, os, resource, sys, time
t0 = time.perf_counter()
args = json.loads(sys.argv[1])
from radiant_mlhub import Dataset
logging.disable(logging.CRITICAL)
ds = Dataset.fetch_by_id(args.pop("dataset_id"))
ds.download(output_dir=args.pop("out"), **args)
wall = time.perf_counter() - t0
def peak_rss_mb():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"wall": wall, "rss_mb": peak_rss_mb()}))
"""


class HubProc:
    """The hub in a child process, driven over stdin/stdout (counters, faults)."""

    def __init__(self, data: Path) -> None:
        # The catalogue names the hub's address: a hub on other ports serves another catalogue,
        # and a re-run re-indexes everything. The ports of the last hub are tried first, so
        # that a no-op case can re-use the output of an earlier benchmark run.
        ports = {}
        if HUB_PORTS.exists():
            ports = json.loads(HUB_PORTS.read_text())
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HUB_CHILD, str(data), json.dumps(ports)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        urls = json.loads(self._readline())
        self.url: str = urls["api"]
        self.storage: str = urls["storage"]
        self.s3: str = urls["s3"]
        ports = {
            name: urlsplit(urls[key]).port
            for name, key in (("port", "api"), ("storage_port", "storage"), ("s3_port", "s3"))
        }
        HUB_PORTS.parent.mkdir(parents=True, exist_ok=True)
        HUB_PORTS.write_text(json.dumps(ports))

    def _readline(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the hub process died")
        return line

    def call(self, op: str, **kw: Any) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self._readline())

    def asset_requests(self) -> int:
        counters = self.call("counters")
        return sum(n for k, n in counters.items() if k.startswith("asset/"))

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _run_child(
    label: str,
    python: Path | str,
    code: str,
    args: dict[str, Any],
    cwd: Path,
    *,
    cold: bool = False,
    wrap: list[str] | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; its last stdout line is the JSON result. ``cold``:
    drop the kernel's caches first; ``wrap``: a command prefix (a profiler)."""
    settle()
    if cold:
        drop_caches()
    cpu = _cpu_s()
    load = os.getloadavg()[0]
    started = time.perf_counter()
    res = subprocess.run(
        [*(wrap or []), str(python), "-c", code, json.dumps(args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
        **kw,
    )
    if res.returncode != 0:
        raise RuntimeError(f"{label} failed:\n{res.stderr[-3000:]}")
    # the last JSON line (a profiler wrapping the child prints after it)
    last = [line for line in res.stdout.splitlines() if line.startswith("{")][-1]
    result: dict[str, Any] = json.loads(last)
    result["process_wall"] = time.perf_counter() - started  # interpreter start to exit
    result["load"] = round(load, 1)
    result.update(_cpu_used(cpu))
    return result


def _cpu_s() -> tuple[float, float]:
    """(busy, steal): CPU-seconds of all CPUs from ``/proc/stat``. Busy is user, nice, system,
    irq and softirq (every process: the hub's too); steal is what the hypervisor gave to
    other guests."""
    try:
        with open("/proc/stat") as fh:
            f = [int(x) for x in fh.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    return (f[0] + f[1] + f[2] + f[5] + f[6]) / tick, f[7] / tick


def _cpu_used(before: tuple[float, float]) -> dict[str, float]:
    busy, steal = _cpu_s()
    return {"busy_s": round(busy - before[0], 2), "steal_s": round(steal - before[1], 2)}


def run_ours(
    hub: HubProc,
    dataset_id: str,
    out: Path,
    *,
    code: Path | None = None,
    profile: Path | None = None,
    cold: bool = False,
    **kw: Any,
) -> dict[str, Any]:
    """Our download in a fresh interpreter. ``code``: import ``mlhub_widgets`` from that
    checkout instead (``--baseline``); ``profile``: record it with ``py-spy`` into that file
    (collapsed stacks of every thread, idle ones too, 250 samples/s); ``cold``: drop the
    kernel's caches first."""
    args = {"dataset_id": dataset_id, "out": str(out), "root_url": hub.url, "api_key": KEY, **kw}
    env = {**os.environ, "PYTHONPATH": str(code)} if code is not None else None
    # `python -c` puts its working folder first on sys.path: that of the code under test
    cwd = code if code is not None else ROOT
    if profile is None:
        return _run_child("ours", sys.executable, OURS_CHILD, args, cwd, env=env, cold=cold)
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    cmd = [spy, "record", "--idle", "--threads", "-r", "250", "-f", "raw", "-o", str(profile)]
    return _run_child(
        "ours", sys.executable, OURS_CHILD, args, cwd, env=env, cold=cold, wrap=[*cmd, "--"]
    )


def drop_caches() -> None:
    """Empty the kernel's page, dentry and inode caches (root only): a cold start."""
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as fh:
        fh.write("3\n")


def profile_summary(path: Path, top: int = 16) -> str:
    """Where the job's thread spent the wall time, from a py-spy raw profile (``--threads``):
    the functions with the most samples of that thread (inclusive), as a share of the main
    thread's samples (it is sampled all the time, so its count is the process's wall time);
    and how busy the disk-check threads were."""
    main = job = pool = 0
    inclusive: dict[str, int] = {}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        thread, *frames = stack.split(";")
        n = int(count)
        if thread.endswith(": MainThread"):
            main += n
        if "mlhub-disk-check" in thread and frames and not frames[-1].startswith("_worker"):
            pool += n  # (a pool thread waiting for work sits in _worker's queue get)
        if "mlhub-download-" not in thread:
            continue
        job += n
        seen = set()
        for frame in frames:
            name = frame.split(" (")[0] + " (" + frame.rsplit(" (", 1)[-1].split(":")[0] + ")"
            if name not in seen:
                seen.add(name)
                inclusive[name] = inclusive.get(name, 0) + n
    wall = max(main, 1)
    out = [
        f"    {wall} samples of the main thread; the job's thread {job / wall:.0%} of them, "
        f"the disk-check threads {pool / wall:.2f} thread-walls"
    ]
    rows = sorted(inclusive.items(), key=lambda kv: -kv[1])
    out += [f"    {n / wall:6.1%}  {name}" for name, n in rows[:top]]
    return "\n".join(out)


def run_curl(urls: list[str], out: Path, *, verify: bool) -> dict[str, Any]:
    """``curl`` fetching every URL at once, one process per file (the loopback ceiling for
    writing these files); with ``verify``, then ``openssl dgst -sha256`` (SHA-NI, like
    Python's ``hashlib``) over them, one process per CPU."""
    for tool in ("curl", "openssl") if verify else ("curl",):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed")
    settle()
    cpu = _cpu_s()
    started = time.perf_counter()
    procs = [
        subprocess.Popen(["curl", "-s", "-f", "-o", str(out / f"f{i}.bin"), url])
        for i, url in enumerate(urls)
    ]
    if any(p.wait() != 0 for p in procs):
        raise RuntimeError("curl failed")
    if verify:
        files = [str(out / f"f{i}.bin") for i in range(len(urls))]
        n = os.cpu_count() or 1
        sums = [
            subprocess.Popen(
                ["openssl", "dgst", "-sha256", *files[i::n]], stdout=subprocess.DEVNULL
            )
            for i in range(n)
        ]
        if any(p.wait() != 0 for p in sums):
            raise RuntimeError("openssl dgst failed")
    return {"wall": time.perf_counter() - started, **_cpu_used(cpu)}


def sha256_core_s(nbytes: int) -> float:
    """CPU-seconds ``hashlib.sha256`` takes for ``nbytes`` on this machine (best of 3)."""
    block = os.urandom(1 << 20)
    best = float("inf")
    for _ in range(3):
        h = hashlib.sha256()
        started = time.process_time()
        for _ in range(64):
            h.update(block)
        best = min(best, time.process_time() - started)
    return best * nbytes / (64 << 20)


def selected_urls(out: Path, dataset_id: str) -> list[str]:
    import sqlite3

    with sqlite3.connect(out / dataset_id / "mlhub_assets.db") as con:
        return [r[0] for r in con.execute("SELECT url FROM assets WHERE selected=1")]


def ensure_peer() -> bool:
    if PEER_PY.exists():
        return True
    print("creating .venv-peer with radiant-mlhub==0.5.5 ...", file=sys.stderr)
    try:
        subprocess.run(["python3.11", "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run(
            [str(PEER_VENV / "bin" / "pip"), "install", "-q", "radiant-mlhub==0.5.5"], check=True
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"cannot set up the peer: {exc}", file=sys.stderr)
        return False
    return True


def run_peer(hub: HubProc, dataset_id: str, out: Path, **kw: Any) -> dict[str, Any]:
    env = {**os.environ, "MLHUB_ROOT_URL": hub.url, "MLHUB_API_KEY": KEY}
    env.pop("PYTEST_CURRENT_TEST", None)
    env.pop("MLHUB_CI", None)
    args = {"dataset_id": dataset_id, "out": str(out), **kw}
    return _run_child("peer", PEER_PY, PEER_CHILD, args, WORK, env=env)


# ---------------------------------------------------------------------------------------------
# data


def make_data(data: Path, specs: dict[str, tuple[Any, ...]]) -> None:
    from mlhub_widgets.hub.sample import make_synthetic_dataset

    for ds_id, (n_items, per_item, lo, hi, kinds) in specs.items():
        marker = data / ds_id / f".made-{n_items}-{per_item}-{lo}-{hi}"
        if marker.exists():
            continue
        t = time.perf_counter()
        make_synthetic_dataset(data, ds_id, n_items, per_item, lo, hi, kinds=kinds)
        marker.touch()
        print(f"  generated {ds_id} in {time.perf_counter() - t:.1f}s", file=sys.stderr)


def verify(out: Path, dataset_id: str, expected_files: int) -> None:
    """Count asset files (not catalogue JSON, index, report) under ``out/dataset_id``."""
    root = out / dataset_id
    n = 0
    for _dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.startswith("asset_") and not name.endswith((".part", ".meta")):
                n += 1
    if n != expected_files:
        raise AssertionError(f"{root}: {n} asset files, expected {expected_files}")


TRASH = WORK / "trash"


def fresh(name: str) -> Path:
    """An empty output folder. An earlier one is moved aside and deleted when the benchmark
    ends: on ext4 without a journal, creating files right after deleting thousands costs
    extra kernel time (freed inodes are skipped for a while), which would tax whichever
    client runs next."""
    path = WORK / "runs" / name
    if path.exists():
        discard(path)
    path.mkdir(parents=True)
    return path


def discard(path: Path) -> None:
    """Remove a finished run. Thousands of files are moved aside (:func:`empty_trash` deletes
    them when the benchmark ends, see :func:`settle`); a few are deleted at once: they free
    too few inodes to matter, and their page cache is freed for the next run (1 GB of large
    files left cached made the next client reclaim memory while writing: +0.8 CPU-s)."""
    if _files(path) < MASS_DELETE:
        shutil.rmtree(path)
        return
    TRASH.mkdir(parents=True, exist_ok=True)
    path.rename(TRASH / f"{path.name}-{time.monotonic_ns()}")


DELETED_STAMP = WORK / ".last-mass-delete"
INODE_QUARANTINE_S = 360.0
MASS_DELETE = 1000  # files: from this many, a deletion starts the inode quarantine wait


def _files(path: Path) -> int:
    return sum(len(names) for _, _, names in os.walk(path))


def empty_trash() -> None:
    if TRASH.exists():
        files = _files(TRASH)
        shutil.rmtree(TRASH, ignore_errors=True)
        if files >= MASS_DELETE:
            DELETED_STAMP.touch()


def settle() -> None:
    """Give every timed run the same disk: earlier writes flushed, and no inodes freed by an
    earlier run still quarantined. On ext4 without a journal (these VMs) the kernel avoids
    reusing an inode for 60 s after its deletion, and for 5 more minutes while its inode-table
    block is dirty, which new files created beside it keep it; every file creation scans past
    all such inodes. Measured here: 10,000 small files took 6-9 s instead of 2.3-2.6 s within
    minutes of deleting 60,000, with ~10 s of kernel time in the creating threads. So the
    benchmark never deletes between timed runs (old outputs go to ``trash/``, emptied at the
    end) and waits out the quarantine when started soon after such a deletion."""
    os.sync()
    try:
        age = time.time() - DELETED_STAMP.stat().st_mtime
    except FileNotFoundError:
        return
    if age < INODE_QUARANTINE_S:
        wait = INODE_QUARANTINE_S - age
        print(f"  waiting {wait:.0f}s for inodes freed by an earlier run", file=sys.stderr)
        time.sleep(wait)


def delete_half(out: Path, dataset_id: str) -> int:
    n = 0
    for i, path in enumerate(sorted((out / dataset_id).rglob("asset_*"))):
        if i % 2 == 0:
            path.unlink()
            n += 1
    return n


# ---------------------------------------------------------------------------------------------
# cases

Row = dict[str, Any]


def _row(
    case: str, client: str, r: dict[str, Any], n_assets: int, nbytes: int, **extra: Any
) -> Row:
    wall = r["wall"]
    return {
        "case": case,
        "client": client,
        "wall_s": wall,
        "assets_per_s": n_assets / wall if wall else 0.0,
        "mb_per_s": nbytes / 1e6 / wall if wall else 0.0,
        "rss_mb": r.get("rss_mb"),
        "steal_s": r.get("steal_s"),
        **({"load": r["load"]} if "load" in r else {}),  # 1-minute load average at the start
        **({"cpu_s": round(r["cpu_s"], 2)} if "cpu_s" in r else {}),
        **extra,
    }


def noop_1m(hub: HubProc, out: Path, args: argparse.Namespace, report: Any) -> None:
    """No-op re-runs of the complete 1M download: warm page cache, then (``--cold``) cold,
    each alternating with the ``--baseline`` code when given. A re-run keeps the stamps of the
    folders it found whole (``folders`` in the index), so that the next one trusts unchanged
    folders; the ``first`` kinds drop them before the run, as after a download."""
    variants: list[tuple[str, Path | None]] = [("this", None)]
    if args.baseline is not None:
        variants.append(("baseline", args.baseline.resolve()))
    kinds = ["warm", "cold"] if args.cold else ["warm"]
    kinds += [f"first-{kind}" for kind in kinds]
    run_ours(hub, "bench_1m", out)  # untimed: fills the page cache for the first warm run
    walls: dict[tuple[str, str], list[float]] = {}
    for rep in range(args.reps):
        for kind in kinds:
            for label, code in variants:
                if kind.startswith("first"):
                    if label != "this":
                        continue  # the baseline keeps no stamps: every run of it is a first
                    forget_stamps(out / "bench_1m" / "mlhub_assets.db")
                hub.call("reset")
                profile = None
                if args.profile:
                    profile = WORK / f"profile-noop1m-{label}-{kind}-{rep + 1}.txt"
                cold = kind.endswith("cold")
                r = run_ours(hub, "bench_1m", out, code=code, cold=cold, profile=profile)
                if r["skipped"] != 1_000_000 or r["downloaded"] or r["failed"]:
                    raise AssertionError(f"not a no-op: {r}")
                walls.setdefault((label, kind), []).append(r["wall"])
                row = _row("noop1m", label, r, r["skipped"], 0, cache=kind, rep=rep + 1)
                process_s = round(r["process_wall"], 2)  # interpreter start to exit
                report(dict(row, process_s=process_s, requests=hub.asset_requests()))
                if profile is not None:
                    print(profile_summary(profile), flush=True)
    for (label, kind), w in walls.items():
        print(
            f"  noop1m {label} {kind}: median {statistics.median(w):.2f}s "
            f"(min {min(w):.2f}, max {max(w):.2f}) of {len(w)}",
            flush=True,
        )


def forget_stamps(db: Path) -> None:
    """Drop the folder stamps an earlier re-run kept: the next re-run checks every file."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(db, timeout=60)) as con:
        con.execute("DROP TABLE IF EXISTS folder_stamps")
        con.commit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument(
        "--with-1m", action="store_true", help="also the 1M-asset cases (full download, no-op)"
    )
    parser.add_argument(
        "--cold", action="store_true", help="noop1m: also with a cold page cache (needs root)"
    )
    parser.add_argument("--reps", type=int, default=3, help="noop1m: runs of each kind")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="noop1m: a checkout of other code (e.g. `git archive` of main); its runs alternate "
        "with this checkout's",
    )
    parser.add_argument(
        "--profile", action="store_true", help="noop1m: record every run with py-spy"
    )
    parser.add_argument("--peer-100k", action="store_true", help="also run the peer at 100k")
    parser.add_argument("--no-peer", action="store_true", help="only our engine")
    parser.add_argument("--only", help="comma-separated case names")
    args = parser.parse_args()

    q = args.quick
    n_small = 1_000 if q else 10_000
    n_big = 5_000 if q else 100_000
    n_large, large_size = (4, 8 << 20) if q else (20, 50 << 20)
    n_wan = 200 if q else 1_000
    cases = {"small10k", "noop100k", "half100k", "rss100k", "large", "wan1k", "bbox100k"}
    if args.with_1m:
        cases |= {"rss1m", "noop1m"}
    if args.only:
        cases = set(args.only.split(","))
    peer = not args.no_peer and ensure_peer()

    data = WORK / "data"
    specs: dict[str, tuple[Any, ...]] = {
        "bench_small": (n_small // 2, 2, 1024, 4096, ("tif", "geojson")),
        "bench_big": (n_big // 2, 2, 1024, 4096, ("tif", "geojson")),
        "bench_large": (n_large, 1, large_size, large_size, ("bin",)),
        "bench_wan": (n_wan // 2, 2, 1024, 4096, ("tif", "geojson")),
    }
    if cases & {"rss1m", "noop1m"}:
        specs["bench_1m"] = (500_000, 2, 256, 1024, ("tif", "geojson"))
    print("preparing data ...", file=sys.stderr)
    # an installed package has its bytecode compiled; this checkout may not (for example
    # with PYTHONDONTWRITEBYTECODE set): compile it, or every child pays for compiling
    for code in (ROOT, args.baseline):
        if code is not None:
            subprocess.run(
                [sys.executable, "-m", "compileall", "-q", str(code / "mlhub_widgets")], check=True
            )
    make_data(data, specs)
    empty_trash()  # what an interrupted run left
    hub = HubProc(data)
    rows: list[Row] = []

    def report(row: Row) -> None:
        rows.append(row)
        base = {"case", "client", "wall_s", "assets_per_s", "mb_per_s", "rss_mb", "steal_s"}
        extra = {k: v for k, v in row.items() if k not in base}
        print(
            f"{row['case']:<10} {row['client']:<8} {row['wall_s']:8.2f}s "
            f"{row['assets_per_s']:9.0f} assets/s {row['mb_per_s']:8.1f} MB/s "
            f"rss {row['rss_mb'] or 0:6.0f} MB  steal {row['steal_s'] or 0:5.2f}s  "
            f"{json.dumps(extra) if extra else ''}",
            flush=True,
        )

    def warm(ds_id: str) -> None:
        hub.call("warm", id=ds_id)  # the hub builds the catalogue tarball once, untimed

    try:
        if "small10k" in cases:
            warm("bench_small")
            # one untimed run first: the hub generates each asset on its first request and
            # caches it; without this the first timed client would pay for the generation
            run_ours(hub, "bench_small", fresh("small_warmup"))
            ours_s, peer_s = [], []
            for rep in range(1 if q else 3):  # interleaved: both clients see the same machine
                out = fresh("small_ours")
                hub.call("reset")
                r = run_ours(hub, "bench_small", out)
                verify(out, "bench_small", n_small)
                ours_s.append(r["wall"])
                report(
                    _row(
                        "small10k",
                        "ours",
                        r,
                        r["downloaded"],
                        r["bytes"],
                        rep=rep + 1,
                        requests=hub.asset_requests(),
                    )
                )
                if peer:
                    out = fresh("small_peer")
                    p = run_peer(hub, "bench_small", out)
                    verify(out, "bench_small", n_small)
                    peer_s.append(p["wall"])
                    report(_row("small10k", "peer", p, n_small, r["bytes"], rep=rep + 1))
                    print(f"  ratio assets/s ours/peer: {p['wall'] / r['wall']:.1f}x", flush=True)
            if peer_s:
                mo, mp = statistics.median(ours_s), statistics.median(peer_s)
                print(f"  median of {len(ours_s)}: {mo:.2f}s vs {mp:.2f}s = {mp / mo:.1f}x")

        big_out = WORK / "runs" / "big_ours"
        if cases & {"noop100k", "half100k", "rss100k"}:
            warm("bench_big")
            big_out = fresh("big_ours")
            r = run_ours(hub, "bench_big", big_out)
            verify(big_out, "bench_big", n_big)
            report(_row("full100k", "ours", r, r["downloaded"], r["bytes"]))
            if "rss100k" in cases:
                print(
                    f"  peak RSS at {n_big:,} assets: {r['rss_mb']:.0f} MB (download "
                    f"{r['rss_main_mb']:.0f} + index process "
                    f"{r['rss_index_mb']:.0f})",
                    flush=True,
                )
                if args.baseline is not None:  # the same download with the other code
                    base_out = fresh("big_base")
                    b = run_ours(hub, "bench_big", base_out, code=args.baseline.resolve())
                    verify(base_out, "bench_big", n_big)
                    report(_row("full100k", "baseline", b, b["downloaded"], b["bytes"]))
                    discard(base_out)
        if "noop100k" in cases:
            hub.call("reset")
            r = run_ours(hub, "bench_big", big_out)
            report(_row("noop100k", "ours", r, r["skipped"], 0, requests=hub.asset_requests()))
        big_peer = WORK / "runs" / "big_peer"
        if peer and args.peer_100k and cases & {"noop100k", "half100k", "rss100k"}:
            big_peer = fresh("big_peer")
            p = run_peer(hub, "bench_big", big_peer)
            verify(big_peer, "bench_big", n_big)
            report(_row("full100k", "peer", p, n_big, 0))
            p = run_peer(hub, "bench_big", big_peer)
            report(_row("noop100k", "peer", p, n_big, 0))

        if cases & {"rss1m", "noop1m"}:
            warm("bench_1m")
            out = WORK / "runs" / "1m_ours"
            # kept for later no-op runs (it takes minutes); valid while the hub keeps its ports
            complete = out / f".complete-{urlsplit(hub.url).port}-{urlsplit(hub.storage).port}"
            if "rss1m" in cases or not complete.exists():
                out = fresh("1m_ours")
                r = run_ours(hub, "bench_1m", out)
                verify(out, "bench_1m", 1_000_000)
                report(
                    _row(
                        "rss1m",
                        "ours",
                        r,
                        r["downloaded"],
                        r["bytes"],
                        rss_main_mb=round(r["rss_main_mb"]),
                        rss_index_mb=round(r["rss_index_mb"]),
                    )
                )
                complete.touch()
                if "rss1m" in cases and args.baseline is not None:
                    base_out = fresh("1m_base")
                    b = run_ours(hub, "bench_1m", base_out, code=args.baseline.resolve())
                    verify(base_out, "bench_1m", 1_000_000)
                    row = _row("rss1m", "baseline", b, b["downloaded"], b["bytes"])
                    report(dict(row, rss_main_mb=round(b["rss_main_mb"])))
                    discard(base_out)
            if "noop1m" in cases:
                noop_1m(hub, out, args, report)

        if "large" in cases:
            warm("bench_large")
            # every row of this case is a whole process, interpreter start to exit, as curl's
            ours_mb, phase_mb, curl_wall, curl_busy = [], [], [], []
            for rep in range(1 if q else 3):  # interleaved with curl: same machine state
                out = fresh("large_ours")
                r = run_ours(hub, "bench_large", out)
                verify(out, "bench_large", n_large)
                row = _row(
                    "large",
                    "ours",
                    dict(r, wall=r["process_wall"]),
                    r["downloaded"],
                    r["bytes"],
                    rep=rep + 1,
                    busy_s=r["busy_s"],
                    first_asset_s=round(r["first_asset"], 2),
                    transfer_mb_s=round(r["bytes"] / 1e6 / (r["wall"] - r["first_asset"])),
                )
                report(row)
                ours_mb.append(row["mb_per_s"])
                phase_mb.append(row["transfer_mb_s"])
                urls = selected_urls(out, "bench_large")
                discard(out)  # each run starts with the same free memory
                c = run_curl(urls, curl_out := fresh("large_curl"), verify=False)
                discard(curl_out)
                report(
                    _row("large", "curl", c, n_large, r["bytes"], rep=rep + 1, busy_s=c["busy_s"])
                )
                curl_wall.append(c["wall"])
                curl_busy.append(c["busy_s"])
            c = run_curl(urls, fresh("large_curl"), verify=True)
            report(_row("large", "curl+sha", c, n_large, r["bytes"], busy_s=c["busy_s"]))
            mo, mt = statistics.median(ours_mb), statistics.median(phase_mb)
            mc = r["bytes"] / 1e6 / statistics.median(curl_wall)
            print(
                f"  median of {len(ours_mb)}: ours {mo:.0f} MB/s whole process, {mt:.0f} MB/s "
                f"transfer phase; curl {mc:.0f} MB/s: {mo / mc:.0%} / {mt / mc:.0%} of curl",
                flush=True,
            )
            # What verifying costs on this machine, whoever does it: curl's CPU plus hashing
            # every byte, spread over all CPUs, is the shortest wall time a client that checks
            # file:checksum while writing can reach (when curl keeps the CPUs busy).
            ncpu = os.cpu_count() or 1
            hash_s = sha256_core_s(r["bytes"])
            # (never below curl's own wall time: with idle CPUs, as in --quick, that bounds it)
            floor_s = max(
                statistics.median(curl_wall), (statistics.median(curl_busy) + hash_s) / ncpu
            )
            floor_mb = r["bytes"] / 1e6 / floor_s
            print(
                f"  verifying floor: curl used {statistics.median(curl_busy):.2f} CPU-s (of "
                f"{ncpu * statistics.median(curl_wall):.2f} available), sha2-256 of "
                f"{r['bytes'] / 1e6:,.0f} MB takes {hash_s:.2f} CPU-s: a verifying client "
                f"needs >= {floor_s:.2f} s = {floor_mb:.0f} MB/s = {floor_mb / mc:.0%} of curl; "
                f"ours reaches {mo / floor_mb:.0%} of that floor",
                flush=True,
            )
            if peer:
                out = fresh("large_peer")
                p = run_peer(hub, "bench_large", out)
                verify(out, "bench_large", n_large)
                report(_row("large", "peer", dict(p, wall=p["process_wall"]), n_large, r["bytes"]))

        if "wan1k" in cases:
            warm("bench_wan")
            hub.call("faults", faults={"latency_ms": 20, "connect_latency_ms": 60})
            try:
                out = fresh("wan_ours")
                r = run_ours(hub, "bench_wan", out)
                verify(out, "bench_wan", n_wan)
                report(_row("wan1k", "ours", r, r["downloaded"], r["bytes"]))
                if peer:
                    out = fresh("wan_peer")
                    p = run_peer(hub, "bench_wan", out)
                    verify(out, "bench_wan", n_wan)
                    report(_row("wan1k", "peer", p, n_wan, r["bytes"]))
            finally:
                hub.call("faults", faults={})

        if "bbox100k" in cases:
            warm("bench_big")
            # a band 10% of the grid's width: selected items are spread over the whole tarball
            bbox = [-20.0, -35.0, -13.0, 40.0]
            out = fresh("bbox_ours")
            hub.call("reset")
            r = run_ours(hub, "bench_big", out, bbox=bbox)
            report(
                _row(
                    "bbox100k",
                    "ours",
                    r,
                    r["downloaded"],
                    r["bytes"],
                    first_asset_s=round(r["first_asset"], 2),
                    selected=r["selected"],
                )
            )
            if peer and args.peer_100k:
                out = fresh("bbox_peer")
                p = run_peer(hub, "bench_big", out, bbox=bbox)
                report(_row("bbox100k", "peer", p, r["selected"], 0))
        # Last: deleting 50,000 files quarantines their inodes for minutes (see settle()),
        # which would slow every case that creates files after it.
        if "half100k" in cases:
            deleted = delete_half(big_out, "bench_big")
            hub.call("reset")
            r = run_ours(hub, "bench_big", big_out)
            verify(big_out, "bench_big", n_big)
            report(
                _row(
                    "half100k",
                    "ours",
                    r,
                    r["downloaded"],
                    r["bytes"],
                    deleted=deleted,
                    requests=hub.asset_requests(),
                )
            )
            if peer and args.peer_100k:
                delete_half(big_peer, "bench_big")
                p = run_peer(hub, "bench_big", big_peer)
                report(_row("half100k", "peer", p, n_big // 2, 0))
    finally:
        hub.close()
        empty_trash()
    (WORK / "last_results.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
