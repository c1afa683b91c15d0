"""Session layer: key and root-URL resolution, key scoping and redaction, retries, errors."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from mlhub_widgets.config import profiles
from mlhub_widgets.config.session import DEFAULT_ROOT_URL, USER_AGENT, Session, get_session
from mlhub_widgets.exceptions import (
    AuthenticationError,
    EntityDoesNotExist,
    MLHubException,
    MLHubHTTPError,
    MLHubResponseError,
    ProfileError,
)

from .recording_server import Reply, recording_server

SECRET = "secret-key-0123456789abcdef"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("MLHUB_API_KEY", "MLHUB_PROFILE", "MLHUB_ROOT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLHUB_HOME", str(tmp_path / "mlhub-home"))
    return tmp_path / "mlhub-home"


# ------------------------------------------------------------------ key resolution matrix
# (api_key arg, MLHUB_API_KEY, profile arg, MLHUB_PROFILE, expected key)
MATRIX = [
    ("arg", "env", "other", "other", "arg"),
    (None, "env", "other", "other", "env"),
    (None, None, "other", "third", "other-key"),
    (None, None, None, "third", "third-key"),
    (None, None, None, None, "default-key"),
    ("arg", None, None, None, "arg"),
    (None, "env", None, None, "env"),
    (None, None, "__anonymous__", "third", None),
    (None, None, None, "__anonymous__", None),
]


@pytest.mark.parametrize(("arg", "env", "prof", "env_prof", "expected"), MATRIX)
def test_key_resolution_order(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    arg: str | None,
    env: str | None,
    prof: str | None,
    env_prof: str | None,
    expected: str | None,
) -> None:
    for name in ("default", "other", "third"):
        profiles.save_profile(name, f"{name}-key")
    if env:
        monkeypatch.setenv("MLHUB_API_KEY", env)
    if env_prof:
        monkeypatch.setenv("MLHUB_PROFILE", env_prof)
    session = get_session(api_key=arg, profile=prof)
    assert session.api_key == expected


def test_no_configuration_gives_an_anonymous_session(home: Path) -> None:
    session = get_session()
    assert session.anonymous and session.api_key is None
    assert session.root_url == DEFAULT_ROOT_URL


def test_named_profile_that_does_not_exist_names_file_and_profile(home: Path) -> None:
    with pytest.raises(ProfileError) as err:
        get_session(profile="nope")
    assert "nope" in str(err.value) and str(home / "profiles") in str(err.value)
    profiles.save_profile("default", "k1")
    with pytest.raises(
        ProfileError, match=r"Profile 'nope' not found in .*profiles there: default"
    ):
        get_session(profile="nope")


def test_profile_section_without_key_is_an_error(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "profiles").write_text("[default]\nroot_url = http://x.test/\n")
    (home / "profiles").chmod(0o600)
    # the [default] section exists but has no key: anonymous is not silently assumed for
    # an explicitly named profile
    with pytest.raises(ProfileError, match="has no api_key"):
        get_session(profile="default")


@pytest.mark.parametrize(
    ("arg", "env", "profile_root", "expected"),
    [
        (
            "http://arg.test/v1/",
            "http://env.test/v1/",
            "http://prof.test/v1/",
            "http://arg.test/v1/",
        ),
        (None, "http://env.test/v1/", "http://prof.test/v1/", "http://env.test/v1/"),
        (None, None, "http://prof.test/v1/", "http://prof.test/v1/"),
        (None, None, None, DEFAULT_ROOT_URL),
        ("http://arg.test/mlhub/v1", None, None, "http://arg.test/mlhub/v1/"),
    ],
)
def test_root_url_resolution(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    arg: str | None,
    env: str | None,
    profile_root: str | None,
    expected: str,
) -> None:
    profiles.save_profile("default", "k", profile_root)
    if env:
        monkeypatch.setenv("MLHUB_ROOT_URL", env)
    session = get_session(root_url=arg)
    assert session.root_url == expected
    # a root without a trailing slash never loses its last path segment
    assert session.url_for("datasets") == expected + "datasets"


def test_invalid_root_url_is_rejected(home: Path) -> None:
    with pytest.raises(ValueError, match="absolute http"):
        get_session(root_url="api.example.org/v1")


# ------------------------------------------------------------------ key scoping, redaction
def test_key_goes_only_to_the_api_origin() -> None:
    with recording_server() as api, recording_server() as other:
        api.on("/v1/datasets", Reply(body=b"[]"))
        api.on("/v1/elsewhere", Reply(303, b"", {"Location": other.url + "blob"}))
        other.on("/blob", Reply(body=b'{"ok": true}'))
        other.on("/direct", Reply(body=b"{}"))
        session = Session(api_key=SECRET, root_url=api.url + "v1/")

        assert session.get_json("datasets") == []
        assert api.seen[-1].query["key"] == [SECRET]

        # a redirect from the API to another origin does not carry the key
        assert session.get_json("elsewhere") == {"ok": True}
        # a direct request to another origin does not carry the key either
        session.get(other.url + "direct")
        assert other.hits("/blob") == 1 and other.hits("/direct") == 1
        assert other.keys_seen() == 0


def test_headers_and_timeouts_are_always_set() -> None:
    with recording_server() as api:
        api.on("/datasets", Reply(body=b"[]"))
        Session(root_url=api.url).get("datasets")
        headers = api.seen[-1].headers
        assert headers["Accept"] == "application/json"
        assert headers["User-Agent"] == USER_AGENT
        assert USER_AGENT.startswith("mlhub_widgets/")


def test_key_never_appears_in_repr_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with recording_server() as api:
        api.on("/bad", Reply(400, b'{"detail": "bad request for key=' + SECRET.encode() + b'"}'))
        api.on("/flaky", Reply(503, b"{}", {"Retry-After": "0"}), Reply(body=b"{}"))
        session = Session(api_key=SECRET, root_url=api.url)
        assert SECRET not in repr(session)
        with pytest.raises(MLHubHTTPError) as err:
            session.get("bad")
        session.get("flaky")
    text = str(err.value) + err.value.url + (err.value.detail or "")
    assert SECRET not in text and "key" not in err.value.url
    assert SECRET not in caplog.text
    assert "retrying GET" in caplog.text
    with pytest.raises(TypeError, match="cannot be pickled"):
        session.__getstate__()


# ------------------------------------------------------------------ errors
def test_401_explains_how_to_configure_a_key() -> None:
    with recording_server() as api:
        body = b'{"detail":"Must provide API key or Bearer token to access this route."}'
        api.on("/items", Reply(401, body))
        with pytest.raises(AuthenticationError) as anon:
            Session(root_url=api.url).get("items")
        with pytest.raises(AuthenticationError) as keyed:
            Session(root_url=api.url, api_key=SECRET).get("items")
    assert "No API key was sent" in str(anon.value)
    assert "mlhub configure" in str(anon.value) and "MLHUB_API_KEY" in str(anon.value)
    assert "rejected" in str(keyed.value) and SECRET not in str(keyed.value)
    assert anon.value.status_code == 401 and anon.value.method == "GET"


def test_404_is_not_retried_and_maps_to_entity_does_not_exist() -> None:
    with recording_server() as api:
        api.on("/collections/x", Reply(404, b'{"detail":"Collection x does not exist."}'))
        with pytest.raises(EntityDoesNotExist, match="Collection x does not exist"):
            Session(root_url=api.url).get("collections/x")
        assert api.hits("/collections/x") == 1


@pytest.mark.parametrize(
    "body",
    [b"<html><body>502 Bad Gateway</body></html>", b'{"collections": [{"id": "a"'],
    ids=["html", "truncated-json"],
)
def test_non_json_body_gives_a_clear_error(body: bytes) -> None:
    with recording_server() as api:
        api.on("/collections", Reply(200, body, {"Content-Type": "text/html"}))
        with pytest.raises(MLHubResponseError, match="Expected JSON from GET"):
            Session(root_url=api.url).get_json("collections")


# ------------------------------------------------------------------ retries
def test_retries_honour_retry_after_then_succeed() -> None:
    with recording_server() as api:
        api.on(
            "/datasets",
            Reply(429, b"{}", {"Retry-After": "0.3"}),
            Reply(503, b"{}", {"Retry-After": "0.3"}),
            Reply(body=b"[1]"),
        )
        started = time.monotonic()
        assert Session(root_url=api.url).get_json("datasets") == [1]
        elapsed = time.monotonic() - started
        assert api.hits("/datasets") == 3
        assert elapsed >= 0.6  # both Retry-After waits were honoured


def test_retries_are_bounded() -> None:
    with recording_server() as api:
        api.on("/datasets", Reply(500, b'{"detail":"boom"}'))
        session = Session(root_url=api.url, max_attempts=3, backoff=0.01)
        with pytest.raises(MLHubHTTPError) as err:
            session.get("datasets")
        assert err.value.status_code == 500 and err.value.detail == "boom"
        assert api.hits("/datasets") == 3


def test_retry_after_beyond_the_time_budget_stops_early() -> None:
    with recording_server() as api:
        api.on("/datasets", Reply(503, b"{}", {"Retry-After": "3600"}))
        session = Session(root_url=api.url, max_retry_time=5)
        with pytest.raises(MLHubHTTPError):
            session.get("datasets")
        assert api.hits("/datasets") == 1  # the one-hour wait was not even started


def test_connection_errors_are_retried_then_reported() -> None:
    with recording_server() as api:
        dead = api.url  # the port is closed once the block ends
    session = Session(root_url=dead, max_attempts=3, backoff=0.01, api_key=SECRET)
    with pytest.raises(MLHubException) as err:
        session.get("datasets")
    assert "failed after 3 attempt(s)" in str(err.value)
    assert SECRET not in str(err.value)


def test_paginate_follows_next_links_without_resending_params() -> None:
    with recording_server() as api:
        api.on(
            "/items",
            Reply(
                body=b'{"n": 1, "links": [{"rel": "next", "href": "%sitems2?token=a"}]}'.replace(
                    b"%s", api.url.encode()
                )
            ),
        )
        api.on("/items2", Reply(body=b'{"n": 2, "links": []}'))
        session = Session(root_url=api.url, api_key=SECRET)
        pages = list(session.paginate("items", params={"limit": 5}))
        assert [p["n"] for p in pages] == [1, 2]
        assert api.seen[0].query["limit"] == ["5"]
        assert "limit" not in api.seen[1].query and api.seen[1].query["token"] == ["a"]
        assert api.seen[1].query["key"] == [SECRET]  # same origin: the key goes along


def test_paginate_detects_loops() -> None:
    with recording_server() as api:
        loop = b'{"links": [{"rel": "next", "href": "%sitems"}]}'.replace(b"%s", api.url.encode())
        api.on("/items", Reply(body=loop))
        with pytest.raises(MLHubResponseError, match="Pagination loop"):
            list(Session(root_url=api.url).paginate("items"))
