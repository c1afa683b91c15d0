#!/usr/bin/env python3
"""Start-up and catalogue figures of the bundled hub (its own data, no on-disk cache).

    .venv/bin/python benchmarks/bench_hub_bundled.py          # 5 runs, minimum of each figure

Prints, per figure, the minimum over fresh interpreters: ``Store()`` (reading the data
directory), ``Hub.start()``, the generated catalogues (items, asset bytes and checksums of every
registry-only dataset, see ``mlhub_widgets/hub/generated.py``), every catalogue tarball built
once (``Hub.catalog_blob`` with ``cache_dir=False``), and a hub process from launch to its first
printed URL, with and without ``--warm`` (which builds every tarball before printing).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

IN_PROCESS = """
import json, time
from mlhub_widgets.hub import Hub
t = time.perf_counter(); hub = Hub(cache_dir=False); store = time.perf_counter() - t
t = time.perf_counter()  # before start(): no background indexing competes
for ds in hub.store.datasets.values():
    if getattr(ds, "generated_from", ()):
        hub.store.generator(ds)
generate = time.perf_counter() - t
t = time.perf_counter(); hub.start(); start = time.perf_counter() - t
hub.store.known_blob_paths()  # wait for the start-up indexing (it holds the store's lock)
ids = [i for i in hub.dataset_ids() if hub.store.datasets[i].has_catalog]
t = time.perf_counter(); size = sum(hub.catalog_blob(i).size for i in ids)
tarballs = time.perf_counter() - t
hub.stop()
print(json.dumps({"Store()": store, "Hub.start()": start, "generated catalogues": generate,
                  "all tarballs (after generation)": tarballs, "n": len(ids), "bytes": size}))
"""


def first_line(extra: list[str]) -> float:
    """Seconds from launching ``python -m mlhub_widgets.hub`` to its first printed URL."""
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "mlhub_widgets.hub", "--port", "0", "--no-cache", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    proc.stdout.readline()
    elapsed = time.perf_counter() - t
    proc.terminate()
    proc.wait(10)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", IN_PROCESS], env=env, capture_output=True, text=True,
                check=True, cwd=ROOT,
            ).stdout
        )
        for _ in range(args.runs)
    ]  # fmt: skip
    for key in runs[0]:
        if key not in ("n", "bytes"):
            print(f"{key:32s} {min(r[key] for r in runs) * 1000:8.0f} ms")
    print(f"{'catalogues':32s} {runs[0]['n']:8d}     ({runs[0]['bytes']:,} B of tarballs)")
    for extra in ([], ["--warm"]):
        best = min(first_line(extra) for _ in range(args.runs))
        label = "process to first URL" + (" --warm" if extra else "")
        print(f"{label:32s} {best * 1000:8.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
