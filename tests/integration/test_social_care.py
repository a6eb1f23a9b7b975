"""Children's social care as a fifth agency, on the real broker: a child who already has a
social worker or lead professional has the contact sent straight on to them, and every packet
shows what came before, so a repeated concern reads as a pattern."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest

from adapters.social_care import SocialCareAgency
from broker.settings import DEFAULT_AGENCIES
from broker.topology import Topology, delete
from hub import audit
from hub.client import HubClient
from hub.intake import load_contact_file
from hub.service import HubService
from hub.settings import HubSettings
from schemas.codec import decode
from schemas.enums import AllocationRole
from schemas.models import AllocatedContact, Contact
from tests.support import Keys, Stack

pytestmark = pytest.mark.broker

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "contacts"
ATTENDANCE = "green-school-attendance.json"  # Olivia: an early help lead professional
BABY = "red-baby-unexplained-bruising.json"  # Harper: one earlier contact, no worker


@pytest.fixture
async def stack(tmp_path: Path, keys: Keys) -> AsyncIterator[Stack]:
    """A MASH that asks children's social care as well as the four default agencies."""
    settings = HubSettings(
        prefix=f"test-{uuid.uuid4().hex[:10]}",
        db_path=tmp_path / "hub.sqlite3",
        keyring=keys.keyring,
        key_dir=keys.key_dir,
        agencies=(*DEFAULT_AGENCIES, "social-care"),
    )
    running = Stack(settings)
    yield running
    await running.close()
    async with await aio_pika.connect(settings.amqp_url) as connection:
        await delete(connection, Topology(settings))


def contact(example: str) -> Contact:
    # Social care alone is asked, so each packet is complete as soon as it answers.
    loaded = load_contact_file(EXAMPLES / example)
    return loaded.model_copy(update={"contact_id": str(uuid.uuid4()), "agencies": ["social-care"]})


async def routed(stack: Stack, wait: float = 0.0) -> list[AllocatedContact]:
    """What reached the social care team's allocated queue (taken off it)."""
    await asyncio.sleep(wait)
    found: list[AllocatedContact] = []
    async with await aio_pika.connect(stack.settings.amqp_url) as connection:
        channel = await connection.channel()
        queue = await channel.get_queue(stack.topology.allocated_queue, ensure=False)
        while (message := await queue.get(fail=False)) is not None:
            found.append(decode(message.body, AllocatedContact))
            await message.ack()
    return found


async def start(stack: Stack) -> HubService:
    hub = await stack.hub()
    await stack.adapter(SocialCareAgency())
    return hub


async def test_a_child_with_an_allocated_worker_has_the_contact_sent_straight_to_them(
    stack: Stack,
) -> None:
    hub = await start(stack)
    watcher = await stack.watcher()
    async with HubClient(stack.settings) as client:
        reply = await client.submit(contact(ATTENDANCE))
    packet = await watcher.next()

    assert packet.allocated_worker is not None
    assert packet.allocated_worker.role is AllocationRole.LEAD_PROFESSIONAL
    assert packet.allocated_worker.subject_id == "child"
    [message] = await routed(stack)
    assert message.contact_ref == reply.contact_ref
    assert message.worker == packet.allocated_worker
    assert (message.worker.name, message.worker.team) == (
        "Hannah Okoye",
        "Early Help Locality Team West",
    )
    assert message.contact.concerns_summary == packet.concerns_summary
    actions = [e.action for e in audit.entries(hub.store.connection, reply.contact_ref)]
    assert "contact-routed" in actions


async def test_a_child_without_an_allocated_worker_is_not_routed(stack: Stack) -> None:
    await start(stack)
    watcher = await stack.watcher()
    async with HubClient(stack.settings) as client:
        await client.submit(contact(BABY))
    packet = await watcher.next()

    assert packet.allocated_worker is None
    # A routed contact is published with, or before, its packet: none came.
    assert await routed(stack, wait=0.3) == []
    # Social care's earlier contact is in the chronology even so.
    assert [(e.recorded_by, e.source, e.category) for e in packet.chronology] == [
        ("social-care", "Police", "Domestic abuse")
    ]


async def test_a_second_contact_about_the_same_child_lists_the_first_in_its_chronology(
    stack: Stack,
) -> None:
    await start(stack)
    watcher = await stack.watcher()
    first, second = contact(BABY), contact(BABY)
    # The second referrer misspells the child's name: the same child by date of birth.
    baby = second.subjects[0].model_copy(update={"given_name": "Harpr"})
    second = second.model_copy(update={"subjects": [baby, *second.subjects[1:]]})
    async with HubClient(stack.settings) as client:
        first_reply = await client.submit(first)
        first_packet = await watcher.next()
        await client.submit(second)
    second_packet = await watcher.next()

    assert [e.recorded_by for e in first_packet.chronology] == ["social-care"]
    earlier = [e for e in second_packet.chronology if e.recorded_by == "mash"]
    assert [(e.contact_ref, e.subject_id, e.brag) for e in earlier] == [
        (first_reply.contact_ref, "baby", first.brag)
    ]
    assert earlier[0].source == first.referrer.kind.value.lower()
    assert earlier[0].outcome == "packet published"
