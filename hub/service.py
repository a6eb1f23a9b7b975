"""The running hub: consumers for contacts, answers and commands, the outbox relay, and the
deadline clock, around one :class:`~hub.correlator.Correlator`.

Start-up order matters: the hub first makes sure it is the only hub of its prefix and that
its database is the prefix's (:mod:`hub.instance`); deadlines that passed while the hub was
down fire before any consumer starts, and the outbox left by a crash is published before new
work is taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from broker.connection import connect
from broker.consumer import TRANSIENT, Consumer, Handler, Rejected
from broker.credentials import load_credentials
from broker.head_start import head_start_for
from broker.identities import check_role_sender, check_sender
from broker.keyring import KeyringError, readable_restricted_keys
from broker.publisher import Publisher, PublishFailed
from broker.replay import replayed_by_operator
from broker.signing import OPERATOR, SENDER
from broker.topology import LANES, SCREENING, Lane, Topology, declare
from hub import audit
from hub.correlator import Correlator
from hub.group_commit import GroupCommit
from hub.instance import HubInstance, InstanceRefused
from hub.monitoring import HubMonitoring
from hub.policy import BragPolicy
from hub.settings import HubSettings
from hub.store import (
    OUTBOX_LANES,
    OUTBOX_ROUTINE,
    OUTBOX_URGENT,
    DatabaseFault,
    DatabaseLock,
    HubStore,
    OutboxRow,
    RefsNotReserved,
    StoreError,
)
from schemas.codec import DecodeError, decode, encode
from schemas.enums import Brag, HubEventKind
from schemas.models import (
    AgencyResponse,
    AvroModel,
    CommandReply,
    Contact,
    ContactCommand,
    HubEvent,
    ScreeningPacket,
)

__all__ = ["HubService"]

log = structlog.get_logger("mash.hub")


_CLOCK_TICK = 0.25  # seconds; deadlines fire within this of falling due


def _now() -> datetime:
    return datetime.now(UTC)


def _sender(message: AbstractIncomingMessage) -> str:
    # The consumer verified the signature before the handler runs, so this header is proven.
    return str((message.headers or {})[SENDER])


class HubService:
    def __init__(
        self,
        settings: HubSettings,
        policy: BragPolicy | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.settings = settings
        self.topology = Topology(settings)
        self.credentials = load_credentials(settings, "hub")
        # The hub forwards the restricted file but must never be able to open it.
        leaked = readable_restricted_keys(settings.key_dir)
        if leaked:
            raise KeyringError(
                f"the hub can read a restricted-file private key ({leaked[0]}); hand it to the "
                f"keeper of the restricted file ('mash keys export-holder restricted-file DIR "
                f"--remove') and remove it from {settings.key_dir}"
            )
        if settings.new_database and settings.db_path.exists():
            raise StoreError(
                f"--new asks for a new database, but {settings.db_path} already exists"
            )
        # Before the database is opened (opening it may migrate it): nobody else may have it.
        self._db_lock = DatabaseLock(settings.db_path)
        self._db_lock.acquire()
        try:
            self.store = HubStore(settings.db_path)
        except BaseException:
            self._db_lock.release()
            raise
        self._db_lock.record_database(self.store)
        self._commits = GroupCommit(self.store, on_commit=self._work_done)
        self.correlator = Correlator(
            self.store,
            self.topology,
            policy or BragPolicy.from_env(),
            settings.agencies,
            clock,
            command_max_age=timedelta(seconds=settings.command_max_age_s),
        )
        self.monitoring = HubMonitoring(self.store, settings, self.correlator.clock)
        self._lost: asyncio.Future[None] | None = None
        self.instance = HubInstance(
            self.topology,
            self.store,
            new_database=settings.new_database,
            clock=self.correlator.clock,
            on_lost=self._instance_lost,
        )
        self._connection: AbstractRobustConnection | None = None
        self._publisher: Publisher | None = None
        self._lane_publishers: dict[int, Publisher] = {}
        self._consumers: list[Consumer] = []
        self._tasks: list[asyncio.Task[None]] = []
        # One relay per outbox lane (Red, routine, events), each woken by every commit: a
        # lane waiting on a batch of confirms never holds back a more urgent one.
        self._outbox_ready = {lane: asyncio.Event() for lane in OUTBOX_LANES}
        self._stopping = False
        self._checkpointed: tuple[int, str] | None = None
        self.head_start = head_start_for(settings)
        self.ready = asyncio.Event()

    @property
    def publisher(self) -> Publisher:
        assert self._publisher is not None, "the hub has not started"
        return self._publisher

    async def _abandon_start(self) -> None:
        """Undo a start refused after connecting, leaving nothing open behind the one line
        the command prints (an open connection adds the client library's traceback at exit)."""
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
        if self.store.created:
            self.store.discard()  # created a moment ago, and refused: leave no trace
        else:
            self.store.close()
        self._db_lock.release()
        await self.monitoring.stop()

    async def start(self) -> None:
        # Health and readiness answer from the first moment, with the reason while starting.
        await self.monitoring.serve_starting("connecting to the broker")
        try:
            self._connection = await connect(
                self.settings, "mash-hub", retry=True, on_retry=self.monitoring.waiting
            )
        except BaseException:  # refused for good, or stopped while still retrying
            await self.monitoring.stop()
            raise
        self.monitoring.waiting("starting consumers")
        self.monitoring.watch(self._connection)
        if self.settings.declare_topology:
            try:
                channel = await self._connection.channel()
                await declare(channel, self.topology)
                await channel.close()
            except BaseException:  # e.g. TopologyConflict: said in one line by the command
                await self._abandon_start()
                raise
        # A channel per outbox lane: the broker handles a channel's publishes in order, so a
        # Red packet must not share one with thousands of routine messages awaiting confirms.
        self._lane_publishers = {
            lane: Publisher(
                self._connection,
                signer=self.credentials.signer,
                attempts=self.settings.publish_attempts,
                metrics=self.monitoring.metrics,
            )
            for lane in OUTBOX_LANES
        }
        self._publisher = self._lane_publishers[OUTBOX_ROUTINE]
        self._lost = asyncio.get_running_loop().create_future()
        try:
            await self.instance.claim(self._connection, self._publisher)
        except InstanceRefused:
            await self._abandon_start()
            raise
        # What a crash left in the outbox goes out first: the relay starts before any consumer.
        self._tasks = [
            asyncio.create_task(self._relay(lane), name=f"outbox-relay-{lane}")
            for lane in OUTBOX_LANES
        ]
        self._commits.start()
        operators = frozenset({OPERATOR})
        agencies = frozenset(self.settings.agencies)
        # (queue, handler, prefetch, senders, lane); operators' commands take no lane.
        routes: list[tuple[str, Handler, int, frozenset[str], Lane | None]] = []
        for lane in LANES:
            prefetch = (
                self.settings.urgent_prefetch
                if lane == "urgent"
                else self.settings.routine_prefetch
            )
            routes.append(
                (self.topology.contact_queue(lane), self._on_contact, prefetch, operators, lane)
            )
            routes.append(
                (self.topology.answer_queue(lane), self._on_answer, prefetch, agencies, lane)
            )
        routes.append((self.topology.command_queue, self._on_command, 8, operators, None))
        for queue, handler, prefetch, senders, route_lane in routes:
            consumer = Consumer(
                await self._connection.channel(),
                self.publisher,
                self.topology,
                queue,
                handler,
                component="hub",
                prefetch=prefetch,
                verifier=self.credentials.verifier,
                allowed_senders=senders,
                # A locked, full or vanished database holds the work in hand, unacknowledged.
                transient=(*TRANSIENT, sqlite3.OperationalError, DatabaseFault, RefsNotReserved),
                metrics=self.monitoring.metrics,
                head_start=None if route_lane is None else self.head_start,
                urgent=route_lane == "urgent",
            )
            await consumer.start()
            self._consumers.append(consumer)
        # Answers that reached the broker while the hub was down were given in time; take
        # them in before judging any deadline, so they complete their contacts rather than
        # each producing an amendment.
        await self._take_waiting_answers()
        self._tasks.append(asyncio.create_task(self._deadline_clock(), name="deadline-clock"))
        self._tasks.append(asyncio.create_task(self._keep_refs_reserved(), name="refs"))
        await self.monitoring.serve(
            self._connection, self._consumers, len(routes), lambda: self.instance.holds_lock
        )
        # A hub whose only signing key was retired signs nothing and is not ready.
        signer = self.credentials.signer
        if self.monitoring.server is not None:
            self.monitoring.server.checks["signing_key"] = lambda: signer.problem is None
        self._tasks.append(asyncio.create_task(signer.watch(), name="signing-key-watch"))
        self._tasks.append(asyncio.create_task(self._audit_checkpoints(), name="audit-checkpoints"))
        self.ready.set()
        log.info(
            "hub_ready",
            prefix=self.settings.prefix,
            agencies=list(self.settings.agencies),
            open_contacts=self.store.count_contacts("open"),
        )

    async def _take_waiting_answers(self, limit: float = 5.0) -> None:
        assert self._connection is not None
        loop = asyncio.get_running_loop()
        give_up = loop.time() + limit
        async with self._connection.channel() as channel:
            while loop.time() < give_up:
                waiting = 0
                for lane in LANES:
                    queue = await channel.declare_queue(
                        self.topology.answer_queue(lane), passive=True
                    )
                    waiting += queue.declaration_result.message_count or 0
                if waiting == 0:
                    break
                await asyncio.sleep(0.05)
        # Messages already delivered but still being handled finish within a moment.
        await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self._stopping = True
        self.head_start.release_all()
        await self._commits.stop()
        if self._publisher is not None:
            # The head as the hub leaves it: entries cut off while it is down are then found.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._checkpoint_audit(), 5.0)
        log.info(
            "hub_stopping",
            commits=self._commits.batches,
            decisions=self._commits.decisions,
        )
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.instance.stop()
        await self.monitoring.stop()
        if self._connection is not None:
            await self._connection.close()
        self.store.close()
        self._db_lock.release()

    async def run_forever(self) -> None:
        await self.start()
        assert self._lost is not None
        try:
            await self._lost  # forever, unless another hub takes the prefix
        finally:
            await self.stop()

    def _instance_lost(self, reason: str) -> None:
        # Another hub runs on this prefix now: two would issue references and answers twice.
        if self._lost is not None and not self._lost.done():
            self._lost.set_exception(InstanceRefused(f"{reason}; this hub stops"))

    # Handlers ------------------------------------------------------------------------
    def _front_door_refusal(self, message: AbstractIncomingMessage) -> Rejected | None:
        """Why a contact or command may not be taken, before it is read: it came from a broker
        user other than the screening role's, or asks to be answered somewhere the topology
        has no reply queue (the hub would otherwise write signed replies into any queue)."""
        if message.reply_to and not self.topology.is_reply_queue(message.reply_to):
            return Rejected(
                "reply-to-not-allowed",
                f"reply_to {message.reply_to[:100]!r} is not a reply queue"
                f" ({self.topology.reply_queue('*')})",
            )
        if replayed_by_operator(self.settings, message.user_id, message.headers) is not None:
            # An operator's replay of a dead letter (`mash dlq replay`): the front door's own
            # signature, verified by the consumer, vouches for it instead (audited).
            return None
        try:
            check_role_sender(self.settings, message.user_id, SCREENING)
        except Rejected as refusal:
            return refusal
        return None

    async def _on_contact(self, message: AbstractIncomingMessage) -> None:
        message_id = message.message_id or ""
        urgent = _urgent(message)
        refusal = self._front_door_refusal(message)
        if refusal is not None:
            # Refused whole, before any effect: dead-lettered with the reason (a replay of
            # the dead letter, which carries no reply_to, takes the contact in).
            await self._commits.decide(
                lambda: self.correlator.refuse_contact(message_id, _sender(message), refusal)
            )
            raise refusal
        try:
            contact = decode(message.body, Contact)
            sender = _sender(message)
            if not urgent:
                await self.head_start.routine_turn()  # again: a Red contact may have come since
            replayed_by = replayed_by_operator(self.settings, message.user_id, message.headers)
            accepted = await self._commits.decide(
                lambda: self.correlator.accept_contact(
                    contact, message_id, sender, replayed_by=replayed_by
                ),
                urgent=urgent,
            )
        except (DecodeError, Rejected) as exc:
            # The submitter hears why at once; the message itself is dead-lettered.
            await self._reply(
                message, CommandReply(command_id=message_id, ok=False, error=str(exc))
            )
            raise
        if accepted.created and accepted.brag is Brag.RED:
            self.head_start.hold(accepted.ref)  # until its packet is out, not only this delivery
        await self._reply(
            message,
            CommandReply(
                command_id=contact.contact_id,
                ok=True,
                contact_ref=accepted.ref,
                brag=accepted.brag,
                deadline=accepted.deadline,
            ),
        )

    async def _on_answer(self, message: AbstractIncomingMessage) -> None:
        response = decode(message.body, AgencyResponse)
        # An operator's replay (`mash dlq replay`) comes from the operator's broker user: the
        # agency's own signature, verified by the consumer, vouches for it instead (audited).
        replayed_by = replayed_by_operator(self.settings, message.user_id, message.headers)
        if replayed_by is None:
            check_sender(self.settings, message.user_id, response.agency)
        message_id, sender = message.message_id or response.response_id, _sender(message)
        if not _urgent(message):
            # Again: a Red contact may have come since (or this one was re-rated to Red).
            await self.head_start.routine_turn(response.contact_ref)
        outcome = await self._commits.decide(
            lambda: self.correlator.accept_answer(
                response, message_id, sender, replayed_by=replayed_by
            ),
            urgent=_urgent(message),
        )
        if outcome == "recorded":
            self.monitoring.answered(response.request_id)

    async def _on_command(self, message: AbstractIncomingMessage) -> None:
        # Control traffic: never held by a Red contact's head start (the consumer has none)
        # and decided ahead of the routine work waiting for the same commit, so a re-rating
        # lands before the answers it should precede.
        command = decode(message.body, ContactCommand)
        message_id, sender = message.message_id or command.command_id, _sender(message)
        refusal = self._front_door_refusal(message)
        replayed_by = replayed_by_operator(self.settings, message.user_id, message.headers)
        result = await self._commits.decide(
            lambda: self.correlator.command(
                command, message_id, sender, refusal, replayed_by=replayed_by
            ),
            urgent=True,
        )
        if result.now_red and result.reply.contact_ref is not None:
            # A Red contact in hand from now on: its packet goes ahead of the routine work.
            self.head_start.hold(result.reply.contact_ref)
        await self._reply(message, result.reply)
        if result.refusal is not None:
            raise result.refusal

    async def _reply(self, message: AbstractIncomingMessage, reply: AvroModel) -> None:
        if not message.reply_to:
            return
        if not self.topology.is_reply_queue(message.reply_to):
            # Never into another queue (the restricted file's, a dead-letter queue) on a
            # sender's say-so; the message itself was refused for it (_front_door_refusal).
            log.warning("reply_refused", message_id=message.message_id, reason="not-a-reply-queue")
            return
        try:
            # Through the replies exchange, never the default one (which reaches every queue):
            # only a client's reply queue is bound there, so any other reply_to is unroutable.
            # A client that gave up has no queue left to route to; one attempt is enough.
            await self.publisher.publish(
                self.topology.replies,
                message.reply_to,
                encode(reply),
                message_id=f"reply-{message.message_id}",
                type_=reply.avro_name,
                correlation_id=message.correlation_id,
                persistent=False,
                attempts=1,
            )
        except PublishFailed:
            log.info("reply_not_delivered", message_id=message.message_id)

    def _work_done(self) -> None:
        for ready in self._outbox_ready.values():
            ready.set()

    # Background loops ----------------------------------------------------------------
    async def _publish_row(self, row: OutboxRow, lane: int) -> None:
        await self._lane_publishers[lane].publish(
            row.exchange,
            row.routing_key,
            row.body,
            message_id=row.message_id,
            type_=row.type,
            correlation_id=row.correlation_id,
            headers=row.headers,
        )

    async def _drain_outbox(self, lane: int) -> int:
        """Publish what one lane of the outbox holds; returns how many were confirmed."""
        total = 0
        while True:
            if lane != OUTBOX_URGENT:
                await self.head_start.routine_turn()
            # Rows read from a deleted database belong to contacts nobody can follow up.
            self.store.check_file()
            rows = self.store.outbox(self.settings.outbox_batch, priority=lane)
            if not rows:
                return total
            # Confirms are pipelined: the whole batch is in flight at once.
            results = await asyncio.gather(
                *(self._publish_row(row, lane) for row in rows), return_exceptions=True
            )
            sent = [row for row, result in zip(rows, results, strict=True) if result is None]
            done = [row.id for row in sent]
            self.store.outbox_done(done)
            for row in sent:
                if row.type == ScreeningPacket.avro_name and row.correlation_id:
                    self.head_start.release(row.correlation_id)
            total += len(done)
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                log.warning(
                    "outbox_publish_failed",
                    failed=len(failures),
                    error=type(failures[0]).__name__,
                )
                await asyncio.sleep(1.0)
                return total

    async def _relay(self, lane: int) -> None:
        ready = self._outbox_ready[lane]
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), timeout=1.0)
            ready.clear()
            try:
                await self._drain_outbox(lane)
            except DatabaseFault:
                self.monitoring.database_healthy()  # logs the fault once, not every second
                await asyncio.sleep(1.0)
            except Exception as exc:  # the loop must outlive any one failure
                log.error("outbox_relay_error", error=type(exc).__name__)
                await asyncio.sleep(1.0)

    async def _keep_refs_reserved(self) -> None:
        while not self._stopping:
            try:
                await self.instance.reserve()
            except Exception as exc:  # contacts wait (RefsNotReserved) until it succeeds
                log.error("reference_reservation_failed", error=type(exc).__name__)
            await asyncio.sleep(_CLOCK_TICK)

    async def _audit_checkpoints(self) -> None:
        while not self._stopping:
            await self._checkpoint_audit()
            await asyncio.sleep(self.settings.audit_checkpoint_s)

    async def _checkpoint_audit(self) -> None:
        """Sign the audit log's head and send it off the hub (hub.audit.Checkpoint)."""
        try:
            current = audit.head(self.store.connection)
            if current == self._checkpointed or current[0] == 0:
                return  # nothing new to vouch for
            checkpoint = audit.make_checkpoint(self.store.connection, self.credentials.signer)
            if self.settings.audit_checkpoints is not None:
                audit.append_checkpoint(self.settings.audit_checkpoints, checkpoint)
            event = HubEvent(
                event_id=str(uuid.uuid4()),
                occurred_at=datetime.fromisoformat(checkpoint.at),
                kind=HubEventKind.AUDIT_CHECKPOINT,
                detail=checkpoint.as_detail(),
            )
            await self.publisher.publish_model(
                self.topology.events,
                HubEventKind.AUDIT_CHECKPOINT.value.lower(),
                event,
                message_id=event.event_id,
            )
            self._checkpointed = current
            log.info("audit_checkpoint", entries=checkpoint.count, head=checkpoint.head)
        except Exception as exc:  # the next period tries again; the log itself is intact
            log.error("audit_checkpoint_failed", error=type(exc).__name__)

    async def _deadline_clock(self) -> None:
        while not self._stopping:
            try:
                fired = await self._commits.decide(self.correlator.fire_due_deadlines)
                reminded = await self._commits.decide(self.correlator.reminders.fire_due)
                if fired or reminded:
                    self._work_done()
                self.monitoring.deadlines_fired(fired)
                self.monitoring.reminders_sent(reminded)
                upcoming = min(
                    (t for t in (self.store.next_deadline(), self.store.next_reminder()) if t),
                    default=None,
                )
            except DatabaseFault:
                self.monitoring.database_healthy()  # logs the fault once, not every tick
                await asyncio.sleep(1.0)
                upcoming = None
            except Exception as exc:
                log.error("deadline_clock_error", error=type(exc).__name__)
                upcoming = None
            # Never asleep long: a new contact or a re-rating may bring a deadline closer.
            delay = _CLOCK_TICK
            if upcoming is not None:
                delay = min(
                    max((upcoming - self.correlator.clock()).total_seconds(), 0.01), _CLOCK_TICK
                )
            await asyncio.sleep(delay)


def _urgent(message: AbstractIncomingMessage) -> bool:
    # Contacts and answers travel with their lane as routing key (broker.topology.lane_for).
    return message.routing_key == "urgent"
