"""Where `mash status` reads queue rates from, and whether it may send the broker password
there: the management API takes it in every request (HTTP Basic), so never in clear to
another machine unless the operator says so. The broker's own verdict over HTTPS is in
tests/integration/test_status.py."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import pytest

from broker.settings import BrokerSettings, SettingsInvalid
from broker.stats import ManagementApi, ManagementRefused, management_api
from tests.tls import TestAuthority


def api(**settings: object) -> ManagementApi:
    found = management_api(BrokerSettings(**settings))
    assert found is not None
    return found


def test_an_amqps_broker_is_read_over_https_with_the_brokers_ca(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(TestAuthority().cert_pem)
    found = api(amqp_url="amqps://ops:s3cret@broker.example:5671/mash", tls_ca=ca)
    assert (found.url, found.user, found.password, found.vhost) == (
        "https://broker.example:15671",
        "ops",
        "s3cret",
        "mash",
    )
    assert found.ssl_context is not None
    assert found.ssl_context.verify_mode is ssl.CERT_REQUIRED
    assert found.ssl_context.check_hostname
    assert [c["subject"] for c in found.ssl_context.get_ca_certs()] == [
        ((("commonName", "MASH test CA"),),)
    ]


def test_a_client_certificate_is_presented_to_an_https_api(tmp_path: Path) -> None:
    authority = TestAuthority()
    issued = authority.client("mash-operator")
    (tmp_path / "ca.pem").write_bytes(authority.cert_pem)
    (tmp_path / "op.pem").write_bytes(issued.cert_pem)
    (tmp_path / "op.key").write_bytes(issued.key_pem)
    found = api(
        amqp_url="amqps://mash-operator:pw@broker.example/",
        tls_ca=tmp_path / "ca.pem",
        tls_cert=tmp_path / "op.pem",
        tls_key=tmp_path / "op.key",
    )
    assert found.url == "https://broker.example:15671"
    assert found.ssl_context is not None


@pytest.mark.parametrize(
    "url",
    [
        "amqp://ops:s3cret@broker.example:5672/",
        "amqp://ops:s3cret@192.0.2.10/",
    ],
)
def test_the_password_is_never_sent_in_clear_to_another_machine(url: str) -> None:
    with pytest.raises(ManagementRefused, match="not sending the broker password in clear"):
        management_api(BrokerSettings(amqp_url=url))


def test_an_explicit_plain_http_address_elsewhere_is_refused_too() -> None:
    settings = BrokerSettings(
        amqp_url="amqp://ops:s3cret@127.0.0.1/",
        management_url="http://monitor.example:15672/",
    )
    with pytest.raises(ManagementRefused, match="MASH_MANAGEMENT_PLAIN_HTTP=true"):
        management_api(settings)


def test_plain_http_elsewhere_only_when_the_operator_says_so() -> None:
    found = api(amqp_url="amqp://ops:s3cret@broker.example/", management_plain_http=True)
    assert (found.url, found.user, found.password) == (
        "http://broker.example:15672",
        "ops",
        "s3cret",
    )
    assert found.ssl_context is None


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.0.1.1"])
def test_plain_http_on_the_same_machine_is_allowed(host: str) -> None:
    found = api(amqp_url=f"amqp://guest:guest@{host}:5672/")
    assert found.url == f"http://{host}:15672"


def test_a_url_without_credentials_logs_in_as_the_amqp_client_does() -> None:
    found = api(amqp_url="amqp://127.0.0.1/")
    assert (found.user, found.password) == ("guest", "guest")


def test_a_certificate_login_has_no_password_to_give_the_api(tmp_path: Path) -> None:
    authority = TestAuthority()
    issued = authority.client("mash-operator")
    (tmp_path / "op.pem").write_bytes(issued.cert_pem)
    (tmp_path / "op.key").write_bytes(issued.key_pem)
    certified = {
        "amqp_url": "amqps://broker.example/",
        "tls_cert": tmp_path / "op.pem",
        "tls_key": tmp_path / "op.key",
    }
    # Never guest:guest on its behalf.
    with pytest.raises(ManagementRefused, match="certificate login has no password"):
        management_api(BrokerSettings(**certified))
    given = api(**certified, management_url="https://mon:pw@broker.example:15671/")
    assert (given.user, given.password) == ("mon", "pw")


def test_an_explicit_address_and_its_credentials_are_used_as_given() -> None:
    given = api(management_url="https://mon:pw@mq.example:443/rmq/")
    assert (given.url, given.user, given.password, given.vhost) == (
        "https://mq.example:443/rmq",
        "mon",
        "pw",
        "/",
    )
    assert api(management_url="https://mq.example/").url == "https://mq.example:15671"


def test_management_can_be_turned_off_and_a_malformed_address_is_refused() -> None:
    assert management_api(BrokerSettings(management_url="off")) is None
    # The settings themselves refuse another scheme, before any request could be made.
    with pytest.raises(SettingsInvalid, match="http:// or https://"):
        management_api(BrokerSettings(management_url="ftp://mq.example/"))


def test_the_password_never_shows_in_the_apis_repr() -> None:
    found = api(amqp_url="amqp://ops:s3cret@127.0.0.1/")
    assert "s3cret" not in repr(found)
    assert base64.b64encode(b"ops:s3cret").decode() not in repr(found)
