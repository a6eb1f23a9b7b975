"""The broker side every adapter shares: take this agency's requests from both lanes, ask the
agency's records, answer on the request's lane, ack once the answer is confirmed. Reminders
and outcome notices (the MASH decided the contact) arrive on the same queues: they are
logged and acked.

The response id is derived from the request id, so an answer published twice (after a crash
between the broker's confirm and the ack, or when a re-rated request arrives on both lanes)
is one answer to the hub.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from pydantic import ValidationError

from adapters.kit.agency import Agency, Lookup
from adapters.kit.reminders import surface_reminder
from broker.connection import connect
from broker.consumer import Consumer, Rejected
from broker.credentials import load_credentials
from broker.head_start import head_start_for
from broker.keyring import RESTRICTED_OWNER
from broker.publisher import Publisher
from broker.sealed import seal
from broker.settings import BrokerSettings
from broker.topology import LANES, Topology, declare, lane_for
from schemas.codec import decode, encode, schema_name_of
from schemas.enums import ResponseOutcome
from schemas.models import (
    AgencyResponse,
    InformationRequest,
    OutcomeNotice,
    RequestReminder,
    RestrictedEnvelope,
    RestrictedFindings,
)
from telemetry import tracing
from telemetry.metrics import AGENCY_HEADER, Metrics
from telemetry.server import OpsServer, broker_connected, consumers_attached, serve_starting

__all__ = ["AdapterService", "response_id_for"]

log = structlog.get_logger("mash.adapter")

_RESPONSE_NAMESPACE = uuid.UUID("0c5b8f7a-2d43-4e59-8f0b-51a3c9e2d6a4")


def response_id_for(request_id: str, agency: str) -> str:
    return str(uuid.uuid5(_RESPONSE_NAMESPACE, f"{agency}/{request_id}"))


def _now() -> datetime:
    return datetime.now(UTC)


class AdapterService:
    def __init__(
        self,
        agency: Agency,
        settings: BrokerSettings,
        *,
        answer_delay: float = 0.0,
        urgent_prefetch: int = 8,
        routine_prefetch: int = 32,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.agency = agency
        self.settings = settings
        self.topology = Topology(settings)
        self.credentials = load_credentials(settings, agency.name)
        # Lets a demo show answers arriving over time, as an agency's checks would.
        self.answer_delay = answer_delay
        self.urgent_prefetch = urgent_prefetch
        self.routine_prefetch = routine_prefetch
        self.clock = clock
        self.answered = 0
        self.reminders: list[RequestReminder] = []
        self.notices: list[OutcomeNotice] = []
        self.metrics = Metrics(f"adapter-{agency.name}")
        self.ops: OpsServer | None = None
        self._connection: AbstractRobustConnection | None = None
        self._publisher: Publisher | None = None
        self._publishers: dict[str, Publisher] = {}
        # While this adapter answers a Red request, its routine requests not yet begun wait.
        # Each hold ends with its delivery; the limit only bounds a handler that hangs.
        self.head_start = head_start_for(settings)
        self.consumers: list[Consumer] = []
        self._watch: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    @property
    def connection(self) -> AbstractRobustConnection | None:
        """The adapter's broker connection once started (fault tests cut it under it)."""
        return self._connection

    async def start(self) -> None:
        name = self.agency.name
        if name not in self.topology.agencies:
            raise ValueError(f"agency {name!r} is not configured (MASH_AGENCIES)")
        # Health and readiness answer from the first moment, with the reason while starting.
        self.ops = await serve_starting(
            self.settings.metrics_port,
            self.settings.metrics_host,
            self.metrics,
            "connecting to the broker",
        )
        waiting = self.ops.waiting if self.ops is not None else None
        try:
            self._connection = connection = await connect(
                self.settings, f"mash-adapter-{name}", retry=True, on_retry=waiting
            )
        except BaseException:  # refused for good, or stopped while still retrying
            await self.stop()
            raise
        if waiting is not None:
            waiting("starting consumers")
        connection.reconnect_callbacks.add(lambda *_: self.metrics.reconnects.inc())
        if self.settings.declare_topology:  # else the consumers check their queues exist
            try:
                channel = await self._connection.channel()
                await declare(channel, self.topology)
                await channel.close()
            except BaseException:  # e.g. TopologyConflict: said in one line by the command
                await self.stop()
                raise
        # A channel per lane: the broker handles a channel's publishes in order, so a Red
        # answer must not queue behind the routine answers awaiting their confirms.
        self._publishers = {
            lane: Publisher(
                self._connection,
                signer=self.credentials.signer,
                attempts=self.settings.publish_attempts,
                metrics=self.metrics,
            )
            for lane in LANES
        }
        self._publisher = self._publishers["routine"]
        for lane in LANES:
            consumer = Consumer(
                await self._connection.channel(),
                self._publisher,
                self.topology,
                self.topology.request_queue(name, lane),
                self._on_request,
                component=f"adapter-{name}",
                prefetch=self.urgent_prefetch if lane == "urgent" else self.routine_prefetch,
                verifier=self.credentials.verifier,
                allowed_senders=frozenset({"hub"}),
                metrics=self.metrics,
                head_start=self.head_start,
                urgent=lane == "urgent",
            )
            await consumer.start()
            self.consumers.append(consumer)
        signer = self.credentials.signer
        # An adapter whose only signing key was retired answers nothing and is not ready.
        self._watch = asyncio.create_task(signer.watch(), name="signing-key-watch")
        checks = {
            "broker": lambda: broker_connected(connection),
            "consumers": lambda: consumers_attached(self.consumers, len(LANES)),
            "signing_key": lambda: signer.problem is None,
        }
        if self.ops is not None:
            self.ops.use_checks(checks)
        self.ready.set()
        log.info("adapter_ready", agency=name, prefix=self.settings.prefix)

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        if self.ops is not None:
            await self.ops.stop()
            self.ops = None
        if self._connection is not None:
            await self._connection.close()

    async def run_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Future()
        finally:
            await self.stop()

    def _take_notice(self, notice: OutcomeNotice) -> None:
        """The MASH decided a contact this agency was asked about: its request is closed.
        Logged (reference and decision, nothing about the child) and acked."""
        if notice.agency != self.agency.name:
            raise Rejected("wrong-agency", f"outcome notice for {notice.agency}")
        self.notices.append(notice)
        log.info(
            "outcome_received",
            agency=self.agency.name,
            ref=notice.contact_ref,
            request_id=notice.request_id,
            decision=notice.decision.value,
        )

    def _seal(
        self, request: InformationRequest, response_id: str, lookup: Lookup
    ) -> RestrictedEnvelope:
        # Always the restricted file's newest key, so a rotation takes effect at once.
        self.credentials.keyring.refresh()
        key = self.credentials.keyring.current(RESTRICTED_OWNER, "restricted")
        return seal(
            encode(RestrictedFindings(items=lookup.restricted)),
            key.x25519(),
            key.key_id,
            contact_ref=request.contact_ref,
            agency=self.agency.name,
            response_id=response_id,
        )

    def answer(self, request: InformationRequest, lookup: Lookup | None = None) -> AgencyResponse:
        if lookup is None:
            lookup = self.agency.lookup(request)
        response_id = response_id_for(request.request_id, self.agency.name)
        return AgencyResponse(
            response_id=response_id,
            request_id=request.request_id,
            contact_ref=request.contact_ref,
            agency=self.agency.name,
            responded_at=self.clock(),
            outcome=ResponseOutcome.KNOWN if lookup.known else ResponseOutcome.NOT_KNOWN,
            matches=lookup.matches,
            strengths=lookup.strengths if lookup.known else [],
            engagement=lookup.engagement,
            engagement_notes=lookup.engagement_notes if lookup.known else None,
            findings=(
                encode(lookup.findings) if lookup.known and lookup.findings is not None else None
            ),
            restricted=(
                self._seal(request, response_id, lookup)
                if lookup.known and lookup.restricted
                else None
            ),
        )

    async def _on_request(self, message: AbstractIncomingMessage) -> None:
        assert self._publisher is not None
        started = time.perf_counter()
        if schema_name_of(message.body) == RequestReminder.avro_name:
            reminder = decode(message.body, RequestReminder)
            if reminder.agency != self.agency.name:
                raise Rejected("wrong-agency", f"reminder for {reminder.agency}")
            self.reminders.append(reminder)
            surface_reminder(reminder, self.metrics, self.clock())
            return
        if schema_name_of(message.body) == OutcomeNotice.avro_name:
            self._take_notice(decode(message.body, OutcomeNotice))
            return
        request = decode(message.body, InformationRequest)
        if request.agency != self.agency.name:
            raise Rejected("wrong-agency", f"request for {request.agency}")
        if self.answer_delay:
            await asyncio.sleep(self.answer_delay)
        # The lookup may wait on the agency's database (adapters.kit.sources.sql): off the
        # event loop, so heartbeats and the other lane's requests go on meanwhile.
        with tracing.span(
            "lookup", {"mash.agency": self.agency.name, "mash.brag": request.brag.value}
        ) as span:
            lookup = await asyncio.to_thread(self.agency.lookup, request)
            span.set_attribute("mash.known", lookup.known)
        try:
            response = self.answer(request, lookup)
        except ValidationError as exc:
            # The agency's records produced an answer the contract does not allow (too many
            # or too long findings for the packet's budget): retrying cannot help, so it is
            # refused at once for an operator to see, not looped to the delivery limit.
            # Field paths and error kinds only: the values are the child's data.
            fields = sorted(
                {".".join(map(str, e["loc"])) + f" ({e['type']})" for e in exc.errors()}
            )
            log.error(
                "answer_refused_by_contract",
                agency=self.agency.name,
                request_id=request.request_id,
                fields=fields[:10],
            )
            raise Rejected("answer-out-of-bounds", "; ".join(fields[:10])) from None
        lane = lane_for(request.brag)
        await self._publishers[lane].publish_model(
            self.topology.answers,
            lane,
            response,
            message_id=response.response_id,
            correlation_id=request.contact_ref,
            headers={AGENCY_HEADER: self.agency.name},
        )
        self.answered += 1
        log.info(
            "request_answered",
            agency=self.agency.name,
            ref=request.contact_ref,
            brag=request.brag.value,
            revision=request.revision,
            outcome=response.outcome.value,
            matched=sum(1 for m in response.matches if m.matched),
            # A count only: which identifier disagreed is in the answer, for the MASH to see.
            identifier_conflicts=sum(1 for m in response.matches if m.identifier_conflict),
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
