"""The fields, sort and query extensions of the hub's item search, driven through pystac-client.

Reference results come from the unfiltered items endpoint and plain Python, not from the hub's
extension code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from dateutil.parser import isoparse
from pystac_client import Client

from mlhub_widgets.hub import Hub

DEMO_SRC = "mlhub_widgets_demo_crops_source"
DEMO_LAB = "mlhub_widgets_demo_crops_labels"
Item = dict[str, Any]
METHODS = ["GET", "POST"]


@pytest.fixture(scope="module")
def demo(hub: Hub) -> dict[str, list[Item]]:
    """Every demo item, per collection, from the items endpoint (no extension involved)."""
    out = {}
    for cid in (DEMO_SRC, DEMO_LAB):
        url = hub.url + f"collections/{cid}/items?limit=1000"
        out[cid] = requests.get(url, timeout=30).json()["features"]
    assert len(out[DEMO_SRC]) == 144 and len(out[DEMO_LAB]) == 72
    return out


@pytest.fixture(scope="module")
def client(hub: Hub) -> Client:
    return Client.open(hub.url)


def search(client: Client, method: str, **kwargs: Any) -> list[Item]:
    """Every result of a search (several pages: limit 25), as dicts."""
    kwargs.setdefault("limit", 25)
    return list(client.search(method=method, **kwargs).items_as_dicts())


def test_the_hub_claims_the_three_extensions(client: Client) -> None:
    for name in ("FIELDS", "SORT", "QUERY", "ITEM_SEARCH"):
        assert client.conforms_to(name)


# -- fields --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_fields_include_and_exclude(
    client: Client, demo: dict[str, list[Item]], method: str
) -> None:
    # an include list: only what it names (the excluded geometry stays out too)
    got = search(
        client, method, collections=[DEMO_SRC], fields=["-geometry", "properties.datetime"]
    )
    assert got == [
        {"properties": {"datetime": i["properties"]["datetime"]}} for i in demo[DEMO_SRC]
    ]
    # only excludes: the default set without them
    got = search(client, method, collections=[DEMO_LAB], fields=["-geometry"])
    want = [
        {
            **{k: i[k] for k in ("type", "stac_version", "id", "bbox", "links", "assets")},
            "properties": {
                k: i["properties"][k] for k in ("datetime", "start_datetime", "end_datetime")
            },
        }
        for i in demo[DEMO_LAB]  # datetime is null: start and end come with it
    ]
    assert got == want
    # nested: a whole object without one of its members
    got = search(
        client, method, collections=[DEMO_SRC], fields=["id", "properties", "-properties.country"]
    )
    assert got == [
        {"id": i["id"], "properties": {k: v for k, v in i["properties"].items() if k != "country"}}
        for i in demo[DEMO_SRC]
    ]


def test_fields_post_exclude_without_include_keeps_everything_else(
    client: Client, demo: dict[str, list[Item]]
) -> None:
    got = search(client, "POST", collections=[DEMO_SRC], fields={"exclude": ["geometry", "assets"]})
    assert got == [
        {k: v for k, v in i.items() if k not in ("geometry", "assets")} for i in demo[DEMO_SRC]
    ]
    # {} and null are the default set, as is GET's empty fields=
    for body in ({}, None):
        page = client.search(collections=[DEMO_SRC], method="POST", fields=body, max_items=1)
        (item,) = page.items_as_dicts() if body is not None else _post_fields_null(client)
        assert set(item) == {
            "type",
            "stac_version",
            "id",
            "geometry",
            "bbox",
            "links",
            "assets",
        } | {"properties"}
        assert set(item["properties"]) == {"datetime"}


def _post_fields_null(client: Client) -> list[Item]:
    url = client.get_search_link()
    assert url is not None
    body = {"collections": [DEMO_SRC], "limit": 1, "fields": None}
    r = requests.post(url.href, json=body, timeout=10)
    assert r.status_code == 200
    features: list[Item] = r.json()["features"]
    return features


# -- sort ----------------------------------------------------------------------------------------


def _when(value: str | None) -> float:
    return isoparse(value).timestamp() if value else float("nan")


@pytest.mark.parametrize("method", METHODS)
def test_sortby_datetime_both_directions_across_pages(
    client: Client, demo: dict[str, list[Item]], method: str
) -> None:
    items = demo[DEMO_SRC]
    for sortby, reverse in (("-properties.datetime", True), ("+properties.datetime", False)):
        got = search(client, method, collections=[DEMO_SRC], sortby=sortby)
        assert sorted(i["id"] for i in got) == sorted(i["id"] for i in items)
        times = [_when(i["properties"]["datetime"]) for i in got]
        assert times == sorted(times, reverse=reverse)
    assert times != [_when(i["properties"]["datetime"]) for i in items]  # not the stored order


@pytest.mark.parametrize("method", METHODS)
def test_sortby_several_keys(client: Client, demo: dict[str, list[Item]], method: str) -> None:
    got = search(
        client,
        method,
        collections=[DEMO_SRC],
        sortby=["properties.country", "-properties.eo:cloud_cover", "id"],
    )

    def key(i: Item) -> tuple[str, float, str]:
        return (i["properties"]["country"], -i["properties"]["eo:cloud_cover"], i["id"])

    assert [i["id"] for i in got] == [i["id"] for i in sorted(demo[DEMO_SRC], key=key)]
    by_id_desc = search(client, method, collections=[DEMO_SRC, DEMO_LAB], sortby="-id")
    everything = demo[DEMO_SRC] + demo[DEMO_LAB]
    assert [i["id"] for i in by_id_desc] == sorted((i["id"] for i in everything), reverse=True)


@pytest.mark.parametrize("method", METHODS)
def test_sortby_puts_items_without_the_value_last(
    client: Client, demo: dict[str, list[Item]], method: str
) -> None:
    # label items have datetime null (a start/end season instead)
    for sortby in ("properties.datetime", "-properties.datetime"):
        got = search(client, method, collections=[DEMO_LAB, DEMO_SRC], sortby=sortby)
        assert len(got) == 216
        assert all(i["properties"]["datetime"] for i in got[:144])
        assert all(i["properties"]["datetime"] is None for i in got[144:])


# -- query ---------------------------------------------------------------------------------------


def _check(
    client: Client,
    demo: dict[str, list[Item]],
    method: str,
    query: dict[str, Any],
    want: Callable[[dict[str, Any]], bool],
) -> None:
    got = search(client, method, collections=[DEMO_SRC, DEMO_LAB], query=query)
    expected = [i["id"] for cid in (DEMO_SRC, DEMO_LAB) for i in demo[cid] if want(i["properties"])]
    assert expected, query  # the case means something
    assert [i["id"] for i in got] == expected, query


@pytest.mark.parametrize("method", METHODS)
def test_query_comparisons(client: Client, demo: dict[str, list[Item]], method: str) -> None:
    cc = "eo:cloud_cover"
    cases: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
        ({cc: {"lt": 10}}, lambda p: cc in p and p[cc] < 10),
        ({cc: {"lte": 10}}, lambda p: cc in p and p[cc] <= 10),
        ({cc: {"gt": 30}}, lambda p: cc in p and p[cc] > 30),
        ({cc: {"gte": 30, "lt": 35}}, lambda p: cc in p and 30 <= p[cc] < 35),
        ({cc: {"eq": 4}}, lambda p: p.get(cc) == 4),
        ({cc: {"neq": 4}}, lambda p: cc in p and p[cc] != 4),  # label items lack it: no match
        ({"country": {"eq": "Kenya"}}, lambda p: p.get("country") == "Kenya"),
        ({"country": {"in": ["Kenya", "Ghana"]}}, lambda p: p.get("country") in ("Kenya", "Ghana")),
        ({"country": {"startsWith": "Vi"}}, lambda p: str(p.get("country", "")).startswith("Vi")),
        ({"country": {"endsWith": "ana"}}, lambda p: str(p.get("country", "")).endswith("ana")),
        ({"country": {"contains": "ran"}}, lambda p: "ran" in str(p.get("country", ""))),
        ({"instruments": {"in": ["msi"]}}, lambda p: "msi" in p.get("instruments", [])),
        (
            {"properties.datetime": {"gte": "2021-06-01T12:00:00+02:00"}},
            lambda p: (
                bool(p.get("datetime")) and _when(p["datetime"]) >= _when("2021-06-01T10:00:00Z")
            ),
        ),
        (
            {cc: {"lt": 20}, "country": {"in": ["France", "India"]}},
            lambda p: p.get(cc, 99) < 20 and p.get("country") in ("France", "India"),
        ),
    ]
    for query, want in cases:
        _check(client, demo, method, query, want)


def test_query_on_a_missing_property_matches_nothing(client: Client) -> None:
    for op in ({"eq": 1}, {"neq": 1}, {"lt": 1}):
        assert search(client, "POST", collections=[DEMO_SRC], query={"no:such": op}) == []


def test_query_with_other_filters_and_sort(client: Client, demo: dict[str, list[Item]]) -> None:
    box = (33.5, -1.0, 35.0, 1.5)  # the Kenyan tiles
    got = search(
        client,
        "GET",
        collections=[DEMO_SRC],
        bbox=box,
        datetime="2021-01-01T00:00:00Z/..",
        query={"eo:cloud_cover": {"lte": 20}},
        sortby="-properties.eo:cloud_cover",
        fields=["id", "properties.eo:cloud_cover"],
    )
    want = [
        i
        for i in demo[DEMO_SRC]
        if i["properties"]["country"] == "Kenya"
        and i["properties"]["datetime"] >= "2021"
        and i["properties"]["eo:cloud_cover"] <= 20
    ]
    assert want
    assert sorted(i["id"] for i in got) == sorted(i["id"] for i in want)
    covers = [i["properties"]["eo:cloud_cover"] for i in got]
    assert covers == sorted(covers, reverse=True)
    assert all(set(i) == {"id", "properties"} for i in got)
