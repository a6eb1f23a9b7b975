"""Queue figures by passive declare on the machine's broker, which has no management plugin.
(The management API's figures are read back through ``mash status`` in test_status.py.)"""

from __future__ import annotations

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

from broker.settings import BrokerSettings
from broker.stats import passive_figures, queue_figures
from broker.topology import Topology, declare

pytestmark = pytest.mark.broker


async def _topology_with_three_waiting(settings: BrokerSettings) -> Topology:
    topology = Topology(settings)
    async with await aio_pika.connect(settings.amqp_url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        await declare(channel, topology)
        requests = await channel.get_exchange(topology.requests)
        for n in range(3):
            await requests.publish(aio_pika.Message(b"x", message_id=f"m-{n}"), "police.routine")
    return topology


async def _ack(message: AbstractIncomingMessage) -> None:
    await message.ack()


async def test_passive_declares_give_depth_and_consumers_and_name_missing_queues(
    hub_settings: BrokerSettings,
) -> None:
    topology = await _topology_with_three_waiting(hub_settings)
    police = topology.request_queue("police", "routine")
    async with await aio_pika.connect(hub_settings.amqp_url) as connection:
        consumer_channel = await connection.channel()
        queue = await consumer_channel.get_queue(topology.event_queue)
        await queue.consume(_ack)
        figures = await passive_figures(connection, [police, topology.event_queue, "no-such-q"])

    assert [(f.name, f.exists, f.messages) for f in figures] == [
        (police, True, 3),
        (topology.event_queue, True, 0),
        ("no-such-q", False, 0),
    ]
    assert figures[1].consumers == 1
    assert figures[0].in_rate is None


async def test_without_the_management_plugin_figures_fall_back_to_passive_declares(
    hub_settings: BrokerSettings,
) -> None:
    topology = await _topology_with_three_waiting(hub_settings)
    police = topology.request_queue("police", "routine")
    async with await aio_pika.connect(hub_settings.amqp_url) as connection:
        report = await queue_figures(hub_settings, connection, [police])

    assert report.source == "passive"
    assert "management API not available at http://127.0.0.1:15672" in report.note
    assert report.by_name()[police].messages == 3
