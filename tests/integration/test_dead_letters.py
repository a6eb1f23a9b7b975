"""``mash dlq`` as an operator uses it on the real broker: list and show dead letters of both
kinds (refused by a handler, stopped at the delivery limit) without revealing the body,
replay them through the normal path once the cause is fixed, purge them after asking; each
replay and purge is recorded as a hub event."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

from broker.connection import connect
from broker.consumer import Consumer
from broker.publisher import Publisher
from broker.topology import Topology, declare, delete
from hub import audit
from hub.client import HubClient
from hub.settings import HubSettings
from schemas.codec import decode
from schemas.enums import HubEventKind
from schemas.models import Contact, HubEvent
from tests.ops_support import cli_env, mash_cli, wait_for
from tests.support import Stack, make_contact

pytestmark = pytest.mark.broker


async def _events(settings: HubSettings, kind: HubEventKind) -> list[HubEvent]:
    found = []
    async with await aio_pika.connect(settings.amqp_url) as connection:
        channel = await connection.channel()
        queue = await channel.get_queue(Topology(settings).event_queue)
        while (message := await queue.get(fail=False)) is not None:
            await message.ack()
            event = decode(message.body, HubEvent)
            if event.kind is kind:
                found.append(event)
    return found


async def test_refused_contact_is_listed_shown_without_body_and_replayed_once_fixed(
    stack: Stack,
) -> None:
    hub = await stack.hub()
    contact = make_contact(agencies=["police", "probation"])  # probation is not configured
    async with HubClient(stack.settings) as client:
        refused = await client.submit(contact)
    assert not refused.ok
    env = cli_env(stack.settings)
    routine_dead = f"{stack.topology.contact_queue('routine')}.dead"

    code, out, _ = await mash_cli("dlq", "list", env=env)
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["message", "id", "source", "queue", "reason", "dead-lettered", "UTC"]
    assert header.index("source queue") == row.index("hub.contacts.routine")
    assert row.split() == [
        contact.contact_id,
        "hub.contacts.routine",
        "unknown-agency",
        *row.split()[3:5],  # date and time
    ]
    code, out, _ = await mash_cli("dlq", "show", contact.contact_id, "--json", env=env)
    assert code == 0
    [shown] = json.loads(out)
    assert shown["reason"] == "unknown-agency"
    assert shown["detail"] == "probation"
    assert shown["source_queue"] == stack.topology.contact_queue("routine")
    assert shown["dead_queue"] == routine_dead
    assert shown["rejected_by"] == "hub"
    assert shown["type"] == Contact.avro_name
    assert shown["headers"]["traceparent"].startswith("00-")
    code, text, _ = await mash_cli("dlq", "show", contact.contact_id, env=env)
    assert "reason:       unknown-agency" in text
    for child_data in (contact.concerns_summary, "Test", "ZX9 9ZZ"):
        assert child_data not in out and child_data not in text

    # The cause is fixed: the hub is restarted with probation configured.
    await stack.stop_hub(hub)
    fixed = stack.settings.model_copy(update={"agencies": (*stack.settings.agencies, "probation")})
    try:
        hub = await stack.hub(settings=fixed)
        code, out, _ = await mash_cli("dlq", "replay", contact.contact_id, env=env)
        assert code == 0
        assert out.strip() == (
            f"replayed {contact.contact_id} from hub.contacts.routine.dead to contacts 'routine'"
        )
        await wait_for(lambda: hub.store.count_contacts() == 1)
        ref = hub.store.ref_for_contact_id(contact.contact_id)
        assert ref is not None
        assert sorted(r.agency for r in hub.store.requests_for(ref)) == ["police", "probation"]

        code, out, _ = await mash_cli("dlq", "list", env=env)
        assert (code, out.strip()) == (0, "No dead letters.")
        code, _, err = await mash_cli("dlq", "replay", contact.contact_id, env=env)
        assert code == 1
        assert err.strip() == f"error: no dead letter with message id {contact.contact_id}"

        [event] = await _events(stack.settings, HubEventKind.DEAD_LETTER_REPLAYED)
        assert event.detail["message_id"] == contact.contact_id
        assert event.detail["reason"] == "unknown-agency"
        assert event.detail["dead_queue"] == routine_dead
        assert event.detail["operator"]
        [entry] = [
            e for e in audit.entries(hub.store.connection) if e.action == "dead-letter-replayed"
        ]
        assert entry.detail["message_id"] == contact.contact_id
        assert entry.detail["reason"] == "unknown-agency"
        assert audit.verify(hub.store.connection)[1] is None
    finally:
        await stack.stop_hub(hub)
        async with await aio_pika.connect(fixed.amqp_url) as connection:
            await delete(connection, Topology(fixed))


@pytest.fixture
async def limited(tmp_path: Path) -> AsyncIterator[HubSettings]:
    settings = HubSettings(
        prefix=f"test-{uuid.uuid4().hex[:10]}", db_path=tmp_path / "hub.sqlite3", delivery_limit=1
    )
    yield settings
    async with await aio_pika.connect(settings.amqp_url) as connection:
        await delete(connection, Topology(settings))


async def test_poison_messages_stopped_at_the_delivery_limit_are_replayed_to_their_queue(
    limited: HubSettings,
) -> None:
    topology = Topology(limited)
    env = cli_env(limited)
    connection = await connect(limited, "test-dlq")
    async with connection:
        await declare(await connection.channel(), topology)
        publisher = Publisher(connection)
        received: list[str] = []
        broken = True

        async def handler(message: AbstractIncomingMessage) -> None:
            if broken:
                raise RuntimeError("handler bug")
            received.append(message.message_id or "")

        consumer = Consumer(
            await connection.channel(),
            publisher,
            topology,
            topology.command_queue,
            handler,
            component="test",
            retry_delay=0.01,
        )
        await consumer.start()
        for n in (1, 2):
            await publisher.publish(topology.commands, "command", b"x", message_id=f"poison-{n}")

        async def both_dead() -> bool:
            code, out, _ = await mash_cli("dlq", "list", "--json", env=env)
            return code == 0 and len(json.loads(out)) == 2

        await wait_for(both_dead, timeout=30)
        code, out, _ = await mash_cli("dlq", "list", "--json", env=env)
        letters = json.loads(out)
        assert [(d["message_id"], d["reason"], d["rejected_by"]) for d in letters] == [
            ("poison-1", "delivery_limit", "broker"),
            ("poison-2", "delivery_limit", "broker"),
        ]
        assert {d["source_queue"] for d in letters} == {topology.command_queue}

        broken = False  # the bug is fixed
        code, out, _ = await mash_cli("dlq", "replay", "--all", env=env)
        assert code == 0
        assert len(out.splitlines()) == 2
        await wait_for(lambda: sorted(received) == ["poison-1", "poison-2"])
        replays = await _events(limited, HubEventKind.DEAD_LETTER_REPLAYED)
        assert sorted(e.detail["message_id"] for e in replays) == ["poison-1", "poison-2"]


async def test_purge_asks_first_and_deletes_only_when_confirmed(limited: HubSettings) -> None:
    topology = Topology(limited)
    env = cli_env(limited)
    connection = await connect(limited, "test-purge")
    async with connection:
        await declare(await connection.channel(), topology)
        publisher = Publisher(connection)
        dead = topology.answer_queue("urgent")
        for n in (1, 2):
            await publisher.publish(topology.dead, dead, b"x", message_id=f"dead-{n}")

    code, _, err = await mash_cli("dlq", "purge", env=env, stdin=b"n\n")
    assert code == 1
    assert err.strip().endswith("error: purge cancelled; nothing deleted")
    code, out, _ = await mash_cli("dlq", "list", "--json", env=env)
    assert len(json.loads(out)) == 2

    code, out, _ = await mash_cli(
        "dlq", "purge", "--queue", "hub.answers.urgent", env=env, stdin=b"y\n"
    )
    assert code == 0
    assert "Delete 2 dead letters from hub.answers.urgent.dead (2) for good?" in out
    assert out.strip().endswith("purged 2 dead letters")
    code, out, _ = await mash_cli("dlq", "purge", "--yes", env=env)
    assert (code, out.strip()) == (0, "No dead letters to purge.")
    [event] = await _events(limited, HubEventKind.DEAD_LETTERS_PURGED)
    assert event.detail["count"] == "2"
    assert event.detail["queues"] == f"{dead}.dead"
