"""The explorer app under Voila frees its kernels: ten page loads leave one kernel, not ten.

Served exactly as ``mlhub demo`` serves it (``voila_app.voila_command``: the app notebook, the
``_xsrf`` cookie the page's shutdown request needs, kernel culling) and as Binder serves it
(Voila as an extension of a Jupyter server configured by ``binder/jupyter_server_config.py``).
Before the fix each load left a ~160 MB kernel behind (the shutdown POST got 403: "'_xsrf'
argument missing from POST"). A page that goes away without unloading (a killed browser: here
``page.close()``, which skips ``beforeunload``) leaves its kernel until culling ends it, which
the test shortens to seconds.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlhub_widgets.hub import Hub
from mlhub_widgets.widgets.voila_app import APP_NOTEBOOK, voila_command

from .browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    NON_LOOPBACK,
    free_port,
    jupyter_env,
    kernel_processes,
    server_process,
)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "browser-kernels"
LOADS = 10
#: Short culling for the test (the app's defaults are minutes).
FAST_CULLING = {"cull_idle_timeout": 4, "cull_interval": 1}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: apt-get install -y chromium")
    from playwright import sync_api

    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _kernel_count_reaches(server_pid: int, wanted: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    count = len(kernel_processes(server_pid))
    while count > wanted and time.monotonic() < deadline:
        time.sleep(0.2)
        count = len(kernel_processes(server_pid))
    return count


def _load_ten_times(browser: Any, url: str, server_pid: int, log: Path) -> Any:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.route(NON_LOOPBACK, lambda route: route.abort())
    page = context.new_page()
    page.set_default_timeout(90_000)
    peak = 0
    for n in range(LOADS):
        page.goto(url, wait_until="domcontentloaded")
        try:
            page.locator(".mlhub-summary", has_text="datasets available").wait_for()
        except Exception:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"failure-load-{n + 1}.png"), full_page=True)
            raise
        peak = max(peak, len(kernel_processes(server_pid)))
    # the page now open keeps its kernel; every earlier one was shut down on unload
    left = _kernel_count_reaches(server_pid, 1)
    rss = sum(p.memory_info().rss for p in kernel_processes(server_pid)) / 1e6
    print(f"\n{LOADS} loads: at most {peak} kernels at once, {left} left ({rss:.0f} MB)")
    assert left == 1, f"{left} kernels after {LOADS} loads; see {log}"
    assert "'_xsrf' argument missing" not in log.read_text()
    return page


@pytest.mark.parametrize("front", ["mlhub-demo", "binder"])
def test_ten_page_loads_leave_one_kernel(
    front: str, browser: Any, hub: Hub, tmp_path: Path
) -> None:
    env = jupyter_env(tmp_path / "jupyter")
    env.update(
        MLHUB_ROOT_URL=hub.url,
        MLHUB_OUTPUT_DIR=str(tmp_path / "downloads"),
        MLHUB_HOME=str(tmp_path / "mlhub-home"),
    )
    port = free_port()
    log = tmp_path / f"{front}.log"
    if front == "mlhub-demo":
        cmd = voila_command(APP_NOTEBOOK, port=port, culling=FAST_CULLING)
        cwd, url = APP_NOTEBOOK.parent, f"http://127.0.0.1:{port}/"
    else:
        # Binder: a Jupyter server (Voila is its extension) with the repository's config
        root = tmp_path / "repo"
        shutil.copytree(APP_NOTEBOOK.parent, root / "app")
        cmd = [
            sys.executable,
            "-m",
            "jupyter",
            "server",
            f"--config={ROOT / 'binder' / 'jupyter_server_config.py'}",
            "--no-browser",
            f"--port={port}",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.root_dir={root}",
            "--IdentityProvider.token=",
            "--allow-root",  # as CI runs here; a Binder user is not root
            *(f"--MappingKernelManager.{k}={v}" for k, v in FAST_CULLING.items()),
        ]
        cwd, url = root, f"http://127.0.0.1:{port}/voila/render/app/{APP_NOTEBOOK.name}"
    with server_process(cmd, cwd, env, log, port) as proc:
        page = _load_ten_times(browser, url, proc.pid, log)
        # a page that never unloads (killed browser): culling ends its kernel
        page.close()
        assert _kernel_count_reaches(proc.pid, 0) == 0, f"kernel not culled; see {log}"
        assert "Culling kernel" in log.read_text() or "culling" in log.read_text().lower()
