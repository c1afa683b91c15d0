"""Which certificates HTTPS connections trust.

By default a connection trusts the operating system's CAs **and** certifi's bundle, plus the
bundles named by ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` and ``REQUESTS_CA_BUNDLE`` /
``CURL_CA_BUNDLE``: behind TLS inspection or a private CA, whatever makes ``curl``, ``pip`` and
``requests`` work makes this package work too. ``verify="path/to/ca.pem"`` (a file or a folder
of certificates) adds a CA bundle on top of those; ``verify=False`` turns verification off, with
an :class:`~mlhub_widgets.exceptions.InsecureTLSWarning` every time such a context is made.
"""

from __future__ import annotations

import os
import ssl
import warnings
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from ..exceptions import ConfigurationError, InsecureTLSWarning

__all__ = ["CA_BUNDLE_ENV_VARS", "VerifySetting", "ssl_context"]

#: Environment variables naming extra CA bundles, in the order they are read.
CA_BUNDLE_ENV_VARS = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")

VerifySetting = bool | str | os.PathLike[str]


def ssl_context(
    verify: VerifySetting = True, environ: Mapping[str, str] | None = None
) -> ssl.SSLContext:
    """An :class:`ssl.SSLContext` for client connections under the ``verify`` setting.

    Raises:
        ConfigurationError: ``verify`` or one of :data:`CA_BUNDLE_ENV_VARS` names a file or
            folder that does not exist or holds no usable certificate.
    """
    env = os.environ if environ is None else environ
    if verify is False:
        warnings.warn(
            "TLS certificate verification is off (verify=False): any server can impersonate "
            "the hosts this session talks to",
            InsecureTLSWarning,
            stacklevel=3,
        )
        return _insecure_context()
    if verify is True:
        extra: tuple[tuple[str, str], ...] = ()
    elif isinstance(verify, str | os.PathLike):
        extra = (("verify", os.fspath(verify)),)
    else:
        kind = type(verify).__name__
        raise TypeError(f"verify must be True, False or a CA bundle path, not {kind}")
    bundles = tuple((name, env[name]) for name in CA_BUNDLE_ENV_VARS if env.get(name)) + extra
    return _verifying_context(bundles)


@lru_cache(maxsize=16)
def _verifying_context(bundles: tuple[tuple[str, str], ...]) -> ssl.SSLContext:
    ctx = ssl.create_default_context()  # the system's CAs (default verify paths)
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi comes with requests
        pass
    else:
        ctx.load_verify_locations(cafile=certifi.where())
    for name, value in bundles:
        path = Path(value).expanduser()
        where = f"{name}={value!r}" if name != "verify" else f"verify={value!r}"
        try:
            if path.is_dir():
                ctx.load_verify_locations(capath=str(path))
            else:
                ctx.load_verify_locations(cafile=str(path))
        except FileNotFoundError:
            raise ConfigurationError(f"CA bundle not found: {where}") from None
        except (ssl.SSLError, OSError) as exc:
            raise ConfigurationError(f"cannot load the CA bundle {where}: {exc}") from None
    return ctx


@lru_cache(maxsize=1)
def _insecure_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
