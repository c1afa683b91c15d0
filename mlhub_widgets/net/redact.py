"""Keep API keys out of everything the library shows or writes.

Every URL or message that may reach an exception, a log line, a repr, a widget or a file
goes through :func:`redact_url` or :func:`redact_text` first.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_KEY_IN_TEXT = re.compile(r"(?i)(\bkey=)[^&#\s'\"]*")


def redact_url(url: str) -> str:
    """Return ``url`` with the value of any ``key`` query parameter replaced by ``***``."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if not any(name.lower() == "key" for name, _ in pairs):
        return url
    query = urlencode(
        [(name, MASK if name.lower() == "key" else value) for name, value in pairs], safe="*"
    )
    return urlunsplit(parts._replace(query=query))


def redact_text(text: str, *secrets: str | None) -> str:
    """Mask ``key=...`` query values and every literal occurrence of ``secrets`` in ``text``."""
    text = _KEY_IN_TEXT.sub(lambda m: m.group(1) + MASK, text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def mask_key(key: str | None) -> str:
    """A short, safe form of a key for listings: ``****abc123`` (last 6 characters)."""
    if not key:
        return "(none)"
    return "****" + key[-6:] if len(key) > 12 else "****"


class RedactingFilter(logging.Filter):
    """A logging filter that masks ``key=...`` in a record's rendered message.

    Installed on ``urllib3.connectionpool``, whose debug lines contain full request URLs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def install_log_redaction() -> None:
    """Mask API keys in the request lines third-party HTTP libraries log (idempotent)."""
    for name in ("urllib3.connectionpool",):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
