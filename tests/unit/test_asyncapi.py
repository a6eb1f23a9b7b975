"""docs/asyncapi.yaml describes every exchange, queue and message of the topology, and is
what the code would generate today."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastavro
import pytest
import yaml
from typer.testing import CliRunner

from broker import signing
from broker.asyncapi import AVRO_FORMAT, ROUTES, render
from broker.settings import DEFAULT_AGENCIES, BrokerSettings
from broker.topology import Topology
from mash.cli import app

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMMITTED.read_text(encoding="utf-8"))
    return loaded


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        assert part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def topology() -> Topology:
    return Topology(BrokerSettings.model_construct(), DEFAULT_AGENCIES)


def test_committed_document_is_what_the_code_generates() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == render(), (
        "docs/asyncapi.yaml is out of date with the topology or the schemas:"
        " run `make asyncapi` (mash asyncapi --output docs/asyncapi.yaml) and commit it"
    )


def test_document_is_asyncapi_3_with_every_reference_resolved(doc: dict[str, Any]) -> None:
    assert doc["asyncapi"] == "3.0.0"
    for op_id, op in doc["operations"].items():
        assert op["action"] in ("send", "receive"), op_id
        channel = resolve(doc, op["channel"]["$ref"])
        assert op["messages"], op_id
        for message in op["messages"]:
            # An operation may only name messages of its own channel.
            assert message["$ref"].startswith(op["channel"]["$ref"] + "/messages/"), op_id
            resolve(doc, message["$ref"])
        if "reply" in op:
            resolve(doc, op["reply"]["channel"]["$ref"])
        assert channel["messages"], op_id
    for channel in doc["channels"].values():
        for message in channel["messages"].values():
            resolve(doc, message["$ref"])


def test_every_message_payload_is_an_avro_schema_fastavro_parses(doc: dict[str, Any]) -> None:
    messages = doc["components"]["messages"]
    assert messages
    for key, message in messages.items():
        payload = resolve(doc, message["payload"]["$ref"])
        assert payload["schemaFormat"] == AVRO_FORMAT, key
        parsed = fastavro.parse_schema(payload["schema"])
        assert isinstance(parsed, dict), key
        assert parsed["name"] == message["name"] == message["bindings"]["amqp"]["messageType"]


def test_every_message_requires_its_sender_signature(doc: dict[str, Any]) -> None:
    for key, message in doc["components"]["messages"].items():
        headers = resolve(doc, message["headers"]["$ref"])
        if "allOf" in headers:  # a dead letter: the original headers and the reason
            headers = resolve(doc, headers["allOf"][0]["$ref"])
        assert set(headers["required"]) == {signing.SENDER, signing.KEY_ID, signing.SIGNATURE}, key


def test_every_exchange_and_queue_of_the_topology_has_a_channel(doc: dict[str, Any]) -> None:
    t = topology()
    bindings = [c["bindings"]["amqp"] for c in doc["channels"].values()]
    exchanges = {b["exchange"]["name"] for b in bindings if b["is"] == "routingKey"}
    queues = {b["queue"].get("name") for b in bindings if b["is"] == "queue"}

    assert exchanges == {ex.name for ex in t.exchanges()}
    assert queues - {None} == set(t.all_queue_names())
    assert {ex.name.removeprefix("mash.") for ex in t.exchanges()} == set(ROUTES)


def test_every_component_sends_and_receives_where_the_topology_says(doc: dict[str, Any]) -> None:
    def channels(component: str, action: str) -> set[str]:
        return {
            op["channel"]["$ref"].removeprefix("#/channels/")
            for op in doc["operations"].values()
            if op["tags"] == [{"name": component}] and op["action"] == action
        }

    assert channels("screening", "send") == {
        "contacts-urgent",
        "contacts-routine",
        "commands-command",
        "dead",
    }
    assert channels("screening", "receive") == {
        "queue-screening-packets",
        "queue-console-packets",
        "queue-console-events",
        "queue-referrer-feedback",
        "queue-replies",
    }
    assert channels("hub", "send") >= {
        "requests-police-urgent",
        "requests-housing-routine",
        "packets",
        "events",
        "restricted-file",
        "referrer-feedback",
        "replies",
    }
    for agency in DEFAULT_AGENCIES:
        assert channels(agency, "receive") == {
            f"queue-{agency}-requests-urgent",
            f"queue-{agency}-requests-routine",
        }
        assert channels(agency, "send") == {"answers-urgent", "answers-routine", "dead"}
    assert channels("restricted", "receive") == {"queue-restricted-file"}


def test_mash_asyncapi_writes_the_document(tmp_path: Path) -> None:
    target = tmp_path / "asyncapi.yaml"

    result = CliRunner().invoke(app, ["asyncapi", "--output", str(target)])

    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8") == render()
