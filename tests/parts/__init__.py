"""Real network parts for the tests, started on loopback by pytest fixtures.

Registered for the whole suite by ``pytest_plugins`` in ``tests/conftest.py``. Every part binds
127.0.0.1 on a free port, waits for readiness with a deadline (``PARTS_START_TIMEOUT``, 30 s),
and is stopped by its PID; a part that cannot start fails the test with its command and log
tail (nothing skips). An autouse fixture clears proxy, CA-bundle and cloud variables from the
shell for every test (:mod:`.env`).

=====================  =========  ==============================================================
fixture                scope      what
=====================  =========  ==============================================================
``forward_proxy``      session    mini asyncio proxy / tinyproxy (param), ``*.test.invalid``
``tls_ca``             session    trustme CA + certificate for loopback and the proxy names
``tls_front``          session    factory: TLS in front of any ``127.0.0.1:port``
``tls_hub``            session    the bundled hub over TLS on ``localhost``
``proxied_hub``        session    the bundled hub on ``hub.test.invalid`` (HTTP)
``proxied_tls_hub``    session    the bundled hub on ``hub.test.invalid`` (HTTPS)
``make_public_hub``    function   factory for a test's own hub of those kinds
``moto_s3``            function   moto's S3 server (per session), reset for the test
``azurite``            session    Azurite blob service (npm)
``gcs_emulator``       session    gcp-storage-emulator (google-cloud-storage)
``fake_gcs``           session    fake-gcs-server (obstore reads)
``dask_cluster``       function   ``LocalCluster``, 2 worker processes, kill-a-worker helpers
=====================  =========  ==============================================================

Usage (each fixture's class documents the rest)::

    def test_x(forward_proxy, proxied_hub, monkeypatch):
        forward_proxy.setenv(monkeypatch)           # HTTP(S)_PROXY, NO_PROXY=127.0.0.1,localhost
        download_dataset(DS, out, root_url=proxied_hub.url)   # only works through the proxy

    def test_y(tls_hub, tls_ca, monkeypatch):
        tls_ca.trust_in_env(monkeypatch)            # SSL_CERT_FILE, REQUESTS_CA_BUNDLE, ...

    def test_z(moto_s3):                            # empty moto: .client(), .store(b), .env()
        moto_s3.client().create_bucket(Bucket="eodata")

    def test_w(dask_cluster, tmp_path):             # .client, .address, .kill_worker(pid)
        fut = dask_cluster.client.submit(task_calling_mark_started, str(tmp_path))
        dask_cluster.kill_worker_when_started(tmp_path)
"""

from __future__ import annotations

from .cluster import DaskCluster, dask_cluster, mark_started
from .env import _clean_network_env
from .hubs import (
    PublicHub,
    make_public_hub,
    proxied_hub,
    proxied_tls_hub,
    public_hub,
    tls_hub,
)
from .process import LOOPBACK, free_port
from .proxy import HUB_NAME, OTHER_NAME, PROXY_NAMES, STORAGE_NAME, ForwardProxy, forward_proxy
from .stores import (
    NO_RETRY,
    Azurite,
    GcsEmulator,
    MotoS3,
    azurite,
    fake_gcs,
    gcs_emulator,
    moto_s3,
    moto_server,
)
from .tls import TlsCA, TlsFront, tls_ca, tls_front

__all__ = [
    "HUB_NAME",
    "LOOPBACK",
    "NO_RETRY",
    "OTHER_NAME",
    "PROXY_NAMES",
    "STORAGE_NAME",
    "Azurite",
    "DaskCluster",
    "ForwardProxy",
    "GcsEmulator",
    "MotoS3",
    "PublicHub",
    "TlsCA",
    "TlsFront",
    "_clean_network_env",
    "azurite",
    "dask_cluster",
    "fake_gcs",
    "forward_proxy",
    "free_port",
    "gcs_emulator",
    "make_public_hub",
    "mark_started",
    "moto_s3",
    "moto_server",
    "proxied_hub",
    "proxied_tls_hub",
    "public_hub",
    "tls_ca",
    "tls_front",
    "tls_hub",
]
