#!/usr/bin/env python3
"""Benchmark downloads on a Dask cluster against the single-process engine, where the network
is the limit (issue 18).

    .venv/bin/python benchmarks/bench_scaleout.py              # the README table (~6 minutes)
    .venv/bin/python benchmarks/bench_scaleout.py --quick      # smoke run (~1 minute)
    .venv/bin/python benchmarks/bench_scaleout.py --workers 1,2,4,6,8 --rounds 5

The network: the bundled hub in its own process adds 20 ms before every response and caps
every response body at ``--bps`` bytes per second (``FaultConfig(latency_ms=20,
bandwidth_bps=...)``): each connection is a slow flow, as over a long path, and one process
running ``--engine-workers`` transfers at once (8: the same engine settings everywhere) is
limited by its flows. The variants download the same dataset into fresh folders:

* ``engine``: the single-process engine, ``download_dataset(...)``;
* ``dask N``: ``download_dataset(..., cluster=client)`` on a ``LocalCluster`` of N worker
  processes (1 thread each), started once before the rounds (its start-up is reported apart);
* ``engine xN``: the single-process engine with N times the transfers (what one process can do
  when its flows, not its machine, are the limit).

Rounds interleave the variants (the order rotates each round) and the table shows medians. Each
row also shows the machine's load average when the runs started and the share of both cores
used during them: by this benchmark's processes (the client, the hub, the Dask workers) and by
the whole machine (``/proc/stat``; the machine is shared), to see where the 2 CPUs saturate.

The scheduler overhead is what ``dask 1`` costs over ``engine`` (the same transfers in one
worker process, plus the scheduling, the partitions and the results). The rounds above give
it per round; ``--overhead-pairs N`` measures it alone, from N back-to-back pairs (the order
alternating), with the share of the transfer phase spent outside the tasks.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_download import KEY, WORK, HubProc, _cpu_s

DATASET = "bench_scaleout"
HERE = WORK / "scaleout"


def make_data(n_assets: int, min_size: int, max_size: int) -> Path:
    from mlhub_widgets.hub.sample import make_synthetic_dataset

    data = HERE / f"hubdata-{n_assets}-{min_size}-{max_size}"
    if not (data / DATASET).exists():
        make_synthetic_dataset(
            data, DATASET, n_assets // 2, 2, min_size, max_size, kinds=("tif", "bin")
        )
    return data


def our_cpu_s() -> float:
    """CPU-seconds used so far by this process and its children (the hub, Dask's worker
    processes), not by anything else on the machine."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


def run_once(hub: HubProc, out: Path, workers: int, cluster: Any) -> dict[str, Any]:
    """One download into ``out``; the wall time, the transfer phase, the CPU, the load."""
    from mlhub_widgets.download import DownloadJob, ProgressUpdated

    load = os.getloadavg()[0]
    job = DownloadJob(DATASET, out, root_url=hub.url, api_key=KEY, workers=workers, cluster=cluster)
    marks: dict[str, float] = {}

    def on_event(event: object) -> None:
        if isinstance(event, ProgressUpdated) and event.snapshot.phase == "transfer":
            marks.setdefault("transfer", time.perf_counter())

    job.subscribe(on_event)
    os.sync()
    busy0, steal0 = _cpu_s()
    ours0 = our_cpu_s()
    started = time.perf_counter()
    summary = job.start().wait()
    ended = time.perf_counter()
    busy1, steal1 = _cpu_s()
    ours1 = our_cpu_s()
    if not summary.complete or summary.assets_skipped:
        raise RuntimeError(f"incomplete run: {summary}")
    wall = ended - started
    run = job._cluster_transfer
    return {
        "wall": wall,
        "transfer": ended - marks.get("transfer", started),
        "assets": summary.assets_downloaded,
        "bytes": summary.bytes_downloaded,
        "busy": (busy1 - busy0) / (2 * wall),
        "ours": (ours1 - ours0) / (2 * wall),
        "steal_s": steal1 - steal0,
        "load": load,
        "tasks": run.tasks_submitted if run is not None else 0,
        "heartbeats": run.heartbeats_received if run is not None else 0,
        "task_s": run.task_seconds if run is not None else 0.0,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--assets", type=int, default=800)
    p.add_argument("--min-size", type=int, default=64 << 10)
    p.add_argument("--max-size", type=int, default=128 << 10)
    p.add_argument("--bps", type=int, default=512_000, help="cap per response body")
    p.add_argument("--latency-ms", type=float, default=20)
    p.add_argument("--engine-workers", type=int, default=8, help="transfers per process")
    p.add_argument("--workers", default="1,2,4,8", help="Dask worker processes to measure")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--overhead-pairs",
        type=int,
        default=0,
        help="only the overhead: this many back-to-back pairs of engine and dask 1 (the order "
        "alternates), compared pair by pair",
    )
    p.add_argument("--quick", action="store_true", help="200 assets, 1 round, 1 and 2 workers")
    args = p.parse_args()
    if args.quick:
        args.assets, args.rounds, args.workers = 200, 1, "1,2"
    counts = [int(n) for n in args.workers.split(",")]
    if args.overhead_pairs:
        counts = [1]

    from distributed import Client, LocalCluster

    HERE.mkdir(parents=True, exist_ok=True)
    runs = HERE / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    data = make_data(args.assets, args.min_size, args.max_size)
    hub = HubProc(data)
    clusters: dict[int, tuple[Any, Any]] = {}
    startup: dict[int, float] = {}
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        hub.call("warm", id=DATASET)
        hub.call("faults", faults={"latency_ms": args.latency_ms, "bandwidth_bps": args.bps})
        for n in counts:
            t0 = time.perf_counter()
            cluster = LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                scheduler_port=0,
                dashboard_address="127.0.0.1:0",
                silence_logs=logging.ERROR,
            )
            client = Client(cluster, set_as_default=False)
            client.wait_for_workers(n)
            startup[n] = time.perf_counter() - t0
            # the workers import the engine once, before the timed runs
            client.run(importlib.import_module, "mlhub_widgets.download.partitions")
            clusters[n] = (cluster, client)
        variants: list[tuple[str, int, Any]] = [("engine", args.engine_workers, None)]
        variants += [(f"dask {n}", args.engine_workers, clusters[n][1]) for n in counts]
        top = max(counts)
        variants.append((f"engine x{top}", args.engine_workers * top, None))
        if args.overhead_pairs:
            pairs(args, hub, runs, clusters[1][1])
            return 0
        for r in range(args.rounds):
            order = variants[r % len(variants) :] + variants[: r % len(variants)]
            for name, workers, client in order:
                out = runs / f"{name.replace(' ', '_')}-{r}"
                res = run_once(hub, out, workers, client)
                results.setdefault(name, []).append(res)
                print(
                    f"round {r + 1} {name:>10}: {res['wall']:6.2f} s wall, "
                    f"{res['transfer']:6.2f} s transfer, CPU {res['ours']:4.0%} ours / "
                    f"{res['busy']:4.0%} machine, "
                    f"load {res['load']:.1f}, {res['tasks']} tasks",
                    file=sys.stderr,
                )
    finally:
        for cluster, client in clusters.values():
            client.close()
            cluster.close()
        hub.close()
        shutil.rmtree(runs, ignore_errors=True)
    report(args, counts, startup, results)
    return 0


def pairs(args: argparse.Namespace, hub: HubProc, runs: Path, client: Any) -> None:
    """Back-to-back runs of the engine and of one Dask worker, the overhead of each pair."""
    rows = []
    for i in range(args.overhead_pairs):
        order = [("engine", None), ("dask 1", client)]
        if i % 2:
            order.reverse()
        got = {}
        for name, cluster in order:
            got[name] = run_once(hub, runs / f"pair{i}-{name[0]}", args.engine_workers, cluster)
        e, d = got["engine"], got["dask 1"]
        rows.append(
            {
                "engine": e["transfer"],
                "dask": d["transfer"],
                "ratio": d["transfer"] / e["transfer"] - 1,
                "outside": (d["transfer"] - d["task_s"]) / d["transfer"],
                "load": (e["load"] + d["load"]) / 2,
                "tasks": d["tasks"],
            }
        )
        r = rows[-1]
        print(
            f"pair {i + 1}: engine {r['engine']:.2f} s, dask 1 {r['dask']:.2f} s "
            f"({r['ratio']:+.1%}); outside the tasks {r['outside']:.1%}; load {r['load']:.1f}",
            file=sys.stderr,
        )
    med = statistics.median
    each = ", ".join(f"{r['ratio']:+.1%}" for r in rows)
    outside = med(r["outside"] for r in rows)
    per_asset = med(r["outside"] * r["dask"] for r in rows) / args.assets * 1e3
    print(
        f"\n{args.assets} assets, {args.overhead_pairs} back-to-back pairs: engine "
        f"{med(r['engine'] for r in rows):.2f} s, dask 1 {med(r['dask'] for r in rows):.2f} s; "
        f"dask 1 over engine, median of the pairs {med(r['ratio'] for r in rows):+.1%} "
        f"(each: {each}); time outside the tasks (scheduling, results, the gaps between "
        f"partitions) {outside:.1%} of the transfer phase = {per_asset:.2f} ms per asset; "
        f"load {med(r['load'] for r in rows):.1f}"
    )


def report(
    args: argparse.Namespace,
    counts: list[int],
    startup: dict[int, float],
    results: dict[str, list[dict[str, Any]]],
) -> None:
    med = {
        name: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        for name, rs in results.items()
    }
    base = med["engine"]["transfer"]
    mb = med["engine"]["bytes"] / 1e6
    print(
        f"\n{args.assets} assets ({mb:.0f} MB), {args.latency_ms:.0f} ms per response, "
        f"{args.bps / 1e3:.0f} kB/s per response body, {args.engine_workers} transfers per "
        f"process; median of {args.rounds} interleaved rounds\n"
    )
    print(
        "| variant | processes | transfer s | wall s | MB/s | × engine | CPU: ours / machine "
        "| load | tasks |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, m in med.items():
        procs = name.split()[1] if name.startswith("dask") else "1"
        print(
            f"| {name} | {procs} | {m['transfer']:.2f} | {m['wall']:.2f} | "
            f"{m['bytes'] / 1e6 / m['transfer']:.1f} | {base / m['transfer']:.2f} | "
            f"{m['ours']:.0%} / {m['busy']:.0%} | {m['load']:.1f} | {m['tasks']:.0f} |"
        )
    if "dask 1" in results:
        pairs = [
            (d["transfer"] - e["transfer"]) / e["transfer"]
            for d, e in zip(results["dask 1"], results["engine"], strict=False)
        ]
        per_asset = (med["dask 1"]["transfer"] - base) / args.assets * 1000
        print(
            f"\nscheduler overhead at 1 worker: {statistics.median(pairs):+.1%} of the "
            f"single-process transfer time (per round: {', '.join(f'{x:+.1%}' for x in pairs)}); "
            f"{per_asset:+.2f} ms per asset"
        )
    print(
        "LocalCluster start-up: "
        + ", ".join(f"{n} workers {startup[n]:.1f} s" for n in counts)
        + f"; load average now {os.getloadavg()[0]:.1f}"
    )
    (HERE / "results.json").write_text(
        json.dumps({"args": vars(args), "startup": startup, "results": results}, indent=1)
    )


if __name__ == "__main__":
    sys.exit(main())
