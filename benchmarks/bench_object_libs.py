#!/usr/bin/env python3
"""Race the object-store libraries on the hub's S3 origin: obstore vs fsspec's s3fs (issue 14).

    PYTHONPATH=$PWD nice .venv/bin/python benchmarks/bench_object_libs.py           # 3 reps
    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_object_libs.py --quick --reps 1
    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_object_libs.py --only s3fs-small \\
        --reps 1 --profile s3fs-small            # + a py-spy profile (GIL-holding samples)

The hub runs in its own process with its S3 origin, as in ``bench_objects.py`` (whose data
helpers this script imports): bucket ``radiantearth``, ``bench_small`` (10,000 assets of
1-4 KiB plus item documents: 15,002 objects) and ``bench_large`` (20 x 50 MiB). Each row is one
library doing the same work in a fresh interpreter, anonymous (unsigned) requests to a custom
endpoint, path-style: list the prefix, GET every object (64 at once on one asyncio loop; all
large objects at once, streamed in 1 MiB pieces), write each to ``<out>/<key>.part``, rename it,
and sha2-256 its bytes. The ``s3fs-get-*`` rows are what users call instead: the sync
``fs.get(...)`` with s3fs's defaults (it hashes nothing).

s3fs (aiobotocore) needs a botocore that the project's boto3/moto pins exclude, so the s3fs
rows run with ``--s3fs-python`` (default: this interpreter if it imports s3fs, else
``.venv-objlib/bin/python``, made when missing: ``python3.11 -m venv .venv-objlib &&
.venv-objlib/bin/pip install s3fs==2026.9.0``; see benchmarks/README.md).

Every copy is checked by the parent: the same keys and sizes as the origin's listing (no
``.part`` left) and, for a sample, the sha2-256 of the file equal to the origin's bytes and to
the one the client computed. Wall is the child process, interpreter start to exit; the rows
also give the time after imports, the client's CPU-seconds (its rusage) and its peak RSS.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_download import ROOT, WORK, HubProc, discard, empty_trash, fresh, settle
from bench_objects import LARGE, SMALL, dataset_sizes, prepare_data, start_hub

BUCKET = "radiantearth"
MIB = 1024 * 1024
CONCURRENCY = 64
#: s3fs's venv: aiobotocore pins botocore to a few patch releases of 1.43 (aiobotocore 3.10.0:
#: >=1.43.115,<1.43.118); the project's boto3>=1.44.8 needs botocore 1.44
OBJLIB_VENV = ROOT / ".venv-objlib"
S3FS = "s3fs==2026.9.0"

# ---------------------------------------------------------------------------------------------
# the child: one library, one case. Imports only the library under test (not mlhub_widgets).

CHILD = r'''
import asyncio, hashlib, json, os, sys, time
t0 = time.perf_counter()
a = json.loads(sys.argv[1])
lib, prefix, out, endpoint = a["lib"], a["prefix"], a["out"], a["endpoint"]
bucket, large, conc, chunk = a["bucket"], a["large"], a["concurrency"], a["chunk"]
made = set()

def target(key):
    path = os.path.join(out, key[len(prefix):])
    folder = os.path.dirname(path)
    if folder not in made:
        os.makedirs(folder, exist_ok=True)
        made.add(folder)
    return path

def wanted(key):  # the large case: the assets only (not the item documents)
    return not large or os.path.basename(key).startswith("asset_")

def save(key, data):
    path = target(key)
    with open(path + ".part", "wb") as fh:
        fh.write(data)
    os.replace(path + ".part", path)
    return hashlib.sha256(data).hexdigest()

async def pool(keys, fetch):
    """``conc`` workers over the keys: fetch(key) -> (nbytes, sha256)."""
    it = iter(keys)
    sums, total = {}, [0]
    async def worker():
        for key in it:
            n, digest = await fetch(key)
            sums[key[len(prefix):]] = digest
            total[0] += n
    await asyncio.gather(*(worker() for _ in range(min(conc, len(keys)))))
    return sums, total[0]

class Sink:
    """One streamed object: chunks hashed and written to ``.part``, renamed at the end."""
    def __init__(self, key):
        self.path = target(key)
        self.fh = open(self.path + ".part", "wb")
        self.h = hashlib.sha256()
        self.n = 0
    def write(self, data):
        self.h.update(data)
        self.fh.write(data)
        self.n += len(data)
    def close(self):
        self.fh.close()
        os.replace(self.path + ".part", self.path)
        return self.n, self.h.hexdigest()

if lib.startswith("obstore"):
    import obstore
    from obstore.store import S3Store
    store = S3Store(bucket, endpoint=endpoint, skip_signature=True, region="us-east-1",
                    virtual_hosted_style_request=False, client_options={"allow_http": True})
    t_import = time.perf_counter()

    async def main():
        sizes = {}
        async for batch in obstore.list(store, prefix):
            for meta in batch:
                if wanted(meta["path"]):
                    sizes[meta["path"]] = meta["size"]
        t_list = time.perf_counter()

        async def get_range(key):  # one GET of the whole object (its size is listed)
            data = await obstore.get_range_async(store, key, start=0, end=sizes[key])
            return len(data), save(key, data)

        async def get_bytes(key):
            result = await obstore.get_async(store, key)
            data = await result.bytes_async()
            return len(data), save(key, data)

        async def stream(key):
            result = await obstore.get_async(store, key)
            sink = Sink(key)
            async for piece in result.stream(min_chunk_size=chunk):
                sink.write(piece)
            return sink.close()

        fetch = stream if large else (get_bytes if lib == "obstore-get" else get_range)
        sums, total = await pool(list(sizes), fetch)
        return sums, total, t_list

    sums, total, t_list = asyncio.run(main())

elif lib == "s3fs":
    import s3fs
    t_import = time.perf_counter()

    async def main():
        fs = s3fs.S3FileSystem(
            anon=True, asynchronous=True, skip_instance_cache=True,
            client_kwargs={"endpoint_url": endpoint, "region_name": "us-east-1"},
            # botocore's pool holds 10 connections by default: 64 requests at once need 64
            config_kwargs={"max_pool_connections": conc, "s3": {"addressing_style": "path"}},
        )
        await fs.set_session()
        found = await fs._find(f"{bucket}/{prefix}", detail=True)
        keys = [p[len(bucket) + 1:] for p, info in found.items()
                if info["type"] == "file" and wanted(p)]
        t_list = time.perf_counter()

        async def cat(key):
            data = await fs._cat_file(f"{bucket}/{key}")
            return len(data), save(key, data)

        async def stream(key):
            f = await fs.open_async(f"{bucket}/{key}", "rb")
            sink = Sink(key)
            while True:
                piece = await f.read(chunk)
                if not piece:
                    break
                sink.write(piece)
            await f.close()
            return sink.close()

        sums, total = await pool(keys, stream if large else cat)
        await fs._s3creator.__aexit__(None, None, None)  # (what close_session does)
        return sums, total, t_list

    sums, total, t_list = asyncio.run(main())

elif lib == "s3fs-get":  # as users call it: sync, s3fs's defaults, no hashing
    import s3fs
    t_import = time.perf_counter()
    fs = s3fs.S3FileSystem(anon=True, client_kwargs={"endpoint_url": endpoint,
                                                     "region_name": "us-east-1"})
    if large:
        found = [p for p in fs.find(f"{bucket}/{prefix}") if wanted(p)]
        t_list = time.perf_counter()
        fs.get(found, [target(p[len(bucket) + 1:]) for p in found])
    else:
        t_list = t_import  # (fs.get lists, then copies)
        fs.get(f"{bucket}/{prefix}", out.rstrip("/") + "/", recursive=True)
    sums, total = {}, 0
else:
    raise SystemExit(f"unknown library {lib}")

t_end = time.perf_counter()
hwm = 0
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        hwm = int(line.split()[1]) / 1024
with open(a["result"], "w") as fh:  # (not stdout: a profiler wrapping the child prints there)
    json.dump({"import_s": t_import - t0, "list_s": t_list - t_import,
               "transfer_s": t_end - t_list, "after_import_s": t_end - t_import,
               "objects": len(sums), "bytes": total, "rss_mb": hwm, "sha256": sums}, fh)
'''

# ---------------------------------------------------------------------------------------------
# the parent


@dataclass
class Case:
    """A dataset as the origin serves it: key (relative to the prefix) -> size."""

    prefix: str
    large: bool
    sizes: dict[str, int]
    sample: dict[str, str]  # key -> sha2-256 of the origin's bytes, for a sample of keys


#: row name -> (library, large case?)
ROWS: dict[str, tuple[str, bool]] = {
    "obstore-small": ("obstore", False),
    "obstore-get-small": ("obstore-get", False),
    "s3fs-small": ("s3fs", False),
    "s3fs-get-small": ("s3fs-get", False),
    "obstore-large": ("obstore", True),
    "s3fs-large": ("s3fs", True),
    "s3fs-get-large": ("s3fs-get", True),
}


def origin_case(hub: HubProc, dataset: str, *, large: bool, sample: int) -> Case:
    """The origin's listing of ``dataset`` (obstore, in this process) and the sha2-256 of a
    sample of its objects (plain GETs with ``requests``)."""
    import obstore
    import requests
    from obstore.store import S3Store

    store = S3Store(
        BUCKET,
        endpoint=hub.s3,
        skip_signature=True,
        region="us-east-1",
        virtual_hosted_style_request=False,
        client_options={"allow_http": True},
    )
    prefix = f"{dataset}/"
    sizes = {
        meta["path"][len(prefix) :]: meta["size"]
        for batch in obstore.list(store, prefix)
        for meta in batch
        if not large or os.path.basename(meta["path"]).startswith("asset_")
    }
    picked = random.Random(0).sample(sorted(sizes), min(sample, len(sizes)))
    sums = {}
    for key in picked:
        body = requests.get(f"{hub.s3}/{BUCKET}/{prefix}{key}", timeout=60).content
        sums[key] = hashlib.sha256(body).hexdigest()
    return Case(prefix, large, sizes, sums)


def walk(out: Path) -> Iterator[tuple[str, int]]:
    for folder, _dirs, files in os.walk(out):
        for name in files:
            path = os.path.join(folder, name)
            yield os.path.relpath(path, out), os.stat(path).st_size


def check(out: Path, case: Case, got: dict[str, Any]) -> None:
    """The copy in ``out`` is the origin's: same keys, same sizes, sampled sha2-256 equal
    (on disk and as the client computed it)."""
    on_disk = dict(walk(out))
    if on_disk != case.sizes:
        missing = sorted(set(case.sizes) - set(on_disk))[:5]
        extra = sorted(set(on_disk) - set(case.sizes))[:5]
        wrong = [k for k in case.sizes if k in on_disk and on_disk[k] != case.sizes[k]][:5]
        raise AssertionError(
            f"{out}: {len(on_disk)} files for {len(case.sizes)} objects; missing {missing}, "
            f"extra {extra}, wrong size {wrong}"
        )
    client = got["sha256"]
    if client and len(client) != len(case.sizes):
        raise AssertionError(f"the client hashed {len(client)} of {len(case.sizes)} objects")
    for key, digest in case.sample.items():
        if hashlib.sha256((out / key).read_bytes()).hexdigest() != digest:
            raise AssertionError(f"{out / key} differs from the origin's bytes")
        if client and client[key] != digest:
            raise AssertionError(f"the client's sha2-256 of {key} is wrong")


def run_row(
    name: str,
    hub: HubProc,
    cases: dict[bool, Case],
    pythons: dict[str, str],
    env: dict[str, str],
    profile: Path | None = None,
) -> dict[str, Any]:
    """One row in a fresh interpreter: wall, CPU-seconds (the child's rusage), peak RSS."""
    lib, large = ROWS[name]
    case = cases[large]
    out = fresh(f"objlib-{name}")
    args = {
        "lib": lib,
        "prefix": case.prefix,
        "out": str(out),
        "endpoint": hub.s3,
        "bucket": BUCKET,
        "large": large,
        "concurrency": CONCURRENCY,
        "chunk": MIB,
        "result": str(WORK / "object-libs-result.json"),
    }
    python = pythons["s3fs" if lib.startswith("s3fs") else "obstore"]
    cmd = [python, "-c", CHILD, json.dumps(args)]
    if profile is not None:
        spy = str(Path(sys.executable).with_name("py-spy"))
        cmd = [spy, "record", "--gil", "-r", "200", "-f", "raw", "-o", str(profile), "--", *cmd]
    Path(args["result"]).unlink(missing_ok=True)
    settle()
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, cwd=WORK)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        raise RuntimeError(f"{name} failed ({res.returncode}):\n{res.stderr[-3000:]}")
    got: dict[str, Any] = json.loads(Path(args["result"]).read_text())
    check(out, case, got)
    if large:
        discard(out)  # each run starts with the same free memory
    return {
        "wall_s": wall,
        "after_import_s": got["after_import_s"],
        "list_s": got["list_s"],
        "cpu_s": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
        "user_s": after.ru_utime - before.ru_utime,
        "rss_mb": got["rss_mb"],
        "objects": len(case.sizes),
        "bytes": sum(case.sizes.values()),
        "load": load,
    }


def report(name: str, r: dict[str, Any]) -> None:
    rate = (
        f"{r['bytes'] / 1e6 / r['wall_s']:7,.0f} MB/s"
        if ROWS[name][1]
        else f"{r['objects'] / r['wall_s']:7,.0f} obj/s"
    )
    print(
        f"{name:<18} {r['wall_s']:7.2f}s {rate}  after imports {r['after_import_s']:6.2f}s "
        f"(list {r['list_s']:5.2f}s)  CPU {r['cpu_s']:6.2f}s (user {r['user_s']:5.2f})  "
        f"RSS {r['rss_mb']:6.0f} MB  load {r['load']:.1f}",
        flush=True,
    )


def profile_summary(path: Path, top: int = 12) -> str:
    """Where the GIL-holding samples of a raw py-spy profile went: by package (the frame that
    held it) and by function (inclusive; the event loop's and the import system's frames left
    out)."""
    total = 0
    packages: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        n = int(count)
        total += n
        files = [f.rsplit(" (", 1)[-1].split(":")[0] for f in frames]
        top_file = files[-1]
        package = "benchmark child" if top_file == "<string>" else top_file.split("/")[0]
        package = package or "(no Python file)"
        packages[package] = packages.get(package, 0) + n
        seen = set()
        for frame, file in zip(frames, files, strict=True):
            if file.startswith(("asyncio/", "<frozen")) or file == "":
                continue
            name = f"{frame.split(' (')[0]} ({file})"
            if name not in seen:
                seen.add(name)
                inclusive[name] = inclusive.get(name, 0) + n
    share = max(total, 1)
    out = [f"  {total} samples with the GIL held (200/s = {total / 200:.1f} s); by package:"]
    out += [
        f"    {n / share:6.1%}  {name}"
        for name, n in sorted(packages.items(), key=lambda kv: -kv[1])[:top]
    ]
    out.append("  by function (inclusive):")
    out += [
        f"    {n / share:6.1%}  {name}"
        for name, n in sorted(inclusive.items(), key=lambda kv: -kv[1])[: top * 2]
    ]
    return "\n".join(out)


def s3fs_python(given: str | None) -> str:
    """The interpreter of the s3fs rows: ``given``, this one if it imports s3fs, else
    ``.venv-objlib`` (made here when missing, like ``.venv-peer`` in bench_download.py)."""
    if given:
        return given
    ok = subprocess.run([sys.executable, "-c", "import s3fs"], capture_output=True, check=False)
    if ok.returncode == 0:
        return sys.executable
    python = OBJLIB_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {OBJLIB_VENV.name} with {S3FS} ...", file=sys.stderr)
        subprocess.run(["python3.11", "-m", "venv", str(OBJLIB_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", S3FS], check=True)
    return str(python)


def versions(pythons: dict[str, str]) -> str:
    code = (
        "import s3fs, fsspec, aiobotocore, botocore, aiohttp; print("
        "f's3fs {s3fs.__version__}, fsspec {fsspec.__version__}, aiobotocore "
        "{aiobotocore.__version__}, botocore {botocore.__version__}, aiohttp "
        "{aiohttp.__version__}')"
    )
    res = subprocess.run([pythons["s3fs"], "-c", code], capture_output=True, text=True)
    import obstore

    return f"obstore {obstore.__version__}; {res.stdout.strip() or 's3fs missing'}"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1k assets, 4 x 8 MiB")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--only", help="comma-separated rows: " + ",".join(ROWS))
    parser.add_argument("--s3fs-python", help="the interpreter of the s3fs rows")
    parser.add_argument("--profile", help="also run these rows once under py-spy --gil")
    args = parser.parse_args()
    rows = args.only.split(",") if args.only else list(ROWS)
    unknown = set(rows) - set(ROWS)
    unknown |= set(args.profile.split(",") if args.profile else []) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows: {', '.join(sorted(unknown))}")
    pythons = {"obstore": sys.executable, "s3fs": s3fs_python(args.s3fs_python)}
    print(versions(pythons), flush=True)

    n_small, n_large, large_size = dataset_sizes(args.quick)
    data = prepare_data(n_small, n_large, large_size)
    env = {
        **os.environ,
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": "127.0.0.1,localhost",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    for var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "PYTHONPATH"):
        env.pop(var, None)
    hub = start_hub(data, (SMALL, LARGE))
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        cases = {
            False: origin_case(hub, SMALL, large=False, sample=50),
            True: origin_case(hub, LARGE, large=True, sample=2),
        }
        print(
            f"{SMALL}: {len(cases[False].sizes):,} objects; {LARGE}: {len(cases[True].sizes)} "
            f"x {large_size / MIB:.0f} MiB; {os.cpu_count()} CPUs",
            flush=True,
        )
        for rep in range(args.reps):
            order = rows[rep % len(rows) :] + rows[: rep % len(rows)]
            print(f"rep {rep + 1}/{args.reps}  ({uptime()})", flush=True)
            for name in order:
                r = run_row(name, hub, cases, pythons, env)
                results.setdefault(name, []).append(r)
                report(name, r)
        print(f"\nmedians:  ({uptime()})")
        for name in rows:
            runs = results[name]
            report(name, {k: statistics.median(r[k] for r in runs) for k in runs[0]})
        for name in args.profile.split(",") if args.profile else []:
            path = WORK / f"profile-{name}.txt"
            r = run_row(name, hub, cases, pythons, env, profile=path)
            print(f"\nprofile of {name} ({path}; under py-spy, so slower):")
            report(name, r)
            print(profile_summary(path))
    finally:
        hub.close()
        empty_trash()
    (WORK / "last_object_libs_results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
