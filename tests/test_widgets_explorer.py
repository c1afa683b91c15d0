"""The composed explorer: code access to the shared state, demo mode, the notebook, lazy import."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import mlhub_widgets
from mlhub_widgets.config.session import get_session
from mlhub_widgets.hub import Hub
from mlhub_widgets.widgets import Explorer
from mlhub_widgets.widgets.state import Filters

ROOT = Path(__file__).resolve().parents[1]
DEMO = "mlhub_widgets_demo_crops"


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("MLHUB_API_KEY", "MLHUB_PROFILE", "MLHUB_ROOT_URL", "MLHUB_OUTPUT_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLHUB_HOME", str(tmp_path / "mlhub-home"))
    return tmp_path


def test_import_is_lazy() -> None:
    code = (
        "import sys, mlhub_widgets\n"
        "assert 'ipywidgets' not in sys.modules\n"
        "assert 'mlhub_widgets.widgets.state' not in sys.modules\n"
        "ex = mlhub_widgets.explorer\n"
        "assert 'ipywidgets' in sys.modules and callable(ex)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    import mlhub_widgets.widgets.state as state_package

    # the explorer's state works without ipywidgets (an optional extra)
    for module in Path(state_package.__file__).parent.glob("*.py"):
        assert "ipywidgets" not in module.read_text(), module


def test_explorer_with_session_and_dataset_and_code_access(hub: Hub, home: Path) -> None:
    ex = mlhub_widgets.explorer(
        get_session(root_url=hub.url), dataset=DEMO, output_dir=str(home), basemap=None
    )
    assert isinstance(ex, Explorer)
    assert ex.tabs.selected_index == 1
    assert ex.state.wait(120)
    assert ex.dataset == DEMO and ex.state.asset_keys
    assert "mlhub_widgets Demo Crop Type Dataset" in ex.summary.value
    # filters set from code reach every panel
    ex.filters = {"bbox": (0, 0, 20, 20), "start": "2021-01-01", "end": "2021-06-30"}
    assert isinstance(ex.filters, Filters)
    assert "bbox W 0, S 0, E 20, N 20" in ex.map.readout.value
    assert len(ex.map.draw.data) == 1
    assert str(ex.dates.start.value) == "2021-01-01"
    assert "2021-01-01 to 2021-06-30" in ex.download.selection.value
    assert "bbox W 0" in ex.summary.value
    # panels write the same state code reads
    ex.content.checkbox(f"{DEMO}_source", "thumbnail").value = False
    assert ex.filters.collection_filter is not None
    assert ex.filters.collection_filter[f"{DEMO}_source"] == ("image",)
    ex.dataset = "nasa_marine_debris"
    assert ex.state.dataset_id == "nasa_marine_debris"
    assert ex.filters == Filters(bbox=(0, 0, 20, 20))
    ex.state.wait(120)
    # a job started from code is followed by the download panel
    from mlhub_widgets.download import download_dataset

    job = download_dataset(
        DEMO,
        home / "code",
        session=get_session(root_url=hub.url),
        catalog_only=True,
        progress=False,
        background=True,
    )
    ex.job = job
    job.wait(60)
    deadline = time.monotonic() + 10
    while "finished" not in ex.download.progress_text.value and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "finished" in ex.download.progress_text.value


def test_explorer_without_session_reports_connection_problem(home: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/mlhub/v1/"
        import os

        os.environ["MLHUB_ROOT_URL"] = url
        try:
            ex = mlhub_widgets.explorer(basemap=None)
            assert ex.state.wait(60)
        finally:
            del os.environ["MLHUB_ROOT_URL"]
    assert ex.tabs.selected_index == 0
    assert f"Cannot reach {url.split('/mlhub/')[0]}: no answer" in ex.login.status.value
    assert ex.login.root_url.value == url


def test_explorer_demo_mode_uses_the_in_process_hub(home: Path) -> None:
    ex = mlhub_widgets.explorer(demo=True, output_dir=str(home), basemap=None)
    assert ex.state.wait(120)
    assert "bundled demo hub" in ex.state.connection
    assert ex.login.server.value == "demo"
    assert ("demo", 1) in ex.state.tags


def test_notebook_runs_top_to_bottom_offline_in_demo_mode(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbformat

    monkeypatch.setenv("IPYTHONDIR", str(home / "ipython"))
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "notebooks" / "01-explorer.ipynb", as_version=4)
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "assert ex.state.wait(120)\nprint(ex.state.connection)\nprint(len(ex.state.tags))"
        )
    )
    client = NotebookClient(
        nb,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(home)}},
    )
    client.execute(env={"MLHUB_OUTPUT_DIR": str(home / "nb-out"), "MLHUB_BASEMAP": "none"})
    out = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert "Connected to the bundled demo hub" in out, out
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            assert o.get("output_type") != "error", o
