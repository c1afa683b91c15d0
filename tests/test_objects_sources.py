"""Static catalogues and asset hrefs in object stores, through open_source, download_dataset,
the CLI and the explorer state: the hub's S3 origin (Source Cooperative's layout), moto (a
public-read bucket on a custom endpoint), Azurite and fake-gcs-server."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

import pytest

import mlhub_widgets as mw
from mlhub_widgets.cli.main import main
from mlhub_widgets.download import AssetFinished
from mlhub_widgets.exceptions import AuthenticationError, DownloadError
from mlhub_widgets.hub import Hub
from mlhub_widgets.net.objects import UnsupportedURLError
from mlhub_widgets.widgets.state import ExplorerState
from tests.objects_support import (
    SMALL_DS,
    catalogue_objects,
    downloaded_assets,
    expected_assets,
    hub_public,
    hub_writer,
    put_catalogue,
)
from tests.parts import Azurite, GcsEmulator, MotoS3

pytestmark = pytest.mark.usefixtures("object_state")


def _hub_object(hub: Hub, key: str) -> bytes:
    import requests

    return requests.get(f"{hub.s3_url}/radiantearth/{key}", timeout=30).content


def test_catalogue_in_the_hub_bucket_downloads_byte_identical(hub: Hub, tmp_path: Path) -> None:
    src = mw.open_source(f"s3://radiantearth/{SMALL_DS}/", storage_options=hub_public(hub))
    assert src.url == f"s3://radiantearth/{SMALL_DS}/catalog.json"
    (record,) = src.list_datasets()
    cid = record["collections"][0]["id"]
    item = next(src.iter_items(cid))
    hrefs = [a["href"] for a in item["assets"].values()]
    assert hrefs and all(h.startswith(f"s3://radiantearth/{SMALL_DS}/") for h in hrefs)
    gets = hub.count("s3-object", "GET")
    summary = mw.download_dataset(record["id"], tmp_path, source=src, progress=False)
    assert summary.assets_failed == 0 and summary.assets_downloaded == summary.assets_selected
    done = 0
    for row_item in src.iter_items([c["id"] for c in record["collections"]]):
        for key, asset in row_item["assets"].items():
            files = list((tmp_path / record["id"]).rglob(f"{key}.*"))
            local = [f for f in files if row_item["id"] in f.as_posix()] or files
            bucket_key = asset["href"].removeprefix("s3://radiantearth/")
            assert local[0].read_bytes() == _hub_object(hub, bucket_key)
            done += 1
    assert done >= summary.assets_selected
    after_first = hub.count("s3-object", "GET")
    assert after_first - gets >= summary.assets_selected
    again = mw.download_dataset(record["id"], tmp_path, source=src, progress=False)
    assert again.assets_downloaded == 0 and again.assets_skipped == summary.assets_selected
    assert hub.count("s3-object", "GET") == after_first  # a no-op rerun: no object request


def test_cli_download_from_a_public_bucket(hub: Hub, tmp_path: Path, capsys: Any) -> None:
    rc = main(
        [
            "download",
            SMALL_DS,
            "-q",
            "-o",
            str(tmp_path),
            "--source",
            f"s3://radiantearth/{SMALL_DS}/catalog.json",
            "--no-sign-request",
            "--storage-option",
            f"endpoint={hub.s3_url}",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert "0 failed" in capsys.readouterr().out
    assert any((tmp_path / SMALL_DS).rglob("*.tif"))


def test_cli_errors_are_one_line(hub: Hub, tmp_path: Path, capsys: Any) -> None:
    endpoint = f"endpoint={hub.s3_url}"
    cases = [
        (["--source", "s3://nobucket/ds/", "--no-sign-request", "--storage-option", endpoint], 1),
        (
            [
                "--source",
                "s3://radiantearth/nope/",
                "--no-sign-request",
                "--storage-option",
                endpoint,
            ],
            1,
        ),
        (["--source", "ftp://host/catalog.json"], 2),
        (["--source", "s3:/radiantearth/x/"], 2),
        (["-o", "s3:/bucket/prefix"], 2),
        (["-o", "gopher://x/y"], 2),
    ]
    for extra, code in cases:
        rc = main(
            [
                "download",
                SMALL_DS,
                "-q",
                *(["-o", str(tmp_path)] if "-o" not in extra else []),
                *extra,
            ]
        )
        err = capsys.readouterr().err.strip()
        assert rc == code, (extra, err)
        assert err.startswith("mlhub: error:") and "\n" not in err and "Traceback" not in err
    assert not (Path.cwd() / "s3:").exists() and not (tmp_path / "s3:").exists()


def test_public_read_bucket_on_a_custom_endpoint(moto_s3: MotoS3, tmp_path: Path) -> None:
    s3 = moto_s3.client()
    s3.create_bucket(Bucket="opendata")
    put_catalogue(
        lambda k, b: s3.put_object(Bucket="opendata", Key=k, Body=b, ACL="public-read"), "tiny"
    )
    s3.put_object(Bucket="opendata", Key="private/catalog.json", Body=b"{}")
    opts = {"endpoint": moto_s3.endpoint, "skip_signature": True}
    summary = mw.download_dataset(
        "tiny", tmp_path, source="s3://opendata/tiny/", storage_options=opts, progress=False
    )
    assert summary.assets_downloaded == 4
    assert downloaded_assets(tmp_path, "tiny") == expected_assets()
    with pytest.raises(AuthenticationError, match="not public"):
        mw.open_source("s3://opendata/private/catalog.json", storage_options=opts)


def test_resume_with_if_match_and_restart_when_the_object_changed(hub: Hub, tmp_path: Path) -> None:
    """What a killed download leaves (a .part and its .meta) is resumed with a range get on
    the same ETag; a stale ETag (the object changed) starts the file again."""
    key = "nasa_marine_debris/nasa-marine-debris/documentation.pdf"
    body = _hub_object(hub, key)
    assert len(body) > 300_000  # streamed, not read whole
    import requests

    etag = requests.head(f"{hub.s3_url}/radiantearth/{key}", timeout=30).headers["ETag"]
    dest = tmp_path / "nasa-marine-debris" / "documentation.pdf"
    dest.parent.mkdir(parents=True)
    url = f"s3://radiantearth/{key}"
    for validator, resumed in ((etag, 100_000), ('"0123456789abcdef"', 0)):
        dest.unlink(missing_ok=True)
        part = Path(f"{dest}.part")
        part.write_bytes(body[:100_000] if resumed else b"\0" * 100_000)
        meta = {"url": url, "etag": validator, "last_modified": None, "size": len(body)}
        Path(f"{part}.meta").write_text(json.dumps(meta))
        events: list[Any] = []
        summary = mw.sync(
            "s3://radiantearth/nasa_marine_debris/",
            tmp_path,
            include=["*/documentation.pdf"],
            storage_options=hub_public(hub),
            progress=events.append,
        )
        assert summary.assets_downloaded == 1
        (finished,) = [e for e in events if isinstance(e, AssetFinished)]
        assert finished.resumed_from == resumed
        assert dest.read_bytes() == body
        assert not part.exists()


def test_azure_container_catalogue(azurite: Azurite, tmp_path: Path) -> None:
    svc = azurite.service()
    ctr = svc.create_container("catalogues")
    put_catalogue(lambda k, b: ctr.upload_blob(k, b, overwrite=True), "tiny")
    opts = {"connection_string": azurite.connection_string}
    src = mw.open_source("az://catalogues/tiny/catalog.json", storage_options=opts)
    item = next(src.iter_items("coll"))
    assert item["assets"]["image"]["href"] == "az://catalogues/tiny/coll/item-a/image.tif"
    summary = mw.download_dataset("tiny", tmp_path, source=src, progress=False)
    assert summary.assets_downloaded == 4
    assert downloaded_assets(tmp_path, "tiny") == expected_assets()


def test_gcs_bucket_catalogue(
    fake_gcs: GcsEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = fake_gcs.client(monkeypatch)
    bucket = client.create_bucket("gcscat")
    put_catalogue(lambda k, b: bucket.blob(k).upload_from_string(b), "tiny")
    opts = {"base_url": fake_gcs.base_url, "bearer_token": "test"}
    summary = mw.download_dataset(
        "tiny", tmp_path, source="gs://gcscat/tiny/", storage_options=opts, progress=False
    )
    assert summary.assets_downloaded == 4
    assert downloaded_assets(tmp_path, "tiny") == expected_assets()


def test_missing_asset_object_is_a_failed_asset(moto_s3: MotoS3, tmp_path: Path) -> None:
    s3 = moto_s3.client()
    s3.create_bucket(Bucket="holes")
    objects = catalogue_objects()
    for key, data in objects.items():
        if key != "coll/item-b/image.tif":
            s3.put_object(Bucket="holes", Key=f"tiny/{key}", Body=data)
    with pytest.raises(DownloadError) as exc:
        mw.download_dataset(
            "tiny",
            tmp_path,
            source="s3://holes/tiny/",
            storage_options={"endpoint": moto_s3.endpoint},
            progress=False,
        )
    assert exc.value.failed == 1
    report = (tmp_path / "tiny" / "err_report.csv").read_text()
    assert "404" in report and "no object at s3://holes/tiny/coll/item-b/image.tif" in report
    assert not list(tmp_path.rglob("*.part"))


def test_explorer_connects_to_a_bucket_and_writes_to_one(hub: Hub, tmp_path: Path) -> None:
    st = ExplorerState()
    st.connect_source(
        f"s3://radiantearth/{SMALL_DS}/", storage_options=hub_public(hub), then_search=False
    )
    st.wait()
    assert not st.errors.get("login"), st.errors
    assert st.dataset_count == 1 and "s3://radiantearth" in st.connection
    st.select_dataset(SMALL_DS)
    st.wait()
    st.output_dir = "s3:/oops"
    assert any("did you mean" in p for p in st.download_problems())
    st.output_dir = f"s3://scratch/explorer-{os.getpid()}"
    st.output_storage_options = {"endpoint": hub.s3_url}
    st.start_download()
    st.wait()
    assert st.job is not None
    summary = st.job.wait(timeout=120)
    assert summary.assets_failed == 0 and summary.assets_downloaded > 0
    st.wait()
    # the On-disk tab names the prefix and how to copy it, not a folder named 's3:' nearby
    from mlhub_widgets.widgets.on_disk import OnDiskPanel

    panel = OnDiskPanel(st, basemap=None)
    prefix = f"{st.output_dir}/{SMALL_DS}"
    assert st.disk is not None and st.disk.folder == prefix
    assert f"object store at {prefix}" in panel.summary.value
    assert "Nothing has been" not in panel.summary.value
    assert prefix in panel.paths.value and "s3:/scratch" not in panel.paths.value
    code = html.unescape(panel.snippet.value)
    assert f"mw.sync({prefix!r}, {SMALL_DS!r})" in code
    assert f"mw.open_local({SMALL_DS!r})" in code
    panel.refresh()
    assert "disk" not in st.errors
    st.connect_source("s3://nobucket/x/", storage_options=hub_public(hub), then_search=False)
    st.wait()
    assert "nobucket" in st.errors["login"] and "\n" not in st.errors["login"]


def test_unknown_schemes_are_refused_everywhere(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedURLError):
        mw.open_source("ftp://host/catalog.json")
    with pytest.raises(UnsupportedURLError, match="did you mean"):
        mw.download_dataset("x", "s3:/bucket/p", source=tmp_path, progress=False)


def test_a_download_into_a_bucket_is_opened_locally_after_a_sync(hub: Hub, tmp_path: Path) -> None:
    """open_local reads folders only: for a download into a bucket the summary names no local
    catalogue (the copy in the state folder points at files that are not on this machine),
    open_local of the bucket is one line saying how to copy it, and the copy opens whole."""
    demo = "mlhub_widgets_demo_crops"
    bucket = f"s3://scratch/open-local-{os.getpid()}"
    summary = mw.download_dataset(
        demo, bucket, root_url=hub.url, progress=False, output_storage_options=hub_writer(hub)
    )
    assert summary.complete and summary.assets_downloaded > 0
    assert summary.local_catalog is None
    for where in (f"{bucket}/{demo}", f"{bucket}/{demo}/catalog.json"):
        with pytest.raises(ValueError, match="open_local reads local folders only") as exc:
            mw.open_local(where)
        assert "\n" not in str(exc.value)
        assert f"mlhub sync {bucket}/{demo}/ -o FOLDER)" in str(exc.value)

    # the bucket's catalogue points at the files beside it: a copy of the prefix opens whole
    # (the download's err_report.csv, a name a download keeps for itself, not copied: counted)
    plan = mw.plan_sync(f"{bucket}/{demo}/", tmp_path / demo, storage_options=hub_writer(hub))
    assert plan.reserved == 1 and "1 not copied (err_report.csv" in str(plan)
    copied = mw.sync(
        f"{bucket}/{demo}/",
        tmp_path / demo,
        storage_options=hub_writer(hub),
        progress=False,
    )
    assert copied.reserved_skipped == 1 and copied.assets_failed == 0
    ds = mw.open_local(tmp_path / demo)
    assets = ds.items()
    assert len(assets) > 0 and assets["present"].all()
    pairs = ds.pairs()
    assert len(pairs) == 72
    assert all(not missing for missing in pairs["missing_assets"])
    assert all(Path(p).is_file() for a in pairs["label_assets"] for p in a.values())


def test_a_download_from_a_bucket_never_loads_the_http_library(hub: Hub, tmp_path: Path) -> None:
    """Every GET of a catalogue in a bucket goes through the object-store library: aiohttp,
    whose import costs ~0.1 s of the start (it builds SSL contexts), is never imported."""
    import subprocess
    import sys

    code = (
        "import sys, mlhub_widgets as mw\n"
        "s = mw.download_dataset(sys.argv[1], sys.argv[2], source=sys.argv[3],\n"
        "    storage_options={'endpoint': sys.argv[4], 'skip_signature': True}, progress=False)\n"
        "print(s.assets_downloaded, 'aiohttp' in sys.modules)\n"
    )
    src = f"s3://radiantearth/{SMALL_DS}/"
    done = subprocess.run(
        [sys.executable, "-c", code, SMALL_DS, str(tmp_path), src, hub.s3_url],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    count, loaded = done.stdout.split()
    assert int(count) > 0 and loaded == "False"
