"""ExplorerState against the real bundled hub: connection, search, selection, filters, download.

No widgets here: this is the core object the panels render, used exactly as code would use it.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlhub_widgets.config.session import get_session
from mlhub_widgets.hub import FaultConfig, Hub, serve
from mlhub_widgets.widgets.state import ExplorerState, Filters, friendly_error

DEMO = "mlhub_widgets_demo_crops"
SOURCE = f"{DEMO}_source"
LABELS = f"{DEMO}_labels"
KEY = "state-test-key"


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No key, profile or root URL from the machine's environment."""
    for name in ("MLHUB_API_KEY", "MLHUB_PROFILE", "MLHUB_ROOT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLHUB_HOME", str(tmp_path / "mlhub-home"))
    return tmp_path


@pytest.fixture(scope="module")
def key_hub() -> Iterator[Hub]:
    with serve(require_key=KEY) as running:
        yield running


def connected(hub: Hub, tmp_path: Path, **kwargs: object) -> ExplorerState:
    st = ExplorerState(output_dir=str(tmp_path / "out"))
    st.connect(root_url=hub.url, **kwargs)  # type: ignore[arg-type]
    assert st.wait(60)
    assert st.session is not None, st.errors
    return st


# -- filters ------------------------------------------------------------------------------------


def test_filters_validate_and_keep_area_exclusive() -> None:
    f = Filters(bbox=[1, 2, 3, 4], start="2021-01-01", end=dt.date(2021, 2, 1))
    assert f.bbox == (1.0, 2.0, 3.0, 4.0)
    assert f.datetime == (dt.date(2021, 1, 1), dt.date(2021, 2, 1))
    poly = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    g = f.with_intersects(poly)
    assert g.bbox is None and g.intersects is not None
    assert g.with_bbox((0, 0, 1, 1)).intersects is None
    with pytest.raises(ValueError, match="cannot be used together"):
        Filters(bbox=(0, 0, 1, 1), intersects=poly)
    with pytest.raises(ValueError, match="latitude"):
        Filters(bbox=(0, -95, 1, 1))
    with pytest.raises(ValueError, match="not a date"):
        Filters(start="last week")


def test_filters_problems_and_download_kwargs() -> None:
    bad = Filters(start=dt.date(2021, 5, 1), end=dt.date(2021, 1, 1))
    assert bad.problems() == ["The end date (2021-01-01) is before the start date (2021-05-01)."]
    with pytest.raises(ValueError, match="before the start"):
        bad.download_kwargs()
    assert "No asset key" in Filters(collection_filter={}).problems()[0]
    kw = Filters(bbox=(1, 2, 3, 4), collection_filter={"c": ["b", "a"], "d": []}).download_kwargs()
    assert kw == {
        "bbox": [1.0, 2.0, 3.0, 4.0],
        "intersects": None,
        "datetime": None,
        "collection_filter": {"c": ["a", "b"], "d": []},
    }


def test_state_accepts_filters_as_dict_and_reports_problems() -> None:
    st = ExplorerState()
    st.filters = {"start": "2021-03-01", "end": "2021-02-01"}  # type: ignore[assignment]
    assert isinstance(st.filters, Filters)
    assert st.filter_problems and "before the start" in st.filter_problems[0]
    assert any("before the start" in p for p in st.download_problems())
    with pytest.raises(ValueError, match="before the start"):
        st.estimate_download()
    st.set_dates("2021-01-01", None)
    assert st.filter_problems == []


# -- connection ----------------------------------------------------------------------------------


def test_connect_reports_who_answered_and_loads_tags_and_results(hub: Hub, home: Path) -> None:
    st = connected(hub, home)
    assert st.connection.startswith(f"Connected to {hub.url} (anonymous): ")
    assert st.dataset_count == len(hub.dataset_ids())
    assert st.wait(60)
    assert ("demo", 1) in st.tags
    assert set(st.results["id"]) == set(hub.dataset_ids())


def test_wrong_key_and_missing_key_end_as_messages(key_hub: Hub, home: Path) -> None:
    st = ExplorerState()
    st.connect(root_url=key_hub.url)
    st.wait(60)
    assert st.session is None
    assert "No API key was sent" in st.errors["login"]
    server = key_hub.url.split("/mlhub/")[0]
    assert st.errors["login"].startswith(f"No API key was sent, and {server} needs one")
    st.connect(root_url=key_hub.url, api_key="wrong")
    st.wait(60)
    message = st.errors["login"]
    assert message == (
        f"The API key was rejected by {server}. Check the key, or choose another profile."
    )
    # written for a UI user: no command-line advice, no request URL (it named the catalogue
    # of whichever dataset came first), never the key itself
    assert "mlhub configure" not in message and "`" not in message
    assert "/catalog/" not in message and "wrong" not in message
    st.connect(root_url=key_hub.url, api_key=KEY, then_search=False)
    st.wait(60)
    assert st.session is not None and "login" not in st.errors
    assert "(with an API key)" in st.connection


def test_unreachable_host_and_wrong_url_end_as_messages(hub: Hub, home: Path) -> None:
    st = ExplorerState()
    with socket_port() as port:
        st.connect(root_url=f"http://127.0.0.1:{port}/mlhub/v1/")
        st.wait(60)
    assert st.errors["login"] == (
        f"Cannot reach http://127.0.0.1:{port}: no answer. Is the server running, is the URL "
        "right, and is the network up?"
    )  # not the HTTP library's "HTTPConnectionPool(…): Max retries exceeded…"
    wrong = hub.url.replace("/mlhub/v1/", "/nothing-here/")
    st.connect(root_url=wrong)
    st.wait(60)
    assert "Check the root URL" in st.errors["login"]
    st.connect(root_url="ftp://example.org/")
    st.wait(60)
    assert "http(s)" in st.errors["login"]
    assert st.session is None


class socket_port:
    """A loopback port that refuses connections (bound, not listening)."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        port: int = self.sock.getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def test_profiles_are_saved_and_listed(hub: Hub, home: Path) -> None:
    st = ExplorerState()
    st.refresh_profiles()
    st.wait()
    assert st.profiles == []
    st.save_profile("", "abc")
    st.wait()
    assert st.errors["profiles"] == "Give the profile a name."
    st.save_profile("work", "abc123", hub.url)
    st.wait()
    assert st.profiles == ["work"]
    assert st.profile_urls == {"work": hub.url}
    assert st.notices["profiles"] == "Saved profile 'work'."
    st.connect(profile="work", then_search=False)
    st.wait()
    assert st.session is not None and st.session.api_key == "abc123"
    assert "profile 'work'" in st.connection


# -- selection and download ------------------------------------------------------------------


def test_select_dataset_loads_detail_extent_and_asset_keys(hub: Hub, home: Path) -> None:
    st = connected(hub, home, then_search=False)
    st.filters = Filters(bbox=(0, 0, 10, 10), start="2020-01-01", collection_filter={SOURCE: []})
    st.select_dataset(DEMO)
    assert st.wait(120)
    assert st.detail["title"] == "mlhub_widgets Demo Crop Type Dataset"
    assert st.detail["estimated_dataset_size"] > 0
    assert {c["id"] for c in st.detail["collections"]} == {SOURCE, LABELS}
    assert st.temporal_extent == (dt.date(2020, 1, 1), dt.date(2021, 12, 31))
    assert st.asset_keys[SOURCE] == ["image", "thumbnail"]
    assert st.footprint is not None
    # browsing writes nothing into the download folder (the catalogue is read elsewhere)
    assert not (home / "out").exists()
    # a new dataset keeps the area but not the dates or the collection filter
    assert st.filters == Filters(bbox=(0, 0, 10, 10))


METADATA_ONLY = "ref_agrifieldnet_competition_v1"  # no collection recorded: no catalogue


def test_results_say_which_datasets_can_be_downloaded(hub: Hub, home: Path) -> None:
    """The bundled hub names the reason in the record: no request per dataset is needed."""
    st = connected(hub, home)
    assert st.wait(60)
    reason = st.availability[METADATA_ONLY]
    assert reason.startswith("Metadata only:")
    assert {i for i, r in st.availability.items() if not r} == set(hub.dataset_ids()) - {
        METADATA_ONLY
    }
    assert "availability" not in st.busy


def test_metadata_only_dataset_cannot_be_estimated_or_started(hub: Hub, home: Path) -> None:
    st = connected(hub, home)
    assert st.wait(60)
    st.select_dataset(METADATA_ONLY)
    st.wait(60)
    assert st.detail["id"] == METADATA_ONLY
    assert st.detail["metadata_only_reason"] == st.metadata_only
    assert st.errors["assets"] == st.metadata_only  # the catalogue is not even asked for
    assert st.metadata_only in st.download_problems()
    with pytest.raises(ValueError, match="Metadata only"):
        st.estimate_download()
    with pytest.raises(ValueError, match="Metadata only"):
        st.start_download()
    assert st.job is None and st.job_state == "idle"


def test_other_servers_are_asked_per_dataset_whether_they_have_the_catalogue(
    hub: Hub, home: Path
) -> None:
    """A server whose records do not carry ``metadata_only_reason`` (as MLHub did) answers
    ``/catalog/{id}/info`` with 404 for a dataset without catalogue."""
    import json
    import urllib.request

    from .recording_server import Reply, recording_server

    with urllib.request.urlopen(hub.url + "datasets") as r:
        records = json.load(r)
    for rec in records:
        rec.pop("metadata_only_reason", None)
    records = [*records[:3], next(r for r in records if r["id"] == METADATA_ONLY)]
    with recording_server() as server:
        server.on("/v1/datasets", Reply(body=json.dumps(records).encode()))
        info = {"estimated_dataset_size": 10, "stac_catalog_size": 5}
        for rec in records[:3]:
            server.on(f"/v1/catalog/{rec['id']}/info", Reply(body=json.dumps(info).encode()))
        server.on(f"/v1/catalog/{METADATA_ONLY}/info", Reply(404, b'{"detail": "Not Found"}'))
        st = ExplorerState()
        st.connect(root_url=server.url + "v1/")
        assert st.wait(60)
        assert st.session is not None, st.errors
        assert st.availability == {
            **{rec["id"]: "" for rec in records[:3]},
            METADATA_ONLY: (
                f"Metadata only: the server has no STAC catalogue for {METADATA_ONLY}, so its "
                "assets cannot be listed or downloaded (its record and collections are still "
                "shown)."
            ),
        }
        asked = server.hits(f"/v1/catalog/{records[1]['id']}/info")
        st.search()  # asked once per connection, not at every search
        assert st.wait(60)
        assert server.hits(f"/v1/catalog/{records[1]['id']}/info") == asked


def test_estimate_and_download_follow_the_filters(hub: Hub, home: Path) -> None:
    st = connected(hub, home, then_search=False)
    st.select_dataset(DEMO)
    st.wait(120)
    st.set_dates("2021-01-01", "2021-12-31")
    st.set_collection_filter({SOURCE: ["image"]})
    st.estimate_download()
    st.wait(60)
    plan = st.estimate
    assert plan is not None and plan.assets > 0
    assert set(plan.per_collection) == {SOURCE}
    st.set_dates("2020-01-01", "2021-12-31")
    assert st.estimate is None  # stale estimates are dropped
    st.set_dates("2021-01-01", "2021-12-31")
    st.start_download()
    st.wait(60)
    assert st.job is not None
    st.job.wait(120)
    deadline = time.monotonic() + 10
    while st.job_state != "finished" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert st.job_state == "finished"
    assert st.progress.fraction == 1.0
    tifs = list((home / "out" / DEMO / SOURCE).rglob("image.tif"))
    assert len(tifs) == plan.assets
    assert not list((home / "out" / DEMO).rglob("thumbnail.*"))


def test_failed_download_is_listed_and_resumes(home: Path) -> None:
    with serve() as fresh:
        st = connected(fresh, home, then_search=False)
        st.select_dataset(DEMO)
        st.wait(120)
        st.set_collection_filter({LABELS: ["documentation"]})
        # every asset request fails for this run
        fresh.faults = FaultConfig(error_rate=1.0, error_statuses=(404,), scope="assets")
        st.start_download()
        st.wait(60)
        with pytest.raises(Exception, match="failed"):
            st.job.wait(120)
        deadline = time.monotonic() + 10
        while (st.job_state != "failed" or not st.failures) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert st.job_state == "failed"
        assert st.failure_count >= 1 and st.failures[0].asset_key == "documentation"
        assert st.errors["download"] == (
            f"{st.failure_count} assets could not be downloaded (listed below). Start again "
            "retries only those and the missing ones; every complete file is kept."
        )  # not the engine's "(if_exists='resume')" advice, written for code
        assert st.resumable
        assert Path(st.report_path).name == "err_report.csv"
        # fixed server: Start again resumes and completes
        fresh.faults = FaultConfig()
        st.start_download()
        st.wait(60)
        st.job.wait(120)
        deadline = time.monotonic() + 10
        while st.job_state != "finished" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert st.job_state == "finished"
        assert "download" not in st.errors
        assert (home / "out" / DEMO / LABELS / "documentation.pdf").exists()


def test_a_catalogue_that_answers_404_makes_the_dataset_metadata_only(home: Path) -> None:
    """The server lists the dataset and its catalogue info, but the catalogue itself is
    missing: reading it marks the dataset metadata only, so Start is refused with the reason
    before any download (never a 404 at the last step, never "Start (resume)")."""
    import json

    from .recording_server import Reply, recording_server

    record = {"id": "lost", "title": "Lost catalogue", "tags": [], "collections": []}
    with recording_server() as server:
        server.on("/v1/datasets", Reply(body=json.dumps([record]).encode()))
        server.on("/v1/datasets/lost", Reply(body=json.dumps(record).encode()))
        info = {"estimated_dataset_size": 10, "stac_catalog_size": 5}
        server.on("/v1/catalog/lost/info", Reply(body=json.dumps(info).encode()))
        server.on("/v1/catalog/lost", Reply(404, b'{"detail": "Not Found"}'))
        st = ExplorerState(output_dir=str(home / "out"))
        st.connect(root_url=server.url + "v1/")
        assert st.wait(60)
        assert st.availability == {"lost": ""}  # the info answered
        st.select_dataset("lost")
        assert st.wait(60)
        assert st.metadata_only.startswith("Metadata only: the server has no STAC catalogue")
        assert st.errors["assets"] == st.metadata_only
        with pytest.raises(ValueError, match="Metadata only"):
            st.start_download()
        assert not st.resumable and st.job is None


def test_start_error_ends_the_start_and_keeps_every_selection(hub: Hub, home: Path) -> None:
    """An output folder that is a file, or lies under a file: a one-line error, the job state
    goes back from "starting" (no job), Start works again, and nothing the user chose is
    lost."""
    st = connected(hub, home, then_search=False)
    st.select_dataset(DEMO)
    st.wait(120)
    st.set_dates("2021-01-01", "2021-12-31")
    st.set_collection_filter({SOURCE: ["image"]})
    chosen = st.filters
    a_file = home / "a-file"
    a_file.write_text("not a folder")

    st.output_dir = str(a_file)
    st.start_download()
    st.wait(60)
    assert st.job_state == "idle" and "download" not in st.busy
    assert st.errors["download"] == f"output_dir {a_file} exists and is not a folder"
    assert st.dataset_id == DEMO and st.filters == chosen

    st.output_dir = str(a_file / "below")
    st.start_download()  # the engine checks the folder before any job: one line, no job
    st.wait(60)
    assert st.job_state == "idle" and "download" not in st.busy
    message = st.errors["download"]
    assert message == f"output_dir {a_file / 'below'} cannot be created: {a_file} is not a folder"
    assert "\n" not in message and "Traceback" not in message
    assert not st.resumable  # nothing to resume: the button says "Start"
    assert st.dataset_id == DEMO and st.filters == chosen

    st.output_dir = str(home / "good")
    st.start_download()
    st.wait(60)
    st.job.wait(120)
    deadline = time.monotonic() + 10
    while st.job_state != "finished" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert st.job_state == "finished" and "download" not in st.errors
    assert st.notices["download"].endswith(f"into {home / 'good' / DEMO}.")


def test_job_started_from_code_is_followed(hub: Hub, home: Path) -> None:
    from mlhub_widgets.download import download_dataset

    st = ExplorerState()
    session = get_session(root_url=hub.url)
    job = download_dataset(
        DEMO, home / "code", session=session, catalog_only=True, progress=False, background=True
    )
    st.job = job
    job.wait(60)
    deadline = time.monotonic() + 10
    while st.job_state != "finished" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert st.job_state == "finished"
    assert st.progress is not None


def test_superseded_search_never_overwrites_a_newer_one(hub: Hub, home: Path) -> None:
    st = connected(hub, home, then_search=False)
    release = threading.Event()
    results: list[str] = []

    def slow() -> str:
        release.wait(10)
        return "old"

    new_delivered = threading.Event()

    def got_new(value: str) -> None:
        results.append(value)
        new_delivered.set()

    st.run_in_background("search", "slow", slow, results.append)
    st.run_in_background("search", "fast", lambda: "new", got_new)
    assert new_delivered.wait(10)  # the newer answer is in: now the older one arrives, late
    release.set()
    assert st.wait(10)
    assert results == ["new"]
    assert "search" not in st.busy


def test_friendly_error_never_is_a_traceback() -> None:
    assert friendly_error(PermissionError(13, "Permission denied", "/x")) == (
        "Permission denied: /x"
    )
    assert friendly_error(RuntimeError("boom")) == "Unexpected error (RuntimeError): boom"


def test_tags_ignore_case(hub: Hub, home: Path) -> None:
    st = connected(hub, home, then_search=False)
    st.search(tags=["Crop Type", "SENTINEL-2"])
    assert st.wait(60)
    assert len(st.results) > 0
    assert all(
        {"crop type", "sentinel-2"} <= {t.casefold() for t in tags} for tags in st.results["tags"]
    )
