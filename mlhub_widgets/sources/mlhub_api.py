"""The MLHub API (``/datasets``, ``/collections``, ``/collections/{id}/items``) as a Source."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

from ..config.session import Session, get_session
from ..exceptions import EntityDoesNotExist
from ..mlhub import client
from ..net.http import Credentials
from ..net.settings import NetworkSettings
from .base import JSON, Source

if TYPE_CHECKING:
    from ..filters import AssetFilter

__all__ = ["MLHubApiSource", "items_params"]


def items_params(flt: AssetFilter | None) -> dict[str, str]:
    """Query parameters for the MLHub items endpoint: ``bbox`` and ``datetime``.

    The endpoint has no ``intersects``: its bounding box is sent and items are tested locally;
    a bbox across the antimeridian is sent as its latitude band, likewise.
    """
    if flt is None:
        return {}
    params = flt.to_query_params()
    params.pop("intersects", None)
    if flt.intersects is not None:
        params["bbox"] = ",".join(repr(float(v)) for v in flt.intersects.bounds)
    elif flt.bbox is not None and flt.bbox[0] > flt.bbox[2]:
        params["bbox"] = ",".join(repr(v) for v in (-180.0, flt.bbox[1], 180.0, flt.bbox[3]))
    return params


class MLHubApiSource(Source):
    """The MLHub API behind a :class:`~mlhub_widgets.Session` (today's behaviour).

    Args:
        session: an existing session; else one is made from ``api_key``/``profile``/
            ``root_url`` like :func:`~mlhub_widgets.get_session`.
    """

    kind: ClassVar = "mlhub"
    has_tags: ClassVar[bool] = True
    server_side_filters: ClassVar[bool] = True

    def __init__(
        self,
        session: Session | None = None,
        *,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        network: NetworkSettings | None = None,
    ) -> None:
        if session is None and network is not None:
            session = get_session(
                api_key=api_key, profile=profile, root_url=root_url, network=network
            )
        self.session = client.resolve_session(
            session, api_key=api_key, profile=profile, root_url=root_url
        )
        self.url = self.session.root_url
        self.network = self.session.network

    def credentials(self) -> list[Credentials]:
        """The session's API key, for the API's origin only."""
        return [self.session.credentials]

    def list_datasets(self) -> list[JSON]:
        """``GET /datasets``."""
        return client.list_datasets(session=self.session)

    def search_datasets(
        self, tags: Sequence[str] | None = None, text: Sequence[str] | None = None
    ) -> list[JSON]:
        """``GET /datasets?text=…`` (text filtered by the server, tags ignoring case here)."""
        return client.list_datasets(
            tags=list(tags) if tags else None,
            text=list(text) if text else None,
            session=self.session,
        )

    def get_dataset(self, dataset_id: str) -> JSON:
        """``GET /datasets/{id}`` (or by DOI)."""
        return client.get_dataset(dataset_id, session=self.session)

    def list_collections(self, dataset_id: str | None = None) -> list[JSON]:
        """``GET /collections``, or each collection of a dataset (missing ones skipped)."""
        if dataset_id is None:
            return client.list_collections(session=self.session)
        out = []
        for c in self.get_dataset(dataset_id).get("collections") or ():
            if isinstance(c, Mapping) and isinstance(c.get("id"), str):
                try:
                    out.append(client.get_collection(c["id"], session=self.session))
                except EntityDoesNotExist:
                    continue
        return out

    def get_collection(self, collection_id: str) -> JSON:
        """``GET /collections/{id}``."""
        return client.get_collection(collection_id, session=self.session)

    def iter_items(
        self,
        collection_ids: str | Sequence[str],
        flt: AssetFilter | None = None,
        *,
        limit: int | None = None,
    ) -> Iterator[JSON]:
        """``GET /collections/{id}/items`` pages with ``bbox``/``datetime`` (server-side) and
        the exact filter test locally."""
        ids = [collection_ids] if isinstance(collection_ids, str) else list(collection_ids)
        accept = None
        if flt is not None and not (
            flt.bbox is None and flt.intersects is None and flt.datetime is None
        ):
            accept = flt.item_matches
        params = items_params(flt)
        left = limit
        for cid in ids:
            for features, _ in client.iter_item_pages(
                self.session, cid, limit=left, params=params.items(), accept=accept
            ):
                for f in features:
                    f.setdefault("collection", cid)
                    yield f
                if left is not None:
                    left -= len(features)
            if left is not None and left <= 0:
                return

    def describe(self) -> str:
        """``MLHub API at <root> (anonymous | with an API key)``."""
        who = "anonymous" if self.session.anonymous else "with an API key"
        return f"MLHub API at {self.url} ({who})"
