# ruff: noqa: F811 - the fixtures imported from test_download_cluster
"""Cluster downloads and syncs into object storage: ``download_dataset(..., output_dir=
"s3://...", cluster=...)`` and ``sync(..., cluster=...)`` on a real ``LocalCluster`` of 2 worker
processes (``dask_cluster``), writing into moto's S3 server (``moto_s3``), the assets served by
the bundled hub over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from distributed import get_task_stream

import mlhub_widgets as mw
from mlhub_widgets.download import DownloadJob, DownloadSummary
from mlhub_widgets.download.destination import ObjectDestination
from mlhub_widgets.hub import Hub

from .parts import DaskCluster, MotoS3
from .reliability_support import index_rows
from .test_cli_user import mlhub
from .test_download_cluster import (  # noqa: F401 - fixtures
    N_SLOW,
    N_SMALL,
    SLOW,
    SMALL,
    _slow_hub,
    _worker_writing_a_part,
    asset_gets,
    data_dir,
    hub,
    small_partitions,
    wait_for,
)

BUCKET = "mirror"


pytestmark = pytest.mark.usefixtures("object_state")


def _opts(moto: MotoS3) -> dict[str, Any]:
    return {
        "endpoint": moto.endpoint,
        "region": moto.region,
        "access_key_id": moto.access_key_id,
        "secret_access_key": moto.secret_access_key,
    }


def _objects(s3: Any, bucket: str, prefix: str) -> dict[str, Any]:
    """``{key below prefix: LastModified}``."""
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"][len(prefix) :]] = obj["LastModified"]
    return out


def _verify_bucket(hub: Hub, moto: MotoS3, url: str, dataset: str, expect: int) -> None:
    """Every selected asset is an object at its place, byte-identical to the hub's; no upload
    left unfinished."""
    state = ObjectDestination(url, _opts(moto)).state_dir
    rows = index_rows(state, dataset)
    assert len(rows) == expect
    s3 = moto.client()
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    bad = [
        rel
        for rel, asset_url in rows.items()
        if s3.get_object(Bucket=bucket, Key=f"{prefix}/{dataset}/{rel}")["Body"].read()
        != hub.asset_bytes(asset_url)
    ]
    assert not bad, f"{len(bad)} objects missing or corrupt, e.g. {bad[:3]}"
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_a_cluster_download_into_s3_is_byte_identical_and_a_rerun_uploads_nothing(
    dask_cluster: DaskCluster, hub: Hub, moto_s3: MotoS3, small_partitions: None
) -> None:
    s3 = moto_s3.client()
    s3.create_bucket(Bucket=BUCKET)
    url = f"s3://{BUCKET}/data"
    kwargs: dict[str, Any] = {
        "root_url": hub.url, "cluster": dask_cluster.client, "workers": 2, "progress": False,
        "output_storage_options": _opts(moto_s3),
    }  # fmt: skip
    with get_task_stream(client=dask_cluster.client) as stream:
        summary = mw.download_dataset(SMALL, url, **kwargs)
    assert isinstance(summary, DownloadSummary) and summary.complete
    assert summary.assets_downloaded == N_SMALL
    # the workers wrote the objects: one task per partition, on both workers
    tasks = [t for t in stream.data if str(t["key"]).startswith("mlhub_download-")]
    assert len(tasks) >= 4 and len({t["worker"] for t in tasks}) == 2
    _verify_bucket(hub, moto_s3, url, SMALL, N_SMALL)
    gets = asset_gets(hub)
    assert len(gets) == N_SMALL and set(gets.values()) == {1}
    # the catalogue and err_report.csv are there too (uploaded by the client)
    objects = _objects(s3, BUCKET, f"data/{SMALL}/")
    assert "err_report.csv" in objects and "catalog.json" in objects

    hub.reset_counters()
    with get_task_stream(client=dask_cluster.client) as stream:
        again = mw.download_dataset(SMALL, url, **kwargs)
    assert isinstance(again, DownloadSummary) and again.assets_skipped == N_SMALL
    assert hub.count("asset") == 0 and stream.data == []
    assert _objects(s3, BUCKET, f"data/{SMALL}/") == objects  # nothing written again


def test_a_worker_killed_mid_partition_into_s3_loses_nothing_and_doubles_nothing(
    dask_cluster: DaskCluster, hub: Hub, moto_s3: MotoS3, small_partitions: None
) -> None:
    moto_s3.client().create_bucket(Bucket=BUCKET)
    url = f"s3://{BUCKET}/killed"
    _slow_hub(hub)
    job = DownloadJob(
        SLOW, url, root_url=hub.url, cluster=dask_cluster.client, workers=2,
        output_storage_options=_opts(moto_s3),
    )  # fmt: skip
    job.start()
    wait_for(job, lambda p: p.assets_done >= 2, "two objects uploaded")
    # large objects are staged in a .part on the worker: kill one mid-file
    victim = _worker_writing_a_part(dask_cluster, 1 << 20)
    uploaded = set(_objects(moto_s3.client(), BUCKET, f"killed/{SLOW}/"))
    dask_cluster.kill_worker(victim)

    summary = job.wait(timeout=120)
    assert summary.complete and summary.assets_failed == 0
    assert summary.assets_downloaded + summary.assets_skipped == N_SLOW
    _verify_bucket(hub, moto_s3, url, SLOW, N_SLOW)
    # an object uploaded before the kill was not fetched again by the partition's next attempt
    state = ObjectDestination(url, _opts(moto_s3)).state_dir
    paths = {
        u.split("://", 1)[1].split("/", 1)[1]: rel for rel, u in index_rows(state, SLOW).items()
    }
    gets = asset_gets(hub)
    again = {p for p, n in gets.items() if n > 1}
    assert uploaded and len(again) <= 2 and set(gets.values()) <= {1, 2}
    assert not {paths[p.lstrip("/")] for p in again} & uploaded, (
        "an uploaded object was fetched again"
    )


def _put_prefix(s3: Any, bucket: str, prefix: str, n: int) -> dict[str, bytes]:
    objects = {f"tile_{i:03d}/b{i % 3}.bin": bytes([i % 251]) * (2000 + 97 * i) for i in range(n)}
    for key, data in objects.items():
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=data)
    return objects


def test_sync_on_a_cluster_between_buckets_and_its_cli(
    dask_cluster: DaskCluster, moto_s3: MotoS3, tmp_path: Path, small_partitions: None
) -> None:
    s3 = moto_s3.client()
    s3.create_bucket(Bucket="src")
    s3.create_bucket(Bucket="dst")
    objects = _put_prefix(s3, "src", "scenes", 90)  # ~570 kB: several partitions
    opts = _opts(moto_s3)
    with get_task_stream(client=dask_cluster.client) as stream:
        summary = mw.sync(
            "s3://src/scenes", "s3://dst/copy", storage_options=opts,
            output_storage_options=opts, cluster=dask_cluster.client, workers=4, progress=False,
        )  # fmt: skip
    assert isinstance(summary, DownloadSummary) and summary.complete
    assert summary.assets_downloaded == len(objects)
    tasks = [t for t in stream.data if str(t["key"]).startswith("mlhub_download-")]
    assert len(tasks) >= 2 and len({t["worker"] for t in tasks}) == 2
    copied = {k: s3.get_object(Bucket="dst", Key=f"copy/{k}")["Body"].read() for k in objects}
    assert copied == objects and set(_objects(s3, "dst", "copy/")) == set(objects)

    # from the command line, into a folder every worker sees; a rerun copies nothing
    out = tmp_path / "folder"
    env = moto_s3.env()
    cli = [
        "sync", "s3://src/scenes", "-o", str(out), "--dask", dask_cluster.address, "-q",
        "--storage-option", f"endpoint={moto_s3.endpoint}",
    ]  # fmt: skip
    done = mlhub(*cli, env=env)
    assert done.returncode == 0, done.stderr
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*.bin")} == objects
    with get_task_stream(client=dask_cluster.client) as stream:
        again = mlhub(*cli, env=env)
    assert again.returncode == 0 and stream.data == []
    assert f"0 downloaded (0.0 MB), {len(objects)} already present" in again.stdout
