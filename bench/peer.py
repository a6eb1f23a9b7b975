"""The peer flow: the same scatter-gather written with FastStream, as a team might write it
instead of mash-hub.

Written with FastStream's own public API and defaults: a :class:`RabbitBroker`, one
``@broker.subscriber`` per queue (durable quorum queues, declared by FastStream), typed
handlers, ``broker.publish(..., persist=True)`` on the broker's default channel, which has
publisher confirms on, and the default acknowledgement policy (ack once the handler returns,
reject if it raises). The one thing tuned is the prefetch, set on the default channel to
the raw flow's (FastStream's default is none, i.e. unlimited). FastStream's own logging
stays at its default level.

Like the raw flow it keeps each contact's answer count in memory: no database, schema,
signature, encryption or audit.

Processes: ``python -m bench.peer gatherer`` and ``python -m bench.peer responder AGENCY``,
configured like :mod:`bench.raw`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from faststream.rabbit import Channel, QueueType, RabbitBroker, RabbitMessage, RabbitQueue

from bench.raw import RawConfig, RawFlow

__all__ = ["PeerFlow", "build_gatherer", "build_responder"]


def _queue(name: str) -> RabbitQueue:
    return RabbitQueue(name, queue_type=QueueType.QUORUM, durable=True)


def _broker(config: RawConfig) -> RabbitBroker:
    return RabbitBroker(config.amqp_url, default_channel=Channel(prefetch_count=config.prefetch))


def build_gatherer(config: RawConfig) -> RabbitBroker:
    broker = _broker(config)
    request_body = b"r" * config.request_bytes
    packet_body = b"p" * config.packet_bytes
    answered: dict[str, int] = {}
    everyone = len(config.agencies)

    @broker.subscriber(_queue(config.contacts))
    async def on_contact(body: bytes, message: RabbitMessage) -> None:
        key = message.correlation_id
        answered[key] = 0
        await asyncio.gather(
            *(
                broker.publish(
                    request_body, queue=config.requests(agency), persist=True, correlation_id=key
                )
                for agency in config.agencies
            )
        )

    @broker.subscriber(_queue(config.answers))
    async def on_answer(body: bytes, message: RabbitMessage) -> None:
        key = message.correlation_id
        count = answered.get(key, 0) + 1
        if count == everyone:
            answered.pop(key, None)
            await broker.publish(
                packet_body, queue=config.packets, persist=True, correlation_id=key
            )
        else:
            answered[key] = count

    return broker


def build_responder(config: RawConfig, agency: str) -> RabbitBroker:
    broker = _broker(config)
    answer_body = b"a" * config.answer_bytes

    @broker.subscriber(_queue(config.requests(agency)))
    async def on_request(body: bytes, message: RabbitMessage) -> None:
        await broker.publish(
            answer_body, queue=config.answers, persist=True, correlation_id=message.correlation_id
        )

    return broker


async def _serve(broker: RabbitBroker) -> None:
    async with broker:
        await broker.start()
        await asyncio.Future()


class PeerFlow(RawFlow):
    """Driven exactly as the raw flow (same queues, same driver), served by FastStream."""

    name = "peer"
    module = "bench.peer"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peer")
    parser.add_argument("role", choices=["gatherer", "responder"])
    parser.add_argument("agency", nargs="?")
    args = parser.parse_args()
    config = RawConfig.from_env()
    broker = (
        build_gatherer(config) if args.role == "gatherer" else build_responder(config, args.agency)
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(broker))


if __name__ == "__main__":
    main()
