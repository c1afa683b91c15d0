"""Every notebook in notebooks/ runs top to bottom against the bundled hub, with no key.

Each kernel starts its own bundled hub (MLHUB_ROOT_URL unset), exactly as a user on Binder or a
fresh machine would. The tutorials (02-04, written by ``scripts/write_notebooks.py``) are saved
with their outputs: a fresh run must show the same text and the same figures, and what the
tutorial says it did (files in ``downloads/``, the hub stopped) is checked here, from outside,
not by ``assert`` cells in the tutorial.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
TUTORIALS = [p for p in NOTEBOOKS if not p.name.startswith("01-")]  # 01 is the Voila app
REGENERATE = "run `python scripts/write_notebooks.py` and commit the notebooks"


def test_the_four_documented_notebooks_exist() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "01-explorer.ipynb",
        "02-discovery-with-dataframes.ipynb",
        "03-filtered-download.ipynb",
        "04-models.ipynb",
    ]


def code_cells(nb: Any) -> list[Any]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def shown(cell: Any) -> list[tuple[str, str]]:
    """What a reader sees of a cell's outputs: stream text (joined), plain text, figures."""
    seen: list[tuple[str, str]] = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            if seen and seen[-1][0] == out.name:
                seen[-1] = (out.name, seen[-1][1] + out.text)
            else:
                seen.append((out.name, out.text))
        elif out.output_type == "error":
            seen.append(("error", f"{out.ename}: {out.evalue}"))
        else:
            data = out.get("data", {})
            if "image/png" in data:
                seen.append(("figure", "image/png"))
            else:
                seen.append(("result", data.get("text/plain", "")))
    return seen


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_tutorial_cells_hold_no_assert(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in code_cells(nb):
        lines = [line.strip() for line in cell.source.splitlines()]
        assert not any(line.startswith("assert") for line in lines), cell.source


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_is_saved_with_its_outputs_and_stops_its_hub(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    cells = code_cells(nb)
    assert all(cell.execution_count == n for n, cell in enumerate(cells, 1)), REGENERATE
    assert shown(cells[0]) == [("stdout", "API: the bundled hub, on 127.0.0.1\n")], REGENERATE
    assert "hub.stop()" in cells[-1].source
    assert shown(cells[-1]) == [("stdout", "bundled hub stopped\n")], REGENERATE
    assert not any(kind in ("stderr", "error") for c in cells for kind, _ in shown(c))


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
    saved = nbformat.read(path, as_version=4)
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
    if path in TUTORIALS:
        for before, after in zip(code_cells(saved), code_cells(nb), strict=True):
            assert shown(after) == shown(before), f"cell {before.id}: {REGENERATE}"
    if path.name == "03-filtered-download.ipynb":  # the download went where it says
        folder = tmp_path / "downloads" / "mlhub_widgets_demo_crops"
        labels = sorted(folder.rglob("labels.geojson"))
        assert len(labels) == 6 and all("_ke_" in p.parent.name for p in labels)
        assert (folder / "mlhub_assets.db").is_file()
    print(f"{path.name}: {time.monotonic() - started:.1f}s")
