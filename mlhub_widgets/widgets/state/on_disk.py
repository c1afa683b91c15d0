"""What a download left on disk: the files of the local catalogue, the failed assets, the paths.

:func:`read_disk` reads a dataset folder (``{output_dir}/{dataset}``) the way a user's code
would afterwards: ``mw.open_local(folder).items()`` (one row per asset with its local path and
whether the file is there) and the download's ``err_report.csv`` (the assets that failed, with
their reasons). :class:`OnDiskFiles` is the part of the explorer's state that keeps it up to
date (after each download, and on request).
"""

from __future__ import annotations

import csv
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import traitlets
from traitlets import observe

from ...net.objects.urls import is_object_url
from .errors import FailedAsset
from .job_follow import JobFollower

__all__ = ["DiskView", "OnDiskFiles", "load_snippet", "read_disk"]

ERR_REPORT = "err_report.csv"
#: Most failed assets read from err_report.csv.
MAX_FAILED = 500


@dataclass(frozen=True)
class DiskView:
    """A dataset folder as the On-disk tab shows it.

    Attributes:
        folder: the absolute folder (``{output_dir}/{dataset}``).
        exists: whether the folder exists.
        catalog: its local ``catalog.json`` ("" when there is none yet).
        assets: ``open_local(folder).items()`` (None without a catalogue).
        failed: the rows of ``err_report.csv`` (at most :data:`MAX_FAILED`).
        failed_count: how many rows ``err_report.csv`` has.
        report: the path of ``err_report.csv`` ("" when there is none).
        files: files of the catalogue's assets that are on disk (a file shared by several
            items counts once).
        bytes: their total size.
        missing: files of the catalogue's assets that are not there (failed or not selected).
        note: why there is nothing to show ("" when there is).
    """

    folder: str
    exists: bool = False
    catalog: str = ""
    assets: Any = None
    failed: tuple[FailedAsset, ...] = field(default_factory=tuple)
    failed_count: int = 0
    report: str = ""
    files: int = 0
    bytes: int = 0
    missing: int = 0
    note: str = ""

    @property
    def snippet(self) -> str:
        """Python code that loads this dataset (see :func:`load_snippet`)."""
        return load_snippet(self.folder)


def load_snippet(folder: str) -> str:
    """The code that opens a downloaded dataset folder with :func:`mlhub_widgets.open_local`;
    for an object-store prefix, :func:`mlhub_widgets.sync` copies it to a local folder first."""
    copy = ""
    if is_object_url(folder):
        local = folder.rstrip("/").rsplit("/", 1)[-1]
        copy = f"mw.sync({folder!r}, {local!r})  # storage_options=... as for the download\n"
        folder = local
    return (
        "import mlhub_widgets as mw\n\n"
        f"{copy}"
        f"ds = mw.open_local({folder!r})\n"
        "assets = ds.items()   # GeoDataFrame: one row per asset, its local path, present\n"
        "pairs = ds.pairs()    # label items with their source items' files\n"
        "assets[assets.present].head()\n"
    )


def _failed_rows(report: Path) -> tuple[list[FailedAsset], int]:
    rows: list[FailedAsset] = []
    count = 0
    with report.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            count += 1
            if len(rows) < MAX_FAILED:
                status = row.get("status") or ""
                error = row.get("error") or ""
                if status and not error.startswith(f"HTTP {status}"):
                    reason = f"HTTP {status}: {error}" if error else f"HTTP {status}"
                else:
                    reason = error
                rows.append(
                    FailedAsset(
                        collection=row.get("collection_id") or "",
                        item=row.get("item_id") or "",
                        asset_key=row.get("asset_key") or "",
                        reason=reason,
                        url=row.get("url") or "",
                    )
                )
    return rows, count


def read_disk(folder: str | os.PathLike[str]) -> DiskView:
    """Read a dataset folder (see the module docstring). Does I/O: call it in a worker.

    Raises:
        OSError: the folder or a file of its catalogue cannot be read.
    """
    where = Path(folder).expanduser().absolute()
    text = os.fspath(where)
    if not where.exists():
        return DiskView(text, note=f"Nothing has been downloaded into {text} yet.")
    if not where.is_dir():
        return DiskView(text, note=f"{text} is not a folder.")
    failed: list[FailedAsset] = []
    failed_count = 0
    report = where / ERR_REPORT
    if report.is_file():
        failed, failed_count = _failed_rows(report)
    catalog = where / "catalog.json"
    if not catalog.is_file():
        return DiskView(
            text,
            exists=True,
            failed=tuple(failed),
            failed_count=failed_count,
            report=os.fspath(report) if report.is_file() else "",
            note="No catalogue here yet: start a download (it writes the catalogue first).",
        )
    from ...local import open_local

    assets = open_local(where).items()
    # a file shared by several items (e.g. a dataset's documentation) is one file
    paths = assets.loc[~assets["path"].fillna(assets["href"]).duplicated()]
    local = paths[paths["path"].notna()]
    files = 0
    size = 0
    for path in local.loc[local["present"], "path"]:
        try:
            size += os.stat(path).st_size
            files += 1
        except OSError:  # removed meanwhile
            pass
    return DiskView(
        text,
        exists=True,
        catalog=os.fspath(catalog),
        assets=assets,
        failed=tuple(failed),
        failed_count=failed_count,
        report=os.fspath(report) if report.is_file() else "",
        files=files,
        bytes=size,
        missing=int((~paths["present"]).sum()),
    )


class OnDiskFiles(JobFollower):
    """The selected dataset's folder as it is on disk (:attr:`disk`), read again after each
    download and by :meth:`refresh_disk`."""

    disk = traitlets.Any(None, allow_none=True, help="DiskView of the dataset's folder")

    # provided by ExplorerState
    output_dir: Any
    dataset_id: Any

    def dataset_folder(self) -> Path | None:
        """``{output_dir}/{dataset}``, absolute (None without a dataset, or when
        :attr:`output_dir` is an object-store prefix: see :meth:`dataset_location`)."""
        if not self.dataset_id or is_object_url(str(self.output_dir).strip()):
            return None
        folder: Path = Path(str(self.output_dir).strip() or ".").expanduser().absolute()
        return folder / str(self.dataset_id)

    def dataset_location(self) -> str | None:
        """Where the selected dataset's files go, as the user reads it: the absolute folder,
        or ``s3://bucket/prefix/{dataset}`` for an object-store output (None without a
        dataset)."""
        if not self.dataset_id:
            return None
        text = str(self.output_dir).strip()
        if is_object_url(text):
            return f"{text.rstrip('/')}/{self.dataset_id}"
        folder = self.dataset_folder()
        return os.fspath(folder) if folder is not None else None

    def refresh_disk(self) -> threading.Thread | None:
        """Read the selected dataset's folder again, in the background (see :attr:`disk`).
        An object-store output is not read: the view says so (``mw.sync`` copies it here)."""
        location = self.dataset_location()
        if location is None:
            self.disk = None
            return None
        if is_object_url(location):
            self.disk = DiskView(
                folder=location,
                note=f"The files go to the object store at {location}: this tab reads local "
                "folders only. The code below copies them here and opens them.",
            )
            return None
        folder = Path(location)

        def done(view: DiskView) -> None:
            self.disk = view

        return self.run_in_background(
            "disk", "Reading the files on disk…", lambda: read_disk(folder), done
        )

    @observe("job_state")
    def _refresh_after_job(self, change: dict[str, Any]) -> None:
        if change["new"] in ("finished", "failed", "cancelled") and change["old"] != change["new"]:
            self.refresh_disk()
