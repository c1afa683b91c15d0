"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlhub_widgets.hub import Hub, serve

#: Real network parts (proxies, TLS, object stores, Dask): see tests/parts/__init__.py.
pytest_plugins = ["tests.parts"]

# -- optional suites -----------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--torch",
        action="store_true",
        help="also run the tests marked torch (they need torch and torchgeo: nox -s training)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``torch`` are deselected (reported as such) unless ``--torch`` is given."""
    if config.getoption("--torch"):
        return
    torch_tests = [item for item in items if item.get_closest_marker("torch") is not None]
    if torch_tests:
        config.hook.pytest_deselected(items=torch_tests)
        items[:] = [item for item in items if item.get_closest_marker("torch") is None]


# -- bundled hub ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def hub() -> Iterator[Hub]:
    """A running bundled hub (default data, no key required, no faults), shared by the session.

    Tests that change its state (faults, ``change_asset``, counters) should use their own
    ``Hub`` instead, or restore what they changed.
    """
    with serve() as running:
        yield running


@pytest.fixture(scope="session", autouse=True)
def _hub_cache_of_this_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Hubs keep built catalogue tarballs in this session's (xdist worker's) own folder.

    The default, ``<tmp>/mlhub_widgets-hub-cache``, is shared by every run on the machine and
    its entries (keyed by the hub's random ports) are pruned only after two days.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLHUB_HUB_CACHE", str(tmp_path_factory.mktemp("hub-cache")))
        yield


# -- object stores ---------------------------------------------------------------------------------


@pytest.fixture
def object_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh local state folder for object-store destinations (``MLHUB_STATE_DIR``: set
    before a Dask cluster starts, its workers inherit it as workers on one machine share the
    user's cache folder) and no store cached from another test (stores are cached per
    environment; tests change it). The object-storage modules use it for every test."""
    from mlhub_widgets.net.objects import clear_stores

    monkeypatch.setenv("MLHUB_STATE_DIR", str(tmp_path_factory.mktemp("state")))
    clear_stores()


# -- isolation from the developer's own configuration ---------------------------------------------


@pytest.fixture(autouse=True)
def _isolated_mlhub_config(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test reads or writes the real ~/.mlhub or inherits MLHUB_* settings."""
    for var in ("MLHUB_API_KEY", "MLHUB_PROFILE", "MLHUB_ROOT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLHUB_HOME", str(tmp_path_factory.mktemp("mlhub-home")))
