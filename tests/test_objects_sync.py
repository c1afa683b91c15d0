"""Prefixes without a catalogue (mw.sync, mlhub sync) and object stores as destinations
(download, archive and sync to s3:// / az://): byte-identical layouts, nothing half-written,
no-op reruns, clear errors — on the hub's S3 origin, moto and Azurite; GCS as far as the
emulators here allow."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

import mlhub_widgets as mw
from mlhub_widgets.cli.main import main
from mlhub_widgets.download import destination as destination_module
from mlhub_widgets.download.manifest import Manifest
from mlhub_widgets.exceptions import (
    AuthenticationError,
    ConfigurationError,
    DownloadError,
    NoAssetsSelected,
)
from mlhub_widgets.hub import FaultConfig, Hub
from mlhub_widgets.net.objects import list_url, read_url
from tests.objects_support import (
    DEMO_DS,
    SMALL_DS,
    downloaded_assets,
    expected_assets,
    hub_public,
    hub_writer,
    put_catalogue,
    tree,
)
from tests.parts import Azurite, GcsEmulator, MotoS3

MIB = 1024 * 1024


pytestmark = pytest.mark.usefixtures("object_state")


def _unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def _bucket_tree(url: str, opts: dict[str, Any]) -> dict[str, bytes]:
    prefix = url.rstrip("/") + "/"
    cut = len(prefix.split("/", 3)[3]) if prefix.count("/") > 3 else 0
    return {
        o.key[cut:]: read_url(o.url, storage_options=opts)
        for o in list_url(url, storage_options=opts)
    }


def _listing(hub: Hub, prefix: str) -> dict[str, bytes]:
    return _bucket_tree(f"s3://radiantearth/{prefix}", hub_public(hub))


# -- prefixes to disk ---------------------------------------------------------------------------


def test_sync_copies_a_prefix_byte_identical_and_reruns_as_a_no_op(
    hub: Hub, tmp_path: Path
) -> None:
    out = tmp_path / "copy"
    summary = mw.sync(
        f"s3://radiantearth/{DEMO_DS}/", out, storage_options=hub_public(hub), progress=False
    )
    source = _listing(hub, DEMO_DS)
    assert tree(out) == source  # nothing else in the destination: the index is elsewhere
    assert summary.assets_downloaded == len(source) and summary.assets_failed == 0
    gets, lists = hub.count("s3-object", "GET"), hub.count("s3-list", "GET")
    again = mw.sync(f"s3://radiantearth/{DEMO_DS}", out, storage_options=hub_public(hub))
    assert again.assets_downloaded == 0 and again.assets_skipped == len(source)
    assert hub.count("s3-object", "GET") == gets  # only the listing was asked for
    assert hub.count("s3-list", "GET") > lists
    # every object of the S3 source is checked against its single-part ETag (an MD5)
    with Manifest(summary.manifest_path) as db:
        sums = {row.checksum for row in db.iter_rows()}
    assert all(s and s.startswith("d50110") for s in sums)


def test_sync_include_exclude_and_estimate(hub: Hub, tmp_path: Path, capsys: Any) -> None:
    common = ["--no-sign-request", "--storage-option", f"endpoint={hub.s3_url}", "-q"]
    src = f"s3://radiantearth/{DEMO_DS}/"
    rc = main(["sync", src, "-o", str(tmp_path), "--include", "*.tif", "--estimate", *common])
    assert rc == 0
    estimate = capsys.readouterr().out
    tifs = {k: v for k, v in _listing(hub, DEMO_DS).items() if k.endswith(".tif")}
    assert f"{len(tifs):,} objects" in estimate and "0 already there" in estimate
    assert not any(tmp_path.iterdir())  # --estimate copies nothing
    rc = main(
        ["sync", src, "-o", str(tmp_path), "--include", "*.tif", "--exclude", "*labels*", *common]
    )
    assert rc == 0, capsys.readouterr().err
    want = {k: v for k, v in tifs.items() if "labels" not in k}
    assert want and tree(tmp_path) == want
    rc = main(["sync", src, "-o", str(tmp_path), "--include", "*.tif", "--estimate", *common])
    assert f"{len(want):,} already there" in capsys.readouterr().out


def test_sync_errors(hub: Hub, tmp_path: Path, capsys: Any) -> None:
    with pytest.raises(NoAssetsSelected, match="no objects below s3://radiantearth/nothing"):
        mw.sync("s3://radiantearth/nothing/", tmp_path, storage_options=hub_public(hub))
    with pytest.raises(ConfigurationError, match="both local folders"):
        mw.sync(tmp_path, tmp_path / "other")
    opts = ["--no-sign-request", "--storage-option", f"endpoint={hub.s3_url}"]
    for args, code, text in (
        (["s3://nobucket/x/", "-o", str(tmp_path), *opts], 1, "bucket 'nobucket' does not exist"),
        (["ftp://host/x", "-o", str(tmp_path)], 2, "unsupported URL scheme ftp://"),
        ([f"s3://radiantearth/{SMALL_DS}", "-o", "s3:/x", *opts], 2, "did you mean 's3://x'"),
        ([f"s3://radiantearth/{SMALL_DS}", "-o", str(tmp_path), "--storage-option", "x"], 2, ""),
    ):
        assert main(["sync", *args, "-q"]) == code
        err = capsys.readouterr().err.strip()
        assert err.startswith("mlhub: error:") and text in err and "\n" not in err
    assert not (tmp_path / "s3:").exists()


def test_denied_objects_fail_and_the_rest_is_copied(hub: Hub, tmp_path: Path) -> None:
    listing = _listing(hub, SMALL_DS)
    denied = sorted(listing)[0]
    hub.faults = FaultConfig(forbidden=frozenset({f"/radiantearth/{SMALL_DS}/{denied}"}))
    try:
        with pytest.raises(DownloadError) as exc:
            mw.sync(f"s3://radiantearth/{SMALL_DS}", tmp_path, storage_options=hub_public(hub))
    finally:
        hub.faults = FaultConfig()
    assert exc.value.failed == 1 and exc.value.report is not None
    report = Path(exc.value.report).read_text()
    assert "403" in report and "access denied" in report
    assert set(tree(tmp_path)) == set(listing) - {denied}
    assert not list(tmp_path.rglob("*.part"))
    again = mw.sync(f"s3://radiantearth/{SMALL_DS}", tmp_path, storage_options=hub_public(hub))
    assert again.assets_downloaded == 1 and tree(tmp_path) == listing


# -- object stores as destinations ------------------------------------------------------------


def test_download_to_a_bucket_has_the_layout_of_a_local_download(
    moto_s3: MotoS3, tmp_path: Path
) -> None:
    s3 = moto_s3.client()
    s3.create_bucket(Bucket="src")
    s3.create_bucket(Bucket="dst")
    put_catalogue(lambda k, b: s3.put_object(Bucket="src", Key=k, Body=b), "tiny")
    opts = {"endpoint": moto_s3.endpoint}
    local = tmp_path / "local"
    mw.download_dataset("tiny", local, source="s3://src/tiny/", storage_options=opts)
    assert downloaded_assets(local, "tiny") == expected_assets()
    summary = mw.download_dataset(
        "tiny",
        "s3://dst/mirror",
        source="s3://src/tiny/",
        storage_options=opts,
        output_storage_options=opts,
        progress=False,
    )
    assert summary.assets_downloaded == 4
    on_disk = {k: v for k, v in tree(local).items() if "mlhub_assets.db" not in k}
    assert _bucket_tree("s3://dst/mirror", opts) == on_disk
    assert not s3.list_multipart_uploads(Bucket="dst").get("Uploads")
    stamps = {o["Key"]: o["LastModified"] for o in s3.list_objects_v2(Bucket="dst")["Contents"]}
    again = mw.download_dataset(
        "tiny",
        "s3://dst/mirror",
        source="s3://src/tiny/",
        storage_options=opts,
        output_storage_options=opts,
        progress=False,
    )
    assert again.assets_downloaded == 0 and again.assets_skipped == 4
    after = {o["Key"]: o["LastModified"] for o in s3.list_objects_v2(Bucket="dst")["Contents"]}
    assert after == stamps  # nothing written again: no object changed
    # a deleted object is noticed by the listing and written again
    s3.delete_object(Bucket="dst", Key="mirror/tiny/coll/item-a/image.tif")
    third = mw.download_dataset(
        "tiny",
        "s3://dst/mirror",
        source="s3://src/tiny/",
        storage_options=opts,
        output_storage_options=opts,
        progress=False,
    )
    assert third.assets_downloaded == 1
    assert _bucket_tree("s3://dst/mirror", opts) == on_disk


def test_upload_a_folder_with_multipart_and_nothing_half_written(
    moto_s3: MotoS3, tmp_path: Path
) -> None:
    s3 = moto_s3.client()
    s3.create_bucket(Bucket="upload")
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    big = os.urandom(19 * MIB)  # three 8 MiB parts
    (folder / "sub" / "big.bin").write_bytes(big)
    for i in range(20):
        (folder / f"small-{i:02d}.txt").write_bytes(f"file {i}".encode() * (i + 1))
    opts = {"endpoint": moto_s3.endpoint}
    summary = mw.sync(folder, "s3://upload/copy", output_storage_options=opts, progress=False)
    assert summary.assets_downloaded == 21
    assert _bucket_tree("s3://upload/copy", opts) == tree(folder)
    head = s3.head_object(Bucket="upload", Key="copy/sub/big.bin")
    assert head["ContentLength"] == len(big) and head["ETag"].endswith('-3"')
    assert not s3.list_multipart_uploads(Bucket="upload").get("Uploads")
    again = mw.sync(folder, "s3://upload/copy", output_storage_options=opts, progress=False)
    assert again.assets_downloaded == 0 and again.assets_skipped == 21


def test_a_failed_multipart_upload_is_aborted(
    moto_s3: MotoS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto refuses parts under S3's 5 MiB minimum when the upload completes: the upload
    fails, is aborted, and no object and no incomplete upload is left."""
    s3 = moto_s3.client()
    s3.create_bucket(Bucket="abort")
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "big.bin").write_bytes(os.urandom(3 * MIB))
    monkeypatch.setattr(destination_module, "PART_SIZE", 1 * MIB)
    with pytest.raises(DownloadError) as exc:
        mw.sync(
            folder,
            "s3://abort/x",
            output_storage_options={"endpoint": moto_s3.endpoint},
            progress=False,
        )
    assert "EntityTooSmall" in Path(str(exc.value.report)).read_text()
    assert "Contents" not in s3.list_objects_v2(Bucket="abort")
    assert not s3.list_multipart_uploads(Bucket="abort").get("Uploads")


def test_prefix_to_prefix_on_the_hub_and_archive_to_a_bucket(hub: Hub, tmp_path: Path) -> None:
    prefix = _unique("copy")
    puts = hub.count("s3-object", "PUT")
    summary = mw.sync(
        f"s3://radiantearth/{SMALL_DS}/",
        f"s3://scratch/{prefix}",
        storage_options=hub_public(hub),
        output_storage_options=hub_writer(hub),
        progress=False,
    )
    source = _listing(hub, SMALL_DS)
    assert _bucket_tree(f"s3://scratch/{prefix}", hub_writer(hub)) == source
    assert hub.count("s3-object", "PUT") - puts == summary.assets_downloaded == len(source)
    mw.sync(
        f"s3://radiantearth/{SMALL_DS}/",
        f"s3://scratch/{prefix}",
        storage_options=hub_public(hub),
        output_storage_options=hub_writer(hub),
        progress=False,
    )
    assert hub.count("s3-object", "PUT") - puts == len(source)  # the rerun wrote nothing
    archive = "ref_african_crops_kenya_02_labels"
    rc = main(
        [
            "archive",
            archive,
            "-q",
            "--root-url",
            hub.url,
            "-o",
            f"s3://scratch/{prefix}-archives",
            "--output-storage-option",
            f"endpoint={hub.s3_url}",
        ]
    )
    assert rc == 0
    (obj,) = list_url(f"s3://scratch/{prefix}-archives", storage_options=hub_writer(hub))
    local = mw.download_archive(archive, tmp_path, root_url=hub.url, progress=False)
    assert read_url(obj.url, storage_options=hub_writer(hub)) == Path(local).read_bytes()
    assert not list(
        Path(os.environ["MLHUB_STATE_DIR"]).rglob("*.tar.gz")
    )  # the staged copy was removed


def test_denied_destination_is_one_line_before_any_transfer(hub: Hub, tmp_path: Path) -> None:
    gets = hub.count("s3-object", "GET")
    hub.faults = FaultConfig(forbidden=frozenset({"/locked"}))
    try:
        with pytest.raises(AuthenticationError, match="access denied to s3://locked") as exc:
            mw.sync(
                f"s3://radiantearth/{SMALL_DS}/",
                "s3://locked/x",
                storage_options=hub_public(hub),
                output_storage_options=hub_writer(hub),
                progress=False,
            )
    finally:
        hub.faults = FaultConfig()
    assert "\n" not in str(exc.value)
    assert hub.count("s3-object", "GET") == gets  # nothing fetched for nothing


def test_azure_destination(azurite: Azurite, hub: Hub, tmp_path: Path) -> None:
    azurite.service().create_container("mirror")
    opts = {"connection_string": azurite.connection_string}
    summary = mw.sync(
        f"s3://radiantearth/{SMALL_DS}/",
        "az://mirror/spacenet",
        storage_options=hub_public(hub),
        output_storage_options=opts,
        progress=False,
    )
    source = _listing(hub, SMALL_DS)
    assert summary.assets_downloaded == len(source)
    assert _bucket_tree("az://mirror/spacenet", opts) == source
    again = mw.sync(
        f"s3://radiantearth/{SMALL_DS}/",
        "az://mirror/spacenet",
        storage_options=hub_public(hub),
        output_storage_options=opts,
        progress=False,
    )
    assert again.assets_downloaded == 0


def test_gcs_destination_fails_clearly_on_the_emulator(
    fake_gcs: GcsEmulator, hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fake-gcs-server implements only the JSON upload API and obstore writes with the XML API,
    so a GCS destination cannot be exercised here: the failure must be one line per object,
    and the objects must not exist."""
    fake_gcs.client(monkeypatch).create_bucket("gcsdest")
    opts = {"base_url": fake_gcs.base_url, "bearer_token": "test"}
    with pytest.raises(DownloadError) as exc:
        mw.sync(
            f"s3://radiantearth/{SMALL_DS}/",
            "gs://gcsdest/x",
            storage_options=hub_public(hub),
            output_storage_options=opts,
            progress=False,
        )
    report = Path(str(exc.value.report)).read_text().splitlines()
    assert len(report) == 1 + len(_listing(hub, SMALL_DS))
    assert all("upload failed" in line for line in report[1:])
    assert not list(list_url("gs://gcsdest/x", storage_options=opts))
