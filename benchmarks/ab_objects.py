"""A/B one mlhub_widgets row of ``bench_objects`` between this checkout and another.

::

    git worktree add /tmp/mw-old <rev>                  # the baseline: any checkout of the repo
    PYTHONPATH=$PWD .venv/bin/python benchmarks/ab_objects.py --baseline /tmp/mw-old \\
        --kind sync --pairs 5 [--pause 3]

The hub runs in its own process with the datasets of ``bench_objects.py`` (made once in
``benchmarks/_work/data``). Each pair runs the client of both trees in a fresh interpreter, one
after the other, the order alternating from pair to pair; the tree is chosen by the child's
working folder (``python -c`` puts it first on ``sys.path``). Kinds: ``large`` (the 20 x 50 MiB
catalogue, every byte hashed), ``catalog`` (10,000 small assets through their catalogue) and
``sync`` (the 15,002 objects of that prefix). Per run: wall, the client's user and system
CPU-seconds and, from the output files' birth and modification times (GNU ``stat``; for
``large`` the 50 MiB files only, not the catalogue's documents), when the first file was
created, how long the files took from then to the last write, and how long the process ran
after it. ``--pause`` waits before each run: on a VM that hands freed memory back to
its host, runs started after a pause pay for it alike (``benchmarks/README.md``, "the VM's
memory"). Outputs are removed as ``bench_download.discard`` does (thousands of files only
when the benchmark ends).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_download import ROOT, WORK, discard, empty_trash, fresh, settle
from bench_objects import (
    LARGE,
    SMALL,
    client_env,
    dataset_sizes,
    prepare_data,
    run_mw,
    start_hub,
    state_folder,
)

KINDS = {  # kind: (what bench_objects.MW_CHILD runs, the source below the bucket)
    "large": ("catalog", LARGE),
    "catalog": ("catalog", SMALL),
    "sync": ("sync", SMALL),
}


def file_times(out: Path, min_size: int) -> tuple[float, float] | None:
    """(earliest birth, latest modification) of the files of ``min_size`` bytes or more below
    ``out``, or None without a ``stat`` that reports birth times."""
    files = [str(p) for p in out.rglob("*") if p.is_file() and p.stat().st_size >= min_size]
    if not files or shutil.which("stat") is None:
        return None
    res = subprocess.run(
        ["xargs", "-0", "stat", "--format=%.9W %.9Y"],
        input="\0".join(files),
        capture_output=True,
        text=True,
        check=False,
    )
    fields = res.stdout.split()
    births = [float(x) for x in fields[0::2]]
    if res.returncode != 0 or not births or min(births) <= 0:
        return None
    return min(births), max(float(x) for x in fields[1::2])


def run_client(
    tree: Path, kind: str, hub_s3: str, env: dict[str, str], name: str
) -> dict[str, float]:
    """One client of ``tree``, as ``bench_objects`` runs it (:func:`bench_objects.run_mw`)."""
    what, dataset = KINDS[kind]
    out = fresh(name)
    with state_folder(env) as child_env:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started_at = time.time()
        started = time.perf_counter()
        run_mw(what, f"s3://radiantearth/{dataset}/", str(out), hub_s3, child_env, code=tree)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    row = {
        "wall_s": wall,
        "user_s": after.ru_utime - before.ru_utime,
        "sys_s": after.ru_stime - before.ru_stime,
    }
    times = file_times(out, min_size=1 << 20 if kind == "large" else 0)
    if times is not None:
        row["first_file_s"] = times[0] - started_at
        row["files_s"] = times[1] - times[0]
        row["after_last_s"] = started_at + wall - times[1]
    discard(out)
    return row


def show(label: str, row: dict[str, float]) -> str:
    return f"{label:<9} " + "  ".join(f"{k} {v:6.3f}" for k, v in row.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the other checkout")
    parser.add_argument("--kind", choices=sorted(KINDS), default="large")
    parser.add_argument("--pairs", type=int, default=5, help="runs of each tree (default 5)")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds before each run")
    args = parser.parse_args()
    baseline = args.baseline.resolve()
    if not (baseline / "mlhub_widgets" / "__init__.py").is_file():
        parser.error(f"--baseline {baseline} is not a checkout of this project")
    if args.pairs < 1:
        parser.error("--pairs must be a positive integer")
    prepare_data(*dataset_sizes(False))
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(baseline / "mlhub_widgets")], check=True
    )
    trees = {"baseline": baseline, "this": ROOT}
    home = Path(tempfile.mkdtemp(prefix="ab-objects-aws-"))
    env = client_env(home)
    hub = start_hub(WORK / "data", (KINDS[args.kind][1],))
    rows: dict[str, list[dict[str, float]]] = {label: [] for label in trees}
    try:
        for pair in range(args.pairs):
            order = list(trees) if pair % 2 == 0 else list(reversed(trees))
            for label in order:
                settle()
                time.sleep(args.pause)
                row = run_client(trees[label], args.kind, hub.s3, env, f"ab_{label}_{pair}")
                rows[label].append(row)
                print(show(label, row), flush=True)
    finally:
        hub.close()
        empty_trash()
        shutil.rmtree(home, ignore_errors=True)
    print(f"\nmedians of {args.pairs} ({args.kind}):")
    for label, runs in rows.items():
        print(show(label, {k: statistics.median(r[k] for r in runs) for k in runs[0]}))
    old, new = (statistics.median(r["wall_s"] for r in rows[k]) for k in ("baseline", "this"))
    print(f"this checkout's wall time is {new / old:.2f}x the baseline's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
