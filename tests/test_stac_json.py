"""``stac_json.load_without_item_links``: json.loads's result, minus item/child links, in
bounded memory, whatever the chunk boundaries."""

from __future__ import annotations

import itertools
import json
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlhub_widgets.download.stac_json import DROPPED_RELS, load_without_item_links

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)
LINK = st.fixed_dictionaries(
    {
        "rel": st.sampled_from(["item", "child", "root", "parent", "self", "license"]),
        "href": st.text(max_size=20),
    }
)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def _expected(doc: Any) -> Any:
    if isinstance(doc, dict) and isinstance(doc.get("links"), list):
        doc = dict(doc)
        doc["links"] = [
            link
            for link in doc["links"]
            if not (isinstance(link, dict) and link.get("rel") in DROPPED_RELS)
        ]
    return doc


@settings(max_examples=300, deadline=None)
@given(
    doc=JSON,
    links=st.lists(LINK | JSON, max_size=8),
    with_links=st.booleans(),
    cuts=st.lists(st.integers(0, 10_000), max_size=12),
    indent=st.sampled_from([None, 1]),
)
def test_same_as_json_loads_minus_item_links(
    doc: Any, links: list[Any], with_links: bool, cuts: list[int], indent: int | None
) -> None:
    if with_links:
        doc = {"type": "Collection", "links": links, "other": doc}
    data = json.dumps(doc, indent=indent).encode()
    assert load_without_item_links(_chunks(data, cuts)) == _expected(json.loads(data))


def test_numbers_split_across_chunks_are_whole() -> None:
    assert load_without_item_links([b"12", b"3"]) == 123
    assert load_without_item_links(
        [b'{"a": 1', b"0, ", b'"links": [{"rel": "item"}, 4', b"2]}"]
    ) == {
        "a": 10,
        "links": [42],
    }
    assert load_without_item_links([b"tr", b"ue"]) is True
    assert load_without_item_links([b"[1.", b"5, 2e", b"+7, 3E", b"-1]"]) == [1.5, 2e7, 3e-1]


def test_a_real_collection_keeps_its_other_links() -> None:
    doc = {
        "type": "Collection",
        "id": "c",
        "links": [
            {"rel": "root", "href": "../catalog.json"},
            *({"rel": "item", "href": f"i{i}/i{i}.json"} for i in range(1000)),
            {"rel": "license", "href": "https://example.com/license"},
        ],
        "assets": {"documentation": {"href": "https://example.com/doc.pdf"}},
    }
    data = json.dumps(doc).encode()
    got = load_without_item_links([data[i : i + 97] for i in range(0, len(data), 97)])
    assert got["links"] == [doc["links"][0], doc["links"][-1]]
    assert got["assets"] == doc["assets"] and got["id"] == "c"


@pytest.mark.parametrize(
    "text",
    [b"", b"{", b'{"a": }', b'{"a": 1} x', b'{"a" 1}', b"[1, 2", b'{"links": [1, }', b"\xff{}"],
)
def test_invalid_json_is_an_error(text: bytes) -> None:
    with pytest.raises(ValueError):
        load_without_item_links([text])
    with pytest.raises(ValueError):
        json.loads(text)  # the oracle agrees


def test_byte_order_mark_is_accepted_like_json_loads() -> None:
    data = b"\xef\xbb\xbf" + b'{"links": []}'
    assert load_without_item_links([data[:2], data[2:]]) == json.loads(data) == {"links": []}


def test_memory_stays_small_for_a_huge_collection() -> None:
    """200,000 item links (~17 MB of JSON): json.loads would hold ~100 MB of objects."""
    head = b'{"type": "Collection", "id": "big", "links": ['
    link = b'{"rel": "item", "href": "items/item_%07d/item_%07d.json", "type": "application/json"}'

    def chunks() -> Any:
        yield head
        batch = []
        for i in range(200_000):
            batch.append(link % (i, i))
            if len(batch) == 2000:
                yield b",".join(batch) + (b"," if i < 199_999 else b"")
                batch = []
        yield b'], "title": "Big"}'

    tracemalloc.start()
    try:
        doc = load_without_item_links(chunks())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert doc == {"type": "Collection", "id": "big", "links": [], "title": "Big"}
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB"
