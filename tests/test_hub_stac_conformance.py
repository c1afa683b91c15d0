"""stac-api-validator against the hub over real HTTP, offline (schemas from tests/data).

Two runs. On a hub serving only data the hub generates itself (the demo dataset and a synthetic
one) the validator must find nothing at all, for STAC API core, OGC API - Features, Item Search
and the sort and query extensions, pagination included. On the bundled hub every finding must be
one that the recorded upstream data causes, as docs/stac-api.md lists them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from stac_api_validator import validations

from mlhub_widgets.hub import Hub
from mlhub_widgets.hub.sample import make_demo_dataset, make_synthetic_dataset

from .stac_schemas import offline_schemas, stac_validator_errors

DEMO_SRC = "mlhub_widgets_demo_crops_source"
KENYA = "ref_african_crops_kenya_02_source"
KENYA_BOX = {"type": "Polygon", "coordinates": [[[34, 0], [35, 0], [35, 1], [34, 1], [34, 0]]]}
REGISTRY = Path(__file__).parents[1] / "mlhub_widgets/hub/data/registry/collections.json"


def run_validator(
    root_url: str,
    classes: list[str],
    collection: str,
    *,
    pagination: bool = False,
    query: tuple[Any, ...] = (None,) * 13,
    fields_property: str | None = None,
) -> tuple[list[str], list[str]]:
    """stac-api-validator's ``(warnings, errors)`` for the API at ``root_url``."""
    with offline_schemas() as schemas:
        warnings, errors = validations.validate_api(
            root_url=root_url,
            ccs_to_validate=classes,
            collection=collection,
            geometry=json.dumps(KENYA_BOX),
            auth_bearer_token=None,
            auth_query_parameter=None,
            fields_nested_property=fields_property,
            validate_pagination=pagination,
            query_config=validations.QueryConfig(*query),
            transaction_collection=None,
            headers={},
            stac_check_config=None,
        )
    assert not schemas.missing, f"schemas not shipped in tests/data: {sorted(schemas.missing)}"
    return list(warnings), list(errors)


def report(errors: list[str]) -> str:
    return f"{len(errors)} validator errors:\n" + "\n".join(f"- {e[:600]}" for e in errors)


@pytest.fixture(scope="module")
def own_data_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub serving only the demo dataset and a small synthetic dataset, no recordings."""
    root = tmp_path_factory.mktemp("own-data")
    make_demo_dataset(root)
    make_synthetic_dataset(root, "synthetic_small", 40, 2)
    with Hub(root, cache_dir=False) as hub:
        yield hub


def test_validator_finds_nothing_on_the_hubs_own_data(own_data_hub: Hub) -> None:
    query = (
        "eo:cloud_cover", 4, 4, 10, 10, 30, 30,  # eq, neq, lt, lte, gt, gte
        "country", "Fr", "ana", "nya",  # startsWith, endsWith, contains
        "instruments", "msi,tm",  # in (an array property)
    )  # fmt: skip
    classes = ["core", "features", "item-search", "item-search#sort", "item-search#query"]
    warnings, errors = run_validator(
        own_data_hub.url, classes, DEMO_SRC, pagination=True, query=query
    )
    assert errors == [], report(errors)
    # what is left are recommendations about the demo collection's metadata
    assert not [w for w in warnings if "service-doc" in w or "older version" in w]


def test_validator_fields_checks_disagree_with_the_extension_only_where_documented(
    own_data_hub: Hub,
) -> None:
    # stac-api-validator 0.6.8 wants 400 for {"fields": null}, which the Fields extension lists
    # as "the default set", and wants at least 5 members in an item whose include list names
    # one nested field, where the extension says that field should be the only one.
    _, errors = run_validator(
        own_data_hub.url,
        ["item-search#fields"],
        DEMO_SRC,
        fields_property="properties.eo:cloud_cover",
    )
    known = (
        r'POST \S+ params=None body=\{"fields": null\} had unexpected status code 200 instead of '
        r"400",
        r"POST \{'fields': \{'exclude': \['properties'\], 'include': \['properties\.eo:cloud_cover"
        r"'\]\}\} response contained fewer than 5 fields \['properties'\]",
    )
    unexplained = [e for e in errors if not any(re.search(k, e) for k in known)]
    assert unexplained == [], report(unexplained)


def _recorded_collection_ids() -> set[str]:
    data = json.loads(REGISTRY.read_text())
    cols = data["collections"] if isinstance(data, dict) else data
    return {c["id"] for c in cols}


def test_validator_on_the_bundled_hub_finds_only_recorded_data(hub: Hub) -> None:
    _, errors = run_validator(hub.url, ["core", "features", "item-search"], KENYA)
    assert errors, "the recorded data has known findings: has the validator stopped checking?"

    # Every collection the validator rejects in /collections is a recorded one; validating each
    # collection on its own finds the same number, and for the documented reasons only.
    collections = requests.get(hub.url + "collections", timeout=30).json()["collections"]
    invalid = {c["id"]: stac_validator_errors_offline(c) for c in collections}
    invalid = {cid: errs for cid, errs in invalid.items() if errs}
    assert set(invalid) <= _recorded_collection_ids()
    for cid, errs in invalid.items():
        text = json.dumps(errs)
        assert "does not match '(\\\\\\\\+00:00|Z)$'" in text or "ml-model:" in text, (cid, text)
    listed = [e for e in errors if re.match(r"\[Collections\] : GET \S+/collections failed", e)]
    assert len(listed) == len(invalid)

    # The one recorded item the Features checks fetch names a band "Coastal aerosol" (eo 1.0.0
    # allows only "coastal" as common_name); the recorded items are replayed as they were.
    item = [e for e in errors if e.startswith("[Features]")]
    assert item and all(KENYA in e and "'Coastal aerosol' is not one of" in e for e in item)

    assert sorted(listed + item) == sorted(errors), report(
        [e for e in errors if e not in listed + item]
    )


def stac_validator_errors_offline(document: dict[str, Any]) -> list[dict[str, Any]]:
    with offline_schemas():
        return stac_validator_errors(document)
