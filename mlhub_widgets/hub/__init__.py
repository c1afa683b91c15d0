"""The bundled hub: an MLHub-compatible HTTP server for tests, notebooks and benchmarks.

The hosted Radiant MLHub API is retired. The hub serves the same endpoints, shapes and status
codes on loopback from recorded and generated data, plus a second origin standing in for the blob
store that the API redirected downloads to::

    from mlhub_widgets.hub import serve, FaultConfig

    with serve() as hub:                        # bundled sample data
        hub.url           # "http://127.0.0.1:41234/mlhub/v1/"
        hub.storage_url   # "http://127.0.0.1:41235/"
        hub.faults = FaultConfig(error_rate=0.05, seed=1)

From a shell: ``python -m mlhub_widgets.hub --port 8000`` (see :func:`main`).
"""

from __future__ import annotations

from .cli import main
from .faults import FaultConfig
from .server import Hub, RequestRecord, serve
from .store import bundled_data_dir

__all__ = ["FaultConfig", "Hub", "RequestRecord", "bundled_data_dir", "main", "serve"]
