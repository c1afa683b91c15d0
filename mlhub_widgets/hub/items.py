"""The items of one collection, as the API, the search and the catalogue builder need them.

Two sources share one interface (:class:`ItemSource`):

* :class:`MemoryItems` holds parsed items (recorded registry items, items of prebuilt catalogue
  tarballs, folder items linked one file each): small collections.
* :class:`JsonlItems` serves a collection folder's ``items.jsonl`` **lazily**: opening it indexes
  only the byte offsets of its lines (~0.2 s for 300 MB), pages read just their lines, and
  each line is turned into API or catalogue JSON by string operations when it has the common
  shape (no ``links``, absolute asset hrefs), falling back to ``json`` otherwise. An id index and
  the filter arrays (bbox, geometry bounds, time interval) are built on first need in one pass
  that parses only the leading top-level keys of each line; nothing keeps parsed items around.

Items are rendered with placeholder URLs (see :mod:`.store`); callers rewrite them per hub.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from abc import ABC, abstractmethod
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "API_ROOT",
    "BLOB_ROOT",
    "FilterArrays",
    "ItemSource",
    "JsonlItems",
    "MemoryItems",
    "Rendered",
    "api_item_text",
    "geometry_bounds",
    "item_bbox",
    "item_interval",
    "parse_time",
    "tar_item_text",
    "top_level",
]

JSON = dict[str, Any]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Must equal ``store.API_PLACEHOLDER`` (kept here to avoid an import cycle).
API_ROOT = "https://staging.api.radiant.earth/mlhub/v1/"
#: The retired blob store; its URLs are rewritten to the hub's storage origin.
BLOB_ROOT = "https://radiantearth.blob.core.windows.net/"
READ_CHUNK = 16 * 1024 * 1024
NAN = float("nan")


@dataclass(frozen=True, slots=True)
class Rendered:
    """One item ready to be given links.

    ``body`` is the item's JSON object text without ``links`` (canonical asset hrefs, placeholder
    URLs, ``collection`` set); ``extra_links`` is ``""`` or ``",{...},{...}"``: the item's own
    absolute links that a catalogue copy keeps.
    """

    id: str
    body: str
    extra_links: str = ""


@dataclass(frozen=True, slots=True)
class FilterArrays:
    """Per-item filter keys of a collection (``nan`` where unknown).

    ``bbox``: the declared 2-D bbox (else the geometry's bounds), ``bounds``: the geometry's
    bounds (``nan`` without a geometry), ``interval``: ``[start, end]`` in epoch seconds.
    """

    bbox: FloatArray
    bounds: FloatArray
    interval: FloatArray


# -- small JSON helpers ---------------------------------------------------------------------------

_SCAN: Callable[[str, int], tuple[Any, int]] = getattr(json.JSONDecoder(), "scan_once")  # noqa: B009
_SPACE = frozenset(" \t\n\r")


def top_level(text: str, wanted: frozenset[str]) -> JSON:
    """The values of the ``wanted`` top-level keys of JSON object ``text``.

    Parses key by key and stops as soon as every wanted key is found, so keys after them (the
    big ``assets`` object of an item) are never parsed. Raises ``ValueError`` on malformed text.
    """
    out: JSON = {}
    sp = _SPACE
    try:
        i = 0
        while text[i] in sp:
            i += 1
        if text[i] != "{":
            raise ValueError("not a JSON object")
        i += 1
        while text[i] in sp:
            i += 1
        if text[i] == "}":
            return out
        while True:
            if text[i] != '"':
                raise ValueError("expected a key")
            key, i = _SCAN(text, i)
            while text[i] in sp:
                i += 1
            if text[i] != ":":
                raise ValueError("expected ':'")
            i += 1
            while text[i] in sp:
                i += 1
            value, i = _SCAN(text, i)
            if key in wanted:
                out[key] = value
                if len(out) == len(wanted):
                    return out
            while text[i] in sp:
                i += 1
            if text[i] == ",":
                i += 1
                while text[i] in sp:
                    i += 1
            elif text[i] == "}":
                return out
            else:
                raise ValueError("expected ',' or '}'")
    except (StopIteration, IndexError):
        raise ValueError("malformed JSON object") from None


def parse_time(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 timestamp or a date (UTC if no offset)."""
    t = text.strip()
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    m = re.match(r"^(.*[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?)([+-]\d\d)(\d\d)$", t)
    if m:  # "+0200" -> "+02:00"
        t = f"{m.group(1)}{m.group(2)}:{m.group(3)}"
    dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def geometry_bounds(geom: Any) -> tuple[float, float, float, float] | None:
    """``(minx, miny, maxx, maxy)`` of a GeoJSON geometry's coordinates (None if empty)."""
    if not isinstance(geom, dict):
        return None
    xs: list[float] = []
    ys: list[float] = []

    def walk(c: Any) -> None:
        if isinstance(c, list) and c and isinstance(c[0], int | float):
            xs.append(float(c[0]))
            ys.append(float(c[1]))
        elif isinstance(c, list):
            for sub in c:
                walk(sub)

    walk(geom.get("coordinates"))
    for g in geom.get("geometries") or []:
        if isinstance(g, dict):
            walk(g.get("coordinates"))
    if not xs:
        return None
    return (min(xs), min(ys), max(xs), max(ys))


def _bbox_of(bbox: Any) -> tuple[float, float, float, float] | None:
    if isinstance(bbox, list) and len(bbox) in (4, 6):
        try:
            if len(bbox) == 6:
                return (float(bbox[0]), float(bbox[1]), float(bbox[3]), float(bbox[4]))
            return (float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3]))
        except (TypeError, ValueError):
            return None
    return None


def item_bbox(item: JSON) -> tuple[float, float, float, float] | None:
    """The 2-D bbox of a STAC item (from ``bbox``, else from its geometry)."""
    return _bbox_of(item.get("bbox")) or geometry_bounds(item.get("geometry"))


def item_interval(item: JSON) -> tuple[float, float] | None:
    """The time interval of a STAC item: ``[datetime, datetime]`` or ``[start, end]``."""
    props = item.get("properties") or {}
    if not isinstance(props, dict):
        return None
    try:
        if props.get("datetime"):
            t = parse_time(str(props["datetime"]))
            return (t, t)
        start, end = props.get("start_datetime"), props.get("end_datetime")
        if start or end:
            lo = parse_time(str(start)) if start else float("-inf")
            hi = parse_time(str(end)) if end else float("inf")
            return (lo, hi)
    except ValueError:
        return None
    return None


def _json(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _with_links(body: str, links: str) -> str:
    """``body`` (a JSON object) with ``"links": [links]`` appended."""
    end = body.rstrip()
    if end.endswith("{}"):
        return f'{end[:-1]}"links":[{links}]}}'
    return f'{end[:-1]},"links":[{links}]}}'


def api_item_text(collection_id: str, r: Rendered) -> str:
    """The item as ``/collections/{cid}/items`` serves it (placeholder URLs)."""
    col = f"{API_ROOT}collections/{collection_id}"
    ej = r.id.replace("\\", "\\\\").replace('"', '\\"')
    links = (
        f'{{"rel":"collection","type":"application/json","href":"{col}"}},'
        f'{{"rel":"parent","type":"application/json","href":"{col}"}},'
        f'{{"rel":"root","type":"application/json","href":"{API_ROOT}"}},'
        f'{{"rel":"self","type":"application/geo+json","href":"{col}/items/{ej}"}}'
    )
    return _with_links(r.body, links)


def tar_item_text(r: Rendered) -> str:
    """The item as a catalogue tarball (or the static catalogue) holds it: relative links."""
    ej = r.id.replace("\\", "\\\\").replace('"', '\\"')
    links = (
        '{"rel":"root","href":"../../catalog.json","type":"application/json"},'
        '{"rel":"collection","href":"../collection.json","type":"application/json"},'
        '{"rel":"parent","href":"../collection.json","type":"application/json"},'
        f'{{"rel":"self","href":"{ej}.json","type":"application/json"}}'
    )
    return _with_links(r.body, links + r.extra_links)


# -- sources --------------------------------------------------------------------------------------


class ItemSource(ABC):
    """The items of one collection, in serving order."""

    def __init__(self, collection_id: str) -> None:
        self.collection_id = collection_id
        self._arrays: FilterArrays | None = None
        self._lock = threading.RLock()

    @abstractmethod
    def __len__(self) -> int:
        """Number of items."""

    @abstractmethod
    def position(self, item_id: str) -> int | None:
        """The index of item ``item_id``, or None."""

    @abstractmethod
    def ids(self) -> Sequence[str]:
        """Every item id, in order."""

    @abstractmethod
    def rendered(self, start: int, stop: int) -> list[Rendered]:
        """Items ``start..stop-1`` ready for links."""

    @abstractmethod
    def item(self, i: int) -> JSON:
        """Item ``i`` as the API serves it, parsed (placeholder URLs)."""

    @abstractmethod
    def _compute_arrays(self) -> FilterArrays:
        """Build the filter arrays (called once)."""

    def api_page(self, positions: Sequence[int]) -> list[tuple[str, str]]:
        """``(id, API JSON)`` of the items at ``positions`` (placeholder URLs)."""
        return [(r.id, api_item_text(self.collection_id, r)) for r in self._pick(positions)]

    def ready(self, *, arrays: bool = False, item_id: str | None = None) -> bool:
        """Whether answering needs no indexing pass (else callers run it off the event loop)."""
        return not arrays or self._arrays is not None

    def _pick(self, positions: Sequence[int]) -> list[Rendered]:
        out: list[Rendered] = []
        run_start = -1
        prev = -2
        for p in [*positions, -1]:
            if p == prev + 1:
                prev = p
                continue
            if run_start >= 0:
                out += self.rendered(run_start, prev + 1)
            run_start = prev = p
        return out

    def iter_rendered(
        self, batch: int = 2048, rewrite: Callable[[str], str] | None = None
    ) -> Iterator[Rendered]:
        """Every item in order (for catalogue building), with ``rewrite`` applied if given."""
        for start in range(0, len(self), batch):
            for r in self.rendered(start, min(len(self), start + batch)):
                if rewrite is not None:
                    r = Rendered(r.id, rewrite(r.body), rewrite(r.extra_links))
                yield r

    def geometry(self, i: int) -> JSON | None:
        """The GeoJSON geometry of item ``i``."""
        geom = self.item(i).get("geometry")
        return geom if isinstance(geom, dict) else None

    def properties(self, positions: Sequence[int]) -> list[JSON]:
        """The ``properties`` object of the items at ``positions`` ({} where there is none).

        Parses each item only up to its ``properties`` (not its assets), for the query and
        sort extensions of the search.
        """
        out: list[JSON] = []
        for r in self._pick(positions):
            try:
                props = top_level(r.body, _PROPS_KEYS).get("properties")
            except ValueError:
                props = json.loads(r.body).get("properties")
            out.append(props if isinstance(props, dict) else {})
        return out

    def arrays(self) -> FilterArrays:
        """The filter arrays (built on first use, then cached)."""
        if self._arrays is None:
            with self._lock:
                if self._arrays is None:
                    self._arrays = self._compute_arrays()
        return self._arrays


def _keys_of(item: JSON) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    bounds = geometry_bounds(item.get("geometry"))
    bbox = _bbox_of(item.get("bbox")) or bounds
    interval = item_interval(item)
    return (bbox or (NAN,) * 4, bounds or (NAN,) * 4, interval or (NAN, NAN))


def _arrays_of(
    keys: list[tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]],
) -> FilterArrays:
    n = len(keys)
    return FilterArrays(
        np.array([k[0] for k in keys], dtype=np.float64).reshape(n, 4),
        np.array([k[1] for k in keys], dtype=np.float64).reshape(n, 4),
        np.array([k[2] for k in keys], dtype=np.float64).reshape(n, 2),
    )


class MemoryItems(ItemSource):
    """Parsed items held in memory.

    Args:
        collection_id: the collection.
        items: the items exactly as the API serves them (with their ``links``).
        extra_links: per item, the ``Rendered.extra_links`` of a catalogue copy.
    """

    def __init__(
        self,
        collection_id: str,
        items: list[JSON],
        extra_links: list[str] | None = None,
    ) -> None:
        super().__init__(collection_id)
        self.items = items
        self._extra = extra_links
        self._texts: list[str | None] = [None] * len(items)
        self._index: dict[str, int] = {}
        for i, item in enumerate(items):
            self._index.setdefault(str(item.get("id")), i)

    def __len__(self) -> int:
        return len(self.items)

    def position(self, item_id: str) -> int | None:
        return self._index.get(item_id)

    def ids(self) -> list[str]:
        return [str(item.get("id")) for item in self.items]

    def rendered(self, start: int, stop: int) -> list[Rendered]:
        out = []
        for i in range(start, min(stop, len(self.items))):
            item = self.items[i]
            body = {k: v for k, v in item.items() if k != "links"}
            body["collection"] = self.collection_id
            extra = self._extra[i] if self._extra is not None else ""
            out.append(Rendered(str(item.get("id")), _json(body), extra))
        return out

    def api_page(self, positions: Sequence[int]) -> list[tuple[str, str]]:
        out = []
        texts = self._texts
        for p in positions:
            text = texts[p]
            if text is None:
                text = texts[p] = _json(self.items[p])
            out.append((str(self.items[p].get("id")), text))
        return out

    def item(self, i: int) -> JSON:
        return self.items[i]

    def properties(self, positions: Sequence[int]) -> list[JSON]:
        out: list[JSON] = []
        for p in positions:
            props = self.items[p].get("properties")
            out.append(props if isinstance(props, dict) else {})
        return out

    def _compute_arrays(self) -> FilterArrays:
        return _arrays_of([_keys_of(item) for item in self.items])


_PROPS_KEYS = frozenset({"properties"})
_REL_HREF = re.compile(r'"href":\s*"(?![A-Za-z][A-Za-z0-9+.-]*:|/)')
_ID_KEYS = frozenset({"id"})
_ID_RE = re.compile(r'"id":\s*"([^"\\]*)"')
_FILTER_KEYS = frozenset({"id", "bbox", "geometry", "properties"})


class JsonlItems(ItemSource):
    """A collection's ``items.jsonl``, served lazily (see the module docstring).

    Args:
        collection_id: the collection.
        path: the ``items.jsonl`` file.
        canonical: slow path for one parsed line (``collection`` already set): returns the item
            without ``links`` as the API serves it (canonical asset hrefs) and the extra links
            fragment of its catalogue copy.
    """

    def __init__(
        self,
        collection_id: str,
        path: Path,
        canonical: Callable[[JSON], tuple[JSON, str]],
    ) -> None:
        super().__init__(collection_id)
        self.path = path
        self._canonical = canonical
        self._col_key = f'"collection":"{collection_id}"'
        self._starts, self._ends = _line_offsets(path)
        self._ids: list[str] | None = None
        self._index: dict[str, int] | None = None
        self._recent: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._starts)

    # -- reading -----------------------------------------------------------------------------

    def _lines(
        self, start: int, stop: int, rewrite: Callable[[str], str] | None = None
    ) -> list[str]:
        stop = min(stop, len(self._starts))
        if start >= stop:
            return []
        base = int(self._starts[start])
        with open(self.path, "rb") as fh:
            fh.seek(base)
            text = fh.read(int(self._ends[stop - 1]) - base).decode("utf-8")
        if rewrite is not None:
            text = rewrite(text)
        lines = text.split("\n")
        if len(lines) != stop - start:  # blank lines in between
            lines = [line for line in lines if line.strip()]
        return lines

    def _iter_lines(self) -> Iterator[str]:
        for start in range(0, len(self), 4096):
            yield from self._lines(start, start + 4096)

    # -- rendering ---------------------------------------------------------------------------

    def _render(self, line: str) -> tuple[Rendered, bool]:
        """The item of one line, and whether the string fast path made it."""
        text = line.strip()
        if '"links"' not in text and text.endswith("}") and _REL_HREF.search(text) is None:
            has_col = '"collection"' in text
            if not has_col or self._col_key in text:
                iid: Any = None
                m = _ID_RE.search(text)
                if (
                    m is not None
                    and text[m.start() - 1] != "\\"
                    and text.find("{", 1, m.start()) < 0
                ):
                    iid = m.group(1)
                else:
                    with contextlib.suppress(ValueError):
                        iid = top_level(text, _ID_KEYS).get("id")
                if isinstance(iid, str):
                    if not has_col:
                        text = f'{text[:-1]},"collection":"{self.collection_id}"}}'
                    return Rendered(iid, text), True
        item = json.loads(text)
        item.setdefault("collection", self.collection_id)
        body, extra = self._canonical(item)
        body = {k: v for k, v in body.items() if k != "links"}
        body["collection"] = self.collection_id
        return Rendered(str(item.get("id")), _json(body), extra), False

    def iter_rendered(
        self, batch: int = 4096, rewrite: Callable[[str], str] | None = None
    ) -> Iterator[Rendered]:
        # Rewriting a whole batch of lines at once is much cheaper than item by item.
        for start in range(0, len(self), batch):
            for line in self._lines(start, start + batch, rewrite):
                r, fast = self._render(line)
                if rewrite is not None and not fast:
                    r = Rendered(r.id, rewrite(r.body), rewrite(r.extra_links))
                yield r

    def rendered(self, start: int, stop: int) -> list[Rendered]:
        out = [self._render(line)[0] for line in self._lines(start, stop)]
        recent = self._recent
        if len(recent) > 100_000:
            recent.clear()
        for offset, r in enumerate(out):
            recent[r.id] = start + offset
        return out

    def item(self, i: int) -> JSON:
        (r,) = self.rendered(i, i + 1)
        parsed: JSON = json.loads(api_item_text(self.collection_id, r))
        return parsed

    def geometry(self, i: int) -> JSON | None:
        (line,) = self._lines(i, i + 1)
        try:
            geom = top_level(line, frozenset({"geometry"})).get("geometry")
        except ValueError:
            geom = json.loads(line).get("geometry")
        return geom if isinstance(geom, dict) else None

    # -- indexes -----------------------------------------------------------------------------

    def ready(self, *, arrays: bool = False, item_id: str | None = None) -> bool:
        if arrays and self._arrays is None:
            return False
        return item_id is None or item_id in self._recent or self._index is not None

    def position(self, item_id: str) -> int | None:
        hit = self._recent.get(item_id)
        if hit is not None:
            return hit
        self.ids()
        assert self._index is not None
        return self._index.get(item_id)

    def ids(self) -> list[str]:
        if self._ids is None:
            with self._lock:
                if self._ids is None:
                    ids = []
                    for line in self._iter_lines():
                        try:
                            iid = top_level(line, _ID_KEYS).get("id")
                        except ValueError:
                            iid = json.loads(line).get("id")
                        ids.append(str(iid))
                    self._set_ids(ids)
        assert self._ids is not None
        return self._ids

    def _set_ids(self, ids: list[str]) -> None:
        index: dict[str, int] = {}
        for i, iid in enumerate(ids):
            index.setdefault(iid, i)
        self._index = index
        self._ids = ids

    def _compute_arrays(self) -> FilterArrays:
        keys = []
        ids = []
        for line in self._iter_lines():
            try:
                found = top_level(line, _FILTER_KEYS)
            except ValueError:
                found = json.loads(line)
            ids.append(str(found.get("id")))
            keys.append(_keys_of(found))
        if self._ids is None:
            self._set_ids(ids)
        return _arrays_of(keys)


def _line_offsets(path: Path) -> tuple[IntArray, IntArray]:
    """Start and end (exclusive, before the newline) of every non-blank line of ``path``.

    One streaming pass in 16 MiB chunks (``bytes.find`` from newline to newline: faster than a
    numpy scan for lines of a few hundred bytes or more); lines not starting with ``{`` are
    re-read one by one to drop the whitespace-only ones.
    """
    ends = array("q")
    odd: list[int] = []  # lines whose first byte is not "{"
    pos = 0
    first = -1  # first byte of the line under way (-1: it starts in the next chunk)
    with open(path, "rb") as fh:
        while chunk := fh.read(READ_CHUNK):
            if first < 0:
                first = chunk[0]
            find = chunk.find
            last = len(chunk) - 1
            i = find(b"\n")
            while i >= 0:
                if first != 123:
                    odd.append(len(ends))
                ends.append(pos + i)
                first = chunk[i + 1] if i < last else -1
                i = find(b"\n", i + 1)
            pos += len(chunk)
    if pos > (ends[-1] + 1 if ends else 0):  # a last line without a newline
        if first != 123:
            odd.append(len(ends))
        ends.append(pos)
    e = np.frombuffer(ends, dtype=np.int64).copy() if ends else np.zeros(0, dtype=np.int64)
    s = np.concatenate(([0], e[:-1] + 1)).astype(np.int64) if len(e) else e.copy()
    blank: list[int] = []
    with open(path, "rb") as fh:
        for i in odd:
            fh.seek(int(s[i]))
            if not fh.read(int(e[i] - s[i])).strip():
                blank.append(i)
    if blank:
        mask = np.ones(len(s), dtype=bool)
        mask[blank] = False
        s, e = s[mask], e[mask]
    return s, e


def is_relative_href(href: str) -> bool:
    """Whether ``href`` is relative (no scheme, not rooted)."""
    return not (href.startswith("/") or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", href))
