"""HTTP session for the MLHub API: key resolution, URL joining, retries and error mapping.

``get_session()`` resolves the API key and root URL the way ``radiant_mlhub`` users know:

* key: ``api_key`` argument > ``MLHUB_API_KEY`` > ``profile`` argument > ``MLHUB_PROFILE`` >
  the ``[default]`` profile > anonymous (no key; endpoints that need one answer 401 and raise
  :class:`~mlhub_widgets.exceptions.AuthenticationError` explaining how to configure a key).
  ``profile="__anonymous__"`` asks for an anonymous session explicitly.
* root URL: ``root_url`` argument > ``MLHUB_ROOT_URL`` > the profile's ``root_url`` >
  :data:`DEFAULT_ROOT_URL`. A missing trailing ``/`` is added (never drops a path segment).

The key is sent as the ``key`` query parameter **only** to the API root's origin (scheme, host,
port); asset storage, redirects to other hosts and any other URL never see it, and it is masked
as ``key=***`` in every message, log line and repr.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from .._version import __version__
from ..exceptions import (
    APIKeyNotFound,
    AuthenticationError,
    EntityDoesNotExist,
    MLHubException,
    MLHubHTTPError,
    MLHubResponseError,
)
from ..net.redact import install_log_redaction, redact_text, redact_url
from ..net.retry import backoff_delay, retry_after_seconds
from . import profiles

log = logging.getLogger(__name__)
install_log_redaction()

DEFAULT_ROOT_URL = "https://api.radiant.earth/mlhub/v1/"
ANONYMOUS_PROFILE = "__anonymous__"
API_KEY_ENV = "MLHUB_API_KEY"
PROFILE_ENV = "MLHUB_PROFILE"
ROOT_URL_ENV = "MLHUB_ROOT_URL"

#: Statuses worth another try: rate limiting and server-side trouble.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: (connect, read) timeouts in seconds applied when a call does not give its own.
DEFAULT_TIMEOUT = (10.0, 60.0)

USER_AGENT = (
    f"mlhub_widgets/{__version__} (Python {platform.python_version()}; {platform.system()})"
)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def _normalise_root(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"Root URL must be an absolute http(s) URL, got {redact_url(url)!r}")
    return url if url.endswith("/") else url + "/"


class Session(requests.Session):
    """A :class:`requests.Session` bound to one MLHub API root.

    Relative URLs (``"datasets"``, ``"/collections/x"``) are joined to :attr:`root_url`. Every
    request gets ``Accept: application/json``, a descriptive ``User-Agent`` and timeouts; the API
    key goes only to the root's origin. Failed requests are retried (connection errors, 429 and
    5xx, honouring ``Retry-After``) a bounded number of times, then mapped to exceptions.

    Args:
        api_key: the key, or ``None`` for anonymous access.
        root_url: the API root (default :data:`DEFAULT_ROOT_URL`).
        max_attempts: attempts per request, first one included.
        backoff: base of the exponential backoff in seconds.
        max_retry_time: total seconds a request may spend waiting between attempts.
        timeout: default ``(connect, read)`` timeout in seconds.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        root_url: str | None = None,
        max_attempts: int = 5,
        backoff: float = 0.5,
        max_retry_time: float = 60.0,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        profile: str | None = None,
    ) -> None:
        super().__init__()
        self._api_key = api_key or None
        self.root_url = _normalise_root(root_url or DEFAULT_ROOT_URL)
        self.profile = profile
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.max_retry_time = max_retry_time
        self.timeout = timeout
        self.headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})
        self._root_origin = _origin(self.root_url)

    # -- identity ---------------------------------------------------------------------------
    @property
    def api_key(self) -> str | None:
        """The API key (``None`` when anonymous). Never printed by the library."""
        return self._api_key

    @property
    def anonymous(self) -> bool:
        """True when no API key is sent."""
        return self._api_key is None

    def __repr__(self) -> str:
        who = "anonymous" if self.anonymous else "key=***"
        return f"<mlhub_widgets.Session {self.root_url} {who}>"

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError("mlhub_widgets.Session cannot be pickled (it holds an API key)")

    # -- URLs --------------------------------------------------------------------------------
    def url_for(self, url: str) -> str:
        """Join a relative URL (``"datasets"``, ``"/datasets"``) onto the root URL."""
        if urlsplit(url).scheme:
            return url
        return urljoin(self.root_url, url.lstrip("/"))

    def is_api_url(self, url: str) -> bool:
        """True when ``url`` is on the API root's origin (the only place the key may go)."""
        return _origin(self.url_for(url)) == self._root_origin

    def redact(self, text: str) -> str:
        """Mask this session's key (and any ``key=`` parameter) in ``text``."""
        return redact_text(text, self._api_key)

    # -- requests ----------------------------------------------------------------------------
    def request(  # type: ignore[override]
        self, method: str, url: str | bytes, **kwargs: Any
    ) -> requests.Response:
        """Send a request with key scoping, timeouts, retries and error mapping.

        Extra keyword ``raise_errors=False`` returns error responses instead of raising.
        """
        raise_errors: bool = kwargs.pop("raise_errors", True)
        full = self.url_for(url.decode() if isinstance(url, bytes) else url)
        if self._api_key and self.is_api_url(full):
            kwargs["params"] = _with_key(kwargs.get("params"), self._api_key)
        kwargs.setdefault("timeout", self.timeout)
        method = method.upper()
        started = time.monotonic()
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            try:
                response = super().request(method, full, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                delay = backoff_delay(attempt, self.backoff, 30.0)
                if attempt >= self.max_attempts or waited + delay > self.max_retry_time:
                    raise MLHubException(
                        f"{method} {redact_url(full)} failed after {attempt} attempt(s) "
                        f"in {time.monotonic() - started:.1f}s: {self.redact(_short(exc))}"
                    ) from None
                log.info(
                    "retrying %s %s in %.2fs after %s",
                    method,
                    redact_url(full),
                    delay,
                    type(exc).__name__,
                )
            else:
                if response.status_code not in RETRY_STATUSES:
                    break
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                delay = (
                    retry_after
                    if retry_after is not None
                    else backoff_delay(attempt, self.backoff, 30.0)
                )
                if attempt >= self.max_attempts or waited + delay > self.max_retry_time:
                    break
                log.info(
                    "retrying %s %s in %.2fs after HTTP %s",
                    method,
                    redact_url(full),
                    delay,
                    response.status_code,
                )
                response.close()
            time.sleep(delay)
            waited += delay
        if raise_errors and response.status_code >= 400:
            raise self._error_for(response, method, full)
        return response

    def _error_for(self, response: requests.Response, method: str, url: str) -> MLHubHTTPError:
        detail = _detail(response)
        detail = self.redact(detail) if detail else None
        status = response.status_code
        if status == 401:
            why = "No API key was sent" if self.anonymous else "The API key was rejected"
            hint = (
                f"{why} ({detail or 'HTTP 401'}). Configure a key with `mlhub configure`, "
                f"the {API_KEY_ENV} environment variable, or api_key=... ."
            )
            return AuthenticationError(
                status,
                method,
                url,
                detail,
                message=f"Authentication failed for {method} {redact_url(url)}: {hint}",
            )
        if status == 404:
            return EntityDoesNotExist(status, method, url, detail)
        return MLHubHTTPError(status, method, url, detail)

    def get_json(self, url: str, **kwargs: Any) -> Any:
        """GET ``url`` and return its JSON body (clear error if the body is not JSON)."""
        response = self.get(url, **kwargs)
        return self.json_of(response)

    def json_of(self, response: requests.Response) -> Any:
        """Decode a JSON response, raising :class:`MLHubResponseError` for anything else."""
        try:
            return response.json()
        except (ValueError, json.JSONDecodeError):
            ctype = response.headers.get("Content-Type", "unknown type")
            start = response.text[:80].replace("\n", " ")
            raise MLHubResponseError(
                f"Expected JSON from {response.request.method} {redact_url(response.url)} "
                f"but got {ctype} (HTTP {response.status_code}): {start!r}",
                url=response.url,
                status_code=response.status_code,
            ) from None

    def paginate(self, url: str, **kwargs: Any) -> Iterator[Any]:
        """Yield every page of a paged endpoint, following ``rel="next"`` links.

        ``params`` are sent with the first request only: ``next`` links carry their own query.
        """
        page: Any = self.get_json(url, **kwargs)
        kwargs.pop("params", None)
        seen: set[str] = set()
        while True:
            yield page
            nxt = _next_link(page)
            if nxt is None:
                return
            if nxt in seen:
                raise MLHubResponseError(f"Pagination loop at {redact_url(nxt)}", url=nxt)
            seen.add(nxt)
            page = self.get_json(nxt, **kwargs)


def _with_key(params: Any, key: str) -> Any:
    if params is None:
        return {"key": key}
    if isinstance(params, Mapping):
        return {**params, "key": key}
    if isinstance(params, list | tuple):
        return [*params, ("key", key)]
    raise TypeError(f"params must be a mapping or a list of pairs, not {type(params).__name__}")


def _next_link(page: Any) -> str | None:
    if not isinstance(page, Mapping):
        return None
    for link in page.get("links") or ():
        if isinstance(link, Mapping) and link.get("rel") == "next" and link.get("href"):
            return str(link["href"])
    return None


def _detail(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:200] if text and not text.lstrip().startswith("<") else None
    if isinstance(body, Mapping):
        detail = body.get("detail") or body.get("message") or body.get("description")
        return str(detail) if detail else None
    return None


def _short(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text[:300]}"


def resolve_api_key(
    api_key: str | None = None, profile: str | None = None
) -> tuple[str | None, profiles.Profile | None]:
    """Resolve the key as :func:`get_session` does; returns ``(key, profile used)``."""
    if api_key:
        return api_key, None
    if profile == ANONYMOUS_PROFILE:
        return None, None
    env_key = os.environ.get(API_KEY_ENV)
    if env_key:
        return env_key, None
    name = profile or os.environ.get(PROFILE_ENV) or None
    if name == ANONYMOUS_PROFILE:
        return None, None
    if name is None:
        path = profiles.profiles_path()
        if not path.exists():
            return None, None
        found = {p.name: p for p in profiles.list_profiles(path)}
        prof = found.get(profiles.DEFAULT_PROFILE)
        if prof is None:
            return None, None
        return prof.api_key, prof
    prof = profiles.load_profile(name)
    return prof.api_key, prof


def get_session(
    *,
    api_key: str | None = None,
    profile: str | None = None,
    root_url: str | None = None,
    **session_options: Any,
) -> Session:
    """Create a :class:`Session`, resolving the key and root URL (see the module docstring).

    Raises:
        ProfileError: a profile was named (argument or ``MLHUB_PROFILE``) but cannot be used.
        ValueError: the root URL is not an absolute http(s) URL.
    """
    key, prof = resolve_api_key(api_key, profile)
    root = root_url or os.environ.get(ROOT_URL_ENV) or (prof.root_url if prof else None)
    return Session(
        api_key=key,
        root_url=root or DEFAULT_ROOT_URL,
        profile=prof.name if prof else None,
        **session_options,
    )


def require_api_key(session: Session) -> str:
    """Return the session's key or raise :class:`APIKeyNotFound` with set-up instructions."""
    if session.api_key is None:
        raise APIKeyNotFound(
            "Could not resolve an API key from arguments, the environment "
            f"({API_KEY_ENV}) or a profile ({profiles.profiles_path()}); "
            "run `mlhub configure` or pass api_key=..."
        )
    return session.api_key
