"""Low-level client (mlhub_widgets.client) against the bundled hub over real HTTP.

"Recorded" values come from the hub's registry files, which are the MLHub API responses
recorded by radiant_mlhub's test suite (see shared/fixtures/mlhub-api/README.md).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from mlhub_widgets import client
from mlhub_widgets.config.session import Session, get_session
from mlhub_widgets.exceptions import AuthenticationError, EntityDoesNotExist
from mlhub_widgets.hub import Hub, bundled_data_dir, serve
from tests.http_log import _record_requests, record_urls  # noqa: F401

REGISTRY = bundled_data_dir() / "registry"
KENYA = "ref_african_crops_kenya_02_source"
KEY = "client-test-key-0123456789abcdef"


def recorded(name: str) -> Any:
    return json.loads((REGISTRY / name).read_text(encoding="utf-8"))


RECORDED_DATASETS: list[dict[str, Any]] = recorded("datasets.json")
RECORDED_KENYA_ITEMS: list[dict[str, Any]] = recorded(f"items/{KENYA}.json")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("MLHUB_API_KEY", "MLHUB_PROFILE", "MLHUB_ROOT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLHUB_HOME", str(tmp_path / "mlhub-home"))


@pytest.fixture
def session(hub: Hub) -> Session:
    return get_session(root_url=hub.url)


def limits_sent(urls: list[str]) -> list[int]:
    return [int(parse_qs(urlsplit(u).query)["limit"][0]) for u in urls if "/items" in u]


def requests_to(hub: Hub, path_end: str) -> int:
    return sum(1 for r in hub.requests if r.path.endswith(path_end))


# --------------------------------------------------------------------------------- datasets


def test_list_datasets_returns_every_recorded_dataset(hub: Hub) -> None:
    got = client.list_datasets(root_url=hub.url)
    by_id = {d["id"]: d for d in got}
    assert [d["id"] for d in got] == hub.dataset_ids()
    for rec in RECORDED_DATASETS:
        assert by_id[rec["id"]]["title"] == rec["title"]
        assert by_id[rec["id"]]["tags"] == rec["tags"]
        assert by_id[rec["id"]]["doi"] == rec["doi"]


@pytest.mark.parametrize(
    "tags",
    ["crop type", ["crop type"], ("crop type", "sentinel-2"), ["segmentation", "planetscope"]],
)
def test_list_datasets_tags_must_all_match_exactly(hub: Hub, tags: Any) -> None:
    wanted = [tags] if isinstance(tags, str) else list(tags)
    everything = client.list_datasets(root_url=hub.url)
    expected = [d["id"] for d in everything if all(t in (d["tags"] or []) for t in wanted)]
    got = [d["id"] for d in client.list_datasets(tags=tags, root_url=hub.url)]
    assert got == expected
    assert got  # the recording has datasets with these tags
    recorded_ids = {d["id"] for d in RECORDED_DATASETS if all(t in d["tags"] for t in wanted)}
    assert recorded_ids <= set(got)


def test_list_datasets_tag_is_not_a_substring_match(hub: Hub) -> None:
    assert client.list_datasets(tags="crop", root_url=hub.url) == []


def test_list_datasets_text_phrases_any_match(hub: Hub) -> None:
    marine = [d["id"] for d in client.list_datasets(text="marine debris", root_url=hub.url)]
    assert "nasa_marine_debris" in marine
    assert "bigearthnet_v1" not in marine
    either = {
        d["id"]
        for d in client.list_datasets(text=["marine debris", "BigEarthNet"], root_url=hub.url)
    }
    assert {"nasa_marine_debris", "bigearthnet_v1"} <= either
    assert set(marine) < either


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"tags": 5}, TypeError),
        ({"tags": ["crop type", 5]}, TypeError),
        ({"tags": {"crop type": 1}}, TypeError),
        ({"text": b"marine"}, TypeError),
        ({"tags": [""]}, ValueError),
    ],
)
def test_list_datasets_rejects_bad_arguments_before_any_request(
    hub: Hub, session: Session, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    urls = record_urls(session)
    with pytest.raises(error, match=r"tags|text"):
        client.list_datasets(session=session, **kwargs)
    assert urls == []


def test_get_dataset_by_id_doi_and_auto_agree(session: Session) -> None:
    by_id = client.get_dataset_by_id("nasa_marine_debris", session=session)
    by_doi = client.get_dataset_by_doi("10.34911/rdnt.9r6ekg", session=session)
    auto_id = client.get_dataset("nasa_marine_debris", session=session)
    auto_doi = client.get_dataset("10.34911/rdnt.9r6ekg", session=session)
    url_form = client.get_dataset("https://doi.org/10.34911/rdnt.9r6ekg", session=session)
    recorded_rec = next(d for d in RECORDED_DATASETS if d["id"] == "nasa_marine_debris")
    assert by_id == by_doi == auto_id == auto_doi == url_form
    assert by_id["title"] == recorded_rec["title"]
    assert by_id["collections"] == recorded_rec["collections"]


def test_get_dataset_picks_the_doi_endpoint_for_a_doi(hub: Hub, session: Session) -> None:
    urls = record_urls(session)
    client.get_dataset("10.6084/m9.figshare.12047478.v2", session=session)
    assert len(urls) == 1
    assert urlsplit(urls[0]).path.endswith("/datasets/doi/10.6084/m9.figshare.12047478.v2")


def test_missing_dataset_raises_at_once_naming_it(hub: Hub, session: Session) -> None:
    missing = f"no_such_dataset_{uuid.uuid4().hex[:8]}"
    with pytest.raises(EntityDoesNotExist) as info:
        client.get_dataset_by_id(missing, session=session)
    assert sum(r.path.endswith(f"/datasets/{missing}") for r in hub.requests) == 1  # no retry
    assert str(info.value) == f"Dataset '{missing}' does not exist."
    assert info.value.status_code == 404
    assert info.value.url.endswith(f"/datasets/{missing}")
    assert requests_to(hub, f"/datasets/{missing}") == 1  # never retried


def test_get_dataset_falls_back_from_id_to_doi(hub: Hub, session: Session) -> None:
    missing = f"nope/{uuid.uuid4().hex[:8]}"
    urls = record_urls(session)
    with pytest.raises(EntityDoesNotExist, match="looked up as an id and as a DOI") as info:
        client.get_dataset(missing, session=session)
    assert missing in str(info.value)
    paths = [urlsplit(u).path for u in urls]
    assert paths[0].endswith("/datasets/nope%2F" + missing.split("/")[1])
    assert paths[1].endswith(f"/datasets/doi/{missing}")
    assert len(paths) == 2


def test_missing_doi_names_the_doi(session: Session) -> None:
    with pytest.raises(EntityDoesNotExist, match=r"DOI '10\.9999/none' does not exist"):
        client.get_dataset("doi:10.9999/none", session=session)


def test_catalog_info_of_recorded_dataset(session: Session) -> None:
    info = client.get_catalog_info("nasa_marine_debris", session=session)
    assert info["dataset"] == "nasa_marine_debris"
    assert info["estimated_dataset_size"] == 77207762  # recorded value
    assert info["stac_catalog_size"] > 0
    with pytest.raises(EntityDoesNotExist, match="Catalog of dataset 'nope' does not exist"):
        client.get_catalog_info("nope", session=session)


# ------------------------------------------------------------------------------ collections


def test_list_collections_includes_every_recorded_collection(session: Session) -> None:
    got = client.list_collections(session=session)
    rec = recorded("collections.json")["collections"]
    assert len(rec) == 103
    got_by_id = {c["id"]: c for c in got}
    assert {c["id"] for c in rec} <= set(got_by_id)
    for c in rec:
        assert got_by_id[c["id"]]["extent"] == c["extent"]


def test_get_collection_and_missing_collection(hub: Hub, session: Session) -> None:
    coll = client.get_collection("bigearthnet_v1_source", session=session)
    assert coll["sci:doi"] == "10.14279/depositonce-10149"
    missing = f"no_collection_{uuid.uuid4().hex[:6]}"
    with pytest.raises(EntityDoesNotExist) as info:
        client.get_collection(missing, session=session)
    assert str(info.value) == f"Collection '{missing}' does not exist."
    assert requests_to(hub, f"/collections/{missing}") == 1


def test_list_collection_items_default_limit_is_ten_in_one_request(session: Session) -> None:
    urls = record_urls(session)
    items = list(client.list_collection_items(KENYA, session=session))
    assert [i["id"] for i in items] == [i["id"] for i in RECORDED_KENYA_ITEMS[:10]]
    assert limits_sent(urls) == [10]


def test_list_collection_items_all_52_in_recorded_order(session: Session) -> None:
    items = list(client.list_collection_items(KENYA, limit=None, page_size=20, session=session))
    assert len(items) == 52
    assert [i["id"] for i in items] == [i["id"] for i in RECORDED_KENYA_ITEMS]
    assert items[0]["properties"]["datetime"] == RECORDED_KENYA_ITEMS[0]["properties"]["datetime"]


def test_list_collection_items_never_asks_for_more_than_needed(session: Session) -> None:
    urls = record_urls(session)
    items = list(client.list_collection_items(KENYA, limit=25, page_size=10, session=session))
    assert len(items) == 25
    assert limits_sent(urls) == [10, 10, 5]


def test_list_collection_items_is_lazy(session: Session) -> None:
    urls = record_urls(session)
    gen = client.list_collection_items(KENYA, limit=None, page_size=10, session=session)
    assert urls == []
    first = [next(gen) for _ in range(10)]
    assert len(first) == 10 and len(urls) == 1
    next(gen)
    assert len(urls) == 2


def test_list_collection_items_limit_zero_makes_no_request(session: Session) -> None:
    urls = record_urls(session)
    assert list(client.list_collection_items(KENYA, limit=0, session=session)) == []
    assert urls == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"limit": -1}, ValueError), ({"limit": "5"}, TypeError), ({"page_size": 0}, ValueError)],
)
def test_list_collection_items_validates_at_call_time(
    session: Session, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        client.list_collection_items(KENYA, session=session, **kwargs)


def test_list_collection_items_missing_collection(session: Session) -> None:
    gen = client.list_collection_items("no_collection", session=session)
    with pytest.raises(EntityDoesNotExist, match="Collection 'no_collection' does not exist"):
        next(gen)


def test_get_collection_item_matches_recording(session: Session) -> None:
    item_id = "ref_african_crops_kenya_02_tile_02_20190721"
    item = client.get_collection_item(KENYA, item_id, session=session)
    rec = next(i for i in RECORDED_KENYA_ITEMS if i["id"] == item_id)
    assert item["id"] == item_id
    assert item["geometry"] == rec["geometry"]
    assert item["properties"] == rec["properties"]
    assert list(item["assets"]) == list(rec["assets"])
    with pytest.raises(EntityDoesNotExist) as info:
        client.get_collection_item(KENYA, "item_id", session=session)
    assert str(info.value) == f"Item 'item_id' does not exist in collection '{KENYA}'."


def test_archive_info(session: Session) -> None:
    info = client.get_collection_archive_info("bigearthnet_v1_labels", session=session)
    assert info == {
        "collection": "bigearthnet_v1_labels",
        "dataset": "bigearthnet_v1",
        "size": 169265765,
        "types": ["labels"],
    }
    with pytest.raises(EntityDoesNotExist, match="Archive 'no_archive' does not exist"):
        client.get_collection_archive_info("no_archive", session=session)


# ----------------------------------------------------------------------------------- models


def test_models_match_recording(session: Session, hub: Hub) -> None:
    rec = recorded("models.json")
    got = client.list_models(session=session)
    assert [m["id"] for m in got] == [m["id"] for m in rec]
    one = client.get_model_by_id("model-cyclone-wind-estimation-torchgeo-v1", session=session)
    assert one["properties"] == next(m for m in rec if m["id"] == one["id"])["properties"]
    with pytest.raises(EntityDoesNotExist, match="Model 'nope' does not exist"):
        client.get_model_by_id("nope", session=session)


# ---------------------------------------------------------------------- sessions and keys


@pytest.fixture(scope="module")
def keyed() -> Iterator[Hub]:
    with serve(require_key=KEY) as running:
        yield running


def test_api_key_argument_is_used_for_protected_routes(keyed: Hub) -> None:
    with pytest.raises(AuthenticationError):
        list(client.list_collection_items(KENYA, root_url=keyed.url))
    items = list(client.list_collection_items(KENYA, limit=3, api_key=KEY, root_url=keyed.url))
    assert len(items) == 3


def test_environment_variables_are_honoured(keyed: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLHUB_ROOT_URL", keyed.url)
    monkeypatch.setenv("MLHUB_API_KEY", KEY)
    assert client.get_catalog_info("nasa_marine_debris")["dataset"] == "nasa_marine_debris"


def test_one_session_reuses_one_connection(hub: Hub) -> None:
    s = get_session(root_url=hub.url)
    before = len(hub.requests)
    client.list_datasets(session=s)
    client.get_dataset("nasa_marine_debris", session=s)
    client.get_collection(KENYA, session=s)
    list(client.list_collection_items(KENYA, limit=30, page_size=10, session=s))
    mine = hub.requests[before:]
    assert len(mine) == 6
    assert len({r.connection for r in mine}) == 1


def test_session_argument_must_be_a_session(hub: Hub) -> None:
    with pytest.raises(TypeError, match="session"):
        client.list_datasets(session=requests.Session())  # type: ignore[arg-type]


def test_explicit_session_wins_over_root_url(hub: Hub) -> None:
    s = get_session(root_url=hub.url)
    got = client.get_dataset("nasa_marine_debris", session=s, root_url="http://127.0.0.1:9/x/")
    assert got["id"] == "nasa_marine_debris"
