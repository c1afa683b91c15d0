"""Hostile links and hrefs, end to end, from a hostile server written here (no hub).

* A static STAC catalogue whose ``child`` links form cycles (back to the collection, to the
  root, between two sub-catalogues): every document is read at most twice (once for the
  structure, once for the walk), the walk ends, and each cycle is reported with an
  ``MLHubWarning``. The server gives a runaway client 500s after a small budget, so the old
  behaviour (thousands of requests) fails fast.
* Asset hrefs that do not parse (a port out of range, a broken IPv6 address): those assets
  fail, with the reason in ``err_report.csv``; every other asset downloads, on every run.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest

from mlhub_widgets import open_source
from mlhub_widgets.cli import main as cli_main
from mlhub_widgets.download import DownloadSummary, download_dataset
from mlhub_widgets.exceptions import DownloadError, MLHubWarning

from .hostile_server import (
    HostileServer,
    catalogue_tarball,
    dataset_items,
    file_asset,
    hostile_server,
    serve_dataset,
    stac_item,
)
from .reliability_support import err_rows, record_figure

KEY = "k-links"


def _link(rel: str, href: str) -> dict[str, str]:
    return {"rel": rel, "href": href, "type": "application/json"}


def _cyclic_catalogue(server: HostileServer) -> dict[str, bytes]:
    """``/stac/``: root → collection c (item i0) → sub (item j0) → sub2 (item k0); sub links
    back to c and to the root, sub2 back to sub and to itself. Returns the asset bytes."""
    files: dict[str, bytes] = {}

    def item(path: str, item_id: str) -> str:
        data = os.urandom(100)
        files[item_id] = data
        doc = stac_item(item_id, "c", {"image": file_asset(server, "cyc", f"{item_id}.tif", data)})
        server.json(f"/stac/{path}", doc)
        return path.rsplit("/", 2)[-2] + "/" + path.rsplit("/", 1)[-1]

    root = {"type": "Catalog", "id": "cyc", "stac_version": "1.0.0", "description": "d",
            "links": [_link("child", "c/collection.json")]}  # fmt: skip
    collection = {
        "type": "Collection", "id": "c", "stac_version": "1.0.0", "description": "d",
        "license": "CC0-1.0", "extent": {"spatial": {"bbox": [[10, 10, 11, 11]]},
                                         "temporal": {"interval": [[None, None]]}},
        "links": [_link("item", item("c/i0/i0.json", "i0")), _link("child", "sub/catalog.json")],
    }  # fmt: skip
    sub = {"type": "Catalog", "id": "sub", "stac_version": "1.0.0", "description": "d",
           "links": [_link("item", item("c/sub/j0/j0.json", "j0")),
                     _link("child", "../collection.json"), _link("child", "../../catalog.json"),
                     _link("child", "sub2/catalog.json")]}  # fmt: skip
    sub2 = {"type": "Catalog", "id": "sub2", "stac_version": "1.0.0", "description": "d",
            "links": [_link("item", item("c/sub/sub2/k0/k0.json", "k0")),
                      _link("child", "../catalog.json"),
                      _link("child", "./catalog.json")]}  # fmt: skip
    server.json("/stac/catalog.json", root)
    server.json("/stac/c/collection.json", collection)
    server.json("/stac/c/sub/catalog.json", sub)
    server.json("/stac/c/sub/sub2/catalog.json", sub2)
    return files


def test_static_catalogue_link_cycles_end_with_a_warning(tmp_path: Path) -> None:
    with hostile_server() as server:
        files = _cyclic_catalogue(server)
        server.budget = 200  # the old walk made thousands of requests
        url = server.url + "stac/catalog.json"
        with pytest.warns(MLHubWarning, match="already visited") as caught:
            items = list(open_source(url).iter_items("c"))
        assert sorted(i["id"] for i in items) == ["i0", "j0", "k0"]
        assert any("c/collection.json" in str(w.message) for w in caught)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            summary = download_dataset("cyc", tmp_path / "out", source=url, progress=False)
        assert isinstance(summary, DownloadSummary) and summary.complete
        assert summary.assets_downloaded == 3
        cycles = [w for w in seen if issubclass(w.category, MLHubWarning)]
        assert cycles and all("\n" not in str(w.message) for w in cycles)
        documents = [p for p in server.requests if p.startswith("/stac/")]
        assert max(server.requests[p] for p in documents) <= 4  # 2 per walk, 2 walks
        total = server.count()
    for item_id, data in files.items():
        assert (tmp_path / "out" / "cyc" / "c" / item_id / "image.tif").read_bytes() == data
    record_figure(
        "test_safety_hostile_links.py::test_static_catalogue_link_cycles_end_with_a_warning",
        f"4 cyclic child links: items listed and downloaded with {total} requests in all "
        f"(each document at most twice per walk), {len(cycles)} MLHubWarning(s)",
    )


def test_an_unparsable_href_fails_its_asset_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = {
        "bad_port": "http://127.0.0.1:99999/x.tif",
        "bad_ipv6": "http://[::1/x.tif",
    }
    out = tmp_path / "out"
    with hostile_server() as server:
        items, files = dataset_items(server, "ds", 3)
        items += [stac_item(k, "c", {"image": {"href": h, "type": "image/tiff"}})
                  for k, h in bad.items()]  # fmt: skip
        serve_dataset(server, "ds", catalogue_tarball("ds", items))
        with pytest.raises(DownloadError, match="2 of 5 assets of ds failed") as info:
            download_dataset("ds", out, root_url=server.api, api_key=KEY, progress=False)
        for rel, data in files.items():
            assert (out / "ds" / rel).read_bytes() == data
        rows = err_rows(info.value.report)  # type: ignore[arg-type]
        assert sorted(r["item_id"] for r in rows) == sorted(bad)
        assert all(r["error"].startswith("invalid URL") for r in rows), rows
        for _ in range(2):  # every re-run: the same two fail, nothing else is asked for
            before = server.count("/files/")
            argv = ["download", "ds", "-o", str(out), "-q", "--root-url", server.api,
                    "--api-key", KEY]  # fmt: skip
            assert cli_main(argv) == 1
            err = capsys.readouterr().err
            assert (
                err.startswith("mlhub: error: 2 of 5 assets of ds failed")
                and "Traceback" not in err
            )
            assert server.count("/files/") == before
    print(json.dumps(rows, indent=1))
