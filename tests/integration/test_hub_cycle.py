"""The hub's cycle on the real broker: fan-out, correlation, deadlines, amendments,
re-rating, restarts and bad input. Agencies' records are stand-ins here; the broker is not."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import aio_pika
import pytest

from adapters.kit.service import AdapterService
from broker.consumer import REASON
from broker.signing import OPERATOR
from broker.topology import Topology
from hub.client import HubClient
from hub.policy import BragPolicy, Window
from hub.settings import HubSettings
from schemas.codec import decode, encode
from schemas.enums import Brag, PacketReason
from schemas.models import InformationRequest
from tests.support import KnowsEveryone, Stack, make_contact, signed_publisher

pytestmark = pytest.mark.broker

SHORT_BLUE = BragPolicy(blue=Window.parse("1s"))


async def test_contact_answered_by_every_agency_gives_one_complete_packet(stack: Stack) -> None:
    await stack.hub()
    await stack.adapters()
    watcher = await stack.watcher()
    async with HubClient(stack.settings) as client:
        reply = await client.submit(make_contact(Brag.AMBER))
    assert reply.ok and reply.contact_ref is not None
    assert reply.contact_ref.startswith("MASH-")

    packet = await watcher.next()

    assert packet.contact_ref == reply.contact_ref
    assert packet.reason is PacketReason.COMPLETE
    assert packet.version == 1
    assert sorted(a.agency for a in packet.answers) == sorted(stack.settings.agencies)
    assert packet.missing_agencies == []
    with pytest.raises(TimeoutError):
        await watcher.next(timeout=1.0)


async def test_resubmitting_the_same_contact_returns_the_same_reference(stack: Stack) -> None:
    await stack.hub()
    contact = make_contact()
    async with HubClient(stack.settings) as client:
        first = await client.submit(contact)
        second = await client.submit(contact)
    assert first.contact_ref == second.contact_ref
    assert stack._hubs[0].store.count_contacts() == 1


async def test_deadline_names_silent_agency_and_late_answer_amends_packet(stack: Stack) -> None:
    await stack.hub(SHORT_BLUE)
    await stack.adapters(["police", "health", "education"])
    watcher = await stack.watcher()
    async with HubClient(stack.settings) as client:
        reply = await client.submit(make_contact(Brag.BLUE))

    partial = await watcher.next()
    assert partial.reason is PacketReason.DEADLINE
    assert partial.missing_agencies == ["housing"]
    assert len(partial.answers) == 3

    await stack.adapter(KnowsEveryone("housing"))
    amendment = await watcher.next()
    assert amendment.contact_ref == reply.contact_ref
    assert amendment.reason is PacketReason.AMENDMENT
    assert amendment.version == 2
    assert amendment.missing_agencies == []
    assert amendment.late_agencies == ["housing"]
    assert len(amendment.answers) == 4


async def test_rerating_to_red_recomputes_deadline_and_tells_outstanding_agencies(
    stack: Stack,
) -> None:
    hub = await stack.hub()
    police = KnowsEveryone("police")
    await stack.adapter(police)
    async with HubClient(stack.settings) as client:
        submitted = await client.submit(make_contact(Brag.GREEN))
        assert submitted.contact_ref is not None
        for _ in range(100):
            if police.requests:
                break
            await asyncio.sleep(0.05)
        reply = await client.rerate(submitted.contact_ref, Brag.RED)

    row = hub.store.contact(submitted.contact_ref)
    assert row is not None
    assert reply.ok and reply.brag is Brag.RED
    assert reply.deadline == row.received_at + timedelta(hours=4)
    await asyncio.sleep(0.5)  # let the outbox publish the re-issued requests
    topology = Topology(stack.settings)
    connection = await aio_pika.connect(stack.settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        for agency in ("health", "education", "housing"):
            queue = await channel.get_queue(topology.request_queue(agency, "urgent"), ensure=False)
            message = await queue.get(timeout=5)
            request = decode(message.body, InformationRequest)
            await message.ack()
            assert (request.brag, request.revision) == (Brag.RED, 1)
            assert request.deadline == reply.deadline
        police_urgent = await channel.get_queue(
            topology.request_queue("police", "urgent"), ensure=False
        )
        assert await police_urgent.get(fail=False) is None  # police had already answered


async def test_rerating_an_unknown_reference_is_refused(stack: Stack) -> None:
    await stack.hub()
    async with HubClient(stack.settings) as client:
        reply = await client.rerate("MASH-2026-999999", Brag.RED)
    assert not reply.ok
    assert reply.error == "unknown reference MASH-2026-999999"


async def test_contact_half_answered_before_hub_restart_completes_after_it(stack: Stack) -> None:
    hub = await stack.hub()
    first_two = await stack.adapters(["police", "health"])
    watcher = await stack.watcher()
    async with HubClient(stack.settings) as client:
        reply = await client.submit(make_contact())
    for _ in range(100):
        if all(a.answered for a in first_two) and hub.store.outbox_size() == 0:
            break
        await asyncio.sleep(0.05)
    await stack.stop_hub(hub)

    await stack.adapters(["education", "housing"])  # their answers wait in the queue
    await stack.hub()

    packet = await watcher.next()
    assert packet.contact_ref == reply.contact_ref
    assert packet.reason is PacketReason.COMPLETE
    assert len(packet.answers) == 4


async def test_deadline_that_passed_while_hub_was_down_fires_on_start(stack: Stack) -> None:
    hub = await stack.hub(SHORT_BLUE)
    watcher = await stack.watcher()
    async with HubClient(stack.settings) as client:
        reply = await client.submit(make_contact(Brag.BLUE))
    await stack.stop_hub(hub)
    await asyncio.sleep(1.5)

    started = time.monotonic()
    await stack.hub(SHORT_BLUE)
    packet = await watcher.next()

    assert packet.contact_ref == reply.contact_ref
    assert packet.reason is PacketReason.DEADLINE
    assert sorted(packet.missing_agencies) == sorted(stack.settings.agencies)
    assert time.monotonic() - started < 5


async def test_undecodable_message_is_dead_lettered_and_hub_keeps_consuming(
    stack: Stack, hub_settings: HubSettings
) -> None:
    await stack.hub()
    await stack.adapters()
    watcher = await stack.watcher()
    topology = Topology(hub_settings)
    connection = await aio_pika.connect(hub_settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        operator = await signed_publisher(connection, hub_settings, OPERATOR)
        # Signed by a genuine operator, so it is the body the hub refuses, not the sender.
        await operator.publish(topology.contacts, "routine", b"not avro", message_id="bad-1")
        await operator.publish(
            topology.contacts, "routine", encode(make_contact()), message_id="good-1"
        )

        packet = await watcher.next()
        assert packet.reason is PacketReason.COMPLETE

        dead = await channel.get_queue(topology.contact_queue("routine") + ".dead", ensure=False)
        message = await dead.get(timeout=5)
        await message.ack()
        assert message.message_id == "bad-1"
        assert message.headers[REASON] == "not-single-object"
        assert message.body == b"not avro"


async def test_answer_claiming_another_agency_is_dead_lettered(stack: Stack) -> None:
    await stack.hub()
    impostor = KnowsEveryone("police")
    await stack.adapter(impostor)
    async with HubClient(stack.settings) as client:
        await client.submit(make_contact(agencies=["police", "health"]))
    topology = Topology(stack.settings)
    connection = await aio_pika.connect(stack.settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        health_queue = await channel.get_queue(topology.request_queue("health", "routine"))
        message = await health_queue.get(timeout=5)
        await message.ack()
        request = decode(message.body, InformationRequest)
        # Police answers the health request, honestly signed and named as police.
        forged = AdapterService(impostor, stack.settings).answer(request)
        police = await signed_publisher(connection, stack.settings, "police")
        await police.publish_model(topology.answers, "routine", forged, message_id="forged-1")
        dead = await channel.get_queue(topology.answer_queue("routine") + ".dead", ensure=False)
        for _ in range(50):
            got = await dead.get(fail=False)
            if got is not None:
                break
            await asyncio.sleep(0.1)
        assert got is not None
        await got.ack()
        assert got.headers[REASON] == "agency-mismatch"


async def test_red_contact_overtakes_a_backlog_of_green_contacts(stack: Stack) -> None:
    topology = Topology(stack.settings)
    await stack.hub()
    watcher = await stack.watcher()
    connection = await aio_pika.connect(stack.settings.amqp_url)
    async with connection:
        operator = await signed_publisher(connection, stack.settings, OPERATOR)
        backlog = [make_contact(Brag.GREEN) for _ in range(300)]
        await asyncio.gather(
            *(
                operator.publish_model(topology.contacts, "routine", c, message_id=c.contact_id)
                for c in backlog
            )
        )
        red = make_contact(Brag.RED)
        async with HubClient(stack.settings) as client:
            await client.submit(red)
    await stack.adapters()

    first = await watcher.next(timeout=30)
    seen_before_red = 0
    packet = first
    while packet.brag is not Brag.RED:
        seen_before_red += 1
        packet = await watcher.next(timeout=30)
    # Red was submitted last, behind 300 Green contacts, yet is among the first packets.
    assert seen_before_red < 30


async def test_contact_naming_an_unknown_agency_is_refused_with_the_reason(stack: Stack) -> None:
    await stack.hub()
    async with HubClient(stack.settings) as client:
        reply = await client.submit(make_contact(agencies=["police", "probation"]))
    assert not reply.ok
    assert reply.error == "unknown-agency: probation"
    assert stack._hubs[0].store.count_contacts() == 0
