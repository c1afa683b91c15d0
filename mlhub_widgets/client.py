"""The MLHub API as plain functions, with the names of ``radiant_mlhub.client`` 0.5.5.

A migrating script only changes its import::

    from mlhub_widgets.client import list_datasets, get_dataset, list_collection_items

The functions live in :mod:`mlhub_widgets.mlhub.client` (see its docstring for what differs from
the peer); :func:`download_collection_archive` runs the download engine
(:func:`mlhub_widgets.download.download_archive`).
"""

from __future__ import annotations

from pathlib import Path

from .config.session import Session
from .mlhub.client import (
    check_id,
    check_limit,
    get_catalog_info,
    get_collection,
    get_collection_archive_info,
    get_collection_item,
    get_dataset,
    get_dataset_by_doi,
    get_dataset_by_id,
    get_model_by_id,
    iter_item_pages,
    list_collection_items,
    list_collections,
    list_datasets,
    list_models,
    looks_like_doi,
    next_href,
    normalise_doi,
    resolve_session,
)

__all__ = [
    "check_limit",
    "download_collection_archive",
    "get_catalog_info",
    "get_collection",
    "get_collection_archive_info",
    "get_collection_item",
    "get_dataset",
    "get_dataset_by_doi",
    "get_dataset_by_id",
    "get_model_by_id",
    "iter_item_pages",
    "list_collection_items",
    "list_collections",
    "list_datasets",
    "list_models",
    "looks_like_doi",
    "next_href",
    "normalise_doi",
    "resolve_session",
]


def download_collection_archive(
    archive_id: str,
    output_dir: str | Path | None = None,
    *,
    if_exists: str = "resume",
    progress: bool = True,
    api_key: str | None = None,
    profile: str | None = None,
    root_url: str | None = None,
    session: Session | None = None,
) -> Path | str:
    """Download a collection's ``.tar.gz`` archive (``GET /archive/{id}``).

    Args:
        archive_id: the collection id.
        output_dir: target directory (default: the current directory).
        if_exists: ``"resume"`` (default), ``"skip"`` or ``"overwrite"``.
        progress: show a progress bar.

    Returns:
        The path of the downloaded archive.
    """
    from .download import download_archive

    aid = check_id(archive_id, "archive_id")
    return download_archive(
        aid,
        output_dir,
        if_exists=if_exists,
        session=session,
        api_key=api_key,
        profile=profile,
        root_url=root_url,
        progress=progress,
    )
