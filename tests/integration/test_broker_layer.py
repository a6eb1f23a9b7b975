"""The broker layer on the real RabbitMQ: a poison message stops at the delivery limit, a
handler's Rejected is dead-lettered at once with its reason, an unroutable publish is an error,
and consumers come back after their connection is cut."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest
from yarl import URL

from broker.connection import BrokerRefused, NodeRotatingConnection, connect
from broker.consumer import DETAIL, REASON, Consumer
from broker.publisher import Publisher, PublishFailed
from broker.settings import BrokerSettings
from broker.topology import Topology, declare, delete
from faults.connections import close_connections
from faults.rabbit_node import free_port
from hub.client import HubClient
from mash.errors import Rejected
from schemas.enums import PacketReason
from tests.support import Stack, make_contact

pytestmark = pytest.mark.broker


@pytest.fixture
async def settings() -> AsyncIterator[BrokerSettings]:
    settings = BrokerSettings(prefix=f"test-{uuid.uuid4().hex[:10]}", delivery_limit=2)
    yield settings
    async with await aio_pika.connect(settings.amqp_url) as connection:
        await delete(connection, Topology(settings))


async def test_poison_message_is_dead_lettered_after_the_delivery_limit(
    settings: BrokerSettings,
) -> None:
    topology = Topology(settings)
    connection = await connect(settings, "test-poison")
    async with connection:
        channel = await connection.channel()
        await declare(channel, topology)
        publisher = Publisher(connection)
        attempts = 0

        async def always_fails(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal attempts
            attempts += 1
            raise RuntimeError("handler bug")

        consumer = Consumer(
            await connection.channel(),
            publisher,
            topology,
            topology.command_queue,
            always_fails,
            component="test",
            retry_delay=0.05,
        )
        await consumer.start()
        await publisher.publish(topology.commands, "command", b"poison", message_id="p-1")

        dead = await channel.get_queue(topology.command_queue + ".dead", ensure=False)
        message = None
        for _ in range(100):
            message = await dead.get(fail=False)
            if message is not None:
                break
            await asyncio.sleep(0.1)
        assert message is not None
        await message.ack()
        assert message.message_id == "p-1"
        assert message.headers["x-first-death-reason"] == "delivery_limit"
        assert attempts == settings.delivery_limit + 1


class ContactTooOld(Rejected):
    """A domain refusal as a handler would define one: a Rejected with its own reason."""


class LooksLikeARefusal(Exception):
    """Carries a ``reason`` but is no Rejected: the consumer must not take it for one."""

    reason = "duck-typed"
    detail = ""


async def test_the_consumer_dead_letters_a_rejected_at_once_with_its_reason(
    settings: BrokerSettings,
) -> None:
    topology = Topology(settings)
    connection = await connect(settings, "test-rejected")
    async with connection:
        channel = await connection.channel()
        await declare(channel, topology)
        publisher = Publisher(connection)
        attempts: dict[str, int] = {}

        async def refuses(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            key = message.message_id or ""
            attempts[key] = attempts.get(key, 0) + 1
            if key == "old-1":
                raise ContactTooOld("contact-too-old", "received 2019-01-01")
            raise LooksLikeARefusal()

        consumer = Consumer(
            await connection.channel(),
            publisher,
            topology,
            topology.command_queue,
            refuses,
            component="test",
            retry_delay=0.05,
        )
        await consumer.start()
        await publisher.publish(topology.commands, "command", b"old", message_id="old-1")
        await publisher.publish(topology.commands, "command", b"duck", message_id="duck-1")

        dead = await channel.get_queue(topology.command_queue + ".dead", ensure=False)
        letters: dict[str, aio_pika.abc.AbstractIncomingMessage] = {}
        for _ in range(100):
            message = await dead.get(fail=False)
            if message is not None:
                await message.ack()
                letters[message.message_id or ""] = message
            if len(letters) == 2:
                break
            await asyncio.sleep(0.1)
        rejected, duck = letters["old-1"], letters["duck-1"]
        assert rejected.headers[REASON] == "contact-too-old"
        assert rejected.headers[DETAIL] == "received 2019-01-01"
        assert attempts["old-1"] == 1  # dead-lettered at once, never retried
        # Anything else is retried until the queue's delivery limit stops it, reason-less.
        assert REASON not in duck.headers
        assert duck.headers["x-first-death-reason"] == "delivery_limit"
        assert attempts["duck-1"] == settings.delivery_limit + 1


async def test_publishing_to_a_key_no_queue_is_bound_to_is_an_error(
    settings: BrokerSettings,
) -> None:
    topology = Topology(settings)
    connection = await connect(settings, "test-unroutable")
    async with connection:
        await declare(await connection.channel(), topology)
        publisher = Publisher(connection, attempts=2)
        with pytest.raises(PublishFailed, match="nobody"):
            await publisher.publish(topology.requests, "nobody.urgent", b"x", message_id="u-1")


async def test_hub_and_adapters_recover_after_their_connections_are_closed(
    stack: Stack,
) -> None:
    await stack.hub()
    await stack.adapters()
    watcher = await stack.watcher()

    closed = await asyncio.to_thread(
        close_connections, stack.settings.prefix, names=("mash-hub", "mash-adapter-police")
    )
    assert closed == 2
    await asyncio.sleep(3)  # the robust connections reconnect on their own

    async with HubClient(stack.settings) as client:
        reply = await client.submit(make_contact())
    packet = await watcher.next(timeout=30)
    assert packet.contact_ref == reply.contact_ref
    assert packet.reason is PacketReason.COMPLETE


async def test_a_client_given_several_nodes_connects_to_one_that_answers(
    settings: BrokerSettings,
) -> None:
    live = URL(settings.amqp_url)
    dead = live.with_port(free_port())  # nobody listens there: a node that is down
    nodes = BrokerSettings(amqp_url=f"{dead},{live}", prefix=settings.prefix)

    connection = await connect(nodes, "test-nodes", quiet=True)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(exclusive=True)  # it works, on the live node
        assert isinstance(connection, NodeRotatingConnection)
        assert connection.url.port == live.port


async def test_a_client_says_every_node_it_tried_when_none_answers(
    settings: BrokerSettings,
) -> None:
    live = URL(settings.amqp_url)
    ports = sorted({free_port(), free_port()})
    nodes = BrokerSettings(
        amqp_url=",".join(str(live.with_port(port)) for port in ports), prefix=settings.prefix
    )

    with pytest.raises(BrokerRefused) as refused:
        await connect(nodes, "test-nodes", quiet=True)

    assert all(f":{port}" in str(refused.value) for port in ports)
    assert "any of" in str(refused.value) and "guest" not in str(refused.value)


async def test_a_connection_stopped_mid_attempt_leaves_no_task_behind() -> None:
    # Ctrl-C during a command's connect: aio-pika's own retry task swallows cancellation, so
    # a connection left unclosed kept the event loop (and `mash status --watch`) from ending.
    from tests.integration.test_metrics_and_health import SilentBroker

    async with SilentBroker() as url:
        settings = BrokerSettings(amqp_url=url, prefix="cancel", connect_timeout=10)
        before = asyncio.all_tasks()
        attempt = asyncio.create_task(connect(settings, "test-cancel", quiet=True))
        await asyncio.sleep(0.5)  # inside the handshake the silent broker never answers
        attempt.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(attempt), 5)  # it ends, and promptly
        await asyncio.sleep(0.2)

        left = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()]
        assert [t.get_coro() for t in left if not t.done()] == []
