"""Benchmark of the transfer engine against the bundled hub (run in its own process).

    .venv/bin/python benchmarks/bench_transfer.py                 # everything, default sizes
    .venv/bin/python benchmarks/bench_transfer.py --only small --small 20000
    .venv/bin/python benchmarks/bench_transfer.py --only large --no-curl

Scenarios (each against a fresh output directory, every file verified afterwards):

* ``small``: N small assets (1-4 KiB, with ``file:size`` and ``file:checksum``), one folder per
  ten files. The hub generates an asset's bytes on its first request, so the first pass ("cold
  hub") measures the hub as much as the client; the next ones ("warm hub") are the client's
  number, to the work directory and to tmpfs (``/dev/shm``: what the engine does when creating
  files is cheap), compared with ``curl -Z --parallel-max 64 --create-dirs`` writing the same
  files.
* ``large``: 20 x 50 MiB files, compared with ``curl -Z --parallel-max 6`` writing files.
* ``wan``: 1,000 small assets from a hub adding 20 ms per response and 60 ms per new
  connection (``--latency-ms 20 --connect-latency-ms 60``).
* ``noop``: a second run over the complete small download (``if_exists="resume"``: no request).

Client CPU is user+sys time of this process during the run (the hub is another process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlhub_widgets.download.transfer import (  # noqa: E402
    TransferEngine,
    TransferOutcome,
    TransferSpec,
    download_file,
)
from mlhub_widgets.hub.sample import make_synthetic_dataset  # noqa: E402
from mlhub_widgets.hub.store import BLOB_ROOT  # noqa: E402


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


@contextmanager
def hub_process(data: Path, *extra: str) -> Iterator[tuple[str, int]]:
    """Start ``python -m mlhub_widgets.hub`` on ``data``; yield (storage URL, pid)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlhub_widgets.hub", "--data", str(data), *extra],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    storage = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("storage:"):
            storage = line.split()[1]
            break
    try:
        if not storage:
            raise RuntimeError("the hub did not start")
        yield storage, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_specs(data: Path, ds: str, storage: str, out: Path) -> list[TransferSpec]:
    specs = []
    with open(data / ds / f"{ds}_source" / "items.jsonl", encoding="utf-8") as fh:
        for line in fh:
            item = json.loads(line)
            for key, asset in item["assets"].items():
                path = asset["href"][len(BLOB_ROOT) :]
                specs.append(
                    TransferSpec(
                        storage + path,
                        out / item["id"][-3:] / f"{item['id']}_{key}{Path(path).suffix}",
                        asset.get("file:size"),
                        asset.get("file:checksum"),
                    )
                )
    return specs


def run_engine(
    specs: list[TransferSpec], workers: int, **kw: object
) -> tuple[list[TransferOutcome], float, float]:
    outcomes: list[TransferOutcome] = []
    engine = TransferEngine(workers=workers, **kw)  # type: ignore[arg-type]
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    asyncio.run(engine.run(specs, on_outcome=outcomes.append))
    return outcomes, time.perf_counter() - t0, cpu_seconds() - cpu0


def verify(specs: list[TransferSpec], outcomes: list[TransferOutcome]) -> None:
    bad = [o for o in outcomes if not o.ok]
    if bad or len(outcomes) != len(specs):
        raise SystemExit(f"FAILED: {len(bad)} failed, {len(outcomes)}/{len(specs)}: {bad[:3]}")
    for s in specs:
        if s.size is not None and s.dest.stat().st_size != s.size:
            raise SystemExit(f"FAILED: wrong size {s.dest}")


def report(name: str, n: int, nbytes: int, wall: float, cpu: float, hub_cpu: float) -> None:
    print(
        f"{name:<28} {n:>7,} files {nbytes / 1e6:>9.1f} MB {wall:>7.2f} s "
        f"{n / wall:>9,.0f} files/s {nbytes / 1e6 / wall:>8.1f} MB/s "
        f"client CPU {cpu / n * 1e6:>7.0f} µs/file ({cpu / wall * 100:3.0f}%)  "
        f"hub CPU {hub_cpu / wall * 100:3.0f}%",
        flush=True,
    )


def bench_small(args: argparse.Namespace, work: Path) -> None:
    data = work / "data"
    ds = f"bsmall{args.small}"
    if not (data / ds).exists():
        make_synthetic_dataset(data, ds, args.small, 1, 1024, 4096, kinds=("tif",))
    with hub_process(data) as (storage, pid):
        shm = Path("/dev/shm")
        passes = [("small, cold hub", work), ("small, warm hub", work)]
        if shm.is_dir():
            passes.append(("small, warm hub, tmpfs out", shm / "mlhub-bench"))
        passes.append(("small, warm hub (again)", work))
        for label, base in passes:
            out = base / "out-small"
            shutil.rmtree(out, ignore_errors=True)
            specs = load_specs(data, ds, storage, out)
            h0 = proc_cpu(pid)
            outcomes, wall, cpu = run_engine(specs, args.workers)
            hub_cpu = proc_cpu(pid) - h0
            verify(specs, outcomes)
            report(label, len(specs), sum(o.size for o in outcomes), wall, cpu, hub_cpu)
            if base != work:
                shutil.rmtree(base, ignore_errors=True)
        h0 = proc_cpu(pid)
        outcomes, wall, cpu = run_engine(specs, args.workers)
        verify(specs, outcomes)
        assert all(o.attempts == 0 for o in outcomes)
        report("no-op resume (0 requests)", len(specs), 0, wall, cpu, proc_cpu(pid) - h0)
        if args.curl and shutil.which("curl"):
            out = work / "out-curl-small"
            shutil.rmtree(out, ignore_errors=True)
            wall = curl(load_specs(data, ds, storage, out), out, args.curl_parallel_small)
            nbytes = sum(s.size or 0 for s in specs)
            label = f"curl -Z (parallel {args.curl_parallel_small})"
            report(label, len(specs), nbytes, wall, 0, 0)


def curl(specs: list[TransferSpec], out: Path, parallel: int) -> float:
    """``curl -Z`` writing the same files (same directory layout) as the engine."""
    out.mkdir(parents=True, exist_ok=True)
    config = out.parent / f"{out.name}.curl.cfg"
    with open(config, "w") as fh:
        for s in specs:
            fh.write(f'url = "{s.url}"\noutput = "{s.dest}"\n')
    t0 = time.perf_counter()
    subprocess.run(
        [
            "curl",
            "-s",
            "-f",
            "-Z",
            "--parallel-max",
            str(parallel),
            "--create-dirs",
            "-K",
            str(config),
        ],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def bench_large(args: argparse.Namespace, work: Path) -> None:
    data = work / "data"
    size = args.large_size << 20
    ds = f"blarge{args.large}x{args.large_size}"
    if not (data / ds).exists():
        make_synthetic_dataset(data, ds, args.large, 1, size, size, kinds=("bin",), checksums=True)
    with hub_process(data) as (storage, pid):
        total = args.large * size
        for label, strip in (("large, size only", True), ("large, size + sha256", False)):
            out = work / "out-large"
            shutil.rmtree(out, ignore_errors=True)
            specs = load_specs(data, ds, storage, out)
            if strip:
                specs = [TransferSpec(s.url, s.dest, s.size) for s in specs]
            h0 = proc_cpu(pid)
            outcomes, wall, cpu = run_engine(specs, args.large_workers)
            verify(specs, outcomes)
            report(label, len(specs), total, wall, cpu, proc_cpu(pid) - h0)
        spec = specs[0]
        for n in (1, 4):
            dest = work / "out-large" / f"ranged{n}.bin"
            cpu0 = cpu_seconds()
            t0 = time.perf_counter()
            h0 = proc_cpu(pid)
            o = download_file(spec.url, dest, size=spec.size, parallel_ranges=n)
            wall = time.perf_counter() - t0
            assert o.ok, o
            report(
                f"download_file ranges={n}", 1, size, wall, cpu_seconds() - cpu0, proc_cpu(pid) - h0
            )
        if args.curl and shutil.which("curl"):
            out = work / "out-curl-large"
            shutil.rmtree(out, ignore_errors=True)
            wall = curl(load_specs(data, ds, storage, out), out, 6)
            report("curl -Z --parallel-max 6", len(specs), total, wall, 0, 0)
        shutil.rmtree(work / "out-large", ignore_errors=True)
        shutil.rmtree(work / "out-curl-large", ignore_errors=True)


def bench_wan(args: argparse.Namespace, work: Path) -> None:
    data = work / "data"
    ds = f"bwan{args.wan}"
    if not (data / ds).exists():
        make_synthetic_dataset(data, ds, args.wan, 1, 1024, 4096, kinds=("tif",))
    with hub_process(data, "--latency-ms", "20", "--connect-latency-ms", "60") as (storage, pid):
        for workers in (64, 128):
            out = work / "out-wan"
            shutil.rmtree(out, ignore_errors=True)
            specs = load_specs(data, ds, storage, out)
            h0 = proc_cpu(pid)
            outcomes, wall, cpu = run_engine(specs, workers)
            verify(specs, outcomes)
            nbytes = sum(o.size for o in outcomes)
            report(
                f"WAN 20+60 ms, {workers} workers",
                len(specs),
                nbytes,
                wall,
                cpu,
                proc_cpu(pid) - h0,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("small", "large", "wan"), action="append")
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=20)
    parser.add_argument("--large-size", type=int, default=50, help="MiB per large file")
    parser.add_argument("--wan", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--large-workers", type=int, default=6)
    parser.add_argument("--curl-parallel-small", type=int, default=64)
    parser.add_argument("--no-curl", dest="curl", action="store_false")
    parser.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "_work")
    args = parser.parse_args()
    work: Path = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    only = args.only or ["small", "large", "wan"]
    if "small" in only:
        bench_small(args, work)
    if "large" in only:
        bench_large(args, work)
    if "wan" in only:
        bench_wan(args, work)


if __name__ == "__main__":
    main()
