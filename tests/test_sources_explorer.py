"""The explorer with STAC sources: the LoginPanel as a source picker, the keyword fallback of the
tag picker, and a whole explore → filter → download round trip on a static catalogue."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mlhub_widgets.hub import Hub
from mlhub_widgets.sources import StacApiSource, StaticCatalogSource
from mlhub_widgets.widgets.state import ExplorerState, Filters

from .sources_support import DATASET, hub_static_url, sources_hub


@pytest.fixture(scope="module")
def hub(request: pytest.FixtureRequest) -> Hub:
    """The source tests' own hub (see :func:`sources_support.sources_hub`)."""
    return sources_hub(request.config)


LABELS = "nasa_marine_debris_labels"


def test_state_explores_and_downloads_a_static_catalogue(hub: Hub, tmp_path: Path) -> None:
    st = ExplorerState(output_dir=str(tmp_path / "out"))
    st.connect_source(hub_static_url(hub))
    assert st.wait(60), st.errors
    assert not st.errors, st.errors
    assert isinstance(st.source, StaticCatalogSource) and st.session is None
    assert st.has_tags is False
    assert "static STAC catalogue" in st.connection and "1 dataset" in st.connection
    assert st.wait(60)
    assert list(st.results["id"]) == [DATASET]
    st.select_dataset(DATASET)
    assert st.wait(60), st.errors
    assert not st.errors, st.errors
    assert st.detail["title"].startswith("Marine Debris")
    assert {c["id"] for c in st.detail["collections"]} == {LABELS, "nasa_marine_debris_source"}
    assert st.detail["stac_catalog_size"] is None  # no archive behind a static catalogue
    assert set(st.asset_keys[LABELS]) == {"labels", "pixel_bounds", "documentation"}
    st.filters = Filters(
        bbox=(-88.0, 15.5, -87.0, 16.2),
        start=dt.date(2018, 1, 1),
        end=dt.date(2018, 12, 31),
        collection_filter={LABELS: ("labels",)},
    )
    st.estimate_download()
    assert st.wait(60), st.errors
    assert st.estimate is not None and 0 < st.estimate.assets < 100
    st.start_download()
    assert st.wait(60), st.errors
    job = st.job
    assert job is not None
    summary = job.wait(120)
    assert summary.assets_downloaded == st.estimate.assets and summary.assets_failed == 0


def test_state_reports_a_missing_catalogue(tmp_path: Path) -> None:
    st = ExplorerState()
    st.connect_source(tmp_path / "nothing-here")
    st.wait(30)
    assert "login" in st.errors and "STAC catalogue not found" in st.errors["login"]
    assert st.source is None


def test_login_panel_is_a_source_picker(hub: Hub) -> None:
    from mlhub_widgets.widgets import LoginPanel

    panel = LoginPanel()
    values = [v for _label, v in panel.server.options]
    assert values == ["url", "demo", "stac-api", "static"]
    assert panel.location.layout.display == "none"
    panel.server.value = "static"
    assert panel.location.layout.display is None
    assert panel.api_key.layout.display == "none" and panel.profile.layout.display == "none"
    panel.location.value = hub_static_url(hub)
    panel.connect_button.click()
    assert panel.state.wait(60), panel.state.errors
    assert isinstance(panel.state.source, StaticCatalogSource)
    assert "static STAC catalogue" in panel.connection.value
    panel.server.value = "stac-api"
    panel.location.value = hub.url
    panel.connect_button.click()
    assert panel.state.wait(60), panel.state.errors
    assert isinstance(panel.state.source, StacApiSource)
    assert panel.state.wait(60)
    assert DATASET in set(panel.state.results["id"])
    panel.server.value = "url"
    assert panel.api_key.layout.display is None and panel.location.layout.display == "none"


def test_tag_picker_becomes_a_keyword_filter(hub: Hub) -> None:
    from mlhub_widgets.widgets import SearchPanel

    st = ExplorerState()
    panel = SearchPanel(st)
    assert panel.tags.description == "Tags (all)"
    st.connect_source(hub_static_url(hub))
    assert st.wait(60), st.errors
    assert panel.tags.description == "Keywords (all)"
    # the recorded catalogue has no keywords: nothing to pick, so the picker hides itself
    assert panel.tags.layout.display == "none"
    st.tags = [("marine", 1)]
    assert panel.tags.layout.display is None


def test_explorer_opens_a_static_catalogue(hub: Hub, tmp_path: Path) -> None:
    from mlhub_widgets.widgets import explorer

    ex = explorer(
        source=hub_static_url(hub), dataset=DATASET, output_dir=str(tmp_path), basemap=None
    )
    assert ex.state.wait(60), ex.state.errors
    assert ex.state.wait(60), ex.state.errors
    assert isinstance(ex.state.source, StaticCatalogSource)
    assert ex.state.dataset_id == DATASET and ex.state.detail.get("id") == DATASET
    assert ex.tabs.selected_index == 1  # on to the search tab once connected
    assert "static STAC catalogue" in ex.summary.value
