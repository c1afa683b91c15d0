"""``err_report.csv``: the failed assets of a download, one row each, written from the index."""

from __future__ import annotations

import contextlib
import csv
import os
from pathlib import Path

from ..net.redact import redact_text, redact_url
from .manifest import (
    FAILED,
    Manifest,
)

ERR_REPORT_NAME = "err_report.csv"
ERR_REPORT_COLUMNS = (
    "collection_id",
    "item_id",
    "asset_key",
    "url",
    "path",
    "status",
    "error",
    "attempts",
)


def shown_url(url: str) -> str:
    """``redact_url`` for any URL, also one that does not parse (a port out of range, a
    broken IPv6 address): its ``key`` is masked all the same."""
    try:
        return redact_url(url)
    except ValueError:
        return redact_text(url)


def write_err_report(db: Manifest, path: Path) -> int:
    """Write failed selected assets to ``path`` (CSV with a header); returns the row count."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        n = _write_err_rows(db, tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return n


def _write_err_rows(db: Manifest, tmp: Path) -> int:
    n = 0
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(ERR_REPORT_COLUMNS)
        for row in db.iter_rows(state=FAILED):
            writer.writerow(
                [
                    row.collection_id,
                    row.item_id or "",
                    row.asset_key,
                    shown_url(row.url),
                    row.path,
                    row.status if row.status is not None else "",
                    redact_text(row.error or ""),
                    row.attempts,
                ]
            )
            n += 1
    return n
