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
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from multidict import CIMultiDict, CIMultiDictProxy

from ..exceptions import (
    APIKeyNotFound,
    AuthenticationError,
    EntityDoesNotExist,
    MLHubHTTPError,
    MLHubResponseError,
)
from ..net.http import Credentials, Document, error_detail, origin_of, strip_secrets
from ..net.redact import redact_text, redact_url
from ..net.retry import RetryPolicy
from ..net.settings import USER_AGENT, NetworkSettings
from ..net.sync import fetch
from ..net.tls import VerifySetting
from . import profiles

log = logging.getLogger(__name__)

DEFAULT_ROOT_URL = "https://api.radiant.earth/mlhub/v1/"
ANONYMOUS_PROFILE = "__anonymous__"
API_KEY_ENV = "MLHUB_API_KEY"
PROFILE_ENV = "MLHUB_PROFILE"
ROOT_URL_ENV = "MLHUB_ROOT_URL"

#: (connect, read) timeouts in seconds applied when a call does not give its own.
DEFAULT_TIMEOUT = (10.0, 60.0)

__all__ = [
    "ANONYMOUS_PROFILE",
    "DEFAULT_ROOT_URL",
    "USER_AGENT",
    "Session",
    "SessionResponse",
    "get_session",
    "require_api_key",
    "resolve_api_key",
]


def _normalise_root(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"Root URL must be an absolute http(s) URL, got {redact_url(url)!r}")
    return url if url.endswith("/") else url + "/"


class SessionResponse:
    """A complete answer of :meth:`Session.request`: the familiar ``requests`` attributes.

    Attributes:
        status_code: the HTTP status.
        headers: case-insensitive headers.
        url: the final URL (after redirects), credentials masked.
        content: the body.
        method: the request method.
    """

    __slots__ = ("content", "headers", "method", "status_code", "url")

    def __init__(self, doc: Document, method: str, secrets: tuple[str, ...]) -> None:
        self.status_code = doc.status
        self.headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict(doc.headers))
        self.url = redact_text(redact_url(doc.url), *secrets)
        self.content = doc.body
        self.method = method

    @property
    def ok(self) -> bool:
        """True for a status below 400."""
        return self.status_code < 400

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON (:class:`ValueError` if it is not JSON)."""
        return json.loads(self.content)

    def __repr__(self) -> str:
        return f"<SessionResponse [{self.status_code}] {self.url}>"


class Session:
    """A connection to one MLHub API root, on the package's HTTP layer.

    Relative URLs (``"datasets"``, ``"/collections/x"``) are joined to :attr:`root_url`. Every
    request gets ``Accept: application/json``, a descriptive ``User-Agent``, the session's
    proxy and TLS settings, a deadline and a size cap; the API key goes only to the root's
    origin (never to a host a redirect leads to). Failed requests are retried (connection
    errors, 408/429/5xx, honouring ``Retry-After``) a bounded number of times, then mapped to
    exceptions.

    Args:
        api_key: the key, or ``None`` for anonymous access.
        root_url: the API root (default :data:`DEFAULT_ROOT_URL`).
        max_attempts: attempts per request, first one included.
        backoff: base of the exponential backoff in seconds.
        max_retry_time: total seconds a request may spend waiting between attempts.
        timeout: ``(connect, read)`` timeouts in seconds.
        profile: the profile the key came from (shown in messages).
        proxy: a proxy URL for every request, ``False`` for none, ``None`` for the
            environment's ``HTTP(S)_PROXY``/``NO_PROXY``.
        verify: ``True``, a CA bundle path to trust as well, or ``False`` (with a warning).
        network: complete network settings (overrides the arguments above it).
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
        proxy: str | bool | None = None,
        verify: VerifySetting = True,
        network: NetworkSettings | None = None,
    ) -> None:
        self._api_key = api_key or None
        self.root_url = _normalise_root(root_url or DEFAULT_ROOT_URL)
        self.profile = profile
        self.network = network or NetworkSettings(
            proxy=proxy,
            verify=verify,
            connect_timeout=timeout[0],
            read_timeout=timeout[1],
            retry=RetryPolicy(
                max_attempts=max(1, max_attempts), backoff=backoff, max_retry_time=max_retry_time
            ),
        )
        self.network.proxies()  # a bad proxy setting fails here, with its one-line reason
        self.headers: dict[str, str] = {"Accept": "application/json"}
        self.credentials = Credentials(
            origin_of(self.root_url), {}, {"key": self._api_key} if self._api_key else {}
        )

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
        return origin_of(self.url_for(url)) == self.credentials.origin

    def redact(self, text: str) -> str:
        """Mask this session's key (and any credential parameter) in ``text``."""
        return redact_text(text, self._api_key)

    # -- requests ----------------------------------------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        allow_redirects: bool = True,
        raise_errors: bool = True,
    ) -> SessionResponse:
        """Send a request with key scoping, retries, a deadline, a size cap and error mapping.

        ``raise_errors=False`` returns error answers instead of raising.

        Raises:
            AuthenticationError: 401.
            EntityDoesNotExist: 404.
            MLHubHTTPError: another status >= 400 (after retries for 429/5xx).
            ResponseTooLarge: an answer over the documents' size cap.
            NetworkError: the request could not be completed.
        """
        method = method.upper()
        full = _with_params(self.url_for(url), params)
        doc = fetch(
            full,
            settings=self.network,
            credentials=self.credentials,
            headers={**self.headers, **(headers or {})},
            method=method,
            json=json,
            follow_redirects=allow_redirects,
        )
        response = SessionResponse(doc, method, self.credentials.secrets())
        if raise_errors and doc.status >= 400:
            raise self._error_for(doc, method)
        return response

    def get(self, url: str, **kwargs: Any) -> SessionResponse:
        """``request("GET", url, ...)``."""
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> SessionResponse:
        """``request("POST", url, ...)``."""
        return self.request("POST", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> SessionResponse:
        """``request("HEAD", url, ...)``."""
        return self.request("HEAD", url, **kwargs)

    def locate(self, url: str) -> str:
        """Where ``url`` (an API path such as ``catalog/{id}``) sends its download: the
        ``Location`` of its redirect, resolved, or the API URL itself.

        A ``Location`` on another origin never carries this session's credentials (an API that
        echoes its query string, ``?key=...``, into the redirect has them removed); fetch the
        result with :attr:`credentials`, which only apply on the API's origin.

        Raises:
            EntityDoesNotExist, MLHubHTTPError, NetworkError: as :meth:`request`.
        """
        full = self.url_for(url)
        response = self.request("GET", full, allow_redirects=False)
        location = response.headers.get("Location")
        if response.status_code not in (301, 302, 303, 307, 308) or not location:
            return full
        target = urljoin(full, location.strip())
        if urlsplit(target).scheme.lower() not in ("http", "https"):
            raise MLHubResponseError(
                f"{redact_url(full)} redirects to a non-HTTP URL", url=full, status_code=301
            )
        if origin_of(target) != self.credentials.origin:
            target = strip_secrets(target, self.credentials.secrets())
        return target

    def _error_for(self, doc: Document, method: str) -> MLHubHTTPError:
        detail = error_detail(doc.body, doc.content_type)
        detail = self.redact(detail) if detail else None
        url = self.redact(redact_url(doc.url))
        status = doc.status
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
                message=f"Authentication failed for {method} {url}: {hint}",
            )
        if status == 404:
            return EntityDoesNotExist(status, method, url, detail)
        return MLHubHTTPError(status, method, url, detail)

    def get_json(self, url: str, **kwargs: Any) -> Any:
        """GET ``url`` and return its JSON body (clear error if the body is not JSON)."""
        return self.json_of(self.get(url, **kwargs))

    def json_of(self, response: SessionResponse) -> Any:
        """Decode a JSON response, raising :class:`MLHubResponseError` for anything else."""
        try:
            return response.json()
        except ValueError:
            ctype = response.headers.get("Content-Type", "unknown type")
            start = self.redact(response.text[:80].replace("\n", " "))
            raise MLHubResponseError(
                f"Expected JSON from {response.method} {response.url} "
                f"but got {ctype} (HTTP {response.status_code}): {start!r}",
                url=response.url,
                status_code=response.status_code,
            ) from None

    def paginate(self, url: str, **kwargs: Any) -> Iterator[Any]:
        """Yield every page of a paged endpoint, following ``rel="next"`` links.

        ``params`` are sent with the first request only: ``next`` links carry their own
        query. A page whose ``next`` link was seen before ends with an error (a server that
        pages in a circle would otherwise never stop).
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


def _with_params(url: str, params: Mapping[str, Any] | list[tuple[str, Any]] | None) -> str:
    if not params:
        return url
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    if not all(isinstance(p, tuple | list) and len(p) == 2 for p in pairs):
        raise TypeError("params must be a mapping or a list of pairs")
    parts = urlsplit(url)
    query = urlencode([(str(k), str(v)) for k, v in pairs])
    return urlunsplit(parts._replace(query=f"{parts.query}&{query}" if parts.query else query))


def _next_link(page: Any) -> str | None:
    if not isinstance(page, Mapping):
        return None
    for link in page.get("links") or ():
        if isinstance(link, Mapping) and link.get("rel") == "next" and link.get("href"):
            return str(link["href"])
    return None


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
    if prof is not None:
        if prof.proxy is not None:
            session_options.setdefault("proxy", prof.proxy)
        if prof.verify is not None:
            session_options.setdefault("verify", prof.verify)
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
