"""Tests of mlhub_widgets.filters: validation, and selection on real MLHub catalogues.

The peer (radiant_mlhub 0.5.5) recorded these counts on the real ``nasa_marine_debris`` catalogue
(its tests assert the number of rows left in its asset table, i.e. *distinct save paths*: every
label item's ``documentation`` asset maps to one ``_common`` file):

    no filter 2825, bbox 9, intersects 37, collection_filter 706, datetime 2018-12-15 9,
    datetime 2016 range 325.

Each test below computes the selection independently (plain shapely/datetime over the parsed
JSON), checks that :class:`AssetFilter` selects exactly the same asset records, and that the
number of distinct save paths equals the peer's count.
"""

from __future__ import annotations

import json
import math
import tarfile
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import shapely
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from shapely.geometry import box, mapping, shape

from mlhub_widgets.download.paths import asset_relpath
from mlhub_widgets.filters import (
    AssetFilter,
    DateRange,
    Exclusion,
    FilterStats,
    validate_bbox,
    validate_collection_filter,
    validate_datetime,
    validate_intersects,
)
from tests.fixture_paths import NASA_CATALOG, SU_SAR_CATALOG

NASA_TAR = NASA_CATALOG
SU_SAR_TAR = SU_SAR_CATALOG

# The peer's own test polygon (radiant_mlhub test_download_with_intersects_filter_works).
PEER_AOI = {
    "type": "Feature",
    "geometry": {
        "type": "Polygon",
        "coordinates": [
            [
                [-87.626953125, 15.961329081596643],
                [-87.626953125, 15.95604762305055],
                [-87.6214599609375, 15.95604762305055],
                [-87.6214599609375, 15.961329081596643],
                [-87.626953125, 15.961329081596643],
            ]
        ],
    },
}
PEER_BBOX = [-87.5610, 5.9137, -87.5555, 15.9191]

Record = tuple[str, str, str]  # (collection id, item id, asset key)


def _load_items(tar_path: Path) -> list[dict[str, Any]]:
    """Every STAC item of a catalogue tarball (``<root>/<collection>/<item>/<item>.json``)."""
    items = []
    with tarfile.open(tar_path) as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 4 or not parts[3].endswith(".json"):
                continue
            if parts[3].startswith("._") or parts[3] != f"{parts[2]}.json":
                continue  # macOS AppleDouble files and stray JSON
            fh = tar.extractfile(member)
            assert fh is not None
            items.append(json.load(fh))
    return items


@pytest.fixture(scope="module")
def nasa() -> list[dict[str, Any]]:
    items = _load_items(NASA_TAR)
    assert len(items) == 1412
    return items


@pytest.fixture(scope="module")
def su_sar() -> list[dict[str, Any]]:
    items = _load_items(SU_SAR_TAR)
    assert len(items) == 8
    return items


def selected(f: AssetFilter, items: list[dict[str, Any]]) -> set[Record]:
    """What the filter selects, as the download engine would ask for it."""
    out: set[Record] = set()
    for item in items:
        cid = item["collection"]
        if not f.wants_collection(cid) or not f.item_matches(item):
            continue
        out |= {(cid, item["id"], k) for k in item["assets"] if f.wants_asset(cid, k)}
    assert out == {
        (item["collection"], item["id"], k) for item in items for k in f.select_assets(item)
    }
    return out


def records(items: list[dict[str, Any]], keep: Any = lambda item, key: True) -> set[Record]:
    return {
        (item["collection"], item["id"], k)
        for item in items
        for k in item["assets"]
        if keep(item, k)
    }


def unique_paths(recs: set[Record], items: list[dict[str, Any]]) -> set[str]:
    by_id = {item["id"]: item for item in items}
    return {
        str(asset_relpath(c, i, k, by_id[i]["assets"][k]["href"], by_id[i]["assets"][k]["type"]))
        for c, i, k in recs
    }


def parse_z(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# the peer's recorded counts on nasa_marine_debris


def test_no_filter_selects_whole_catalogue(nasa: list[dict[str, Any]]) -> None:
    f = AssetFilter.build()
    assert f.is_empty() and f.describe() == "no filter" and f.to_query_params() == {}
    got = selected(f, nasa)
    assert len(got) == 3530
    assert len(unique_paths(got, nasa)) == 2825  # peer: 2825 assets


def test_peer_bbox_count(nasa: list[dict[str, Any]]) -> None:
    f = AssetFilter.build(bbox=PEER_BBOX)
    q = box(*PEER_BBOX)
    expected = records([i for i in nasa if q.intersects(shape(i["geometry"]))])
    by_item_bbox = records([i for i in nasa if q.intersects(box(*i["bbox"]))])
    assert expected == by_item_bbox  # geometry or bbox: same 4 items here
    got = selected(f, nasa)
    assert got == expected
    assert len(got) == 10  # 2 label items x 3 assets + 2 source items x 2 assets
    assert len(unique_paths(got, nasa)) == 9  # peer: 9 (two documentation -> one _common file)


def test_peer_intersects_count(nasa: list[dict[str, Any]]) -> None:
    f = AssetFilter.build(intersects=PEER_AOI)
    aoi = shape(PEER_AOI["geometry"])
    expected = records([i for i in nasa if aoi.intersects(shape(i["geometry"]))])
    got = selected(f, nasa)
    assert got == expected
    assert len(got) == 45  # 9 label items x 3 + 9 source items x 2
    assert len(unique_paths(got, nasa)) == 37  # peer: 37
    # the peer tested the item bbox; on this polygon it makes no difference
    assert records([i for i in nasa if aoi.intersects(box(*i["bbox"]))]) == expected


def test_peer_collection_filter_count(nasa: list[dict[str, Any]]) -> None:
    f = AssetFilter.build(collection_filter={"nasa_marine_debris_labels": ["labels"]})
    expected = records(
        nasa,
        lambda item, key: item["collection"] == "nasa_marine_debris_labels" and key == "labels",
    )
    got = selected(f, nasa)
    assert got == expected
    assert len(got) == len(unique_paths(got, nasa)) == 706  # peer: 706
    assert not f.wants_collection("nasa_marine_debris_source")
    assert not f.wants_asset("nasa_marine_debris_labels", "pixel_bounds")


@pytest.mark.parametrize(
    "value",
    [
        "2018-12-15T00:00:00Z",
        datetime(2018, 12, 15, tzinfo=UTC),
        datetime(2018, 12, 15, 1, tzinfo=timezone(timedelta(hours=1))),  # same instant
        # date semantics: the whole day (the peer needed the exact instant)
        date(2018, 12, 15),
        "2018-12-15",
    ],
)
def test_peer_single_datetime_count(nasa: list[dict[str, Any]], value: object) -> None:
    f = AssetFilter.build(datetime=value)
    day = date(2018, 12, 15)
    expected = records([i for i in nasa if parse_z(i["properties"]["datetime"]).date() == day])
    got = selected(f, nasa)
    assert got == expected
    assert len(got) == 10
    assert len(unique_paths(got, nasa)) == 9  # peer: 9


def test_peer_2016_range_count(nasa: list[dict[str, Any]]) -> None:
    start = datetime(2016, 1, 1, tzinfo=UTC)
    end = datetime(2016, 12, 31, tzinfo=UTC)
    f = AssetFilter.build(datetime=(start, end))
    expected = records([i for i in nasa if start <= parse_z(i["properties"]["datetime"]) <= end])
    got = selected(f, nasa)
    assert got == expected
    assert len(got) == 405
    assert len(unique_paths(got, nasa)) == 325  # peer: 325
    # the same range written as strings, and as the whole year: identical on this catalogue
    assert selected(AssetFilter.build(datetime="2016-01-01T00:00Z/2016-12-31T00:00Z"), nasa) == got
    assert selected(AssetFilter.build(datetime="2016"), nasa) == got


def test_item_geometry_not_bbox_decides(nasa: list[dict[str, Any]]) -> None:
    """Where the peer (item bbox) and we (item geometry) differ, and why.

    Label items have staircase-shaped geometries. A small box inside a label item's bbox but
    outside its geometry selects that item (and the source tile with the same bbox) in the
    peer, although no labelled pixel lies there. We select nothing.
    """
    label = next(
        i
        for i in nasa
        if i["id"] == "nasa_marine_debris_labels_20170322_153132_0e0f_17125-29792-16"
    )
    gap = box(*label["bbox"]).difference(shape(label["geometry"]))
    p = gap.representative_point()
    q = p.buffer(1e-7).envelope
    assert q.within(gap)
    by_bbox = records([i for i in nasa if q.intersects(box(*i["bbox"]))])
    by_geometry = records([i for i in nasa if q.intersects(shape(i["geometry"]))])
    assert len(by_bbox) == 5 and by_geometry == set()  # peer: 5 assets, we: none

    f = AssetFilter.build(bbox=list(q.bounds))
    assert selected(f, nasa) == by_geometry
    reason = f.explain(label)
    assert reason is not None and "does not intersect" in reason
    g = AssetFilter.build(intersects=mapping(q))
    assert selected(g, nasa) == by_geometry


def test_filters_combine(nasa: list[dict[str, Any]]) -> None:
    f = AssetFilter.build(
        intersects=PEER_AOI,
        datetime=("2016-01-01", "2016-12-31"),
        collection_filter={"nasa_marine_debris_source": []},
    )
    aoi = shape(PEER_AOI["geometry"])
    expected = records(
        [
            i
            for i in nasa
            if i["collection"] == "nasa_marine_debris_source"
            and aoi.intersects(shape(i["geometry"]))
            and parse_z(i["properties"]["datetime"]).year == 2016
        ]
    )
    got = selected(f, nasa)
    assert got == expected and got
    stats = FilterStats()
    for item in nasa:
        f.item_matches(item, stats)
    assert stats.total == 1412
    assert stats.excluded[Exclusion.OUTSIDE_AREA] == 1412 - 18
    assert "outside the area" in stats.summary()


# --------------------------------------------------------------------------------------------
# dates


def _item(dt: str | None = None, **props: Any) -> dict[str, Any]:
    return {
        "id": "x",
        "collection": "c",
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [0.0, 0.0]},
        "bbox": [0.0, 0.0, 0.0, 0.0],
        "properties": {"datetime": dt, **props},
        "assets": {"a": {"href": "https://h/a.tif"}},
    }


def test_date_is_the_whole_utc_day() -> None:
    f = AssetFilter.build(datetime=date(2018, 12, 15))
    inside = ["2018-12-15T00:00:00Z", "2018-12-15T12:34:56Z", "2018-12-15T23:59:59.999999Z"]
    inside += ["2018-12-16T01:00:00+02:00", "2018-12-15T23:59:59.5+00:00"]
    outside = ["2018-12-14T23:59:59.999999Z", "2018-12-16T00:00:00Z", "2018-12-15T01:00:00+02:00"]
    for stamp in inside:
        assert f.item_matches(_item(stamp)), stamp
    for stamp in outside:
        assert not f.item_matches(_item(stamp)), stamp
    assert f.datetime == DateRange(
        datetime(2018, 12, 15, tzinfo=UTC), datetime(2018, 12, 15, 23, 59, 59, 999999, tzinfo=UTC)
    )
    assert f.to_query_params()["datetime"] == "2018-12-15T00:00:00Z/2018-12-15T23:59:59.999999Z"


def test_instant_is_exact_and_month_year_strings() -> None:
    f = AssetFilter.build(datetime="2018-12-15T12:00:00Z")
    assert f.item_matches(_item("2018-12-15T12:00:00Z"))
    assert f.item_matches(_item("2018-12-15T13:00:00+01:00"))
    assert not f.item_matches(_item("2018-12-15T12:00:01Z"))
    assert f.to_query_params()["datetime"] == "2018-12-15T12:00:00Z"
    assert validate_datetime("2016-02").to_stac() == (
        "2016-02-01T00:00:00Z/2016-02-29T23:59:59.999999Z"
    )
    assert validate_datetime("2018").to_stac() == "2018-01-01T00:00:00Z/2018-12-31T23:59:59.999999Z"


def test_open_intervals() -> None:
    assert validate_datetime("2018-01-01/..").to_stac() == "2018-01-01T00:00:00Z/.."
    assert validate_datetime("/2018-01-01").to_stac() == "../2018-01-01T23:59:59.999999Z"
    assert validate_datetime((None, "2018-01-01T00:00:00Z")) == DateRange(
        None, datetime(2018, 1, 1, tzinfo=UTC)
    )
    f = AssetFilter.build(datetime=("2018-06-01", None))
    assert f.item_matches(_item("2030-01-01T00:00:00Z"))
    assert not f.item_matches(_item("2018-05-31T23:59:59Z"))
    # open at both ends = no date filter: items without dates are kept
    for both_open in ("../..", (None, None), [None, ".."]):
        g = AssetFilter.build(datetime=both_open)
        assert g.datetime is None and g.is_empty()
        assert g.item_matches(_item(None))


def test_su_sar_start_end_overlap(su_sar: list[dict[str, Any]]) -> None:
    """8 items with datetime null and start/end_datetime: they match by overlap (inclusive)."""
    for item in su_sar:
        assert item["properties"]["datetime"] is None

    def overlap(lo: datetime | None, hi: datetime | None) -> set[str]:
        out = set()
        for item in su_sar:
            s = parse_z(item["properties"]["start_datetime"])
            e = parse_z(item["properties"]["end_datetime"])
            if (hi is None or s <= hi) and (lo is None or e >= lo):
                out.add(item["id"])
        return out

    def ids(value: object) -> set[str]:
        f = AssetFilter.build(datetime=value)
        return {i["id"] for i in su_sar if f.item_matches(i)}

    def d(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    cases: list[tuple[object, datetime | None, datetime | None, int]] = [
        # the boundary day: item 1 ends 2015-07-30T00:00, item 2 starts 2015-07-31T00:00
        (("2015-07-30", "2015-07-31"), d("2015-07-30"), d("2015-07-31T23:59:59.999999"), 2),
        ("2016-07-15T00:00:00Z", d("2016-07-15"), d("2016-07-15"), 1),  # instant inside a range
        ("2016", d("2016-01-01"), d("2016-12-31T23:59:59.999999"), 5),  # item 7 runs into 2017
        ("2017-02-01/2017-05-01", d("2017-02-01"), d("2017-05-01T23:59:59.999999"), 0),  # a gap
        ("2017-06-21T00:00:00Z/..", d("2017-06-21"), None, 1),  # touches item 8's end exactly
        ((None, "2015-06-30T00:00:00Z"), None, d("2015-06-30"), 1),  # touches item 1's start
    ]
    for value, lo, hi, count in cases:
        assert ids(value) == overlap(lo, hi), value
        assert len(overlap(lo, hi)) == count, value
    gap = AssetFilter.build(datetime="2017-02-01/2017-05-01")
    assert gap.exclusion(su_sar[0]) is Exclusion.OUTSIDE_DATES


def test_items_without_usable_dates() -> None:
    f = AssetFilter.build(datetime="2018")
    no_date = _item(None)
    unreadable = _item("someday")
    half_range = _item(None, start_datetime="2017-06-01T00:00:00Z")  # still running
    assert f.exclusion(no_date) is Exclusion.NO_DATE
    assert f.exclusion(unreadable) is Exclusion.BAD_DATE
    assert f.item_matches(half_range)
    assert f.exclusion({"id": "p", "properties": None}) is Exclusion.NO_DATE
    stats = FilterStats()
    for item in [no_date, no_date, unreadable, half_range, _item("2018-03-01T00:00:00Z")]:
        f.item_matches(item, stats)
    assert stats.matched == 2
    assert stats.excluded[Exclusion.NO_DATE] == 2
    assert stats.excluded[Exclusion.BAD_DATE] == 1
    assert "2 without a date" in stats.summary()
    assert f.explain(no_date) == "item 'x': " + Exclusion.NO_DATE.value
    # without a datetime filter the same items are selected
    assert AssetFilter.build(bbox=[-1, -1, 1, 1]).item_matches(no_date)
    # odd but readable stamps: naive (read as UTC), date only, 24:00, 7 fraction digits
    assert f.item_matches(_item("2018-12-31T23:00:00"))
    assert f.item_matches(_item("2018-12-31"))
    assert f.item_matches(_item("2018-12-31T24:00:00Z")) is False  # that is 2019-01-01T00:00
    assert f.item_matches(_item("2018-12-31T23:59:59.9999999Z"))


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (datetime(2018, 12, 15), "tzinfo=datetime.timezone.utc"),
        ("2018-12-15T00:00:00", "add 'Z' for UTC"),
        (("2018-12-15T00:00:00Z", datetime(2018, 12, 16)), "has no timezone"),
        (("2018-12-16", "2018-12-15"), "before its start"),
        ("2018-12-16/2018-12-15T00:00:00Z", "before its start"),
        ("2018-13-01", "not a valid date"),
        ("yesterday", "not an ISO 8601"),
        ("a/b/c", "exactly one '/'"),
        (("2018",), "(start, end) pair"),
        ("", "empty"),
    ],
)
def test_datetime_errors_are_specific(value: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        validate_datetime(value)
    assert fragment in str(info.value)


@pytest.mark.parametrize("value", [2018, 3.5, True, {"start": "2018"}, object(), ("2018", 5)])
def test_datetime_wrong_types(value: object) -> None:
    with pytest.raises(TypeError):
        validate_datetime(value)


# --------------------------------------------------------------------------------------------
# spatial


def _box_item(w: float, s: float, e: float, n: float, geometry: bool = True) -> dict[str, Any]:
    item = _item("2018-01-01T00:00:00Z")
    item["bbox"] = [w, s, e, n]
    item["geometry"] = mapping(box(w, s, e, n)) if geometry else None
    return item


def test_antimeridian_bbox() -> None:
    assert validate_bbox([170, -10, -170, 10]) == (170.0, -10.0, -170.0, 10.0)
    f = AssetFilter.build(bbox=[170, -10, -170, 10])
    assert f.item_matches(_box_item(175, 0, 176, 1))
    assert f.item_matches(_box_item(-176, 0, -175, 1))
    assert f.item_matches(_box_item(179.5, -1, 180, 1))
    assert not f.item_matches(_box_item(0, 0, 1, 1))
    assert not f.item_matches(_box_item(160, 0, 169, 1))
    assert not f.item_matches(_box_item(-169, 0, -160, 1))
    assert not f.item_matches(_box_item(175, 11, 176, 12))
    # an item crossing the antimeridian itself: bbox W > E, geometry split in two (RFC 7946)
    crossing = _item("2018-01-01T00:00:00Z")
    crossing["bbox"] = [179, -1, -179, 1]
    crossing["geometry"] = mapping(
        shapely.MultiPolygon([box(179, -1, 180, 1), box(-180, -1, -179, 1)])
    )
    assert f.item_matches(crossing)
    assert AssetFilter.build(bbox=[178, -5, 179.5, 5]).item_matches(crossing)
    assert AssetFilter.build(bbox=[-179.5, -5, -178, 5]).item_matches(crossing)
    assert not AssetFilter.build(bbox=[0, -5, 10, 5]).item_matches(crossing)
    assert f.to_query_params() == {"bbox": "170,-10,-170,10"}
    assert "crosses the antimeridian" in f.describe()


def test_geometry_null_falls_back_to_bbox_and_neither_never_matches() -> None:
    f = AssetFilter.build(bbox=[0, 0, 2, 2])
    assert f.item_matches(_box_item(1, 1, 3, 3, geometry=False))
    assert not f.item_matches(_box_item(3, 3, 4, 4, geometry=False))
    nowhere = _item("2018-01-01T00:00:00Z")
    nowhere["geometry"] = None
    del nowhere["bbox"]
    assert f.exclusion(nowhere) is Exclusion.NO_LOCATION
    assert AssetFilter.build(intersects=mapping(box(0, 0, 2, 2))).exclusion(nowhere) is (
        Exclusion.NO_LOCATION
    )
    assert AssetFilter.build(datetime="2018").item_matches(nowhere)  # no spatial filter
    # geometry without bbox is fine; a malformed bbox is ignored in favour of the geometry
    no_bbox = _box_item(1, 1, 3, 3)
    del no_bbox["bbox"]
    assert f.item_matches(no_bbox)
    bad_bbox = _box_item(1, 1, 3, 3)
    bad_bbox["bbox"] = ["a", None]
    assert f.item_matches(bad_bbox)
    # an item bbox 3-D
    three_d = _box_item(1, 1, 3, 3, geometry=False)
    three_d["bbox"] = [1, 1, 0, 3, 3, 10]
    assert f.item_matches(three_d)


def test_intersects_input_forms() -> None:
    poly = {"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]]}
    far = {"type": "Polygon", "coordinates": [[[50, 50], [52, 50], [52, 52], [50, 52], [50, 50]]]}
    feature = {"type": "Feature", "properties": {}, "geometry": poly}
    fc = {
        "type": "FeatureCollection",
        "features": [
            feature,
            {"type": "Feature", "properties": {}, "geometry": far},
            {"type": "Feature", "properties": {}, "geometry": None},
        ],
    }

    class GeoThing:
        __geo_interface__ = feature

    expected = box(0, 0, 2, 2)
    for value in (poly, feature, shape(poly), GeoThing(), json.dumps(feature)):
        assert validate_intersects(value).equals(expected)
    union = validate_intersects(fc)
    assert union.equals(shapely.union_all([box(0, 0, 2, 2), box(50, 50, 52, 52)]))
    f = AssetFilter.build(intersects=fc)
    assert f.item_matches(_box_item(1, 1, 1.5, 1.5))
    assert f.item_matches(_box_item(51, 51, 60, 60))
    assert not f.item_matches(_box_item(10, 10, 20, 20))  # inside the union's envelope only
    z = {"type": "Point", "coordinates": [1, 1, 100]}
    assert validate_intersects(z).equals(shapely.Point(1, 1))
    assert not validate_intersects(z).has_z
    params = AssetFilter.build(intersects=poly).to_query_params()
    assert shape(json.loads(params["intersects"])).equals(expected)


def test_intersects_geodataframe() -> None:
    import geopandas

    gdf = geopandas.GeoDataFrame(geometry=[box(0, 0, 1, 1), box(5, 5, 6, 6)], crs=4326)
    assert validate_intersects(gdf).equals(shapely.union_all([box(0, 0, 1, 1), box(5, 5, 6, 6)]))
    projected = gdf.to_crs(3857).translate(1e6, 1e6)
    with pytest.raises(ValueError, match=r"to_crs\(4326\)"):
        validate_intersects(projected)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({"type": "Feature", "geometry": None}, "no geometry"),
        ({"type": "FeatureCollection", "features": []}, "no feature with a geometry"),
        ({"type": "Polygon", "coordinates": []}, "empty"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, "not closed"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]}, "at least 4"),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]},
            "not valid (Self-intersection",
        ),
        ({"type": "Point", "coordinates": [200, 0]}, "longitude 200 is outside"),
        ({"type": "Point", "coordinates": [0, -91]}, "latitude -91 is outside"),
        ({"type": "Point", "coordinates": ["0", 1]}, "must be a number, got str"),
        ({"type": "Point", "coordinates": [0, float("nan")]}, "finite"),
        ({"type": "Point"}, "no 'coordinates'"),
        ({"type": "Circle", "coordinates": [0, 0]}, "unknown GeoJSON type 'Circle'"),
        ({"coordinates": [0, 0]}, "unknown GeoJSON type None"),
        ({"type": "GeometryCollection", "geometries": []}, "empty"),
        ("{not json", "not valid GeoJSON text"),
        (shapely.Polygon(), "empty"),
        (box(0, 0, 1000, 1000), "outside longitude"),
    ],
)
def test_intersects_errors_are_specific(value: object, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        validate_intersects(value)
    assert fragment in str(info.value)


@pytest.mark.parametrize("value", [42, None, [0, 0, 1, 1], 3.5])
def test_intersects_wrong_types(value: object) -> None:
    with pytest.raises(TypeError):
        validate_intersects(value)


def test_bbox_and_intersects_are_exclusive() -> None:
    with pytest.raises(ValueError, match="cannot be used together"):
        AssetFilter.build(bbox=[0, 0, 1, 1], intersects=mapping(box(0, 0, 1, 1)))
    with pytest.raises(ValueError, match="cannot be used together"):
        AssetFilter(bbox=(0, 0, 1, 1), intersects=box(0, 0, 1, 1))


def test_3d_bbox_drops_heights() -> None:
    assert validate_bbox([1, 2, -10, 3, 4, 500]) == (1.0, 2.0, 3.0, 4.0)
    with pytest.raises(ValueError, match="zmin"):
        validate_bbox([1, 2, 10, 3, 4, 5])


@pytest.mark.parametrize(
    ("value", "exc", "fragment"),
    [
        ([0, 0, 1], ValueError, "got 3"),
        ([0, 0, 1, 1, 2], ValueError, "got 5"),
        ([0, 1, 1, 0], ValueError, "south 1 is greater than north 0"),
        ([-181, 0, 1, 1], ValueError, "west longitude -181"),
        ([0, -95, 1, 1], ValueError, "south latitude -95"),
        ([0, 0, 1, math.inf], ValueError, "finite"),
        ([0, 0, 1, 10**400], ValueError, "finite number in coordinate range"),
        ([0, 0, True, 1], TypeError, "element 2 must be a number, got bool"),
        (["0", 0, 1, 1], TypeError, "got str"),
        ("0,0,1,1", TypeError, "got str"),
        ({"w": 0}, TypeError, "got dict"),
        (None, TypeError, "got NoneType"),
    ],
)
def test_bbox_errors_are_specific(value: object, exc: type[Exception], fragment: str) -> None:
    with pytest.raises(exc) as info:
        validate_bbox(value)
    assert fragment in str(info.value)


def test_bbox_accepts_numpy_and_tuples() -> None:
    import numpy as np

    assert validate_bbox(np.array([1, 2, 3, 4])) == (1.0, 2.0, 3.0, 4.0)
    assert validate_bbox((np.float32(1.5), 2, 3, 4)) == (1.5, 2.0, 3.0, 4.0)


# --------------------------------------------------------------------------------------------
# collection filter

AVAILABLE = {
    "nasa_marine_debris_labels": ["labels", "pixel_bounds", "documentation"],
    "nasa_marine_debris_source": ["image_geotiff", "image_jpeg"],
}


def test_collection_filter_against_available() -> None:
    cf = validate_collection_filter(
        {"nasa_marine_debris_labels": ["labels", "labels"], "nasa_marine_debris_source": []},
        AVAILABLE,
    )
    assert cf == {
        "nasa_marine_debris_labels": frozenset({"labels"}),
        "nasa_marine_debris_source": None,
    }
    with pytest.raises(ValueError) as info:
        validate_collection_filter({"nasa_marine_debris_label": []}, AVAILABLE)
    assert "unknown collection 'nasa_marine_debris_label'" in str(info.value)
    assert "'nasa_marine_debris_labels', 'nasa_marine_debris_source'" in str(info.value)
    with pytest.raises(ValueError) as info:
        AssetFilter.build(
            collection_filter={"nasa_marine_debris_source": ["image_tif"]}, available=AVAILABLE
        )
    assert "unknown asset key(s) 'image_tif'" in str(info.value)
    assert "'image_geotiff', 'image_jpeg'" in str(info.value)


def test_collection_filter_shapes() -> None:
    assert AssetFilter.build(collection_filter={}).collection_filter is None  # as the peer
    f = AssetFilter.build(collection_filter={"a": None, "b": ("x",)})
    assert f.wants_asset("a", "anything") and f.wants_asset("b", "x")
    assert not f.wants_asset("b", "y") and not f.wants_asset("c", "x")
    assert f.describe() == "collection_filter={a: all assets, b: [x]}"
    with pytest.raises(TypeError, match=r"did you mean \['labels'\]"):
        validate_collection_filter({"a": "labels"})
    with pytest.raises(TypeError, match="must be a dict"):
        validate_collection_filter(["a"])
    with pytest.raises(TypeError, match="asset keys must be strings"):
        validate_collection_filter({"a": [1]})
    with pytest.raises(TypeError, match="collection ids"):
        validate_collection_filter({1: []})
    with pytest.raises(ValueError, match="empty collection id"):
        validate_collection_filter({"": []})
    with pytest.raises(ValueError, match="empty asset key"):
        validate_collection_filter({"a": [" "]})


def test_describe_and_query_params() -> None:
    f = AssetFilter.build(
        bbox=[-87.561, 5.9137, -87.5555, 15.9191],
        datetime="2018-12-15T00:00:00Z/..",
        collection_filter={"nasa_marine_debris_labels": ["labels"]},
    )
    assert f.describe() == (
        "bbox=[-87.561, 5.9137, -87.5555, 15.9191], datetime=2018-12-15T00:00:00Z/.., "
        "collection_filter={nasa_marine_debris_labels: [labels]}"
    )
    assert f.to_query_params() == {
        "bbox": "-87.561,5.9137,-87.5555,15.9191",
        "datetime": "2018-12-15T00:00:00Z/..",
    }
    assert AssetFilter.build(intersects=PEER_AOI).describe().startswith("intersects=Polygon within")


def test_item_matches_rejects_non_mappings() -> None:
    with pytest.raises(TypeError, match="STAC item dict"):
        AssetFilter.build().item_matches(["not", "an", "item"])  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# hypothesis: every bad input gives a specific ValueError/TypeError, valid input never raises

lon = st.floats(-180, 180, allow_nan=False)
lat = st.floats(-90, 90, allow_nan=False)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=5),
    st.decimals(allow_nan=True),
)


@given(w=lon, s=lat, e=lon, n=lat)
@settings(deadline=None)
def test_valid_bboxes_never_raise(w: float, s: float, e: float, n: float) -> None:
    s, n = min(s, n), max(s, n)
    assert validate_bbox([w, s, e, n]) == (w, s, e, n)
    f = AssetFilter.build(bbox=(w, s, e, n))
    assert f.to_query_params()["bbox"].count(",") == 3


@given(st.one_of(scalars, st.lists(scalars, max_size=8), st.tuples(scalars, scalars)))
@example([0, 0, 1, 1])
@example([0, 0, 1, float("nan")])
@example([True, 0, 1, 1])
@settings(deadline=None)
def test_bbox_fuzz_only_specific_errors(value: object) -> None:
    try:
        w, s, e, n = validate_bbox(value)
    except TypeError as exc:
        assert "bbox" in str(exc)
        return
    except ValueError as exc:
        assert "bbox" in str(exc)
        return
    # accepted: it must really be a valid box of real, non-bool numbers
    assert isinstance(value, list | tuple) and len(value) in (4, 6)
    assert not any(isinstance(v, bool | str) for v in value)
    assert -180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= n <= 90


@given(
    st.lists(
        st.one_of(st.integers(-400, 400), st.floats(), st.booleans(), st.text(max_size=2)),
        min_size=4,
        max_size=4,
    )
)
@settings(deadline=None)
def test_bbox_classification(value: list[Any]) -> None:
    """The exception type follows from the input: types first, then values."""
    if any(isinstance(v, bool | str) for v in value):
        with pytest.raises(TypeError):
            validate_bbox(value)
        return
    w, s, e, n = (float(v) for v in value)
    ok = all(math.isfinite(v) for v in (w, s, e, n))
    ok = ok and -180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= n <= 90
    if ok:
        assert validate_bbox(value) == (w, s, e, n)
    else:
        with pytest.raises(ValueError):
            validate_bbox(value)


json_values = st.recursive(
    scalars | st.floats(-200, 200),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(["type", "coordinates", "geometry", "features", "geometries", "x"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=25,
)
geo_types = st.sampled_from(
    [
        "Point",
        "MultiPoint",
        "LineString",
        "MultiLineString",
        "Polygon",
        "MultiPolygon",
        "GeometryCollection",
        "Feature",
        "FeatureCollection",
        "Nope",
    ]
)


@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries({"type": geo_types, "coordinates": json_values}),
        st.fixed_dictionaries({"type": geo_types, "geometry": json_values}),
        st.fixed_dictionaries({"type": geo_types, "features": st.lists(json_values, max_size=3)}),
    )
)
@settings(max_examples=300, deadline=None)
def test_intersects_fuzz_only_specific_errors(value: object) -> None:
    try:
        geom = validate_intersects(value)
    except (ValueError, TypeError):
        return
    assert not geom.is_empty and geom.is_valid
    minx, miny, maxx, maxy = geom.bounds
    assert -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90


@given(w=lon, s=lat, e=lon, n=lat, wrap=st.sampled_from(["geometry", "feature", "fc", "shapely"]))
@settings(deadline=None)
def test_valid_polygons_never_raise(w: float, s: float, e: float, n: float, wrap: str) -> None:
    w, e = min(w, e), max(w, e)
    s, n = min(s, n), max(s, n)
    assume(w < e and s < n)
    poly = box(w, s, e, n)
    assume(poly.is_valid and poly.area > 0)
    geo = mapping(poly)
    value: object = {
        "geometry": geo,
        "feature": {"type": "Feature", "properties": None, "geometry": geo},
        "fc": {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": geo}]},
        "shapely": poly,
    }[wrap]
    assert validate_intersects(value).equals(poly)


aware = st.datetimes(
    min_value=datetime(1900, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
    ),
)
naive = st.datetimes()


@given(a=aware, b=aware)
@settings(deadline=None)
def test_aware_pairs(a: datetime, b: datetime) -> None:
    if b < a:
        with pytest.raises(ValueError, match="before its start"):
            validate_datetime((a, b))
        return
    r = validate_datetime((a, b))
    assert r.start == a and r.end == b
    assert r.start is not None and r.start.tzinfo is UTC
    assert validate_datetime(r.to_stac()) == r  # round trip through the STAC text


@given(a=naive, b=st.one_of(aware, naive, st.none()))
@settings(deadline=None)
def test_naive_datetimes_rejected(a: datetime, b: datetime | None) -> None:
    for value in (a, (a, b), (b, a)):
        with pytest.raises(ValueError, match="no timezone"):
            validate_datetime(value)


@given(d=st.dates())
@settings(deadline=None)
def test_any_date_is_its_whole_day(d: date) -> None:
    r = validate_datetime(d)
    assert r.start == datetime.combine(d, datetime.min.time(), tzinfo=UTC)
    assert r.end == datetime.combine(d, datetime.max.time(), tzinfo=UTC)


@given(st.one_of(st.text(max_size=30), scalars, st.tuples(scalars, scalars)))
@example("2018-02-30")
@example("0000-01-01")
@example("9999-12-31T23:59:59-05:00")
@example("0001-01-01T00:00:00+05:00")
@settings(deadline=None)
def test_datetime_fuzz_only_specific_errors(value: object) -> None:
    try:
        r = validate_datetime(value)
    except (ValueError, TypeError):
        return
    for end in (r.start, r.end):
        assert end is None or end.tzinfo is UTC


item_json = st.dictionaries(
    st.sampled_from(["id", "bbox", "geometry", "properties", "assets", "collection"]),
    st.one_of(
        json_values,
        st.lists(st.floats(-200, 200), min_size=4, max_size=4),
        st.fixed_dictionaries(
            {
                "datetime": st.one_of(
                    st.none(), st.text(max_size=25), st.just("2018-01-01T00:00:00Z")
                ),
                "start_datetime": st.one_of(st.none(), st.text(max_size=12), scalars),
            }
        ),
    ),
    max_size=6,
)


@given(item=item_json)
@example({"id": None, "bbox": None, "geometry": {"type": ""}})
@example({"bbox": [0, 0, 1, 1], "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1]]]}})
@example({"bbox": [-math.inf, -math.inf, math.inf, math.inf], "geometry": None})
@settings(max_examples=300, deadline=None)
def test_item_matches_never_raises_on_malformed_items(item: dict[str, Any]) -> None:
    filters = [
        AssetFilter.build(bbox=[-10, -10, 10, 10], datetime="2018"),
        AssetFilter.build(intersects=PEER_AOI),
        AssetFilter.build(bbox=[170, -10, -170, 10]),
    ]
    for f in filters:
        assert isinstance(f.item_matches(item), bool)
        assert isinstance(f.select_assets(item, "c"), list)


@given(w=lon, s=lat, e=lon, n=lat, cx=lon, cy=lat, size=st.floats(0, 5))
@example(
    w=6.046419939126976e-289, s=0.0, e=0.0, n=6.046419939126976e-289, cx=0.0, cy=-1.0, size=1.0
)
@settings(max_examples=300, deadline=None)
def test_bbox_filter_agrees_with_shapely(
    w: float, s: float, e: float, n: float, cx: float, cy: float, size: float
) -> None:
    """Including antimeridian boxes, the filter equals a plain shapely test on the geometry."""
    s, n = min(s, n), max(s, n)
    item_geom = shapely.clip_by_rect(
        shapely.Point(cx, cy).buffer(size, quad_segs=4), -180, -90, 180, 90
    )
    assume(not item_geom.is_empty)
    item = _item("2018-01-01T00:00:00Z")
    item["geometry"] = mapping(item_geom)
    item["bbox"] = list(item_geom.bounds)

    def rect(w: float, s: float, e: float, n: float) -> shapely.Geometry:
        # a box without width or height is a segment or a point
        if w == e or s == n:
            return shapely.LineString([(w, s), (e, n)]) if (w, s) != (e, n) else shapely.Point(w, s)
        return box(w, s, e, n)

    parts = [rect(w, s, e, n)] if w <= e else [rect(w, s, 180, n), rect(-180, s, e, n)]
    expected = any(p.intersects(item_geom) for p in parts)
    assert AssetFilter.build(bbox=[w, s, e, n]).item_matches(item) == expected


@given(
    cf=st.dictionaries(st.text(min_size=1, max_size=6), st.lists(st.text(max_size=6), max_size=3)),
)
@settings(deadline=None)
def test_collection_filter_fuzz(cf: dict[str, list[str]]) -> None:
    try:
        out = validate_collection_filter(cf, AVAILABLE)
    except ValueError as exc:
        unknown_c = [c for c in cf if c not in AVAILABLE or not c.strip()]
        unknown_k = [
            k for c, ks in cf.items() if c in AVAILABLE for k in ks if k not in AVAILABLE[c]
        ]
        assert unknown_c or unknown_k, exc
        return
    assert set(out) == set(cf)
    for c, keys in out.items():
        assert keys is None or keys <= set(AVAILABLE[c])


def test_stamp_parse_cache_is_bounded() -> None:
    from mlhub_widgets.filters import temporal as filters

    f = AssetFilter.build(datetime="2018")
    for i in range(filters._ITEM_DATE_CACHE_MAX + 10):
        f.item_matches(_item(f"2018-01-01T00:00:00.{i:06d}Z"))
    assert len(filters._ITEM_DATE_CACHE) <= filters._ITEM_DATE_CACHE_MAX


def test_filter_is_reusable_mapping_input() -> None:
    """A Mapping that is not a dict (e.g. a read-only view) works as an item."""

    class View(Mapping[str, Any]):
        def __init__(self, data: dict[str, Any]) -> None:
            self._d = data

        def __getitem__(self, key: str) -> Any:
            return self._d[key]

        def __iter__(self) -> Iterator[str]:
            return iter(self._d)

        def __len__(self) -> int:
            return len(self._d)

    assert AssetFilter.build(bbox=[-1, -1, 1, 1], datetime="2018").item_matches(
        View(_item("2018-05-05T00:00:00Z"))
    )


@given(
    pts=st.lists(st.tuples(lon, lat), min_size=3, max_size=6),
    cx=lon,
    cy=lat,
    size=st.floats(0, 20),
)
@settings(max_examples=300, deadline=None)
def test_intersects_filter_agrees_with_shapely(
    pts: list[tuple[float, float]], cx: float, cy: float, size: float
) -> None:
    """Whatever shortcut the filter takes, it equals a plain shapely test on the geometry."""
    aoi = shapely.Polygon(pts).convex_hull
    assume(isinstance(aoi, shapely.Polygon) and aoi.is_valid and aoi.area > 0)
    item_geom = shapely.clip_by_rect(
        shapely.Point(cx, cy).buffer(size, quad_segs=3), -180, -90, 180, 90
    )
    assume(not item_geom.is_empty)
    item = _item("2018-01-01T00:00:00Z")
    item["geometry"] = mapping(item_geom)
    item["bbox"] = list(item_geom.bounds)
    f = AssetFilter.build(intersects=mapping(aoi))
    assert f.item_matches(item) == aoi.intersects(item_geom)
