"""Every test starts from a network environment that only the test itself changes.

Developer and CI shells may set proxies, CA bundles and cloud credentials (this machine sets
``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE`` and ``AWS_CA_BUNDLE`` to the system
bundle). A test about proxies or trust must not pass or fail because of them, and no client may
look for cloud credentials off the machine (EC2 IMDS, the GCE metadata server, ``~/.aws``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from .process import PROXY_VARS

#: Trust settings read by requests, urllib/ssl, curl, obstore, boto3 and aiohttp.
TRUST_VARS = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "AWS_CA_BUNDLE",
)

#: Cloud settings that would send a store client somewhere other than the test's part.
CLOUD_PREFIXES = ("AWS_", "AZURE_", "AZURITE_", "GOOGLE_", "GCLOUD_", "CLOUDSDK_", "S3_")


@pytest.fixture(autouse=True)
def _clean_network_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """No proxy, no CA bundle and no cloud settings from the shell; fake AWS credentials only."""
    cloud = [k for k in os.environ if k.startswith(CLOUD_PREFIXES)]
    for var in (*PROXY_VARS, *TRUST_VARS, *cloud, "STORAGE_EMULATOR_HOST"):
        monkeypatch.delenv(var, raising=False)
    nowhere = tmp_path_factory.getbasetemp() / "no-cloud-config"
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(nowhere / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere / "aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(nowhere / "gcp-credentials.json"))
    yield
