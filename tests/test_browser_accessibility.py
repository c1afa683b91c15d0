"""Accessibility of the explorer in a real browser: contrast in the light and dark themes, labels,
and the whole user story with the keyboard only.

The explorer app (``voila_app.APP_NOTEBOOK``) is served by Voila (``--theme=light`` and
``--theme=dark``) with the bundled demo hub (no ``MLHUB_ROOT_URL``: the notebook starts it in the
kernel), offline, in headless Chromium. Per theme, every tab is screenshotted to ``test-
artifacts/browser-accessibility/`` and every visible text inside the explorer (and every text
field) must reach WCAG AA contrast against its effective background: 4.5:1, or 3:1 for large text
(``CONTRAST_JS`` in ``browser_support``). Every ``input``/``select``/``textarea``/``button`` must
have an accessible name (``UNLABELLED_JS``). The keyboard test then uses only Tab, Shift+Tab,
Enter, Space, arrow keys and typing to switch tabs, test the connection, search, select rows, type
an area and dates, untick an asset key, estimate and download, asserting on
``document.activeElement`` and on what the kernel writes back into the page.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from mlhub_widgets.widgets.voila_app import APP_NOTEBOOK

from .browser_support import (
    ACTIVE_JS,
    CHROMIUM,
    CHROMIUM_ARGS,
    CONTRAST_JS,
    NON_LOOPBACK,
    UNLABELLED_JS,
    jupyter_env,
    voila,
)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = APP_NOTEBOOK  # the explorer app, as `mlhub demo` and Binder serve it
ARTIFACTS = ROOT / "test-artifacts" / "browser-accessibility"
TABS = ("Connect", "Dataset", "Area", "Dates", "Content", "Download", "On disk")
DEMO = "mlhub_widgets_demo_crops"
DEMO_TITLE = "mlhub_widgets Demo Crop Type Dataset"
TAB_BAR = ".mlhub-tabs .lm-TabBar-tab"


class Pages:
    """One Voila server and page per theme, started on first use and shared by the module."""

    def __init__(self, browser: Any, work: Path, stack: ExitStack) -> None:
        self.browser = browser
        self.work = work
        self.stack = stack
        self.pages: dict[str, Any] = {}
        self.errors: dict[str, list[str]] = {}

    def get(self, theme: str) -> Any:
        if theme in self.pages:
            return self.pages[theme]
        tmp = self.work / theme
        env = jupyter_env(tmp / "jupyter")
        env.update(MLHUB_OUTPUT_DIR=str(tmp / "downloads"), MLHUB_HOME=str(tmp / "mlhub-home"))
        for var in ("MLHUB_ROOT_URL", "MLHUB_API_KEY", "MLHUB_PROFILE", "MLHUB_BASEMAP"):
            env.pop(var, None)  # the notebook then starts the bundled demo hub in its kernel
        url = self.stack.enter_context(
            voila(NOTEBOOK, env, tmp / "voila.log", [f"--theme={theme}"])
        )
        context = self.browser.new_context(viewport={"width": 1200, "height": 900})
        self.stack.callback(context.close)
        context.route(NON_LOOPBACK, lambda route: route.abort())
        page = context.new_page()
        errors = self.errors.setdefault(theme, [])
        page.on("pageerror", lambda exc: errors.append(f"{exc}\n{exc.stack}"))
        page.set_default_timeout(60_000)
        page.goto(url, wait_until="domcontentloaded")
        page.locator(".mlhub-summary", has_text="datasets available").wait_for()
        page.wait_for_timeout(500)
        # Known, not about accessibility: while Voila loads the page, the explorer's first
        # search (run by a worker thread as soon as the demo hub answers) sometimes creates the
        # result cells' models in a state the front end cannot render yet; ipywidgets then
        # throws "reading 'create_view'" from a result cell's layout/style view. Those errors
        # are kept in the artifacts; any other error, and any error after the load, fails.
        known = [e for e in errors if "reading 'create_view'" in e]
        if known:
            (ARTIFACTS / f"page-load-errors-{theme}.txt").write_text("\n\n".join(known))
            print(f"\n{theme}: {len(known)} known page-load error(s) ignored (see artifacts)")
        errors[:] = [e for e in errors if e not in known]
        self.pages[theme] = page
        return page


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: apt-get install -y chromium")
    from playwright import sync_api

    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def pages(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pages]:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        yield Pages(browser, tmp_path_factory.mktemp("a11y"), stack)


def _failure_shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"failure-{name}.png"), full_page=True)


def _no_page_errors(pages: Pages, theme: str) -> None:
    """Uncaught exceptions in the page fail the test (their stacks go to the artifacts)."""
    errors = pages.errors[theme]
    if errors:
        (ARTIFACTS / f"page-errors-{theme}.txt").write_text("\n\n".join(errors))
    assert not errors, errors


def _click_tab(page: Any, title: str) -> None:
    page.locator(TAB_BAR, has_text=title).click()
    page.locator(f"{TAB_BAR}.lm-mod-current", has_text=title).wait_for()


def _shot(page: Any, path: Path) -> None:
    """A screenshot of the whole explorer (the viewport grows so that nothing is clipped by
    Voila's scrolling container)."""
    height = page.eval_on_selector(".mlhub-explorer", "e => e.getBoundingClientRect().bottom")
    page.set_viewport_size({"width": 1200, "height": max(900, int(height) + 40)})
    page.locator(".mlhub-explorer").screenshot(path=str(path))
    page.set_viewport_size({"width": 1200, "height": 900})


def _format_bad(bad: list[dict[str, Any]]) -> str:
    """One line per offending text (the same text seen on several tabs once)."""
    lines: dict[str, list[str]] = {}
    for b in bad:
        line = (
            f"{b['ratio']}:1 < {b['need']}  {b['color']} on {b['background']}  "
            f"{b['where']}  {b['text']!r}"
        )
        lines.setdefault(line, []).append(b["tab"])
    return "\n".join(f"  [{', '.join(tabs)}] {line}" for line, tabs in lines.items())


# -- contrast ------------------------------------------------------------------------------------


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_tab_is_readable(pages: Pages, theme: str) -> None:
    started = time.monotonic()
    page = pages.get(theme)
    try:
        # the states with the most to read: a dataset selected, an invalid date range (an error
        # message in Dates, a warning in Download), the typed-area fields open
        _click_tab(page, "Dataset")
        page.locator("button.mlhub-title-button", has_text=DEMO_TITLE).click()
        page.locator(".mlhub-detail", has_text="Estimated dataset size").wait_for()
        page.locator(".mlhub-asset-key").first.wait_for(state="attached")
        _click_tab(page, "Area")
        page.click("button.mlhub-entry-toggle")
        page.locator(".mlhub-area-entry .mlhub-bbox-west input").wait_for()
        # an item's detail beside the map: its quicklook, properties and assets
        items = page.locator(".mlhub-item-list select")
        option = items.locator("option", has_text="_source_").first
        option.wait_for(state="attached")
        items.select_option(value=option.get_attribute("value"))
        page.locator(".mlhub-preview-note", has_text="red, green, blue").wait_for()
        _click_tab(page, "Dates")
        page.fill(".mlhub-start-date input", "2021-01-01")
        page.fill(".mlhub-end-date input", "2020-06-30")
        page.locator(".mlhub-date-message", has_text="before the start date").wait_for()

        bad: list[dict[str, Any]] = []
        checked = 0
        for n, tab in enumerate(TABS, start=1):
            _click_tab(page, tab)
            page.wait_for_timeout(300)  # let the panel lay out (the map fits its bounds)
            path = ARTIFACTS / f"{theme}-{n}-{tab.lower()}.png"
            _shot(page, path)
            result = page.eval_on_selector(".mlhub-explorer", CONTRAST_JS)
            checked += result["checked"]
            bad += [{**b, "tab": tab} for b in result["bad"]]
        assert checked > 300, checked  # the check saw the panels' text
        assert not bad, f"text below WCAG AA contrast in the {theme} theme:\n" + _format_bad(bad)
        _no_page_errors(pages, theme)
    except BaseException:
        _failure_shot(page, f"contrast-{theme}")
        raise
    print(f"\n{theme} theme: {checked} texts checked in {time.monotonic() - started:.1f}s")


# -- labels --------------------------------------------------------------------------------------


def test_every_control_has_a_name(pages: Pages) -> None:
    page = pages.get("dark")
    try:
        _click_tab(page, "Area")
        if not page.locator(".mlhub-area-entry .mlhub-bbox-west input").is_visible():
            page.click("button.mlhub-entry-toggle")
        result = page.eval_on_selector(".mlhub-explorer", UNLABELLED_JS)
        assert result["checked"] > 40, result  # every panel's controls were seen
        assert not result["missing"], "controls without an accessible name:\n  " + "\n  ".join(
            result["missing"]
        )
    except BaseException:
        _failure_shot(page, "labels")
        raise


# -- keyboard ------------------------------------------------------------------------------------


class Keyboard:
    """Moves the focus with the keyboard only and records where it went."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.shots = 0

    def active(self) -> str:
        text: str = self.page.evaluate(ACTIVE_JS)
        return text

    def focused(self, selector: str, has_text: str | None = None) -> bool:
        """Whether the focused element matches ``selector`` (and its widget shows ``has_text``:
        the text of the closest element with an ``mlhub-`` class, e.g. a checkbox's label)."""
        ok: bool = self.page.evaluate(
            """([sel, text]) => {
                const el = document.activeElement;
                if (!el || !el.matches(sel)) return false;
                const scope = el.closest('[class*="mlhub-"]') || el;
                return text === null || (scope.innerText || '').includes(text);
            }""",
            [selector, has_text],
        )
        return ok

    def tab_to(
        self, selector: str, *, has_text: str | None = None, back: bool = False, limit: int = 60
    ) -> None:
        """Press Tab (or Shift+Tab) until ``document.activeElement`` matches ``selector``."""
        seen: list[str] = []
        for _ in range(limit):
            self.page.keyboard.press("Shift+Tab" if back else "Tab")
            if self.focused(selector, has_text):
                return
            seen.append(self.active())
        raise AssertionError(
            f"{selector} not reached with {'Shift+' if back else ''}Tab in {limit} presses; "
            "the focus went to:\n  " + "\n  ".join(seen)
        )

    def tab_bar(self, title: str) -> None:
        """Back to the tab bar, arrow keys to the tab ``title``, Enter opens it."""
        if not self.focused(TAB_BAR):
            self.tab_to(TAB_BAR, back=True)
        for _ in range(len(TABS)):
            if title in self.active():
                break
            self.page.keyboard.press("ArrowRight")
        assert title in self.active(), self.active()
        self.page.keyboard.press("Enter")
        self.page.locator(f"{TAB_BAR}.lm-mod-current", has_text=title).wait_for()
        assert self.page.locator(f"{TAB_BAR}.lm-mod-current").get_attribute("aria-selected") == (
            "true"
        )

    def shot(self, name: str) -> None:
        self.shots += 1
        _shot(self.page, ARTIFACTS / f"keyboard-{self.shots:02d}-{name}.png")


def test_keyboard_only_user_story(pages: Pages) -> None:
    started = time.monotonic()
    page = pages.get("dark")
    kb = Keyboard(page)
    try:
        # from wherever the focus is, Tab reaches the tab bar (the current tab is focusable)
        kb.tab_to(TAB_BAR)

        # tabs: every panel can be opened with arrow keys + Enter
        for tab, panel in zip(
            TABS,
            (
                ".mlhub-login",
                ".mlhub-search-panel",
                ".mlhub-map-panel",
                ".mlhub-dates",
                ".mlhub-content",
                ".mlhub-download",
                ".mlhub-on-disk",
            ),
            strict=True,
        ):
            kb.tab_bar(tab)
            assert page.locator(panel).is_visible(), tab
        # (ArrowRight wraps around from the last tab to the first)

        # Connect: type a key, Test connection with Enter; the kernel says how it connected
        kb.tab_bar("Connect")
        kb.tab_to(".mlhub-api-key input")
        page.keyboard.type("keyboard-key-0123")
        kb.tab_to("button.mlhub-connect")
        page.keyboard.press("Enter")
        page.locator(".mlhub-connection", has_text="with an API key").wait_for()
        kb.shot("connected")

        # Search: a phrase + Enter in the text box; the result count comes back from the kernel
        kb.tab_bar("Dataset")
        kb.tab_to(".mlhub-text input")
        page.keyboard.type("crop type")
        page.keyboard.press("Enter")
        count = page.locator(".mlhub-result-count", has_text="found")
        page.wait_for_function(
            "() => /\\b(\\d+) datasets? found/.test(document.querySelector("
            "'.mlhub-result-count').innerText) && !document.querySelector('.mlhub-result-count')"
            ".innerText.startsWith('32 ')"
        )
        assert "32 datasets" not in count.inner_text()
        # and the browser shows the new rows (views of new widgets render asynchronously)
        page.wait_for_function(
            "() => document.querySelectorAll('button.mlhub-title-button').length == "
            "parseInt(document.querySelector('.mlhub-result-count b').innerText)"
        )
        # result rows are buttons: Enter selects the first row, Space the demo dataset's row
        kb.tab_to("button.mlhub-title-button")
        first = page.evaluate("document.activeElement.innerText").strip()
        page.keyboard.press("Enter")
        page.locator(".mlhub-summary b", has_text=first).wait_for()
        kb.tab_to(f"button.mlhub-title-button[title='Select {DEMO}']")
        page.keyboard.press("Space")
        page.locator(".mlhub-summary b", has_text=DEMO_TITLE).wait_for()
        page.locator(".mlhub-detail h3", has_text=DEMO_TITLE).wait_for()
        assert "mlhub-row-selected" in (page.evaluate("document.activeElement.className"))
        kb.shot("selected")

        # Area: no mouse to draw with, so type a bbox (the toggle opens the fields)
        kb.tab_bar("Area")
        kb.tab_to("button.mlhub-entry-toggle")
        if not page.locator(".mlhub-area-entry .mlhub-bbox-west input").is_visible():
            page.keyboard.press("Enter")
        for side, value in (("west", "-20"), ("south", "-40"), ("east", "60"), ("north", "40")):
            kb.tab_to(f".mlhub-bbox-{side} input")
            page.keyboard.press("Control+A")
            page.keyboard.type(value)
        kb.tab_to("button.mlhub-apply-bbox")
        page.keyboard.press("Enter")
        page.locator(".mlhub-aoi-readout", has_text="bbox").wait_for()
        assert re.search(r"-20(\.0)?\D+-40(\.0)?\D+60", page.inner_text(".mlhub-aoi-readout"))
        kb.shot("area")

        # Dates: type into the date pickers (mm/dd/yyyy in this browser's locale)
        kb.tab_bar("Dates")
        kb.tab_to(".mlhub-start-date input")
        page.keyboard.type("01012021")
        kb.tab_to(".mlhub-end-date input")
        page.keyboard.type("12312021")
        page.keyboard.press("Tab")
        page.locator(".mlhub-date-readout", has_text="2021-01-01 to 2021-12-31").wait_for()
        assert page.inner_text(".mlhub-date-message").strip() == ""
        kb.shot("dates")

        # Content: Space unticks the thumbnail asset key
        kb.tab_bar("Content")
        kb.tab_to(".mlhub-asset-key input", has_text="thumbnail")
        page.keyboard.press("Space")
        page.locator(".mlhub-content-readout", has_text=f"{DEMO}_source: image").wait_for()
        kb.shot("content")

        # Download: Estimate, then Start, both with Enter
        kb.tab_bar("Download")
        kb.tab_to("button.mlhub-estimate")
        page.keyboard.press("Enter")
        estimate = page.locator(".mlhub-estimate-result", has_text="assets,")
        estimate.wait_for()
        assert int(re.search(r"(\d+) assets", estimate.inner_text()).group(1)) > 0  # type: ignore[union-attr]
        kb.tab_to("button.mlhub-start")
        page.keyboard.press("Enter")
        page.locator(".mlhub-progress-text", has_text="finished").wait_for(timeout=90_000)
        page.locator(".mlhub-progress-percent", has_text="100 %").wait_for()
        kb.shot("downloaded")
        _no_page_errors(pages, "dark")
    except BaseException:
        _failure_shot(page, "keyboard")
        raise
    print(f"\nkeyboard story: {time.monotonic() - started:.1f}s")
