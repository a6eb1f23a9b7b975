"""The raw flow: the contact cycle directly on aio-pika, with no hub logic, written as well as
this client allows. It is the limit of this client and broker for the same messages.

- durable quorum queues (as the hub's), persistent messages of the hub's sizes;
- every publish confirmed, confirms pipelined: a contact's four requests are in flight at
  once, and each handler runs as its own task so many contacts are in flight;
- a prefetch large enough to keep every process busy;
- the gatherer counts answers per contact in memory and acks once its effect is confirmed:
  there is no database, no schema, no signature, no encryption, no audit.

Processes: ``python -m bench.raw gatherer`` and ``python -m bench.raw responder AGENCY``,
configured by the ``BENCH_CONFIG`` environment variable (JSON of :class:`RawConfig`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from bench.driver import Flow
from bench.processes import spawn, wait_for_consumers

if TYPE_CHECKING:  # the processes import this module: keep them light
    from bench.workload import Sizes

__all__ = ["RawConfig", "RawFlow"]

QUORUM = {"x-queue-type": "quorum"}


@dataclass(frozen=True)
class RawConfig:
    amqp_url: str
    prefix: str
    agencies: tuple[str, ...]
    request_bytes: int
    answer_bytes: int
    packet_bytes: int
    prefetch: int = 256

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RawConfig:
        data = json.loads((environ or os.environ)["BENCH_CONFIG"])
        data["agencies"] = tuple(data["agencies"])
        return cls(**data)

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    # Names: the default exchange routes by queue name, the cheapest route there is.
    @property
    def contacts(self) -> str:
        return f"{self.prefix}.contacts"

    def requests(self, agency: str) -> str:
        return f"{self.prefix}.requests.{agency}"

    @property
    def answers(self) -> str:
        return f"{self.prefix}.answers"

    @property
    def packets(self) -> str:
        return f"{self.prefix}.packets"

    def queues(self) -> list[str]:
        return [
            self.contacts,
            *(self.requests(a) for a in self.agencies),
            self.answers,
            self.packets,
        ]


def _message(body: bytes, key: str) -> aio_pika.Message:
    return aio_pika.Message(
        body,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        correlation_id=key,
        message_id=str(uuid.uuid4()),
    )


async def _consume(
    connection: aio_pika.abc.AbstractConnection,
    queue: str,
    prefetch: int,
    handler: Callable[[AbstractIncomingMessage], Awaitable[None]],
) -> AbstractChannel:
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=prefetch)
    declared = await channel.declare_queue(queue, passive=True)
    await declared.consume(handler, no_ack=False)
    return channel


async def run_gatherer(config: RawConfig) -> None:
    connection = await aio_pika.connect_robust(config.amqp_url)
    publish = (await connection.channel(publisher_confirms=True)).default_exchange
    request_body = b"r" * config.request_bytes
    packet_body = b"p" * config.packet_bytes
    answered: dict[str, int] = {}
    everyone = len(config.agencies)

    async def on_contact(message: AbstractIncomingMessage) -> None:
        key = message.correlation_id or ""
        answered[key] = 0
        await asyncio.gather(
            *(
                publish.publish(_message(request_body, key), config.requests(agency))
                for agency in config.agencies
            )
        )
        await message.ack()

    async def on_answer(message: AbstractIncomingMessage) -> None:
        key = message.correlation_id or ""
        count = answered.get(key, 0) + 1
        if count == everyone:
            answered.pop(key, None)
            await publish.publish(_message(packet_body, key), config.packets)
        else:
            answered[key] = count
        await message.ack()

    await _consume(connection, config.contacts, config.prefetch, on_contact)
    await _consume(connection, config.answers, config.prefetch, on_answer)
    await asyncio.Future()


async def run_responder(config: RawConfig, agency: str) -> None:
    connection = await aio_pika.connect_robust(config.amqp_url)
    publish = (await connection.channel(publisher_confirms=True)).default_exchange
    answer_body = b"a" * config.answer_bytes

    async def on_request(message: AbstractIncomingMessage) -> None:
        await publish.publish(_message(answer_body, message.correlation_id or ""), config.answers)
        await message.ack()

    await _consume(connection, config.requests(agency), config.prefetch, on_request)
    await asyncio.Future()


class RawFlow(Flow):
    name = "raw"
    module = "bench.raw"

    def __init__(self, amqp_url: str, prefix: str, workdir: Path, sizes: Sizes) -> None:
        super().__init__(amqp_url, prefix, workdir)
        self.sizes = sizes
        self.config = RawConfig(
            amqp_url=amqp_url,
            prefix=prefix,
            agencies=("police", "health", "education", "housing"),
            request_bytes=sizes.request,
            answer_bytes=sizes.answer,
            packet_bytes=sizes.packet,
        )
        self._contact_body = b"c" * sizes.contact
        self._publish: aio_pika.abc.AbstractExchange | None = None

    async def declare(self) -> None:
        channel = await self.connection.channel()
        for queue in self.config.queues():
            await channel.declare_queue(queue, durable=True, arguments=QUORUM)
        await channel.close()

    async def start(self) -> None:
        await self.connect()
        await self.declare()
        env = {**os.environ, "BENCH_CONFIG": self.config.to_env()}
        self.children.append(spawn("gatherer", ["-m", self.module, "gatherer"], env, self.workdir))
        for agency in self.config.agencies:
            self.children.append(
                spawn(agency, ["-m", self.module, "responder", agency], env, self.workdir)
            )
        consumed = [q for q in self.config.queues() if q != self.config.packets]
        await wait_for_consumers(self.connection, consumed, self.children)
        self._publish = (await self.connection.channel(publisher_confirms=True)).default_exchange
        await self.watch_packets(self.config.packets)

    async def submit(self, key: str, index: int) -> None:
        assert self._publish is not None
        await self._publish.publish(_message(self._contact_body, key), self.config.contacts)

    def packet_key(self, message: AbstractIncomingMessage) -> str:
        return message.correlation_id or ""

    async def cleanup(self) -> None:
        for queue in self.config.queues():
            channel = await self.connection.channel()
            with contextlib.suppress(aio_pika.exceptions.AMQPError):
                await channel.queue_delete(queue)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.raw")
    parser.add_argument("role", choices=["gatherer", "responder"])
    parser.add_argument("agency", nargs="?")
    args = parser.parse_args()
    config = RawConfig.from_env()
    with contextlib.suppress(KeyboardInterrupt):
        if args.role == "gatherer":
            asyncio.run(run_gatherer(config))
        else:
            asyncio.run(run_responder(config, args.agency))


if __name__ == "__main__":
    main()
