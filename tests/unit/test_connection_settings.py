"""How a process's TLS settings become a connection: who it logs in as, and that a TLS setting
never silently falls back to plain text."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import pytest

from broker.connection import (
    BrokerConfigError,
    broker_user,
    connection_url,
    tls_context,
    uses_external_auth,
)
from broker.publisher import Publisher
from broker.settings import DEFAULT_AGENCIES, BrokerSettings, SettingsInvalid
from tests.tls import TestAuthority


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tls")
    ca = TestAuthority()
    police = ca.client("boro-police")
    paths = {
        "ca": folder / "ca.pem",
        "cert": folder / "police.pem",
        "key": folder / "police.key",
    }
    paths["ca"].write_bytes(ca.cert_pem)
    paths["cert"].write_bytes(police.cert_pem)
    paths["key"].write_bytes(police.key_pem)
    return paths


def test_without_tls_the_user_is_the_urls_or_guest() -> None:
    assert broker_user(BrokerSettings(amqp_url="amqp://boro-hub:pw@host/")) == "boro-hub"
    assert broker_user(BrokerSettings(amqp_url="amqp://host/")) == "guest"
    assert tls_context(BrokerSettings()) is None


def test_a_client_certificate_without_a_password_logs_in_as_its_common_name(
    files: dict[str, Path],
) -> None:
    settings = BrokerSettings(
        amqp_url="amqps://broker.example:5671/",
        tls_ca=files["ca"],
        tls_cert=files["cert"],
        tls_key=files["key"],
    )
    assert uses_external_auth(settings)
    assert broker_user(settings) == "boro-police"
    url = connection_url(settings)
    assert url.query["auth"] == "external"
    assert url.user == "boro-police"
    context = tls_context(settings)
    assert context is not None
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname


def test_a_password_in_the_url_means_password_login_over_tls(files: dict[str, Path]) -> None:
    settings = BrokerSettings(
        amqp_url="amqps://boro-police:pw@broker.example:5671/",
        tls_ca=files["ca"],
        tls_cert=files["cert"],
        tls_key=files["key"],
    )
    assert not uses_external_auth(settings)
    assert "auth" not in connection_url(settings).query


def test_tls_settings_with_a_plain_amqp_url_are_refused(files: dict[str, Path]) -> None:
    settings = BrokerSettings(amqp_url="amqp://broker.example/", tls_ca=files["ca"])
    with pytest.raises(BrokerConfigError, match="not amqps://"):
        connection_url(settings)


def test_a_missing_certificate_file_is_a_clear_error(tmp_path: Path) -> None:
    settings = BrokerSettings(amqp_url="amqps://broker.example/", tls_ca=tmp_path / "nowhere.pem")
    with pytest.raises(BrokerConfigError, match="TLS files could not be loaded"):
        tls_context(settings)


class _Connection:
    def __init__(self, url: str) -> None:
        from yarl import URL

        self.url = URL(url)


def test_the_publisher_stamps_the_connections_user_on_every_message() -> None:
    assert Publisher(_Connection("amqp://boro-hub:pw@h/")).user_id == "boro-hub"  # type: ignore[arg-type]
    assert Publisher(_Connection("amqp://h/")).user_id == "guest"  # type: ignore[arg-type]
    external = "amqps://boro-police@h/?auth=external"
    assert Publisher(_Connection(external)).user_id == "boro-police"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("MASH_AMQP_URL", "amqp://boro-hub:hunter2@host:70000/", "MASH_AMQP_URL: not a valid URL"),
        ("MASH_AMQP_URL", "http://host/", "MASH_AMQP_URL: expected an amqp:// or amqps:// URL"),
        ("MASH_AGENCIES", '"police"', "MASH_AGENCIES: expected a JSON list of agency names"),
        ("MASH_AGENCIES", '["police","police"]', "MASH_AGENCIES: an agency is named twice"),
        (
            "MASH_AGENCIES",
            json.dumps([f"a{i}" for i in range(11)]),
            "MASH_AGENCIES: Tuple should have at most 10 items",
        ),
        ("MASH_PREFIX", "x" * 65, "MASH_PREFIX: String should have at most 64 characters"),
        ("MASH_BROKER_USER_TEMPLATE", "{prefix}", "must contain {role}"),
        ("MASH_SIGNING_KEY", "../../etc/passwd", "MASH_SIGNING_KEY: String should match"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable_never_its_value(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsInvalid) as refused:
        BrokerSettings()
    message = str(refused.value)
    assert expected in message and "\n" not in message
    assert "hunter2" not in message


def test_an_empty_variable_means_not_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASH_AGENCIES", "")
    monkeypatch.setenv("MASH_DELIVERY_LIMIT", "")
    settings = BrokerSettings()
    assert settings.agencies == DEFAULT_AGENCIES
    assert settings.delivery_limit == 5
