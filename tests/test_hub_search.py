"""STAC API Item Search (GET/POST /search) of the hub, against an independent computation.

The reference results come from the catalogue tarballs and the items endpoint (not from the
hub's search code): geometry tests with shapely, datetimes parsed with dateutil.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import shapely
from dateutil.parser import isoparse
from shapely.geometry import shape

from mlhub_widgets.hub import Hub, serve
from mlhub_widgets.hub.sample import make_synthetic_dataset

KENYA = "ref_african_crops_kenya_02_source"
DEMO_SRC = "mlhub_widgets_demo_crops_source"
DEMO_LAB = "mlhub_widgets_demo_crops_labels"
Item = dict[str, Any]


def tar_items(hub: Hub, ds_id: str) -> list[Item]:
    """The STAC items of a dataset's catalogue tarball."""
    data = requests.get(hub.url + f"catalog/{ds_id}", timeout=30).content
    out = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for m in tf:
            if m.isfile() and m.name.endswith(".json"):
                fh = tf.extractfile(m)
                assert fh is not None
                try:
                    obj = json.loads(fh.read())
                except ValueError:
                    continue
                if isinstance(obj, dict) and obj.get("type") == "Feature" and "assets" in obj:
                    out.append(obj)
    return out


@pytest.fixture(scope="module")
def universe(hub: Hub) -> list[Item]:
    """Every item the bundled hub serves, from the catalogue tarballs of all its datasets."""
    items = []
    for ds in hub.dataset_ids():
        if hub.store.datasets[ds].has_catalog:
            items += tar_items(hub, ds)
    page = requests.get(hub.url + f"collections/{KENYA}/items?limit=1000", timeout=30).json()
    assert {f["id"] for f in page["features"]} <= {it["id"] for it in items}
    assert len(items) == 2274
    return items


def interval(item: Item) -> tuple[float, float] | None:
    props = item["properties"]
    if props.get("datetime"):
        t = isoparse(props["datetime"]).timestamp()
        return t, t
    lo, hi = props.get("start_datetime"), props.get("end_datetime")
    if not lo and not hi:
        return None
    return (
        isoparse(lo).timestamp() if lo else float("-inf"),
        isoparse(hi).timestamp() if hi else float("inf"),
    )


def expected(
    items: list[Item],
    *,
    collections: list[str] | None = None,
    ids: list[str] | None = None,
    geom: Any = None,
    dt: tuple[str | None, str | None] | None = None,
) -> set[tuple[str, str]]:
    """``(collection, id)`` of the items matching, computed directly."""
    out = set()
    for it in items:
        if collections is not None and it["collection"] not in collections:
            continue
        if ids is not None and it["id"] not in ids:
            continue
        if geom is not None and (
            not it.get("geometry") or not shape(it["geometry"]).intersects(geom)
        ):
            continue
        if dt is not None:
            span = interval(it)
            lo = isoparse(dt[0]).timestamp() if dt[0] else float("-inf")
            hi = isoparse(dt[1]).timestamp() if dt[1] else float("inf")
            if span is None or span[0] > hi or span[1] < lo:
                continue
        out.add((it["collection"], it["id"]))
    return out


def search_all(hub: Hub, method: str = "GET", **params: Any) -> list[Item]:
    """Every result of a search, following ``next`` links (GET or POST as they say)."""
    params.setdefault("limit", 10_000)
    if method == "GET":
        r = requests.get(hub.url + "search", params=params, timeout=30)
    else:
        r = requests.post(hub.url + "search", json=params, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    feats = list(body["features"])
    total = body["numberMatched"]
    assert body["context"] == {
        "limit": params["limit"],
        "matched": total,
        "returned": body["numberReturned"],
    }
    while True:
        nxt = [link for link in body["links"] if link["rel"] == "next"]
        if not nxt:
            break
        link = nxt[0]
        assert link["method"] == method
        if method == "GET":
            r = requests.get(link["href"], timeout=30)
        else:
            assert link["href"] == hub.url + "search" and link["merge"] is False
            r = requests.post(link["href"], json=link["body"], timeout=30)
        body = r.json()
        assert body["numberMatched"] == total
        assert body["numberReturned"] == len(body["features"])
        feats += body["features"]
    assert len(feats) == total
    return feats


def pairs(feats: list[Item]) -> set[tuple[str, str]]:
    got = [(f["collection"], f["id"]) for f in feats]
    assert len(got) == len(set(got)), "duplicate results"
    return set(got)


def test_everything_and_paging_get_post(hub: Hub, universe: list[Item]) -> None:
    whole = search_all(hub)
    assert pairs(whole) == expected(universe)
    order = [(f["collection"], f["id"]) for f in whole]
    # Results come collection by collection.
    seen: list[str] = []
    for cid, _ in order:
        if not seen or seen[-1] != cid:
            assert cid not in seen
            seen.append(cid)
    for method in ("GET", "POST"):
        paged = search_all(hub, method, limit=250)
        assert [(f["collection"], f["id"]) for f in paged] == order
    # previous links lead back
    first = requests.get(hub.url + "search", params={"limit": 7}, timeout=10).json()
    second = requests.get(
        next(x["href"] for x in first["links"] if x["rel"] == "next"), timeout=10
    ).json()
    assert [f["id"] for f in second["features"]] == [i for _, i in order[7:14]]
    back = requests.get(
        next(x["href"] for x in second["links"] if x["rel"] == "previous"), timeout=10
    ).json()
    assert back["features"] == first["features"]
    prev_post = requests.post(hub.url + "search", json={"limit": 7, "token": "next:7"}, timeout=10)
    post_back = next(x for x in prev_post.json()["links"] if x["rel"] == "previous")
    assert post_back["method"] == "POST" and post_back["body"]["limit"] == 7
    again = requests.post(post_back["href"], json=post_back["body"], timeout=10).json()
    assert [f["id"] for f in again["features"]] == [f["id"] for f in first["features"]]


def test_items_are_served_like_the_items_endpoint(hub: Hub) -> None:
    feats = search_all(hub, ids=f"{KENYA[:-7]}_tile_02_20190721", collections=KENYA)
    assert len(feats) == 1
    one = requests.get(
        hub.url + f"collections/{KENYA}/items/{KENYA[:-7]}_tile_02_20190721", timeout=10
    ).json()
    assert feats[0] == one


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_bbox(hub: Hub, universe: list[Item], method: str) -> None:
    box = (34.0, 0.3, 34.3, 0.7)  # western Kenya: the kenya collection and demo tiles
    bbox: Any = ",".join(map(str, box)) if method == "GET" else list(box)
    got = pairs(search_all(hub, method, bbox=bbox))
    want = expected(universe, geom=shapely.box(*box))
    assert got == want
    assert {c for c, _ in want} >= {KENYA, DEMO_SRC, DEMO_LAB}
    tiny = pairs(search_all(hub, method, bbox=bbox, collections=[DEMO_SRC]))
    assert tiny == {p for p in want if p[0] == DEMO_SRC}


def test_intersects_tests_geometries_not_bboxes(hub: Hub, universe: list[Item]) -> None:
    # A thin diagonal triangle across the demo's Kenya tiles: its bbox covers all six tiles, the
    # triangle itself misses some of them.
    tri = {
        "type": "Polygon",
        "coordinates": [[[34.14, 0.4905], [34.2432, 0.4095], [34.2432, 0.4105], [34.14, 0.4905]]],
    }
    geom = shape(tri)
    want = expected(universe, geom=geom)
    by_bbox = expected(universe, geom=shapely.box(*geom.bounds))
    assert 0 < len(want) < len(by_bbox)  # the exact test matters here
    assert pairs(search_all(hub, "POST", intersects=tri)) == want
    assert pairs(search_all(hub, "GET", intersects=json.dumps(tri))) == want
    point = {"type": "Point", "coordinates": [34.2, 0.45]}
    assert pairs(search_all(hub, "POST", intersects=point)) == expected(universe, geom=shape(point))


@pytest.mark.parametrize(
    "dt",
    [
        ("2020-04-01T00:00:00Z", "2020-08-01T00:00:00Z"),
        (None, "2019-12-31T23:59:59Z"),
        ("2021-06-01T00:00:00Z", None),
        ("2020-04-12T10:30:00Z", "2020-04-12T10:30:00Z"),
    ],
)
def test_datetime(hub: Hub, universe: list[Item], dt: tuple[str | None, str | None]) -> None:
    if dt[0] == dt[1]:
        text = str(dt[0])
    else:
        text = f"{dt[0] or '..'}/{dt[1] or '..'}"
    want = expected(universe, dt=dt)
    assert want
    assert pairs(search_all(hub, "GET", datetime=text)) == want
    assert pairs(search_all(hub, "POST", datetime=text)) == want
    # ranges overlap: the label items (start/end seasons) are found by an instant inside them
    if dt[0] and dt[1] and dt[0] != dt[1]:
        assert any(c == DEMO_LAB for c, _ in want)


def test_combined_filters_and_antimeridian(hub: Hub, universe: list[Item]) -> None:
    got = pairs(
        search_all(
            hub,
            "POST",
            collections=[DEMO_SRC, DEMO_LAB, "no_such_collection"],
            bbox=[-1.0, 9.0, 2.0, 49.0],
            datetime="2021-01-01T00:00:00Z/2021-12-31T23:59:59Z",
        )
    )
    want = expected(
        universe,
        collections=[DEMO_SRC, DEMO_LAB],
        geom=shapely.box(-1.0, 9.0, 2.0, 49.0),
        dt=("2021-01-01T00:00:00Z", "2021-12-31T23:59:59Z"),
    )
    assert got == want and want
    ids = sorted(i for _, i in want)[:3]
    assert pairs(search_all(hub, "GET", ids=",".join(ids))) == {p for p in want if p[1] in ids}
    across = pairs(search_all(hub, "GET", bbox="170,-60,-170,60"))
    world = shapely.MultiPolygon([shapely.box(170, -60, 180, 60), shapely.box(-180, -60, -170, 60)])
    assert across == expected(universe, geom=world)


@pytest.mark.parametrize(
    ("method", "params", "detail"),
    [
        ("GET", {"bbox": "1,2,3"}, "Invalid bbox 1,2,3: expected 4 or 6 numbers"),
        ("GET", {"limit": "0"}, "Invalid limit '0': must be at least 1"),
        ("GET", {"limit": "x"}, "Invalid limit 'x': expected an integer"),
        ("GET", {"token": "next:x"}, "Invalid pagination token next:x"),
        ("GET", {"intersects": "{not json"}, "Invalid intersects: expected a GeoJSON geometry"),
        ("POST", {"bbox": [0, 0, 1, 1], "intersects": {"type": "Point", "coordinates": [0, 0]}},
         "Only one of bbox and intersects may be given"),
        ("POST", {"intersects": {"type": "Feature"}},
         "Invalid intersects: expected a GeoJSON geometry"),
        ("POST", {"collections": "a,b", "limit": True}, "Invalid limit True: expected an integer"),
        ("POST", {"bbox": [0, 5, 1, 1]},
         "Invalid bbox [0, 5, 1, 1]: south (5) is greater than north (1)"),
    ],
)  # fmt: skip
def test_errors(hub: Hub, method: str, params: dict[str, Any], detail: str) -> None:
    if method == "GET":
        r = requests.get(hub.url + "search", params=params, timeout=10)
    else:
        r = requests.post(hub.url + "search", json=params, timeout=10)
    assert r.status_code == 400
    assert r.json() == {"code": "BadRequest", "description": detail}
    bad = requests.post(hub.url + "search", data=b"[1, 2", timeout=10)
    assert bad.status_code == 400
    assert bad.json() == {"code": "BadRequest", "description": "Invalid JSON body"}
    assert requests.put(hub.url + "search", timeout=10).status_code == 405
    assert requests.post(hub.url + "datasets", timeout=10).status_code == 405


def test_search_needs_the_key_when_items_do() -> None:
    with serve(require_key="k-search") as own:
        assert requests.get(own.url + "search", timeout=10).status_code == 401
        assert requests.post(own.url + "search", json={}, timeout=10).status_code == 401
        r = requests.post(own.url + "search?key=k-search", json={"limit": 1}, timeout=10)
        assert r.status_code == 200 and r.json()["numberReturned"] == 1
        nxt = next(x for x in r.json()["links"] if x["rel"] == "next")
        assert "k-search" not in json.dumps(nxt)  # the key is never echoed into links
        g = requests.get(own.url + "search", params={"key": "k-search", "limit": 1}, timeout=10)
        assert "k-search" not in json.dumps(g.json()["links"])


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, list[Item]]]:
    """A hub over a synthetic dataset (items.jsonl, served lazily) and its items from disk."""
    root = tmp_path_factory.mktemp("syn")
    folder = make_synthetic_dataset(root, "syn_search", 900, 2, checksums=False, days=100)
    lines = (folder / "syn_search_source" / "items.jsonl").read_text().splitlines()
    with serve(root, cache_dir=False) as own:
        yield own, [json.loads(line) for line in lines]


def test_synthetic_search_matches_items_file(synthetic: tuple[Hub, list[Item]]) -> None:
    own, items = synthetic
    box = (0.0, 0.0, 21.5, 13.3)
    want = expected(
        items, geom=shapely.box(*box), dt=("2020-01-20T00:00:00Z", "2020-03-01T00:00:00Z")
    )
    assert 10 < len(want) < 900
    dt = "2020-01-20T00:00:00Z/2020-03-01T00:00:00Z"
    got = search_all(own, "GET", bbox=",".join(map(str, box)), datetime=dt, limit=7)
    assert pairs(got) == want
    # item order within the collection is file order
    order = [it["id"] for it in items]
    assert [f["id"] for f in got] == sorted((f["id"] for f in got), key=order.index)
    assert all(f["links"][0]["href"] == own.url + "collections/syn_search_source" for f in got)


def test_lazy_items_endpoint(synthetic: tuple[Hub, list[Item]]) -> None:
    own, items = synthetic
    url = own.url + "collections/syn_search_source/items"
    seen: list[str] = []
    page = requests.get(url, params={"limit": 250}, timeout=10).json()
    while True:
        assert page["context"]["matched"] == 900
        seen += [f["id"] for f in page["features"]]
        nxt = [x for x in page["links"] if x["rel"] == "next"]
        if not nxt:
            break
        page = requests.get(nxt[0]["href"], timeout=10).json()
    assert seen == [it["id"] for it in items]
    one = requests.get(f"{url}/{items[321]['id']}", timeout=10).json()
    assert one["geometry"] == items[321]["geometry"]
    assert one["assets"]["asset_1"]["href"].startswith(own.storage_url + "mlhub/syn_search/")
    box = "5,5,20,20"
    filtered = requests.get(url, params={"bbox": box, "limit": 1000}, timeout=10).json()
    want = [
        it["id"]
        for it in items
        if it["bbox"][0] <= 20 and it["bbox"][2] >= 5 and it["bbox"][1] <= 20 and it["bbox"][3] >= 5
    ]
    assert [f["id"] for f in filtered["features"]] == want and want
