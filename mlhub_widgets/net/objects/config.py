"""How an object store is configured: storage options, each cloud's environment, the network.

:func:`store_arguments` turns a bucket URL, the caller's ``storage_options`` and the process
environment into the keyword arguments of obstore's ``S3Store``/``GCSStore``/``AzureStore``.
Precedence: ``storage_options`` first, then the cloud's own environment variables (which obstore
also reads), then the AWS profile files. What is read:

* **S3**: keys (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``), the
  region (``AWS_REGION``, ``AWS_DEFAULT_REGION``, the profile's ``region``; default
  ``us-east-1``), the endpoint (``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, the profile's
  ``endpoint_url``), requester-pays (``AWS_REQUEST_PAYER``), web identity and container
  credentials (obstore's own chain), and ``AWS_PROFILE`` / ``~/.aws``: with boto3 installed, its
  whole credential chain (SSO, assume-role, ``credential_process``); without it, the static keys
  of ``~/.aws/credentials``. ``AWS_NO_SIGN_REQUEST=YES`` (GDAL's name) and
  ``AWS_SKIP_SIGNATURE=true`` send unsigned requests.
* **GCS**: ``GOOGLE_APPLICATION_CREDENTIALS`` / ``GOOGLE_SERVICE_ACCOUNT`` (a service-account
  or authorized-user JSON file), ``GOOGLE_BASE_URL``.
* **Azure**: ``AZURE_STORAGE_ACCOUNT_NAME``, ``AZURE_STORAGE_ACCOUNT_KEY``,
  ``AZURE_STORAGE_SAS_TOKEN``, ``AZURE_STORAGE_CONNECTION_STRING`` (account, key, SAS and blob
  endpoint), ``AZURE_STORAGE_USE_EMULATOR`` + ``AZURITE_BLOB_STORAGE_URL``, service principals
  and managed identities (obstore's chain).

An ``http://`` endpoint given by the user (option or environment) is allowed for that store
only. The package's network settings apply as everywhere else: the proxy of the endpoint
(``HTTP(S)_PROXY``/``NO_PROXY`` or ``proxy=``), the CAs (``verify=``, ``SSL_CERT_FILE``,
``REQUESTS_CA_BUNDLE``...), timeouts, the user agent and the retry policy.
"""

from __future__ import annotations

import configparser
import os
import warnings
from collections.abc import Mapping
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from ...exceptions import ConfigurationError, InsecureTLSWarning
from ..settings import NetworkSettings
from ..tls import CA_BUNDLE_ENV_VARS
from .urls import Cloud, ObjectURL

__all__ = [
    "ENV_PREFIXES",
    "StorageOptions",
    "normalise_options",
    "parse_storage_option",
    "store_arguments",
]

StorageOptions = Mapping[str, Any]

#: Environment variables that change how a store is built (a new store when they change).
ENV_PREFIXES = ("AWS_", "AZURE_", "AZURITE_", "GOOGLE_")

_TRUE = frozenset({"1", "true", "yes", "on", "y"})

#: Other spellings of options (fsspec/s3fs, boto3, GDAL) -> obstore's names.
_ALIASES = {
    "anon": "skip_signature",
    "no_sign_request": "skip_signature",
    "unsigned": "skip_signature",
    "endpoint_url": "endpoint",
    "region_name": "region",
    "key": "access_key_id",
    "secret": "secret_access_key",
    "aws_access_key_id": "access_key_id",
    "aws_secret_access_key": "secret_access_key",
    "aws_session_token": "session_token",
    "requester_pays": "request_payer",
    "sas_token": "sas_key",
    "account_key": "account_key",
    "access_key": "account_key",
    "connection_string": "connection_string",
    "token": "bearer_token",
    "project": "project",
}
_PREFIXES = ("aws_", "google_", "azure_storage_", "azure_")


# `object`: it reads a user's storage option, whatever its type
def _truthy(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE


def parse_storage_option(text: str) -> tuple[str, str]:
    """``"KEY=VALUE"`` (the CLI's ``--storage-option``) as a pair.

    Raises:
        ConfigurationError: no ``=`` or an empty key.
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigurationError(f"--storage-option takes KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def normalise_options(options: StorageOptions | None) -> dict[str, Any]:
    """Storage options with obstore's names: lower case, without ``aws_``/``google_``/``azure_``
    prefixes, the usual aliases (``anon``, ``endpoint_url``, ``region_name``, ``key``...)
    mapped, ``None`` values dropped."""
    out: dict[str, Any] = {}
    for raw, value in (options or {}).items():
        if value is None:
            continue
        if not isinstance(raw, str):
            raise ConfigurationError(f"storage option names are strings, got {raw!r}")
        key = raw.strip().lower().replace("-", "_")
        key = _ALIASES.get(key, key)
        for prefix in _PREFIXES:
            if key.startswith(prefix) and key[len(prefix) :]:
                key = _ALIASES.get(key[len(prefix) :], key[len(prefix) :])
                break
        out[key] = value
    if "skip_signature" in out:
        out["skip_signature"] = _truthy(out["skip_signature"])
    return out


def _env(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = env.get(name)
        if value and value.strip():
            return value.strip()
    return None


# -- network settings --------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _read_pem(path: str) -> str:
    p = Path(path).expanduser()
    files = sorted([*p.glob("*.pem"), *p.glob("*.crt")]) if p.is_dir() else [p]
    texts = []
    for f in files:
        try:
            texts.append(f.read_text(encoding="ascii", errors="replace"))
        except OSError as exc:
            raise ConfigurationError(f"cannot read the CA bundle {f}: {exc.strerror}") from None
    text = "\n".join(t for t in texts if "BEGIN CERTIFICATE" in t)
    if not text:
        raise ConfigurationError(f"no certificate in the CA bundle {path}")
    return text


def _root_certificates(network: NetworkSettings, env: Mapping[str, str]) -> str | None:
    """PEM text of every CA to trust on top of the system roots (obstore adds it to them)."""
    paths: list[str] = [env[name] for name in CA_BUNDLE_ENV_VARS if env.get(name)]
    if isinstance(network.verify, str):
        paths.append(network.verify)
    if not paths:
        return None
    pems = [_read_pem(p) for p in paths]
    if env.get("SSL_CERT_FILE") or env.get("SSL_CERT_DIR"):
        # obstore (rustls-native-certs) takes SSL_CERT_FILE *instead of* the system roots;
        # certifi's bundle keeps public endpoints working, as they do for every other request
        try:
            import certifi
        except ImportError:  # pragma: no cover - certifi comes with requests
            pass
        else:
            pems.append(_read_pem(certifi.where()))
    return "\n".join(pems)


def client_options(
    network: NetworkSettings,
    endpoint: str,
    env: Mapping[str, str],
    *,
    streaming: bool,
    allow_http: bool,
) -> dict[str, Any]:
    """obstore ``client_options`` for ``network`` and a store whose requests go to
    ``endpoint`` (its proxy is chosen for that URL)."""
    opts: dict[str, Any] = {
        "user_agent": network.user_agent,
        "connect_timeout": timedelta(seconds=network.connect_timeout),
        # a stream of assets may last hours: silence and slowness are what fail it (the
        # engine checks the low-speed limit); documents and listings get the deadline
        "timeout": timedelta(days=7) if streaming else timedelta(seconds=network.deadline),
        "read_timeout": timedelta(seconds=network.read_timeout),
        "pool_idle_timeout": timedelta(seconds=50),
    }
    if allow_http:
        opts["allow_http"] = True
    proxies = network.proxies()
    proxy = proxies.proxy_for(endpoint)
    if proxy is not None:
        opts["proxy_url"] = proxy
        no_proxy = _env(env, "no_proxy", "NO_PROXY")
        if no_proxy:
            opts["proxy_excludes"] = no_proxy
    elif proxies.enabled or network.proxy is False:
        # this endpoint goes direct (NO_PROXY, proxy=False), but reqwest would still read
        # HTTP(S)_PROXY from the environment: name a proxy it must bypass for every host
        opts["proxy_url"] = "http://127.0.0.1:9"
        opts["proxy_excludes"] = "*"
    if network.verify is False:
        warnings.warn(
            "TLS certificate verification is off (verify=False): any server can impersonate "
            "the object stores this session talks to",
            InsecureTLSWarning,
            stacklevel=4,
        )
        opts["allow_invalid_certificates"] = True
    else:
        roots = _root_certificates(network, env)
        if roots:
            opts["root_certificate"] = roots
    return opts


def retry_config(network: NetworkSettings, *, enabled: bool) -> dict[str, Any]:
    """obstore ``retry_config`` from the package's retry policy (none for the engine, which
    retries with its own scheduling)."""
    policy = network.retry
    if not enabled:
        return {"max_retries": 0}
    return {
        "max_retries": max(0, policy.max_attempts - 1),
        "backoff": {
            "init_backoff": timedelta(seconds=max(policy.backoff, 0.01)),
            "max_backoff": timedelta(seconds=max(policy.backoff_cap, 0.01)),
            "base": 2,
        },
        "retry_timeout": timedelta(seconds=policy.max_retry_time),
    }


# -- AWS -----------------------------------------------------------------------------------------


def _aws_files(env: Mapping[str, str]) -> tuple[Path, Path]:
    home = Path("~/.aws").expanduser()
    config = Path(env.get("AWS_CONFIG_FILE") or home / "config").expanduser()
    creds = Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or home / "credentials").expanduser()
    return config, creds


def _ini(path: Path) -> configparser.ConfigParser | None:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as fh:
            parser.read_file(fh)
    except FileNotFoundError:
        return None
    except (OSError, configparser.Error) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from None
    return parser


def _aws_profile(options: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """Region, endpoint and credentials of the AWS profile (``AWS_PROFILE`` or ``default``).

    Credentials come from boto3 when it is installed (its full chain: SSO, assume-role,
    ``credential_process``...), else from the static keys of the credentials file.
    """
    name = options.get("profile") or _env(env, "AWS_PROFILE", "AWS_DEFAULT_PROFILE")
    config_path, creds_path = _aws_files(env)
    config, creds = _ini(config_path), _ini(creds_path)
    profile = str(name or "default")
    out: dict[str, Any] = {}
    if config is not None:
        section = "default" if profile == "default" else f"profile {profile}"
        if config.has_section(section):
            for key in ("region", "endpoint_url"):
                if config.get(section, key, fallback=None):
                    out[key] = config.get(section, key)
    if _env(env, "AWS_ACCESS_KEY_ID") or "access_key_id" in options:
        return out  # keys given: the profile only adds region and endpoint
    if config is None and creds is None:
        if name:
            raise ConfigurationError(
                f"AWS profile {name!r}: no {config_path} or {creds_path} (set AWS_PROFILE to an "
                "existing profile, or give keys)"
            )
        return out
    try:
        import boto3  # type: ignore[import-untyped]
    except ImportError:
        boto3 = None
    if boto3 is not None:
        from obstore.auth.boto3 import Boto3CredentialProvider

        try:
            session = boto3.Session(profile_name=name or None)
            found = session.get_credentials()
        except Exception as exc:  # botocore's ProfileNotFound, SSO errors...
            raise ConfigurationError(f"AWS profile {profile!r}: {exc}") from None
        if found is not None:
            out["credential_provider"] = Boto3CredentialProvider(session)
        return out
    if creds is not None and creds.has_section(profile):
        keys = creds[profile]
        if keys.get("aws_access_key_id") and keys.get("aws_secret_access_key"):
            out["access_key_id"] = keys["aws_access_key_id"]
            out["secret_access_key"] = keys["aws_secret_access_key"]
            if keys.get("aws_session_token"):
                out["session_token"] = keys["aws_session_token"]
            return out
    if name:
        raise ConfigurationError(
            f"AWS profile {profile!r} has no static keys in {creds_path}; SSO, assume-role and "
            "credential_process profiles need boto3 (pip install boto3)"
        )
    return out


def _aws_has_credentials(kwargs: Mapping[str, Any], env: Mapping[str, str]) -> bool:
    if kwargs.get("credential_provider") or kwargs.get("access_key_id"):
        return True
    names = (
        "AWS_ACCESS_KEY_ID",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    )
    return any(env.get(n) for n in names)


def _s3_arguments(
    loc: ObjectURL, opts: dict[str, Any], env: Mapping[str, str]
) -> tuple[dict[str, Any], str]:
    skip = bool(opts.pop("skip_signature", False)) or any(
        _truthy(env.get(n, "")) for n in ("AWS_NO_SIGN_REQUEST", "AWS_SKIP_SIGNATURE")
    )
    profile = {} if skip else _aws_profile(opts, env)
    opts.pop("profile", None)
    endpoint = (
        opts.pop("endpoint", None)
        or _env(env, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT")
        or profile.pop("endpoint_url", None)
    )
    profile.pop("endpoint_url", None)
    region = (
        opts.pop("region", None)
        or _env(env, "AWS_REGION", "AWS_DEFAULT_REGION")
        or profile.pop("region", None)
        or "us-east-1"
    )
    profile.pop("region", None)
    kwargs: dict[str, Any] = {"region": str(region), **profile, **opts}
    if endpoint:
        kwargs["endpoint"] = str(endpoint).rstrip("/")
    if skip:
        kwargs["skip_signature"] = True
        for key in ("access_key_id", "secret_access_key", "session_token"):
            kwargs.pop(key, None)
    elif not _aws_has_credentials(kwargs, env) and _truthy(
        env.get("AWS_EC2_METADATA_DISABLED", "")
    ):
        raise ConfigurationError(
            f"no AWS credentials for {loc.root} (AWS_ACCESS_KEY_ID, AWS_PROFILE, ~/.aws) and "
            "AWS_EC2_METADATA_DISABLED is set; for a public bucket use --no-sign-request "
            "(AWS_NO_SIGN_REQUEST=YES, or storage_options={'skip_signature': True})"
        )
    url = kwargs.get("endpoint") or f"https://s3.{region}.amazonaws.com"
    return kwargs, str(url)


def _gcs_arguments(opts: dict[str, Any], env: Mapping[str, str]) -> tuple[dict[str, Any], str]:
    if "endpoint" in opts:
        opts["base_url"] = opts.pop("endpoint")
    if opts.get("skip_signature"):
        opts["skip_signature"] = True
    base = opts.get("base_url") or _env(env, "GOOGLE_BASE_URL")
    if base:
        opts["base_url"] = str(base).rstrip("/")
    creds = _env(env, "GOOGLE_APPLICATION_CREDENTIALS")
    given = {"bearer_token", "service_account", "service_account_key", "application_credentials"}
    unsigned = opts.get("skip_signature")
    if creds and not given & opts.keys() and not unsigned and not Path(creds).is_file():
        raise ConfigurationError(
            f"GOOGLE_APPLICATION_CREDENTIALS names {creds!r}, which does not exist"
        )
    return opts, str(opts.get("base_url") or "https://storage.googleapis.com")


def _connection_string(text: str) -> dict[str, str]:
    parts = dict(
        p.split("=", 1) for p in text.strip().strip(";").split(";") if "=" in p and p.strip()
    )
    out: dict[str, str] = {}
    if parts.get("AccountName"):
        out["account_name"] = parts["AccountName"]
    if parts.get("AccountKey"):
        out["account_key"] = parts["AccountKey"]
    if parts.get("SharedAccessSignature"):
        out["sas_key"] = parts["SharedAccessSignature"]
    if parts.get("BlobEndpoint"):
        out["endpoint"] = parts["BlobEndpoint"]
    elif parts.get("UseDevelopmentStorage", "").lower() == "true":
        out["use_emulator"] = "true"
    return out


def _azure_arguments(
    loc: ObjectURL, opts: dict[str, Any], env: Mapping[str, str]
) -> tuple[dict[str, Any], str]:
    conn = opts.pop("connection_string", None) or _env(env, "AZURE_STORAGE_CONNECTION_STRING")
    kwargs: dict[str, Any] = {**(_connection_string(str(conn)) if conn else {}), **opts}
    if loc.account and "account_name" not in kwargs:
        kwargs["account_name"] = loc.account
    if "sas_key" in kwargs:
        kwargs["sas_key"] = str(kwargs["sas_key"]).lstrip("?")
    if kwargs.get("skip_signature"):
        kwargs["skip_signature"] = True
    endpoint = kwargs.get("endpoint") or _env(env, "AZURE_STORAGE_ENDPOINT", "AZURE_ENDPOINT")
    if endpoint:
        kwargs["endpoint"] = str(endpoint).rstrip("/")
        return kwargs, str(kwargs["endpoint"])
    if _truthy(kwargs.get("use_emulator", env.get("AZURE_STORAGE_USE_EMULATOR", ""))):
        base = _env(env, "AZURITE_BLOB_STORAGE_URL") or "http://127.0.0.1:10000"
        return kwargs, base
    account = kwargs.get("account_name") or _env(env, "AZURE_STORAGE_ACCOUNT_NAME")
    if not account:
        raise ConfigurationError(
            f"{loc.root}: no Azure storage account (set AZURE_STORAGE_ACCOUNT_NAME, "
            "storage_options={'account_name': ...}, or write abfs://CONTAINER@ACCOUNT"
            ".dfs.core.windows.net/PATH)"
        )
    return kwargs, f"https://{account}.blob.core.windows.net"


def store_arguments(
    loc: ObjectURL,
    options: StorageOptions | None,
    network: NetworkSettings,
    env: Mapping[str, str] | None = None,
    *,
    streaming: bool = False,
) -> tuple[Cloud, dict[str, Any]]:
    """The keyword arguments of the obstore store for ``loc``'s bucket.

    Args:
        loc: the bucket (its key is ignored).
        options: storage options (obstore's names or the usual aliases).
        network: proxy, TLS, timeouts, retries and user agent.
        env: the environment (default ``os.environ``).
        streaming: for the download engine: no total timeout and no retries inside obstore
            (the engine retries with the package's policy and its own scheduling).

    Raises:
        ConfigurationError: an option or an environment setting that cannot be used.
    """
    env = os.environ if env is None else env
    opts = normalise_options(options)
    if loc.cloud == "s3":
        kwargs, endpoint = _s3_arguments(loc, opts, env)
        http_given = str(kwargs.get("endpoint", "")).startswith("http://")
    elif loc.cloud == "gcs":
        kwargs, endpoint = _gcs_arguments(opts, env)
        http_given = str(kwargs.get("base_url", "")).startswith("http://")
    else:
        kwargs, endpoint = _azure_arguments(loc, opts, env)
        http_given = endpoint.startswith("http://")
    kwargs["client_options"] = {
        **client_options(network, endpoint, env, streaming=streaming, allow_http=http_given),
        **(kwargs.get("client_options") or {}),
    }
    kwargs["retry_config"] = kwargs.get("retry_config") or retry_config(
        network, enabled=not streaming
    )
    return loc.cloud, kwargs
