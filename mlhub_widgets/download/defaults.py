"""Defaults shared by the download API, the ``mlhub`` command and the explorer.

A module of constants only, so that ``mlhub --help`` and the explorer's widgets can show them
without loading the download engine.
"""

from __future__ import annotations

#: Concurrent asset transfers of one download when ``workers`` is not given: what
#: ``download_dataset``, ``Dataset.download``, ``mlhub download`` and the explorer use. The
#: transfers share keep-alive connections on one event loop, so many small files need many
#: in flight (the speeds in benchmarks/README.md are measured with this value).
DEFAULT_WORKERS = 64
