"""docs/training.md runs as written: every Python block, in order, against the bundled hub.

Marked ``torch``: it needs torch, torchvision and torchgeo, which ``make test`` does not install.
Run it with ``.venv/bin/nox -s training`` (or ``pytest --torch -m torch`` where they are
installed); without ``--torch`` it is deselected, never skipped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mlhub_widgets.hub import Hub

pytestmark = pytest.mark.torch

DOC = Path(__file__).resolve().parents[1] / "docs" / "training.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_the_training_recipe_runs(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np
    import rasterio
    import torch

    blocks = BLOCK.findall(DOC.read_text(encoding="utf-8"))
    assert len(blocks) == 5
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLHUB_ROOT_URL", hub.url)  # the recipe's download goes to this hub
    torch.manual_seed(0)  # the recipe shuffles
    scope: dict[str, Any] = {"__name__": "training_recipe"}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), scope)
    print(capsys.readouterr().out)

    pairs = scope["pairs"]
    assert len(pairs) == 72  # every label item of the demo dataset, all files on disk
    assert len(scope["classes"]) == 14

    # the PyTorch dataset: image = the first source file, mask = its polygons on its grid
    image, mask = scope["dataset"][0]
    row = pairs.iloc[0]
    with rasterio.open(row["source_assets"][0]["image"]) as src:
        np.testing.assert_array_equal(image.numpy(), src.read().astype("float32") / 10_000)
    assert image.dtype == torch.float32 and mask.dtype == torch.int64
    assert tuple(mask.shape) == (32, 32) and int((mask > 0).sum()) > 0
    assert set(mask.unique().tolist()) <= set(range(len(scope["classes"]) + 1))
    images, masks = scope["images"], scope["masks"]
    assert tuple(images.shape) == (8, 4, 32, 32) and tuple(masks.shape) == (8, 32, 32)
    losses = scope["losses"]
    assert len(losses) == 3 * 9 and all(np.isfinite(losses))
    assert np.mean(losses[-9:]) < np.mean(losses[:9])  # the last epoch does better than the first

    # torchgeo: windows where imagery and labels overlap
    batch = scope["batch"]
    assert tuple(batch["image"].shape) == (4, 4, 16, 16)
    assert tuple(batch["mask"].shape) == (4, 16, 16)
    assert int(batch["mask"].max()) <= len(scope["classes"])
    assert len(scope["both"]) > 0 and scope["imagery"].crs.to_epsg() == 4326
