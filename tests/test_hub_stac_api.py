"""The hub's STAC API contract: 400s for malformed parameters, media types, service description."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from openapi_spec_validator import validate as validate_openapi

from mlhub_widgets.hub import Hub, serve

KENYA = "ref_african_crops_kenya_02_source"
DEMO_SRC = "mlhub_widgets_demo_crops_source"
GEOJSON = "application/geo+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"


def get_search(hub: Hub, **params: Any) -> requests.Response:
    return requests.get(hub.url + "search", params=params, timeout=10)


def post_search(hub: Hub, body: Any) -> requests.Response:
    return requests.post(hub.url + "search", json=body, timeout=10)


def assert_bad_request(r: requests.Response, *words: str) -> None:
    assert r.status_code == 400, r.text
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert set(body) == {"code", "description"} and body["code"] == "BadRequest"
    for word in words:
        assert word in body["description"], body


# -- datetime ------------------------------------------------------------------------------------

INVALID_DATETIMES = [
    "/",
    "../..",
    "/..",
    "../",
    "/1984-04-12T23:20:50.52Z/1985-04-12T23:20:50.52Z",
    "1985-04-12",  # a date without a time
    "1937-01-01T12:00:27.87+0100",  # zone without the colon
    "1985-12-12T23:20:50.52",  # no zone
    "37-01-01T12:00:27.87Z",
    "1985-13-12T23:20:50.52Z",
    "1985-12-32T23:20:50.52Z",
    "2021-02-29T00:00:00Z",
    "1985-12-01T25:20:50.52Z",
    "1985-12-01T00:60:50.52Z",
    "1990-12-31T23:59:61Z",
    "1985-04-12T23:20:50.Z",
    "1985-04-12T23:20:50,52Z",
    "1986-04-12T23:20:50.52Z/1985-04-12T23:20:50.52Z",  # start after end
    "yesterday",
]
VALID_DATETIMES = [
    "1985-04-12T23:20:50.52Z",
    "1996-12-19T16:39:57-08:00",
    "../1985-04-12T23:20:50.52Z",
    "1985-04-12T23:20:50.52Z/",
    "1985-04-12t23:20:50.000z",
    "2020-07-23T00:00:00.012345678Z",
    "1990-12-31T23:59:60Z",  # a leap second
]


@pytest.mark.parametrize("dt", INVALID_DATETIMES)
def test_invalid_datetime_is_400_everywhere(hub: Hub, dt: str) -> None:
    assert_bad_request(get_search(hub, datetime=dt), "Invalid datetime")
    assert_bad_request(post_search(hub, {"datetime": dt}), "Invalid datetime")
    items = requests.get(
        hub.url + f"collections/{KENYA}/items", params={"datetime": dt}, timeout=10
    )
    assert_bad_request(items, "Invalid datetime")


@pytest.mark.parametrize("dt", VALID_DATETIMES)
def test_valid_datetimes_are_accepted(hub: Hub, dt: str) -> None:
    assert get_search(hub, datetime=dt).status_code == 200
    assert post_search(hub, {"datetime": dt}).status_code == 200


def test_datetime_errors_say_what_to_send(hub: Hub) -> None:
    assert_bad_request(get_search(hub, datetime="2020-04-12"), "needs a time and a zone")
    # an unencoded '+' arrives as a space
    r = requests.get(hub.url + "search?datetime=2020-04-12T10:30:00+02:00", timeout=10)
    assert_bad_request(r, "%2B")
    assert_bad_request(get_search(hub, datetime="../.."), "at least one end")
    assert_bad_request(get_search(hub, datetime="2021-02-29T00:00:00Z"), "no such date")
    assert_bad_request(
        get_search(hub, datetime="2020-01-01T00:00:00Z/2020-13-01T00:00:00Z"),
        "'2020-13-01T00:00:00Z': no such date",
    )
    assert_bad_request(post_search(hub, {"datetime": 2020}), "expected a string")


def test_datetime_offsets_are_honoured(hub: Hub) -> None:
    def ids(dt: str) -> list[str]:
        body = get_search(hub, collections=DEMO_SRC, datetime=dt, limit=100).json()
        return [f["id"] for f in body["features"]]

    utc = ids("2020-04-12T10:30:00Z")
    assert len(utc) == 6
    assert ids("2020-04-12T12:30:00+02:00") == utc
    assert ids("2020-04-12T12:30:00Z") == []


# -- bbox, intersects, limit, unsupported ------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"bbox": "1,2,3"}, ["4 or 6"]),
        ({"bbox": "0"}, ["4 or 6"]),
        ({"bbox": "0,0,0,1,1"}, ["4 or 6"]),
        ({"bbox": "0,0,0,1,1,1,1"}, ["4 or 6"]),
        ({"bbox": "[100.0, 0.0, 105.0, 1.0]"}, ["comma-separated numbers"]),
        ({"bbox": "100.0, 1.0, 105.0, 0.0"}, ["south (1) is greater than north (0)"]),
        ({"bbox": "0,-91,1,0"}, ["outside"]),
        ({"bbox": "0,0,nan,1"}, ["4 or 6"]),
        ({"bbox": "0,0,5,1,1,2"}, ["min height above max height"]),
        ({"bbox": "0,0,1,1", "intersects": '{"type":"Point","coordinates":[0,0]}'}, ["Only one"]),
        ({"intersects": "{not json"}, ["GeoJSON geometry"]),
        ({"intersects": '{"type":"Feature","geometry":null}'}, ["GeoJSON geometry"]),
        ({"limit": "0"}, ["at least 1"]),
        ({"limit": "-1"}, ["at least 1"]),
        ({"limit": "1.5"}, ["integer"]),
        ({"filter": "eo:cloud_cover < 5"}, ["CQL2", "not supported"]),
    ],
)
def test_get_search_400s(hub: Hub, params: dict[str, str], words: list[str]) -> None:
    assert_bad_request(get_search(hub, **params), *words)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"bbox": "100.0, 0.0, 105.0, 1.0"}, ["expected an array"]),
        ({"bbox": ["1", "2", "3", "4"]}, ["expected an array of 4 or 6 numbers"]),
        ({"bbox": [True, 0, 1, 1]}, ["expected an array"]),
        ({"bbox": [0, 0, 1]}, ["4 or 6"]),
        ({"bbox": [100.0, 1.0, 105.0, 0.0]}, ["south"]),
        ({"bbox": [0, 0, 1, 1], "intersects": {"type": "Point", "coordinates": [0, 0]}}, ["Only"]),
        ({"intersects": {"type": "Polygon", "coordinates": "x"}}, ["GeoJSON geometry"]),
        ({"intersects": {"type": "Polygon", "coordinates": []}}, ["empty geometry"]),
        ({"intersects": "POINT (0 0)"}, ["GeoJSON geometry"]),
        ({"limit": True}, ["integer"]),
        ({"limit": 2.5}, ["integer"]),
        ({"limit": "ten"}, ["integer"]),
        ({"collections": [1, 2]}, ["collections"]),
        ({"filter": {"op": "=", "args": []}, "filter-lang": "cql2-json"}, ["CQL2"]),
        ({"fields": ["-geometry"]}, ["fields"]),
        ({"fields": {"include": "id"}}, ["include must be a list"]),
        ({"fields": {"only": ["id"]}}, ["unknown member 'only'"]),
        ({"sortby": "-id"}, ["sortby"]),
        ({"sortby": [{"field": "id", "direction": "down"}]}, ["direction 'down'"]),
        ({"sortby": [{"direction": "asc"}]}, ['"field"']),
        ({"sortby": [{"field": "geometry"}]}, ["cannot sort by 'geometry'"]),
        ({"query": {"eo:cloud_cover": {"below": 5}}}, ["operator 'below'"]),
        ({"query": {"eo:cloud_cover": 5}}, ["expected {<operator>: value}"]),
        ({"query": {"country": {"in": "Kenya"}}}, ["non-empty list"]),
        ({"query": {"country": {"startsWith": 1}}}, ["needs a string"]),
        ({"query": {"eo:cloud_cover": {"lt": True}}}, ["a number or a string"]),
        ({"query": ["eo:cloud_cover"]}, ["Invalid query"]),
    ],
)
def test_post_search_400s(hub: Hub, body: dict[str, Any], words: list[str]) -> None:
    assert_bad_request(post_search(hub, body), *words)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"query": "{not json"}, ["not JSON"]),
        ({"query": '{"eo:cloud_cover": {"lt": [1]}}'}, ["a number or a string"]),
        ({"sortby": "+geometry"}, ["cannot sort by"]),
        ({"fields": "id,-"}, ["empty field name"]),
    ],
)
def test_get_extension_400s(hub: Hub, params: dict[str, str], words: list[str]) -> None:
    assert_bad_request(get_search(hub, **params), *words)


def test_large_limits_are_served_as_the_maximum(hub: Hub) -> None:
    for r in (get_search(hub, limit=1_000_000), post_search(hub, {"limit": 100_000})):
        assert r.status_code == 200
        assert r.json()["context"]["limit"] == 10_000


def test_items_endpoint_400s(hub: Hub) -> None:
    url = hub.url + f"collections/{KENYA}/items"
    for params, word in (
        ({"bbox": "170,0,-170,1"}, "west (170) is greater than east (-170)"),
        ({"limit": "0"}, "at least 1"),
        ({"datetime": "/"}, "Invalid datetime"),
    ):
        assert_bad_request(requests.get(url, params=params, timeout=10), word)


# -- media types and links -----------------------------------------------------------------------


def test_media_types(hub: Hub) -> None:
    item = f"collections/{KENYA}/items/ref_african_crops_kenya_02_tile_02_20190721"
    for path, media in (
        ("", "application/json"),
        ("conformance", "application/json"),
        ("collections", "application/json"),
        (f"collections/{KENYA}", "application/json"),
        (f"collections/{KENYA}/items", GEOJSON),
        (item, GEOJSON),
        ("search", GEOJSON),
        ("openapi.json", OPENAPI),
        ("api.html", "text/html; charset=utf-8"),
    ):
        r = requests.get(hub.url + path, timeout=10)
        assert r.status_code == 200 and r.headers["Content-Type"] == media, path
    assert post_search(hub, {}).headers["Content-Type"] == GEOJSON


def test_items_page_links_point_at_the_page(hub: Hub) -> None:
    url = hub.url + f"collections/{DEMO_SRC}/items"
    first = requests.get(
        url, params={"limit": 5, "datetime": "2021-01-01T00:00:00Z/.."}, timeout=10
    )
    body = first.json()
    links = {link["rel"]: link for link in body["links"]}
    assert links["self"]["type"] == GEOJSON
    assert requests.get(links["self"]["href"], timeout=10).json() == body
    second = requests.get(links["next"]["href"], timeout=10).json()
    own = next(link for link in second["links"] if link["rel"] == "self")
    assert "token=next" in own["href"] and requests.get(own["href"], timeout=10).json() == second
    assert body["numberMatched"] == 72 and body["numberReturned"] == 5
    assert requests.get(url, timeout=10).json()["links"][3]["href"] == url  # no query: bare URL


def test_landing_page_describes_the_service(hub: Hub) -> None:
    landing = requests.get(hub.url, timeout=10).json()
    links = {link["rel"]: link for link in landing["links"]}
    assert links["service-desc"] == {
        "rel": "service-desc",
        "type": OPENAPI,
        "title": "OpenAPI 3.0 description of this API",
        "href": hub.url + "openapi.json",
    }
    assert links["service-doc"]["type"] == "text/html"
    assert links["service-doc"]["href"] == hub.url + "api.html"
    for cls in ("core", "ogcapi-features", "item-search", "item-search#fields", "item-search#sort"):
        assert f"https://api.stacspec.org/v1.0.0/{cls}" in landing["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30" in landing["conformsTo"]
    assert not [c for c in landing["conformsTo"] if "filter" in c]


# -- the OpenAPI document ------------------------------------------------------------------------


def _openapi(hub: Hub) -> dict[str, Any]:
    r = requests.get(hub.url + "openapi.json", headers={"Accept": OPENAPI}, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"] == OPENAPI
    doc: dict[str, Any] = r.json()
    return doc


def test_openapi_document_is_valid_openapi_3_0(hub: Hub) -> None:
    doc = _openapi(hub)
    validate_openapi(doc)
    assert doc["openapi"].startswith("3.0.")
    assert doc["servers"] == [{"url": hub.url}]


def _served(hub: Hub) -> dict[str, tuple[str, str, dict[str, Any] | None]]:
    """One real request per route the hub serves: {path template: (method, path, body)}."""
    item = "ref_african_crops_kenya_02_tile_02_20190721"
    return {
        "/": ("get", "", None),
        "/conformance": ("get", "conformance", None),
        "/openapi.json": ("get", "openapi.json", None),
        "/api.html": ("get", "api.html", None),
        "/collections": ("get", "collections", None),
        "/collections/{collectionId}": ("get", f"collections/{KENYA}", None),
        "/collections/{collectionId}/items": ("get", f"collections/{KENYA}/items", None),
        "/collections/{collectionId}/items/{itemId}": (
            "get",
            f"collections/{KENYA}/items/{item}",
            None,
        ),
        "/search": ("get", "search?limit=1", None),
        "/search#post": ("post", "search", {"limit": 1}),
        "/datasets": ("get", "datasets?tags=crop%20type", None),
        "/datasets/{datasetId}": ("get", "datasets/nasa_marine_debris", None),
        "/datasets/doi/{doi}": ("get", "datasets/doi/10.34911/rdnt.w2rhj3", None),
        "/models": ("get", "models", None),
        "/models/{modelId}": ("get", "models/model-cyclone-wind-estimation-torchgeo-v1", None),
        "/catalog/{datasetId}": ("get", "catalog/nasa_marine_debris", None),
        "/catalog/{datasetId}/info": ("get", "catalog/nasa_marine_debris/info", None),
        "/archive/{collectionId}": ("get", "archive/ref_african_crops_kenya_02_labels", None),
        "/archive/{collectionId}/info": (
            "get",
            "archive/ref_african_crops_kenya_02_labels/info",
            None,
        ),
    }


def test_openapi_lists_every_route_the_hub_serves(hub: Hub) -> None:
    doc = _openapi(hub)
    served = _served(hub)
    documented = {
        (route, method) for route, ops in doc["paths"].items() for method in ops if method != "head"
    }
    assert documented == {(k.split("#")[0], m) for k, (m, _, _) in served.items()}
    for key, (method, path, body) in served.items():
        route = key.split("#")[0]
        op = doc["paths"][route][method]
        r = requests.request(
            method.upper(), hub.url + path, json=body, allow_redirects=False, timeout=30
        )
        assert str(r.status_code) in op["responses"], (route, r.status_code)
        ok = op["responses"][str(r.status_code)]
        if "content" in ok:
            media = r.headers["Content-Type"]
            assert media in ok["content"] or media.split(";")[0] in ok["content"], (route, media)
        if r.status_code == 303:
            assert urlsplit(r.headers["Location"]).netloc == urlsplit(hub.storage_url).netloc
    # an unknown route is not in the document and is 404
    assert requests.get(hub.url + "collections/x/queryables", timeout=10).status_code == 404


def test_openapi_documents_the_key_the_hub_can_require() -> None:
    with serve(require_key="k-doc") as own:
        doc = _openapi(own)
        assert doc["components"]["securitySchemes"]["apiKey"] == {
            "type": "apiKey",
            "in": "query",
            "name": "key",
        }
        keyed = {r for r, ops in doc["paths"].items() if any("security" in o for o in ops.values())}
        for route in sorted(keyed):
            path = _served(own)[route][1] if route != "/search" else "search"
            assert (
                requests.get(own.url + path, allow_redirects=False, timeout=10).status_code == 401
            )
        assert {"/search", "/collections/{collectionId}/items", "/catalog/{datasetId}"} <= keyed
        assert requests.get(own.url + "collections", timeout=10).status_code == 200


def test_service_doc_lists_every_operation(hub: Hub) -> None:
    page = requests.get(hub.url + "api.html", timeout=10).text
    doc = _openapi(hub)
    for route, ops in doc["paths"].items():
        for method, op in ops.items():
            assert f"<code>{method.upper()} {route}</code>" in page
            assert f'id="{op["operationId"]}"' in page
    assert "<script" not in page
    assert f'href="{hub.url}openapi.json"' in page
