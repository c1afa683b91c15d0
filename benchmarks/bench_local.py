"""Benchmark: what "after the download" costs — the local catalogue, open_local, pairs().

Starts the bundled hub in this process, unpacks the ``nasa_marine_debris`` catalogue tarball
(1,412 items) into a temporary folder and times:

* ``localize_catalog`` (the step a download adds once the index is complete: every item
  document rewritten so its asset hrefs point at the local files), cold, then again (the scan a
  repeated call costs when nothing changes; a download skips even that with its index marker);
* ``mw.open_local`` (reading the catalogue), ``.items()`` and ``.pairs()``.

Each is run ``--repeat`` times on a fresh copy; medians of wall and CPU seconds are printed.

Run::

    .venv/bin/python benchmarks/bench_local.py
    .venv/bin/python benchmarks/bench_local.py --repeat 5
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

import mlhub_widgets as mw
from mlhub_widgets.download.local_catalog import localize_catalog
from mlhub_widgets.hub import serve

DATASET = "nasa_marine_debris"


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows: dict[str, list[tuple[float, float]]] = {}
    with serve() as hub, tempfile.TemporaryDirectory(prefix="bench-local-") as tmp:
        pristine = Path(tmp) / "pristine"
        r = requests.get(f"{hub.url}catalog/{DATASET}", timeout=120)
        r.raise_for_status()
        with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
            tar.extractall(pristine, filter="data")
        for run in range(args.repeat):
            out = Path(tmp) / f"run{run}"
            shutil.copytree(pristine, out)
            folder = out / DATASET

            def localize(folder: Path = folder, out: Path = out) -> Any:
                return localize_catalog(folder, out, folder, DATASET)

            for name, fn in (
                ("localize_catalog, cold", localize),
                ("localize_catalog, nothing to change", localize),
                ("open_local", lambda folder=folder: mw.open_local(folder)),
            ):
                wall, cpu, result = timed(fn)
                rows.setdefault(name, []).append((wall, cpu))
            ds = result
            for name, fn in (("items()", ds.items), ("pairs()", ds.pairs)):
                wall, cpu, _ = timed(fn)
                rows.setdefault(name, []).append((wall, cpu))
    print(f"{DATASET}: 1,412 items, 3,530 assets; median of {args.repeat} runs")
    for name, values in rows.items():
        wall = statistics.median(v[0] for v in values)
        cpu = statistics.median(v[1] for v in values)
        print(f"  {name:38s} {wall:6.3f} s wall  {cpu:6.3f} s CPU")


if __name__ == "__main__":
    main()
