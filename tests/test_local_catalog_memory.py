"""The local catalogue of a huge dataset: a collection that links every item is not held in
memory as Python objects (at 500,000 items its 45 MB of links made the download's peak memory
~360 MB higher), and documents whose keys are escaped are still made local."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

from mlhub_widgets.download.local_catalog import localize_catalog

ITEM_LINKS = 200_000


def _catalogue(root: Path, *, escaped_item: bool) -> Path:
    """A catalogue, a collection linking ITEM_LINKS items (one of them on disk) and that item,
    with one downloadable asset."""
    ds = root / "ds"
    col = ds / "col"
    (col / "item1").mkdir(parents=True)
    (ds / "catalog.json").write_text(
        json.dumps({"type": "Catalog", "id": "ds", "stac_version": "1.0.0", "links": []})
    )
    links = [{"rel": "item", "href": f"item{i}/item{i}.json"} for i in range(ITEM_LINKS)]
    (col / "collection.json").write_text(
        json.dumps({"type": "Collection", "id": "col", "stac_version": "1.0.0", "links": links})
    )
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "item1",
        "collection": "col",
        "assets": {"image": {"href": "https://example.com/data/item1/image.tif"}},
    }
    text = json.dumps(item)
    if escaped_item:  # the same document, its "assets" key written with an escape
        text = text.replace('"assets"', '"\\u0061ssets"')
    (col / "item1" / "item1.json").write_text(text)
    return ds


def test_a_collection_linking_every_item_is_not_parsed_into_memory(tmp_path: Path) -> None:
    ds = _catalogue(tmp_path, escaped_item=False)
    assert (ds / "col" / "collection.json").stat().st_size > 10_000_000
    tracemalloc.start()
    try:
        stats = localize_catalog(ds, tmp_path, ds, "ds")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (stats.rewritten, stats.assets) == (1, 1)
    assert peak < 30_000_000, f"peak {peak / 1e6:.0f} MB of Python allocations"
    item = json.loads((ds / "col" / "item1" / "item1.json").read_text())
    assert not item["assets"]["image"]["href"].startswith("https:")


def test_a_document_with_an_escaped_assets_key_is_still_made_local(tmp_path: Path) -> None:
    ds = _catalogue(tmp_path, escaped_item=True)
    stats = localize_catalog(ds, tmp_path, ds, "ds")
    assert (stats.rewritten, stats.assets) == (1, 1)
    item = json.loads((ds / "col" / "item1" / "item1.json").read_text())
    href = item["assets"]["image"]["href"]
    assert not href.startswith("https:") and href.endswith("image.tif")
