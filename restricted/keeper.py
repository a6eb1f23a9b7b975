"""``mash restricted receive``: the keeper's service on the broker.

It reads the ``restricted.file`` queue as the restricted role's broker user, believes only
records the hub signed, writes each to its own store and acks only then, so a crash between
the two redelivers rather than loses; a record already stored is acked again without a
second copy. Anything else goes to the queue's dead-letter queue with the reason.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from broker.connection import connect
from broker.consumer import Consumer
from broker.keyring import Keyring
from broker.publisher import Publisher
from broker.settings import BrokerSettings
from broker.signing import Verifier
from broker.topology import Topology, declare
from restricted.store import KeeperStore
from schemas.codec import decode
from schemas.models import RestrictedRecord
from telemetry.metrics import Metrics
from telemetry.server import OpsServer, broker_connected, consumers_attached, serve

__all__ = ["Keeper", "KeeperSettings"]

log = structlog.get_logger("mash.restricted")


class KeeperSettings(BrokerSettings):
    # The keeper's own store, on the keeper's machine or account: never the hub's database.
    restricted_store: Path = Path("var/restricted/restricted.sqlite3")


class Keeper:
    def __init__(self, settings: KeeperSettings) -> None:
        self.settings = settings
        self.topology = Topology(settings)
        # The keeper signs nothing: it only verifies what the hub sent.
        self.verifier = Verifier(Keyring.load(settings.keyring))
        self.store = KeeperStore(settings.restricted_store)
        self.received = 0
        self.ready = asyncio.Event()
        self.metrics = Metrics("restricted-keeper")
        self.ops: OpsServer | None = None
        self._connection: AbstractRobustConnection | None = None

    async def start(self) -> None:
        self._connection = await connect(self.settings, "mash-restricted-keeper")
        if self.settings.declare_topology:
            async with self._connection.channel() as channel:
                await declare(channel, self.topology)
        consumer = Consumer(
            await self._connection.channel(),
            Publisher(self._connection, attempts=self.settings.publish_attempts),
            self.topology,
            self.topology.restricted_queue,
            self._on_record,
            component="restricted-keeper",
            prefetch=16,
            verifier=self.verifier,
            allowed_senders=frozenset({"hub"}),
            metrics=self.metrics,
        )
        await consumer.start()
        # /metrics, /healthz and /readyz like every other process (MASH_METRICS_PORT), so a
        # container or supervisor can tell a keeper that lost its broker or its consumer.
        connection = self._connection
        checks = {
            "broker": lambda: broker_connected(connection),
            "consumers": lambda: consumers_attached([consumer], 1),
        }
        self.ops = await serve(
            self.settings.metrics_port, self.settings.metrics_host, self.metrics, checks
        )
        self.ready.set()
        log.info("restricted_keeper_ready", prefix=self.settings.prefix)

    async def _on_record(self, message: AbstractIncomingMessage) -> None:
        record = decode(message.body, RestrictedRecord)
        stored = self.store.add(record, message.message_id or record.response_id)
        if stored:
            self.received += 1
        # Ids only: the record's content is sealed, and its reference names no child.
        log.info("restricted_received", reference=record.reference, duplicate=not stored)

    async def stop(self) -> None:
        if self.ops is not None:
            await self.ops.stop()
        if self._connection is not None:
            await self._connection.close()
        self.store.close()

    async def run_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Future()
        finally:
            await self.stop()
