#!/usr/bin/env python3
"""Who holds the GIL during a download: py-spy over one run of a ``bench_download`` case.

    .venv/bin/python benchmarks/profile_download.py                    # bench_small (10k assets)
    .venv/bin/python benchmarks/profile_download.py --dataset bench_wan --rate 500

Starts the bundled hub on ``bench_download``'s data (made by ``bench_download.py`` when
missing), runs one download in a fresh interpreter under ``py-spy record --gil --threads``
and prints the samples that held the GIL, by holder: the HTTP library (aiohttp, yarl,
multidict), this package's HTTP wrapper (``mlhub_widgets.net.http``), asyncio's loop, the rest
of the engine, and other threads. The download thread is the one that bounds a run of small
assets, so these shares say which code a faster run would have to shed. The raw profile is
kept in ``benchmarks/_work/`` for a closer look.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_download import (
    KEY,
    OURS_CHILD,
    ROOT,
    WORK,
    HubProc,
    _run_child,
    empty_trash,
    fresh,
)

HTTP_LIBRARY = ("aiohttp/", "yarl/", "multidict/")
OUR_HTTP = "mlhub_widgets/net/http.py"
ASYNCIO = ("asyncio/", "selectors.py")


def holder(frames: list[str]) -> str:
    """The category of one sample's stack (``frames[0]`` names the thread)."""
    if "mlhub-download" not in frames[0]:
        return "other threads (imports on the main thread, disk and index threads)"
    if any(lib in frame for frame in frames for lib in HTTP_LIBRARY):
        return "the HTTP library (aiohttp, yarl, multidict)"
    if any(OUR_HTTP in frame for frame in frames):
        return "our HTTP wrapper (mlhub_widgets/net/http.py)"
    if any("mlhub_widgets/" in frame for frame in frames[-3:]):
        return "the engine (mlhub_widgets, outside net/http.py)"
    if any(part in frames[-1] for part in ASYNCIO):
        return "asyncio's loop"
    return "other code on the download thread"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="bench_small", help="a bench_download dataset")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    args = parser.parse_args()
    data = WORK / "data"
    if not (data / args.dataset).exists():
        sys.exit(f"no {data / args.dataset}: run benchmarks/bench_download.py once first")
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    raw = WORK / f"profile-{args.dataset}.txt"
    hub = HubProc(data)
    try:
        hub.call("warm", id=args.dataset)
        params = {"dataset_id": args.dataset, "root_url": hub.url, "api_key": KEY}
        # one run unprofiled first: the hub makes each asset on its first request
        _run_child("warm-up", sys.executable, OURS_CHILD, {**params, "out": str(fresh("p0"))}, ROOT)
        cmd = [spy, "record", "--gil", "--threads", "-r", str(args.rate), "-f", "raw"]
        res = _run_child(
            "profiled",
            sys.executable,
            OURS_CHILD,
            {**params, "out": str(fresh("p1"))},
            ROOT,
            wrap=[*cmd, "-o", str(raw), "--"],
        )
    finally:
        hub.close()
        empty_trash()
    shares: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        shares[holder(stack.split(";"))] += int(count)
    total = sum(shares.values())
    print(
        f"{args.dataset}: {res['downloaded']} assets, {res['wall']:.2f} s under the profiler, "
        f"load {res['load']}; {total} samples holding the GIL ({raw})"
    )
    for name, n in shares.most_common():
        print(f"{100 * n / total:5.1f} %  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
