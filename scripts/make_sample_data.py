#!/usr/bin/env python3
"""Regenerate the bundled hub data in ``mlhub_widgets/hub/data/`` (deterministically).

    python scripts/make_sample_data.py                      # the demo dataset only
    python scripts/make_sample_data.py --fixtures ../shared/fixtures/mlhub-api
                                                            # + the recorded MLHub records
    python scripts/make_sample_data.py --out /tmp/data      # somewhere else

The demo dataset (``datasets/mlhub_widgets_demo_crops``) is generated from code; running the
script twice gives identical files. With ``--fixtures``, the recorded MLHub responses are copied
into the registry layout the hub reads (see ``mlhub_widgets/hub/store.py``):

* ``registry/``: datasets (31), collections (103), models, the landing page, the 52 items of
  ``ref_african_crops_kenya_02_source`` (the six recorded pages, in order), the 4 label items
  of ``ref_african_crops_kenya_02_labels`` (the ``stac.json`` files of the recorded collection
  archive, in its order), recorded catalogue/archive info;
* ``datasets/nasa_marine_debris/catalog.tar.gz``: the real catalogue tarball;
* ``datasets/su_sar_moisture_content_main/catalog.tar.gz``: the peer's mock catalogue
  (items with start/end datetimes, macOS junk members included on purpose);
* ``archives/ref_african_crops_kenya_02_labels.tar.gz``: the recorded collection archive.
"""

from __future__ import annotations

import argparse
import json
import posixpath
import shutil
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlhub_widgets.hub.sample import make_demo_dataset  # noqa: E402
from mlhub_widgets.hub.store import bundled_data_dir  # noqa: E402

KENYA = "ref_african_crops_kenya_02_source"
KENYA_LABELS_ARCHIVE = "archive__ref_african_crops_kenya_02_labels.tar.gz"


def _dump(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def copy_fixtures(fixtures: Path, out: Path) -> None:
    """Lay the recorded MLHub fixtures out as a hub registry."""
    reg = out / "registry"
    if reg.exists():
        shutil.rmtree(reg)

    def load(name: str) -> object:
        return json.loads((fixtures / name).read_text(encoding="utf-8"))

    _dump(reg / "datasets.json", load("datasets.json"))
    _dump(reg / "collections.json", load("collections.json"))
    _dump(reg / "models.json", load("models.json"))
    root = load("root.json")
    assert isinstance(root, dict)
    root["links"] = []  # rebuilt by the hub from its collections
    _dump(reg / "root.json", root)
    items: list[object] = []
    for page in range(1, 7):
        data = load(f"collections__{KENYA}__items__page{page}.json")
        assert isinstance(data, dict)
        items += data["features"]
    _dump(reg / "items" / f"{KENYA}.json", items)
    labels, label_items = archive_items(fixtures / KENYA_LABELS_ARCHIVE)
    _dump(reg / "items" / f"{labels}.json", label_items)
    info = load("catalog__nasa_marine_debris__info.json")
    assert isinstance(info, dict)
    _dump(
        reg / "catalog_info.json",
        {info["dataset"]: {"estimated_dataset_size": info["estimated_dataset_size"]}},
    )
    ainfo = load("archive__bigearthnet_v1_labels__info.json")
    assert isinstance(ainfo, dict)
    _dump(reg / "archive_info.json", {ainfo["collection"]: ainfo})
    copies = {
        "catalog__nasa_marine_debris.tar.gz": "datasets/nasa_marine_debris/catalog.tar.gz",
        "test-data/datasets/su_sar_moisture_content_main.tar.gz": (
            "datasets/su_sar_moisture_content_main/catalog.tar.gz"
        ),
        "archive__ref_african_crops_kenya_02_labels.tar.gz": (
            "archives/ref_african_crops_kenya_02_labels.tar.gz"
        ),
    }
    for src, dst in copies.items():
        (out / dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fixtures / src, out / dst)


def archive_items(archive: Path) -> tuple[str, list[object]]:
    """The collection id of a collection archive and its items, in ``collection.json`` order.

    Items are kept exactly as recorded (relative links and asset hrefs, pre-1.0 STAC); the hub
    resolves hrefs against the item's folder, ``<collection>/<item>/``.
    """
    docs: dict[str, object] = {}
    with tarfile.open(archive, "r|gz") as tf:  # one pass: the archive is 120 MB unpacked
        for member in tf:
            if member.isfile() and member.name.endswith(".json"):
                fh = tf.extractfile(member)
                assert fh is not None
                docs[member.name] = json.loads(fh.read())
    (col_path,) = [n for n in docs if n.count("/") == 1 and n.endswith("/collection.json")]
    col = docs[col_path]
    assert isinstance(col, dict)
    base = posixpath.dirname(col_path)
    links = [link["href"] for link in col["links"] if link["rel"] == "item"]
    return str(col["id"]), [docs[posixpath.join(base, href)] for href in links]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=bundled_data_dir(), help="data directory")
    parser.add_argument("--fixtures", type=Path, default=None, help="shared/fixtures/mlhub-api")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.fixtures is not None:
        copy_fixtures(args.fixtures, out)
    path = make_demo_dataset(out / "datasets")
    files = sum(1 for p in path.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    print(f"wrote {path} ({files} files, {size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
