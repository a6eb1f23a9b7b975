"""The definitions document and the credentials an operator is handed. The broker's own
verdict (import, log in with the password) is in tests/integration/test_identities.py."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from broker.provision import (
    credentials_document,
    definitions,
    new_credentials,
    password_hash,
    vhost_of,
)
from broker.settings import BrokerSettings
from broker.topology import Topology
from mash.cli import app

SETTINGS = BrokerSettings(prefix="boro", amqp_url="amqp://admin:secret@broker.example:5672/")
TOPOLOGY = Topology(SETTINGS)


def test_password_hash_is_rabbitmqs_salted_sha256() -> None:
    salt = bytes.fromhex("908d c60a".replace(" ", ""))
    encoded = password_hash("test12", salt)
    raw = base64.b64decode(encoded)
    assert raw[:4] == salt
    assert raw[4:] == hashlib.sha256(salt + b"test12").digest()
    assert password_hash("test12") != password_hash("test12")  # a fresh salt each time


def test_every_user_gets_its_own_strong_password_shown_nowhere_but_the_credentials() -> None:
    creds = new_credentials(TOPOLOGY)
    passwords = [c.password for c in creds]
    assert all(p is not None and len(p) >= 40 for p in passwords)
    assert len(set(passwords)) == len(passwords)
    assert all(c.password not in repr(c) for c in creds if c.password)
    document = json.dumps(definitions(TOPOLOGY, creds))
    assert not any(p in document for p in passwords if p)


def test_definitions_hold_users_permissions_and_the_whole_topology() -> None:
    creds = new_credentials(TOPOLOGY)
    document = definitions(TOPOLOGY, creds)
    assert [u["name"] for u in document["users"]] == [c.user for c in creds]
    assert {u["hashing_algorithm"] for u in document["users"]} == {"rabbit_password_hashing_sha256"}
    assert {p["user"] for p in document["permissions"]} == {c.user for c in creds}
    assert {q["name"] for q in document["queues"]} == set(TOPOLOGY.all_queue_names())
    police = next(q for q in document["queues"] if q["name"] == "boro.police.requests.urgent")
    assert police["arguments"]["x-queue-type"] == "quorum"
    assert police["arguments"]["x-dead-letter-exchange"] == "boro.dead"
    exchanges = {e["name"]: e["type"] for e in document["exchanges"]}
    assert exchanges["boro.requests"] == "topic"
    assert exchanges["boro.restricted"] == "direct"
    assert {
        "source": "boro.requests",
        "vhost": "/",
        "destination": "boro.police.requests.urgent",
        "destination_type": "queue",
        "routing_key": "police.urgent",
        "arguments": {},
    } in document["bindings"]
    assert document["vhosts"] == []  # the default vhost is left alone


def test_definitions_declare_every_console_instances_queues_bound_to_the_packets() -> None:
    # `mash broker provision` is where a MASH that runs two consoles gets both queue pairs.
    topology = Topology(SETTINGS.model_copy(update={"console_instances": ("main", "duty")}))
    document = definitions(topology, new_credentials(topology))
    queues = {q["name"] for q in document["queues"]}
    assert {"boro.console.packets", "boro.console.duty.packets"} <= queues
    assert {"boro.console.events", "boro.console.duty.events"} <= queues
    bound = {(b["source"], b["destination"]) for b in document["bindings"]}
    assert {
        ("boro.packets", "boro.console.packets"),
        ("boro.packets", "boro.console.duty.packets"),
    } <= bound


def test_definitions_without_topology_or_passwords_are_for_certificate_users() -> None:
    creds = new_credentials(TOPOLOGY, passwords=False)
    document = definitions(TOPOLOGY, creds, include_topology=False)
    assert {u["password_hash"] for u in document["users"]} == {""}
    assert document["queues"] == document["exchanges"] == document["bindings"] == []


def test_a_named_vhost_is_created_and_used() -> None:
    settings = BrokerSettings(prefix="boro", amqp_url="amqp://a:b@host/borough-7")
    assert vhost_of(settings) == "borough-7"
    assert vhost_of(SETTINGS) == "/"
    document = definitions(Topology(settings), new_credentials(Topology(settings)))
    assert document["vhosts"] == [{"name": "borough-7"}]
    assert {p["vhost"] for p in document["permissions"]} == {"borough-7"}


def test_credentials_give_each_role_a_ready_url_to_the_same_broker() -> None:
    creds = new_credentials(TOPOLOGY)
    document = credentials_document(SETTINGS, creds)
    police = document["users"]["police"]
    assert police["user"] == "boro-police"
    assert police["amqp_url"] == f"amqp://boro-police:{police['password']}@broker.example:5672/"
    assert "secret" not in json.dumps(document)  # the administrator's password stays out


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("MASH_PREFIX", "boro")
    return CliRunner()


def test_definitions_command_writes_both_files_readable_by_their_owner_only(
    cli_env: CliRunner, tmp_path: Path
) -> None:
    output, secrets = tmp_path / "definitions.json", tmp_path / "credentials.json"
    result = cli_env.invoke(
        app, ["broker", "definitions", "-o", str(output), "--credentials", str(secrets)]
    )
    assert result.exit_code == 0, result.output
    for path in (output, secrets):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    users = json.loads(secrets.read_text())["users"]
    hashes = {u["name"]: u["password_hash"] for u in json.loads(output.read_text())["users"]}
    salt_and_digest = base64.b64decode(hashes["boro-police"])
    expected = hashlib.sha256(salt_and_digest[:4] + users["police"]["password"].encode())
    assert salt_and_digest[4:] == expected.digest()


def test_definitions_command_refuses_to_lose_the_passwords(
    cli_env: CliRunner, tmp_path: Path
) -> None:
    result = cli_env.invoke(app, ["broker", "definitions", "-o", str(tmp_path / "d.json")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: the new passwords would be lost")
    assert not (tmp_path / "d.json").exists()


def test_credentials_are_never_written_over_an_existing_file(
    cli_env: CliRunner, tmp_path: Path
) -> None:
    existing = tmp_path / "credentials.json"
    existing.write_text("earlier passwords")
    result = cli_env.invoke(
        app,
        ["broker", "definitions", "-o", str(tmp_path / "d.json"), "--credentials", str(existing)],
    )
    assert result.exit_code == 2
    assert "written once" in result.stderr
    assert existing.read_text() == "earlier passwords"


def test_permissions_command_shows_what_each_user_may_read(cli_env: CliRunner) -> None:
    result = cli_env.invoke(app, ["broker", "permissions"])
    assert result.exit_code == 0
    assert "boro-police  (police)" in result.stdout
    assert r"read       ^(boro\.police\.requests\.routine|boro\.police\.requests\.urgent)$" in (
        result.stdout
    )


def test_provisioning_again_creates_only_the_users_that_do_not_exist_yet() -> None:
    existing = {"boro-hub", "boro-police", "boro-screening"}
    creds = new_credentials(TOPOLOGY, existing=existing)
    assert {c.user for c in creds} == {u for u in _all_users() if u not in existing}
    assert new_credentials(TOPOLOGY, existing=_all_users()) == []


def test_rotation_re_keys_existing_users_all_or_only_those_named() -> None:
    assert {c.user for c in new_credentials(TOPOLOGY, existing=_all_users(), rotate=True)} == (
        _all_users()
    )
    only = new_credentials(TOPOLOGY, existing=_all_users(), rotate=True, only={"police"})
    assert [c.user for c in only] == ["boro-police"]
    assert new_credentials(TOPOLOGY, existing=_all_users(), only={"police"}) == []


def test_only_a_role_of_this_mash_may_be_named() -> None:
    with pytest.raises(ValueError, match="no role 'probation' in this MASH"):
        new_credentials(TOPOLOGY, only={"probation"})


def test_kept_users_get_their_permissions_but_not_a_new_password() -> None:
    creds = new_credentials(TOPOLOGY, only={"police"})
    document = definitions(TOPOLOGY, creds, keep={"boro-hub"})
    assert [u["name"] for u in document["users"]] == ["boro-police"]
    assert {p["user"] for p in document["permissions"]} == {"boro-police", "boro-hub"}
    hub_topics = {t["exchange"] for t in document["topic_permissions"] if t["user"] == "boro-hub"}
    assert "boro.requests" in hub_topics


def test_only_the_operator_may_use_the_management_api() -> None:
    document = definitions(TOPOLOGY, new_credentials(TOPOLOGY))
    tags = {u["name"]: u["tags"] for u in document["users"]}
    assert tags.pop("boro-operator") == ["management"]
    assert set(map(tuple, tags.values())) == {()}


def _all_users() -> set[str]:
    return {f"boro-{role}" for role in TOPOLOGY.roles()}
