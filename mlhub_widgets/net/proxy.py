"""Which proxy a request goes through: ``HTTP(S)_PROXY``, ``ALL_PROXY`` and ``NO_PROXY``.

The rules are curl's and requests', so a network that works with ``curl`` and ``pip`` works here:

* ``http://`` URLs use ``http_proxy``, ``https://`` URLs use ``https_proxy``; either falls back to
  ``all_proxy``. Lower-case names win over upper-case ones; ``HTTP_PROXY`` (upper case) is
  ignored when ``REQUEST_METHOD`` is set (a CGI environment, where it comes from a client header).
* ``no_proxy`` is a comma- (or space-) separated list. ``*`` bypasses the proxy for every host.
  ``example.org`` and ``.example.org`` match the host itself and every subdomain; an IP address
  matches itself; ``10.0.0.0/8`` or ``fd00::/8`` match every address in the network (CIDR);
  ``host:port`` matches that port only. Matching is case-insensitive.
* An explicit proxy (``proxy=`` on a session or in a profile) replaces the environment's for
  every scheme; ``no_proxy`` still applies. ``proxy=False`` turns proxies off.

Only ``http://`` and ``https://`` proxies are supported; any other scheme (``socks5://``) is a
clear error rather than a silent direct connection.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from ..exceptions import ConfigurationError

__all__ = ["ProxyConfig", "ProxyError", "proxy_config_from_env"]

_PROXY_SCHEMES = ("http", "https")


class ProxyError(ConfigurationError):
    """A proxy setting that cannot be used (bad URL or unsupported scheme)."""


def _env(environ: Mapping[str, str], name: str) -> str:
    """Lower-case name first (curl/requests precedence), then upper case."""
    value = environ.get(name)
    if value is None or not value.strip():
        if name == "http_proxy" and "REQUEST_METHOD" in environ:
            return ""  # CGI: HTTP_PROXY comes from the client's Proxy: header
        value = environ.get(name.upper(), "")
    return value.strip()


def _check_proxy_url(url: str, where: str) -> str:
    if "://" not in url:
        url = "http://" + url  # curl and requests accept a bare host:port
    parts = urlsplit(url)
    if parts.scheme.lower() not in _PROXY_SCHEMES or not parts.hostname:
        raise ProxyError(
            f"{where}: unsupported proxy {_without_password(url)!r} "
            "(only http:// and https:// proxies are supported)"
        )
    try:
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError:
        raise ProxyError(f"{where}: bad port in proxy {_without_password(url)!r}") from None
    return url


def _without_password(url: str) -> str:
    parts = urlsplit(url if "://" in url else "http://" + url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


@dataclass(frozen=True)
class _Rule:
    host: str | None = None  # a domain suffix, matched on label boundaries
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    port: int | None = None


def _parse_no_proxy(value: str) -> tuple[bool, tuple[_Rule, ...]]:
    """``(bypass_all, rules)`` from a ``no_proxy`` value."""
    rules: list[_Rule] = []
    for raw in value.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True, ()
        port: int | None = None
        if entry.startswith("["):  # [::1] or [::1]:8080
            end = entry.find("]")
            host, rest = entry[1:end], entry[end + 1 :]
            if rest.startswith(":") and rest[1:].isdigit():
                port = int(rest[1:])
            entry = host
        elif entry.count(":") == 1:  # host:port (IPv6 literals have several colons)
            host, _, maybe_port = entry.partition(":")
            if maybe_port.isdigit():
                entry, port = host, int(maybe_port)
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            rules.append(_Rule(host=entry.lstrip(".").lstrip("*").lstrip("."), port=port))
        else:
            rules.append(_Rule(network=network, port=port))
    return False, tuple(rules)


@lru_cache(maxsize=256)
def _as_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


@dataclass(frozen=True)
class ProxyConfig:
    """Resolved proxy settings: which proxy, if any, each URL goes through.

    Build it with :func:`proxy_config_from_env` (optionally with an explicit proxy); then
    :meth:`proxy_for` answers per URL.
    """

    http: str | None = None
    https: str | None = None
    bypass_all: bool = False
    rules: tuple[_Rule, ...] = ()

    def proxy_for(self, url: str) -> str | None:
        """The proxy URL for ``url``, or ``None`` to connect directly."""
        if self.http is None and self.https is None:
            return None
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        proxy = self.https if scheme == "https" else self.http if scheme == "http" else None
        if proxy is None or self.bypass_all:
            return None
        host = (parts.hostname or "").lower()
        if not host or self._bypassed(host, parts.port or (443 if scheme == "https" else 80)):
            return None
        return proxy

    def _bypassed(self, host: str, port: int) -> bool:
        ip = _as_ip(host)
        for rule in self.rules:
            if rule.port is not None and rule.port != port:
                continue
            if rule.network is not None:
                if ip is not None and ip.version == rule.network.version and ip in rule.network:
                    return True
            elif rule.host and (host == rule.host or host.endswith("." + rule.host)):
                return True
        return False

    @property
    def enabled(self) -> bool:
        """True when some URL may go through a proxy."""
        return not self.bypass_all and (self.http is not None or self.https is not None)

    def describe(self) -> str:
        """A one-line summary without passwords (for ``mlhub`` diagnostics and reprs)."""
        if not self.enabled:
            return "no proxy"
        shown = {_without_password(p) for p in (self.http, self.https) if p}
        return f"proxy {', '.join(sorted(shown))}" + (
            f" (bypassed for {len(self.rules)} no_proxy entries)" if self.rules else ""
        )


def proxy_config_from_env(
    proxy: str | bool | None = None, environ: Mapping[str, str] | None = None
) -> ProxyConfig:
    """Resolve proxy settings from ``proxy`` and the environment.

    Args:
        proxy: ``None`` to take the proxies from the environment; a URL to send every request
            through it (``no_proxy`` still applies); ``False`` or ``""`` for no proxy at all.
        environ: the environment to read (default ``os.environ``).

    Raises:
        ProxyError: a proxy URL with an unsupported scheme (e.g. ``socks5://``) or a bad port.
    """
    env = os.environ if environ is None else environ
    if proxy is False or proxy == "":
        return ProxyConfig()
    bypass_all, rules = _parse_no_proxy(_env(env, "no_proxy"))
    if isinstance(proxy, str):
        url = _check_proxy_url(proxy, "proxy setting")
        return ProxyConfig(url, url, bypass_all, rules)
    if proxy is not None and proxy is not True:
        raise TypeError(f"proxy must be a URL, False or None, not {type(proxy).__name__}")
    every = _env(env, "all_proxy")
    http = _env(env, "http_proxy") or every
    https = _env(env, "https_proxy") or every
    return ProxyConfig(
        _check_proxy_url(http, "HTTP_PROXY") if http else None,
        _check_proxy_url(https, "HTTPS_PROXY") if https else None,
        bypass_all,
        rules,
    )
