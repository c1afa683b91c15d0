"""The one retry policy of every request the package makes.

API JSON, static-catalogue documents, catalogue tarballs, archives, assets and object-store
reads all retry the same way: connection errors, timeouts, bodies cut short and the statuses in
:data:`RETRY_STATUSES` are tried again, at most :attr:`RetryPolicy.max_attempts` times in all,
after an exponential backoff with full jitter (or the server's ``Retry-After``), until the next
wait would pass :attr:`RetryPolicy.max_retry_time`. 400, 401, 403, 404 and 410 are final at once
(a signed URL refused with 401/403 is signed again once by the download engine, see
:mod:`mlhub_widgets.net.signing`).
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass
from typing import Final

__all__ = ["RETRY_STATUSES", "RetryPolicy", "backoff_delay", "retry_after_seconds"]

#: Statuses worth another try: request timeout, rate limiting and server-side trouble.
RETRY_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Parse a ``Retry-After`` header (seconds or an HTTP date) into seconds from now."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN is no answer
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter before retry number ``attempt`` (1-based)."""
    return random.uniform(0, min(cap, base * 2 ** max(0, attempt - 1)))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long a failed request is tried again.

    Args:
        max_attempts: requests per operation, the first one included.
        backoff: base of the exponential backoff in seconds (the n-th retry waits a random
            time in ``[0, min(backoff_cap, backoff * 2**(n-1))]``).
        backoff_cap: longest wait between two attempts chosen by the backoff.
        max_retry_time: seconds an operation may spend between its first attempt and a retry;
            a ``Retry-After`` that asks for more ends the operation with that reason.
    """

    max_attempts: int = 8
    backoff: float = 0.25
    backoff_cap: float = 30.0
    max_retry_time: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.backoff < 0 or self.backoff_cap < 0 or self.max_retry_time < 0:
            raise ValueError("backoff, backoff_cap and max_retry_time must not be negative")

    def backoff_delay(self, attempt: int) -> float:
        """Full-jitter exponential backoff before retry number ``attempt`` (1-based)."""
        return backoff_delay(attempt, self.backoff, self.backoff_cap)

    def next_delay(
        self, attempts: int, elapsed: float, retry_after: float | None = None
    ) -> float | str:
        """Seconds to wait before the next attempt, or why to give up.

        Args:
            attempts: attempts made so far (>= 1).
            elapsed: seconds since the first attempt started.
            retry_after: the server's ``Retry-After`` in seconds, if it sent one.

        Returns:
            The delay, or a short reason (``"gave up after 8 attempts"``) to append to the
            error of the last attempt.
        """
        if attempts >= self.max_attempts:
            return f"gave up after {attempts} attempts"
        delay = self.backoff_delay(attempts) if retry_after is None else retry_after
        if elapsed + delay > self.max_retry_time:
            if retry_after is not None and retry_after > self.max_retry_time:
                return f"Retry-After {retry_after:.0f}s is too long"
            return f"gave up after {elapsed:.0f}s"
        return delay
