"""The collections of the MLHub API: :class:`Collection` (a pystac Collection) and
:class:`CollectionList`, a dataset's collections with views by type."""

from __future__ import annotations

import builtins
import enum
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar, overload

import pystac

from ..config.session import Session
from ..exceptions import EntityDoesNotExist
from . import client
from .session_bound import SessionBound

log = logging.getLogger(__name__)

JSON = dict[str, Any]
_C = TypeVar("_C", bound="Collection")

_UNSET: Any = object()


class CollectionType(enum.Enum):
    """The role of a collection within its dataset."""

    SOURCE = "source_imagery"
    LABELS = "labels"


class Collection(SessionBound, pystac.Collection):
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
    ) -> Path | str:
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
        path: Path | str = download_archive(
            self.id, output_dir, if_exists=if_exists, session=s, progress=progress
        )
        return path


# --------------------------------------------------------------------------------------------


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
