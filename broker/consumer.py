"""Consuming with manual acks and dead letters that say why.

A handler acks only by returning: its effect must be durable by then. A handler that finds
the message bad raises :class:`~mash.errors.Rejected`, the one exception this module turns
into a dead letter (a :class:`~schemas.codec.DecodeError` or a refused signature is one); the
message is then published to the queue's dead-letter queue with the reason in its
headers, confirmed, and only then acked, so it is neither lost nor retried. A transient
failure of the infrastructure (the broker refusing a publish, a lost connection) is waited
out with the message held. Any other error nacks the message back to the queue; the quorum
queue's delivery limit dead-letters a poison message instead of letting it loop.

A message whose properties the client library could not decode arrives flagged by
:mod:`broker.wire` and is dead-lettered at once (reason ``unparseable-message``), before any
of its headers is read: the connection and the messages around it are untouched.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import aiormq
import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from broker.head_start import HeadStart
from broker.publisher import Publisher, PublishFailed
from broker.signing import SigningKeyUnavailable, Verifier
from broker.topology import Topology
from broker.wire import UNPARSEABLE
from mash.errors import MashError, Rejected
from telemetry import tracing
from telemetry.metrics import Metrics

__all__ = [
    "TRANSIENT",
    "UNPARSEABLE_REASON",
    "ConsumeRefused",
    "Consumer",
    "Handler",
    "Rejected",
    "dead_letter",
    "unparseable",
]

log = structlog.get_logger("mash.broker")

Handler = Callable[[AbstractIncomingMessage], Awaitable[None]]

REASON = "x-mash-reason"
DETAIL = "x-mash-detail"
QUEUE = "x-mash-queue"
REJECTED_AT = "x-mash-rejected-at"
REJECTED_BY = "x-mash-rejected-by"
# The original broker user (the dead letter's own user_id is the consumer that rejected it).
BROKER_USER = "x-mash-broker-user"
UNPARSEABLE_REASON = "unparseable-message"


def unparseable(message: AbstractIncomingMessage) -> str | None:
    """What broker.wire could not decode in this message's properties, or None."""
    headers = message.headers or {}
    problem = headers.get(UNPARSEABLE)
    return None if problem is None else str(problem)


class ConsumeRefused(MashError, PermissionError):
    """This broker user may not read the queue (another agency's, say), or it does not exist."""


# Failures of the infrastructure, not of the message: worth waiting out. A component adds
# its own (the hub: a locked or full database). A retired signing key with no successor is
# one: the answer is held until an operator generates a key, never reported as sent.
TRANSIENT: tuple[type[BaseException], ...] = (
    PublishFailed,
    ConnectionError,
    SigningKeyUnavailable,
)


async def dead_letter(
    publisher: Publisher,
    topology: Topology,
    message: AbstractIncomingMessage,
    queue: str,
    reason: str,
    detail: str,
    rejected_by: str,
) -> None:
    headers = dict(message.headers or {})
    headers.update(
        {
            REASON: reason,
            DETAIL: detail[:500],
            QUEUE: queue,
            REJECTED_AT: datetime.now(UTC).isoformat(),
            REJECTED_BY: rejected_by,
            BROKER_USER: message.user_id or "",
        }
    )
    await publisher.publish(
        topology.dead,
        queue,
        message.body,
        message_id=message.message_id or f"dead-{message.delivery_tag}",
        type_=message.type,
        headers=headers,
        correlation_id=message.correlation_id,
        sign=False,
    )


class Consumer:
    """Runs one handler on one queue, on a channel of its own with its own prefetch."""

    def __init__(
        self,
        channel: AbstractChannel,
        publisher: Publisher,
        topology: Topology,
        queue: str,
        handler: Handler,
        *,
        component: str,
        prefetch: int = 32,
        retry_delay: float = 0.5,
        verifier: Verifier | None = None,
        allowed_senders: frozenset[str] | None = None,
        transient: tuple[type[BaseException], ...] = TRANSIENT,
        metrics: Metrics | None = None,
        head_start: HeadStart | None = None,
        urgent: bool = False,
    ) -> None:
        self.channel = channel
        self.publisher = publisher
        self.topology = topology
        self.queue = queue
        self.handler = handler
        self.component = component
        self.prefetch = prefetch
        self.retry_delay = retry_delay
        # Without a verifier nothing is checked: only tests of the broker layer itself do so.
        self.verifier = verifier
        self.allowed_senders = allowed_senders
        self.transient = transient
        self.metrics = metrics
        # Shared by a process's consumers: an urgent delivery holds back the routine ones
        # that have not started yet (broker.head_start).
        self.head_start = head_start
        self.urgent = urgent
        self.handled = 0
        self.dead_lettered = 0

    async def start(self) -> None:
        await self.channel.set_qos(prefetch_count=self.prefetch)
        # A passive declare (not get_queue) makes the queue part of what a robust channel
        # restores, so the consumer comes back after a reconnect.
        try:
            queue = await self.channel.declare_queue(self.queue, passive=True)
            await queue.consume(self._on_message, no_ack=False)
        except (
            aiormq.exceptions.ChannelAccessRefused,
            aiormq.exceptions.ChannelNotFoundEntity,  # not declared: provisioned users may not
        ) as exc:
            log.error("consume_refused", queue=self.queue, reason=str(exc))
            raise ConsumeRefused(f"cannot read {self.queue}: {exc}") from None

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        if self.verifier is not None:
            self.verifier.verify(
                message.headers,
                message.message_id,
                message.type,
                message.body,
                self.allowed_senders,
            )
        # A full queue downstream, a lost connection or a locked database passes: the message
        # is held (prefetch bounds how many) and retried in place rather than returned, so an
        # outage never spends its delivery limit and dead-letters good work.
        delay = self.retry_delay
        while True:
            try:
                with tracing.span("handle", {"messaging.destination.name": self.queue}):
                    await self.handler(message)
                return
            except self.transient as exc:
                if self.channel.is_closed:
                    raise  # the broker redelivers it once the connection is back
                log.warning(
                    "handler_waiting",
                    queue=self.queue,
                    message_id=message.message_id,
                    error=type(exc).__name__,
                    retry_in_s=delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        problem = unparseable(message)
        if problem is not None:
            # Nothing in it can be trusted or even read: no trace, no sender, no handler.
            started = time.perf_counter()
            outcome = await self._dead_letter(message, UNPARSEABLE_REASON, problem)
            self._observe(message, outcome, started)
            return
        # One task per delivery, so the trace and log context stay with this message.
        with tracing.consuming(message.headers, self.queue, message.message_id):
            structlog.contextvars.bind_contextvars(
                message_id=message.message_id, trace_id=tracing.trace_id(), queue=self.queue
            )
            await self._process(message)

    async def _process(self, message: AbstractIncomingMessage) -> None:
        started = time.perf_counter()
        try:
            await self._take_turn(message)
        except Rejected as exc:  # a DecodeError or SignatureRefused is one too (mash.errors)
            outcome = await self._dead_letter(message, exc.reason, exc.detail)
            self._observe(message, outcome, started)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # keep consuming; the delivery limit stops a poison message
            # The type only: an exception's text may quote a child's details.
            log.error(
                "handler_failed",
                queue=self.queue,
                message_id=message.message_id,
                error=type(exc).__name__,
                redelivered=message.redelivered,
            )
            await asyncio.sleep(self.retry_delay)
            await self._settle(message.nack(requeue=True))
            self._observe(message, "retried", started)
            return
        self.handled += 1
        await self._settle(message.ack())
        self._observe(message, "handled", started)

    async def _take_turn(self, message: AbstractIncomingMessage) -> None:
        if self.head_start is None:
            await self._handle(message)
        elif self.urgent:
            held = f"delivery:{self.queue}:{message.delivery_tag}"
            self.head_start.hold(held)
            try:
                await self._handle(message)
            finally:
                self.head_start.release(held)
        else:
            # Work for a Red contact in hand goes on (answers carry their contact's reference).
            await self.head_start.routine_turn(message.correlation_id)
            await self._handle(message)

    def _observe(self, message: AbstractIncomingMessage, outcome: str, started: float) -> None:
        if self.metrics is not None:
            elapsed = time.perf_counter() - started
            self.metrics.consumed(self.queue, message.type, message.headers, outcome, elapsed)

    async def _dead_letter(self, message: AbstractIncomingMessage, reason: str, detail: str) -> str:
        try:
            await dead_letter(
                self.publisher, self.topology, message, self.queue, reason, detail, self.component
            )
        except Exception as exc:
            log.error(
                "dead_letter_failed",
                queue=self.queue,
                message_id=message.message_id,
                error=type(exc).__name__,
            )
            await asyncio.sleep(self.retry_delay)
            await self._settle(message.nack(requeue=True))
            return "retried"
        self.dead_lettered += 1
        if self.metrics is not None:
            self.metrics.dead_letters.labels(self.queue, reason).inc()
        log.warning(
            "message_dead_lettered",
            queue=self.queue,
            message_id=message.message_id,
            reason=reason,
            detail=detail,
        )
        await self._settle(message.ack())
        return "dead_lettered"

    async def _settle(self, settle: Awaitable[None]) -> None:
        # After a connection loss the broker redelivers unsettled messages itself, and
        # handlers are idempotent, so a failed ack or nack is only worth a log line.
        try:
            await settle
        except Exception as exc:
            log.warning("settle_failed", queue=self.queue, error=type(exc).__name__)
