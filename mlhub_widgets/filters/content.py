"""The ``collection_filter``: which collections, and which asset keys of each, to download."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..types import CollectionFilter
from .common import (
    _list_valid,
    _short_repr,
)


def validate_collection_filter(
    cf: CollectionFilter | None, available: Mapping[str, Iterable[str]] | None = None
) -> dict[str, frozenset[str] | None]:
    """Check ``{collection_id: [asset_key, ...]}``; an empty list or None means all asset keys.

    With ``available`` (collection id → its asset keys), unknown collection ids or asset keys
    raise a :class:`ValueError` listing the valid ones. An empty mapping is returned as ``{}``
    (:class:`AssetFilter` treats it as "no collection filter", as radiant_mlhub does).

    Raises:
        TypeError: not a mapping, a non-string id/key, or a bare string instead of a list.
        ValueError: empty ids/keys, or ids/keys not in ``available``.
    """
    if not isinstance(cf, Mapping):
        raise TypeError(
            "collection_filter must be a dict like {'collection_id': ['asset_key', ...]} "
            f"(an empty list means all assets), got {type(cf).__name__}"
        )
    avail: dict[str, frozenset[str]] | None = None
    if available is not None:
        avail = {cid: frozenset(keys) for cid, keys in available.items()}
    out: dict[str, frozenset[str] | None] = {}
    for cid, keys in cf.items():
        if not isinstance(cid, str):
            raise TypeError(
                f"collection_filter keys must be collection ids (str), got {type(cid).__name__} "
                f"{_short_repr(cid)}"
            )
        if not cid.strip():
            raise ValueError("collection_filter has an empty collection id")
        if avail is not None and cid not in avail:
            raise ValueError(
                f"collection_filter: unknown collection {cid!r}; valid collections: "
                f"{_list_valid(avail)}"
            )
        if keys is None:
            out[cid] = None
            continue
        if isinstance(keys, str | bytes):
            raise TypeError(
                f"collection_filter[{cid!r}] must be a list of asset keys, got the string "
                f"{keys!r}; did you mean [{keys!r}]?"
            )
        if isinstance(keys, Mapping) or not isinstance(keys, Iterable):
            raise TypeError(
                f"collection_filter[{cid!r}] must be a list of asset keys (or an empty list for "
                f"all assets), got {type(keys).__name__}"
            )
        key_set: set[str] = set()
        for key in keys:
            if not isinstance(key, str):
                raise TypeError(
                    f"collection_filter[{cid!r}]: asset keys must be strings, got "
                    f"{type(key).__name__} {_short_repr(key)}"
                )
            if not key.strip():
                raise ValueError(f"collection_filter[{cid!r}] has an empty asset key")
            key_set.add(key)
        if avail is not None:
            unknown = key_set - avail[cid]
            if unknown:
                raise ValueError(
                    f"collection_filter[{cid!r}]: unknown asset key(s) {_list_valid(unknown)}; "
                    f"valid asset keys of {cid!r}: {_list_valid(avail[cid])}"
                )
        out[cid] = frozenset(key_set) if key_set else None
    return out
