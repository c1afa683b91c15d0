"""``download_dataset``/``plan_download`` with ``source=``: the same files from the MLHub API
(catalogue tarball), a static catalogue (disk and HTTP) and a STAC API, with filters and resume."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlhub_widgets.config.session import get_session
from mlhub_widgets.download import DownloadSummary, download_dataset, plan_download
from mlhub_widgets.hub import Hub
from mlhub_widgets.sources import Source, StacApiSource, StaticCatalogSource

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


#: A small selection: a few dozen items of one area and year, label files only.
FILTERS: dict[str, Any] = {
    "bbox": [-88.0, 15.5, -87.0, 16.2],
    "datetime": ("2018-01-01", "2018-12-31"),
    "collection_filter": {"nasa_marine_debris_labels": ["labels", "pixel_bounds"]},
}
#: A wider area: about two and a half times the items.
WIDER = [-88.5, 15.5, -87.0, 16.5]


@pytest.fixture(scope="module")
def sources(hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = hub_catalog(hub, DATASET, tmp_path_factory.mktemp("cat"))
    out: dict[str, Any] = {"disk": StaticCatalogSource(folder)}
    out["stac-api"] = StacApiSource(hub.url)
    out["http"] = StaticCatalogSource(hub_static_url(hub))
    yield out
    for src in out.values():
        src.close()


def files_under(root: Path) -> set[str]:
    skip = {"mlhub_assets.db", "err_report.csv"}
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.name not in skip and not p.name.startswith("mlhub_assets.db")
    }


def run(out: Path, **kwargs: Any) -> DownloadSummary:
    summary = download_dataset(
        DATASET, out, asset_output_dir=out / "assets", progress=False, workers=8, **kwargs
    )
    assert isinstance(summary, DownloadSummary)
    return summary


def test_downloads_agree_across_sources(
    hub: Hub, sources: dict[str, Source], tmp_path: Path
) -> None:
    reference = run(tmp_path / "api", session=get_session(root_url=hub.url), **FILTERS)
    expected = files_under(reference.asset_dir)
    assert reference.assets_failed == 0 and 0 < reference.assets_selected < 200
    assert len(expected) == reference.assets_selected
    for name, src in sources.items():
        out = tmp_path / name
        summary = run(out, source=src, **FILTERS)
        assert summary.assets_failed == 0, name
        assert summary.assets_selected == reference.assets_selected, name
        assert files_under(summary.asset_dir) == expected, name
        # the catalogue is written next to the assets, in the MLHub layout
        catalog = json.loads((out / DATASET / "catalog.json").read_text())
        children = [link["href"] for link in catalog["links"] if link["rel"] == "child"]
        assert sorted(children) == [
            "nasa_marine_debris_labels/collection.json",
            "nasa_marine_debris_source/collection.json",
        ]
        one = next((out / DATASET / "nasa_marine_debris_labels").glob("*/*.json"))
        item = json.loads(one.read_text())
        assert {"rel": "self", "href": one.name, "type": "application/json"} in item["links"]


def test_plan_and_resume_with_a_static_catalogue(
    hub: Hub, sources: dict[str, Source], tmp_path: Path
) -> None:
    src = sources["http"]
    plan = plan_download(DATASET, tmp_path, source=src, **FILTERS)
    assert plan.assets > 0 and plan.bytes_exact in (True, False)
    assert set(plan.asset_keys) == {"nasa_marine_debris_source", "nasa_marine_debris_labels"}
    assert plan.collections["nasa_marine_debris_labels"] == ["labels"]
    first = run(tmp_path, source=src, **FILTERS)
    assert first.assets_downloaded == plan.assets
    before = hub.count("asset")
    again = run(tmp_path, source=src, **FILTERS)
    assert again.assets_downloaded == 0 and again.assets_failed == 0
    assert hub.count("asset") == before  # resume: nothing asked of the storage again
    # other filters: the stored index of a static catalogue is re-planned, not re-walked
    wider = dict(FILTERS, bbox=WIDER)
    more = run(tmp_path, source=src, **wider)
    assert more.assets_selected > first.assets_selected
    assert more.assets_downloaded == more.assets_selected - first.assets_selected


def test_stac_api_index_is_rebuilt_when_server_side_filters_change(
    sources: dict[str, Source], tmp_path: Path
) -> None:
    src = sources["stac-api"]
    narrow = plan_download(DATASET, tmp_path, source=src, **FILTERS)
    wide = plan_download(DATASET, tmp_path, source=src, **dict(FILTERS, bbox=WIDER))
    disk = plan_download(
        DATASET,
        tmp_path / "disk",
        source=sources["disk"],
        **dict(FILTERS, bbox=WIDER),
    )
    assert wide.assets == disk.assets > narrow.assets
    # the server filtered the items: the index holds only what matched
    assert wide.items_total == wide.items_matched < disk.items_total


def test_unknown_dataset_fails_before_anything(sources: dict[str, Source], tmp_path: Path) -> None:
    from mlhub_widgets.exceptions import EntityDoesNotExist

    with pytest.raises(EntityDoesNotExist):
        download_dataset("no_such_dataset", tmp_path, progress=False, source=sources["disk"])
