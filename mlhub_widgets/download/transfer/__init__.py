"""The transfer engine: moves asset bytes from HTTP(S) to disk, fast and never corrupt.

See :mod:`.engine` for what every file goes through.
"""

from __future__ import annotations

from .engine import (
    TransferControl,
    TransferEngine,
    TransferOutcome,
    TransferSpec,
    download_file,
    fetch_file,
    parse_checksum,
)

__all__ = [
    "TransferControl",
    "TransferEngine",
    "TransferOutcome",
    "TransferSpec",
    "download_file",
    "fetch_file",
    "parse_checksum",
]
