"""The MASH's decision through the real hub and broker (hub.decisions): recorded in the audit
log and the hub's state, shown as the outcome in a later chronology, and told to the referrer
and to every agency that was asked, signed; and the rationale of a re-rating kept."""

from __future__ import annotations

import asyncio

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from broker.keyring import Keyring
from broker.signing import Verifier
from broker.topology import Topology
from hub import audit
from hub.client import HubClient
from hub.decisions import decision_for
from hub.settings import HubSettings
from schemas.codec import decode
from schemas.enums import Brag, Decision
from schemas.models import ReferrerFeedback
from tests.support import Stack, make_contact


async def _feedback(settings: HubSettings) -> asyncio.Queue[AbstractIncomingMessage]:
    found: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
    connection = await aio_pika.connect(settings.amqp_url)
    channel = await connection.channel()
    queue = await channel.declare_queue(Topology(settings).referrer_queue, passive=True)
    await queue.consume(found.put)
    return found


async def test_a_decision_is_audited_told_to_the_referrer_and_each_agency_asked_and_shown_later(
    stack: Stack, hub_settings: HubSettings
) -> None:
    hub = await stack.hub()
    adapters = await stack.adapters()
    watcher = await stack.watcher()
    feedback = await _feedback(hub_settings)
    verifier = Verifier(Keyring.load(hub_settings.keyring))
    first = make_contact()
    async with HubClient(hub_settings) as client:
        ref = (await client.submit(first)).contact_ref
        assert ref is not None
        await watcher.next()

        reply = await client.decide(
            ref, Decision.EARLY_HELP, "Family asks for support; no safeguarding threshold", "amy"
        )
        again = await client.decide(ref, Decision.NO_FURTHER_ACTION, "changed my mind", "amy")
        second = (await client.submit(make_contact())).contact_ref

    assert reply.ok, reply.error
    assert not again.ok and "decided already" in (again.error or "")
    message = await asyncio.wait_for(feedback.get(), 10)
    verifier.verify(
        message.headers, message.message_id, message.type, message.body, frozenset({"hub"})
    )
    told = decode(message.body, ReferrerFeedback)
    assert (told.contact_ref, told.decision) == (ref, Decision.EARLY_HELP)
    assert told.referrer == first.referrer
    assert "safeguarding threshold" not in told.message  # the rationale stays in the hub
    await message.ack()
    for _ in range(200):
        if all(a.notices for a in adapters):
            break
        await asyncio.sleep(0.05)
    for adapter in adapters:
        assert [(n.contact_ref, n.decision) for n in adapter.notices] == [
            (ref, Decision.EARLY_HELP)
        ], adapter.agency.name
    assert feedback.empty()  # one decision, one feedback

    decided = decision_for(hub.store, ref)
    assert decided is not None and decided.decided_by == "amy"
    entries = [e for e in audit.entries(hub.store.connection, ref) if e.action == "decided"]
    assert [(e.detail["decision"], e.detail["by"]) for e in entries] == [("EARLY_HELP", "amy")]
    assert audit.verify(hub.store.connection)[1] is None
    # The same child's next contact shows the decision as this one's outcome.
    later = await watcher.next()
    assert later.contact_ref == second
    assert [(e.contact_ref, e.outcome) for e in later.chronology] == [(ref, "decided: early help")]
    # Counted only once the second packet is out, so every agency has answered it: two answers
    # each, the notice taken as a notice, not a request.
    assert [a.answered for a in adapters] == [2] * len(adapters)


async def test_a_decision_without_a_rationale_is_refused_and_dead_lettered(
    stack: Stack, hub_settings: HubSettings
) -> None:
    hub = await stack.hub()
    await stack.adapters()
    watcher = await stack.watcher()
    async with HubClient(hub_settings) as client:
        ref = (await client.submit(make_contact())).contact_ref
        assert ref is not None
        await watcher.next()
        reply = await client.decide(ref, Decision.SIGNPOST, "  ", "amy")

    assert not reply.ok and "rationale" in (reply.error or "")
    assert decision_for(hub.store, ref) is None


async def test_a_rerating_keeps_its_rationale_in_the_audit_log_and_the_rating_history(
    stack: Stack, hub_settings: HubSettings
) -> None:
    hub = await stack.hub()
    watcher = await stack.watcher()
    async with HubClient(hub_settings) as client:
        ref = (await client.submit(make_contact(Brag.AMBER))).contact_ref
        assert ref is not None
        reply = await client.rerate(
            ref, Brag.RED, rationale="Siblings in the house", issued_by="amy"
        )
    assert reply.ok, reply.error
    await stack.adapters()  # the agencies answer only now: the packet follows the re-rating

    packet = await watcher.next()
    assert [(c.brag, c.rationale) for c in packet.rating_history] == [
        (Brag.AMBER, None),
        (Brag.RED, "Siblings in the house"),
    ]
    rerated = [e for e in audit.entries(hub.store.connection, ref) if e.action == "re-rated"]
    assert [(e.detail["rationale"], e.detail["by"]) for e in rerated] == [
        ("Siblings in the house", "amy")
    ]
