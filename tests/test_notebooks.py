"""Every notebook in notebooks/ runs top to bottom against the bundled hub, with no key.

Each kernel starts its own bundled hub (MLHUB_ROOT_URL unset), exactly as a user on Binder or a
fresh machine would.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_the_four_documented_notebooks_exist() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "01-explorer.ipynb",
        "02-discovery-with-dataframes.ipynb",
        "03-filtered-download.ipynb",
        "04-models.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CONFIG", "DATA", "RUNTIME"):
        folder = tmp_path / name.lower()
        folder.mkdir()
        monkeypatch.setenv(f"JUPYTER_{name}_DIR", str(folder))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("MLHUB_HOME", str(tmp_path / "mlhub-home"))
    for var in ("MLHUB_ROOT_URL", "MLHUB_API_KEY", "MLHUB_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    nb = nbformat.read(path, as_version=4)
    started = time.monotonic()
    client = NotebookClient(
        nb,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError with the failing cell's traceback
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
    assert os.environ.get("MLHUB_ROOT_URL") is None
    print(f"{path.name}: {time.monotonic() - started:.1f}s")
