"""The explorer's user story, step by step, for any front end (Voila, JupyterLab, Notebook 7).

Every step acts through the page (clicks, typing, mouse drawing) and waits on what the kernel
writes back, never on time. The selectors are the explorer's own ``mlhub-*`` classes, which are
the same in every front end; ``root`` scopes them (a page holds one explorer).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from mlhub_widgets.widgets.item_pane import LABEL_COLOR, LEFT_OUT_COLOR, SELECTED_COLOR
from mlhub_widgets.widgets.on_disk import FAILED_COLOR, ON_DISK_COLOR

BLANK = re.compile(r"^\s*$")
DATASET = "mlhub_widgets_demo_crops"
ITEMS = 216  # items of the demo dataset (both collections)
TITLE = "mlhub_widgets Demo Crop Type Dataset"
METADATA_ONLY = "ref_agrifieldnet_competition_v1"
METADATA_ONLY_TITLE = "AgriFieldNet Competition Dataset"


class Story:
    """One explorer in a page, driven like a user; ``shot(name)`` keeps numbered screenshots."""

    def __init__(self, page: Any, artifacts: Path) -> None:
        self.page = page
        self.artifacts = artifacts
        self.n = 0
        shutil.rmtree(artifacts, ignore_errors=True)
        artifacts.mkdir(parents=True, exist_ok=True)

    # -- helpers ---------------------------------------------------------------------------
    def el(self, selector: str, **kwargs: Any) -> Any:
        return self.page.locator(f".mlhub-explorer {selector}", **kwargs)

    def shot(self, name: str) -> Path:
        self.n += 1
        path = self.artifacts / f"{self.n:02d}-{name}.png"
        self.page.locator(".mlhub-explorer").screenshot(path=str(path))
        return path

    def tab(self, title: str) -> None:
        self.el(".mlhub-tabs .lm-TabBar-tab", has_text=title).click()
        self.el(".mlhub-tabs .lm-TabBar-tab.lm-mod-current", has_text=title).wait_for()

    def cleared(self, selector: str) -> None:
        """Wait until an element shows no text (a status line cleared by a later update)."""
        from playwright.sync_api import expect

        expect(self.el(selector)).to_have_text(BLANK, timeout=60_000)

    # -- 1. connect --------------------------------------------------------------------------
    def connect_with_key(self, key: str) -> None:
        """The configured hub needs a key: none, then a wrong one, then ``key``."""
        status = self.el(".mlhub-login-status")
        status.filter(has_text="No API key was sent").wait_for()
        assert "Traceback" not in self.el("").first.inner_text()
        self.el(".mlhub-api-key input").fill("not-the-key")
        self.el("button.mlhub-connect").click()
        status.filter(has_text="The API key was rejected by http://127.0.0.1:").wait_for()
        message = status.inner_text()
        assert "mlhub configure" not in message and "`" not in message, message
        self.shot("wrong-key")
        self.el(".mlhub-api-key input").fill(key)
        self.el("button.mlhub-connect").click()
        self.page.locator(".mlhub-summary", has_text="datasets available").wait_for()
        assert "with an API key" in self.el(".mlhub-connection").inner_text()
        self.cleared(".mlhub-login-status")
        self.tab("Dataset")  # the explorer switched there by itself; back after a look

    # -- 2. search, badges, a metadata-only dataset --------------------------------------------
    def metadata_only_is_refused(self) -> None:
        """The table says which datasets can be downloaded; choosing one that cannot
        disables Estimate and Start with the reason (no 404 at the last step)."""
        self.el(".mlhub-result-count", has_text="datasets found").wait_for()
        row = self.el(".mlhub-badge-no").first
        row.wait_for()
        assert self.el(".mlhub-badge-yes").count() > 10
        self.el(".mlhub-row-filter input").fill("agrifieldnet")
        self.el("button.mlhub-title-button", has_text=METADATA_ONLY_TITLE).click()
        self.el(".mlhub-detail", has_text="Metadata only").wait_for()
        self.shot("metadata-only")
        self.tab("Download")
        self.el(".mlhub-download-problems", has_text="Metadata only").wait_for()
        assert self.el("button.mlhub-start").is_disabled()
        assert self.el("button.mlhub-estimate").is_disabled()
        self.tab("Dataset")
        self.el(".mlhub-row-filter input").fill("")

    def search_and_select(self) -> None:
        tags = self.el(".mlhub-tags select")
        tags.locator("option", has_text="demo (1)").wait_for(state="attached")
        tags.select_option(label="demo (1)")
        self.el(".mlhub-result-count", has_text="1 dataset found").wait_for()
        self.shot("search-tag")
        self.el("button.mlhub-title-button", has_text=TITLE).click()
        detail = self.el(".mlhub-detail")
        detail.locator("h3", has_text=TITLE).wait_for()
        detail.locator("text=Estimated dataset size").wait_for()
        assert "10.5072/mlhub-widgets.demo-crops" in detail.inner_text()
        self.shot("dataset-detail")

    # -- 3. area -------------------------------------------------------------------------------
    def draw_rectangle(self) -> tuple[float, ...]:
        self.tab("Area")
        container = self.el(".mlhub-map .leaflet-container")
        container.wait_for()
        assert self.el(".mlhub-map path.leaflet-interactive").count() > 100  # outlines
        self.el(".mlhub-map .leaflet-draw-draw-rectangle").click()
        container.scroll_into_view_if_needed()
        box = container.bounding_box()
        assert box is not None
        # (the draw and zoom buttons take the left ~50 px: start to their right)
        x0, y0 = box["x"] + max(box["width"] * 0.08, 70), box["y"] + box["height"] * 0.10
        x1, y1 = box["x"] + box["width"] * 0.62, box["y"] + box["height"] * 0.92
        mouse = self.page.mouse
        mouse.move(x0, y0)
        mouse.down()
        mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=6)
        # the count follows the rectangle while the button is still down
        self.el(".mlhub-item-count", has_text="While drawing:").wait_for()
        self.shot("area-drawing")
        mouse.move(x1, y1, steps=4)
        mouse.up()
        readout = self.el(".mlhub-aoi-readout")
        readout.filter(has_text="bbox W").wait_for()
        text = readout.inner_text().replace("\n", " ")
        m = re.search(r"bbox W (\S+), S (\S+), E (\S+), N (\S+)", text)
        assert m, text
        bbox = tuple(float(v) for v in m.groups())
        assert bbox[0] < bbox[2] and bbox[1] < bbox[3]
        self.el(".mlhub-item-count", has_text="items selected").wait_for()
        self.shot("area-drawn")
        return bbox

    def footprints(self) -> tuple[int, int]:
        """``(selected, left out)`` as the map draws them; they add up to every item and the
        selected ones are what the count beside the map says."""
        count = self.el(".mlhub-item-count", has_text="items selected")
        count.wait_for()
        m = re.search(r"(\d+) of (\d+) items selected", count.inner_text())
        assert m, count.inner_text()
        selected, total = int(m.group(1)), int(m.group(2))
        assert total == ITEMS
        self.page.wait_for_function(
            "([a, na, b, nb]) => { const q = (c) => document.querySelectorAll("
            "`.mlhub-explorer .mlhub-map path[stroke='${c}']`).length; "
            "return q(a) === na && q(b) === nb; }",
            arg=[SELECTED_COLOR, selected, LEFT_OUT_COLOR, total - selected],
        )
        from playwright.sync_api import expect

        expect(self.el(".mlhub-item-list option")).to_have_count(selected)
        return selected, total - selected

    def pick_item(self) -> str:
        """Pick an image item in the list: its quicklook and properties appear beside the map
        (which zooms to it); returns its id."""
        listed = self.el(".mlhub-item-list select")
        option = listed.locator("option", has_text="_source_").first
        option.wait_for(state="attached")
        listed.select_option(value=option.get_attribute("value"))
        detail = self.el(".mlhub-item-detail")
        detail.locator(".mlhub-item-title", has_text="_source_").wait_for()
        item_id = detail.locator(".mlhub-item-title b").inner_text().strip()
        self._quicklook_shown()
        self.el(".mlhub-item-facts", has_text="eo:cloud_cover").wait_for()
        self.el(".mlhub-preview-note", has_text="red, green, blue").wait_for()
        self.shot("item-preview")
        return item_id

    def preview_item(self) -> str:
        """:meth:`pick_item`, close it, then click the middle of the map: the item on top there
        (the tile's label item) is previewed, its labels drawn on the map."""
        item_id = self.pick_item()
        detail = self.el(".mlhub-item-detail")
        self.el("button.mlhub-close-preview").click()
        detail.wait_for(state="hidden")
        container = self.el(".mlhub-map .leaflet-container")
        container.scroll_into_view_if_needed()
        box = container.bounding_box()
        assert box is not None
        self.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        m = re.search(r"_([a-z]{2}_\d{2})_", item_id)
        assert m, item_id
        title = detail.locator(".mlhub-item-title", has_text=f"_{m.group(1)}_")
        title.wait_for()
        if "_labels_" in title.inner_text():
            self.el(".mlhub-preview-note", has_text="drawn on the map").wait_for()
            self.page.wait_for_function(
                f'() => document.querySelectorAll(".mlhub-explorer .mlhub-map '
                f"path[stroke='{LABEL_COLOR}']\").length > 0"
            )
        else:
            self._quicklook_shown()
        self.shot("item-clicked")
        return item_id

    def _quicklook_shown(self) -> None:
        self.page.wait_for_function(
            "() => { const i = document.querySelector("
            "'.mlhub-explorer .mlhub-item-detail img.mlhub-quicklook'); "
            "return i && i.complete && i.naturalWidth > 0 && i.offsetWidth > 0; }"
        )

    # -- 4. dates ------------------------------------------------------------------------------
    def set_dates(self) -> None:
        self.tab("Dates")
        self.el(".mlhub-date-extent", has_text="2020-01-01").wait_for()
        self.el(".mlhub-start-date input").fill("2021-01-01")
        self.el(".mlhub-end-date input").fill("2020-06-30")
        self.el(".mlhub-date-message", has_text="before the start date").wait_for()
        self.shot("dates-invalid")
        self.el(".mlhub-end-date input").fill("2021-12-31")
        self.el(".mlhub-date-readout", has_text="2021-01-01 to 2021-12-31").wait_for()
        self.cleared(".mlhub-date-message")

    # -- 5. content ------------------------------------------------------------------------------
    def untick_thumbnails(self) -> None:
        self.tab("Content")
        thumb = self.el(".mlhub-asset-key", has_text="thumbnail").locator("input")
        thumb.wait_for()
        thumb.click()
        self.el(
            ".mlhub-content-readout", has_text="mlhub_widgets_demo_crops_source: image"
        ).wait_for()
        self.shot("content")

    # -- 6. download -----------------------------------------------------------------------------
    def start_error_recovers(self, a_file: Path, good: Path) -> None:
        """An output folder that is a file: one line, Start works again, nothing lost."""
        self.tab("Download")
        self.el(".mlhub-workers input").fill("2")
        self.el(".mlhub-workers input").press("Tab")
        out = self.el(".mlhub-output-dir input")
        out.fill(str(a_file))
        out.press("Tab")
        self.el(".mlhub-output-where", has_text=str(a_file / DATASET)).wait_for()
        self.el("button.mlhub-start").click()
        status = self.el(".mlhub-download-status")
        status.filter(has_text="exists and is not a folder").wait_for()
        assert "\n" not in status.inner_text().strip()
        start = self.el("button.mlhub-start")
        self.page.wait_for_function(
            "() => !document.querySelector('.mlhub-explorer button.mlhub-start').disabled"
        )
        assert start.inner_text().strip() == "Start"  # not "Start (resume)"
        assert "Starting" not in self.el(".mlhub-progress-text").inner_text()
        summary = self.page.locator(".mlhub-summary").inner_text()
        assert "mlhub_widgets Demo Crop Type Dataset" in summary and "2021-01-01" in summary
        self.shot("start-error")
        out.fill(str(good))
        out.press("Tab")
        self.el(".mlhub-output-where", has_text=str(good / DATASET)).wait_for()

    def estimate(self) -> int:
        self.el("button.mlhub-estimate").click()
        result = self.el(".mlhub-estimate-result", has_text="assets,")
        result.wait_for()
        m = re.search(r"(\d+) assets", result.inner_text())
        assert m, result.inner_text()
        self.shot("estimate")
        return int(m.group(1))

    def start(self) -> None:
        progress = self.el(".mlhub-progress-text")
        self.el("button.mlhub-start").click()
        progress.filter(has_text="running").wait_for()
        self.page.wait_for_function(
            "parseFloat(document.querySelector("
            "'.mlhub-explorer .mlhub-progress-bar .progress-bar').style.width) > 0"
        )

    def pause_and_resume(self) -> None:
        progress = self.el(".mlhub-progress-text")
        self.el("button.mlhub-pause").click()
        progress.filter(has_text="paused").wait_for()
        percent = self.el(".mlhub-progress-percent").inner_text()
        assert percent.strip() != "100 %", percent
        assert self.el("button.mlhub-resume").is_enabled()
        self.shot("paused")
        self.el("button.mlhub-resume").click()
        progress.filter(has_text="running").wait_for()

    def finish(self, n_estimated: int) -> Path:
        progress = self.el(".mlhub-progress-text")
        progress.filter(has_text="finished").wait_for(timeout=180_000)
        self.el(".mlhub-progress-percent", has_text="100 %").wait_for()
        width = self.page.eval_on_selector(
            ".mlhub-explorer .mlhub-progress-bar .progress-bar", "e => e.style.width"
        )
        assert width == "100%"
        assert f"{n_estimated} / {n_estimated}" in progress.inner_text()
        self.el(".mlhub-download-status", has_text="Done:").wait_for()
        return self.shot("finished")

    def finish_with_failures(self, n_failed: int) -> None:
        """The download ends with ``n_failed`` assets the hub did not have."""
        progress = self.el(".mlhub-progress-text")
        progress.filter(has_text="failed").wait_for(timeout=180_000)
        self.el(".mlhub-failed-assets", has_text=f"{n_failed} failed asset").wait_for()

    # -- 7. on disk ------------------------------------------------------------------------------
    def on_disk(self, files: int, failed: int = 0) -> None:
        """The On-disk tab lists the files (and the failures), the paths and the code."""
        from playwright.sync_api import expect

        self.tab("On disk")
        summary = self.el(".mlhub-disk-summary")
        summary.filter(has_text=re.compile(rf"\b{files} files? on disk")).filter(
            has_text=f"· {failed} failed"
        ).wait_for()
        assert f"{DATASET}" in self.el(".mlhub-disk-paths").inner_text()
        assert "mw.open_local(" in self.el(".mlhub-snippet").inner_text()
        # the items with files are drawn on the tab's map (once the browser has the layer's data)
        self.el(f".mlhub-disk-map path[stroke='{ON_DISK_COLOR}']").first.wait_for(state="attached")
        if failed:
            self.el(".mlhub-disk-failed", has_text=f"{failed} failed asset").wait_for()
            self.el(f".mlhub-disk-map path[stroke='{FAILED_COLOR}']").first.wait_for(
                state="attached"
            )
            expect(self.el("button.mlhub-retry")).to_be_enabled()
        self.shot("on-disk" + ("-failed" if failed else ""))

    def retry(self, files: int) -> None:
        """Retry downloads what failed: the tab ends with every file and no failure."""
        from playwright.sync_api import expect

        self.el("button.mlhub-retry").click()
        self.el(".mlhub-disk-status", has_text="Done:").wait_for(timeout=180_000)
        summary = self.el(".mlhub-disk-summary")
        summary.filter(has_text=re.compile(rf"\b{files} files on disk")).filter(
            has_text="· 0 failed"
        ).wait_for()
        expect(self.el("button.mlhub-retry")).to_be_disabled()
        self.el(f".mlhub-disk-map path[stroke='{FAILED_COLOR}']").first.wait_for(state="detached")
        self.shot("on-disk-retried")


def asset_files(dataset_dir: Path) -> list[Path]:
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
