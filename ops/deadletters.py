"""Dead letters: list them, show one, replay them once their cause is fixed, purge them.

Every work queue dead-letters to ``<queue>.dead``, either through a consumer that found the
message bad (headers ``x-mash-reason``, ``x-mash-detail``, ``x-mash-queue``) or through the
broker when a message reached the queue's delivery limit (``x-death``,
``x-first-death-queue``, ``x-first-death-reason``). Both kinds are read here.

Browsing takes each message with ``basic.get`` without acknowledging it and then closes the
channel, which returns every message to its queue untouched: listing changes nothing.

A replay publishes the message to the exchange and routing key its source queue is bound to
in the topology table -- the normal path, with confirms -- keeping its message id, so a
handler that had in fact already applied it sees the id and does nothing twice, and its
original signature. Under provisioned users it runs as the ``operator`` role's broker user,
which the hub accepts for replays only (:mod:`broker.replay`). Only once
the broker has confirmed the republished message is the dead letter acknowledged (removed).
Each replay, and each purge, is recorded as a hub event on the events exchange
(``DEAD_LETTER_REPLAYED``, ``DEAD_LETTERS_PURGED``, with the operator's user name) and as a
structured log line.

Nothing here reads or prints a message body: it is child data.
"""

from __future__ import annotations

import contextlib
import getpass
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aio_pika
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractQueue,
)

from broker.consumer import (
    DETAIL,
    QUEUE,
    REASON,
    REJECTED_AT,
    REJECTED_BY,
    UNPARSEABLE_REASON,
)
from broker.publisher import Publisher
from broker.replay import REPLAYED_AT, REPLAYED_FROM
from broker.topology import Topology
from broker.wire import UNPARSEABLE
from hub import audit
from hub.store import HubStore
from mash.errors import MashError
from schemas.enums import HubEventKind
from schemas.models import HubEvent
from telemetry.metrics import agency_of

__all__ = ["DeadLetter", "DeadLetters", "NotFound", "Replayed", "select_all", "select_ids"]

log = structlog.get_logger("mash.ops")

# Headers that describe a message's death; a replayed message leaves them behind.
_DEATH_HEADERS = (REASON, DETAIL, QUEUE, REJECTED_AT, REJECTED_BY, "x-death", "x-delivery-count")
_DEATH_PREFIXES = ("x-first-death-", "x-last-death-")


class NotFound(MashError, LookupError):
    """No dead letter has that message id."""


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _plain(value: Any) -> Any:
    """A header value as JSON-friendly data (AMQP tables hold bytes and datetimes)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, datetime):
        return _utc(value).isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _utc(value: datetime) -> datetime:
    # AMQP timestamps are whole seconds since the epoch, decoded without a zone.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _first_death(headers: Mapping[str, Any]) -> Mapping[str, Any]:
    deaths = headers.get("x-death")
    if isinstance(deaths, list | tuple) and deaths and isinstance(deaths[-1], Mapping):
        return deaths[-1]  # the oldest death is last
    return {}


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    dead_queue: str
    source_queue: str
    reason: str
    detail: str
    dead_at: datetime | None
    rejected_by: str
    type: str
    contact_ref: str
    agency: str
    size: int
    headers: dict[str, Any] = field(repr=False)

    @classmethod
    def of(cls, message: AbstractIncomingMessage, dead_queue: str) -> DeadLetter:
        headers = dict(message.headers or {})
        death = _first_death(headers)
        source = (
            _text(headers.get(QUEUE))
            or _text(headers.get("x-first-death-queue"))
            or _text(death.get("queue"))
            or dead_queue.removesuffix(".dead")
        )
        reason = (
            _text(headers.get(REASON))
            or (UNPARSEABLE_REASON if UNPARSEABLE in headers else "")
            or _text(headers.get("x-first-death-reason"))
            or _text(death.get("reason"))
            or "unknown"
        )
        dead_at: datetime | None = None
        with contextlib.suppress(ValueError):  # any broker user may have set this header
            dead_at = _utc(datetime.fromisoformat(_text(headers.get(REJECTED_AT))))
        if dead_at is None and isinstance(death.get("time"), datetime):
            dead_at = _utc(death["time"])
        elif dead_at is None and message.timestamp is not None:
            dead_at = _utc(message.timestamp)
        return cls(
            message_id=message.message_id or "",
            dead_queue=dead_queue,
            source_queue=source,
            reason=reason,
            detail=_text(headers.get(DETAIL)) or _text(headers.get(UNPARSEABLE)),
            dead_at=dead_at,
            rejected_by=_text(headers.get(REJECTED_BY)) or ("broker" if death else ""),
            type=message.type or "",
            contact_ref=message.correlation_id or "",
            agency=agency_of(headers),
            size=len(message.body),
            headers={str(k): _plain(v) for k, v in headers.items()},
        )

    def summary(self) -> dict[str, Any]:
        """Everything an operator may see: ids, queues, reason, times, headers; no body."""
        return {
            "message_id": self.message_id,
            "dead_queue": self.dead_queue,
            "source_queue": self.source_queue,
            "reason": self.reason,
            "detail": self.detail,
            "dead_at": self.dead_at.isoformat() if self.dead_at else None,
            "rejected_by": self.rejected_by,
            "type": self.type,
            "contact_ref": self.contact_ref,
            "agency": self.agency,
            "body_bytes": self.size,
            "headers": self.headers,
        }


@dataclass(frozen=True)
class Replayed:
    letter: DeadLetter
    exchange: str
    routing_key: str


class DeadLetters:
    """Dead-letter operations on one MASH (one prefix) through one broker connection."""

    def __init__(
        self,
        topology: Topology,
        connection: AbstractConnection,
        audit_store: HubStore | None = None,
    ) -> None:
        self.topology = topology
        self.connection = connection
        self.audit_store = audit_store
        # Each work queue's one binding: where a replay sends its messages.
        self.routes: dict[str, tuple[str, str]] = {
            spec.name: spec.bindings[0]
            for spec in topology.queues()
            if spec.dead_letter_queue and spec.bindings
        }

    def dead_queues(self, source: str | None = None) -> list[str]:
        """Every dead-letter queue, or the one for ``source`` (a work queue, full or short)."""
        queues = self.topology.dead_letter_queues()
        if source is None:
            return queues
        wanted = {source, self.topology.name(source), f"{source}.dead"}
        wanted |= {f"{w}.dead" for w in list(wanted)}
        chosen = [q for q in queues if q in wanted]
        if not chosen:
            raise NotFound(f"no dead-letter queue for {source!r}")
        return chosen

    async def _existing(self, channel: AbstractChannel, name: str) -> AbstractQueue | None:
        try:
            return await channel.declare_queue(name, passive=True)
        except aio_pika.exceptions.ChannelClosed:
            return None  # not declared: this prefix's hub has not run on this broker

    async def _browse(
        self, dead_queue: str
    ) -> tuple[AbstractChannel, list[tuple[AbstractIncomingMessage, DeadLetter]]]:
        channel = await self.connection.channel()
        queue = await self._existing(channel, dead_queue)
        if queue is None:
            return await self.connection.channel(), []
        count = queue.declaration_result.message_count or 0
        taken = []
        for _ in range(count):
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            taken.append((message, DeadLetter.of(message, dead_queue)))
        return channel, taken

    async def letters(self, source: str | None = None) -> list[DeadLetter]:
        letters: list[DeadLetter] = []
        for dead_queue in self.dead_queues(source):
            channel, taken = await self._browse(dead_queue)
            letters.extend(letter for _, letter in taken)
            await channel.close()  # returns every message, unacknowledged, to its queue
        letters.sort(key=lambda d: d.dead_at or datetime.min.replace(tzinfo=UTC))
        return letters

    async def show(self, message_id: str, source: str | None = None) -> list[DeadLetter]:
        found = [d for d in await self.letters(source) if d.message_id == message_id]
        if not found:
            raise NotFound(f"no dead letter with message id {message_id}")
        return found

    async def counts(self) -> dict[str, int]:
        counts = {}
        for dead_queue in self.dead_queues():
            channel = await self.connection.channel()
            queue = await self._existing(channel, dead_queue)
            if queue is not None:
                counts[dead_queue] = queue.declaration_result.message_count or 0
                await channel.close()
        return counts

    async def replay(
        self,
        publisher: Publisher,
        select: Callable[[DeadLetter], bool],
        source: str | None = None,
    ) -> list[Replayed]:
        """Republish every dead letter ``select`` picks through its normal path, then drop it."""
        replayed: list[Replayed] = []
        for dead_queue in self.dead_queues(source):
            channel, taken = await self._browse(dead_queue)
            try:
                for message, letter in taken:
                    if not select(letter):
                        continue
                    route = self.routes.get(letter.source_queue)
                    if route is None:
                        log.warning(
                            "dead_letter_not_replayable",
                            message_id=letter.message_id,
                            source_queue=letter.source_queue,
                        )
                        continue
                    await self._republish(publisher, message, letter, route)
                    await message.ack()
                    replayed.append(Replayed(letter, *route))
                    await self._record_replay(publisher, letter, route)
            finally:
                await channel.close()
        return replayed

    async def _republish(
        self,
        publisher: Publisher,
        message: AbstractIncomingMessage,
        letter: DeadLetter,
        route: tuple[str, str],
    ) -> None:
        headers = {
            k: v
            for k, v in (message.headers or {}).items()
            if k not in _DEATH_HEADERS and not k.startswith(_DEATH_PREFIXES)
        }
        headers[REPLAYED_AT] = datetime.now(UTC).isoformat()
        headers[REPLAYED_FROM] = letter.dead_queue
        exchange, key = route
        # No reply_to: whoever waited for a reply has long gone. The user_id is now the
        # operator's (the broker checks it against the login); with the replay headers, the
        # receiver takes the original signature, kept unchanged, as proof of origin
        # (broker.replay).
        await publisher.publish(
            exchange,
            key,
            message.body,
            message_id=letter.message_id or str(uuid.uuid4()),
            type_=message.type,
            headers=headers,
            correlation_id=message.correlation_id,
        )

    async def _event(
        self,
        publisher: Publisher,
        kind: HubEventKind,
        *,
        contact_ref: str | None = None,
        agency: str | None = None,
        **detail: str,
    ) -> None:
        event = HubEvent(
            event_id=str(uuid.uuid4()),
            occurred_at=datetime.now(UTC),
            contact_ref=contact_ref or None,
            kind=kind,
            agency=agency or None,
            detail={"operator": _operator(), **detail},
        )
        await publisher.publish_model(
            self.topology.events,
            kind.value.lower(),
            event,
            message_id=event.event_id,
            correlation_id=contact_ref or None,
        )

    async def _record_replay(
        self, publisher: Publisher, letter: DeadLetter, route: tuple[str, str]
    ) -> None:
        await self._event(
            publisher,
            HubEventKind.DEAD_LETTER_REPLAYED,
            contact_ref=letter.contact_ref if letter.contact_ref.startswith("MASH-") else None,
            agency=letter.agency,
            message_id=letter.message_id,
            dead_queue=letter.dead_queue,
            source_queue=letter.source_queue,
            reason=letter.reason,
            exchange=route[0],
            routing_key=route[1],
        )
        self._audit(
            "dead-letter-replayed",
            letter.contact_ref if letter.contact_ref.startswith("MASH-") else None,
            message_id=letter.message_id or "",
            dead_queue=letter.dead_queue,
            reason=letter.reason,
        )
        log.warning(
            "dead_letter_replayed",
            operator=_operator(),
            message_id=letter.message_id,
            dead_queue=letter.dead_queue,
            source_queue=letter.source_queue,
            reason=letter.reason,
            exchange=route[0],
            routing_key=route[1],
        )

    async def purge(self, publisher: Publisher, source: str | None = None) -> dict[str, int]:
        """Delete every dead letter (of one queue, or all); returns how many per queue."""
        purged: dict[str, int] = {}
        for dead_queue in self.dead_queues(source):
            channel = await self.connection.channel()
            queue = await self._existing(channel, dead_queue)
            if queue is None:
                continue
            result = await queue.purge()
            purged[dead_queue] = int(getattr(result, "message_count", 0) or 0)
            await channel.close()
        removed = {q: n for q, n in purged.items() if n}
        if removed:
            await self._event(
                publisher,
                HubEventKind.DEAD_LETTERS_PURGED,
                queues=",".join(removed),
                count=str(sum(removed.values())),
            )
            self._audit(
                "dead-letters-purged",
                None,
                queues=",".join(removed),
                count=str(sum(removed.values())),
            )
            log.warning("dead_letters_purged", operator=_operator(), queues=removed)
        return purged

    def _audit(self, action: str, contact_ref: str | None, **detail: str) -> None:
        if self.audit_store is not None:
            with self.audit_store.transaction() as db:
                audit.append(db, _operator(), action, contact_ref, None, **detail)


def _operator() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers
        return "unknown"


def select_ids(ids: Iterable[str]) -> Callable[[DeadLetter], bool]:
    wanted = set(ids)
    return lambda letter: letter.message_id in wanted


def select_all() -> Callable[[DeadLetter], bool]:
    return lambda letter: True
