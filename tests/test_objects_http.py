"""Object GETs of the download engine go over its HTTP client: public buckets as plain URLs,
credentialed stores as presigned URLs that never show unmasked (logs, err_report.csv), with
the same one-line errors as obstore's (missing object, denied access)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

import mlhub_widgets as mw
from mlhub_widgets.exceptions import DownloadError
from mlhub_widgets.hub import FaultConfig, Hub
from mlhub_widgets.net.objects import read_url
from mlhub_widgets.net.objects.routes import get_route, plain_url
from tests.objects_support import (
    catalogue_objects,
    downloaded_assets,
    expected_assets,
    hub_public,
)
from tests.parts import Azurite, GcsEmulator, MotoS3

pytestmark = pytest.mark.usefixtures("object_state")


def _gets(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The URLs of the GETs the HTTP client logged."""
    return [
        r.getMessage().split(" ", 1)[1]
        for r in caplog.records
        if r.name == "mlhub_widgets.net.http" and r.getMessage().startswith("GET ")
    ]


def _everything_shown(caplog: pytest.LogCaptureFixture, folder: Path) -> str:
    """Every log line and every file the run wrote that is text (reports, manifest...)."""
    texts = [r.getMessage() for r in caplog.records]
    for p in folder.rglob("*"):
        if p.is_file() and p.suffix in (".csv", ".json", ".log", ".txt", ".jsonl"):
            texts.append(p.read_text(errors="replace"))
    return "\n".join(texts)


def _asset_keys() -> list[str]:
    """The object keys of the tiny catalogue's assets below its prefix."""
    return [k for k in catalogue_objects() if not k.endswith(".json")]


def _without_sizes(objects: dict[str, bytes]) -> dict[str, bytes]:
    """The tiny catalogue with no ``file:size`` on its assets (sizes unknown until the GET:
    each asset is one streamed GET, over HTTP when the store allows it)."""
    out = dict(objects)
    for key, data in objects.items():
        if key.endswith(".json") and b'"assets"' in data:
            doc = json.loads(data)
            for asset in doc["assets"].values():
                del asset["file:size"]
            out[key] = json.dumps(doc).encode()
    return out


def test_public_bucket_large_objects_are_one_plain_get(
    hub: Hub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A public bucket's object larger than a small body is one plain GET, path style on the
    endpoint; small ones of known size stay one obstore range get; a missing or denied object
    reads as obstore's one-line errors."""
    caplog.set_level(logging.DEBUG, logger="mlhub_widgets.net.http")
    key = "nasa_marine_debris/nasa-marine-debris/documentation.pdf"
    url = f"s3://radiantearth/{key}"
    include = ["*/documentation.pdf", "*/collection.json"]
    for fault, message in (
        (FaultConfig(missing=frozenset({f"/radiantearth/{key}"})), f"no object at {url}"),
        (
            FaultConfig(forbidden=frozenset({f"/radiantearth/{key}"})),
            f"access denied to {url} (HTTP 403: AccessDenied",
        ),
    ):
        hub.faults = fault
        try:
            with pytest.raises(DownloadError) as exc:
                mw.sync(
                    "s3://radiantearth/nasa_marine_debris/",
                    tmp_path / "failed",
                    include=include,
                    storage_options=hub_public(hub),
                )
        finally:
            hub.faults = FaultConfig()
        assert exc.value.failed == 1 and exc.value.report is not None
        report = Path(exc.value.report).read_text()
        assert message in report and hub.s3_url not in report, report
        if "denied" in message:
            assert "the request was not signed" in report
    caplog.clear()
    summary = mw.sync(
        "s3://radiantearth/nasa_marine_debris/",
        tmp_path / "ok",
        include=include,
        storage_options=hub_public(hub),
    )
    assert summary.assets_downloaded >= 2  # the pdf and the collection documents
    assert _gets(caplog) == [f"{hub.s3_url}/radiantearth/{key}"]
    assert (tmp_path / "ok" / "nasa-marine-debris" / "documentation.pdf").read_bytes() == (
        read_url(url, storage_options=hub_public(hub))
    )


def test_own_client_options_keep_obstore(
    hub: Hub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Storage options with obstore ``client_options`` (headers, a proxy of the caller's) are
    honoured by keeping every GET on obstore."""
    caplog.set_level(logging.DEBUG, logger="mlhub_widgets.net.http")
    opts = {**hub_public(hub), "client_options": {"default_headers": {"x-test": "1"}}}
    summary = mw.sync(
        "s3://radiantearth/nasa_marine_debris/", tmp_path, include=["*/documentation.pdf"],
        storage_options=opts,
    )  # fmt: skip
    assert summary.assets_downloaded == 1 and _gets(caplog) == []


def test_credentialed_objects_are_presigned_and_never_shown(
    moto_s3: MotoS3, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    s3 = moto_s3.client()
    s3.create_bucket(Bucket="private.data")  # a dotted name: path style keeps it valid
    for key, data in _without_sizes(catalogue_objects()).items():
        if key != "coll/item-b/image.tif":
            s3.put_object(Bucket="private.data", Key=f"tiny/{key}", Body=data)
    opts = {
        "endpoint": moto_s3.endpoint,
        "access_key_id": moto_s3.access_key_id,
        "secret_access_key": "a-secret-that-must-not-leak",
    }
    with pytest.raises(DownloadError) as exc:
        mw.download_dataset(
            "tiny", tmp_path, source="s3://private.data/tiny/", storage_options=opts, progress=False
        )
    assert exc.value.failed == 1
    gets = [
        u for u in _gets(caplog) if "/coll/item-" in u and not u.split("?")[0].endswith(".json")
    ]
    assert len(gets) == 4, gets
    for url in gets:
        assert url.startswith(f"{moto_s3.endpoint}/private.data/tiny/coll/item-")
        assert "X-Amz-Signature=***" in url and "X-Amz-Credential=***" in url
    shown = _everything_shown(caplog, tmp_path)
    assert not re.search(r"(?i)x-amz-signature=[0-9a-f]{16}", shown)
    assert "a-secret-that-must-not-leak" not in shown
    assert f"X-Amz-Credential={moto_s3.access_key_id}" not in shown
    report = (tmp_path / "tiny" / "err_report.csv").read_text()
    assert "no object at s3://private.data/tiny/coll/item-b/image.tif" in report
    assert "X-Amz" not in report and moto_s3.endpoint not in report
    present = {k: v for k, v in expected_assets().items() if k != "item-b/image.tif"}
    assert downloaded_assets(tmp_path, "tiny") == present


def test_azure_account_key_objects_are_sas_urls_masked(
    azurite: Azurite, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mlhub_widgets.net.http")
    ctr = azurite.service().create_container("sas")
    for key, data in _without_sizes(catalogue_objects()).items():
        ctr.upload_blob(f"tiny/{key}", data, overwrite=True)
    opts = {"connection_string": azurite.connection_string}
    summary = mw.download_dataset(
        "tiny", tmp_path, source="az://sas/tiny/", storage_options=opts, progress=False
    )
    assert summary.assets_downloaded == 4
    assert downloaded_assets(tmp_path, "tiny") == expected_assets()
    gets = _gets(caplog)
    assert len(gets) == 4 and all("sig=***" in u and "/sas/tiny/coll/" in u for u in gets), gets
    assert azurite.account_key not in _everything_shown(caplog, tmp_path)


def test_public_azure_container_objects_are_plain_gets(
    azurite: Azurite, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mlhub_widgets.net.http")
    ctr = azurite.service().create_container("pubcat", public_access="container")
    for key, data in _without_sizes(catalogue_objects()).items():
        ctr.upload_blob(f"tiny/{key}", data, overwrite=True)
    opts = {
        "account_name": azurite.account_name,
        "endpoint": azurite.blob_endpoint,
        "skip_signature": True,
    }
    summary = mw.download_dataset(
        "tiny", tmp_path, source="az://pubcat/tiny/", storage_options=opts, progress=False
    )
    assert summary.assets_downloaded == 4
    assert downloaded_assets(tmp_path, "tiny") == expected_assets()
    gets = _gets(caplog)
    assert sorted(gets) == sorted(
        f"{azurite.blob_endpoint}/pubcat/tiny/{k}" for k in _asset_keys()
    ), gets


def test_public_gcs_bucket_objects_are_plain_gets(
    fake_gcs: GcsEmulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG, logger="mlhub_widgets.net.http")
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)  # anonymous: none
    bucket = fake_gcs.client(monkeypatch).create_bucket("gcspub")
    for key, data in _without_sizes(catalogue_objects()).items():
        bucket.blob(f"tiny/{key}").upload_from_string(data)
    opts = {"base_url": fake_gcs.base_url, "skip_signature": True}
    summary = mw.download_dataset(
        "tiny", tmp_path, source="gs://gcspub/tiny/", storage_options=opts, progress=False
    )
    assert summary.assets_downloaded == 4
    assert downloaded_assets(tmp_path, "tiny") == expected_assets()
    assert sorted(_gets(caplog)) == sorted(
        f"{fake_gcs.base_url}/gcspub/tiny/{k}" for k in _asset_keys()
    )


@pytest.mark.parametrize(
    ("cloud", "config", "url"),
    [
        (
            "s3",
            {"bucket": "a.b", "region": "eu-west-1", "skip_signature": "true"},
            "https://s3.eu-west-1.amazonaws.com/a.b/k%20%2B/x~.tif",
        ),
        (
            "s3",
            {
                "bucket": "radiantearth",
                "region": "us-east-1",
                "skip_signature": "true",
                "endpoint": "https://data.source.coop/",
            },
            "https://data.source.coop/radiantearth/k%20%2B/x~.tif",
        ),
        (
            "s3",
            {
                "bucket": "b",
                "region": "us-west-2",
                "skip_signature": "true",
                "virtual_hosted_style_request": "true",
            },
            "https://b.s3.us-west-2.amazonaws.com/k%20%2B/x~.tif",
        ),
        (
            "gcs",
            {"bucket": "g", "skip_signature": "true"},
            "https://storage.googleapis.com/g/k%20%2B/x~.tif",
        ),
        (
            "azure",
            {"container_name": "c", "account_name": "acct", "skip_signature": "true"},
            "https://acct.blob.core.windows.net/c/k%20%2B/x~.tif",
        ),
    ],
)
def test_plain_urls_are_the_stores_own(cloud: Any, config: dict[str, str], url: str) -> None:
    route = get_route(cloud, config, env={})
    assert route.kind == "plain" and plain_url(route, "k +/x~.tif") == url


@pytest.mark.parametrize(
    ("cloud", "config", "kind"),
    [
        ("s3", {"bucket": "b", "access_key_id": "k", "secret_access_key": "s"}, "signed"),
        ("s3", {"bucket": "b", "skip_signature": "true", "request_payer": "true"}, "store"),
        ("gcs", {"bucket": "g", "bearer_token": "t"}, "store"),
        ("azure", {"container_name": "c", "account_name": "a", "account_key": "k"}, "signed"),
        ("azure", {"container_name": "c", "account_name": "a", "sas_key": "sv=1&sig=x"}, "store"),
    ],
)
def test_what_stays_on_obstore(cloud: Any, config: dict[str, str], kind: str) -> None:
    assert get_route(cloud, config, env={}).kind == kind
