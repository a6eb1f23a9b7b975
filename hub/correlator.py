"""The hub's decisions: what a contact, an answer, a re-rating or a passing deadline changes,
and which messages that sends. Each decision is one store transaction; messages go to the
outbox inside it (see :mod:`hub.store`), so the broker side can crash or lag without losing
or doubling anything.

When children's social care answers that the child already has an allocated social worker or
lead professional, the contact is sent straight on to them (:mod:`hub.allocation`); every
packet carries the contact's chronology of earlier concerns (:mod:`hub.chronology`).

Completion follows the aggregator pattern: a contact's packet is published when every agency
asked has answered (``COMPLETE``) or when its deadline passes (``DEADLINE``, naming the
silent agencies); an answer that arrives after a packet went out produces an ``AMENDMENT``.
Whether an answer was late is decided by the hub's own clock when it takes the answer in; the
agency's ``responded_at`` is kept in the answer for information only.

Each signed message has its effect at most once. A contact's effect is keyed on its
``contact_id`` and an answer's on its request (a request is answered once); a command has no
such key (Amber to Red and back to Amber again is a real history), so a command's message id
is recorded as handled whatever its outcome, applied, unchanged or refused, and a command is
refused when it is stale: issued more than ``command_max_age`` ago, or before the contact's
last change. Every refusal is written to the audit log and dead-lettered with its reason.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import structlog

from broker.consumer import Rejected
from broker.topology import ALLOCATED_TEAM, Topology
from hub import audit, decisions
from hub.allocation import allocated_worker
from hub.chronology import chronology, subject_keys
from hub.intake import OutOfBounds, check_contact
from hub.policy import BragPolicy
from hub.reminders import Reminders
from hub.store import OUTBOX_EVENTS, OUTBOX_ROUTINE, OUTBOX_URGENT, ContactRow, HubStore
from schemas.codec import decode, encode
from schemas.enums import Brag, CommandAction, HubEventKind, PacketReason
from schemas.models import (
    MAX_RATING_CHANGES,
    AgencyResponse,
    AllocatedContact,
    AvroModel,
    CommandReply,
    Contact,
    ContactCommand,
    HubEvent,
    InformationRequest,
    RestrictedHolding,
    RestrictedRecord,
    ScreeningPacket,
)
from telemetry import tracing
from telemetry.metrics import AGENCY_HEADER

__all__ = ["COMMAND_MAX_AGE", "Accepted", "AnswerOutcome", "CommandResult", "Correlator"]

log = structlog.get_logger("mash.hub")

_PACKET_NAMESPACE = uuid.UUID("6f1d3c1e-4a8b-4f0e-9a57-0b1e6d2f7c11")

# A command older than this is refused: an operator re-rates what is on the screen now, and a
# captured command must not be usable later (MASH_COMMAND_MAX_AGE_S).
COMMAND_MAX_AGE = timedelta(minutes=5)
# How far ahead of the hub's clock an operator's clock may run before a command is refused as
# not yet issued (otherwise a clock far ahead would make commands that never go stale).
_CLOCK_SKEW = timedelta(minutes=1)


@dataclass(frozen=True)
class Accepted:
    ref: str
    brag: Brag
    deadline: datetime
    created: bool


AnswerOutcome = Literal["recorded", "duplicate"]


@dataclass(frozen=True)
class CommandResult:
    """What a command did: the reply for its sender and, when refused, why (the caller
    dead-letters it after the refusal is committed)."""

    reply: CommandReply
    refusal: Rejected | None = None
    # Re-rated to Red with agencies still working on it: a Red contact in hand from now on.
    now_red: bool = False


def _priority(model: AvroModel) -> int:
    # Operators' events wait for the work; Red work goes before everything else.
    if isinstance(model, HubEvent):
        return OUTBOX_EVENTS
    return OUTBOX_URGENT if getattr(model, "brag", None) is Brag.RED else OUTBOX_ROUTINE


def _now() -> datetime:
    return datetime.now(UTC)


class Correlator:
    def __init__(
        self,
        store: HubStore,
        topology: Topology,
        policy: BragPolicy,
        agencies: Sequence[str],
        clock: Callable[[], datetime] = _now,
        command_max_age: timedelta = COMMAND_MAX_AGE,
    ) -> None:
        self.store = store
        self.topology = topology
        self.policy = policy
        self.agencies = tuple(agencies)
        self.clock = clock
        self.command_max_age = command_max_age
        self.reminders = Reminders(self)
        decisions.ensure_schema(store)

    # Outgoing messages ---------------------------------------------------------------
    def _send(
        self, db: sqlite3.Connection, exchange: str, key: str, model: AvroModel, ref: str | None
    ) -> None:
        self.store.enqueue(
            db,
            message_id=str(uuid.uuid4()),
            exchange=exchange,
            routing_key=key,
            type_=model.avro_name,
            body=encode(model),
            correlation_id=ref,
            headers=self._headers(ref, model),
            priority=_priority(model),
        )

    def _headers(self, ref: str | None, model: AvroModel) -> dict[str, str]:
        # Every message sent for a contact continues the contact's trace (telemetry.tracing).
        headers: dict[str, str] = tracing.headers_for(self.store.traceparent(ref)) if ref else {}
        agency = getattr(model, "agency", None)
        if isinstance(agency, str):
            headers[AGENCY_HEADER] = agency
        return headers

    def _event(
        self,
        db: sqlite3.Connection,
        kind: HubEventKind,
        ref: str | None,
        *,
        brag: Brag | None = None,
        agency: str | None = None,
        **detail: str,
    ) -> None:
        event = HubEvent(
            event_id=str(uuid.uuid4()),
            occurred_at=self.clock(),
            contact_ref=ref,
            kind=kind,
            brag=brag,
            agency=agency,
            detail=detail,
        )
        self._send(db, self.topology.events, kind.value.lower(), event, ref)

    def _request(
        self,
        db: sqlite3.Connection,
        contact: Contact,
        ref: str,
        agency: str,
        request_id: str,
        revision: int,
        brag: Brag,
        deadline: datetime,
    ) -> None:
        request = InformationRequest(
            request_id=request_id,
            revision=revision,
            contact_ref=ref,
            agency=agency,
            brag=brag,
            deadline=deadline,
            issued_at=self.clock(),
            concerns_summary=contact.concerns_summary,
            consent=contact.consent,
            lawful_basis=contact.lawful_basis,
            subjects=contact.subjects,
        )
        key = self.topology.request_key(agency, self.policy.lane(brag))
        self._send(db, self.topology.requests, key, request, ref)

    def _packet(
        self, db: sqlite3.Connection, row: ContactRow, reason: PacketReason
    ) -> ScreeningPacket:
        contact = decode(row.body, Contact)
        version = row.packet_version + 1
        requests = self.store.requests_for(row.ref)
        answers = [decode(a.body, AgencyResponse) for a in self.store.answers_for(row.ref)]
        earlier, omitted = chronology(self.store, row, contact, answers)
        packet = ScreeningPacket(
            packet_id=str(uuid.uuid5(_PACKET_NAMESPACE, f"{row.ref}/{version}")),
            contact_ref=row.ref,
            version=version,
            reason=reason,
            published_at=self.clock(),
            received_at=row.received_at,
            brag=row.brag,
            deadline=row.deadline,
            rating_history=decisions.rating_history(self.store, row.ref),
            referrer=contact.referrer,
            concerns_summary=contact.concerns_summary,
            consent=contact.consent,
            lawful_basis=contact.lawful_basis,
            subjects=contact.subjects,
            answers=answers,
            late_agencies=[r.agency for r in requests if r.late],
            missing_agencies=[r.agency for r in requests if r.answered_at is None],
            restricted_held=[
                RestrictedHolding(agency=r.agency, reference=r.reference)
                for r in self.store.restricted_for(row.ref)
            ],
            allocated_worker=allocated_worker(contact, answers),
            chronology=earlier,
            chronology_omitted=omitted,
        )
        self._send(db, self.topology.packets, "", packet, row.ref)
        self.store.update_contact(db, row.ref, packet_version=version)
        audit.append(
            db,
            "hub",
            "packet-published",
            row.ref,
            self.clock(),
            version=str(version),
            reason=reason.value,
            answered=",".join(a.agency for a in answers),
            missing=",".join(packet.missing_agencies),
        )
        self._event(
            db,
            HubEventKind.PACKET_PUBLISHED,
            row.ref,
            brag=row.brag,
            version=str(version),
            reason=reason.value,
            missing=",".join(packet.missing_agencies),
        )
        return packet

    # Decisions -----------------------------------------------------------------------
    def accept_contact(
        self,
        contact: Contact,
        message_id: str,
        sender: str = "operator",
        *,
        replayed_by: str | None = None,
    ) -> Accepted:
        """``replayed_by``: the operator's broker user when the contact is a dead letter it
        replayed (audited as such)."""
        existing = self.store.ref_for_contact_id(contact.contact_id)
        if existing is not None:
            row = self.store.contact(existing)
            assert row is not None
            return Accepted(row.ref, row.brag, row.deadline, created=False)
        agencies = list(dict.fromkeys(contact.agencies)) or list(self.agencies)
        unknown = sorted(set(agencies) - set(self.agencies))
        if unknown:
            raise Rejected("unknown-agency", ",".join(unknown))
        now = self.clock()
        try:
            check_contact(contact, now)  # from the future, or over the packet budget
        except OutOfBounds as exc:
            raise Rejected(exc.reason, str(exc)) from None
        # A submitter's clock may run ahead; the deadline never starts in the future.
        received = min(contact.received_at, now)
        deadline = self.policy.deadline(received, contact.brag)
        with self.store.transaction() as db:
            # A reference takes the year the hub accepted the contact, not the year it says it
            # was received: numbers run on from the last issued, never from an earlier year's.
            ref, seq = self.store.allocate_ref(db, now.year)
            stored = contact.model_copy(
                update={"contact_ref": ref, "received_at": received, "agencies": agencies}
            )
            self.store.add_contact(
                db,
                ref=ref,
                year=now.year,
                seq=seq,
                contact_id=contact.contact_id,
                received_at=received,
                brag=contact.brag,
                deadline=deadline,
                body=encode(stored),
                referrer_kind=stored.referrer.kind.value,
                traceparent=tracing.traceparent(),
            )
            self.store.add_contact_subjects(db, ref, subject_keys(stored))
            audit.append(
                db,
                sender,
                "contact-received",
                ref,
                now,
                brag=contact.brag.value,
                consent=contact.consent.value,
                lawful_basis=contact.lawful_basis.value,
                deadline=deadline.isoformat(),
            )
            if replayed_by is not None:
                audit.append(db, replayed_by, "contact-replayed", ref, now, message_id=message_id)
            self.reminders.schedule(db, ref, received, contact.brag, now)
            for agency in agencies:
                request_id = str(uuid.uuid4())
                self.store.add_request(db, request_id, ref, agency, now)
                self._request(db, stored, ref, agency, request_id, 0, contact.brag, deadline)
                audit.append(
                    db,
                    "hub",
                    "request-sent",
                    ref,
                    now,
                    agency=agency,
                    request_id=request_id,
                    lawful_basis=contact.lawful_basis.value,
                )
            self._event(
                db,
                HubEventKind.CONTACT_RECEIVED,
                ref,
                brag=contact.brag,
                deadline=deadline.isoformat(),
                agencies=",".join(agencies),
            )
            self.store.mark_seen(db, message_id, now)
        log.info("contact_received", ref=ref, brag=contact.brag.value, agencies=len(agencies))
        return Accepted(ref, contact.brag, deadline, created=True)

    def accept_answer(
        self,
        response: AgencyResponse,
        message_id: str,
        sender: str,
        *,
        replayed_by: str | None = None,
    ) -> AnswerOutcome:
        """``replayed_by``: the operator's broker user when the answer is a dead letter it
        replayed (accepted on the agency's signature alone, and audited as such)."""
        if response.agency != sender:
            # The signature proves who sent it; an answer may only speak for its sender.
            raise Rejected(
                "sender-mismatch", f"answer claims {response.agency} but was signed by {sender}"
            )
        if self.store.seen(message_id):
            return "duplicate"
        request = self.store.request(response.request_id)
        if request is None:
            raise Rejected("unknown-request", response.request_id)
        if request.agency != response.agency or request.ref != response.contact_ref:
            raise Rejected(
                "agency-mismatch",
                f"request {request.request_id} was sent to {request.agency}, "
                f"answered as {response.agency}",
            )
        now = self.clock()
        with self.store.transaction() as db:
            # Re-read inside the transaction: the request may have been answered meanwhile.
            request = self.store.request(response.request_id)
            row = self.store.contact(response.contact_ref)
            assert request is not None and row is not None
            if request.answered_at is not None:
                self.store.mark_seen(db, message_id, now)
                return "duplicate"
            # The hub's receipt time decides: the agency's responded_at is its own clock's
            # word and could be backdated. (Answers that waited on the broker while the hub
            # was down are taken in at start-up, before any deadline is judged.)
            late = now > row.deadline
            restricted_reference = None
            if response.restricted is not None:
                restricted_reference = self._file_restricted(db, response, now)
            self.store.add_answer(
                db,
                response_id=response.response_id,
                request_id=request.request_id,
                ref=row.ref,
                agency=request.agency,
                received_at=now,
                late=late,
                # The sealed part lives on the restricted file only, never in a packet.
                body=encode(response.model_copy(update={"restricted": None})),
                outcome=response.outcome.value,
            )
            audit.append(
                db,
                request.agency,
                "answer-received",
                row.ref,
                now,
                request_id=request.request_id,
                outcome=response.outcome.value,
                late=str(late).lower(),
                restricted=restricted_reference or "",
            )
            if replayed_by is not None:
                audit.append(
                    db,
                    replayed_by,
                    "answer-replayed",
                    row.ref,
                    now,
                    agency=request.agency,
                    request_id=request.request_id,
                    message_id=message_id,
                )
            routed = None
            if request.agency == ALLOCATED_TEAM and row.routed_to is None:
                routed = self._route_to_allocated_worker(db, row, response, now)
            outstanding = [r for r in self.store.requests_for(row.ref) if r.answered_at is None]
            # Every answer is an event: the console's board fills its agency gauges from
            # them within a second (events go out on the outbox's lowest lane, after work).
            self._event(
                db,
                HubEventKind.ANSWER_LATE if late else HubEventKind.ANSWER_RECEIVED,
                row.ref,
                brag=row.brag,
                agency=request.agency,
                outcome=response.outcome.value,
                outstanding=str(len(outstanding)),
            )
            state = "complete" if not outstanding else row.state
            if row.packet_version > 0:
                self._packet(db, row, PacketReason.AMENDMENT)
            elif not outstanding:
                self._packet(db, row, PacketReason.COMPLETE)
            self.store.update_contact(
                db, row.ref, state=state, deadline_done=True if not outstanding else None
            )
            self.store.mark_seen(db, message_id, now)
        log.info(
            "answer_received",
            ref=row.ref,
            agency=request.agency,
            brag=row.brag.value,
            late=late,
            outstanding=len(outstanding),
        )
        if routed is not None:
            log.info("contact_routed", ref=row.ref, agency=request.agency, role=routed)
        return "recorded"

    def _route_to_allocated_worker(
        self, db: sqlite3.Connection, row: ContactRow, response: AgencyResponse, now: datetime
    ) -> str | None:
        """Send the contact straight on to the child's allocated worker, if there is one;
        returns the worker's role."""
        contact = decode(row.body, Contact)
        worker = allocated_worker(contact, [response])
        if worker is None:
            return None
        routed = AllocatedContact(
            contact_ref=row.ref,
            routed_at=now,
            agency=response.agency,
            worker=worker,
            brag=row.brag,
            deadline=row.deadline,
            contact=contact,
        )
        self._send(db, self.topology.allocated, ALLOCATED_TEAM, routed, row.ref)
        self.store.set_routed(db, row.ref, worker.role.value)
        # The team and role say where the contact went; the worker's name stays in the
        # message and the packet.
        audit.append(
            db,
            "hub",
            "contact-routed",
            row.ref,
            now,
            agency=response.agency,
            subject_id=worker.subject_id,
            role=worker.role.value,
            team=worker.team,
        )
        # No event kind of its own (old readers of the enum would refuse it): the answer
        # that routed the contact is the event, with where it went in the detail.
        self._event(
            db,
            HubEventKind.ANSWER_RECEIVED,
            row.ref,
            brag=row.brag,
            agency=response.agency,
            routed="allocated-worker",
            role=worker.role.value,
            team=worker.team,
        )
        return worker.role.value

    def _file_restricted(
        self, db: sqlite3.Connection, response: AgencyResponse, now: datetime
    ) -> str:
        assert response.restricted is not None
        reference = f"RF-{response.contact_ref}-{response.agency}"
        self.store.add_restricted(
            db,
            reference=reference,
            ref=response.contact_ref,
            agency=response.agency,
            response_id=response.response_id,
            received_at=now,
            envelope=encode(response.restricted),
        )
        record = RestrictedRecord(
            reference=reference,
            contact_ref=response.contact_ref,
            agency=response.agency,
            response_id=response.response_id,
            received_at=now,
            envelope=response.restricted,
        )
        self._send(db, self.topology.restricted, "file", record, response.contact_ref)
        return reference

    def fire_due_deadlines(self) -> list[str]:
        """Publish a partial packet for every contact whose deadline has passed, once."""
        now = self.clock()
        fired: list[str] = []
        for ref in self.store.due_refs(now):
            with self.store.transaction() as db:
                row = self.store.contact(ref)
                if row is None or row.deadline_done or row.deadline > now:
                    continue
                packet = self._packet(db, row, PacketReason.DEADLINE)
                self.store.update_contact(db, ref, state="partial", deadline_done=True)
                audit.append(
                    db,
                    "hub",
                    "deadline-passed",
                    ref,
                    now,
                    brag=row.brag.value,
                    missing=",".join(packet.missing_agencies),
                )
                self._event(
                    db,
                    HubEventKind.DEADLINE_PASSED,
                    ref,
                    brag=row.brag,
                    missing=",".join(packet.missing_agencies),
                )
            overdue_ms = int((now - row.deadline).total_seconds() * 1000)
            log.info(
                "deadline_passed",
                ref=ref,
                brag=row.brag.value,
                missing=packet.missing_agencies,
                overdue_ms=overdue_ms,
            )
            fired.append(ref)
        return fired

    def refuse_contact(self, message_id: str, sender: str, refusal: Rejected) -> None:
        """Audit a contact refused before it was read (its broker user, its reply_to). Not
        recorded as handled: the contact's own id keys its effect, and a replay of the dead
        letter (without the reply_to) must still take it in."""
        with self.store.transaction() as db:
            audit.append(
                db,
                sender,
                "contact-refused",
                None,
                self.clock(),
                reason=refusal.reason,
                message_id=message_id,
            )
        log.warning("contact_refused", message_id=message_id, reason=refusal.reason)

    def command(
        self,
        command: ContactCommand,
        message_id: str,
        sender: str = "operator",
        refusal: Rejected | None = None,
        *,
        replayed_by: str | None = None,
    ) -> CommandResult:
        """Apply a command, or refuse it; either way its message id is recorded as handled.

        ``refusal`` is a reason found before the command was read (the broker user that sent
        it, where it asked to be answered): it is recorded and audited like any other.
        ``replayed_by``: the operator's broker user when the command is a dead letter it
        replayed (audited as such when it takes effect).
        """
        now = self.clock()
        row = self.store.contact(command.contact_ref)
        if self.store.seen(message_id):
            refusal = Rejected("replayed-command", f"message {message_id} was handled already")
        elif refusal is None:
            refusal = self._stale(command, row, now)
        if refusal is None and row is not None and command.action is CommandAction.DECIDE:
            refusal = decisions.refusal(command, self.store, row.ref)
        if refusal is not None:
            return self._refuse(command, message_id, sender, refusal, now)
        assert row is not None  # _stale refuses an unknown reference
        if command.action is CommandAction.DECIDE:
            return decisions.decide(self, command, row, message_id, sender, now)
        assert command.brag is not None  # _stale refuses a re-rating without one
        if row.brag is command.brag:
            # Nothing to change, but handled all the same: a replay must not find it new.
            with self.store.transaction() as db:
                self.store.mark_seen(db, message_id, now)
            return CommandResult(
                CommandReply(
                    command_id=command.command_id,
                    ok=True,
                    contact_ref=row.ref,
                    brag=row.brag,
                    deadline=row.deadline,
                )
            )
        deadline = self.policy.deadline(row.received_at, command.brag)
        with self.store.transaction() as db:
            self.store.update_contact(db, row.ref, brag=command.brag, deadline=deadline)
            self.store.add_rating_change(db, row.ref, now, command.brag, deadline)
            by = command.issued_by or sender
            decisions.record_rationale(db, row.ref, now, command.rationale, by)
            audit.append(
                db,
                sender,
                "re-rated",
                row.ref,
                now,
                previous=row.brag.value,
                brag=command.brag.value,
                deadline=deadline.isoformat(),
                command_id=command.command_id,
                rationale=command.rationale or "",
                by=by,
            )
            if replayed_by is not None:
                audit.append(
                    db,
                    replayed_by,
                    "command-replayed",
                    row.ref,
                    now,
                    command_id=command.command_id,
                    message_id=message_id,
                )
            contact = decode(row.body, Contact)
            outstanding = [r for r in self.store.requests_for(row.ref) if r.answered_at is None]
            if not row.deadline_done:
                self.reminders.schedule(db, row.ref, row.received_at, command.brag, now)
                # Agencies still working on it are told the new rating and deadline, on the
                # new rating's lane, so a Red re-rating overtakes routine work.
                for request in outstanding:
                    revision = self.store.bump_revision(db, request.request_id)
                    self._request(
                        db,
                        contact,
                        row.ref,
                        request.agency,
                        request.request_id,
                        revision,
                        command.brag,
                        deadline,
                    )
            self._event(
                db,
                HubEventKind.RERATED,
                row.ref,
                brag=command.brag,
                previous=row.brag.value,
                deadline=deadline.isoformat(),
                outstanding=",".join(r.agency for r in outstanding),
            )
            self.store.mark_seen(db, message_id, now)
        log.info(
            "contact_rerated",
            ref=row.ref,
            previous=row.brag.value,
            brag=command.brag.value,
            outstanding=len(outstanding),
        )
        return CommandResult(
            CommandReply(
                command_id=command.command_id,
                ok=True,
                contact_ref=row.ref,
                brag=command.brag,
                deadline=deadline,
            ),
            now_red=command.brag is Brag.RED
            and bool(outstanding)
            and not row.deadline_done
            and row.packet_version == 0,
        )

    def _stale(
        self, command: ContactCommand, row: ContactRow | None, now: datetime
    ) -> Rejected | None:
        """Why this command may not take effect now, or None."""
        if row is None:
            return Rejected("unknown-reference", f"unknown reference {command.contact_ref}")
        if command.action is CommandAction.RERATE and command.brag is None:
            return Rejected("bad-command", "a re-rating needs a rating")
        issued = command.issued_at
        if issued > now + _CLOCK_SKEW:
            return Rejected(
                "stale-command",
                f"command issued at {issued.isoformat()}, ahead of the hub's clock"
                f" ({now.isoformat()}); check the sender's clock",
            )
        if now - issued > self.command_max_age:
            return Rejected(
                "stale-command",
                f"command issued at {issued.isoformat()}, more than"
                f" {self.command_max_age.total_seconds():g}s ago",
            )
        changes = self.store.rating_changes(row.ref)
        last_change = max(at for at, _, _ in changes)
        if issued < last_change:
            return Rejected(
                "stale-command",
                f"command issued at {issued.isoformat()}, before the contact's last change"
                f" at {last_change.isoformat()}",
            )
        if len(changes) >= MAX_RATING_CHANGES:
            # Every change travels in the packet's rating history, inside its size budget.
            return Rejected(
                "too-many-ratings",
                f"{row.ref} has had {MAX_RATING_CHANGES} ratings, the most one contact may",
            )
        return None

    def _refuse(
        self,
        command: ContactCommand,
        message_id: str,
        sender: str,
        refusal: Rejected,
        now: datetime,
    ) -> CommandResult:
        known = self.store.contact(command.contact_ref) is not None
        with self.store.transaction() as db:
            # Recorded even when refused: the same message must not succeed later, when the
            # reference exists or the check that refused it no longer would.
            if not self.store.seen(message_id):
                self.store.mark_seen(db, message_id, now)
            audit.append(
                db,
                sender,
                "command-refused",
                command.contact_ref if known else None,
                now,
                reason=refusal.reason,
                command_id=command.command_id,
                message_id=message_id,
                reference=command.contact_ref,
                issued_at=command.issued_at.isoformat(),
            )
        log.warning(
            "command_refused",
            ref=command.contact_ref,
            command_id=command.command_id,
            reason=refusal.reason,
        )
        reply = CommandReply(
            command_id=command.command_id,
            ok=False,
            contact_ref=command.contact_ref if known else None,
            error=refusal.detail or refusal.reason,
        )
        return CommandResult(reply, refusal)
