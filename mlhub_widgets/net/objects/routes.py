"""Object GETs as plain HTTP(S) requests: the URL a store would GET, unsigned or presigned.

The download engine fetches objects through its HTTP client (aiohttp, :mod:`..http`) whenever
a GET is all the store would do: measured on the bundled hub's S3 origin, a GET through obstore
costs a tokio→asyncio hand-off per request (80–180 µs of CPU on its threads, ~20 futex calls)
and ~1 CPU-s per GB more than a plain HTTP client for large bodies (a fresh zero-filled
``bytes`` per chunk). :func:`get_route` says, per bucket, how an object of that store is
fetched:

* ``plain``: the store sends unsigned requests (public buckets: ``skip_signature``,
  ``--no-sign-request``, ``AWS_NO_SIGN_REQUEST=YES``): the object's URL, built as obstore
  builds it (:func:`plain_url`): path style ``{endpoint}/{bucket}/{key}`` (S3 without an
  endpoint: ``https://s3.{region}.amazonaws.com/{bucket}/{key}``, so bucket names with dots
  keep a valid TLS name), ``{base_url}/{bucket}/{key}`` for GCS, the blob URL for Azure;
* ``signed``: the store has credentials that sign a URL without a service call: S3 (keys,
  sessions, profiles: obstore's chain) and Azure with an account key. Each attempt asks
  obstore for a fresh presigned GET URL (``obstore.sign``: ~12 µs with static keys, no request)
  and sends it; the signature (``X-Amz-Signature``, ``sig=``) is masked wherever a URL is shown
  (:mod:`..redact`), and messages name the object URL, never the signed one;
* ``store``: everything else stays on obstore: GCS with credentials (signing needs a
  service-account key or an IAM ``signBlob`` call), Azure with a SAS token, a bearer token or
  a service principal, and any store whose GET needs more than the URL: requester-pays
  (``x-amz-request-payer``), S3 Express, customer-provided encryption keys, and stores given
  their own obstore ``client_options`` in the storage options (headers, proxy). A signed store
  whose signing fails (no usable credentials) falls back to obstore too, whose errors name
  the problem.

Listing, uploads and multipart always use obstore.

:func:`http_object_error` maps an error answer of the plain route (status and body) to the
same one-line exceptions :func:`~.stores.object_error` gives for obstore's errors.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import quote

from ...exceptions import MLHubException
from .stores import object_error
from .urls import Cloud

__all__ = ["GetRoute", "get_route", "http_object_error", "plain_url"]

#: Store settings whose GET needs more than its URL (a header, another endpoint): obstore.
_NEEDS_STORE: Final = ("request_payer", "s3_express", "sse_customer", "customer_key")
#: Characters of a key kept as they are in a URL path (the rest percent-encoded, as SigV4 and
#: obstore encode them).
_SAFE: Final = "/-_.~"

Kind = Literal["plain", "signed", "store"]


@dataclass(frozen=True, slots=True)
class GetRoute:
    """How objects of one store are fetched (see the module docstring).

    Attributes:
        kind: ``"plain"``, ``"signed"`` or ``"store"``.
        base: for ``plain``, the URL the quoted key is appended to (ends with ``/``).
        inline: for ``signed``, the credentials are static keys: signing is pure computation
            and runs in the event loop (else ``sign_async``: a provider may fetch a token).
        unsigned: requests carry no signature (for the hint of an access-denied error).
    """

    kind: Kind
    base: str = ""
    inline: bool = False
    unsigned: bool = False


STORE: Final = GetRoute("store")


def _true(value: object) -> bool:
    return str(value).strip().lower() == "true"


def plain_url(route: GetRoute, key: str) -> str:
    """The URL of ``key`` for a ``plain`` route."""
    return route.base + quote(key, safe=_SAFE)


def get_route(
    cloud: Cloud, config: Mapping[str, str], *, credential_provider: object = None,
    env: Mapping[str, str] | None = None,
) -> GetRoute:  # fmt: skip
    """How to GET the objects of a store with this obstore ``config`` (its ``.config``)."""
    env = os.environ if env is None else env
    if any(name in key for key in config for name in _NEEDS_STORE):
        return STORE
    unsigned = _true(config.get("skip_signature", ""))
    if cloud == "s3":
        bucket, region = config.get("bucket", ""), config.get("region") or "us-east-1"
        endpoint = str(config.get("endpoint") or "").rstrip("/")
        if not unsigned:
            static = bool(config.get("access_key_id")) or (
                credential_provider is None and bool(env.get("AWS_ACCESS_KEY_ID"))
            )
            return GetRoute("signed", inline=static)
        if _true(config.get("virtual_hosted_style_request", "")):
            # obstore's rule: the endpoint then names the bucket already
            base = endpoint or f"https://{bucket}.s3.{region}.amazonaws.com"
            return GetRoute("plain", base + "/", unsigned=True)
        base = endpoint or f"https://s3.{region}.amazonaws.com"
        return GetRoute("plain", f"{base}/{bucket}/", unsigned=True)
    if cloud == "gcs":
        if not unsigned:
            return STORE
        base = str(config.get("base_url") or "https://storage.googleapis.com").rstrip("/")
        return GetRoute("plain", f"{base}/{config.get('bucket', '')}/", unsigned=True)
    container = config.get("container_name", "")
    if unsigned:
        account = config.get("account_name", "")
        endpoint = str(config.get("endpoint") or "").rstrip("/")
        if not endpoint and _true(config.get("use_emulator", "")):
            emulator = env.get("AZURITE_BLOB_STORAGE_URL") or "http://127.0.0.1:10000"
            endpoint = f"{emulator.rstrip('/')}/{account}"
        if not endpoint:
            if not account:
                return STORE  # obstore names what is missing
            endpoint = f"https://{account}.blob.core.windows.net"
        return GetRoute("plain", f"{endpoint}/{container}/", unsigned=True)
    if config.get("account_key") and not config.get("sas_key"):
        return GetRoute("signed", inline=True)
    return STORE


def http_object_error(
    status: int, body: bytes, url: str, method: str = "GET", *, unsigned: bool = False
) -> MLHubException:
    """The one-line exception for an error answer (``status``, its body) to a GET of the
    object ``url`` made over HTTP: the same as :func:`~.stores.object_error` gives when
    obstore reports that answer (S3/Azure XML ``<Code>``/``<Message>`` are kept)."""
    text = body[: 16 << 10].decode("utf-8", "replace")
    return object_error(
        RuntimeError(f"status code: {status}\n{text}"), url, method, unsigned=unsigned
    )
