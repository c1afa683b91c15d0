"""The collections of the MLHub API: :class:`Collection` (a pystac Collection) and
:class:`CollectionList`, a dataset's collections with views by type."""

from __future__ import annotations

import builtins
import enum
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Self, overload

import pystac

from ..config.session import Session
from ..exceptions import EntityDoesNotExist
from . import client
from .session_bound import ApiStacObject

log = logging.getLogger(__name__)

JSON = dict[str, Any]

_UNSET: Any = object()


class CollectionType(enum.Enum):
    """The role of a collection within its dataset."""

    SOURCE = "source_imagery"
    LABELS = "labels"


class Collection(ApiStacObject, pystac.Collection):
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
    def fetch(
        cls,
        collection_id: str,
        *,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        session: Session | None = None,
    ) -> Self:
        """Fetch a collection by id.

        Raises:
            EntityDoesNotExist: no collection has this id.
        """
        return cls._fetch(collection_id, api_key, profile, root_url, session)

    @classmethod
    def _get_json(cls, object_id: str, session: Session) -> JSON:
        return client.get_collection(object_id, session=session)

    @classmethod
    def _list_json(cls, session: Session) -> builtins.list[JSON]:
        return client.list_collections(session=session)

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

    def get_items(self, *ids: str, recursive: bool = False) -> Iterator[pystac.Item]:
        """This collection's items from the API, as :class:`pystac.Item` objects.

        Pages are fetched as the iterator is consumed (a collection can hold millions of items:
        take what you need with :func:`itertools.islice`, or use
        :func:`mlhub_widgets.item_collection` / :func:`mlhub_widgets.items` with ``bbox``,
        ``datetime`` and ``limit``). With ``ids``, only those items are fetched, one request
        each; ids the collection does not have are skipped, as in pystac. Each item's
        collection is this object. ``recursive=True`` also walks child catalogues (an MLHub
        collection has none). This makes pystac's traversal (``walk()``,
        ``get_all_items()``) work.

        Raises:
            EntityDoesNotExist: the collection does not exist (when iteration starts).
        """
        if ids:
            for item_id in ids:
                try:
                    found = client.get_collection_item(self.id, item_id, session=self.session)
                except EntityDoesNotExist:
                    continue
                yield self._item(found)
        else:
            pages = client.list_collection_items(self.id, limit=None, session=self.session)
            for found in pages:
                yield self._item(found)
        if recursive:
            for child in self.get_children():
                yield from child.get_items(*ids, recursive=True)

    def _item(self, data: JSON) -> pystac.Item:
        item = pystac.Item.from_dict(data, migrate=False, preserve_dict=False)
        item.set_collection(self)
        return item

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
