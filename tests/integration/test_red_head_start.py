"""A Red contact's head start on the real broker: routine contacts that arrive while it is in
hand are taken in only once its packet is out, and a re-rating is never held back by it."""

from __future__ import annotations

import asyncio

import pytest

from hub import audit
from hub.client import HubClient
from hub.settings import HubSettings
from schemas.enums import Brag, PacketReason
from tests.support import KnowsEveryone, Stack, make_contact

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


async def test_a_rerating_sent_while_answers_are_held_lands_before_the_packet(
    stack: Stack,
) -> None:
    hub = await stack.hub()
    # Police and health take a moment over the Amber contact's checks.
    police = await stack.adapter(KnowsEveryone("police"), answer_delay=1.0)
    health = await stack.adapter(KnowsEveryone("health"), answer_delay=1.0)
    watcher = await stack.watcher()
    async with HubClient(stack.settings) as client:
        amber = await client.submit(make_contact(Brag.AMBER, agencies=["police", "health"]))
        # Meanwhile a Red contact whose agency is silent: routine work is held back.
        red = await client.submit(make_contact(Brag.RED, agencies=["housing"]))
        ref = amber.contact_ref
        assert ref is not None and red.contact_ref is not None
        # Police and health answer the Amber contact; the hub holds their answers back.
        while police.answered < 1 or health.answered < 1:
            await asyncio.sleep(0.05)
        await stack.stop_adapter(police)  # so only the answers already given can complete it
        await stack.stop_adapter(health)
        assert hub.store.contact(ref).state == "open"  # type: ignore[union-attr]

        # The manager re-rates it: the command is not held, and the answers come after it.
        reply = await client.rerate(ref, Brag.RED, timeout=5)
        assert reply.ok
        packet = await watcher.next(timeout=15)

    assert packet.contact_ref == ref
    assert packet.reason is PacketReason.COMPLETE
    assert packet.brag is Brag.RED
    assert [change.brag for change in packet.rating_history] == [Brag.AMBER, Brag.RED]
    trail = [(e.action, e.actor) for e in audit.entries(hub.store.db) if e.contact_ref == ref]
    rerated = trail.index(("re-rated", "operator"))
    assert trail.index(("answer-received", "police")) > rerated
    assert trail.index(("answer-received", "health")) > rerated
    assert hub.head_start.holding  # the silent Red contact still has its head start
