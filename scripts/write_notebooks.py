# ruff: noqa: E501  (cell sources are kept as they appear in the notebooks)
"""Write notebooks/02-04 from the cell sources below (run once after editing them).

Notebooks are committed without outputs; the test suite executes them against the bundled hub.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parents[1] / "notebooks"

HUB_CELL = """\
# Use the API named by MLHUB_ROOT_URL, or start the bundled MLHub-compatible hub on 127.0.0.1.
# The client below talks to it exactly as to a remote API.
import os

from mlhub_widgets.hub import Hub

if not os.environ.get("MLHUB_ROOT_URL"):
    hub = Hub().start()
    os.environ["MLHUB_ROOT_URL"] = hub.url
print("API root:", os.environ["MLHUB_ROOT_URL"])"""

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
            'import mlhub_widgets as mw\n\nds = mw.datasets()\nds[["id", "title", "tags", "license"]].head(10)',
        ),
        ("md", "Tags with their dataset counts (what the explorer's tag picker shows):"),
        ("code", "tags = mw.tags()\ntags.head(10)"),
        (
            "md",
            "`tags=` needs every tag to match exactly; `text=` takes a phrase, or a list of "
            "phrases of which any may match.",
        ),
        (
            "code",
            'crops = mw.datasets(tags="crop type")\nassert len(crops) > 0\n'
            'assert all("crop type" in t for t in crops["tags"])\ncrops[["id", "title"]]',
        ),
        ("code", 'floods = mw.datasets(text=["flood", "marine debris"])\nfloods[["id", "title"]]'),
        ("md", "Collections of one dataset, with their type and temporal extent:"),
        (
            "code",
            'cols = mw.collections(dataset="mlhub_widgets_demo_crops")\n'
            'cols[["id", "types", "start_datetime", "end_datetime", "license"]]',
        ),
        ("md", "Items of a collection, filtered on the server by bbox and date (Kenya, 2021):"),
        (
            "code",
            'src = cols[cols["types"].apply(lambda t: "source_imagery" in t)]["id"].iloc[0]\n'
            'kenya = mw.items(src, bbox=[33.5, -5.0, 42.0, 5.0], datetime="2021-01-01/2021-12-31", limit=None, progress=False)\n'
            'assert len(kenya) > 0 and (kenya["datetime"].dt.year == 2021).all()\n'
            'kenya[["id", "datetime", "assets"]].head()',
        ),
        (
            "code",
            "everything = mw.items(src, limit=None, progress=False)\n"
            'everything.groupby(everything["datetime"].dt.year).size()',
        ),
        ("md", "The same data as objects, with the names `radiant_mlhub` users know:"),
        (
            "code",
            'dataset = mw.Dataset.fetch("nasa_marine_debris")\nprint(dataset)\n'
            "print([c.id for c in dataset.collections.source_imagery], [c.id for c in dataset.collections.labels])\n"
            'print("catalogue:", dataset.stac_catalog_size, "bytes; dataset:", dataset.estimated_dataset_size, "bytes")',
        ),
    ],
    "03-filtered-download.ipynb": [
        (
            "md",
            "# A filtered, resumable download\n\nDownload only the labels of the demo dataset "
            "inside a bounding box, see the plan first, then run the job in the background.",
        ),
        ("code", HUB_CELL),
        (
            "code",
            "import tempfile\nfrom pathlib import Path\n\nimport mlhub_widgets as mw\n\n"
            'out = Path(tempfile.mkdtemp(prefix="mlhub-demo-"))\n'
            'dataset = mw.Dataset.fetch("mlhub_widgets_demo_crops")\n'
            "labels = dataset.collections.labels[0].id\nlabels",
        ),
        ("md", "What the filters select, before any asset is fetched:"),
        (
            "code",
            'flt = dict(bbox=[33.5, -5.0, 42.0, 5.0], datetime=("2020-01-01", "2020-12-31"),\n'
            "           collection_filter={labels: []})\n"
            "plan = mw.plan_download(dataset.id, out, **flt)\nprint(plan)",
        ),
        (
            "md",
            "Start the job in the background; the notebook stays usable. `job.progress` is a "
            "snapshot you can read at any time.",
        ),
        (
            "code",
            "job = dataset.download(out, background=True, progress=False, **flt)\n"
            "summary = job.wait(timeout=120)\nprint(summary)\nprint(job.progress)",
        ),
        (
            "code",
            'files = sorted(p.relative_to(out) for p in (out / dataset.id).rglob("*") if p.is_file())\n'
            'print(len(files), "files, e.g.", *files[:5], sep="\\n")\n'
            "assert summary.assets_selected == plan.assets and summary.assets_failed == 0",
        ),
        (
            "md",
            "Running it again is a no-op: the asset index knows what is done and no asset is "
            "requested again.",
        ),
        ("code", "again = dataset.download(out, progress=False, **flt)\nprint(again)"),
    ],
    "04-models.ipynb": [
        (
            "md",
            "# ML models\n\nModels published on the hub, as a DataFrame and as `MLModel` "
            "objects (STAC items with the ml-model extension).",
        ),
        ("code", HUB_CELL),
        ("code", "import mlhub_widgets as mw\n\nmodels = mw.models()\nmodels"),
        (
            "code",
            'model = mw.MLModel.fetch(models["id"].iloc[0])\nprint(model)\n'
            "print(sorted(model.assets))\n"
            'print([link.href for link in model.links if link.rel == "ml-model:train-data"])',
        ),
    ],
}


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        for kind, source in cells:
            make = nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell
            nb.cells.append(make(source))
        nbformat.write(nb, HERE / name)
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()
