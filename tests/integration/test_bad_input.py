"""Bad input on the real broker: ten thousand malformed, unsigned, forged and replayed
messages interleaved with valid contacts. No consumer dies, every bad message is
dead-lettered with a reason, every valid contact gets its packet, a replay has no effect."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

from broker.consumer import REASON
from broker.publisher import Publisher
from broker.signing import OPERATOR
from schemas.codec import MAGIC, MAX_MESSAGE_BYTES, encode
from schemas.enums import Brag, HubEventKind
from schemas.models import AgencyResponse, HubEvent
from tests.support import Stack, make_contact, signed_publisher

pytestmark = [pytest.mark.broker, pytest.mark.load]

BAD_MESSAGES = 10_000
VALID_CONTACTS = 40


def _bad_body(chance: random.Random, valid: bytes) -> tuple[str, bytes]:
    kind = chance.choice(["random", "truncated", "fingerprint", "trailing"])
    if kind == "random":
        return kind, chance.randbytes(chance.randint(0, 300))
    if kind == "truncated":
        return kind, valid[: chance.randint(10, len(valid) - 1)]
    if kind == "fingerprint":
        return kind, MAGIC + chance.randbytes(8) + valid[10:]
    return kind, valid + chance.randbytes(chance.randint(1, 20))


async def test_ten_thousand_bad_messages_are_dead_lettered_and_valid_ones_flow(
    stack: Stack,
) -> None:
    hub = await stack.hub()
    adapters = await stack.adapters()
    watcher = await stack.watcher()
    topology = stack.topology
    chance = random.Random(20261123)
    valid_contact = encode(make_contact())
    expected: Counter[str] = Counter()  # dead letters expected per queue
    async with await aio_pika.connect(stack.settings.amqp_url) as connection:
        operator = await signed_publisher(connection, stack.settings, OPERATOR)
        police = await signed_publisher(connection, stack.settings, "police")
        hub_signer = await signed_publisher(connection, stack.settings, "hub")
        unsigned = Publisher(connection)
        targets = [
            (operator, topology.contacts, "routine", topology.contact_queue("routine")),
            (operator, topology.contacts, "urgent", topology.contact_queue("urgent")),
            (operator, topology.commands, "command", topology.command_queue),
            (police, topology.answers, "routine", topology.answer_queue("routine")),
            (
                hub_signer,
                topology.requests,
                "police.routine",
                topology.request_queue("police", "routine"),
            ),
            (
                hub_signer,
                topology.requests,
                "health.urgent",
                topology.request_queue("health", "urgent"),
            ),
        ]
        sends = []
        for number in range(BAD_MESSAGES):
            publisher, exchange, key, queue = chance.choice(targets)
            _, body = _bad_body(chance, valid_contact)
            special = number % 50
            if special == 1:
                publisher = unsigned  # missing signature
            elif special == 2:
                body = encode(
                    HubEvent(
                        event_id="e",
                        occurred_at=make_contact().received_at,
                        kind=HubEventKind.RERATED,
                    )
                )  # a valid message of the wrong schema
            elif special == 3:
                # Police signs an answer that claims to be health's.
                publisher, exchange, key, queue = targets[3]
                body = encode(
                    AgencyResponse.model_validate(
                        {
                            "response_id": f"r-{number}",
                            "request_id": f"q-{number}",
                            "contact_ref": "MASH-2026-000001",
                            "agency": "health",
                            "responded_at": make_contact().received_at,
                            "outcome": "NOT_KNOWN",
                        }
                    )
                )
            elif special == 4 and number < 250:
                body = b"\xc3\x01" + bytes(MAX_MESSAGE_BYTES + 10)  # oversized
            sends.append(publisher.publish(exchange, key, body, message_id=f"bad-{number}"))
            expected[queue] += 1
            if number % (BAD_MESSAGES // VALID_CONTACTS) == 0:
                good = make_contact(Brag.RED if number % 3 == 0 else Brag.GREEN)
                lane = "urgent" if good.brag is Brag.RED else "routine"
                for _ in range(2):  # each valid contact is also replayed once
                    sends.append(
                        operator.publish_model(
                            topology.contacts, lane, good, message_id=good.contact_id
                        )
                    )
            if len(sends) >= 200:
                await asyncio.gather(*sends)
                sends = []
        await asyncio.gather(*sends)

        packets = [await watcher.next(timeout=120) for _ in range(VALID_CONTACTS)]
        channel = await connection.channel()
        give_up = time.monotonic() + 180
        for queue, count in expected.items():
            dead = await channel.declare_queue(queue + ".dead", passive=True)
            while time.monotonic() < give_up:
                dead = await channel.declare_queue(queue + ".dead", passive=True)
                if (dead.declaration_result.message_count or 0) >= count:
                    break
                await asyncio.sleep(0.2)
            assert dead.declaration_result.message_count == count, queue
        reasons: Counter[str] = Counter()
        done = asyncio.Event()

        async def tally(message: AbstractIncomingMessage) -> None:
            reasons[str(message.headers.get(REASON, ""))] += 1
            if sum(reasons.values()) == BAD_MESSAGES:
                done.set()

        for queue in expected:
            dead = await channel.declare_queue(queue + ".dead", passive=True)
            await dead.consume(tally, no_ack=True)
        await asyncio.wait_for(done.wait(), 60)

    assert len({p.contact_ref for p in packets}) == VALID_CONTACTS  # replays made nothing new
    assert hub.store.count_contacts() == VALID_CONTACTS
    assert "" not in reasons
    assert sum(reasons.values()) == BAD_MESSAGES
    for reason in (
        "missing-signature",
        "wrong-schema",
        "sender-mismatch",
        "oversized",
        "unknown-fingerprint",
        "malformed-body",
        "not-single-object",
    ):
        assert reasons[reason] > 0, reasons
    # Every consumer is still attached and working.
    assert all(c.handled > 0 for c in hub._consumers if "contacts" in c.queue)
    assert all(a.answered >= VALID_CONTACTS for a in adapters)
