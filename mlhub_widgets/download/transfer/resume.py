"""The ``.part.meta`` sidecar: the validator and the byte ranges of an interrupted file."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from .files import unlink_quietly, write_all


def _read_meta(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as fh:
            meta = json.loads(fh.read(65536))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _write_meta(path: str, meta: Mapping[str, Any]) -> None:
    data = json.dumps(meta, separators=(",", ":")).encode()
    tmp = path + ".tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        unlink_quietly(tmp)
        raise


def _contiguous(ranges: Any) -> int:
    """Length of the prefix ``[0, n)`` covered by a meta ``ranges`` list."""
    try:
        spans = sorted((int(a), int(b)) for a, b in ranges)
    except (TypeError, ValueError):
        return 0
    end = 0
    for a, b in spans:
        if a > end:
            break
        end = max(end, b)
    return end
