"""Import-time budget: a plain download must not load shapely/numpy or dateutil.

shapely (with numpy) costs ~100 ms to import and dateutil's parser ~10 ms; only an area of interest
(``bbox``/``intersects``) needs shapely, and only odd date strings need dateutil. Each test runs
a fresh interpreter, since this test session has long imported both.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

from mlhub_widgets.filters import Exclusion

HEAVY = ("shapely", "numpy", "dateutil")

ITEM = """{
    "id": "i1",
    "collection": "c1",
    "bbox": [10.0, 10.0, 11.0, 11.0],
    "geometry": {
        "type": "Polygon",
        "coordinates": [[[10, 10], [11, 10], [11, 11], [10, 11], [10, 10]]],
    },
    "properties": {"datetime": "2018-12-15T10:30:00Z"},
    "assets": {"image": {}, "labels": {}},
}"""


def _run(body: str) -> dict[str, Any]:
    """Run ``body`` in a fresh interpreter; it leaves its results in the dict ``out``."""
    code = (
        "import json, sys\n"
        "out = {}\n"
        f"item = {ITEM}\n"
        f"def heavy(): return sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        + textwrap.dedent(body)
        + "\nout['loaded'] = heavy()\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_download_without_area_of_interest_loads_neither_shapely_nor_dateutil() -> None:
    out = _run(
        """
        import mlhub_widgets.cli
        import mlhub_widgets.download
        from mlhub_widgets.filters import AssetFilter, FilterStats

        out['after_import'] = heavy()
        flt = AssetFilter.build(collection_filter={'c1': ['image']}, datetime='2018-12')
        stats = FilterStats()
        out['matches'] = flt.item_matches(item, stats)
        out['assets'] = flt.select_assets(item)
        out['describe'] = flt.describe()
        out['params'] = flt.to_query_params()
        out['outside'] = AssetFilter(datetime='2019-01-01T00:00:00Z/..').explain(item)
        out['instant'] = AssetFilter.build(datetime='2018-12-15T10:30:00+00:00').item_matches(item)
        """
    )
    assert out["after_import"] == []
    assert out["matches"] is True and out["assets"] == ["image"]
    assert out["describe"] == (
        "datetime=2018-12-01T00:00:00Z/2018-12-31T23:59:59.999999Z, collection_filter={c1: [image]}"
    )
    assert out["params"] == {"datetime": "2018-12-01T00:00:00Z/2018-12-31T23:59:59.999999Z"}
    assert out["outside"] == "item 'i1': the item's date is outside the datetime range"
    assert out["instant"] is True
    assert out["loaded"] == [], f"a filter without bbox/intersects imported {out['loaded']}"


def test_area_of_interest_loads_shapely_on_first_use_and_works() -> None:
    out = _run(
        """
        import mlhub_widgets.download
        from mlhub_widgets.filters import spatial as filters
        from mlhub_widgets.filters import AssetFilter

        out['before'] = 'shapely' in sys.modules
        out['bbox_in'] = AssetFilter.build(bbox=[9, 9, 12, 12]).item_matches(item)
        out['bbox_out'] = AssetFilter.build(bbox=[20, 20, 30, 30]).explain(item)
        out['antimeridian'] = AssetFilter.build(bbox=[170, -20, -170, -10]).item_matches(item)
        # the stand-in was replaced by the real module: the per-item code pays no extra cost
        out['replaced'] = filters.shapely is sys.modules['shapely']

        import shapely
        tri = {'type': 'Polygon', 'coordinates': [[[10.5, 9], [12, 12], [9, 12], [10.5, 9]]]}
        flt = AssetFilter.build(intersects=tri)
        out['intersects'] = flt.item_matches(item)
        out['params'] = json.loads(flt.to_query_params()['intersects'])['type']
        out['shapely_geom'] = AssetFilter(intersects=shapely.box(0, 0, 1, 1)).item_matches(item)
        """
    )
    assert out["before"] is False
    assert out["bbox_in"] is True
    assert out["bbox_out"] == f"item 'i1': {Exclusion.OUTSIDE_AREA.value}"
    assert out["antimeridian"] is False
    assert out["replaced"] is True
    assert out["intersects"] is True and out["params"] == "Polygon"
    assert out["shapely_geom"] is False
    assert "shapely" in out["loaded"] and "dateutil" not in out["loaded"]


def test_odd_date_strings_load_dateutil_when_needed() -> None:
    out = _run(
        """
        from mlhub_widgets.filters import AssetFilter

        flt = AssetFilter.build(datetime='2018-12-16T00:00:00Z')
        odd = {**item, 'properties': {'datetime': '2018-12-15T24:00:00Z'}}  # = 16th, 00:00
        out['odd_item'] = flt.item_matches(odd)
        out['odd_filter'] = str(AssetFilter.build(datetime='2018-12-15T24:00Z').datetime)
        """
    )
    assert out["odd_item"] is True
    assert out["odd_filter"] == "2018-12-16T00:00:00Z"
    assert "dateutil" in out["loaded"] and "shapely" not in out["loaded"]
