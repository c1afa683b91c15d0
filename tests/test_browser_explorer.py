"""The explorer in a real browser, offline: Voila + headless Chromium + the bundled hub.

One page goes through the whole user story of the explorer app (``voila_app.APP_NOTEBOOK``),
served as ``mlhub demo`` serves it, against a hub that requires a key (and throttles assets so a
download can be paused). The steps are in ``browser_story.Story``, shared with the JupyterLab and
Notebook 7 tests: no key and a wrong key show their errors, the right key connects; the results
say which datasets can be downloaded and a metadata-only one disables Estimate and Start with the
reason; a tag search and a title click select the demo dataset; a rectangle is drawn (the count
of selected items follows it while the mouse button is down), the map highlights the selected
items' footprints and dims the others, exactly as the download's own filter decides; an item
picked in the list shows its quicklook and properties, and a click on the map previews the item
there (a label item: its GeoJSON is drawn); dates are set (an end before the start is refused
first); an asset key is unticked; Start with a file as output folder shows one line and Start
works again with every choice kept; Estimate counts the selection; the download starts, pauses
and resumes, and ends with one failed asset (the hub does not have it); the On-disk tab lists
the files, the failure, the paths and the loading code; the hub gets the asset back and Retry
completes the download; the files on disk are exactly what the filters select. Uncaught page
errors fail the test.

Screenshots of every step go to ``test-artifacts/browser-explorer/`` (git-ignored); the
pictures in ``docs/`` come from ``scripts/make_screenshots.py``, not from a test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlhub_widgets.config.session import get_session
from mlhub_widgets.filters import AssetFilter
from mlhub_widgets.hub import FaultConfig, Hub, serve
from mlhub_widgets.widgets.voila_app import APP_NOTEBOOK

from .browser_story import DATASET, Story, asset_files
from .browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    NON_LOOPBACK,
    jupyter_env,
    voila,
)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = APP_NOTEBOOK  # the explorer app, as `mlhub demo` and Binder serve it
ARTIFACTS = ROOT / "test-artifacts" / "browser-explorer"
KEY = "browser-test-key-0123"
#: Per-response cap on asset bodies: slow enough to pause mid-download, fast enough for CI.
ASSET_BPS = 40_000


THROTTLED = FaultConfig(bandwidth_bps=ASSET_BPS, scope="assets")
SOURCE = f"{DATASET}_source"
LABELS = f"{DATASET}_labels"
DATES = ("2021-01-01", "2021-12-31")


@pytest.fixture(scope="module")
def key_hub() -> Iterator[Hub]:
    """A hub that requires KEY and throttles asset downloads."""
    with serve(require_key=KEY, faults=THROTTLED) as running:
        yield running


def _selected_items(hub: Hub, bbox: tuple[float, ...]) -> int:
    """How many demo items the download engine's own filter selects in ``bbox``."""
    from mlhub_widgets.discovery import item_collection

    session = get_session(api_key=KEY, root_url=hub.url)
    flt = AssetFilter.build(bbox=bbox)
    n = 0
    for cid in (SOURCE, LABELS):
        for item in item_collection(cid, session=session, limit=None, progress=False):
            n += bool(flt.select_assets(item.to_dict(transform_hrefs=False), cid))
    return n


def _an_asset_of_the_selection(hub: Hub, bbox: tuple[float, ...]) -> str:
    """The href of the image of one item the story's filters select."""
    from mlhub_widgets.discovery import items

    session = get_session(api_key=KEY, root_url=hub.url)
    found = items(SOURCE, bbox=list(bbox), datetime=DATES, session=session, progress=False)
    assert len(found), bbox
    return str(found.iloc[0]["assets"]["image"]["href"])


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: apt-get install -y chromium")
    from playwright import sync_api

    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_explorer_user_story_in_chromium(key_hub: Hub, browser: Any, tmp_path: Path) -> None:
    started = time.monotonic()
    out = tmp_path / "downloads"
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    env = jupyter_env(tmp_path / "jupyter")
    env.update(
        MLHUB_ROOT_URL=key_hub.url,
        MLHUB_OUTPUT_DIR=str(tmp_path / "first-choice"),
        MLHUB_HOME=str(tmp_path / "mlhub-home"),  # no profiles of the machine's user
    )
    env.pop("MLHUB_API_KEY", None)
    env.pop("MLHUB_PROFILE", None)
    page_errors: list[str] = []
    blocked: list[str] = []

    with voila(NOTEBOOK, env, tmp_path / "voila.log") as url:
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        context.route(
            NON_LOOPBACK, lambda route: (blocked.append(route.request.url), route.abort())
        )
        page = context.new_page()
        page.on("pageerror", lambda exc: page_errors.append(str(exc)))
        page.set_default_timeout(90_000)
        story = Story(page, ARTIFACTS)
        try:
            page.goto(url, wait_until="domcontentloaded")
            page.wait_for_selector(".mlhub-explorer .mlhub-connect")
            # the app shows the explorer only: no tutorial text, no second title
            assert page.locator("h1, h2").count() == 0
            assert "ex.filters" not in page.locator("body").inner_text()
            story.connect_with_key(KEY)
            story.metadata_only_is_refused()
            story.search_and_select()
            bbox = story.draw_rectangle()
            selected, left_out = story.footprints()
            assert selected == _selected_items(key_hub, bbox) and left_out > 0
            story.preview_item()
            story.set_dates()
            story.untick_thumbnails()
            story.start_error_recovers(a_file, out)
            n_estimated = story.estimate()
            assert n_estimated > 4
            # the hub loses one asset of the selection: the download ends with it failed
            broken = _an_asset_of_the_selection(key_hub, bbox)
            key_hub.faults = FaultConfig(
                bandwidth_bps=ASSET_BPS, scope="assets", missing=frozenset({broken})
            )
            story.start()
            story.pause_and_resume()
            story.finish_with_failures(1)
            story.on_disk(files=n_estimated - 1, failed=1)
            key_hub.faults = THROTTLED  # the asset is back: Retry gets it
            key_hub.reset_counters()
            story.retry(files=n_estimated)
            assert key_hub.count("asset", "GET") == 1
            assert not page_errors, page_errors
        except BaseException:
            page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
            raise
        finally:
            context.close()

    # the files on disk are exactly what the filters select
    dataset_dir = out / DATASET
    files = asset_files(dataset_dir)
    assert len(files) == n_estimated
    assert not [p for p in files if p.stem == "thumbnail"]
    flt = AssetFilter.build(bbox=bbox, datetime=DATES)
    session = get_session(api_key=KEY, root_url=key_hub.url)
    from mlhub_widgets.download import plan_download

    plan = plan_download(
        DATASET,
        tmp_path / "independent-plan",
        bbox=list(bbox),
        datetime=DATES,
        collection_filter={f"{DATASET}_labels": [], f"{DATASET}_source": ["image"]},
        session=session,
    )
    assert plan.assets == n_estimated
    import json

    for path in files:
        item_json = path.parent / f"{path.parent.name}.json"
        if item_json.exists():  # an item asset: its item must pass the area and date filter
            assert flt.item_matches(json.loads(item_json.read_text())), path
    print(
        f"\nbrowser explorer story: {time.monotonic() - started:.1f}s, {len(files)} assets, "
        f"{len(blocked)} external requests blocked"
    )
