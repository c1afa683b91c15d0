"""``mlhub download`` / ``mlhub archive`` exit codes and output."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mlhub_widgets.cli import main
from mlhub_widgets.download import plan_download
from mlhub_widgets.hub import FaultConfig, serve

DS = "nasa_marine_debris"
BBOX = "--bbox=-87.5610,5.9137,-87.5555,15.9191"


def test_cli_download_estimate_failure_and_success(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve() as hub:
        monkeypatch.setenv("MLHUB_ROOT_URL", hub.url)
        monkeypatch.delenv("MLHUB_API_KEY", raising=False)
        out = str(tmp_path)
        assert main(["download", DS, "-o", out, "--estimate", BBOX]) == 0
        text = capsys.readouterr().out
        assert "9 assets" in text and "nasa_marine_debris_labels: 5 assets" in text
        assert hub.count("asset") == 0
        assert not (tmp_path / DS).exists()  # an estimate writes nothing
        plan_download(DS, out, bbox=[-87.5610, 5.9137, -87.5555, 15.9191])  # the API keeps it
        # bad arguments: exit 2, no request
        hub.reset_counters()
        assert main(["download", DS, "-o", out, "--bbox=1,2,3"]) == 2
        assert main(["download", DS, "-o", out, "--collection-filter", "{not json"]) == 2
        assert main(["download", DS, "-o", out, BBOX, "--intersects", "x.geojson"]) == 2
        assert hub.count() == 0
        # one asset missing: exit 1 and the report path
        with sqlite3.connect(tmp_path / DS / "mlhub_assets.db") as con:
            url = con.execute("SELECT url FROM assets WHERE selected=1 LIMIT 1").fetchone()[0]
        hub.faults = FaultConfig(missing=frozenset({url}))
        assert main(["download", DS, "-o", out, "-q", BBOX]) == 1
        err = capsys.readouterr().err
        assert "1 of 9 assets" in err and "err_report.csv" in err
        hub.faults = FaultConfig()
        assert main(["download", DS, "-o", out, "-q", BBOX]) == 0
        assert "9 assets selected" in capsys.readouterr().out


def test_cli_archive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with serve() as hub:
        cid = "ref_african_crops_kenya_02_labels"
        args = ["archive", cid, "-o", str(tmp_path), "-q", "--root-url", hub.url]
        assert main(args) == 0
        assert (tmp_path / f"{cid}.tar.gz").is_file()
        assert str(tmp_path / f"{cid}.tar.gz") in capsys.readouterr().out
        assert main(["archive", "nope", "-o", str(tmp_path), "-q", "--root-url", hub.url]) == 1
        assert 'collection "nope" has no archive' in capsys.readouterr().err
