"""The STAC the hub generates is valid STAC: stac-validator, offline, on every document.

Covered: the demo dataset as written to disk, the static catalogues and catalogue tarballs the
hub builds for generated datasets, and the collections and items its API serves for them. The
recorded catalogues are replayed as they were; their findings are the recorded ones only.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mlhub_widgets.hub import Hub
from mlhub_widgets.hub.sample import make_demo_dataset, make_synthetic_dataset

from .stac_schemas import offline_schemas, stac_validator_errors, walk_stac

DEMO = "mlhub_widgets_demo_crops"
SYNTHETIC = "synthetic_small"


def invalid_documents(root: str | Path) -> tuple[int, dict[str, list[str]]]:
    """How many documents ``root`` leads to, and stac-validator's messages for the invalid ones."""
    count = 0
    bad: dict[str, list[str]] = {}
    with offline_schemas() as schemas:
        for href, doc in walk_stac(root):
            count += 1
            errors = stac_validator_errors(doc)
            if errors:
                bad[href] = [f"{e.get('error_type')}: {e.get('error_message')}" for e in errors]
        assert not schemas.missing, sorted(schemas.missing)
    return count, bad


@pytest.fixture(scope="module")
def own_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("own-data")
    make_demo_dataset(root)
    make_synthetic_dataset(root, SYNTHETIC, 40, 3)
    return root


@pytest.fixture(scope="module")
def own_hub(own_data: Path) -> Iterator[Hub]:
    with Hub(own_data, cache_dir=False) as hub:
        yield hub


def test_demo_dataset_files_are_valid_stac(own_data: Path) -> None:
    count, bad = invalid_documents(own_data / DEMO / "catalog.json")
    assert count == 1 + 2 + 216  # catalogue, source and label collections, items
    assert bad == {}


@pytest.mark.parametrize(("ds", "expected"), [(DEMO, 219), (SYNTHETIC, 1 + 1 + 40)])
def test_static_catalogues_of_generated_datasets_are_valid_stac(
    own_hub: Hub, ds: str, expected: int
) -> None:
    count, bad = invalid_documents(own_hub.static_catalog_url(ds))
    assert (count, bad) == (expected, {})


@pytest.mark.parametrize("ds", [DEMO, SYNTHETIC])
def test_catalogue_tarballs_of_generated_datasets_are_valid_stac(
    own_hub: Hub, ds: str, tmp_path: Path
) -> None:
    r = requests.get(own_hub.url + f"catalog/{ds}", timeout=60)  # follows the 303 to storage
    assert r.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        tar.extractall(tmp_path, filter="data")
    (root,) = tmp_path.glob("*/catalog.json")
    count, bad = invalid_documents(root)
    assert count > 40 and bad == {}


def test_api_collections_and_items_of_generated_datasets_are_valid_stac(own_hub: Hub) -> None:
    collections = requests.get(own_hub.url + "collections", timeout=30).json()["collections"]
    assert len(collections) == 3
    documents = list(collections)
    for col in collections:
        url = own_hub.url + f"collections/{col['id']}/items?limit=1000"
        documents += requests.get(url, timeout=30).json()["features"]
    one = requests.get(own_hub.url + "search", params={"limit": 1}, timeout=30).json()
    documents += one["features"]
    assert len(documents) == 3 + 216 + 40 + 1
    with offline_schemas():
        bad = {d["id"]: stac_validator_errors(d) for d in documents}
    assert {k: v for k, v in bad.items() if v} == {}


def test_recorded_catalogues_keep_their_recorded_findings(hub: Hub) -> None:
    # nasa_marine_debris's label items, as recorded, name label extension 1.0.0 but have no
    # "label:properties" (which it requires); the hub serves the recorded catalogue unchanged.
    count, bad = invalid_documents(hub.static_catalog_url("nasa_marine_debris"))
    assert count == 1415
    assert bad and all("/nasa_marine_debris_labels/" in href for href in bad)
    assert {m for msgs in bad.values() for m in msgs} == {
        "JSONSchemaValidationError: 'label:properties' is a required property. Error is in "
        "properties "
    }
    count, bad = invalid_documents(hub.static_catalog_url("su_sar_moisture_content_main"))
    assert (count, bad) == (10, {})
