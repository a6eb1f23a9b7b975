"""A Red contact's head start on the real broker: routine contacts that arrive while it is in
hand are taken in only once its packet is out."""

from __future__ import annotations

import asyncio

import pytest

from hub import audit
from hub.client import HubClient
from hub.settings import HubSettings
from schemas.enums import Brag, PacketReason
from tests.support import Stack, make_contact

pytestmark = pytest.mark.broker


@pytest.fixture
def hub_settings(hub_settings: HubSettings) -> HubSettings:
    # Long enough that only the Red packet, never the limit, ends the head start here.
    return hub_settings.model_copy(update={"red_head_start_s": 120.0})


async def test_routine_contacts_wait_until_the_red_contact_has_its_packet(stack: Stack) -> None:
    hub = await stack.hub()
    await stack.adapters()
    watcher = await stack.watcher()
    async with HubClient(stack.settings) as client:
        red = await client.submit(make_contact(brag=Brag.RED))
        greens = await asyncio.gather(*(client.submit(make_contact()) for _ in range(3)))
    packets = [await watcher.next(timeout=60) for _ in range(4)]

    assert packets[0].contact_ref == red.contact_ref
    assert all(p.reason is PacketReason.COMPLETE for p in packets)
    trail = [(e.contact_ref, e.action) for e in audit.entries(hub.store.db)]
    red_packet = trail.index((red.contact_ref, "packet-published"))
    for green in greens:
        assert trail.index((green.contact_ref, "contact-received")) > red_packet
    assert not hub.head_start.holding
