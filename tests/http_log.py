"""Test helper: the URLs the package's HTTP layer requests, read from its DEBUG log lines."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


class _UrlRecorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lists: list[list[str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        method, _, url = record.getMessage().partition(" ")
        if method in ("GET", "POST", "HEAD") and url.startswith("http"):
            for urls in self.lists:
                urls.append(url)


_RECORDER = _UrlRecorder()


@pytest.fixture(autouse=True)
def _record_requests() -> Iterator[None]:
    """Attach the recorder for the test (import this fixture into a test module)."""
    logger = logging.getLogger("mlhub_widgets.net.http")
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(_RECORDER)
    try:
        yield
    finally:
        logger.removeHandler(_RECORDER)
        logger.setLevel(old_level)
        _RECORDER.lists.clear()


def record_urls(*_ignored: object) -> list[str]:
    """Every URL requested from now on, with its query values (credentials masked)."""
    urls: list[str] = []
    _RECORDER.lists.append(urls)
    return urls
