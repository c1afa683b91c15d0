"""The explorer in a real browser, offline: Voila + headless Chromium + the bundled hub.

One page goes through the whole user story of the explorer app (``voila_app.APP_NOTEBOOK``) against
a hub that requires a key (and throttles assets so a download can be paused): the anonymous
connection and a wrong key show their errors in the Connect tab, the right key connects, a tag
search finds the demo dataset, a title click selects it, a rectangle is drawn, dates are set (an
end before the start shows the validation message first), an asset key is unticked, Estimate counts
the selection, the download starts, pauses, resumes and reaches 100 %, and the files on disk are
exactly what the filters select. Uncaught page errors fail the test.

Screenshots of every step go to ``test-artifacts/browser-explorer/`` (git-ignored). With
``MLHUB_UPDATE_SCREENSHOT=1`` the finished explorer is also written to ``docs/explorer.png``.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlhub_widgets.config.session import get_session
from mlhub_widgets.filters import AssetFilter
from mlhub_widgets.hub import FaultConfig, Hub, serve
from mlhub_widgets.widgets.voila_app import APP_NOTEBOOK

from .browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    NON_LOOPBACK,
    jupyter_env,
    voila,
    wait_until_empty,
)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = APP_NOTEBOOK  # the explorer app, as `mlhub demo` and Binder serve it
ARTIFACTS = ROOT / "test-artifacts" / "browser-explorer"
README_SHOT = ROOT / "docs" / "explorer.png"
KEY = "browser-test-key-0123"
DATASET = "mlhub_widgets_demo_crops"
TITLE = "mlhub_widgets Demo Crop Type Dataset"
#: Per-response cap on asset bodies: slow enough to pause mid-download, fast enough for CI.
ASSET_BPS = 40_000


@pytest.fixture(scope="module")
def key_hub() -> Iterator[Hub]:
    """A hub that requires KEY and throttles asset downloads."""
    with serve(
        require_key=KEY, faults=FaultConfig(bandwidth_bps=ASSET_BPS, scope="assets")
    ) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Steps:
    """Numbered screenshots of the page."""

    def __init__(self, page: Any, folder: Path) -> None:
        self.page = page
        self.folder = folder
        self.n = 0
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)

    def shot(self, name: str) -> Path:
        self.n += 1
        path = self.folder / f"{self.n:02d}-{name}.png"
        self.page.locator(".mlhub-explorer").screenshot(path=str(path))
        return path


def _tab(page: Any, title: str) -> None:
    page.locator(".mlhub-tabs .lm-TabBar-tab", has_text=title).click()


def _asset_files(dataset_dir: Path) -> list[Path]:
    """Downloaded asset files (not the catalogue JSON, index, report or archive)."""
    skip_suffixes = {".json", ".db", ".part"}
    return sorted(
        p
        for p in dataset_dir.rglob("*")
        if p.is_file()
        and p.suffix not in skip_suffixes
        and p.name != "err_report.csv"
        and not p.name.startswith("mlhub_assets.db")
    )


def test_explorer_user_story_in_chromium(key_hub: Hub, browser: Any, tmp_path: Path) -> None:
    started = time.monotonic()
    out = tmp_path / "downloads"
    env = jupyter_env(tmp_path / "jupyter")
    env.update(
        MLHUB_ROOT_URL=key_hub.url,
        MLHUB_OUTPUT_DIR=str(out),
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
        page.set_default_timeout(60_000)
        steps = Steps(page, ARTIFACTS)
        try:
            page.goto(url, wait_until="domcontentloaded")
            page.wait_for_selector(".mlhub-explorer .mlhub-connect")
            login_status = page.locator(".mlhub-login-status")

            # 1. configured URL, no key: the hub answers 401 and the panel says so
            login_status.filter(has_text="No API key was sent").wait_for()
            assert "Traceback" not in page.locator(".mlhub-explorer").inner_text()

            # 2. a wrong key: the 401 message, in the Connect panel
            page.fill(".mlhub-api-key input", "not-the-key")
            page.click("button.mlhub-connect")
            login_status.filter(has_text="The API key was rejected").wait_for()
            steps.shot("wrong-key")

            # 3. the right key connects and says who answered
            page.fill(".mlhub-api-key input", KEY)
            page.click("button.mlhub-connect")
            page.locator(".mlhub-summary", has_text="datasets available").wait_for()
            assert "with an API key" in page.locator(".mlhub-connection").inner_text()
            # the panel clears "Testing the connection…" just after the summary arrives
            wait_until_empty(login_status)
            _tab(page, "Connect")
            steps.shot("connected")
            _tab(page, "Dataset")

            # 4. search by tag (the explorer switched to the Dataset tab by itself)
            tags = page.locator(".mlhub-tags select")
            tags.locator("option", has_text="demo (1)").wait_for(state="attached")
            tags.select_option(label="demo (1)")
            page.locator(".mlhub-result-count", has_text="1 dataset found").wait_for()
            steps.shot("search-tag")

            # 5. select the dataset: the detail view fills in
            page.locator("button.mlhub-title-button", has_text=TITLE).click()
            detail = page.locator(".mlhub-detail")
            detail.locator("h3", has_text=TITLE).wait_for()
            detail.locator("text=Estimated dataset size").wait_for()
            assert "10.5072/mlhub-widgets.demo-crops" in detail.inner_text()
            steps.shot("dataset-detail")

            # 6. draw a rectangle on the map: the bbox filter is shown as numbers
            _tab(page, "Area")
            container = page.locator(".mlhub-map .leaflet-container")
            container.wait_for()
            page.wait_for_timeout(500)  # let the map settle on the dataset footprint
            assert page.locator(".mlhub-map path.leaflet-interactive").count() > 100  # outlines
            page.click(".mlhub-map .leaflet-draw-draw-rectangle")
            box = container.bounding_box()
            assert box is not None
            x0, y0 = box["x"] + box["width"] * 0.08, box["y"] + box["height"] * 0.10
            x1, y1 = box["x"] + box["width"] * 0.62, box["y"] + box["height"] * 0.92
            page.mouse.move(x0, y0)
            page.mouse.down()
            page.mouse.move(x1, y1, steps=8)
            page.mouse.up()
            readout = page.locator(".mlhub-aoi-readout")
            readout.filter(has_text="bbox W").wait_for()
            m = re.search(
                r"bbox W (\S+), S (\S+), E (\S+), N (\S+)", readout.inner_text().replace("\n", " ")
            )
            assert m, readout.inner_text()
            bbox = tuple(float(v) for v in m.groups())
            assert bbox[0] < bbox[2] and bbox[1] < bbox[3]
            steps.shot("area-drawn")

            # 7. dates: an end before the start is refused, then a valid year
            _tab(page, "Dates")
            page.locator(".mlhub-date-extent", has_text="2020-01-01").wait_for()
            page.fill(".mlhub-start-date input", "2021-01-01")
            page.fill(".mlhub-end-date input", "2020-06-30")
            page.locator(".mlhub-date-message", has_text="before the start date").wait_for()
            steps.shot("dates-invalid")
            page.fill(".mlhub-end-date input", "2021-12-31")
            page.locator(".mlhub-date-readout", has_text="2021-01-01 to 2021-12-31").wait_for()
            wait_until_empty(page.locator(".mlhub-date-message"))
            steps.shot("dates")

            # 8. content: untick the thumbnails of the source collection
            _tab(page, "Content")
            thumb = page.locator(".mlhub-asset-key", has_text="thumbnail").locator("input")
            thumb.wait_for()
            thumb.click()
            page.locator(
                ".mlhub-content-readout", has_text="mlhub_widgets_demo_crops_source: image"
            ).wait_for()
            steps.shot("content")

            # 9. estimate, then download with 2 workers; pause and resume on the way
            _tab(page, "Download")
            page.fill(".mlhub-workers input", "2")
            page.press(".mlhub-workers input", "Tab")
            page.click("button.mlhub-estimate")
            estimate = page.locator(".mlhub-estimate-result", has_text="assets,")
            estimate.wait_for()
            n_estimated = int(re.search(r"(\d+) assets", estimate.inner_text()).group(1))  # type: ignore[union-attr]
            assert n_estimated > 4
            steps.shot("estimate")

            progress = page.locator(".mlhub-progress-text")
            page.click("button.mlhub-start")
            progress.filter(has_text="running").wait_for()
            page.wait_for_function(
                "parseFloat(document.querySelector('.mlhub-progress-bar .progress-bar')"
                ".style.width) > 0"
            )
            page.click("button.mlhub-pause")
            progress.filter(has_text="paused").wait_for()
            page.wait_for_timeout(1200)  # transfers in flight finish; no new one starts
            paused_text = progress.inner_text()
            page.wait_for_timeout(800)
            assert progress.inner_text().split("elapsed")[0] == paused_text.split("elapsed")[0]
            percent = page.locator(".mlhub-progress-percent").inner_text()
            assert percent.strip() != "100 %", percent
            assert page.locator("button.mlhub-resume").is_enabled()
            steps.shot("paused")

            page.click("button.mlhub-resume")
            progress.filter(has_text="finished").wait_for(timeout=90_000)
            page.locator(".mlhub-progress-percent", has_text="100 %").wait_for()
            width = page.eval_on_selector(".mlhub-progress-bar .progress-bar", "e => e.style.width")
            assert width == "100%"
            assert f"{n_estimated} / {n_estimated}" in progress.inner_text()
            shot = steps.shot("finished")
            if os.environ.get("MLHUB_UPDATE_SCREENSHOT") == "1":
                README_SHOT.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(shot, README_SHOT)
            assert not page_errors, page_errors
        except BaseException:
            page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
            raise
        finally:
            context.close()

    # 10. the files on disk are exactly what the filters select
    dataset_dir = out / DATASET
    files = _asset_files(dataset_dir)
    assert len(files) == n_estimated
    assert not [p for p in files if p.stem == "thumbnail"]
    flt = AssetFilter.build(bbox=bbox, datetime=("2021-01-01", "2021-12-31"))
    session = get_session(api_key=KEY, root_url=key_hub.url)
    from mlhub_widgets.download import plan_download

    plan = plan_download(
        DATASET,
        tmp_path / "independent-plan",
        bbox=list(bbox),
        datetime=("2021-01-01", "2021-12-31"),
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
