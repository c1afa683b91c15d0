"""``datasets()``, ``collections()``, ``items()`` and ``tags()`` with ``source=``: the same
frames from the MLHub API, a static catalogue (disk and HTTP) and a STAC API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import mlhub_widgets as mw
from mlhub_widgets import discovery
from mlhub_widgets.hub import Hub
from mlhub_widgets.sources import MLHubApiSource, Source, StacApiSource, StaticCatalogSource

from .sources_support import (
    DATASET,
    hub_catalog,
    hub_static_url,
    sources_hub,
)


@pytest.fixture(scope="module")
def hub(request: pytest.FixtureRequest) -> Hub:
    """The source tests' own hub (see :func:`sources_support.sources_hub`)."""
    return sources_hub(request.config)


COLLECTIONS = ["nasa_marine_debris_source", "nasa_marine_debris_labels"]
BBOX = [-88.0, 15.5, -87.0, 16.2]


@pytest.fixture(scope="module")
def sources(hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Source]]:
    folder = hub_catalog(hub, DATASET, tmp_path_factory.mktemp("cat"))
    out: dict[str, Source] = {
        "api": MLHubApiSource(root_url=hub.url),
        "disk": StaticCatalogSource(folder),
    }
    out["stac-api"] = StacApiSource(hub.url)
    out["http"] = StaticCatalogSource(hub_static_url(hub))
    yield out
    for src in out.values():
        src.close()


def test_datasets_frame_from_each_source(sources: dict[str, Source]) -> None:
    api = discovery.datasets(source=sources["api"]).set_index("id").loc[DATASET]
    for name in ("disk", "http", "stac-api"):
        if name not in sources:
            continue
        frame = mw.datasets(source=sources[name])
        assert list(frame.columns) == [*discovery.DATASET_COLUMNS, "geometry"]
        row = frame.set_index("id").loc[DATASET]
        assert row["source_collections"] == api["source_collections"]
        assert row["label_collections"] == api["label_collections"]
        assert row["geometry"] is not None
        assert row["geometry"].intersects(api["geometry"].buffer(0.5))


def test_datasets_text_and_keyword_filters_on_static(sources: dict[str, Source]) -> None:
    src = sources["http"]
    assert list(mw.datasets(text="marine debris", source=src)["id"]) == [DATASET]
    assert mw.datasets(text="no such words", source=src).empty
    assert mw.datasets(tags="crop type", source=src).empty  # no tags on a plain catalogue
    assert list(mw.tags(source=src).columns) == ["tag", "datasets"]


def test_datasets_accepts_a_path(tmp_path: Path, sources: dict[str, Source]) -> None:
    src = sources["disk"]
    assert isinstance(src, StaticCatalogSource)
    assert list(mw.datasets(source=src.url)["id"]) == [DATASET]


def test_collections_of_the_dataset_agree(sources: dict[str, Source]) -> None:
    expected = mw.collections(DATASET, source=sources["api"])
    for src in sources.values():
        frame = mw.collections(DATASET, source=src)
        assert list(frame.columns) == list(expected.columns)
        assert sorted(frame["id"]) == sorted(expected["id"])
        by_id = frame.set_index("id")
        for cid, types in zip(expected["id"], expected["types"], strict=True):
            assert by_id.loc[cid, "types"] == types
            assert by_id.loc[cid, "dataset"] == DATASET
    every = mw.collections(source=sources["http"])
    assert set(every["id"]) == set(COLLECTIONS)


@pytest.mark.parametrize(
    "filters",
    [{}, {"bbox": BBOX}, {"datetime": "2018-01-01/2018-06-30"}],
    ids=["all", "bbox", "datetime"],
)
def test_items_agree_across_sources(sources: dict[str, Source], filters: dict[str, object]) -> None:
    results = {
        name: set(mw.items(COLLECTIONS[1], limit=None, progress=False, source=src, **filters)["id"])
        for name, src in sources.items()
    }
    assert len(set(map(frozenset, results.values()))) == 1, {k: len(v) for k, v in results.items()}
    assert results["api"]


def test_items_frame_columns_and_limit(sources: dict[str, Source]) -> None:
    frame = mw.items(COLLECTIONS[0], limit=25, source=sources["http"])
    assert len(frame) == 25
    assert {"id", "collection", "datetime", "assets", "geometry"} <= set(frame.columns)
    assert frame.crs.to_epsg() == 4326
    assert set(frame["collection"]) == {COLLECTIONS[0]}


def test_command_line_with_a_source(
    sources: dict[str, Source], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from mlhub_widgets.cli import main

    src = sources["http"]
    assert isinstance(src, StaticCatalogSource)
    assert main(["datasets", "--source", src.url, "--format", "geojson"]) == 0
    features = json.loads(capsys.readouterr().out)["features"]
    assert [f["properties"]["id"] for f in features] == [DATASET]
    assert main(["collections", "--dataset", DATASET, "--source", src.url, "--format", "csv"]) == 0
    assert "nasa_marine_debris_labels" in capsys.readouterr().out
    args = ["items", COLLECTIONS[1], "--bbox=" + ",".join(map(str, BBOX)), "--all"]
    assert main([*args, "--source", src.url, "--source-kind", "static", "--format", "geojson"]) == 0
    from_cli = {f["id"] for f in json.loads(capsys.readouterr().out)["features"]}
    assert from_cli == set(mw.items(COLLECTIONS[1], bbox=BBOX, limit=None, source=src)["id"])
    assert main(["download", DATASET, "-o", str(tmp_path), "--estimate", "--source", src.url]) == 0
    assert "assets" in capsys.readouterr().out
