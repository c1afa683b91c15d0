"""The transfer engine: moves asset bytes from HTTP(S) to disk, fast and never corrupt.

See :mod:`.engine` for what every file goes through. The modules, in import order:

* :mod:`.spec`: :class:`TransferSpec` in, :class:`TransferOutcome` out, :class:`TransferControl`;
* :mod:`.verify`: ``file:checksum`` multihashes and file hashing;
* :mod:`.http_helpers`, :mod:`.resume`: ranges and validators; the ``.part.meta`` sidecar;
* :mod:`.files` and :mod:`.disk`: writing ``.part`` files and small files, off the event loop;
* :mod:`.attempt`: one attempt at one file (request, checks, ``.part``, verification, rename);
* :mod:`.engine`: :class:`TransferEngine`, many files at once (workers, retries, pause/cancel);
* :mod:`.ranged` and :mod:`.one_file`: one large file as parallel ranges; :func:`download_file`.
"""

from __future__ import annotations

from .engine import TransferEngine
from .one_file import download_file, fetch_file
from .spec import TransferControl, TransferOutcome, TransferSpec
from .verify import parse_checksum

__all__ = [
    "TransferControl",
    "TransferEngine",
    "TransferOutcome",
    "TransferSpec",
    "download_file",
    "fetch_file",
    "parse_checksum",
]
