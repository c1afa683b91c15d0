#!/usr/bin/env python3
"""Benchmark object-store transfers against the hub's S3 origin: s5cmd, aws s3 sync, curl.

    .venv/bin/python benchmarks/bench_objects.py                 # every row, 3 interleaved reps
    .venv/bin/python benchmarks/bench_objects.py --quick         # smoke run (1k assets, 4 x 8 MiB)
    .venv/bin/python benchmarks/bench_objects.py --only s5cmd-get,aws-sync --reps 1

The hub runs in its own process (``bench_download.HubProc``) with two synthetic datasets in the
``radiantearth`` bucket (Source Cooperative's layout, see ``mlhub_widgets.hub.s3_datasets``):
``bench_small``, 10,000 assets of 1-4 KiB with ``file:size`` + ``file:checksum`` in 5,000 items
(the prefix holds 15,002 objects: assets, item documents, collection, catalogue), and
``bench_large``, 20 x 50 MiB. Its listings are built before timing (``hub.warm``). Every client
runs as a fresh process writing to ``benchmarks/_work/runs/`` (the same disk helpers as
``bench_download.py``: earlier outputs are deleted only at the end); every copy is checked
(file count and bytes). Rows are a table of ``(name, function)``, :data:`ROWS`: a row function
gets the :class:`Bench` and returns what it measured, so adding a client is one function and
one line.

The verifying floor of the large case is what any client that checks every byte needs at least
on this machine: the CPU-seconds of ``curl`` and of the hub for the same objects plus sha2-256 of
every byte, spread over the CPUs (never below ``curl``'s own wall time), as in
``bench_download.py`` (which counts the whole machine's CPU instead: here the machine is shared,
so each row also reports the client's own and the hub's CPU-seconds).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_download import (
    ROOT,
    WORK,
    HubProc,
    _cpu_s,
    _cpu_used,
    discard,
    empty_trash,
    fresh,
    make_data,
    run_curl,
    settle,
    sha256_core_s,
)

BIN = Path(sys.executable).parent
MIB = 1024 * 1024
Row = dict[str, Any]


@dataclass
class Bench:
    """What every row function gets: the hub, the datasets and helpers to run clients."""

    hub: HubProc
    small: str
    large: str
    n_small_objects: int
    n_assets: int
    n_large: int
    large_bytes: int
    uploads: Path
    n_uploads: int
    seconds: float
    env: dict[str, str] = field(default_factory=dict)
    counter: int = 0

    def tool(self, name: str) -> str:
        found = BIN / name
        if found.exists():
            return str(found)
        path = shutil.which(name)
        if path is None:
            raise RuntimeError(f"{name} is not installed (pip install -e '.[test]')")
        return path

    def measured(self, run: Callable[[], dict[str, float]]) -> dict[str, float]:
        """Time ``run`` (which starts client processes): wall, the clients' own CPU-seconds,
        the hub's, the whole machine's (other processes' too: on a shared machine, compare
        the clients' and the hub's) and, on a VM that hands freed memory back to its host,
        how much it handed back meanwhile."""
        settle()
        to_host = host_reported_mb()
        cpu = _cpu_s()
        hub_cpu = _proc_cpu(self.hub.proc.pid)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        extra = run()
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        client = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        return {
            "wall_s": wall,
            "client_cpu_s": client,
            "hub_cpu_s": _proc_cpu(self.hub.proc.pid) - hub_cpu,
            **_cpu_used(cpu),
            **({} if to_host is None else {"to_host_mb": (host_reported_mb() or 0) - to_host}),
            **extra,
        }

    def timed(self, cmd: list[str]) -> dict[str, float]:
        """Run one client process (see :meth:`measured`)."""

        def run() -> dict[str, float]:
            res = subprocess.run(cmd, env=self.env, capture_output=True, text=True, check=False)
            if res.returncode != 0:
                raise RuntimeError(f"{cmd[0]} failed ({res.returncode}):\n{res.stderr[-3000:]}")
            return {}

        return self.measured(run)

    def s3(self, *args: str) -> list[str]:
        return ["--endpoint-url", self.hub.s3, *args]

    def unique(self, name: str) -> str:
        self.counter += 1
        return f"{name}-{self.counter}"


#: What a VM's kernel has handed back to its host (virtio-balloon free page reporting).
PAGE_REPORTING = Path("/sys/module/page_reporting/parameters/reported_kib")


def host_reported_mb() -> float | None:
    """MB of freed memory this VM has handed back to its host so far (None: not such a VM).
    Pages handed back fault in the host when the guest uses them again, so on such a VM the
    kernel time of writing large files varies with it (``README.md``, "the VM's memory")."""
    try:
        return int(PAGE_REPORTING.read_text()) / 1024
    except (OSError, ValueError):
        return None


def count_files(path: Path, expected: int) -> None:
    n = sum(len(files) for _, _, files in os.walk(path))
    if n != expected:
        raise AssertionError(f"{path}: {n} files, expected {expected}")


def check_bytes(b: Bench, out: Path, dataset: str, sample: int = 50) -> None:
    """A sample of the copied files equals what the S3 origin serves."""
    import requests

    files = sorted(p for p in out.rglob("*") if p.is_file())
    for path in random.Random(0).sample(files, min(sample, len(files))):
        key = f"{dataset}/{path.relative_to(out).as_posix()}"
        got = requests.get(f"{b.hub.s3}/radiantearth/{key}", timeout=30).content
        if got != path.read_bytes():
            raise AssertionError(f"{path} differs from s3://radiantearth/{key}")


# -- rows ---------------------------------------------------------------------------------------


def s5cmd_get(b: Bench) -> Row:
    out = fresh(b.unique("obj_s5cmd_get"))
    cmd = [
        b.tool("s5cmd"),
        *b.s3("--no-sign-request", "cp", f"s3://radiantearth/{b.small}/*", f"{out}/"),
    ]
    r = b.timed(cmd)
    count_files(out, b.n_small_objects)
    check_bytes(b, out, b.small)
    return {**r, "objects": b.n_small_objects}


def aws_sync_get(b: Bench) -> Row:
    out = fresh(b.unique("obj_aws_sync"))
    cmd = [
        b.tool("aws"),
        "s3",
        "sync",
        "--no-sign-request",
        "--only-show-errors",
        *b.s3(f"s3://radiantearth/{b.small}/", str(out)),
    ]
    r = b.timed(cmd)
    count_files(out, b.n_small_objects)
    check_bytes(b, out, b.small)
    return {**r, "objects": b.n_small_objects}


def s5cmd_put(b: Bench) -> Row:
    prefix = b.unique("up")
    cmd = [b.tool("s5cmd"), *b.s3("cp", f"{b.uploads}/*", f"s3://scratch/{prefix}/")]
    r = b.timed(cmd)
    listed = subprocess.run(
        [b.tool("s5cmd"), *b.s3("ls", f"s3://scratch/{prefix}/*")],
        env=b.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    if len(listed) != b.n_uploads:
        raise AssertionError(f"{len(listed)} objects uploaded, expected {b.n_uploads}")
    return {**r, "objects": b.n_uploads}


def s5cmd_get_large(b: Bench) -> Row:
    out = fresh(b.unique("obj_s5cmd_large"))
    pattern = f"s3://radiantearth/{b.large}/*/*/asset_*"
    r = b.timed([b.tool("s5cmd"), *b.s3("--no-sign-request", "cp", pattern, f"{out}/")])
    count_files(out, b.n_large)
    check_bytes(b, out, b.large, sample=2)
    discard(out)  # each run starts with the same free memory
    return {**r, "objects": b.n_large, "bytes": b.large_bytes}


def large_urls(b: Bench) -> list[str]:
    return [
        f"{b.hub.s3}/radiantearth/{b.large}/{b.large}_source/{b.large}_{i:07d}/asset_0.bin"
        for i in range(b.n_large)
    ]


def _curl(b: Bench, name: str, *, verify: bool) -> Row:
    """``curl`` fetching the large objects at once (``bench_download.run_curl``); with
    ``verify``, then ``openssl dgst -sha256`` over them on every CPU."""
    out = fresh(b.unique(name))

    def run() -> dict[str, float]:
        run_curl(large_urls(b), out, verify=verify)
        return {}

    r = b.measured(run)
    discard(out)
    return {**r, "objects": b.n_large, "bytes": b.large_bytes}


def curl_large(b: Bench) -> Row:
    return _curl(b, "obj_curl_large", verify=False)


def curl_sha_large(b: Bench) -> Row:
    return _curl(b, "obj_curl_sha_large", verify=True)


def _wrk(b: Bench, base: str, paths: list[str]) -> Row:
    """``wrk`` over keep-alive connections cycling through ``paths``: requests/s, hub CPU."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write("paths = {" + ",".join(json.dumps(p) for p in paths) + "}\n")
        fh.write(
            "i = 0\nrequest = function()\n  i = i % #paths + 1\n"
            "  return wrk.format('GET', paths[i])\nend\n"
        )
        script = fh.name
    try:
        hub_cpu = _proc_cpu(b.hub.proc.pid)
        res = subprocess.run(
            ["wrk", "-t2", "-c16", f"-d{b.seconds:.0f}s", "-s", script, base],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script)
    reqs = int(re.search(r"(\d+) requests in", res).group(1))  # type: ignore[union-attr]
    if "Non-2xx" in res:
        raise AssertionError(f"wrk saw errors:\n{res}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", res).group(1))  # type: ignore[union-attr]
    per = (_proc_cpu(b.hub.proc.pid) - hub_cpu) / reqs
    return {"wall_s": b.seconds, "requests_per_s": rps, "hub_us_per_request": per * 1e6}


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def small_keys(b: Bench, n: int = 2000) -> list[str]:
    """Keys of the first ``n`` assets of the small dataset."""
    n = min(n, b.n_assets)
    return [
        f"{b.small}/{b.small}_source/{b.small}_{i:07d}/asset_{k}.{('tif', 'geojson')[k]}"
        for i in range(n // 2)
        for k in (0, 1)
    ]


def wrk_s3_get(b: Bench) -> Row:
    return _wrk(b, b.hub.s3, [f"/radiantearth/{k}" for k in small_keys(b)])


def wrk_storage_get(b: Bench) -> Row:
    return _wrk(b, b.hub.storage, [f"/mlhub/{k}" for k in small_keys(b)])


def wrk_s3_list(b: Bench) -> Row:
    keys = small_keys(b, b.n_assets)
    starts = keys[:: max(1, len(keys) // 20)]
    paths = [f"/radiantearth?list-type=2&prefix={b.small}/&start-after={k}" for k in starts]
    return _wrk(b, b.hub.s3, paths)


# -- mlhub_widgets rows: each one a fresh interpreter running one public call ----------------

MW_CHILD = """
import os, sys, json, time
t0 = time.perf_counter()
import mlhub_widgets as mw
kind, src, dest, endpoint = sys.argv[1:5]
read = {"endpoint": endpoint, "skip_signature": True}
write = {"endpoint": endpoint}
if kind == "catalog":
    s = mw.download_dataset(os.path.basename(src.rstrip("/")), dest, source=src,
                            storage_options=read, progress=False)
elif kind == "sync":
    s = mw.sync(src, dest, storage_options=read, progress=False)
elif kind == "put":
    s = mw.sync(src, dest, output_storage_options=write, progress=False)
else:
    raise SystemExit(f"unknown kind {kind}")
print(json.dumps({"done": s.assets_downloaded, "failed": s.assets_failed,
                  "seconds": time.perf_counter() - t0}))
"""


def run_mw(
    kind: str, src: str, dest: str, endpoint: str, env: dict[str, str], code: Path = ROOT
) -> None:
    """Run one mlhub_widgets call (:data:`MW_CHILD`) in a fresh interpreter, importing the
    package from the checkout ``code`` (``python -c`` puts its working folder first on
    ``sys.path``); raise when it fails or any asset failed. ``env`` names a fresh state folder
    (:func:`state_folder`)."""
    cmd = [sys.executable, "-c", MW_CHILD, kind, src, dest, endpoint]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, cwd=code)
    if res.returncode != 0:
        raise RuntimeError(f"mlhub_widgets {kind} ({code}) failed:\n{res.stderr[-3000:]}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if out["failed"]:
        raise AssertionError(f"{out['failed']} failed in mlhub_widgets {kind} ({code})")


@contextlib.contextmanager
def state_folder(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """``env`` with ``MLHUB_STATE_DIR`` a fresh folder, removed afterwards (outside the timed
    run: a client's index is not what is measured)."""
    state = Path(tempfile.mkdtemp(prefix="bench-mw-state-", dir=WORK))
    try:
        yield {**env, "MLHUB_STATE_DIR": str(state)}
    finally:
        shutil.rmtree(state, ignore_errors=True)


def _mw(b: Bench, kind: str, src: str, dest: str) -> dict[str, float]:
    """One mlhub_widgets call, timed (:func:`run_mw`)."""
    with state_folder(b.env) as env:

        def run() -> dict[str, float]:
            run_mw(kind, src, dest, b.hub.s3, env)
            return {}

        return b.measured(run)


def mw_catalog(b: Bench) -> Row:
    """The small dataset through its static catalogue in the bucket (items walked, assets
    verified against file:size + file:checksum)."""
    out = fresh(b.unique("obj_mw_catalog"))
    r = _mw(b, "catalog", f"s3://radiantearth/{b.small}/", str(out))
    count_files(out / b.small, b.n_assets + b.n_assets // 2 + 4)  # + catalogue, index, report
    return {**r, "objects": b.n_assets}


def mw_sync(b: Bench) -> Row:
    """The whole prefix (15,002 objects) without reading the catalogue: mw.sync."""
    out = fresh(b.unique("obj_mw_sync"))
    r = _mw(b, "sync", f"s3://radiantearth/{b.small}/", str(out))
    count_files(out, b.n_small_objects)
    check_bytes(b, out, b.small)
    return {**r, "objects": b.n_small_objects}


def mw_large(b: Bench) -> Row:
    """The large dataset through its catalogue (sha2-256 of every byte checked)."""
    out = fresh(b.unique("obj_mw_large"))
    r = _mw(b, "catalog", f"s3://radiantearth/{b.large}/", str(out))
    files = [p for p in (out / b.large).rglob("asset_*") if p.is_file()]
    if len(files) != b.n_large:
        raise AssertionError(f"{len(files)} large files, expected {b.n_large}")
    discard(out)
    return {**r, "objects": b.n_large, "bytes": b.large_bytes}


def mw_put(b: Bench) -> Row:
    """10,000 local files of 1-4 KiB uploaded: mw.sync(folder, "s3://scratch/...")."""
    prefix = b.unique("mwup")
    r = _mw(b, "put", str(b.uploads), f"s3://scratch/{prefix}")
    listed = subprocess.run(
        [b.tool("s5cmd"), *b.s3("ls", f"s3://scratch/{prefix}/*")],
        env=b.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    if len(listed) != b.n_uploads:
        raise AssertionError(f"{len(listed)} objects uploaded, expected {b.n_uploads}")
    return {**r, "objects": b.n_uploads}


#: The rows, in the order they run in each repetition. A row function returns at least
#: ``wall_s``; ``objects`` and ``bytes`` make objects/s and MB/s.
ROWS: list[tuple[str, Callable[[Bench], Row]]] = [
    ("s5cmd-get", s5cmd_get),
    ("mw-catalog", mw_catalog),
    ("mw-sync", mw_sync),
    ("aws-sync", aws_sync_get),
    ("s5cmd-put", s5cmd_put),
    ("mw-put", mw_put),
    ("s5cmd-large", s5cmd_get_large),
    ("mw-large", mw_large),
    ("curl-large", curl_large),
    ("curl+sha-large", curl_sha_large),
    ("wrk-s3-get", wrk_s3_get),
    ("wrk-storage-get", wrk_storage_get),
    ("wrk-s3-list", wrk_s3_list),
]


SMALL, LARGE = "bench_small", "bench_large"


def dataset_sizes(quick: bool) -> tuple[int, int, int]:
    """(assets of the small dataset, objects of the large one, size of each large object)."""
    return (1_000, 4, 8 * MIB) if quick else (10_000, 20, 50 * MIB)


def prepare_data(n_small: int, n_large: int, large_size: int) -> Path:
    """The two synthetic datasets in ``_work/data`` (made once): :data:`SMALL`, ``n_small``
    assets of 1-4 KiB (two per item), and :data:`LARGE`, ``n_large`` objects of ``large_size``
    bytes; the package byte-compiled, so that no client pays for it."""
    data = WORK / "data"
    print("preparing data ...", file=sys.stderr)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "mlhub_widgets")], check=True
    )
    make_data(
        data,
        {
            SMALL: (n_small // 2, 2, 1024, 4096, ("tif", "geojson")),
            LARGE: (n_large, 1, large_size, large_size, ("bin",)),
        },
    )
    return data


def client_env(home: Path) -> dict[str, str]:
    """The environment of every client process: dummy AWS credentials and empty AWS config
    files in ``home`` (no profile, no metadata endpoint), the hub on loopback past any proxy."""
    env = {
        **os.environ,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    env.pop("AWS_PROFILE", None)
    return env


def start_hub(data: Path, dataset_ids: tuple[str, ...]) -> HubProc:
    """The hub in its own process, the S3 origin's listings of ``dataset_ids`` built."""
    hub = HubProc(data)
    try:
        for ds_id in dataset_ids:
            started = time.perf_counter()
            hub.call("warm_objects", id=ds_id)
            print(f"  listed {ds_id} in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    except BaseException:
        hub.close()
        raise
    return hub


def make_uploads(folder: Path, n: int) -> None:
    """``n`` local files of 1-4 KiB to upload (made once)."""
    marker = folder.with_name(folder.name + ".made")
    if marker.exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = random.Random(1)
    for i in range(n):
        (folder / f"file_{i:06d}.bin").write_bytes(rng.randbytes(rng.randint(1024, 4096)))
    marker.touch()


def report(name: str, row: Row) -> None:
    wall = row["wall_s"]
    parts = [f"{name:<16} {wall:8.2f}s"]
    if "objects" in row:
        parts.append(f"{row['objects'] / wall:9,.0f} objects/s ({row['objects']:,})")
    if "bytes" in row:
        parts.append(f"{row['bytes'] / 1e6 / wall:8,.0f} MB/s")
    if "requests_per_s" in row:
        parts.append(
            f"{row['requests_per_s']:9,.0f} req/s, hub {row['hub_us_per_request']:.0f} us/req"
        )
    if "client_cpu_s" in row:
        parts.append(f"client {row['client_cpu_s']:.2f} CPU-s, hub {row['hub_cpu_s']:.2f} CPU-s")
    if "busy_s" in row:
        parts.append(f"busy {row['busy_s']:.2f} CPU-s, steal {row['steal_s']:.2f}s")
    if "to_host_mb" in row:
        parts.append(f"to host {row['to_host_mb']:,.0f} MB")
    print("  ".join(parts), flush=True)


def summary(results: dict[str, list[Row]]) -> None:
    def med(name: str, key: str = "wall_s") -> float | None:
        rows = results.get(name)
        return statistics.median(r[key] for r in rows) if rows else None

    print("\nmedians:")
    for name, rows in results.items():
        report(name, {k: statistics.median(r[k] for r in rows) for k in rows[0]})
    to_host = sum(r.get("to_host_mb", 0) for rows in results.values() for r in rows)
    if to_host:
        print(
            f"  this VM handed {to_host:,.0f} MB of freed memory back to its host during the "
            "timed runs: the kernel time of the large rows varies with it (README: the VM's memory)"
        )
    s5, aws = med("s5cmd-get"), med("aws-sync")
    if s5 and aws:
        print(f"  s5cmd is {aws / s5:.1f}x aws s3 sync on the small dataset (wall)")
    big = results.get("s5cmd-large")
    curl_wall = med("curl-large")
    curl_cpu = med("curl-large", "client_cpu_s")
    hub_cpu = med("curl-large", "hub_cpu_s")
    if big and curl_wall and curl_cpu is not None and hub_cpu is not None:
        nbytes = big[0]["bytes"]
        ncpu = os.cpu_count() or 1
        hash_s = sha256_core_s(nbytes)
        floor_s = max(curl_wall, (curl_cpu + hub_cpu + hash_s) / ncpu)
        floor_mb = nbytes / 1e6 / floor_s
        s5_mb = nbytes / 1e6 / statistics.median(r["wall_s"] for r in big)
        print(
            f"  verifying floor: curl {curl_cpu:.2f} + hub {hub_cpu:.2f} CPU-s + sha2-256 of "
            f"{nbytes / 1e6:,.0f} MB {hash_s:.2f} CPU-s over {ncpu} CPUs (and >= curl's wall) "
            f"-> {floor_s:.2f} s = {floor_mb:,.0f} MB/s; s5cmd (which verifies nothing) "
            f"{s5_mb:,.0f} MB/s = {s5_mb / floor_mb:.0%} of the floor"
        )
        mw_large = med("mw-large")
        if mw_large:
            mw_mb = nbytes / 1e6 / mw_large
            print(
                f"  mlhub_widgets large (verified): {mw_mb:,.0f} MB/s = "
                f"{mw_mb / floor_mb:.0%} of the floor (target >= 85 %)"
            )
    for row, ref, target, what in (
        ("mw-catalog", "s5cmd-get", 1.0, "catalogue of 10k assets vs s5cmd cp of the prefix"),
        ("mw-catalog", "aws-sync", 8.0, "catalogue of 10k assets vs aws s3 sync"),
        ("mw-sync", "s5cmd-get", 1.0, "mw.sync of the prefix vs s5cmd cp"),
        ("mw-put", "s5cmd-put", 0.8, "upload of 10k files vs s5cmd cp"),
    ):
        ours, theirs = med(row), med(ref)
        if ours and theirs:
            ratio = theirs / ours
            verdict = "met" if ratio >= target else "NOT met"
            print(f"  {what}: {ratio:.2f}x (target >= {target:g}x: {verdict})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 3; quick 1)")
    parser.add_argument("--only", help="comma-separated row names: " + ",".join(n for n, _ in ROWS))
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each wrk run")
    parser.add_argument(
        "--large-count",
        type=int,
        default=None,
        help="objects of the large dataset (default 20 x 50 MiB; more shows the fixed start-up "
        "of a client shrink against the transfer)",
    )
    args = parser.parse_args()
    q = args.quick
    reps = args.reps or (1 if q else 3)
    n_small, n_large, large_size = dataset_sizes(q)
    if args.large_count is not None:
        if args.large_count < 1:
            parser.error("--large-count must be a positive integer")
        n_large = args.large_count
    wanted = set(args.only.split(",")) if args.only else {n for n, _ in ROWS}
    unknown = wanted - {n for n, _ in ROWS}
    if unknown:
        parser.error(f"unknown rows: {', '.join(sorted(unknown))}")
    wrk_rows = {n for n in wanted if n.startswith("wrk-")}
    if wrk_rows and shutil.which("wrk") is None:
        if args.only:
            parser.error("wrk is not installed (apt-get install wrk)")
        left_out = ", ".join(sorted(wrk_rows))
        print(f"left out: {left_out} (wrk is not installed: apt-get install wrk)")
        wanted -= wrk_rows

    small, large = SMALL, LARGE
    data = prepare_data(n_small, n_large, large_size)
    uploads = WORK / f"uploads_{n_small}"
    make_uploads(uploads, n_small)
    empty_trash()
    home = Path(tempfile.mkdtemp(prefix="bench-objects-aws-"))
    env = client_env(home)
    hub = start_hub(data, (small, large))
    results: dict[str, list[Row]] = {}
    try:
        bench = Bench(
            hub,
            small,
            large,
            n_small_objects=n_small + n_small // 2 + 2,
            n_assets=n_small,
            n_large=n_large,
            large_bytes=n_large * large_size,
            uploads=uploads,
            n_uploads=n_small,
            seconds=args.seconds,
            env=env,
        )
        for rep in range(reps):
            print(f"rep {rep + 1}/{reps}", flush=True)
            for name, row_fn in ROWS:
                if name in wanted:
                    row = row_fn(bench)
                    results.setdefault(name, []).append(row)
                    report(name, row)
        summary(results)
    finally:
        hub.close()
        empty_trash()
        shutil.rmtree(home, ignore_errors=True)
    (WORK / "last_objects_results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
