"""Security on the real broker: unsigned, forged, retired and replayed messages are refused
with a reason; restricted findings travel sealed and only the restricted file reads them;
every action lands in the audit log; canaries in restricted findings appear nowhere in clear."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage
from structlog.testing import capture_logs

from adapters.kit.agency import Lookup
from adapters.kit.service import AdapterService
from broker.consumer import REASON
from broker.keyring import Keyring
from broker.publisher import Publisher
from broker.signing import KEY_ID, OPERATOR
from broker.topology import declare
from hub.client import HubClient
from hub.settings import HubSettings
from restricted.store import KeeperStore
from schemas.codec import decode, encode
from schemas.enums import Engagement, MatchMethod, PacketReason
from schemas.models import (
    AgencyResponse,
    InformationRequest,
    RestrictedItem,
    RestrictedRecord,
    SubjectMatch,
)
from tests.support import KnowsEveryone, Stack, make_contact, signed_publisher

pytestmark = pytest.mark.broker

CANARY = "CANARY-7f3a9c-restricted"


class HoldsRestricted(KnowsEveryone):
    """Police records that include restricted intelligence carrying a canary string."""

    def lookup(self, request: InformationRequest) -> Lookup:
        return Lookup(
            matches=[
                SubjectMatch(
                    subject_id=s.subject_id,
                    matched=True,
                    method=MatchMethod.NAME_DOB_POSTCODE,
                    confidence=0.9,
                )
                for s in request.subjects
            ],
            engagement=Engagement.ENGAGES_WELL,
            restricted=[RestrictedItem(category="Covert intelligence", summary=CANARY)],
        )


async def _dead_letter(settings: HubSettings, queue: str) -> AbstractIncomingMessage:
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        dead = await channel.declare_queue(queue + ".dead", passive=True)
        for _ in range(100):
            message = await dead.get(fail=False)
            if message is not None:
                await message.ack()
                return message
            await asyncio.sleep(0.05)
    raise AssertionError(f"nothing dead-lettered from {queue}")


async def test_unsigned_contact_is_dead_lettered_and_signed_ones_still_flow(stack: Stack) -> None:
    await stack.hub()
    await stack.adapters()
    watcher = await stack.watcher()
    topology = stack.topology
    async with await aio_pika.connect(stack.settings.amqp_url) as connection:
        unsigned = Publisher(connection)
        await unsigned.publish_model(
            topology.contacts, "routine", make_contact(), message_id="unsigned-1"
        )
    async with HubClient(stack.settings) as client:
        reply = await client.submit(make_contact())

    dead = await _dead_letter(stack.settings, topology.contact_queue("routine"))
    assert dead.message_id == "unsigned-1"
    assert dead.headers[REASON] == "missing-signature"
    packet = await watcher.next()
    assert packet.contact_ref == reply.contact_ref


async def test_agency_cannot_sign_an_answer_for_another_agency(stack: Stack) -> None:
    await stack.hub()
    async with HubClient(stack.settings) as client:
        await client.submit(make_contact(agencies=["health"]))
    topology = stack.topology
    async with await aio_pika.connect(stack.settings.amqp_url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(
            topology.request_queue("health", "routine"), passive=True
        )
        message = await queue.get(timeout=5)
        await message.ack()
        request = decode(message.body, InformationRequest)
        # Police's adapter writes health's answer and signs it with police's key.
        forged = AdapterService(KnowsEveryone("health"), stack.settings).answer(request)
        police = await signed_publisher(connection, stack.settings, "police")
        await police.publish_model(topology.answers, "routine", forged, message_id="forged-2")

    dead = await _dead_letter(stack.settings, topology.answer_queue("routine"))
    assert dead.headers[REASON] == "sender-mismatch"
    assert stack._hubs[0].store.requests_for(request.contact_ref)[0].answered_at is None


async def test_message_signed_with_a_retired_key_is_refused(stack: Stack, tmp_path: Path) -> None:
    # A registry of this test's own, so retiring a key does not touch other tests.
    shutil.copytree(stack.settings.key_dir, tmp_path / "private")
    shutil.copy(stack.settings.keyring, tmp_path / "keyring.json")
    stack.settings = stack.settings.model_copy(
        update={"keyring": tmp_path / "keyring.json", "key_dir": tmp_path / "private"}
    )
    await stack.hub()
    ring = Keyring.load(tmp_path / "keyring.json")
    operator_key = ring.current(OPERATOR, "signing").key_id
    async with await aio_pika.connect(stack.settings.amqp_url) as connection:
        operator = await signed_publisher(connection, stack.settings, OPERATOR)
        # Signed before the retirement (our own signer refuses a retired key afterwards), as
        # a message captured earlier or sent by a process that has not noticed would be.
        contact = make_contact()
        assert operator.signer is not None
        headers = operator.signer.headers("retired-1", contact.avro_name, encode(contact))
        ring.retire(operator_key)
        ring.save()
        await operator.publish(
            stack.topology.contacts,
            "routine",
            encode(contact),
            message_id="retired-1",
            type_=contact.avro_name,
            headers=headers,
            sign=False,
        )
    dead = await _dead_letter(stack.settings, stack.topology.contact_queue("routine"))
    assert dead.headers[REASON] == "retired-key"
    assert dead.headers[KEY_ID] == operator_key


async def test_replayed_answer_has_no_second_effect(stack: Stack) -> None:
    hub = await stack.hub()
    await stack.adapters(["police", "health", "education"])
    watcher = await stack.watcher()
    async with HubClient(stack.settings) as client:
        reply = await client.submit(make_contact())
    assert reply.contact_ref is not None
    async with await aio_pika.connect(stack.settings.amqp_url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(
            stack.topology.request_queue("housing", "routine"), passive=True
        )
        message = await queue.get(timeout=5)
        await message.ack()
        answer = AdapterService(KnowsEveryone("housing"), stack.settings).answer(
            decode(message.body, InformationRequest)
        )
        housing = await signed_publisher(connection, stack.settings, "housing")
        for _ in range(3):  # the same signed message, three times
            await housing.publish_model(
                stack.topology.answers, "routine", answer, message_id=answer.response_id
            )

    packet = await watcher.next()
    assert packet.reason is PacketReason.COMPLETE
    with pytest.raises(TimeoutError):
        await watcher.next(timeout=1.0)
    assert len(hub.store.answers_for(reply.contact_ref)) == 4


async def _mash(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mash",
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def tap(stack: Stack) -> AsyncIterator[list[AbstractIncomingMessage]]:
    """A copy of every message on every exchange of this MASH, as a wire-tap would see."""
    seen: list[AbstractIncomingMessage] = []
    connection = await aio_pika.connect(stack.settings.amqp_url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=0)
    await declare(channel, stack.topology)
    queue = await channel.declare_queue(exclusive=True)
    for spec in stack.topology.queues():
        for exchange, key in spec.bindings:
            await queue.bind(exchange, key)

    async def keep(message: AbstractIncomingMessage) -> None:
        seen.append(message)

    await queue.consume(keep, no_ack=True)
    yield seen
    await connection.close()


async def test_restricted_findings_never_appear_in_clear_and_only_the_restricted_file_reads_them(
    stack: Stack, tap: list[AbstractIncomingMessage], tmp_path: Path
) -> None:
    with capture_logs() as logs:
        hub = await stack.hub()
        await stack.adapter(HoldsRestricted("police"))
        await stack.adapters(["health", "education", "housing"])
        watcher = await stack.watcher()
        async with HubClient(stack.settings) as client:
            reply = await client.submit(make_contact())
        assert reply.contact_ref is not None
        packet = await watcher.next()
        # A copy of the police answer with a broken signature goes to the dead letters too.
        async with await aio_pika.connect(stack.settings.amqp_url) as connection:
            channel = await connection.channel()
            restricted = await channel.declare_queue(stack.topology.restricted_queue, passive=True)
            record_message = await restricted.get(timeout=5)
            await record_message.ack()
            police_answer = next(
                m
                for m in tap
                if m.type == AgencyResponse.avro_name and m.headers["x-mash-sender"] == "police"
            )
            replay = Publisher(connection)
            await replay.publish(
                stack.topology.answers,
                "routine",
                police_answer.body,
                message_id="tampered-1",
                type_=police_answer.type,
                headers={**police_answer.headers, "x-mash-signature": "AAAA"},
                sign=False,
            )
        dead = await _dead_letter(stack.settings, stack.topology.answer_queue("routine"))
        await asyncio.sleep(0.3)  # let the tap catch up
    ref = reply.contact_ref

    # The screening packet says only that restricted information is held, and where.
    assert [(h.agency, h.reference) for h in packet.restricted_held] == [
        ("police", f"RF-{ref}-police")
    ]
    assert all(a.restricted is None for a in packet.answers)
    record = decode(record_message.body, RestrictedRecord)
    assert record.reference == f"RF-{ref}-police"

    # Nowhere in clear: broker traffic, dead letters, the hub's database, logs.
    assert tap, "the tap saw no traffic"
    for message in tap:
        assert CANARY.encode() not in message.body
        assert CANARY not in repr(message.headers)
    assert dead.headers[REASON] == "bad-signature"
    assert CANARY.encode() not in dead.body
    hub.store.connection.execute("PRAGMA wal_checkpoint(FULL)")
    for path in hub.settings.db_path.parent.glob(hub.settings.db_path.name + "*"):
        assert CANARY.encode() not in path.read_bytes()
    assert CANARY not in repr(logs)

    # Only the restricted file's key opens it, from the keeper's own store (as `mash
    # restricted receive` fills it, tests/integration/test_restricted_keeper.py), audited there.
    keeper = tmp_path / "keeper" / "restricted.sqlite3"
    KeeperStore(keeper).add(record, record_message.message_id or "")
    env = {"MASH_DB_PATH": str(hub.settings.db_path), "MASH_RESTRICTED_STORE": str(keeper)}
    code, out, err = await _mash("restricted", "read", ref, env=env)
    assert code == 0, err
    assert CANARY in out
    code, out, err = await _mash("restricted", "log", ref, env=env)
    assert code == 0, err
    assert "restricted-read" in out and CANARY not in out
    code, out, err = await _mash("audit", "show", ref, env=env)
    assert code == 0, err
    for action in ("contact-received", "request-sent", "answer-received", "packet-published"):
        assert action in out
    assert CANARY not in out
    code, out, _ = await _mash("audit", "verify", env=env)
    assert code == 0 and "audit log intact" in out


async def test_audit_verify_names_the_first_altered_entry(stack: Stack) -> None:
    hub = await stack.hub()
    await stack.adapters()
    watcher = await stack.watcher()
    async with HubClient(stack.settings) as client:
        await client.submit(make_contact())
    await watcher.next()
    hub.store.connection.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 3")
    code, _, err = await _mash("audit", "verify", env={"MASH_DB_PATH": str(hub.settings.db_path)})
    assert code == 1
    assert err.startswith("error: audit entry 3 its content was altered")
