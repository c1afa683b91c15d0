"""Screenshots of the explorer for the README and docs/, taken from the demo as a user sees it.

    python scripts/make_screenshots.py                       # every shot, light and dark
    python scripts/make_screenshots.py --theme dark --only download

Starts the bundled hub (asset bodies slowed down, so that a download can be caught while it
runs), serves ``notebooks/01-explorer.ipynb`` with Voila exactly as ``mlhub demo`` does (from a
temporary copy, so the explorer's output folder reads ``downloads`` and nothing lands in the
repository), drives it in headless Chromium through Playwright, offline (every request that is
not to 127.0.0.1 is aborted), and writes ``docs/screenshots/<theme>-<shot>.png``.

Needs the ``test`` extra (Playwright's Python package) and a Chromium: Debian's ``chromium``
(``MLHUB_CHROMIUM`` names another binary). Playwright downloads no browser here.

To add a shot, write a function that takes the page from the state the previous shot left to
the state to capture, and append it to :data:`SHOTS` (they run in order, on one page).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlhub_widgets.demo import wait_until_listening
from mlhub_widgets.download import DEFAULT_WORKERS
from mlhub_widgets.hub import FaultConfig, serve
from mlhub_widgets.widgets.voila_app import voila_command

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "01-explorer.ipynb"
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("MLHUB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 1600}  # taller than any tab: nothing off-screen
DATASET_TITLE = "mlhub_widgets Demo Crop Type Dataset"
#: Bytes per second for each asset body: a whole-dataset download takes a few seconds.
ASSET_BPS = 2_000
TIMEOUT_MS = 300_000  # a loaded machine: the first kernel may take minutes


def tab(page: Any, title: str) -> None:
    page.locator(".mlhub-tabs .lm-TabBar-tab", has_text=title).click()


def connected(page: Any) -> None:
    """The explorer connected to the hub (it opens the Dataset tab by itself)."""
    page.locator(".mlhub-summary", has_text="datasets available").wait_for()


def search(page: Any) -> None:
    """Datasets tagged "crop type": the results table."""
    tab(page, "Dataset")
    tags = page.locator(".mlhub-tags select")
    option = tags.locator("option", has_text="crop type (").first
    option.wait_for(state="attached")
    label = option.inner_text()  # "crop type (16)"
    tags.select_option(label=label)
    count = label.rsplit("(", 1)[1].rstrip(")")
    page.locator(".mlhub-result-count", has_text=f"{count} datasets found").wait_for()
    page.get_by_text("Searching datasets").wait_for(state="hidden")


def dataset(page: Any) -> None:
    """The demo dataset picked from the results: its details and sizes."""
    tab(page, "Dataset")
    tags = page.locator(".mlhub-tags select")
    option = tags.locator("option", has_text="demo (").first
    tags.select_option(label=option.inner_text())
    page.locator(".mlhub-result-count", has_text="1 dataset found").wait_for()
    page.locator("button.mlhub-title-button", has_text=DATASET_TITLE).click()
    page.locator(".mlhub-detail h3", has_text=DATASET_TITLE).wait_for()
    page.locator(".mlhub-detail", has_text="Estimated dataset size").wait_for()


#: A dataset whose items are big enough to see at once: 4 tiles of about 20 km, 52 dates.
MAP_DATASET = "ref_african_crops_kenya_02"


def area(page: Any) -> None:
    """A crop-type dataset on the map beside its items: a rectangle over the west of it
    selects the items there (highlighted), the others are dimmed."""
    page.locator(f"button.mlhub-title-button[title='Select {MAP_DATASET}']").click()
    tab(page, "Area")
    page.locator(".mlhub-item-count", has_text="of 56 items selected").wait_for()
    page.locator(".mlhub-map .leaflet-draw-draw-rectangle").click()
    container = page.locator(".mlhub-map .leaflet-container")
    box = container.bounding_box()
    x0, y0 = box["x"] + box["width"] * 0.12, box["y"] + box["height"] * 0.06
    x1, y1 = box["x"] + box["width"] * 0.47, box["y"] + box["height"] * 0.94
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=8)
    page.mouse.up()
    page.locator(".mlhub-aoi-readout", has_text="bbox W").wait_for()
    page.locator(".mlhub-item-count", has_text="items selected").wait_for()


def preview(page: Any) -> None:
    """An item picked in the list: its quicklook, assets and properties beside the map."""
    items = page.locator(".mlhub-item-list select")
    option = items.locator("option").filter(has_not_text="label").first
    items.select_option(value=option.get_attribute("value"))
    page.locator(".mlhub-preview-note", has_text="stretched").wait_for()
    page.wait_for_function(
        "() => { const i = document.querySelector('img.mlhub-quicklook'); "
        "return i && i.complete && i.naturalWidth > 0; }"
    )


def download(page: Any) -> None:
    """A download of the whole demo dataset, caught while it runs."""
    tab(page, "Area")
    page.click("button.mlhub-clear-area")
    page.locator(".mlhub-aoi-readout", has_text="none").wait_for()
    tab(page, "Download")
    page.fill(".mlhub-workers input", str(DEFAULT_WORKERS))  # what the API and CLI use
    page.press(".mlhub-workers input", "Tab")
    page.click("button.mlhub-estimate")
    page.locator(".mlhub-estimate-result", has_text="assets,").wait_for()
    page.click("button.mlhub-start")
    page.locator(".mlhub-progress-text", has_text="running").wait_for()
    page.wait_for_function(
        "() => { const p = parseFloat(document.querySelector('.mlhub-progress-percent')"
        ".textContent); return p >= 25 && p < 90; }",
        timeout=TIMEOUT_MS,
    )


def on_disk(page: Any) -> None:
    """After the download: the files on disk, on the map, with the paths and the code."""
    page.locator(".mlhub-progress-text", has_text="finished").wait_for()
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    tab(page, "On disk")
    # opening the tab reads the folder again: the picture waits for that read to end (a quick
    # read may be over before the spinner is seen, hence the short first wait)
    reading = page.locator(".mlhub-disk-status", has_text="Reading the files")
    with contextlib.suppress(PlaywrightTimeout):
        reading.wait_for(timeout=5_000)
    reading.wait_for(state="hidden")
    expect(page.locator("button.mlhub-disk-refresh")).to_be_enabled()
    page.locator(".mlhub-disk-summary", has_text="files on disk").wait_for()
    page.locator(".mlhub-disk-files", has_text="Files on disk").wait_for()


@dataclass(frozen=True)
class Shot:
    name: str
    prepare: Callable[[Any], None]


SHOTS = [
    Shot("search", search),
    Shot("map", area),
    Shot("preview", preview),
    Shot("dataset", dataset),
    Shot("download", download),
    Shot("on-disk", on_disk),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def explorer_in_voila(hub_url: str, theme: str, workdir: Path) -> Iterator[str]:
    """``mlhub demo``'s Voila, on a copy of the notebook in ``workdir``; yields its URL."""
    notebook = workdir / NOTEBOOK.name
    shutil.copyfile(NOTEBOOK, notebook)
    env = {**os.environ, "MLHUB_ROOT_URL": hub_url, "MLHUB_HOME": str(workdir / "mlhub-home")}
    for name in ("CONFIG", "DATA", "RUNTIME"):  # none of the user's Jupyter settings
        env[f"JUPYTER_{name}_DIR"] = str(workdir / "jupyter" / name.lower())
    for var in ("MLHUB_API_KEY", "MLHUB_PROFILE", "MLHUB_OUTPUT_DIR"):
        env.pop(var, None)
    port = free_port()
    log = (workdir / f"voila-{theme}.log").open("w")
    proc = subprocess.Popen(
        [*voila_command(notebook, port=port), f"--theme={theme}"],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Voila and its kernels: one process group, stopped together
    )
    try:
        if not wait_until_listening(proc, port):
            raise RuntimeError(f"Voila did not start; see {log.name}")
        yield f"http://127.0.0.1:{port}/"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def take(browser: Any, url: str, theme: str, shots: list[Shot]) -> list[Path]:
    context = browser.new_context(viewport=VIEWPORT, color_scheme=theme)
    context.route(r"^(?!https?://(127\.0\.0\.1|localhost)[:/]).*", lambda route: route.abort())
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    written = []
    try:
        page.goto(url, wait_until="domcontentloaded")
        connected(page)
        for shot in SHOTS:
            shot.prepare(page)
            if shot in shots:
                path = OUT / f"{theme}-{shot.name}.png"
                page.locator(".mlhub-explorer").screenshot(path=str(path), animations="disabled")
                written.append(path)
                print("wrote", path.relative_to(ROOT), flush=True)
            if shot is shots[-1]:
                break
    finally:
        context.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--theme", choices=("light", "dark"), action="append")
    parser.add_argument("--only", choices=[s.name for s in SHOTS], action="append")
    args = parser.parse_args()
    themes = args.theme or ["light", "dark"]
    shots = [s for s in SHOTS if not args.only or s.name in args.only]
    if not Path(CHROMIUM).exists():
        parser.error(f"no Chromium at {CHROMIUM} (apt-get install chromium, or MLHUB_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    faults = FaultConfig(bandwidth_bps=ASSET_BPS, scope="assets")
    with serve(faults=faults) as hub, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for theme in themes:
                # a plain, readable folder (the pictures show it as the download folder)
                workdir = Path(tempfile.gettempdir()) / "mlhub-demo"
                shutil.rmtree(workdir, ignore_errors=True)
                workdir.mkdir()
                try:
                    with explorer_in_voila(hub.url, theme, workdir) as url:
                        take(browser, url, theme, shots)
                finally:
                    shutil.rmtree(workdir, ignore_errors=True)
        finally:
            browser.close()


if __name__ == "__main__":
    main()
