#!/usr/bin/env python3
"""Benchmark the asset index build: a synthetic catalogue tarball → ``mlhub_assets.db``.

    .venv/bin/python benchmarks/bench_index.py                 # 100,000 assets, 3 runs
    .venv/bin/python benchmarks/bench_index.py --assets 20000 --runs 5
    .venv/bin/python benchmarks/bench_index.py --profile       # + a cProfile of one build
    .venv/bin/python benchmarks/bench_index.py --out /dev/shm   # runs on a tmpfs (less noise)

The bundled hub builds the catalogue tarball of a ``hub.sample.make_synthetic_dataset``
dataset (2 assets per item, as ``bench_download.py``); each run then builds the index from that
local tarball with :class:`mlhub_widgets.download.index.IndexBuilder` in this process, in a
fresh output folder: the same code the download's index process runs (unpacking with its
safety checks, filters, inserts), without the network. Printed: wall and CPU seconds per run
(CPU: this process, all threads; less sensitive to a busy machine than wall time), their
medians, members and assets per second. Data go to ``benchmarks/_work/`` (git-ignored). The
package measured is the one Python imports (``PYTHONPATH=<checkout>`` to pick a checkout).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "_work"


def tarball(n_assets: int) -> tuple[str, Path]:
    """The catalogue tarball of a synthetic dataset of ``n_assets`` assets (built once)."""
    from mlhub_widgets.hub import serve
    from mlhub_widgets.hub.sample import make_synthetic_dataset

    ds = f"bench_index_{n_assets}"
    data = WORK / "index_data"
    path = WORK / "index_tarballs" / f"{ds}.tar.gz"
    if path.exists():
        return ds, path
    make_synthetic_dataset(data, ds, n_assets // 2, 2, 1024, 4096, kinds=("tif", "geojson"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with serve(data) as hub, urllib.request.urlopen(f"{hub.url}catalog/{ds}") as resp:
        path.write_bytes(resp.read())
    return ds, path


def build_once(ds: str, path: Path, out: Path) -> tuple[float, float, int, int]:
    """Build the index of ``path`` into ``out``; returns (seconds, CPU seconds of this
    process, members, assets)."""
    from mlhub_widgets.download.catalog_archive import ArchiveLimits
    from mlhub_widgets.download.index import IndexBuilder, IndexConfig
    from mlhub_widgets.filters import AssetFilter

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    local = out / path.name
    shutil.copyfile(path, local)
    cfg = IndexConfig(
        dataset_id=ds,
        output_dir=out,
        catalog_path=local,
        manifest_path=out / ds / "mlhub_assets.db",
        flt=AssetFilter.build(),
        limits=ArchiveLimits(),
    )
    builder = IndexBuilder(cfg, {}, 0, lambda *_: None, threading.Event())
    cpu = time.process_time()
    started = time.perf_counter()
    builder.run()
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    if builder.error is not None:
        raise builder.error
    return seconds, cpu, builder.archive_stats.members, builder.assets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assets", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="also profile one build")
    parser.add_argument(
        "--out", type=Path, help="folder for the runs (default benchmarks/_work/index_runs)"
    )
    args = parser.parse_args()
    ds, path = tarball(args.assets)
    print(f"{path.name}: {path.stat().st_size:,} bytes", flush=True)
    out = (args.out or WORK / "index_runs") / "out"
    times, cpus = [], []
    for run in range(args.runs):
        seconds, cpu, members, assets = build_once(ds, path, out)
        times.append(seconds)
        cpus.append(cpu)
        print(
            f"run {run + 1}: {seconds:.2f} s wall, {cpu:.2f} s CPU, "
            f"{members:,} members ({members / seconds:,.0f}/s), "
            f"{assets:,} assets ({assets / seconds:,.0f}/s)",
            flush=True,
        )
    print(
        f"median of {len(times)}: {statistics.median(times):.2f} s wall, "
        f"{statistics.median(cpus):.2f} s CPU"
    )
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        build_once(ds, path, out)
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
    shutil.rmtree(out.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
