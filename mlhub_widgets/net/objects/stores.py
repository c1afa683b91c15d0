"""obstore stores, one per bucket and configuration, and their errors as one-line exceptions.

:func:`get_store` builds (or reuses) the store of a bucket for given storage options and network
settings; the cache is keyed by both and by the cloud's environment variables, so changing
``AWS_PROFILE`` or a proxy variable gives a new store, as it would give ``requests`` a new
connection. :func:`object_error` maps obstore's exceptions (whose text is a multi-line debug
dump) to the package's exceptions with one line naming the URL, the status and what to do.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from typing import Any, Final

from ...exceptions import (
    AuthenticationError,
    ConfigurationError,
    EntityDoesNotExist,
    MLHubException,
    MLHubHTTPError,
    NetworkError,
    TLSVerificationError,
)
from ..settings import NetworkSettings
from ..tls import CA_BUNDLE_ENV_VARS
from .config import ENV_PREFIXES, StorageOptions, store_arguments
from .urls import ObjectURL

__all__ = ["clear_stores", "get_store", "object_error", "status_of"]

#: Stores kept at once (each holds a connection pool).
MAX_STORES: Final = 32

_lock = threading.Lock()
_stores: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

_PROXY_VARS = tuple(
    v for n in ("http_proxy", "https_proxy", "all_proxy", "no_proxy") for v in (n, n.upper())
)


def _env_key() -> tuple[tuple[str, str], ...]:
    return tuple(
        sorted(
            (k, v)
            for k, v in os.environ.items()
            if k.startswith(ENV_PREFIXES) or k in _PROXY_VARS or k in CA_BUNDLE_ENV_VARS
        )
    )


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return value


def get_store(
    loc: ObjectURL,
    options: StorageOptions | None = None,
    network: NetworkSettings | None = None,
    *,
    streaming: bool = False,
) -> Any:
    """The obstore store of ``loc``'s bucket (cached per bucket, options, settings and the
    cloud's environment).

    Raises:
        ConfigurationError: unusable options or environment (unknown option, missing account,
            no credentials where the metadata service is disabled...).
    """
    network = network or NetworkSettings()
    key = (
        loc.cloud,
        loc.bucket,
        loc.account,
        _freeze(dict(options or {})),
        network,
        streaming,
        _env_key(),
    )
    with _lock:
        store = _stores.get(key)
        if store is not None:
            _stores.move_to_end(key)
            return store
    store = _build(loc, options, network, streaming)
    with _lock:
        _stores[key] = store
        while len(_stores) > MAX_STORES:
            _stores.popitem(last=False)
    return store


def _build(
    loc: ObjectURL, options: StorageOptions | None, network: NetworkSettings, streaming: bool
) -> Any:
    from obstore.exceptions import BaseError
    from obstore.store import AzureStore, GCSStore, S3Store

    cloud, kwargs = store_arguments(loc, options, network, streaming=streaming)
    try:
        if cloud == "s3":
            return S3Store(loc.bucket, **kwargs)
        if cloud == "gcs":
            return GCSStore(loc.bucket, **kwargs)
        return AzureStore(loc.bucket, **kwargs)
    except (BaseError, ValueError, TypeError) as exc:
        bad = _BAD_KEY.search(str(exc))
        if bad is not None:
            raise ConfigurationError(
                f"unknown storage option {bad.group(1)!r} for {loc.root}"
            ) from None
        raise ConfigurationError(f"cannot use {loc.root}: {_first_line(exc)}") from None


def clear_stores() -> None:
    """Forget every cached store (their connections close when they are collected)."""
    with _lock:
        _stores.clear()


# -- errors ----------------------------------------------------------------------------------

_STATUS = re.compile(r"status code: (\d{3})")
_CODE = re.compile(r"<Code>([^<]+)</Code>")
_MESSAGE = re.compile(r"<Message>([^<]+)</Message>")
_BAD_KEY = re.compile(r"[Cc]onfiguration key:? '([^']+)' is not valid")
_UNKNOWN_KEY = re.compile(r"[Uu]nknown configuration key:?\s*\"?([\w.-]+)")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an obstore error reports, if it reports one."""
    m = _STATUS.search(str(exc))
    return int(m.group(1)) if m else None


def _detail(text: str) -> str:
    code = _CODE.search(text)
    message = _MESSAGE.search(text)
    parts = [p.group(1) for p in (code, message) if p]
    return ": ".join(parts)


def object_error(
    exc: BaseException, url: str, method: str = "GET", *, unsigned: bool = False
) -> MLHubException:
    """A one-line package exception for an obstore error on ``url``.

    * missing object or bucket → :class:`EntityDoesNotExist` (``status_code`` 404);
    * 401/403 → :class:`AuthenticationError` (``status_code`` 401 or 403) with what to check
      (``unsigned``: the request was sent without a signature);
    * other statuses → :class:`MLHubHTTPError`;
    * TLS → :class:`TLSVerificationError`; a bad option → :class:`ConfigurationError`;
    * no answer (connection, DNS, timeout, credentials service) → :class:`NetworkError`.
    """
    from obstore import exceptions as oe

    text = str(exc)
    low = text.lower()
    if "169.254.169.254" in text or "metadata.google.internal" in low:
        return NetworkError(
            f"no credentials for {url}: none are configured and the cloud metadata service "
            "did not answer; for a public bucket use --no-sign-request (storage_options="
            "{'skip_signature': True}), otherwise set the cloud's credentials",
            url=url,
            retryable=False,
        )
    status = status_of(exc)
    detail = _detail(text)
    if isinstance(exc, oe.UnknownConfigurationKeyError):
        m = _UNKNOWN_KEY.search(text)
        name = m.group(1) if m else _first_line(exc)
        return ConfigurationError(f"unknown storage option {name!r} for {url}")
    if isinstance(exc, oe.NotFoundError | FileNotFoundError) or status == 404:
        if "NoSuchBucket" in text or "ContainerNotFound" in text:
            bucket = url.split("://", 1)[-1].split("/", 1)[0]
            what = f"bucket {bucket!r} does not exist ({url})"
        else:
            what = f"no object at {url}"
        return EntityDoesNotExist(404, method, url, detail or None, message=what)
    if isinstance(exc, oe.PermissionDeniedError | oe.UnauthenticatedError) or status in (
        401,
        403,
    ):
        code = status or (401 if isinstance(exc, oe.UnauthenticatedError) else 403)
        hint = (
            "the request was not signed (--no-sign-request / skip_signature): the bucket is not "
            "public, give credentials"
            if unsigned
            else "check the credentials and their permissions"
        )
        return AuthenticationError(
            code,
            method,
            url,
            detail or None,
            message=f"access denied to {url} (HTTP {code}{': ' + detail if detail else ''}); "
            + hint,
        )
    if isinstance(exc, oe.PreconditionError) or status == 412:
        return MLHubHTTPError(412, method, url, detail or "the object changed")
    if status is not None:
        if status == 301 or "PermanentRedirect" in text:
            return MLHubHTTPError(
                301,
                method,
                url,
                detail or None,
                message=f"{url} is in another region: set AWS_REGION or "
                "storage_options={'region': ...}",
            )
        return MLHubHTTPError(status, method, url, detail or None)
    if "certificate" in low or "invalidcertificate" in low or "unknownissuer" in low:
        return TLSVerificationError(
            f"TLS error for {url}: certificate verify failed; set SSL_CERT_FILE or "
            "REQUESTS_CA_BUNDLE to your CA bundle, or pass verify='ca.pem'",
            url=url,
        )
    if "builder error" in low or isinstance(exc, oe.InvalidPathError | ValueError):
        return ConfigurationError(f"cannot use {url}: {_first_line(exc)}")
    if "dns error" in low or "failed to lookup" in low or "name or service not known" in low:
        return NetworkError(f"cannot resolve the host of {url}", url=url)
    if "timed out" in low or "timeout" in low:
        return NetworkError(f"no answer for {url} (timed out)", url=url)
    if "connection refused" in low:
        return NetworkError(f"connection refused for {url}", url=url)
    if "error sending request" in low or "connect" in low:
        return NetworkError(f"cannot connect for {url}: {_first_line(exc)}", url=url)
    return NetworkError(f"{method} {url} failed: {_first_line(exc)}", url=url)
