"""Which proxy each URL goes through: the environment rules curl and requests follow."""

from __future__ import annotations

import pytest

from mlhub_widgets.net.proxy import ProxyError, proxy_config_from_env


def cfg(**env: str):  # type: ignore[no-untyped-def]
    return proxy_config_from_env(environ=env)


def test_scheme_specific_proxies_and_all_proxy_fallback() -> None:
    c = cfg(HTTPS_PROXY="http://tls-proxy:3128", ALL_PROXY="http://any:8080")
    assert c.proxy_for("https://example.org/a") == "http://tls-proxy:3128"
    assert c.proxy_for("http://example.org/a") == "http://any:8080"
    assert cfg().proxy_for("https://example.org/") is None


def test_lower_case_names_win_and_bare_host_port_is_accepted() -> None:
    c = cfg(https_proxy="proxy.lan:3128", HTTPS_PROXY="http://other:1")
    assert c.proxy_for("https://example.org/") == "http://proxy.lan:3128"


def test_cgi_environment_ignores_upper_case_http_proxy() -> None:
    c = cfg(HTTP_PROXY="http://injected:1", REQUEST_METHOD="GET")
    assert c.proxy_for("http://example.org/") is None


@pytest.mark.parametrize(
    ("no_proxy", "url", "bypassed"),
    [
        ("example.org", "https://example.org/x", True),
        ("example.org", "https://data.example.org/x", True),
        ("example.org", "https://badexample.org/x", False),
        (".example.org", "https://example.org/x", True),
        ("*.example.org", "https://a.b.example.org/x", True),
        ("EXAMPLE.org", "https://Data.Example.ORG/x", True),
        ("10.0.0.0/8", "http://10.20.30.40:8000/x", True),
        ("10.0.0.0/8", "http://11.0.0.1/x", False),
        ("10.0.0.0/8", "http://10.example.org/x", False),
        ("192.168.1.5", "http://192.168.1.5/x", True),
        ("fd00::/8", "http://[fd12::1]:9000/x", True),
        ("[::1]", "http://[::1]:9000/x", True),
        ("localhost:8080", "http://localhost:8080/x", True),
        ("localhost:8080", "http://localhost:9090/x", False),
        ("a.org, b.org c.org", "https://c.org/", True),
        ("*", "https://anything.test/", True),
        ("", "https://example.org/", False),
    ],
)
def test_no_proxy_rules(no_proxy: str, url: str, bypassed: bool) -> None:
    c = cfg(HTTP_PROXY="http://p:1", HTTPS_PROXY="http://p:1", NO_PROXY=no_proxy)
    assert (c.proxy_for(url) is None) is bypassed


def test_explicit_proxy_replaces_the_environment_but_keeps_no_proxy() -> None:
    env = {"HTTPS_PROXY": "http://env:1", "NO_PROXY": "internal.lan"}
    c = proxy_config_from_env("http://mine:3128", env)
    assert c.proxy_for("https://example.org/") == "http://mine:3128"
    assert c.proxy_for("http://example.org/") == "http://mine:3128"
    assert c.proxy_for("https://data.internal.lan/") is None
    assert proxy_config_from_env(False, env).proxy_for("https://example.org/") is None


def test_unsupported_proxy_is_a_clear_error_not_a_direct_connection() -> None:
    with pytest.raises(ProxyError, match="only http:// and https:// proxies"):
        cfg(ALL_PROXY="socks5://127.0.0.1:1080")
    with pytest.raises(ProxyError, match="bad port"):
        proxy_config_from_env("http://proxy:notaport")


def test_password_never_shown() -> None:
    c = proxy_config_from_env("http://user:hunter22@proxy:3128", {})
    assert "hunter22" not in c.describe()
    with pytest.raises(ProxyError) as info:
        proxy_config_from_env("socks5://user:hunter22@proxy:1080", {})
    assert "hunter22" not in str(info.value)
