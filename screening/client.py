"""Receiving what the hub publishes for the screening team: the assembled packets, and the
contacts it routed straight to an allocated worker. The counterpart of
:class:`hub.client.HubClient`, which submits contacts and commands.

Every message is believed only if the hub signed it (:class:`~broker.signing.Verifier`), is
decoded into its model and handed to the caller's handler; it is acknowledged only once the
handler returns, so a handler that stores the packet and then crashes gets it again. A
message that is not the hub's, does not decode, or that the handler refuses by raising
:class:`~mash.errors.Rejected`, is dead-lettered with its reason (``mash dlq list``); any
other exception from the handler returns the message to the queue (the queue's delivery limit
stops one that can never succeed). All of that is :class:`broker.consumer.Consumer`, as in the
hub and the adapters.

Used by the console (its own queues), the demo, the tests and the fault harness. The benchmark's
raw and FastStream flows do not use it: their packets are not the hub's, and not signed.

Typical use::

    async with ScreeningClient(settings) as client:
        await client.subscribe(ScreeningPacket, store_packet)     # the packets queue
        async for packet in client.packets():                     # or as an iterator
            ...
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import TypeVar

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from broker.connection import connect
from broker.consumer import Consumer
from broker.keyring import Keyring
from broker.publisher import Publisher
from broker.settings import BrokerSettings
from broker.signing import Verifier
from broker.topology import Topology
from schemas.codec import decode
from schemas.models import AllocatedContact, AvroModel, ScreeningPacket

__all__ = ["ScreeningClient"]

M = TypeVar("M", bound=AvroModel)

_HUB = frozenset({"hub"})


class ScreeningClient:
    def __init__(
        self, settings: BrokerSettings, name: str = "mash-screening", *, retry: bool = False
    ) -> None:
        """``retry``: keep trying while the broker is away (a service); otherwise one bounded
        attempt that fails in one line (a command)."""
        self.settings = settings
        self.topology = Topology(settings)
        self.name = name
        self.retry = retry
        self.verifier = Verifier(Keyring.load(settings.keyring))
        self._connection: AbstractRobustConnection | None = None
        self._publisher: Publisher | None = None
        self._consumers: list[Consumer] = []

    async def __aenter__(self) -> ScreeningClient:
        self._connection = await connect(
            self.settings, self.name, retry=self.retry, quiet=not self.retry
        )
        # Dead letters keep their sender's signature: this side signs nothing itself.
        self._publisher = Publisher(self._connection, attempts=self.settings.publish_attempts)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    @property
    def connection(self) -> AbstractRobustConnection:
        assert self._connection is not None, "use 'async with'"
        return self._connection

    @property
    def consumers(self) -> list[Consumer]:
        """What each subscription has handled and dead-lettered so far."""
        return list(self._consumers)

    async def subscribe(
        self,
        kind: type[M],
        handler: Callable[[M], Awaitable[None]],
        *,
        queue: str | None = None,
        prefetch: int = 32,
    ) -> Consumer:
        """Hand every ``kind`` message on ``queue`` (by default the packets queue for
        packets, the allocated-worker queue for routed contacts) to ``handler``."""
        assert self._connection is not None and self._publisher is not None, "use 'async with'"
        target = queue or self._default_queue(kind)

        async def on_message(message: AbstractIncomingMessage) -> None:
            await handler(decode(message.body, kind))  # a DecodeError is dead-lettered

        consumer = Consumer(
            await self._connection.channel(),
            self._publisher,
            self.topology,
            target,
            on_message,
            component=self.name,
            prefetch=prefetch,
            verifier=self.verifier,
            allowed_senders=_HUB,
        )
        await consumer.start()
        self._consumers.append(consumer)
        return consumer

    async def packets(
        self, *, queue: str | None = None, prefetch: int = 32
    ) -> AsyncIterator[ScreeningPacket]:
        """Every packet as it comes; each is acknowledged when the loop asks for the next
        one, so the caller's work on a packet is done before the broker forgets it."""
        ready: asyncio.Queue[tuple[ScreeningPacket, asyncio.Future[None]]] = asyncio.Queue()

        async def hand_over(packet: ScreeningPacket) -> None:
            done = asyncio.get_running_loop().create_future()
            await ready.put((packet, done))
            await done  # acked once the loop has come back for the next packet

        await self.subscribe(ScreeningPacket, hand_over, queue=queue, prefetch=prefetch)
        while True:
            packet, done = await ready.get()
            try:
                yield packet
            finally:
                if not done.done():
                    done.set_result(None)

    def _default_queue(self, kind: type[AvroModel]) -> str:
        if kind is ScreeningPacket:
            return self.topology.packet_queue
        if kind is AllocatedContact:
            return self.topology.allocated_queue
        raise ValueError(f"name the queue to read {kind.__name__} from")
