"""Retry timing shared by every HTTP client of the package: backoff with jitter, ``Retry-After``.

The API session (:mod:`mlhub_widgets.config.session`), the static-catalogue reader
(:mod:`mlhub_widgets.sources.fetch`) and the transfer engine
(:mod:`mlhub_widgets.download.transfer`) wait the same way between attempts.
"""

from __future__ import annotations

import email.utils
import random
import time

__all__ = ["backoff_delay", "retry_after_seconds"]


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a ``Retry-After`` header (seconds or an HTTP date) into seconds from now."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter for the ``attempt``-th retry (1-based)."""
    return float(random.uniform(0, min(cap, base * 2 ** (attempt - 1))))
