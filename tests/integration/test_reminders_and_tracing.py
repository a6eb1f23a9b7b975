"""Reminders and trace context on the real broker: an agency that has not answered is
reminded before the deadline and its adapter surfaces it; one trace id follows a contact
from intake through each agency's adapter to the packet."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import aio_pika
import pytest
import structlog
from structlog.testing import LogCapture

from broker.topology import Topology
from hub.client import HubClient
from hub.policy import BragPolicy, Window
from schemas.codec import decode
from schemas.enums import Brag, PacketReason
from schemas.models import ScreeningPacket
from telemetry.tracing import trace_id_of
from tests.ops_support import cli_env, free_port, mash_cli, scrape, wait_for
from tests.support import KnowsEveryone, Stack, make_contact

pytestmark = pytest.mark.broker


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    structlog.configure(processors=[structlog.contextvars.merge_contextvars, capture])
    yield capture
    structlog.reset_defaults()


async def test_silent_agency_is_reminded_before_the_deadline_and_its_adapter_says_so(
    stack: Stack, logs: LogCapture
) -> None:
    # A three-second Blue window: reminders at 1.5 s and 2.25 s.
    hub = await stack.hub(
        BragPolicy(blue=Window.parse("3s")),
        settings=stack.settings.model_copy(update={"metrics_port": free_port()}),
    )
    police = await stack.adapter(KnowsEveryone("police"))
    health = await stack.adapter(
        KnowsEveryone("health"),
        settings=stack.settings.model_copy(update={"metrics_port": free_port()}),
        answer_delay=5.0,  # still checking when the reminders come, late at the deadline
    )
    watcher = await stack.watcher()
    async with HubClient(stack.settings) as client:
        reply = await client.submit(make_contact(Brag.BLUE, agencies=["police", "health"]))

    await wait_for(lambda: len(health.reminders) == 2, timeout=10)
    reminders = sorted(health.reminders, key=lambda r: r.fraction)
    assert [(r.agency, r.contact_ref, r.fraction) for r in reminders] == [
        ("health", reply.contact_ref, 0.5),
        ("health", reply.contact_ref, 0.75),
    ]
    assert all(r.deadline == reply.deadline for r in reminders)
    assert police.reminders == []  # police had answered at once
    surfaced = [e for e in logs.entries if e["event"] == "reminder_received"]
    assert [(e["agency"], e["ref"], e["fraction"]) for e in surfaced] == [
        ("health", reply.contact_ref, 0.5),
        ("health", reply.contact_ref, 0.75),
    ]
    assert 0 < surfaced[0]["left_s"] <= 2

    assert hub.monitoring.server is not None and health.ops is not None
    hub_figures = await scrape(hub.monitoring.server.url)
    assert hub_figures.value("mash_reminders_sent_total", agency="health", brag="BLUE") == 2
    assert hub_figures.value("mash_reminders_sent_total", agency="police") == 0
    adapter_figures = await scrape(health.ops.url)
    assert adapter_figures.value("mash_reminders_received_total", agency="health") == 2

    code, out, _ = await mash_cli("status", "--json", env=cli_env(stack.settings))
    assert code == 0
    shown = json.loads(out)
    listed = shown["open"] + shown["overdue"]
    assert [(c["ref"], c["reminders_sent"]) for c in listed] == [(reply.contact_ref, 2)]
    assert shown["reminders_last_day"] == {"health": 2}

    # The late answer still arrives, after the deadline's partial packet.
    packets = [await watcher.next(), await watcher.next()]
    assert [p.reason for p in packets] == [PacketReason.DEADLINE, PacketReason.AMENDMENT]


async def test_one_trace_id_follows_a_contact_through_hub_and_adapters(
    stack: Stack, logs: LogCapture
) -> None:
    hub = await stack.hub()
    await stack.adapters(["police", "health"])
    topology = Topology(stack.settings)
    packets: asyncio.Queue[tuple[ScreeningPacket, dict[str, Any]]] = asyncio.Queue()
    async with await aio_pika.connect(stack.settings.amqp_url) as connection:
        channel = await connection.channel()
        queue = await channel.get_queue(topology.packet_queue)

        async def on_packet(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await message.ack()
            await packets.put((decode(message.body, ScreeningPacket), dict(message.headers)))

        await queue.consume(on_packet)
        async with HubClient(stack.settings) as client:
            reply = await client.submit(make_contact(agencies=["police", "health"]))
        packet, headers = await asyncio.wait_for(packets.get(), 15)

    assert reply.contact_ref is not None and packet.contact_ref == reply.contact_ref
    stored = hub.store.traceparent(reply.contact_ref)
    carried = headers.get("traceparent")
    trace_id = trace_id_of(stored)
    assert trace_id is not None and trace_id_of(carried) == trace_id
    assert carried != stored  # the packet's own publish span, in the contact's trace

    about_contact = [e for e in logs.entries if e.get("ref") == reply.contact_ref]
    steps = sorted((e["event"], e.get("agency", "")) for e in about_contact)
    assert steps == [
        ("answer_received", "health"),
        ("answer_received", "police"),
        ("contact_received", ""),
        ("request_answered", "health"),
        ("request_answered", "police"),
    ]
    assert {e["trace_id"] for e in about_contact} == {trace_id}
    assert all(e.get("message_id") for e in about_contact)
