"""Commands and replies attacked from outside, on the real broker: a captured re-rating
replayed, a stale one delivered late, one sent by an agency's broker user, a contact or
command asking to be answered into the restricted file's queue, and an agency backdating its
answer. Each refusal is dead-lettered with its reason and audited; none has an effect."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage
from yarl import URL

from adapters.kit.service import AdapterService
from broker.consumer import DETAIL, REASON
from broker.credentials import load_credentials
from broker.identities import permissions_for, user_name
from broker.publisher import Publisher, PublishRefused
from broker.signing import OPERATOR
from broker.topology import DIRECT_REPLY_TO, Topology, declare
from hub import audit
from hub.client import HubClient
from hub.policy import BragPolicy, Window
from hub.service import HubService
from hub.settings import HubSettings
from schemas.codec import encode
from schemas.enums import Brag, CommandAction, PacketReason
from schemas.models import ContactCommand
from tests.ops_support import cli_env, mash_cli
from tests.support import KnowsEveryone, Stack, make_contact, signed_publisher

pytestmark = pytest.mark.broker

SHORT_BLUE = BragPolicy(blue=Window.parse("1s"), reminder_fractions=())


async def dead_letter(
    settings: HubSettings, queue: str, timeout: float = 10.0
) -> AbstractIncomingMessage:
    async with await aio_pika.connect(settings.amqp_url) as connection:
        channel = await connection.channel()
        dead = await channel.declare_queue(queue + ".dead", passive=True)
        for _ in range(int(timeout / 0.05)):
            message = await dead.get(fail=False)
            if message is not None:
                await message.ack()
                return message
            await asyncio.sleep(0.05)
    raise AssertionError(f"nothing dead-lettered from {queue}")


def rerate(ref: str, brag: Brag, issued_at: datetime) -> ContactCommand:
    return ContactCommand(
        command_id=str(uuid.uuid4()),
        issued_at=issued_at,
        action=CommandAction.RERATE,
        contact_ref=ref,
        brag=brag,
    )


async def send_command(
    settings: HubSettings, command: ContactCommand, *, reply_to: str | None = None
) -> None:
    """A command correctly signed by the operator's key, published as guest."""
    async with await aio_pika.connect(settings.amqp_url) as connection:
        operator = await signed_publisher(connection, settings, OPERATOR)
        await operator.publish(
            Topology(settings).commands,
            "command",
            encode(command),
            message_id=command.command_id,
            type_=command.avro_name,
            reply_to=reply_to,
        )


def refusals(hub: HubService, action: str) -> list[audit.AuditEntry]:
    return [e for e in audit.entries(hub.store.db) if e.action == action]


@pytest.fixture
async def commands_tap(stack: Stack) -> AsyncIterator[list[AbstractIncomingMessage]]:
    """A copy of every command on the commands exchange, as someone on the wire would see."""
    seen: list[AbstractIncomingMessage] = []
    connection = await aio_pika.connect(stack.settings.amqp_url)
    channel = await connection.channel()
    await declare(channel, stack.topology)
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(stack.topology.commands, "command")

    async def keep(message: AbstractIncomingMessage) -> None:
        seen.append(message)

    await queue.consume(keep, no_ack=True)
    yield seen
    await connection.close()


async def test_a_captured_rerating_replayed_later_is_dead_lettered_and_changes_nothing(
    stack: Stack, commands_tap: list[AbstractIncomingMessage]
) -> None:
    hub = await stack.hub()
    async with HubClient(stack.settings) as client:
        submitted = await client.submit(make_contact(Brag.AMBER, agencies=["police"]))
        ref = submitted.contact_ref
        assert ref is not None
        # "Amber" on an Amber contact changes nothing: captured off the wire all the same.
        unchanged = await client.rerate(ref, Brag.AMBER)
        assert unchanged.ok and unchanged.brag is Brag.AMBER
        captured = commands_tap[-1]
        red = await client.rerate(ref, Brag.RED)
        assert red.ok and red.brag is Brag.RED

    # The same signed message, replayed byte for byte, would turn the Red contact back.
    async with await aio_pika.connect(stack.settings.amqp_url) as connection:
        await Publisher(connection).publish(
            stack.topology.commands,
            "command",
            captured.body,
            message_id=captured.message_id or "",
            type_=captured.type,
            headers=captured.headers,
            sign=False,
        )
    dead = await dead_letter(stack.settings, stack.topology.command_queue)

    assert dead.message_id == captured.message_id
    assert dead.headers[REASON] == "replayed-command"
    row = hub.store.contact(ref)
    assert row is not None and row.brag is Brag.RED
    assert [brag for _, brag, _ in hub.store.rating_changes(ref)] == [Brag.AMBER, Brag.RED]
    [refused] = refusals(hub, "command-refused")
    assert refused.detail["reason"] == "replayed-command"
    assert refused.contact_ref == ref


async def test_a_command_issued_too_long_ago_is_refused_as_stale(stack: Stack) -> None:
    hub = await stack.hub()
    async with HubClient(stack.settings) as client:
        submitted = await client.submit(make_contact(Brag.AMBER, agencies=["police"]))
    ref = submitted.contact_ref
    assert ref is not None
    # Signed by the operator and never delivered: held back by whoever captured it.
    issued = datetime.now(UTC) - timedelta(seconds=stack.settings.command_max_age_s + 60)
    old = rerate(ref, Brag.GREEN, issued)

    await send_command(stack.settings, old)
    dead = await dead_letter(stack.settings, stack.topology.command_queue)

    assert dead.message_id == old.command_id
    assert dead.headers[REASON] == "stale-command"
    row = hub.store.contact(ref)
    assert row is not None and row.brag is Brag.AMBER
    [refused] = refusals(hub, "command-refused")
    assert refused.detail["reason"] == "stale-command"
    assert hub.store.seen(old.command_id)  # handled, though refused: never applied later


async def test_a_command_issued_before_the_contacts_last_change_is_refused(stack: Stack) -> None:
    hub = await stack.hub()
    async with HubClient(stack.settings) as client:
        submitted = await client.submit(make_contact(Brag.AMBER, agencies=["police"]))
        ref = submitted.contact_ref
        assert ref is not None
        earlier = rerate(ref, Brag.GREEN, datetime.now(UTC))  # issued, but held back
        await asyncio.sleep(0.05)
        assert (await client.rerate(ref, Brag.RED)).ok

    await send_command(stack.settings, earlier)
    dead = await dead_letter(stack.settings, stack.topology.command_queue)

    assert dead.headers[REASON] == "stale-command"
    assert "before the contact's last change" in str(dead.headers[DETAIL])
    row = hub.store.contact(ref)
    assert row is not None and row.brag is Brag.RED


async def test_a_command_for_a_reference_not_yet_issued_does_not_apply_once_it_is(
    stack: Stack,
) -> None:
    hub = await stack.hub()
    ahead = rerate(f"MASH-{datetime.now(UTC).year}-000001", Brag.GREEN, datetime.now(UTC))
    await send_command(stack.settings, ahead)
    first = await dead_letter(stack.settings, stack.topology.command_queue)
    assert first.headers[REASON] == "unknown-reference"
    async with HubClient(stack.settings) as client:
        submitted = await client.submit(make_contact(Brag.AMBER, agencies=["police"]))
    assert submitted.contact_ref == ahead.contact_ref

    await send_command(stack.settings, ahead)  # the same message, now that the reference exists
    again = await dead_letter(stack.settings, stack.topology.command_queue)

    assert again.headers[REASON] == "replayed-command"
    row = hub.store.contact(submitted.contact_ref)
    assert row is not None and row.brag is Brag.AMBER


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
async def police_user(stack: Stack) -> AsyncIterator[HubSettings]:
    """The police adapter's broker user, with exactly the permissions provisioning gives it."""
    user = user_name(stack.settings, "police")
    password = uuid.uuid4().hex
    vhost = URL(stack.settings.amqp_url).path.removeprefix("/") or "/"
    granted = permissions_for(stack.topology, "police")
    rabbitmqctl("add_user", user, password)
    try:
        rabbitmqctl(
            "set_permissions", "-p", vhost, user, granted.configure, granted.write, granted.read
        )
        url = URL(stack.settings.amqp_url).with_user(user).with_password(password)
        yield stack.settings.model_copy(update={"amqp_url": str(url)})
    finally:
        rabbitmqctl("delete_user", user)


async def test_a_command_from_an_agencys_broker_user_is_refused(
    stack: Stack, police_user: HubSettings
) -> None:
    hub = await stack.hub()
    async with HubClient(stack.settings) as client:
        submitted = await client.submit(make_contact(Brag.RED, agencies=["police"]))
    ref = submitted.contact_ref
    assert ref is not None
    # Police holds a stolen copy of the operator's signing key and tries to downgrade a case.
    signer = load_credentials(stack.settings, OPERATOR).signer
    downgrade = rerate(ref, Brag.GREEN, datetime.now(UTC))
    body = encode(downgrade)

    async def publish_as_police() -> None:
        async with await aio_pika.connect(police_user.amqp_url) as connection:
            await Publisher(connection, signer=signer).publish(
                stack.topology.commands,
                "command",
                body,
                message_id=downgrade.command_id,
                type_=downgrade.avro_name,
            )

    # The broker refuses it: an agency may not write to the commands exchange.
    with pytest.raises(PublishRefused, match="ACCESS_REFUSED"):
        await publish_as_police()

    # A broker granted more by mistake is not enough: the hub checks the sender's login.
    vhost = URL(stack.settings.amqp_url).path.removeprefix("/") or "/"
    granted = permissions_for(stack.topology, "police")
    widened = f"{granted.write[:-2]}|{re.escape(stack.topology.commands)})$"
    user = user_name(stack.settings, "police")
    rabbitmqctl("set_permissions", "-p", vhost, user, granted.configure, widened, granted.read)
    await publish_as_police()
    dead = await dead_letter(stack.settings, stack.topology.command_queue)

    assert dead.headers[REASON] == "broker-user-not-allowed"
    assert dead.headers["x-mash-broker-user"] == user_name(stack.settings, "police")
    row = hub.store.contact(ref)
    assert row is not None and row.brag is Brag.RED
    [refused] = refusals(hub, "command-refused")
    assert refused.detail["reason"] == "broker-user-not-allowed"


async def test_a_contact_asking_for_its_reply_in_the_restricted_file_gets_nothing_there(
    stack: Stack,
) -> None:
    hub = await stack.hub()
    topology = stack.topology
    contact = make_contact()
    async with await aio_pika.connect(stack.settings.amqp_url) as connection:
        operator = await signed_publisher(connection, stack.settings, OPERATOR)
        await operator.publish_model(
            topology.contacts,
            "routine",
            contact,
            message_id=contact.contact_id,
            reply_to=topology.restricted_queue,
        )
    dead = await dead_letter(stack.settings, topology.contact_queue("routine"))
    assert dead.headers[REASON] == "reply-to-not-allowed"

    async with HubClient(stack.settings) as client:
        submitted = await client.submit(make_contact(Brag.AMBER, agencies=["police"]))
        command = rerate(str(submitted.contact_ref), Brag.RED, datetime.now(UTC))
    await send_command(stack.settings, command, reply_to=topology.restricted_queue)
    dead = await dead_letter(stack.settings, topology.command_queue)
    assert dead.headers[REASON] == "reply-to-not-allowed"

    async with await aio_pika.connect(stack.settings.amqp_url) as connection:
        channel = await connection.channel()
        restricted = await channel.declare_queue(topology.restricted_queue, passive=True)
        assert restricted.declaration_result.message_count == 0
    assert hub.store.ref_for_contact_id(contact.contact_id) is None  # refused whole
    row = hub.store.contact(str(submitted.contact_ref))
    assert row is not None and row.brag is Brag.AMBER
    assert [e.detail["reason"] for e in refusals(hub, "contact-refused")] == [
        "reply-to-not-allowed"
    ]


async def test_a_contact_asking_for_direct_reply_to_is_refused(stack: Stack) -> None:
    # Direct reply-to is reached only through the default exchange, which would open every
    # queue to the hub's broker user: the hub has no such permission, and says so.
    await stack.hub()
    contact = make_contact(agencies=["police"])
    body = encode(contact)
    signer = load_credentials(stack.settings, OPERATOR).signer
    async with await aio_pika.connect(stack.settings.amqp_url) as connection:
        # Consume the pseudo-queue, and publish on the same channel, as a client of it would.
        channel = await connection.channel()
        pseudo = await channel.get_queue(DIRECT_REPLY_TO, ensure=False)
        replies: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        await pseudo.consume(replies.put, no_ack=True)
        contacts = await channel.get_exchange(stack.topology.contacts, ensure=False)
        await contacts.publish(
            aio_pika.Message(
                body,
                message_id=contact.contact_id,
                type=contact.avro_name,
                headers=dict(signer.headers(contact.contact_id, contact.avro_name, body).items()),
                reply_to=DIRECT_REPLY_TO,
                user_id="guest",
            ),
            routing_key="routine",
        )
        dead = await dead_letter(stack.settings, stack.topology.contact_queue("routine"))
    assert dead.headers[REASON] == "reply-to-not-allowed"
    assert replies.empty()


async def test_a_backdated_answer_after_the_deadline_is_counted_late(stack: Stack) -> None:
    hub = await stack.hub(SHORT_BLUE)
    watcher = await stack.watcher()
    async with HubClient(stack.settings) as client:
        submitted = await client.submit(make_contact(Brag.BLUE, agencies=["housing"]))
    ref = submitted.contact_ref
    assert ref is not None
    partial = await watcher.next()
    assert partial.reason is PacketReason.DEADLINE
    row = hub.store.contact(ref)
    assert row is not None

    # Housing answers after the deadline and says it answered moments after receipt.
    backdated = row.received_at + timedelta(seconds=0.1)
    housing = AdapterService(KnowsEveryone("housing"), stack.settings, clock=lambda: backdated)
    await housing.start()
    stack._adapters.append(housing)  # stopped with the rest
    amendment = await watcher.next()

    assert amendment.reason is PacketReason.AMENDMENT
    assert amendment.late_agencies == ["housing"]
    [answer] = amendment.answers
    assert answer.responded_at == backdated  # kept, for information
    code, out, err = await mash_cli("report", "--exchanges", "--json", env=cli_env(stack.settings))
    assert code == 0, err
    assert [e["status"] for e in json.loads(out)] == ["late"]
