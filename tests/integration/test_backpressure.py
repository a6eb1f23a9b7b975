"""Back-pressure on the real broker: when the agencies are down and their queues fill up,
the broker refuses more (reject-publish), the hub keeps what it could not send in its
durable outbox, and nothing is lost when the agencies come back."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest

from hub.client import HubClient
from hub.settings import HubSettings
from hub.store import OUTBOX_ROUTINE
from schemas.enums import Brag, PacketReason
from tests.support import Stack, make_contact

pytestmark = pytest.mark.broker

QUEUE_LIMIT = 10
CONTACTS = 40


@pytest.fixture
def hub_settings(hub_settings: HubSettings) -> HubSettings:
    return hub_settings.model_copy(update={"max_queue_length": QUEUE_LIMIT})


async def test_full_agency_queues_hold_work_in_the_outbox_and_lose_nothing(stack: Stack) -> None:
    hub = await stack.hub()
    watcher = await stack.watcher()
    async with HubClient(stack.settings) as client:
        refs = {(await client.submit(make_contact())).contact_ref for _ in range(CONTACTS)}
    await asyncio.sleep(2)
    depths = [
        await _depth(stack, stack.topology.request_queue(agency, "routine"))
        for agency in stack.settings.agencies
    ]
    # Quorum queues apply the limit as messages are enqueued, so one may land past it.
    assert all(QUEUE_LIMIT <= depth <= QUEUE_LIMIT + 1 for depth in depths), depths
    # Each agency's queue is full; every other request waits in the hub's outbox.
    waiting = hub.store.outbox(CONTACTS * 4, priority=OUTBOX_ROUTINE)
    assert len(waiting) == CONTACTS * 4 - sum(depths)

    await stack.adapters()
    packets = [await watcher.next(timeout=90) for _ in range(CONTACTS)]

    assert {p.contact_ref for p in packets} == refs
    assert all(p.reason is PacketReason.COMPLETE for p in packets)
    for _ in range(100):
        if hub.store.outbox_size() == 0:
            break
        await asyncio.sleep(0.1)
    assert hub.store.outbox_size() == 0


async def _depth(stack: Stack, queue: str) -> int:
    async with await aio_pika.connect(stack.settings.amqp_url) as connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0


async def test_red_requests_go_out_while_routine_work_is_held_back(stack: Stack) -> None:
    hub = await stack.hub()
    async with HubClient(stack.settings) as client:
        for _ in range(CONTACTS):
            await client.submit(make_contact())
        await asyncio.sleep(1)
        red = await client.submit(make_contact(brag=Brag.RED))
    # The routine lane is stuck behind full queues; the urgent lane has its own relay.
    for _ in range(100):
        urgent = [
            await _depth(stack, stack.topology.request_queue(agency, "urgent"))
            for agency in stack.settings.agencies
        ]
        if all(urgent):
            break
        await asyncio.sleep(0.1)
    assert red.contact_ref is not None
    assert urgent == [1] * len(stack.settings.agencies)
    assert hub.store.outbox(CONTACTS * 4, priority=OUTBOX_ROUTINE)  # still held back
