"""The bundled hub: an MLHub-compatible HTTP server for tests, notebooks and benchmarks.

The hosted Radiant MLHub API is retired. The hub serves the same endpoints, shapes and status
codes on loopback from recorded and generated data, plus a second origin standing in for the blob
store that the API redirected downloads to, and a third, S3-compatible one laid out as Source
Cooperative, where the datasets live now::

    from mlhub_widgets.hub import serve, FaultConfig

    with serve() as hub:                        # bundled sample data
        hub.url           # "http://127.0.0.1:41234/mlhub/v1/"
        hub.storage_url   # "http://127.0.0.1:41235/"
        hub.s3_url        # "http://127.0.0.1:41236": --endpoint-url of s5cmd, aws, boto3, obstore
        hub.faults = FaultConfig(error_rate=0.05, seed=1)

The S3 origin (always started, see :mod:`.s3`) has bucket ``radiantearth``, read-only: every
dataset with a catalogue under ``<dataset_id>/``, its static STAC catalogue with relative asset
hrefs next to its asset bytes (:mod:`.s3_datasets`), and bucket ``scratch``, writable (PUT,
multipart, copy, delete; more buckets with ``CreateBucket``) into a scratch folder removed by
``stop()`` (:mod:`.s3_store`). Requests may be anonymous or signed; signatures are not verified.

Besides the MLHub endpoints the API origin is a STAC API 1.0.0: Item Search, ``GET``/``POST
{hub.url}search`` over every collection, with the fields, sort and query extensions (see
:mod:`.search` and :mod:`.extensions`), ``{hub.url}conformance``, and an OpenAPI 3.0 description
at ``{hub.url}openapi.json`` (:mod:`.openapi`; ``docs/stac-api.md`` tells the whole story). The
storage origin also serves each dataset's catalogue as a static STAC catalogue,
``{hub.storage_url}catalogs/{dataset_id}/catalog.json`` (:meth:`Hub.static_catalog_url`, see
:mod:`.static`).

Every listed dataset can be downloaded: datasets recorded only as metadata get a small generated
catalogue (:mod:`.generated`); one whose collections were not recorded at all says so in its
record (``metadata_only_reason``) and has no catalogue (``/catalog/{id}/info`` answers 404).

Large synthetic datasets (``sample.make_synthetic_dataset``) are served lazily: items pages read
only their lines of ``items.jsonl``; catalogue tarballs are built on first request (~1 s CPU per
100,000 assets) and kept in an on-disk cache (:mod:`.catalog`). To time a client without the
hub's one-off work, warm the hub first::

    hub.warm()                        # or hub.catalog_blob("my_dataset") for one tarball

From a shell: ``python -m mlhub_widgets.hub --port 8000 [--warm]`` (see :func:`main`).
"""

from __future__ import annotations

from .cli import main
from .faults import FaultConfig
from .server import Hub, RequestRecord, serve
from .store import bundled_data_dir

__all__ = ["FaultConfig", "Hub", "RequestRecord", "bundled_data_dir", "main", "serve"]
