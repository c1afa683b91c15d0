"""The object-store layer (mlhub_widgets.net.objects): URLs, configuration from options and the
environment, the network settings, and one-line errors — against moto's S3 server, a forward
proxy and a TLS front with a private CA."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from mlhub_widgets.exceptions import (
    AuthenticationError,
    ConfigurationError,
    EntityDoesNotExist,
    InsecureTLSWarning,
    NetworkError,
    TLSVerificationError,
)
from mlhub_widgets.net.objects import (
    UnsupportedURLError,
    check_local_path,
    clear_stores,
    is_object_url,
    join_object_url,
    list_url,
    md5_of_etag,
    normalise_options,
    parse_object_url,
    parse_storage_option,
    read_url,
)
from mlhub_widgets.net.objects.config import store_arguments
from mlhub_widgets.net.settings import NetworkSettings
from tests.parts import HUB_NAME, ForwardProxy, MotoS3, TlsCA, TlsFront

NO_RETRY = NetworkSettings().with_(retry=NetworkSettings().retry.__class__(max_attempts=1))


pytestmark = pytest.mark.usefixtures("object_state")


BASES = [
    "s3://b/ds/coll/item/item.json",
    "s3://b/c.json",
    "s3://b/",
    "s3://b",
    "gs://b.with.dots/a/b/c/d.json",
    "az://c/a b/x.json",
    "s3://b/a%20b/c.json",
    "s3://b/a/./b/c.json",
    "s3://b/a/../c.json",
    "s3://b/a/b.json;x",
    "s3://b/x//y/z.json",
    "abfs://c@a.dfs.core.windows.net/x/y.json",
]
HREFS = [
    *("x.json", "./x.json", "../x.json", "../../x.json", "../../../../../x.json", "sub/d/x.json"),
    *("a/../b.json", "a/./b.json", "/abs.json", "..", ".", "../..", "./../x.json", "a//b", ""),
    *("?q=1", "#frag", "a b.tif", "a%20b.tif", "c#d.tif", "a:b", "./", "../", "x/", "a/..", "~x"),
]


def test_object_href_fast_paths_agree_with_urllib() -> None:
    """The catalogue walk's shortcuts (relative hrefs against an object URL, asset URLs and
    their file extensions) give what the urllib-based rules give."""
    from urllib.parse import quote, unquote, urljoin, urlsplit

    from mlhub_widgets.download.asset_urls import _extension, asset_url
    from mlhub_widgets.download.local_catalog import _scheme
    from mlhub_widgets.download.paths import asset_extension
    from mlhub_widgets.net.objects import OBJECT_SCHEMES

    for base in BASES:
        head, _, rest = base.partition("://")
        for href in HREFS:
            quoted = quote(href, safe="/:@!$&'()*+,;=~.")
            joined = urljoin(f"https://{rest.replace('%', '%25')}", quoted)
            expected = f"{head}://{unquote(joined.partition('://')[2])}"
            assert join_object_url(base, href) == expected, (base, href)
    odd = ["s3://", "s3:///k", "S3://b/k", "s3://b\t/x", "s3://[::1]/x", "s3://B/x", "http://h/x"]
    for href in [*BASES, *odd]:
        parts = urlsplit(href)
        known = parts.scheme in ("http", "https") or parts.scheme.lower() in OBJECT_SCHEMES
        wanted = href if known and parts.netloc else None
        assert asset_url(href) == wanted, href
        assert _scheme(href) == (parts.scheme or "https"), href
        for media in (None, "image/tiff"):
            assert _extension(href, media) == asset_extension(href, media), (href, media)


def test_object_urls_parse_join_and_refuse_what_is_not_a_path() -> None:
    loc = parse_object_url("s3://bucket/a/b%20c.json")
    assert (loc.cloud, loc.bucket, loc.key) == ("s3", "bucket", "a/b c.json")
    az = parse_object_url("abfss://ctr@acct.dfs.core.windows.net/x/y")
    assert (az.cloud, az.bucket, az.account, az.key) == ("azure", "ctr", "acct", "x/y")
    assert parse_object_url("gs://b").key == "" and is_object_url("az://c/k")
    assert not is_object_url("https://example.org/x") and not is_object_url("data/x")
    base = "s3://b/ds/coll/item/item.json"
    assert join_object_url(base, "./image.tif") == "s3://b/ds/coll/item/image.tif"
    assert join_object_url(base, "../../catalog.json") == "s3://b/ds/catalog.json"
    assert join_object_url(base, "gs://other/x") == "gs://other/x"
    assert join_object_url("s3://b/p/c.json", "a b/c#d.tif") == "s3://b/p/a b/c#d.tif"
    with pytest.raises(UnsupportedURLError, match="did you mean 's3://bucket/prefix'"):
        check_local_path("s3:/bucket/prefix", "output_dir")
    with pytest.raises(UnsupportedURLError, match=r"unsupported URL scheme ftp://"):
        check_local_path("ftp://host/x")
    with pytest.raises(UnsupportedURLError, match="names no bucket"):
        parse_object_url("s3:///key")
    check_local_path("data/a:b.json")  # a colon in a file name is not a scheme
    check_local_path("/abs/path")


def test_storage_options_take_the_usual_names() -> None:
    assert parse_storage_option(" endpoint = https://data.source.coop ") == (
        "endpoint",
        "https://data.source.coop",
    )
    with pytest.raises(ConfigurationError, match="KEY=VALUE"):
        parse_storage_option("no-equals-sign")
    opts = normalise_options(
        {"AWS_REGION": "eu-west-1", "endpoint_url": "http://x", "anon": "true", "key": "k"}
    )
    assert opts == {
        "region": "eu-west-1",
        "endpoint": "http://x",
        "skip_signature": True,
        "access_key_id": "k",
    }


def test_s3_configuration_from_the_environment() -> None:
    net = NetworkSettings()
    env = {
        "AWS_ENDPOINT_URL": "http://minio.internal:9000",
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_NO_SIGN_REQUEST": "YES",
        "AWS_ACCESS_KEY_ID": "ignored-when-unsigned",
    }
    _, kw = store_arguments(parse_object_url("s3://b/k"), None, net, env)
    assert kw["endpoint"] == "http://minio.internal:9000"
    assert kw["region"] == "eu-central-1" and kw["skip_signature"] is True
    assert kw["client_options"]["allow_http"] is True  # http only because the user gave it
    assert "access_key_id" not in kw
    _, kw = store_arguments(parse_object_url("s3://b/k"), {"region": "us-west-2"}, net, {})
    assert "allow_http" not in kw["client_options"] and kw["region"] == "us-west-2"
    assert kw["retry_config"]["max_retries"] == net.retry.max_attempts - 1
    _, kw = store_arguments(parse_object_url("s3://b/k"), None, net, {}, streaming=True)
    assert kw["retry_config"] == {"max_retries": 0}  # the engine retries itself


def test_no_credentials_and_no_metadata_service_is_one_clear_error() -> None:
    env = {"AWS_EC2_METADATA_DISABLED": "true"}
    with pytest.raises(ConfigurationError, match="--no-sign-request"):
        store_arguments(parse_object_url("s3://b/k"), None, NetworkSettings(), env)


def test_azure_and_gcs_configuration(tmp_path: Path) -> None:
    net = NetworkSettings()
    conn = (
        "DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=a2V5;"
        "BlobEndpoint=http://127.0.0.1:10000/acct;"
    )
    _, kw = store_arguments(
        parse_object_url("az://ctr/x"), None, net, {"AZURE_STORAGE_CONNECTION_STRING": conn}
    )
    assert kw["account_name"] == "acct" and kw["account_key"] == "a2V5"
    assert kw["endpoint"] == "http://127.0.0.1:10000/acct"
    assert kw["client_options"]["allow_http"] is True
    with pytest.raises(ConfigurationError, match="AZURE_STORAGE_ACCOUNT_NAME"):
        store_arguments(parse_object_url("az://ctr/x"), None, net, {})
    missing = str(tmp_path / "nope.json")
    with pytest.raises(ConfigurationError, match="does not exist"):
        store_arguments(
            parse_object_url("gs://b/x"), None, net, {"GOOGLE_APPLICATION_CREDENTIALS": missing}
        )
    _, kw = store_arguments(
        parse_object_url("gs://b/x"), {"anon": True}, net, {"GOOGLE_APPLICATION_CREDENTIALS": ""}
    )
    assert kw["skip_signature"] is True


def test_network_settings_reach_the_store(tmp_path: Path, tls_ca: TlsCA) -> None:
    env = {"HTTPS_PROXY": "http://proxy.corp:3128", "NO_PROXY": "internal.example"}
    net = NetworkSettings(verify=str(tls_ca.ca_pem))
    _, kw = store_arguments(parse_object_url("s3://b/k"), None, net, env)
    # proxies are resolved by the package (the process environment here has none)
    opts = kw["client_options"]
    assert "BEGIN CERTIFICATE" in opts["root_certificate"]
    assert opts["user_agent"].startswith("mlhub_widgets/")
    proxied = NetworkSettings(proxy="http://proxy.corp:3128")
    _, kw = store_arguments(parse_object_url("s3://b/k"), None, proxied, env)
    assert kw["client_options"]["proxy_url"] == "http://proxy.corp:3128"
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        _, kw = store_arguments(
            parse_object_url("s3://b/k"), None, NetworkSettings(verify=False), {}
        )
    assert kw["client_options"]["allow_invalid_certificates"] is True
    assert any(issubclass(w.category, InsecureTLSWarning) for w in seen)


# -- against moto ---------------------------------------------------------------------------


def _moto_opts(moto: MotoS3, **extra: object) -> dict[str, object]:
    return {"endpoint": moto.endpoint, **extra}


def test_read_list_and_errors_against_moto(moto_s3: MotoS3) -> None:
    s3 = moto_s3.client()
    s3.create_bucket(Bucket="eodata")
    s3.put_object(Bucket="eodata", Key="p/a.json", Body=b'{"a": 1}')
    s3.put_object(Bucket="eodata", Key="p/sub/b.bin", Body=b"x" * 100)
    s3.put_object(Bucket="eodata", Key="pq/other", Body=b"no")
    opts = _moto_opts(moto_s3)
    assert read_url("s3://eodata/p/a.json", storage_options=opts) == b'{"a": 1}'
    listed = [(o.key, o.size) for o in list_url("s3://eodata/p", storage_options=opts)]
    assert listed == [("p/a.json", 8), ("p/sub/b.bin", 100)]  # "p" is a folder: not "pq/"
    with pytest.raises(EntityDoesNotExist, match=r"^no object at s3://eodata/p/zz$"):
        read_url("s3://eodata/p/zz", storage_options=opts, network=NO_RETRY)
    with pytest.raises(EntityDoesNotExist, match="bucket 'nobucket' does not exist"):
        read_url("s3://nobucket/x", storage_options=opts, network=NO_RETRY)
    anon = _moto_opts(moto_s3, skip_signature=True)
    with pytest.raises(AuthenticationError, match="not public") as denied:
        read_url("s3://eodata/p/a.json", storage_options=anon, network=NO_RETRY)
    assert denied.value.status_code == 403 and "\n" not in str(denied.value)
    with pytest.raises(ConfigurationError, match="unknown storage option 'bogus'"):
        read_url("s3://eodata/p/a.json", storage_options={**opts, "bogus": 1})


def test_public_bucket_read_anonymously_through_the_environment(
    moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = moto_s3.client()
    s3.create_bucket(Bucket="public")
    s3.put_object(Bucket="public", Key="k.txt", Body=b"open data", ACL="public-read")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)  # no credentials at all, and no metadata service
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_s3.endpoint)
    monkeypatch.setenv("AWS_NO_SIGN_REQUEST", "YES")
    assert read_url("s3://public/k.txt") == b"open data"


def test_aws_profile_from_the_shared_files(
    moto_s3: MotoS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = moto_s3.client()
    s3.create_bucket(Bucket="private")
    s3.put_object(Bucket="private", Key="k", Body=b"mine")
    (tmp_path / "credentials").write_text(
        "[team]\naws_access_key_id = AKIDTEAM\naws_secret_access_key = secret\n"
    )
    (tmp_path / "config").write_text(
        f"[profile team]\nregion = eu-west-1\nendpoint_url = {moto_s3.endpoint}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_PROFILE", "team")
    assert read_url("s3://private/k") == b"mine"  # endpoint and keys from the profile
    monkeypatch.setenv("AWS_PROFILE", "nobody")
    clear_stores()
    with pytest.raises(ConfigurationError, match="nobody"):
        read_url("s3://private/k")


def test_object_reads_go_through_the_proxy(
    moto_s3: MotoS3, forward_proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = moto_s3.client()
    s3.create_bucket(Bucket="behindproxy")
    s3.put_object(Bucket="behindproxy", Key="k", Body=b"via the proxy")
    port = moto_s3.endpoint.rsplit(":", 1)[1]
    opts = {"endpoint": f"http://{HUB_NAME}:{port}"}  # resolves only at the proxy
    forward_proxy.setenv(monkeypatch)
    assert read_url("s3://behindproxy/k", storage_options=opts) == b"via the proxy"
    assert HUB_NAME in forward_proxy.seen()
    clear_stores()
    with pytest.raises(NetworkError):
        read_url("s3://behindproxy/k", storage_options=opts, network=NO_RETRY.with_(proxy=False))


def test_private_ca_is_trusted_with_verify_and_refused_without(
    moto_s3: MotoS3, tls_front: object, tls_ca: TlsCA
) -> None:
    s3 = moto_s3.client()
    s3.create_bucket(Bucket="tls")
    s3.put_object(Bucket="tls", Key="k", Body=b"secure")
    port = int(moto_s3.endpoint.rsplit(":", 1)[1])
    front: TlsFront = tls_front(port)  # type: ignore[operator]
    opts = {"endpoint": front.url("localhost")}
    trusted = NO_RETRY.with_(verify=str(tls_ca.ca_pem))
    assert read_url("s3://tls/k", storage_options=opts, network=trusted) == b"secure"
    with pytest.raises(TLSVerificationError, match="certificate verify failed") as exc:
        read_url("s3://tls/k", storage_options=opts, network=NO_RETRY)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(
    ("etag", "md5"),
    [
        ('"9E107D9D372BB6826BD81D3542A419D6"', "9e107d9d372bb6826bd81d3542a419d6"),
        (" 9e107d9d372bb6826bd81d3542a419d6 ", "9e107d9d372bb6826bd81d3542a419d6"),
        ('"9e107d9d372bb6826bd81d3542a419d6-3"', None),  # multipart: not the bytes' MD5
        ('"9e107d9d372bb6826bd81d3542a419d"', None),
        ('"9e107d9d372bb6826bd81d3542a419dg"', None),
        ("9e107d9d372bb6826bd81d3542a419d\u0661", None),  # an Arabic-Indic digit
        ("", None),
        (None, None),
    ],
)
def test_an_etag_is_an_md5_only_when_it_is_32_hex_digits(etag: str | None, md5: str | None) -> None:
    assert md5_of_etag(etag) == md5
