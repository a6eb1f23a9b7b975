"""One hub per prefix, on one database that cannot silently change.

Two things on the broker make it so:

- **The hub lock**, ``<prefix>.hub.lock``: an exclusive queue the running hub declares. The
  broker lets one connection hold it and deletes it when that connection ends, however the
  hub ends (a crash, SIGKILL, a lost network). A second hub on the same prefix is refused
  (``RESOURCE_LOCKED``) and says which instance holds it.
- **The instance record**, one retained message in ``<prefix>.hub.instance`` (a durable
  queue of length one): which hub last ran (host, pid, start time), on which database (its
  id, made when the database is created, and its path), and the reference numbers reserved
  for each year. A hub that finds a record naming another database, or finds its own
  database missing, refuses to start instead of beginning again from empty; ``mash hub
  --new`` starts a new database on purpose, and its references continue after every number
  the earlier one reserved, so no reference is ever issued twice.

On the database itself, :class:`hub.store.DatabaseLock` keeps a second hub off the same
file even before it reaches the broker.

References are reserved in blocks (:data:`RESERVE`) and the record is updated, with the
broker's confirm, before the hub issues any number of a new block.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiormq
import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from broker.publisher import Publisher
from broker.topology import Topology
from hub.store import HubStore, describe_this_process
from mash.errors import MashError
from schemas.codec import DecodeError, decode, encode
from schemas.models import HubInstanceRecord

__all__ = ["RESERVE", "HubInstance", "InstanceRefused"]

log = structlog.get_logger("mash.hub")

# Reference numbers reserved on the broker at a time; more are reserved when half are used.
RESERVE = 1000
# How long a hub whose connection dropped keeps trying to take its lock back: the broker may
# not yet have noticed the old connection is gone (it holds the lock until then).
_RELOCK_FOR_S = 300.0


class InstanceRefused(MashError, RuntimeError):
    """This hub must not run: another holds the prefix, or the database is not the prefix's."""


class HubInstance:
    def __init__(
        self,
        topology: Topology,
        store: HubStore,
        *,
        new_database: bool,
        clock: Callable[[], datetime],
        on_lost: Callable[[str], None],
    ) -> None:
        self.topology = topology
        self.store = store
        self.new_database = new_database
        self.clock = clock
        self.on_lost = on_lost
        self.me = describe_this_process()
        self.holds_lock = False
        self.record: HubInstanceRecord | None = None
        self._connection: AbstractRobustConnection | None = None
        self._publisher: Publisher | None = None
        self._relocking: asyncio.Task[None] | None = None

    # Start-up --------------------------------------------------------------------------
    async def claim(self, connection: AbstractRobustConnection, publisher: Publisher) -> None:
        """Take the prefix's lock, check the database against the record, reserve references.

        Raises :class:`InstanceRefused` with one line an operator can act on.
        """
        self._connection, self._publisher = connection, publisher
        if not await self._lock():
            previous = await self._peek_record()
            holder = previous.instance if previous else "an instance that left no record"
            raise InstanceRefused(
                f"another hub is already running for prefix {self.topology.prefix!r}"
                f" ({holder}); stop it first"
            )
        self.holds_lock = True
        connection.reconnect_callbacks.add(self._reconnected)
        connection.close_callbacks.add(self._connection_closed)
        async with connection.channel() as channel:
            found = await self._take_records(channel)
            previous = _newest([record for record, _ in found])
            self._check_database(previous)
            if previous is not None:
                self._continue_numbers(previous)
            await self.reserve(force=True, previous=previous)
            for _, message in found:  # the new record is confirmed: the old ones may go
                await message.ack()
        log.info(
            "hub_instance_claimed",
            prefix=self.topology.prefix,
            database_id=self.store.database_id,
            new_database=self.store.created,
        )

    async def _lock(self) -> bool:
        assert self._connection is not None
        channel = await self._connection.channel()
        try:
            # Not robust: after a reconnect the hub takes it back itself (_reconnected), and
            # must know if it could not.
            await channel.declare_queue(
                self.topology.hub_lock_queue, exclusive=True, auto_delete=True, robust=False
            )
        except aiormq.exceptions.ChannelLockedResource:
            return False
        finally:
            with contextlib.suppress(aio_pika.exceptions.AMQPError, RuntimeError):
                await channel.close()
        return True

    async def _take_records(
        self, channel: AbstractChannel
    ) -> list[tuple[HubInstanceRecord, AbstractIncomingMessage]]:
        """Every record waiting (normally one), held unacknowledged until the new one is in."""
        queue = await channel.get_queue(self.topology.hub_instance_queue, ensure=False)
        found: list[tuple[HubInstanceRecord, AbstractIncomingMessage]] = []
        for attempt in range(3):
            while (message := await queue.get(no_ack=False, fail=False)) is not None:
                record = _decode(message.body)
                if record is None:
                    log.warning("hub_instance_record_unreadable", message_id=message.message_id)
                    await message.ack()
                    continue
                found.append((record, message))
            if found or attempt == 2:
                return found
            # A refused second hub may be reading it this instant, and puts it straight back.
            await asyncio.sleep(0.1)
        return found

    async def _peek_record(self) -> HubInstanceRecord | None:
        assert self._connection is not None
        try:
            async with self._connection.channel() as channel:
                queue = await channel.get_queue(self.topology.hub_instance_queue, ensure=False)
                messages = []
                while (message := await queue.get(no_ack=False, fail=False)) is not None:
                    messages.append(message)
                records = [_decode(m.body) for m in messages]
                for message in messages:
                    await message.nack(requeue=True)
        except aio_pika.exceptions.AMQPError:
            return None
        return _newest([r for r in records if r is not None])

    def _check_database(self, previous: HubInstanceRecord | None) -> None:
        store = self.store
        if previous is None or previous.database_id == store.database_id:
            return
        last = f"{previous.database} ({previous.instance}, database id {previous.database_id})"
        if store.created and not self.new_database:
            raise InstanceRefused(
                f"{store.path} does not exist, but the hub for prefix {self.topology.prefix!r}"
                f" has run before on {last}: restore that database, or start a new one on"
                " purpose with 'mash hub --new'"
            )
        if not store.created:
            raise InstanceRefused(
                f"{store.path} is not the database the hub for prefix"
                f" {self.topology.prefix!r} last ran on, {last}: point MASH_DB_PATH at that"
                " one, or start a new database with 'mash hub --new'"
            )

    def _continue_numbers(self, previous: HubInstanceRecord) -> None:
        """A new database, or one restored from a backup older than the record, continues
        after every number the prefix has reserved: none is issued twice."""
        for key, reserved in previous.refs.items():
            year = int(key)
            if reserved > (self.store.ref_ceiling(year) or 0):
                self.store.reserve_refs(year, reserved, floor=reserved)
                log.info("hub_references_continue", year=year, after=reserved)

    # References ------------------------------------------------------------------------
    async def reserve(
        self, *, force: bool = False, previous: HubInstanceRecord | None = None
    ) -> None:
        """Reserve the next block of this year's references when half the last is used."""
        year = self.clock().year
        issued = self.store.refs_issued(year)
        ceiling = self.store.ref_ceiling(year) or 0
        if not force and ceiling - issued >= RESERVE // 2:
            return
        refs = dict(previous.refs) if previous else {}
        refs.update({str(y): n for y, n in self.store.reserved_years().items()})
        refs[str(year)] = max(ceiling, issued) + RESERVE
        record = HubInstanceRecord(
            database_id=self.store.database_id,
            database=str(self.store.path.resolve()),
            instance=self.me,
            refs=refs,
            written_at=datetime.now(UTC),
        )
        assert self._publisher is not None
        # Confirmed by the broker before a single number of the block is issued.
        await self._publisher.publish(
            self.topology.hub_instance_exchange,
            "record",
            encode(record),
            message_id=str(uuid.uuid4()),
            type_=HubInstanceRecord.avro_name,
        )
        self.store.reserve_refs(year, refs[str(year)])
        self.record = record

    # After a reconnect -----------------------------------------------------------------
    def _connection_closed(self, *_: Any) -> None:
        self.holds_lock = False  # the broker dropped the lock with the connection

    def _reconnected(self, *_: Any) -> None:
        self.holds_lock = False
        if self._relocking is None or self._relocking.done():
            self._relocking = asyncio.get_running_loop().create_task(
                self._relock(), name="hub-relock"
            )

    async def _relock(self) -> None:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + _RELOCK_FOR_S
        while loop.time() < give_up:
            try:
                if await self._lock():
                    self.holds_lock = True
                    log.info("hub_lock_retaken", prefix=self.topology.prefix)
                    return
                holder = await self._peek_record()
            except (aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError):
                holder = None  # the connection dropped again; keep trying
            if holder is not None and holder.instance != self.me:
                self._lost(f"another hub took prefix {self.topology.prefix!r} ({holder.instance})")
                return
            # Still ours: the broker has not yet dropped our old connection.
            await asyncio.sleep(1.0)
        self._lost(f"the lock on prefix {self.topology.prefix!r} could not be taken back")

    def _lost(self, reason: str) -> None:
        log.error("hub_lock_lost", prefix=self.topology.prefix, reason=reason)
        self.on_lost(reason)

    async def stop(self) -> None:
        if self._relocking is not None:
            self._relocking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relocking


def _decode(body: bytes) -> HubInstanceRecord | None:
    try:
        return decode(body, HubInstanceRecord)
    except DecodeError:
        return None


def _newest(records: list[HubInstanceRecord]) -> HubInstanceRecord | None:
    return max(records, key=lambda r: r.written_at, default=None)
