"""The hub's S3 origin driven by real S3 clients: boto3, obstore, s5cmd and the aws CLI."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import obstore
import pystac
import pytest
import requests
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from hypothesis import example, given, settings
from hypothesis import strategies as st
from obstore.exceptions import AlreadyExistsError, PermissionDeniedError
from obstore.store import S3Store

from mlhub_widgets.hub import FaultConfig, Hub, serve
from mlhub_widgets.hub.s3_xml import ListWalk, token_bound
from mlhub_widgets.hub.sample import make_synthetic_dataset

MIB = 1024 * 1024
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
DEMO = "mlhub_widgets_demo_crops"
TARBALL_DS = "su_sar_moisture_content_main"


@pytest.fixture(autouse=True)
def aws_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, no IMDS, no developer AWS config, no proxy for loopback."""
    home = tmp_path_factory.mktemp("aws")
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "S3_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "hub-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hub-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "credentials"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def s3hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub with the bundled data plus a small synthetic dataset with one 9 MiB asset."""
    data = tmp_path_factory.mktemp("s3data")
    shutil.copytree(Path(__file__).resolve().parent.parent / "mlhub_widgets/hub/data", data / "d")
    make_synthetic_dataset(data / "d", "syn_small", 30, 2, 1024, 4096, kinds=("tif", "geojson"))
    make_synthetic_dataset(data / "d", "syn_big", 1, 1, 9 * MIB, 9 * MIB, kinds=("bin",))
    with serve(data / "d", cache_dir=False) as hub:
        yield hub


def client(hub: Hub) -> Any:
    return boto3.client("s3", endpoint_url=hub.s3_url, region_name="us-east-1")


def new_bucket(hub: Hub) -> str:
    name = f"t-{uuid.uuid4().hex[:12]}"
    client(hub).create_bucket(Bucket=name)
    return name


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    err = exc.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def tool(name: str) -> str:
    """A CLI installed with the test extra (next to this interpreter, or on PATH)."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    assert found, f"{name} is not installed: pip install -e '.[test]'"
    return found


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([tool(cmd[0]), *cmd[1:]], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"{cmd}: {res.stderr[-2000:]}"
    return res


def storage_copy_matches(hub: Hub, ds_id: str, local: Path) -> int:
    """Walk the local copy and the storage origin's static catalogue side by side: the same
    items, and every asset file byte-identical to what the storage origin serves. Returns the
    number of assets checked."""
    remote = {
        i.id: i
        for i in pystac.Catalog.from_file(hub.static_catalog_url(ds_id)).get_items(recursive=True)
    }
    mine = {
        i.id: i
        for i in pystac.Catalog.from_file(str(local / "catalog.json")).get_items(recursive=True)
    }
    assert sorted(mine) == sorted(remote)
    checked = 0
    for item_id, item in mine.items():
        theirs = remote[item_id]
        assert item.geometry == theirs.geometry
        assert sorted(item.assets) == sorted(theirs.assets)
        for key, asset in item.assets.items():
            href = asset.get_absolute_href()
            assert href is not None and Path(href).is_file(), href
            assert Path(href).read_bytes() == hub.asset_bytes(theirs.assets[key].href), href
            checked += 1
    return checked


# -- listings -----------------------------------------------------------------------------------


def test_list_buckets_and_dataset_prefixes(s3hub: Hub) -> None:
    s3 = client(s3hub)
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert {"radiantearth", "scratch"} <= set(names)
    top = s3.list_objects_v2(Bucket="radiantearth", Delimiter="/")
    prefixes = [p["Prefix"] for p in top["CommonPrefixes"]]
    expected = sorted(d + "/" for d in s3hub.dataset_ids() if s3hub.store.datasets[d].has_catalog)
    assert prefixes == expected
    assert "syn_small/" in prefixes and top["KeyCount"] == len(prefixes)
    assert "Contents" not in top


def test_list_pagination_delimiter_and_start_after(s3hub: Hub) -> None:
    s3 = client(s3hub)
    pages = list(
        s3.get_paginator("list_objects_v2").paginate(
            Bucket="radiantearth", Prefix="nasa_marine_debris/", PaginationConfig={"PageSize": 700}
        )
    )
    keys = [c["Key"] for p in pages for c in p["Contents"]]
    assert len(pages) > 2 and all(p["KeyCount"] == len(p["Contents"]) for p in pages)
    assert keys == sorted(set(keys)) and all(k.startswith("nasa_marine_debris/") for k in keys)
    assert [p["IsTruncated"] for p in pages] == [True] * (len(pages) - 1) + [False]
    assert "nasa_marine_debris/catalog.json" in keys
    # one level below the dataset: its collections and asset folders, and catalog.json
    level = s3.list_objects_v2(Bucket="radiantearth", Prefix="nasa_marine_debris/", Delimiter="/")
    assert [c["Key"] for c in level["Contents"]] == ["nasa_marine_debris/catalog.json"]
    folders = [p["Prefix"] for p in level["CommonPrefixes"]]
    assert folders == sorted(
        {k[: k.index("/", len("nasa_marine_debris/")) + 1] for k in keys if k.count("/") > 1}
    )
    # start-after and small pages with common prefixes
    after = s3.list_objects_v2(
        Bucket="radiantearth", Prefix="nasa_marine_debris/", StartAfter=keys[99], MaxKeys=5
    )
    assert [c["Key"] for c in after["Contents"]] == keys[100:105] and after["IsTruncated"]
    seen: list[str] = []
    kwargs: dict[str, Any] = {"Bucket": "radiantearth", "Delimiter": "/", "MaxKeys": 1}
    while True:
        page = s3.list_objects_v2(**kwargs)
        seen += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        if not page["IsTruncated"]:
            break
        kwargs["ContinuationToken"] = page["NextContinuationToken"]
    assert seen == [
        p["Prefix"]
        for p in s3.list_objects_v2(Bucket="radiantearth", Delimiter="/")["CommonPrefixes"]
    ]
    v1 = s3.list_objects(Bucket="radiantearth", Prefix="syn_small/", MaxKeys=10)
    assert [c["Key"] for c in v1["Contents"]] == [
        c["Key"]
        for c in s3.list_objects_v2(Bucket="radiantearth", Prefix="syn_small/", MaxKeys=10)[
            "Contents"
        ]
    ]


def reference_listing(keys: list[str], prefix: str, delimiter: str, after: str) -> list[str]:
    """What S3 lists: keys and common prefixes past ``after``, in order."""
    entries = set()
    for k in keys:
        if not k.startswith(prefix) or (after and k <= after):
            continue
        j = k.find(delimiter, len(prefix)) if delimiter else -1
        entries.add(k[: j + len(delimiter)] if j >= 0 else k)
    return sorted(entries)


@settings(max_examples=300, deadline=None)
@example(keys=["a/b", "a/c", "b/a"], prefix="", delimiter="/", after="a/a", max_keys=1, blocks=True)
@example(keys=["a-b/a", "a/b", "a/c"], prefix="a", delimiter="-", after="", max_keys=1, blocks=True)
@given(
    keys=st.lists(st.text("ab-/", min_size=1, max_size=6), max_size=30, unique=True),
    prefix=st.text("ab-/", max_size=2),
    delimiter=st.sampled_from(["", "/", "-", "b/"]),
    after=st.text("ab-/", max_size=3),
    max_keys=st.integers(1, 4),
    blocks=st.booleans(),
)
def test_listing_walk_matches_a_reference_model(
    keys: list[str], prefix: str, delimiter: str, after: str, max_keys: int, blocks: bool
) -> None:
    """Pages chained by continuation tokens list exactly what S3 would, also when the keys
    live in per-dataset blocks (as in the datasets bucket) that may collapse whole."""
    if blocks:
        keys = [k if "/" in k[:-1] else f"{k.strip('/') or 'x'}/k" for k in keys]
        keys = sorted(set(keys))
    by_block: dict[str, list[str]] = {}
    for k in sorted(keys):
        by_block.setdefault(k[: k.index("/") + 1] if blocks else "", []).append(k)
    got: list[str] = []
    lower: tuple[str, bool] = (after, False) if after else ("", True)
    for _ in range(100):
        walk = ListWalk(prefix, delimiter, lower, max_keys)
        if blocks:
            for block, whole in walk.plan(sorted(by_block)):
                if not walk.feed([block] if whole else by_block[block]):
                    break
        else:
            walk.feed(sorted(keys))
        assert walk.count <= max_keys
        page = sorted([k for k, _ in walk.keys] + walk.prefixes)
        got += page
        token = walk.next_token()
        if token is None:
            break
        assert page, "a truncated page must not be empty"
        lower = token_bound(token)
    assert got == reference_listing(keys, prefix, delimiter, after)


def test_listing_xml_is_shaped_as_aws(s3hub: Hub) -> None:
    r = requests.get(
        f"{s3hub.s3_url}/radiantearth",
        params={"list-type": "2", "prefix": "syn_small/", "max-keys": "2"},
        timeout=10,
    )
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/xml"
    root = ET.fromstring(r.content)
    assert root.tag == f"{NS}ListBucketResult"
    tags = [el.tag.removeprefix(NS) for el in root]
    assert tags[:7] == [
        "Name",
        "Prefix",
        "MaxKeys",
        "KeyCount",
        "IsTruncated",
        "NextContinuationToken",
        "Contents",
    ]
    contents = root.findall(f"{NS}Contents")
    assert len(contents) == 2 and root.findtext(f"{NS}KeyCount") == "2"
    first = contents[0]
    assert [el.tag.removeprefix(NS) for el in first] == [
        "Key",
        "LastModified",
        "ETag",
        "Size",
        "StorageClass",
    ]
    key = first.findtext(f"{NS}Key")
    assert key == "syn_small/catalog.json"
    body = requests.get(f"{s3hub.s3_url}/radiantearth/{key}", timeout=10).content
    assert first.findtext(f"{NS}ETag") == f'"{hashlib.md5(body).hexdigest()}"'
    assert first.findtext(f"{NS}Size") == str(len(body))
    assert first.findtext(f"{NS}LastModified", "").endswith(".000Z")
    assert first.findtext(f"{NS}StorageClass") == "STANDARD"


def test_special_keys_round_trip_with_url_encoding(s3hub: Hub) -> None:
    s3 = client(s3hub)
    bucket = new_bucket(s3hub)
    keys = ["dir/a b+c%d&e<f>.txt", "dir/é.txt", "dir/sub/x"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="dir/", Delimiter="/")  # encoding-type=url
    assert [c["Key"] for c in listed["Contents"]] == sorted(keys[:2])
    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["dir/sub/"]
    for k in keys:
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == k.encode()


# -- reading --------------------------------------------------------------------------------------


def test_get_head_range_and_conditions(s3hub: Hub) -> None:
    s3 = client(s3hub)
    key = "syn_small/syn_small_source/syn_small_0000003/asset_0.tif"
    storage_url = (
        s3hub.storage_url + "mlhub/syn_small/syn_small_source/syn_small_0000003/asset_0.tif"
    )
    expected = s3hub.asset_bytes(storage_url)
    got = s3.get_object(Bucket="radiantearth", Key=key)
    assert got["Body"].read() == expected
    etag = f'"{hashlib.md5(expected).hexdigest()}"'
    assert got["ETag"] == etag and got["ContentLength"] == len(expected)
    assert got["ContentType"] == "image/tiff; application=geotiff"
    head = s3.head_object(Bucket="radiantearth", Key=key)
    assert head["ETag"] == etag and head["ContentLength"] == len(expected)
    assert head["LastModified"] == got["LastModified"]
    part = s3.get_object(Bucket="radiantearth", Key=key, Range="bytes=100-199")
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert part["ContentRange"] == f"bytes 100-199/{len(expected)}"
    assert part["Body"].read() == expected[100:200]
    tail = s3.get_object(Bucket="radiantearth", Key=key, Range="bytes=-10")
    assert tail["Body"].read() == expected[-10:]
    url = f"{s3hub.s3_url}/radiantearth/{key}"
    stale = requests.get(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'}, timeout=10)
    assert stale.status_code == 200 and stale.content == expected
    fresh = requests.get(url, headers={"Range": "bytes=0-9", "If-Range": etag}, timeout=10)
    assert fresh.status_code == 206 and fresh.content == expected[:10]
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="radiantearth", Key=key, IfNoneMatch=etag)
    assert error_code(exc)[1] == 304
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="radiantearth", Key=key, IfMatch='"0123"')
    assert error_code(exc) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="radiantearth", Key=key, Range=f"bytes={len(expected)}-")
    assert error_code(exc) == ("InvalidRange", 416)
    assert s3.get_object(Bucket="radiantearth", Key=key, IfMatch=etag)["Body"].read() == expected


def test_large_object_has_multipart_etag_and_ranges(s3hub: Hub) -> None:
    s3 = client(s3hub)
    key = "syn_big/syn_big_source/syn_big_0000000/asset_0.bin"
    data = s3hub.asset_bytes(
        s3hub.storage_url + "mlhub/syn_big/syn_big_source/syn_big_0000000/asset_0.bin"
    )
    parts = [hashlib.md5(data[i : i + 8 * MIB]).digest() for i in range(0, len(data), 8 * MIB)]
    head = s3.head_object(Bucket="radiantearth", Key=key)
    assert head["ETag"] == f'"{hashlib.md5(b"".join(parts)).hexdigest()}-2"'
    middle = s3.get_object(Bucket="radiantearth", Key=key, Range="bytes=8388600-8388700")[
        "Body"
    ].read()
    assert middle == data[8388600:8388701]
    assert s3.get_object(Bucket="radiantearth", Key=key)["Body"].read() == data


def test_catalogue_in_bucket_uses_relative_hrefs(s3hub: Hub) -> None:
    s3 = client(s3hub)
    for key, expected in [
        (
            f"{DEMO}/{DEMO}_labels/collection.json",
            {"documentation": "../_common/documentation.pdf"},
        ),
        (
            f"{TARBALL_DS}/su_sar_moisture_content/su_sar_moisture_content_0001/su_sar_moisture_content_0001.json",
            {"labels": "../../su-sar-moisture-content/feature_0001.geojson"},
        ),
    ]:
        doc = json.loads(s3.get_object(Bucket="radiantearth", Key=key)["Body"].read())
        hrefs = {k: a["href"] for k, a in doc["assets"].items()}
        assert expected.items() <= hrefs.items()
        assert not any("://" in h for h in hrefs.values())


def test_changed_asset_gets_new_etag_and_bytes(tmp_path: Path) -> None:
    make_synthetic_dataset(tmp_path, "syn_change", 2, 1, 2000, 2000, kinds=("tif",))
    with serve(tmp_path, cache_dir=False) as hub:
        s3 = client(hub)
        key = "syn_change/syn_change_source/syn_change_0000001/asset_0.tif"
        url = hub.storage_url + "mlhub/syn_change/syn_change_source/syn_change_0000001/asset_0.tif"
        before = s3.head_object(Bucket="radiantearth", Key=key)["ETag"]
        listed = s3.list_objects_v2(Bucket="radiantearth", Prefix=key)["Contents"]
        assert listed[0]["ETag"] == before  # the page is now kept by the hub
        hub.change_asset(url)
        after = s3.get_object(Bucket="radiantearth", Key=key)
        assert after["ETag"] != before
        assert after["Body"].read() == hub.asset_bytes(url)
        listed = s3.list_objects_v2(Bucket="radiantearth", Prefix=key)["Contents"]
        assert listed[0]["ETag"] == after["ETag"]


# -- errors ---------------------------------------------------------------------------------------


def test_s3_errors(s3hub: Hub) -> None:
    s3 = client(s3hub)
    cases = [
        (lambda: s3.list_objects_v2(Bucket="no-such-bucket"), ("NoSuchBucket", 404)),
        (lambda: s3.get_object(Bucket="no-such-bucket", Key="k"), ("NoSuchBucket", 404)),
        (lambda: s3.get_object(Bucket="radiantearth", Key=f"{DEMO}/nope.tif"), ("NoSuchKey", 404)),
        (lambda: s3.get_object(Bucket="radiantearth", Key="not_a_dataset/x"), ("NoSuchKey", 404)),
        (
            lambda: s3.put_object(Bucket="radiantearth", Key=f"{DEMO}/x", Body=b"1"),
            ("AccessDenied", 403),
        ),
        (
            lambda: s3.delete_object(Bucket="radiantearth", Key=f"{DEMO}/catalog.json"),
            ("AccessDenied", 403),
        ),
        (lambda: s3.create_multipart_upload(Bucket="radiantearth", Key="x"), ("AccessDenied", 403)),
        (lambda: s3.create_bucket(Bucket="radiantearth"), ("BucketAlreadyExists", 409)),
        (lambda: s3.create_bucket(Bucket="Bad_Name"), ("InvalidBucketName", 400)),
        (lambda: s3.get_bucket_versioning(Bucket="scratch"), ("NotImplemented", 501)),
        (
            lambda: s3.list_objects_v2(Bucket="scratch", ContinuationToken="!!"),
            ("InvalidArgument", 400),
        ),
        (
            lambda: s3.abort_multipart_upload(Bucket="scratch", Key="k", UploadId="nope"),
            ("NoSuchUpload", 404),
        ),
    ]
    for call, expected in cases:
        with pytest.raises(ClientError) as exc:
            call()
        assert error_code(exc) == expected
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket="radiantearth", Key=f"{DEMO}/nope.tif")
    assert error_code(exc)[1] == 404


def test_forbidden_and_missing_faults_answer_s3_errors(tmp_path: Path) -> None:
    make_synthetic_dataset(tmp_path, "syn_f", 2, 1, 100, 100, kinds=("tif",))
    key = "syn_f/syn_f_source/syn_f_0000000/asset_0.tif"
    faults = FaultConfig(
        forbidden={f"/radiantearth/{key}", "/private"}, missing={"/radiantearth/syn_f/catalog.json"}
    )
    with serve(tmp_path, cache_dir=False, faults=faults) as hub:
        s3 = client(hub)
        for call, expected in [
            (lambda: s3.get_object(Bucket="radiantearth", Key=key), ("AccessDenied", 403)),
            (lambda: s3.list_objects_v2(Bucket="private"), ("AccessDenied", 403)),
            (
                lambda: s3.get_object(Bucket="radiantearth", Key="syn_f/catalog.json"),
                ("NoSuchKey", 404),
            ),
        ]:
            with pytest.raises(ClientError) as exc:
                call()
            assert error_code(exc) == expected
        hub.faults = FaultConfig(
            error_rate=1.0, error_statuses=(503,), retry_after=0, scope="storage"
        )
        r = requests.get(f"{hub.s3_url}/radiantearth/{key}", timeout=10)
        assert r.status_code == 503 and ET.fromstring(r.content).findtext("Code") == "SlowDown"


# -- writing --------------------------------------------------------------------------------------


def scratch_files(hub: Hub) -> set[str]:
    return set(os.listdir(hub.s3.scratch.root))


def test_put_copy_delete(s3hub: Hub) -> None:
    s3 = client(s3hub)
    bucket = new_bucket(s3hub)
    put = s3.put_object(
        Bucket=bucket, Key="a/one.txt", Body=b"hello", ContentType="text/plain", Metadata={"k": "v"}
    )
    assert put["ETag"] == f'"{hashlib.md5(b"hello").hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="a/one.txt")
    assert got["Body"].read() == b"hello" and got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"k": "v"}
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="a/one.txt", Body=b"again", IfNoneMatch="*")
    assert error_code(exc) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as exc:
        s3.put_object(
            Bucket=bucket, Key="a/bad.txt", Body=b"hello", ContentMD5="AAAAAAAAAAAAAAAAAAAAAA=="
        )
    assert error_code(exc) == ("BadDigest", 400)
    s3.copy_object(
        Bucket=bucket, Key="b/copy.txt", CopySource={"Bucket": bucket, "Key": "a/one.txt"}
    )
    src = f"{DEMO}/_common/train_split.csv"
    s3.copy_object(
        Bucket=bucket, Key="b/from-datasets.csv", CopySource={"Bucket": "radiantearth", "Key": src}
    )
    assert s3.get_object(Bucket=bucket, Key="b/copy.txt")["Body"].read() == b"hello"
    assert (
        s3.get_object(Bucket=bucket, Key="b/from-datasets.csv")["Body"].read()
        == s3.get_object(Bucket="radiantearth", Key=src)["Body"].read()
    )
    s3.delete_object(Bucket=bucket, Key="a/one.txt")
    deleted = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "b/copy.txt"}, {"Key": "b/from-datasets.csv"}]}
    )
    assert sorted(d["Key"] for d in deleted["Deleted"]) == ["b/copy.txt", "b/from-datasets.csv"]
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    s3.delete_bucket(Bucket=bucket)
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_multipart_upload_etag_abort_and_small_parts(s3hub: Hub) -> None:
    s3 = client(s3hub)
    bucket = new_bucket(s3hub)
    data = os.urandom(11 * MIB)
    chunks = [data[i : i + 5 * MIB] for i in range(0, len(data), 5 * MIB)]
    up = s3.create_multipart_upload(Bucket=bucket, Key="big.bin", ContentType="application/x-test")
    parts = [
        {
            "PartNumber": n,
            "ETag": s3.upload_part(
                Bucket=bucket, Key="big.bin", UploadId=up["UploadId"], PartNumber=n, Body=c
            )["ETag"],
        }
        for n, c in enumerate(chunks, 1)
    ]
    assert s3.list_multipart_uploads(Bucket=bucket)["Uploads"][0]["UploadId"] == up["UploadId"]
    assert [
        p["Size"]
        for p in s3.list_parts(Bucket=bucket, Key="big.bin", UploadId=up["UploadId"])["Parts"]
    ] == [5 * MIB, 5 * MIB, MIB]
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="big.bin", UploadId=up["UploadId"], MultipartUpload={"Parts": parts}
    )
    expected_etag = (
        '"' + hashlib.md5(b"".join(hashlib.md5(c).digest() for c in chunks)).hexdigest() + '-3"'
    )
    assert done["ETag"] == expected_etag
    got = s3.get_object(Bucket=bucket, Key="big.bin")
    assert got["ETag"] == expected_etag and got["ContentType"] == "application/x-test"
    assert got["Body"].read() == data
    assert (
        s3.get_object(Bucket=bucket, Key="big.bin", Range="bytes=5242870-5242889")["Body"].read()
        == data[5242870:5242890]
    )
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    # parts under 5 MiB (but the last) are refused on completion, as by S3
    small = s3.create_multipart_upload(Bucket=bucket, Key="small.bin")
    tiny = [
        {
            "PartNumber": n,
            "ETag": s3.upload_part(
                Bucket=bucket,
                Key="small.bin",
                UploadId=small["UploadId"],
                PartNumber=n,
                Body=b"x" * MIB,
            )["ETag"],
        }
        for n in (1, 2)
    ]
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="small.bin",
            UploadId=small["UploadId"],
            MultipartUpload={"Parts": tiny},
        )
    assert error_code(exc) == ("EntityTooSmall", 400)
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="small.bin",
            UploadId=small["UploadId"],
            MultipartUpload={"Parts": [tiny[1], tiny[0]]},
        )
    assert error_code(exc) == ("InvalidPartOrder", 400)
    before_abort = scratch_files(s3hub)
    s3.abort_multipart_upload(Bucket=bucket, Key="small.bin", UploadId=small["UploadId"])
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    assert len(before_abort - scratch_files(s3hub)) == 2  # the two parts' files are gone
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="small.bin")
    assert error_code(exc) == ("NoSuchKey", 404)


def test_s3transfer_upload_file_in_5mib_parts(s3hub: Hub, tmp_path: Path) -> None:
    s3 = client(s3hub)
    bucket = new_bucket(s3hub)
    src = tmp_path / "up.bin"
    src.write_bytes(os.urandom(11 * MIB + 123))
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    s3.upload_file(str(src), bucket, "x/up.bin", Config=config)
    head = s3.head_object(Bucket=bucket, Key="x/up.bin")
    assert head["ETag"].endswith('-3"') and head["ContentLength"] == src.stat().st_size
    out = tmp_path / "down.bin"
    s3.download_file(bucket, "x/up.bin", str(out), Config=config)
    assert out.read_bytes() == src.read_bytes()


def test_scratch_folder_holds_only_live_objects_and_goes_away(tmp_path: Path) -> None:
    with serve(cache_dir=False, s3_dir=tmp_path / "s3") as hub:
        s3 = client(hub)
        s3.put_object(Bucket="scratch", Key="k", Body=b"1" * (300 * 1024))  # streamed body
        s3.put_object(Bucket="scratch", Key="k", Body=b"2")  # replaces: the old file goes
        # a body cut off half way: its spool file is removed when the connection drops
        host, port = hub.s3_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                b"PUT /scratch/cut HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n"
                + b"x" * 400_000
            )
        deadline = time.monotonic() + 10
        while len(scratch_files(hub)) != 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(scratch_files(hub)) == 1
        root = hub.s3.scratch.root
        assert s3.get_object(Bucket="scratch", Key="k")["Body"].read() == b"2"
        with pytest.raises(ClientError):
            s3.head_object(Bucket="scratch", Key="cut")
    assert not root.exists()


def test_expect_100_continue_is_answered_before_the_body(s3hub: Hub) -> None:
    host, port = s3hub.s3_url.removeprefix("http://").split(":")
    body = b"z" * (2 * MIB)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"PUT /scratch/continued HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert f'ETag: "{hashlib.md5(body).hexdigest()}"'.encode() in reply


# -- obstore --------------------------------------------------------------------------------------


def test_obstore_list_get_range_put_multipart(s3hub: Hub) -> None:
    opts: dict[str, Any] = {
        "endpoint": s3hub.s3_url,
        "skip_signature": True,
        "client_options": {"allow_http": True},
        "retry_config": {"max_retries": 0},
    }
    ro = S3Store("radiantearth", **opts)
    listed = obstore.list(ro, "syn_small/").collect()
    assert len(listed) == 30 * 2 + 30 + 2  # assets, items, collection, catalog
    top = obstore.list_with_delimiter(ro, "syn_small")
    assert top["common_prefixes"] == ["syn_small/syn_small_source"]
    key = "syn_small/syn_small_source/syn_small_0000007/asset_1.geojson"
    expected = s3hub.asset_bytes(s3hub.storage_url + "mlhub/" + key)
    assert bytes(obstore.get(ro, key).bytes()) == expected
    assert bytes(obstore.get_range(ro, key, start=10, end=50)) == expected[10:50]
    with pytest.raises(PermissionDeniedError):
        obstore.put(ro, f"{DEMO}/x", b"1")
    bucket = new_bucket(s3hub)
    rw = S3Store(bucket, **opts)
    obstore.put(rw, "small.txt", b"small")
    big = os.urandom(11 * MIB)
    obstore.put(rw, "big.bin", big, chunk_size=5 * MIB)
    assert bytes(obstore.get(rw, "small.txt").bytes()) == b"small"
    assert bytes(obstore.get(rw, "big.bin").bytes()) == big
    assert obstore.head(rw, "big.bin")["e_tag"].endswith('-3"')
    with pytest.raises(AlreadyExistsError):
        obstore.put(rw, "small.txt", b"again", mode="create")


# -- the CLIs people use ---------------------------------------------------------------------------


def test_s5cmd_copies_a_dataset_byte_identical(s3hub: Hub, tmp_path: Path) -> None:
    out = tmp_path / "s5"
    run(
        "s5cmd",
        "--endpoint-url",
        s3hub.s3_url,
        "--no-sign-request",
        "cp",
        f"s3://radiantearth/{DEMO}/*",
        f"{out}/",
    )
    assert storage_copy_matches(s3hub, DEMO, out) == 576
    listed = client(s3hub).list_objects_v2(Bucket="radiantearth", Prefix=f"{DEMO}/")
    pages = [listed]
    while pages[-1]["IsTruncated"]:
        pages.append(
            client(s3hub).list_objects_v2(
                Bucket="radiantearth",
                Prefix=f"{DEMO}/",
                ContinuationToken=pages[-1]["NextContinuationToken"],
            )
        )
    keys = {c["Key"].removeprefix(f"{DEMO}/") for p in pages for c in p["Contents"]}
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert files == keys


def test_aws_s3_sync_copies_a_dataset_and_a_rerun_gets_nothing(tmp_path: Path) -> None:
    with serve(cache_dir=False) as hub:
        out = tmp_path / "aws"
        sync = [
            "aws",
            "s3",
            "sync",
            "--no-sign-request",
            "--endpoint-url",
            hub.s3_url,
            f"s3://radiantearth/{TARBALL_DS}/",
            str(out),
        ]
        run(*sync)
        assert storage_copy_matches(hub, TARBALL_DS, out) == 24
        assert hub.count("s3-object", "GET") == 40  # every object once
        hub.reset_counters()
        run(*sync)
        assert hub.count("s3-object", "GET") == 0 and hub.count("s3-list") >= 1


def test_s5cmd_and_aws_upload_into_the_scratch_bucket(s3hub: Hub, tmp_path: Path) -> None:
    bucket = new_bucket(s3hub)
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    files = {f"f{i}.txt": os.urandom(100 + i) for i in range(40)} | {
        "sub/deep.bin": os.urandom(3000)
    }
    for name, data in files.items():
        (src / name).write_bytes(data)
    run("s5cmd", "--endpoint-url", s3hub.s3_url, "cp", f"{src}/*", f"s3://{bucket}/s5/")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(11 * MIB))
    run("aws", "s3", "cp", "--endpoint-url", s3hub.s3_url, str(big), f"s3://{bucket}/aws/big.bin")
    run(
        "s5cmd",
        "--endpoint-url",
        s3hub.s3_url,
        "cp",
        "--part-size",
        "5",
        str(big),
        f"s3://{bucket}/s5big/big.bin",
    )
    s3 = client(s3hub)
    for name, data in files.items():
        assert s3.get_object(Bucket=bucket, Key=f"s5/{name}")["Body"].read() == data
    for key, parts in (("aws/big.bin", 2), ("s5big/big.bin", 3)):  # aws: 8 MiB parts
        got = s3.get_object(Bucket=bucket, Key=key)
        assert got["ETag"].endswith(f'-{parts}"') and got["Body"].read() == big.read_bytes()
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
