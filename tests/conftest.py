"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlhub_widgets.hub import Hub, serve

# -- bundled hub ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def hub() -> Iterator[Hub]:
    """A running bundled hub (default data, no key required, no faults), shared by the session.

    Tests that change its state (faults, ``change_asset``, counters) should use their own
    ``Hub`` instead, or restore what they changed.
    """
    with serve() as running:
        yield running
