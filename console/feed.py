"""The console's side of the broker: every packet from its own durable queue
(``console.packets``, bound to the packets exchange), the hub's events for the board from
``console.events``, and the commands it sends back (re-rating, decision) through the hub
client, signed as the screening role.

A message is acked only after its effect is committed to the console's store, so a console
that is down, or killed mid-write, finds every packet waiting when it comes back. Only what
the hub signed is believed; anything else is dead-lettered with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

import aio_pika
import structlog

from broker.connection import connect
from broker.consumer import Consumer, Rejected
from broker.credentials import load_credentials
from broker.settings import BrokerSettings
from broker.signing import OPERATOR
from broker.topology import Topology, TopologyRefused, declare
from console.store import ConsoleStore
from mash.errors import MashError
from schemas.enums import Brag, HubEventKind
from schemas.models import HubEvent, ScreeningPacket
from screening.client import ScreeningClient

__all__ = ["Changes", "ConsoleUnavailable", "Feed", "check_broker"]

log = structlog.get_logger("mash.console")


def _now() -> datetime:
    return datetime.now(UTC)


class ConsoleUnavailable(MashError, RuntimeError):
    """The console cannot start: no broker, no key, or its queues are missing; the message
    is one line for the operator."""


async def check_broker(settings: BrokerSettings) -> None:
    """Before serving: the broker answers, the screening key is there, and the console's
    queues exist (declared here when this user may; otherwise provisioned)."""
    from broker.connection import BrokerConfigError, BrokerRefused
    from broker.keyring import KeyringError

    try:
        load_credentials(settings, OPERATOR)
    except KeyringError as exc:
        raise ConsoleUnavailable(str(exc)) from None
    topology = Topology(settings)
    try:
        connection = await connect(settings, "mash-console", quiet=True)
    except (BrokerRefused, BrokerConfigError) as exc:
        raise ConsoleUnavailable(str(exc)) from None
    async with connection:
        try:
            channel = await connection.channel()
            if settings.declare_topology:
                await declare(channel, topology)
            for queue in (topology.console_packet_queue, topology.console_event_queue):
                channel = await connection.channel()
                await channel.declare_queue(queue, passive=True)
        except (aio_pika.exceptions.AMQPError, TopologyRefused) as exc:
            raise ConsoleUnavailable(
                f"the console's queues are not there or not readable ({exc}); "
                "see 'mash broker provision'"
            ) from None


class Changes:
    """A counter the board's live streams wait on: it goes up with every change."""

    def __init__(self) -> None:
        self.version = 0
        self._changed = asyncio.Condition()

    async def bump(self) -> None:
        async with self._changed:
            self.version += 1
            self._changed.notify_all()

    async def wait_past(self, version: int, timeout: float) -> int:
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.version > version), timeout
                )
            return self.version


class Feed:
    def __init__(
        self,
        settings: BrokerSettings,
        store: ConsoleStore,
        changes: Changes,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.settings = settings
        self.topology = Topology(settings)
        self.store = store
        self.changes = changes
        self.clock = clock
        self._client: ScreeningClient | None = None
        self.consumers: list[Consumer] = []

    async def start(self) -> None:
        # The product's screening client, on this console instance's own queues: only what
        # the hub signed is handed over; the rest is dead-lettered with its reason.
        self._client = ScreeningClient(self.settings, "mash-console")
        await self._client.__aenter__()
        if self.settings.declare_topology:
            async with self._client.connection.channel() as channel:
                await declare(channel, self.topology)
        self.consumers.append(
            await self._client.subscribe(
                ScreeningPacket, self._on_packet, queue=self.topology.console_packet_queue
            )
        )
        self.consumers.append(
            await self._client.subscribe(
                HubEvent, self._on_event, queue=self.topology.console_event_queue
            )
        )
        log.info("console_feed_ready", prefix=self.settings.prefix)

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def _on_packet(self, packet: ScreeningPacket) -> None:
        # The hub never puts restricted information in a packet; the console holds it to
        # that: a packet carrying a sealed envelope is refused whole, never stored.
        if any(answer.restricted is not None for answer in packet.answers):
            raise Rejected("restricted-in-packet", "a packet carried restricted information")
        now = self.clock()
        with self.store.transaction() as db:
            # A packet's id names its contact and version: a redelivery changes nothing.
            if self.store.seen(db, packet.packet_id, now):
                return
            self.store.add_packet(db, packet, now)
        log.info("packet_stored", ref=packet.contact_ref, version=packet.version)
        await self.changes.bump()

    async def _on_event(self, event: HubEvent) -> None:
        ref, detail = event.contact_ref, event.detail
        if ref is None:
            return
        now = self.clock()
        with self.store.transaction() as db:
            if self.store.seen(db, event.event_id, now):
                return
            if event.kind is HubEventKind.CONTACT_RECEIVED and event.brag is not None:
                agencies = [a for a in detail.get("agencies", "").split(",") if a]
                deadline = datetime.fromisoformat(detail["deadline"])
                self.store.contact_received(
                    db, ref, event.brag, event.occurred_at, deadline, agencies
                )
            elif event.kind in (HubEventKind.ANSWER_RECEIVED, HubEventKind.ANSWER_LATE):
                if event.agency:
                    late = event.kind is HubEventKind.ANSWER_LATE
                    self.store.answered(db, ref, event.agency, late)
            elif event.kind is HubEventKind.REMINDER_SENT:
                self.store.reminded(db, ref, detail.get("agencies", "").split(","))
            elif event.kind is HubEventKind.RERATED and event.brag is not None:
                self.store.rerated(
                    db, ref, Brag(event.brag), datetime.fromisoformat(detail["deadline"])
                )
            elif event.kind is HubEventKind.DECIDED:
                self.store.decided(db, ref, detail.get("decision", ""))
        await self.changes.bump()
