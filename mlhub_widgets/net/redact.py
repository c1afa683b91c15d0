"""Keep credentials out of everything the library shows or writes.

Every URL or message that may reach an exception, a log line, a repr, an event, a widget, the
manifest or ``err_report.csv`` goes through :func:`redact_url` or :func:`redact_text` first.
Masked with ``***``:

* query values of ``key``, ``token``, ``sig``/``signature`` and their usual variants, and of
  every ``X-Amz-*`` and ``X-Goog-*`` parameter (S3 and GCS pre-signed URLs, Azure SAS tokens,
  the MLHub API key);
* ``Authorization``, ``Proxy-Authorization`` and ``Cookie`` header values, and the password of
  a URL's ``user:password@``;
* any literal secret passed to :func:`redact_text` (an API key echoed in an error body).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "RedactingFilter",
    "install_log_redaction",
    "is_secret_param",
    "mask_key",
    "redact_text",
    "redact_url",
]

MASK = "***"

_SECRET_NAMES = frozenset(
    {
        "key",
        "api_key",
        "apikey",
        "api-key",
        "token",
        "access_token",
        "id_token",
        "refresh_token",
        "sig",
        "signature",
        "password",
        "secret",
        "client_secret",
    }
)
_SECRET_PREFIXES = ("x-amz-", "x-goog-")

_NAME = (
    r"(?:api[_-]?key|key|(?:access_|id_|refresh_)?token|sig|signature|password|secret"
    r"|client_secret|x-amz-[\w-]+|x-goog-[\w-]+)"
)
_PARAM_IN_TEXT = re.compile(rf"(?i)(?<![\w-])({_NAME}=)[^&#\s'\"<>,;]*")
_HEADER_IN_TEXT = re.compile(
    r"(?i)\b((?:proxy-)?authorization|cookie|set-cookie)(['\"]?\s*[:=]\s*['\"]?)[^'\"\r\n,}]*"
)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s@]*@")


def is_secret_param(name: str) -> bool:
    """True for query parameter names whose values are credentials."""
    low = name.lower()
    return low in _SECRET_NAMES or low.startswith(_SECRET_PREFIXES)


def redact_url(url: str) -> str:
    """``url`` with credential query values and any ``user:password@`` password masked."""
    if "@" in url:
        url = _USERINFO.sub(lambda m: m.group(1) + MASK + "@", url)
    if "?" not in url:
        return url
    parts = urlsplit(url)
    if not parts.query:
        return url
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if not any(is_secret_param(name) for name, _ in pairs):
        return url
    query = urlencode(
        [(name, MASK if is_secret_param(name) else value) for name, value in pairs], safe="*"
    )
    return urlunsplit(parts._replace(query=query))


def redact_text(text: str, *secrets: str | None) -> str:
    """Mask credential query values and headers, and every literal ``secrets``, in ``text``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    if "=" in text:
        text = _PARAM_IN_TEXT.sub(lambda m: m.group(1) + MASK, text)
    if ":" in text or "=" in text:
        text = _HEADER_IN_TEXT.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
    if "@" in text:
        text = _USERINFO.sub(lambda m: m.group(1) + MASK + "@", text)
    return text


def mask_key(key: str | None) -> str:
    """A short, safe form of a key for listings: ``****abc123`` (last 6 characters)."""
    if not key:
        return "(none)"
    return "****" + key[-6:] if len(key) > 12 else "****"


class RedactingFilter(logging.Filter):
    """A logging filter that masks credentials in a record's rendered message.

    Installed on the loggers of the HTTP libraries the package uses, whose debug lines contain
    full request URLs and headers.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_LOGGERS = ("urllib3.connectionpool", "aiohttp.client", "aiohttp.internal", "mlhub_widgets")


def install_log_redaction() -> None:
    """Mask credentials in the lines the package's and its HTTP libraries' loggers write
    (idempotent)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
