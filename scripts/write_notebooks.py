# ruff: noqa: E501  (cell sources are kept as they appear in the notebooks)
"""Write the tutorial notebooks 02-04 from the cells below, executed, with their outputs.

    python scripts/write_notebooks.py            # all of them
    python scripts/write_notebooks.py 03         # the ones whose name contains "03"

Each notebook is run top to bottom by a fresh kernel against the bundled hub (which the
notebook starts, and stops in its last cell), in a temporary folder, so its ``downloads/``
folder does not land in the repository. The outputs are deterministic (no ports, timings or
absolute paths are printed): ``tests/test_notebooks.py`` runs them again and compares. Run this
script after changing a cell or anything the notebooks show (the hub's data, a frame's
columns). Tutorial cells hold no ``assert``: the tests check the outputs from outside.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parents[1] / "notebooks"

HUB_CELL = """\
# Use the API named by MLHUB_ROOT_URL, or start the bundled MLHub-compatible hub on 127.0.0.1
# (no key, no internet). The client below talks to it exactly as to a remote API.
import os

from mlhub_widgets.hub import Hub

hub = None
if not os.environ.get("MLHUB_ROOT_URL"):
    hub = Hub().start()
    os.environ["MLHUB_ROOT_URL"] = hub.url
print("API:", os.environ["MLHUB_ROOT_URL"] if hub is None else "the bundled hub, on 127.0.0.1")"""

STOP_MD = "Done: stop the bundled hub (if this notebook started it)."

STOP_CELL = """\
if hub is not None:
    hub.stop()
    del os.environ["MLHUB_ROOT_URL"]
    print("bundled hub stopped")"""

NOTEBOOKS: dict[str, list[tuple[str, str]]] = {
    "02-discovery-with-dataframes.ipynb": [
        (
            "md",
            "# Discovery with DataFrames\n\nEvery catalogue query returns a pandas or "
            "geopandas frame, ready to filter, sort, plot and join. No API key is needed for "
            "the bundled hub.",
        ),
        ("code", HUB_CELL),
        (
            "code",
            'import mlhub_widgets as mw\n\nds = mw.datasets()\nprint(len(ds), "datasets")\nds[["id", "title", "tags", "license"]].head(10)',
        ),
        ("md", "Tags with their dataset counts (what the explorer's tag picker shows):"),
        ("code", "tags = mw.tags()\ntags.head(10)"),
        (
            "md",
            "`tags=` keeps the datasets having every tag given; `text=` takes a phrase, or a "
            "list of phrases of which any may match.",
        ),
        ("code", 'crops = mw.datasets(tags="crop type")\ncrops[["id", "title", "tags"]]'),
        ("code", 'floods = mw.datasets(text=["flood", "marine debris"])\nfloods[["id", "title"]]'),
        ("md", "Collections of one dataset, with their type, temporal extent and footprint:"),
        (
            "code",
            'cols = mw.collections(dataset="mlhub_widgets_demo_crops")\n'
            'cols[["id", "types", "start_datetime", "end_datetime", "license"]]',
        ),
        (
            "md",
            "Items of the imagery collection, filtered on the server by bbox and date "
            "(Kenya, 2021):",
        ),
        (
            "code",
            'imagery = cols[cols["types"].apply(lambda t: "source_imagery" in t)]["id"].iloc[0]\n'
            'kenya = mw.items(imagery, bbox=[33.5, -5.0, 42.0, 5.0], datetime="2021-01-01/2021-12-31", limit=None, progress=False)\n'
            'kenya[["id", "datetime"]].assign(asset_keys=kenya["assets"].map(sorted))',
        ),
        ("md", "All of its items, counted by year and country:"),
        (
            "code",
            "everything = mw.items(imagery, limit=None, progress=False)\n"
            'everything.groupby([everything["datetime"].dt.year, "country"]).size().unstack()',
        ),
        (
            "md",
            "## Where is the data?\n\nThe frames are GeoDataFrames in EPSG:4326, so "
            "`.plot()` draws them with matplotlib. Here: the collection's extent and its "
            "items, over the country outlines the explorer's map draws offline. Each item is "
            "a small tile, drawn as a dot at this scale. `everything.explore()` shows the "
            "same on an interactive folium map (both need the `plot` extra: "
            "`pip install 'mlhub_widgets[plot]'`).",
        ),
        (
            "code",
            "from importlib import resources\n\n"
            "import geopandas as gpd\n\n"
            'world = gpd.read_file(resources.files("mlhub_widgets.widgets") / "data" / "naturalearth_countries.geojson")\n'
            'ax = world.plot(color="whitesmoke", edgecolor="silver", figsize=(9, 4.5))\n'
            'cols.iloc[[0]].boundary.plot(ax=ax, color="tab:red", linestyle="--", label="collection extent")\n'
            'everything.set_geometry(everything.representative_point()).plot(ax=ax, column="country", legend=True, markersize=30)\n'
            'ax.set_title("mlhub_widgets_demo_crops: item footprints by country");',
        ),
        ("md", "The same data as objects, with the names `radiant_mlhub` users know:"),
        (
            "code",
            'dataset = mw.Dataset.fetch("nasa_marine_debris")\nprint(dataset)\n'
            'print("source imagery:", [c.id for c in dataset.collections.source_imagery])\n'
            'print("labels:", [c.id for c in dataset.collections.labels])\n'
            'print(f"catalogue: {dataset.stac_catalog_size / 1e6:.1f} MB, assets: about {dataset.estimated_dataset_size / 1e6:.0f} MB")',
        ),
        ("md", STOP_MD),
        ("code", STOP_CELL),
    ],
    "03-filtered-download.ipynb": [
        (
            "md",
            "# A filtered, resumable download\n\nDownload only the labels of the demo dataset "
            "inside a bounding box and a year: see the plan first, run the job in the "
            "background, then open what arrived. Files go to `downloads/` next to this "
            "notebook.",
        ),
        ("code", HUB_CELL),
        (
            "code",
            "from pathlib import Path\n\nimport mlhub_widgets as mw\n\n"
            'out = Path("downloads")\n'
            'dataset = mw.Dataset.fetch("mlhub_widgets_demo_crops")\n'
            "labels = dataset.collections.labels[0].id\nlabels",
        ),
        (
            "md",
            "What the filters select, before any asset is fetched (Kenya's bounding box, "
            "2020, every asset of the labels collection):",
        ),
        (
            "code",
            'flt = dict(bbox=[33.5, -5.0, 42.0, 5.0], datetime=("2020-01-01", "2020-12-31"),\n'
            "           collection_filter={labels: []})\n"
            "plan = mw.plan_download(dataset.id, out, **flt)\nprint(plan)",
        ),
        (
            "md",
            "Start the job in the background; the notebook stays usable, and `job.progress` "
            "is a snapshot you can read at any time. `job.wait()` blocks until it ends.",
        ),
        (
            "code",
            "job = dataset.download(out, background=True, progress=False, **flt)\n"
            "summary = job.wait(timeout=120)\n"
            'print(f"{summary.assets_downloaded} of {summary.assets_selected} assets downloaded, "\n'
            '      f"{summary.bytes_downloaded:,} bytes, {summary.assets_failed} failed")\n'
            'print("state:", job.state, "- fraction done:", job.progress.fraction)',
        ),
        (
            "md",
            "The layout on disk: the catalogue, the asset index (`mlhub_assets.db`), one "
            "folder per item with its assets, and files shared by all items once under "
            "`_common/`:",
        ),
        (
            "code",
            "folder = out / dataset.id\n"
            'assets = sorted(p.relative_to(out) for p in folder.rglob("*") if p.is_file() and p.suffix != ".json")\n'
            'print(len(assets), "files besides the STAC JSON documents:", *assets, sep="\\n")',
        ),
        (
            "md",
            "Running it again is a no-op: the asset index knows what is done, and no asset "
            "is requested again.",
        ),
        (
            "code",
            "again = dataset.download(out, progress=False, **flt)\n"
            'print(f"{again.assets_downloaded} downloaded, {again.assets_skipped} already present")',
        ),
        (
            "md",
            "## Open what arrived\n\nThe labels are GeoJSON field polygons: read them with "
            "geopandas and draw them by crop type (`.explore()` gives an interactive map "
            "instead).",
        ),
        (
            "code",
            "import geopandas as gpd\nimport pandas as pd\n\n"
            'files = sorted(folder.rglob("labels.geojson"))\n'
            "fields = pd.concat([gpd.read_file(f).assign(item=f.parent.name) for f in files], ignore_index=True)\n"
            'fields.groupby("crop_type").size()',
        ),
        ("md", "One map per downloaded tile, the fields coloured by crop type:"),
        (
            "code",
            "import matplotlib.pyplot as plt\n\n"
            'crops = sorted(fields["crop_type"].unique())\n'
            'tiles = sorted(fields["item"].unique())\n'
            'fig, axes = plt.subplots(2, 3, figsize=(9, 6), layout="constrained")\n'
            "for ax, tile in zip(axes.flat, tiles):\n"
            '    fields[fields["item"] == tile].plot(ax=ax, column="crop_type", categories=crops, edgecolor="white",\n                                        legend=ax is axes.flat[2], legend_kwds={"loc": "upper left", "bbox_to_anchor": (1.02, 1)})\n'
            '    ax.set_title(tile.removeprefix(labels + "_"), fontsize=10)\n'
            "    ax.set_axis_off()\n"
            'fig.suptitle(f"{len(fields)} labelled fields in Kenya, 2020");',
        ),
        ("md", STOP_MD),
        ("code", STOP_CELL),
    ],
    "04-models.ipynb": [
        (
            "md",
            "# ML models\n\nModels published on the hub, as a DataFrame and as `MLModel` "
            "objects (STAC items with the ml-model extension).",
        ),
        ("code", HUB_CELL),
        (
            "code",
            "import mlhub_widgets as mw\n\nmodels = mw.models()\n"
            'models[["id", "title", "architecture", "prediction_type", "license"]]',
        ),
        (
            "code",
            'model = mw.MLModel.fetch(models["id"].iloc[0])\nprint(model)\n'
            'print("assets:", sorted(model.assets))\n'
            'print("trained on:", [link.href.rsplit("/", 1)[-1] for link in model.links if link.rel == "ml-model:train-data"])',
        ),
        ("md", STOP_MD),
        ("code", STOP_CELL),
    ],
}


def build(name: str) -> nbformat.NotebookNode:
    """The notebook ``name`` from its cells, not yet executed."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    stem = name.split("-", 1)[0]
    for number, (kind, source) in enumerate(NOTEBOOKS[name]):
        make = nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell
        nb.cells.append(make(source, id=f"nb{stem}-{number:02d}"))  # stable ids: quiet diffs
    return nb


def execute(nb: nbformat.NotebookNode, workdir: Path) -> None:
    """Run ``nb`` in place, in ``workdir``, as the tests and a first-time user do."""
    NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(workdir)}},
    ).execute()


def merge_streams(nb: nbformat.NotebookNode) -> None:
    """Join consecutive stdout (or stderr) outputs of a cell: how a kernel splits them varies."""
    for cell in nb.cells:
        merged: list[nbformat.NotebookNode] = []
        for out in cell.get("outputs", []):
            last = merged[-1] if merged else None
            if (
                last is not None
                and out.output_type == last.output_type == "stream"
                and out.name == last.name
            ):
                last.text += out.text
            else:
                merged.append(out)
        if cell.cell_type == "code":
            cell.outputs = merged


def main(wanted: list[str]) -> None:
    for var in ("MLHUB_ROOT_URL", "MLHUB_API_KEY", "MLHUB_PROFILE"):
        os.environ.pop(var, None)
    for name in NOTEBOOKS:
        if wanted and not any(w in name for w in wanted):
            continue
        nb = build(name)
        with tempfile.TemporaryDirectory(prefix="mlhub-notebook-") as workdir:
            os.environ["MLHUB_HOME"] = str(Path(workdir) / "mlhub-home")
            execute(nb, Path(workdir))
        merge_streams(nb)
        nbformat.write(nb, HERE / name)
        print("wrote", HERE / name)


if __name__ == "__main__":
    main(sys.argv[1:])
