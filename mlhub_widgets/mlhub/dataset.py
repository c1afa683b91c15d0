"""Object layer with the names a ``radiant_mlhub`` user knows: Dataset, Collection, MLModel.

>>> from mlhub_widgets import Dataset                   # was: from radiant_mlhub import Dataset
>>> ds = Dataset.fetch("ref_african_crops_kenya_02")   # doctest: +SKIP
>>> [c.id for c in ds.collections.labels]               # doctest: +SKIP

Differences from radiant_mlhub 0.5.5 that users notice:

* An object remembers how it was obtained: the ``api_key``/``profile``/``root_url`` (or the
  ``session``) given to ``fetch``/``list`` are used by every later call on it and on the objects
  it hands out (collections, items, downloads). ``fetch_by_id`` no longer forgets them.
* :class:`Dataset` keeps the full API record (:attr:`Dataset.raw`): tags, description, bbox,
  status, dates, publications... are attributes instead of being discarded.
* Catalogue and archive sizes are fetched once and cached; a dataset's collections are fetched
  concurrently on one connection pool.
* Every method accepts ``api_key=``, ``profile=``, ``root_url=`` and ``session=`` overrides.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config.session import Session
from ..types import BBoxLike, CollectionFilter, DatetimeLike, IntersectsLike
from . import client
from .collection import Collection, CollectionList
from .session_bound import SessionBound, parse_time

if TYPE_CHECKING:
    import geopandas as gpd
    from shapely.geometry.base import BaseGeometry

    from ..download import Callback, DownloadJob, DownloadSummary

log = logging.getLogger(__name__)

JSON = dict[str, Any]


class Dataset(SessionBound):
    """An MLHub dataset: a group of source-imagery and label collections.

    Create instances with :meth:`fetch`, :meth:`fetch_by_id`, :meth:`fetch_by_doi` or
    :meth:`list`. Every field of the API record is kept (:attr:`raw`); the common ones are
    attributes.

    Attributes:
        id, title, doi, citation, registry_url, description, status: strings (or ``None``).
        tags: list of tags.
        bbox: the dataset footprint as the API gives it (a GeoJSON geometry dict).
        date_added, date_modified: timezone-aware datetimes (or ``None``).
        collection_descriptions: the record's ``collections`` entries (id, types, license).
    """

    def __init__(
        self,
        id: str,
        collections: builtins.list[JSON],
        title: str | None = None,
        registry: str | None = None,
        doi: str | None = None,
        citation: str | None = None,
        *,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        session: Session | None = None,
        **kwargs: Any,
    ) -> None:
        self.id = id
        self.title = title
        self.registry_url = registry
        self.doi = doi
        self.citation = citation
        self.collection_descriptions: builtins.list[JSON] = builtins.list(collections or [])
        self._raw: JSON = {
            "id": id,
            "title": title,
            "doi": doi,
            "citation": citation,
            "collections": self.collection_descriptions,
            "registry": registry,
            **kwargs,
        }
        self.tags: builtins.list[str] = builtins.list(kwargs.get("tags") or [])
        self.description: str | None = kwargs.get("description")
        self.status: str | None = kwargs.get("status")
        self.bbox: JSON | None = kwargs.get("bbox")
        self.documentation_link: str | None = kwargs.get("documentation_link")
        self.creator_contact: JSON | None = kwargs.get("creator_contact")
        self.publications: builtins.list[JSON] | None = kwargs.get("publications")
        self.tutorials: builtins.list[JSON] | None = kwargs.get("tutorials")
        self.tools_applications: builtins.list[JSON] | None = kwargs.get("tools_applications")
        self.date_added = parse_time(kwargs.get("date_added"))
        self.date_modified = parse_time(kwargs.get("date_modified"))
        self._bind(session, api_key, profile, root_url)
        self._collections: CollectionList | None = None
        self._catalog_info: JSON | None = None

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_dict(
        cls,
        record: Mapping[str, Any],
        *,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        session: Session | None = None,
    ) -> Dataset:
        """Build a Dataset from an API record; it keeps the given session settings."""
        if not isinstance(record, Mapping) or not isinstance(record.get("id"), str):
            raise TypeError("record must be a dataset object with a string 'id'")
        fields = {k: v for k, v in record.items() if k not in ("session", "api_key", "profile")}
        fields.setdefault("collections", [])
        ds = cls(**fields, api_key=api_key, profile=profile, root_url=root_url, session=session)
        ds._raw = dict(record)
        return ds

    @classmethod
    def fetch_by_id(
        cls,
        dataset_id: str,
        *,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        session: Session | None = None,
    ) -> Dataset:
        """Fetch a dataset by id.

        Raises:
            EntityDoesNotExist: no dataset has this id.
        """
        s = client.resolve_session(session, api_key=api_key, profile=profile, root_url=root_url)
        return cls.from_dict(client.get_dataset_by_id(dataset_id, session=s), session=s)

    @classmethod
    def fetch_by_doi(
        cls,
        dataset_doi: str,
        *,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        session: Session | None = None,
    ) -> Dataset:
        """Fetch a dataset by DOI (``https://doi.org/`` and ``doi:`` forms accepted).

        Raises:
            EntityDoesNotExist: no dataset has this DOI.
        """
        s = client.resolve_session(session, api_key=api_key, profile=profile, root_url=root_url)
        return cls.from_dict(client.get_dataset_by_doi(dataset_doi, session=s), session=s)

    @classmethod
    def fetch(
        cls,
        dataset_id_or_doi: str,
        *,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        session: Session | None = None,
    ) -> Dataset:
        """Fetch a dataset by id or DOI (see :func:`mlhub_widgets.client.get_dataset`).

        Raises:
            EntityDoesNotExist: no dataset has this id or DOI.
        """
        s = client.resolve_session(session, api_key=api_key, profile=profile, root_url=root_url)
        return cls.from_dict(client.get_dataset(dataset_id_or_doi, session=s), session=s)

    @classmethod
    def list(
        cls,
        tags: str | builtins.list[str] | None = None,
        text: str | builtins.list[str] | None = None,
        *,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        session: Session | None = None,
    ) -> builtins.list[Dataset]:
        """Datasets matching all ``tags`` and any ``text`` phrase (all share one session)."""
        s = client.resolve_session(session, api_key=api_key, profile=profile, root_url=root_url)
        records = client.list_datasets(tags=tags, text=text, session=s)
        return [cls.from_dict(r, session=s) for r in records]

    # -- plain data --------------------------------------------------------------------------
    @property
    def raw(self) -> JSON:
        """The dataset record exactly as the API returned it (do not modify)."""
        return self._raw

    @property
    def geometry(self) -> BaseGeometry | None:
        """The dataset footprint as a shapely geometry (EPSG:4326), or ``None``."""
        if not isinstance(self.bbox, Mapping):
            return None
        from shapely.geometry import shape

        try:
            return shape(self.bbox)
        except (ValueError, TypeError, AttributeError):
            return None

    def to_frame(self) -> gpd.GeoDataFrame:
        """This dataset as a one-row GeoDataFrame with the columns of ``datasets()``."""
        from ..discovery import datasets_frame

        return datasets_frame([self._raw])

    def __str__(self) -> str:
        return f"{self.id}: {self.title}"

    def __repr__(self) -> str:
        return f"<Dataset id={self.id!r} title={self.title!r}>"

    # -- collections -------------------------------------------------------------------------
    @property
    def collections(self) -> CollectionList:
        """The dataset's collections (fetched concurrently on first use, then cached).

        ``.source_imagery`` and ``.labels`` list them by type. Collections the record names but
        the server does not know are skipped with a logged warning.
        """
        if self._collections is None:
            from ..discovery import fetch_collections

            ids = [
                c["id"]
                for c in self.collection_descriptions
                if isinstance(c, Mapping) and isinstance(c.get("id"), str)
            ]
            types = {
                c["id"]: builtins.list(c.get("types") or [])
                for c in self.collection_descriptions
                if isinstance(c, Mapping) and isinstance(c.get("id"), str)
            }
            found = []
            s = self.session
            for d in fetch_collections(s, ids, what=f"dataset {self.id!r}"):
                coll = Collection.from_dict(d, session=s)
                coll.types = types.get(coll.id, [])
                coll._dataset_id = self.id
                coll._dataset_registry = self.registry_url
                found.append(coll)
            self._collections = CollectionList(found)
        return self._collections

    # -- sizes -------------------------------------------------------------------------------
    def _info(self) -> JSON:
        if self._catalog_info is None:
            self._catalog_info = client.get_catalog_info(self.id, session=self.session)
        return self._catalog_info

    @property
    def stac_catalog_size(self) -> int | None:
        """Size in bytes of the dataset's STAC catalogue archive (one cached request)."""
        value = self._info().get("stac_catalog_size")
        return int(value) if isinstance(value, int | float) else None

    @property
    def estimated_dataset_size(self) -> int | None:
        """Estimated size in bytes of all the dataset's assets (same cached request)."""
        value = self._info().get("estimated_dataset_size")
        return int(value) if isinstance(value, int | float) else None

    @property
    def total_archive_size(self) -> int | None:
        """Sum of the sizes of the collections' archives (``None`` if none has an archive)."""
        colls = builtins.list(self.collections)
        if len(colls) > 1:
            with ThreadPoolExecutor(max_workers=min(8, len(colls))) as pool:
                sizes = builtins.list(pool.map(lambda c: c.archive_size, colls))
        else:
            sizes = [c.archive_size for c in colls]
        known = [s for s in sizes if s is not None]
        return sum(known) if known else None

    # -- download ----------------------------------------------------------------------------
    def download(
        self,
        output_dir: str | Path = ".",
        *,
        asset_output_dir: str | Path | None = None,
        catalog_only: bool = False,
        if_exists: str = "resume",
        bbox: BBoxLike | None = None,
        intersects: IntersectsLike | None = None,
        datetime: DatetimeLike = None,
        collection_filter: CollectionFilter | None = None,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        session: Session | None = None,
        workers: int | None = None,
        progress: bool | Callback = True,
        background: bool = False,
    ) -> DownloadSummary | DownloadJob:
        """Download the dataset's STAC catalogue and (filtered) assets.

        Uses this dataset's session (the key/profile/root it was fetched with) unless
        ``api_key``/``profile``/``root_url``/``session`` override it. See
        :func:`mlhub_widgets.download.download_dataset` for the arguments and the on-disk
        layout.

        Returns:
            A :class:`~mlhub_widgets.download.DownloadSummary`, or with ``background=True`` a
            running :class:`~mlhub_widgets.download.DownloadJob`.
        """
        from ..download import download_dataset

        s = self._session_for(api_key, profile, root_url, session)
        return download_dataset(
            self.id,
            output_dir,
            asset_output_dir=asset_output_dir,
            catalog_only=catalog_only,
            if_exists=if_exists,
            bbox=bbox,
            intersects=intersects,
            datetime=datetime,
            collection_filter=collection_filter,
            session=s,
            workers=workers,
            progress=progress,
            background=background,
        )


# --------------------------------------------------------------------------------------------
