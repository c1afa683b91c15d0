"""The ML models of the MLHub API: :class:`MLModel` (a pystac Item)."""

from __future__ import annotations

import builtins
from typing import Any, Self

import pystac

from ..config.session import Session
from . import client
from .session_bound import ApiStacObject

JSON = dict[str, Any]


class MLModel(ApiStacObject, pystac.Item):
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
    def fetch(
        cls,
        model_id: str,
        *,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        session: Session | None = None,
    ) -> Self:
        """Fetch a model by id.

        Raises:
            EntityDoesNotExist: no model has this id.
        """
        return cls._fetch(model_id, api_key, profile, root_url, session)

    @classmethod
    def _get_json(cls, object_id: str, session: Session) -> JSON:
        return client.get_model_by_id(object_id, session=session)

    @classmethod
    def _list_json(cls, session: Session) -> builtins.list[JSON]:
        return client.list_models(session=session)

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
