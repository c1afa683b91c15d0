"""Links between items: the label extension's ``source`` links, as the API and a catalogue copy
hold them.

A catalogue copy (tarball, static catalogue, folder dataset) lays items out as
``{collection}/{item}/{item}.json``, so a ``source`` link there is ``../../{c}/{i}/{i}.json``;
the API serves it as ``{API}collections/{c}/items/{i}``. :func:`source_ref` reads either form.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .items import API_ROOT

__all__ = [
    "api_source_link",
    "catalog_copy_links",
    "catalog_source_links",
    "is_absolute",
    "source_ref",
]

JSON = dict[str, Any]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_API_ITEM = re.compile(r"/collections/([^/]+)/items/([^/?#]+)$")
_STRUCTURAL = frozenset({"root", "collection", "parent", "self", "item"})


def is_absolute(href: str) -> bool:
    """A URL with a scheme or an absolute path (not relative to the document)."""
    return href.startswith("/") or _SCHEME.match(href) is not None


def source_ref(cid: str, link: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(collection, item)`` a ``source`` link points at (API URL or relative path), else None.

    ``cid`` is the collection of the item holding the link (relative hrefs are resolved from
    ``{cid}/{item}/``).
    """
    if link.get("rel") != "source":
        return None
    href = str(link.get("href", ""))
    m = _API_ITEM.search(href)
    if m:
        return m.group(1), m.group(2)
    if is_absolute(href):
        return None
    # relative to <collection>/<item>/: ../../<collection>/<item>/<file> or ../<item>/<file>
    parts = posixpath.normpath(posixpath.join(cid, "item", href)).split("/")
    return (parts[-3], parts[-2]) if len(parts) >= 3 else None


def api_source_link(cid: str, item_id: str) -> JSON:
    """The ``source`` link the API serves for item ``item_id`` of collection ``cid``."""
    href = f"{API_ROOT}collections/{cid}/items/{item_id}"
    return {"rel": "source", "type": "application/geo+json", "href": href}


def catalog_source_links(sources: Iterable[tuple[str, str]]) -> str:
    """The ``source`` links of a catalogue copy (a ``,{...}`` fragment, relative hrefs)."""
    return "".join(
        ","
        + json.dumps(
            {"rel": "source", "href": f"../../{c}/{i}/{i}.json", "type": "application/json"},
            separators=(",", ":"),
        )
        for c, i in sources
    )


def catalog_copy_links(item: JSON) -> str:
    """The links of a folder dataset's item that its catalogue copy keeps (a ``,{...}``
    fragment): its own absolute non-structural links, and its relative ``source`` links
    rewritten for the copy's layout."""
    links = [link for link in item.get("links") or [] if isinstance(link, dict)]
    keep = [
        link
        for link in links
        if link.get("rel") not in _STRUCTURAL and is_absolute(str(link.get("href", "")))
    ]
    cid = str(item.get("collection") or "")
    relative_sources = [
        ref
        for link in links
        if not is_absolute(str(link.get("href", ""))) and (ref := source_ref(cid, link))
    ]
    return "".join("," + json.dumps(link, separators=(",", ":")) for link in keep) + (
        catalog_source_links(relative_sources)
    )
