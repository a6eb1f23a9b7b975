"""The hub, the four adapters and the screening side on a three-node RabbitMQ cluster of the
test's own (faults.rabbit_cluster): a node SIGKILLed under load, and a node stopped and started
again, lose no contact and double no packet. Every process is given all three nodes
(MASH_AMQP_URL, comma-separated) and every quorum queue has a replica on each.

Marked ``faults``: `make test` runs it; `make quick-test` leaves it out (about a minute, most
of it forming the cluster).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path

import pytest

from broker.connection import connect
from broker.publisher import Publisher
from broker.settings import BrokerSettings
from broker.topology import lane_for
from faults.rabbit_cluster import RabbitCluster
from faults.rabbit_node import rabbitmq_available
from hub.client import HubClient
from hub.settings import HubSettings
from mash.errors import MashError
from schemas.enums import Brag, PacketReason
from schemas.models import Contact
from tests.support import Keys, Stack, make_contact

pytestmark = pytest.mark.faults

CONTACTS = 40


@pytest.fixture(scope="module")
def cluster() -> Iterator[RabbitCluster]:
    unavailable = rabbitmq_available()
    if unavailable:
        pytest.skip(f"cannot start RabbitMQ nodes of our own: {unavailable}")
    with RabbitCluster() as running:
        yield running


@pytest.fixture
async def on_cluster(cluster: RabbitCluster, keys: Keys, tmp_path: Path) -> AsyncIterator[Stack]:
    settings = HubSettings(
        amqp_url=cluster.amqp_urls,
        quorum_group_size=3,
        prefix=f"cl-{uuid.uuid4().hex[:8]}",
        db_path=tmp_path / "hub.sqlite3",
        keyring=keys.keyring,
        key_dir=keys.key_dir,
        # A node's death is found by the TCP connection dropping at once (SIGKILL on this
        # machine), well inside the submit timeout below.
        connect_timeout=5.0,
    )
    stack = Stack(settings)
    yield stack
    await stack.close()


async def _submit(settings: HubSettings, contact: Contact) -> str:
    """Submit until the hub answers, as a referrer's system would: a reply lost in a failover
    is asked again under the same contact id, which the hub answers with the same reference
    (no second contact)."""
    for _ in range(12):
        try:
            async with HubClient(settings) as client:
                reply = await client.submit(contact, timeout=8)
        except (MashError, OSError, TimeoutError):
            await asyncio.sleep(0.5)
            continue
        assert reply.ok and reply.contact_ref, reply.error
        return reply.contact_ref
    raise AssertionError(f"the hub never answered for {contact.contact_id}")


async def _run_under(
    stack: Stack, fault: Callable[[], Coroutine[None, None, None]], half: int
) -> None:
    """Submit CONTACTS contacts, setting ``fault`` going (in the background) after the first
    ``half``; then every contact has exactly one complete packet and nothing else arrives."""
    await stack.hub()
    await stack.adapters()
    watcher = await stack.watcher()
    contacts = [make_contact(Brag.RED if n % 4 == 0 else Brag.AMBER) for n in range(CONTACTS)]
    refs: dict[str, str] = {}
    running: asyncio.Task[None] | None = None
    for n, contact in enumerate(contacts):
        if n == half:
            running = asyncio.create_task(fault())
        refs[contact.contact_id] = await _submit(stack.settings, contact)
    assert running is not None
    await running

    assert len(set(refs.values())) == CONTACTS  # one reference per contact, none doubled
    packets: dict[str, list[tuple[int, PacketReason]]] = {}
    while sum(1 for got in packets.values() if got) < CONTACTS:
        packet = await watcher.next(timeout=60)
        packets.setdefault(packet.contact_ref, []).append((packet.version, packet.reason))
    # A redelivery after a failover is the same packet again (same version), never a second
    # one; settle briefly for anything that should not come.
    with pytest.raises(TimeoutError):
        extra = await watcher.next(timeout=3)
        packets.setdefault(extra.contact_ref, []).append((extra.version, extra.reason))
    assert set(packets) == set(refs.values())
    for ref, got in packets.items():
        assert {version for version, _ in got} == {1}, ref
        assert {reason for _, reason in got} == {PacketReason.COMPLETE}, ref


async def test_a_node_killed_under_load_loses_no_contact_and_doubles_no_packet(
    cluster: RabbitCluster, on_cluster: Stack
) -> None:
    async def kill_the_leader() -> None:
        queue = on_cluster.topology.contact_queue(lane_for(Brag.AMBER))
        leader = cluster.leader_of("/", queue)
        await asyncio.to_thread(leader.kill)
        assert leader.name not in cluster.running()

    try:
        await _run_under(on_cluster, kill_the_leader, CONTACTS // 2)
    finally:
        for node in cluster.nodes:
            if node.pid() is None or node.name not in cluster.running():
                await asyncio.to_thread(node.start_again)
    assert len(cluster.running()) == 3


async def test_a_node_stopped_and_started_again_under_load_loses_nothing(
    cluster: RabbitCluster, on_cluster: Stack
) -> None:
    node = cluster.nodes[0]  # the node every process connects to first

    async def restart() -> None:
        await asyncio.to_thread(node.restart)

    await _run_under(on_cluster, restart, CONTACTS // 3)
    assert len(cluster.running()) == 3


async def test_a_publisher_whose_queue_leader_dies_mid_stream_carries_on_confirmed(
    cluster: RabbitCluster,
) -> None:
    # Found by measurement: a channel restored after its node died kept being nacked by the
    # surviving nodes for minutes (its quorum-queue state pointed at the dead leader), while
    # a new channel on the same connection was accepted at once.
    settings = BrokerSettings(amqp_url=cluster.amqp_urls, prefix="cl-pub", connect_timeout=5.0)
    queue = f"cl-pub-{uuid.uuid4().hex[:6]}"
    connection = await connect(settings, "test-publisher", retry=True)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(
            queue,
            durable=True,
            arguments={"x-queue-type": "quorum", "x-quorum-initial-group-size": 3},
        )
        publisher = Publisher(connection, attempts=8)  # about 13 s of retries in all
        confirmed: list[str] = []
        streaming = True

        async def stream() -> None:
            while streaming:
                message_id = str(len(confirmed))
                await publisher.publish("", queue, b"x", message_id=message_id)
                confirmed.append(message_id)

        load = asyncio.create_task(stream())
        await asyncio.sleep(2)  # publishing flat out when the leader dies
        leader = await asyncio.to_thread(cluster.leader_of, "/", queue)
        await asyncio.to_thread(leader.kill)
        try:
            before = len(confirmed)
            await asyncio.sleep(6)
            streaming = False
            await load  # raises PublishFailed if the nacks never stop
            assert len(confirmed) > before + 100  # publishing carried on after the death
        finally:
            load.cancel()
            await asyncio.to_thread(leader.start_again)
        # Every confirmed message is in the queue on the surviving nodes.
        held: set[str] = set()
        reader = await connection.channel()
        await reader.set_qos(prefetch_count=500)
        async with (await reader.get_queue(queue)).iterator(timeout=10) as messages:
            async for message in messages:
                held.add(str(message.message_id))
                await message.ack()
                if held >= set(confirmed):
                    break
        assert set(confirmed) - held == set()
        await reader.queue_delete(queue)
