"""Network settings shared by every request of a session: proxy, TLS, timeouts, limits, retries.

One :class:`NetworkSettings` value describes how to talk to the network; the HTTP client
(:mod:`mlhub_widgets.net.http`) and the object stores (:mod:`mlhub_widgets.net.objects`) are built
from it. It is frozen and hashable, so clients can be shared per setting.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field, replace
from typing import Any

from .._version import __version__
from .proxy import ProxyConfig, proxy_config_from_env
from .retry import RetryPolicy
from .tls import VerifySetting

__all__ = ["USER_AGENT", "NetworkSettings"]

USER_AGENT = (
    f"mlhub_widgets/{__version__} (Python {platform.python_version()}; {platform.system()})"
)

#: Largest JSON document (API answer, STAC document) read into memory.
MAX_DOCUMENT_BYTES = 128 << 20


@dataclass(frozen=True)
class NetworkSettings:
    """How requests reach the network.

    Args:
        proxy: ``None`` to follow ``HTTP(S)_PROXY``/``ALL_PROXY``/``NO_PROXY``; a proxy URL for
            every request (``NO_PROXY`` still applies); ``False`` for none.
        verify: ``True`` (system CAs + certifi + ``SSL_CERT_FILE``/``REQUESTS_CA_BUNDLE``), a CA
            bundle path to trust as well, or ``False`` (no verification, with a warning).
        connect_timeout: seconds to open a connection (TCP, proxy tunnel and TLS).
        read_timeout: seconds to wait for the status line and headers, and the longest silence
            while a body arrives.
        deadline: seconds one request for a document (API JSON, a STAC file, a tarball's
            headers) may take from start to last byte, whatever the server trickles.
        low_speed_limit: bytes per second below which a streamed body counts as stalled ...
        low_speed_time: ... when it stays below for this many seconds (curl's ``-Y``/``-y``).
        max_document_bytes: largest document read into memory.
        retry: the retry policy (attempts, backoff, total retry time).
        user_agent: the ``User-Agent`` header.
    """

    proxy: str | bool | None = None
    verify: VerifySetting = True
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    deadline: float = 300.0
    low_speed_limit: int = 1024
    low_speed_time: float = 30.0
    max_document_bytes: int = MAX_DOCUMENT_BYTES
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    user_agent: str = USER_AGENT

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "read_timeout", "deadline", "low_speed_time"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if isinstance(self.verify, os.PathLike):
            object.__setattr__(self, "verify", os.fspath(self.verify))

    def with_(self, **changes: Any) -> NetworkSettings:
        """A copy with some settings changed."""
        return replace(self, **changes)

    def proxies(self) -> ProxyConfig:
        """The proxy of each URL under these settings and the current environment."""
        return proxy_config_from_env(self.proxy)
