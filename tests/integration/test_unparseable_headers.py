"""Messages the broker accepts and the client library cannot read (issue 16.1), published as
raw frames by another broker user into the hub's answers and an adapter's requests while
good contacts flow: every good contact gets its complete packet, each unreadable message is
dead-lettered with its reason, and no connection is lost."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from broker.consumer import DETAIL, REASON, REJECTED_AT, UNPARSEABLE_REASON
from broker.signing import OPERATOR
from broker.topology import LANES
from faults.poison import KINDS, poison, publish_poison
from schemas.enums import Brag, PacketReason
from tests.integration.test_cli import mash
from tests.support import Stack, make_contact, signed_publisher

pytestmark = pytest.mark.broker

ROUNDS = 2  # each kind of unreadable message, on each lane, this many times
CONTACTS = 2 * ROUNDS * len(KINDS)  # one unreadable answer published after each contact


def _count_losses(connection: AbstractRobustConnection | None) -> list[object]:
    """Every close or reconnect of ``connection`` from now on."""
    assert connection is not None
    losses: list[object] = []
    connection.close_callbacks.add(lambda *args: losses.append(("closed", args)))
    connection.reconnect_callbacks.add(lambda *args: losses.append(("reconnected", args)))
    return losses


async def _drain(
    channel: aio_pika.abc.AbstractChannel, queue: str, expected: int, limit: float = 60
) -> list[AbstractIncomingMessage]:
    taken: list[AbstractIncomingMessage] = []
    give_up = time.monotonic() + limit
    while len(taken) < expected and time.monotonic() < give_up:
        message = await (await channel.declare_queue(queue, passive=True)).get(fail=False)
        if message is None:
            await asyncio.sleep(0.1)
            continue
        await message.ack()
        taken.append(message)
    return taken


async def test_unreadable_answers_are_dead_lettered_and_every_good_contact_gets_its_packet(
    stack: Stack,
) -> None:
    hub = await stack.hub()
    adapters = await stack.adapters()
    watcher = await stack.watcher()
    topology = stack.topology
    hub_losses = _count_losses(hub._connection)
    adapter_losses = [_count_losses(a._connection) for a in adapters]
    poisons = [
        (lane, poison(kind, f"poison-{lane}-{kind}-{n}"))
        for n in range(ROUNDS)
        for kind in KINDS
        for lane in ("routine", "urgent")
    ]
    async with await aio_pika.connect(stack.settings.amqp_url) as connection:
        operator = await signed_publisher(connection, stack.settings, OPERATOR)
        contacts = [make_contact(Brag.RED if n % 3 == 0 else Brag.AMBER) for n in range(CONTACTS)]
        for number, contact in enumerate(contacts):
            lane = "urgent" if contact.brag is Brag.RED else "routine"
            await operator.publish_model(
                topology.contacts, lane, contact, message_id=contact.contact_id
            )
            # The unreadable answers land among the good ones the adapters are sending.
            poison_lane, unreadable = poisons[number % len(poisons)]
            await asyncio.to_thread(
                publish_poison,
                stack.settings.amqp_url,
                topology.answers,
                poison_lane,
                [unreadable],
            )

        packets = [await watcher.next(timeout=60) for _ in range(CONTACTS)]

        channel = await connection.channel()
        dead: list[AbstractIncomingMessage] = []
        for lane in LANES:
            expected = sum(1 for poison_lane, _ in poisons if poison_lane == lane)
            dead += await _drain(channel, topology.answer_queue(lane) + ".dead", expected)

    assert len({p.contact_ref for p in packets}) == CONTACTS
    assert all(p.reason is PacketReason.COMPLETE for p in packets), [p.reason for p in packets]
    assert all(len(p.answers) == len(stack.settings.agencies) for p in packets)
    assert sorted(str(m.message_id) for m in dead) == sorted(p.message_id for _, p in poisons)
    assert {m.headers[REASON] for m in dead} == {UNPARSEABLE_REASON}
    details = Counter(str(m.headers[DETAIL]) for m in dead)
    assert details == {
        "headers: nested too deep": 2 * ROUNDS,
        "headers: not UTF-8": 2 * ROUNDS,
        "headers: out of range; timestamp: out of range": 2 * ROUNDS,
    }
    assert hub_losses == []
    assert adapter_losses == [[] for _ in adapters]
    # Nothing good was charged a delivery and dead-lettered by the broker.
    assert all(c.dead_lettered == 0 for c in hub._consumers if "contacts" in c.queue)


async def test_an_adapter_dead_letters_an_unreadable_request_and_answers_the_good_ones(
    stack: Stack,
) -> None:
    await stack.hub()
    (police,) = await stack.adapters(["police"])
    await stack.adapters([a for a in stack.settings.agencies if a != "police"])
    watcher = await stack.watcher()
    topology = stack.topology
    losses = _count_losses(police._connection)
    async with await aio_pika.connect(stack.settings.amqp_url) as connection:
        operator = await signed_publisher(connection, stack.settings, OPERATOR)
        unreadable = [poison(kind, f"request-{kind}") for kind in KINDS]
        await asyncio.to_thread(
            publish_poison, stack.settings.amqp_url, topology.requests, "police.routine", unreadable
        )
        contact = make_contact(Brag.AMBER)
        await operator.publish_model(
            topology.contacts, "routine", contact, message_id=contact.contact_id
        )
        packet = await watcher.next(timeout=30)
        channel = await connection.channel()
        dead = await _drain(
            channel, topology.request_queue("police", "routine") + ".dead", len(unreadable)
        )

    assert packet.reason is PacketReason.COMPLETE
    assert "police" in {a.agency for a in packet.answers}
    assert sorted(str(m.message_id) for m in dead) == sorted(p.message_id for p in unreadable)
    assert {m.headers[REASON] for m in dead} == {UNPARSEABLE_REASON}
    assert losses == []


async def test_dlq_list_reads_a_dead_letter_queue_holding_unreadable_messages(
    stack: Stack,
) -> None:
    await stack.hub()
    topology = stack.topology
    source = topology.answer_queue("routine")
    unreadable = [poison(kind, f"dead-{kind}") for kind in KINDS]
    await asyncio.to_thread(
        publish_poison, stack.settings.amqp_url, topology.dead, source, unreadable
    )
    async with await aio_pika.connect(stack.settings.amqp_url) as connection:
        channel = await connection.channel()
        # Readable, but with a rejection time that is not a time: any broker user could.
        await channel.default_exchange.publish(
            aio_pika.Message(b"x", message_id="dead-odd-time", headers={REJECTED_AT: "soon"}),
            routing_key=source + ".dead",
        )

    code, out, err = await mash("dlq", "list", "--json", prefix=stack.settings.prefix)

    assert code == 0, err
    letters = {letter["message_id"]: letter for letter in json.loads(out)}
    assert set(letters) == {p.message_id for p in unreadable} | {"dead-odd-time"}
    assert {letters[p.message_id]["reason"] for p in unreadable} == {UNPARSEABLE_REASON}
    assert "Traceback" not in err
