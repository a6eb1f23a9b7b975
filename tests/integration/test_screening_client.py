"""The product's screening client (screening.client) against the real hub and broker: a packet
is handed over decoded and acknowledged only once the caller's handler returns; a packet the
hub did not sign, or one the handler refuses, is dead-lettered with its reason."""

from __future__ import annotations

import asyncio

import aio_pika

from broker.consumer import REASON
from hub.client import HubClient
from hub.settings import HubSettings
from mash.errors import Rejected
from schemas.models import ScreeningPacket
from screening.client import ScreeningClient
from tests.support import Stack, make_contact, signed_publisher


async def _dead_letters(settings: HubSettings, queue: str) -> list[str]:
    """The reasons of what waits on ``queue``'s dead-letter queue (taken off it)."""
    reasons = []
    async with await aio_pika.connect(settings.amqp_url) as connection:
        channel = await connection.channel()
        dead = await channel.declare_queue(f"{queue}.dead", passive=True)
        while (message := await dead.get(fail=False)) is not None:
            reasons.append(str((message.headers or {}).get(REASON)))
            await message.ack()
    return reasons


async def test_a_packet_is_acked_only_after_the_handler_returns(
    stack: Stack, hub_settings: HubSettings
) -> None:
    await stack.hub()
    await stack.adapters()
    handed: list[str] = []
    done: asyncio.Queue[ScreeningPacket] = asyncio.Queue()

    async def store(packet: ScreeningPacket) -> None:
        handed.append(packet.contact_ref)
        if len(handed) == 1:
            raise RuntimeError("the screening system's database was away")  # not acked
        await done.put(packet)

    async with ScreeningClient(hub_settings, "test-screening") as client:
        await client.subscribe(ScreeningPacket, store)
        async with HubClient(hub_settings) as submit:
            ref = (await submit.submit(make_contact())).contact_ref
        packet = await asyncio.wait_for(done.get(), 30)

    assert packet.contact_ref == ref and handed == [ref, ref]  # given again, then acked


async def test_a_packet_the_hub_did_not_sign_is_dead_lettered_and_never_handed_over(
    stack: Stack, hub_settings: HubSettings
) -> None:
    handed: list[ScreeningPacket] = []

    async def store(packet: ScreeningPacket) -> None:
        handed.append(packet)

    await stack.hub()  # declares the topology
    async with ScreeningClient(hub_settings, "test-screening") as client:
        consumer = await client.subscribe(ScreeningPacket, store)
        async with await aio_pika.connect(hub_settings.amqp_url) as connection:
            forger = await signed_publisher(connection, hub_settings, "police")
            await forger.publish(
                stack.topology.packets,
                "",
                b"not a packet",
                message_id="forged-1",
                type_=ScreeningPacket.avro_name,
            )
        async with asyncio.timeout(15):
            while consumer.dead_lettered < 1:
                await asyncio.sleep(0.05)

    assert handed == []
    reasons = await _dead_letters(hub_settings, stack.topology.packet_queue)
    assert reasons and all("sign" in reason or "sender" in reason for reason in reasons)


async def test_a_packet_the_handler_refuses_is_dead_lettered_with_the_handlers_reason(
    stack: Stack, hub_settings: HubSettings
) -> None:
    await stack.hub()
    await stack.adapters()

    async def refuse(packet: ScreeningPacket) -> None:
        raise Rejected("not-our-borough", f"packet {packet.packet_id}")

    async with ScreeningClient(hub_settings, "test-screening") as client:
        consumer = await client.subscribe(ScreeningPacket, refuse)
        async with HubClient(hub_settings) as submit:
            await submit.submit(make_contact())
        async with asyncio.timeout(30):
            while consumer.dead_lettered < 1:
                await asyncio.sleep(0.05)

    assert await _dead_letters(hub_settings, stack.topology.packet_queue) == ["not-our-borough"]


async def test_packets_can_be_read_as_an_iterator(stack: Stack, hub_settings: HubSettings) -> None:
    await stack.hub()
    await stack.adapters()
    async with ScreeningClient(hub_settings, "test-screening") as client:
        async with HubClient(hub_settings) as submit:
            refs = {(await submit.submit(make_contact())).contact_ref for _ in range(2)}
        got = set()
        async with asyncio.timeout(30):
            async for packet in client.packets():
                got.add(packet.contact_ref)
                if got == refs:
                    break

    assert got == refs
