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
import enum
import logging
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

import pystac
from dateutil.parser import isoparse

from ..config.session import Session, get_session
from ..exceptions import EntityDoesNotExist
from . import client

if TYPE_CHECKING:
    import geopandas as gpd
    from shapely.geometry.base import BaseGeometry

    from ..download import Callback, DownloadJob, DownloadSummary

__all__ = ["Collection", "CollectionList", "CollectionType", "Dataset", "MLModel"]

log = logging.getLogger(__name__)

JSON = dict[str, Any]
_C = TypeVar("_C", bound="Collection")
_M = TypeVar("_M", bound="MLModel")

_UNSET: Any = object()


class CollectionType(enum.Enum):
    """The role of a collection within its dataset."""

    SOURCE = "source_imagery"
    LABELS = "labels"


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return isoparse(value)
    except (ValueError, OverflowError):
        return None


class _SessionBound:
    """Keeps the session an object was obtained with, and derives overrides from it."""

    _mlhub_session: Session | None
    _mlhub_session_kwargs: dict[str, str | None]

    def _bind(
        self,
        session: Session | None,
        api_key: str | None,
        profile: str | None,
        root_url: str | None,
    ) -> None:
        self._mlhub_session = session
        self._mlhub_session_kwargs = {"api_key": api_key, "profile": profile, "root_url": root_url}

    @property
    def session(self) -> Session:
        """The session this object uses for every request (created on first use)."""
        s = getattr(self, "_mlhub_session", None)
        if s is None:
            kwargs = getattr(self, "_mlhub_session_kwargs", None) or {}
            s = self._mlhub_session = get_session(**kwargs)
        return s

    @property
    def session_kwargs(self) -> dict[str, str | None]:
        """The ``api_key``/``profile``/``root_url`` this object was created with."""
        return dict(getattr(self, "_mlhub_session_kwargs", None) or {})

    def _session_for(
        self,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        session: Session | None = None,
    ) -> Session:
        """This object's session, or one built from explicit per-call overrides.

        An override keeps this object's API root unless ``root_url`` is given too.
        """
        if session is not None:
            return client.resolve_session(session)
        if api_key is None and profile is None and root_url is None:
            return self.session
        return get_session(
            api_key=api_key, profile=profile, root_url=root_url or self.session.root_url
        )


# --------------------------------------------------------------------------------------------
# Collection


class Collection(_SessionBound, pystac.Collection):
    """A STAC Collection of the MLHub API (a :class:`pystac.Collection` subclass).

    Create instances with :meth:`fetch`, :meth:`list` or :attr:`Dataset.collections`.
    """

    def __init__(
        self,
        id: str,
        description: str,
        extent: pystac.Extent,
        title: str | None = None,
        stac_extensions: builtins.list[str] | None = None,
        href: str | None = None,
        extra_fields: dict[str, Any] | None = None,
        catalog_type: pystac.CatalogType | None = None,
        license: str = "proprietary",
        keywords: builtins.list[str] | None = None,
        providers: builtins.list[pystac.Provider] | None = None,
        summaries: pystac.Summaries | None = None,
        assets: dict[str, pystac.Asset] | None = None,
        strategy: Any = None,
        *,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        session: Session | None = None,
    ) -> None:
        super().__init__(
            id=id,
            description=description,
            extent=extent,
            title=title,
            stac_extensions=stac_extensions,
            href=href,
            extra_fields=extra_fields,
            catalog_type=catalog_type,
            license=license,
            keywords=keywords,
            providers=providers,
            summaries=summaries,
            assets=assets,
            strategy=strategy,
        )
        self._bind(session, api_key, profile, root_url)
        self._archive_size: Any = _UNSET
        self._dataset_id: str | None = None
        self._dataset_registry: str | None = None
        self.types: builtins.list[str] = []

    @classmethod
    def from_dict(
        cls: type[_C],
        d: dict[str, Any],
        href: str | None = None,
        root: pystac.Catalog | None = None,
        migrate: bool = False,
        preserve_dict: bool = True,
        *,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        session: Session | None = None,
    ) -> _C:
        """Build a Collection from its JSON; it keeps the given session settings."""
        coll = super().from_dict(
            d, href=href, root=root, migrate=migrate, preserve_dict=preserve_dict
        )
        assert isinstance(coll, cls)
        coll._bind(session, api_key, profile, root_url)
        return coll

    @classmethod
    def fetch(
        cls: type[_C],
        collection_id: str,
        *,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        session: Session | None = None,
    ) -> _C:
        """Fetch a collection by id.

        Raises:
            EntityDoesNotExist: no collection has this id.
        """
        s = client.resolve_session(session, api_key=api_key, profile=profile, root_url=root_url)
        return cls.from_dict(client.get_collection(collection_id, session=s), session=s)

    @classmethod
    def list(
        cls: type[_C],
        *,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        session: Session | None = None,
    ) -> builtins.list[_C]:
        """Every collection of the API (all share one session)."""
        s = client.resolve_session(session, api_key=api_key, profile=profile, root_url=root_url)
        return [cls.from_dict(d, session=s) for d in client.list_collections(session=s)]

    def __str__(self) -> str:
        return f"{self.id}: {self.description}"

    def clone(self) -> Collection:
        """A copy that keeps this collection's session, dataset and types."""
        other = super().clone()
        assert isinstance(other, Collection)
        other._mlhub_session = self._mlhub_session
        other._mlhub_session_kwargs = self.session_kwargs
        other.types = builtins.list(self.types)
        other._dataset_id = self._dataset_id
        other._dataset_registry = self._dataset_registry
        return other

    def get_items(self, *args: Any, **kwargs: Any) -> Iterator[pystac.Item]:
        """Not supported: a collection can hold millions of items.

        Use ``mlhub_widgets.items(collection_id, limit=...)`` (a GeoDataFrame, with bbox and
        datetime filters) or :func:`mlhub_widgets.client.list_collection_items`.
        """
        raise NotImplementedError(
            "Collection.get_items() is not supported (collections can hold millions of items). "
            f"Use mlhub_widgets.items({self.id!r}, limit=...) for a GeoDataFrame of items, or "
            f"mlhub_widgets.client.list_collection_items({self.id!r}, limit=...) for the JSON."
        )

    def fetch_item(
        self,
        item_id: str,
        *,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        session: Session | None = None,
    ) -> pystac.Item:
        """Fetch one item of this collection as a :class:`pystac.Item`.

        Raises:
            EntityDoesNotExist: the item does not exist in this collection.
        """
        s = self._session_for(api_key, profile, root_url, session)
        return pystac.Item.from_dict(
            client.get_collection_item(self.id, item_id, session=s), migrate=False
        )

    @property
    def dataset_id(self) -> str | None:
        """The id of the dataset this collection belongs to, when known."""
        return self._dataset_id

    @property
    def registry_url(self) -> str | None:
        """The collection's page on the MLHub registry.

        The dataset's registry page when the collection came from :attr:`Dataset.collections`,
        else ``https://mlhub.earth/<sci:doi>`` as in radiant_mlhub, else ``None``.
        """
        if self._dataset_registry:
            return self._dataset_registry
        doi = self.extra_fields.get("sci:doi")
        return f"https://mlhub.earth/{doi}" if isinstance(doi, str) and doi else None

    @property
    def archive_size(self) -> int | None:
        """Size in bytes of the collection's archive (cached); ``None`` if it has none."""
        if self._archive_size is _UNSET:
            try:
                info = client.get_collection_archive_info(self.id, session=self.session)
            except EntityDoesNotExist:
                self._archive_size = None
            else:
                size = info.get("size")
                self._archive_size = int(size) if isinstance(size, int | float) else None
        size_: int | None = self._archive_size
        return size_

    def download(
        self,
        output_dir: str | Path | None = None,
        *,
        if_exists: str = "resume",
        progress: bool = True,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        session: Session | None = None,
    ) -> Path:
        """Download the collection's archive (``{output_dir}/{id}.tar.gz``).

        Uses this collection's session unless overridden.

        Args:
            output_dir: target directory (default: the current directory).
            if_exists: ``"resume"`` (default), ``"skip"`` or ``"overwrite"``.
            progress: show a progress bar.

        Returns:
            The path of the archive.
        """
        from ..download import download_archive

        s = self._session_for(api_key, profile, root_url, session)
        path: Path = download_archive(
            self.id, output_dir, if_exists=if_exists, session=s, progress=progress
        )
        return path


# --------------------------------------------------------------------------------------------
# Dataset


class CollectionList(Sequence[Collection]):
    """The collections of a dataset, with :attr:`source_imagery` and :attr:`labels` views.

    A collection with both types appears once here and in both views.
    """

    def __init__(self, collections: Sequence[Collection]) -> None:
        self._collections = builtins.list(collections)

    @overload
    def __getitem__(self, index: int) -> Collection: ...

    @overload
    def __getitem__(self, index: slice) -> builtins.list[Collection]: ...

    def __getitem__(self, index: int | slice) -> Collection | builtins.list[Collection]:
        return self._collections[index]

    def __len__(self) -> int:
        return len(self._collections)

    def __iter__(self) -> Iterator[Collection]:
        return iter(self._collections)

    def _of(self, kind: CollectionType) -> builtins.list[Collection]:
        return [c for c in self._collections if kind.value in c.types]

    @property
    def source_imagery(self) -> builtins.list[Collection]:
        """The collections holding source imagery."""
        return self._of(CollectionType.SOURCE)

    @property
    def labels(self) -> builtins.list[Collection]:
        """The collections holding labels."""
        return self._of(CollectionType.LABELS)

    def __repr__(self) -> str:
        return f"CollectionList({[c.id for c in self._collections]!r})"


class Dataset(_SessionBound):
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
        self.date_added = _parse_time(kwargs.get("date_added"))
        self.date_modified = _parse_time(kwargs.get("date_modified"))
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
        bbox: Any = None,
        intersects: Any = None,
        datetime: Any = None,
        collection_filter: Mapping[str, Any] | None = None,
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
# MLModel


class MLModel(_SessionBound, pystac.Item):
    """An ML model of the MLHub API (a :class:`pystac.Item` with the ``ml-model`` extension)."""

    def __init__(
        self,
        id: str,
        geometry: dict[str, Any] | None,
        bbox: builtins.list[float] | None,
        datetime: Any,
        properties: dict[str, Any],
        start_datetime: Any = None,
        end_datetime: Any = None,
        stac_extensions: builtins.list[str] | None = None,
        href: str | None = None,
        collection: str | pystac.Collection | None = None,
        extra_fields: dict[str, Any] | None = None,
        assets: dict[str, pystac.Asset] | None = None,
        *,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        session: Session | None = None,
    ) -> None:
        super().__init__(
            id=id,
            geometry=geometry,
            bbox=bbox,
            datetime=datetime,
            properties=properties,
            start_datetime=start_datetime,
            end_datetime=end_datetime,
            stac_extensions=stac_extensions,
            href=href,
            collection=collection,
            extra_fields=extra_fields,
            assets=assets,
        )
        self._bind(session, api_key, profile, root_url)

    @classmethod
    def from_dict(
        cls: type[_M],
        d: dict[str, Any],
        href: str | None = None,
        root: pystac.Catalog | None = None,
        migrate: bool = False,
        preserve_dict: bool = True,
        *,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        session: Session | None = None,
    ) -> _M:
        """Build a model from its JSON; it keeps the given session settings."""
        model = super().from_dict(
            d, href=href, root=root, migrate=migrate, preserve_dict=preserve_dict
        )
        assert isinstance(model, cls)
        model._bind(session, api_key, profile, root_url)
        return model

    @classmethod
    def fetch(
        cls: type[_M],
        model_id: str,
        *,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        session: Session | None = None,
    ) -> _M:
        """Fetch a model by id.

        Raises:
            EntityDoesNotExist: no model has this id.
        """
        s = client.resolve_session(session, api_key=api_key, profile=profile, root_url=root_url)
        return cls.from_dict(client.get_model_by_id(model_id, session=s), session=s)

    @classmethod
    def list(
        cls: type[_M],
        *,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        session: Session | None = None,
    ) -> builtins.list[_M]:
        """Every ML model of the API."""
        s = client.resolve_session(session, api_key=api_key, profile=profile, root_url=root_url)
        return [cls.from_dict(d, session=s) for d in client.list_models(session=s)]

    @property
    def title(self) -> str | None:
        """The model's title (``properties.title``)."""
        value = self.properties.get("title")
        return value if isinstance(value, str) else None

    @property
    def training_data(self) -> builtins.list[str]:
        """Hrefs of the ``ml-model:train-data`` links (the collections it was trained on)."""
        return [link.href for link in self.links if link.rel == "ml-model:train-data"]

    @property
    def inferencing_image(self) -> str | None:
        """Href of the ``ml-model:inferencing-image`` link (e.g. ``docker://...``)."""
        for link in self.links:
            if link.rel == "ml-model:inferencing-image":
                return link.href
        return None

    def __str__(self) -> str:
        return f"{self.id}: {self.properties.get('title')}"

    def clone(self) -> MLModel:
        """A copy that keeps this model's session."""
        other = super().clone()
        assert isinstance(other, MLModel)
        other._mlhub_session = self._mlhub_session
        other._mlhub_session_kwargs = self.session_kwargs
        return other
