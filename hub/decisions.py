"""The end of a contact's work: the MASH manager's decision, and the rationale of every
re-rating.

A decision arrives as a signed ``ContactCommand`` with action ``DECIDE`` (from the console,
signed by the screening role like ``mash contact rerate``). In one store transaction it is:

- kept in the hub's state (the ``decisions`` table here), so later chronologies show it as
  that contact's outcome (:mod:`hub.chronology`);
- written to the audit log with the rationale and the name of the user who decided;
- sent on as a :class:`~schemas.models.ReferrerFeedback` to the referrer channel (the decision
  in plain words: never the agencies' findings nor the manager's rationale, because the
  referrer is outside the sealed hub) and an :class:`~schemas.models.OutcomeNotice` to every
  agency that was asked, on its request queue, so it knows the case is closed;
- announced as a ``DECIDED`` event for the console's board.

All of it goes through the outbox, so it is signed, confirmed and sent once, like every other
message. A contact is decided once: a second decision is refused, so the referrer and the
agencies never hear two outcomes. Once decided, the deadline no longer fires a partial packet
and outstanding agencies are no longer reminded; an answer still arriving is kept and
published as an amendment, as any late answer is.

Re-ratings keep their rationale beside the rating history (``rating_rationales``); packets
carry it in ``RatingChange.rationale``.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from broker.consumer import Rejected
from hub import audit
from hub.store import ContactRow, HubStore, from_ms, to_ms
from schemas.codec import decode
from schemas.enums import Decision, HubEventKind
from schemas.models import (
    CommandReply,
    Contact,
    ContactCommand,
    OutcomeNotice,
    RatingChange,
    ReferrerFeedback,
)

if TYPE_CHECKING:
    from hub.correlator import CommandResult, Correlator

__all__ = [
    "DECISION_LABELS",
    "DecisionRow",
    "decide",
    "decided_outcome",
    "decided_outcomes",
    "decision_for",
    "ensure_schema",
    "rating_history",
    "record_rationale",
    "refusal",
]

log = structlog.get_logger("mash.hub")

_DDL = """
CREATE TABLE IF NOT EXISTS decisions (
    ref TEXT PRIMARY KEY REFERENCES contacts (ref),
    decided_at INTEGER NOT NULL,
    decision TEXT NOT NULL,
    rationale TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    command_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rating_rationales (
    ref TEXT NOT NULL REFERENCES contacts (ref),
    changed_at INTEGER NOT NULL,
    rationale TEXT NOT NULL,
    changed_by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rating_rationales_ref ON rating_rationales (ref, changed_at);
"""

# The words a referrer, an agency and a chronology read for each decision.
DECISION_LABELS: dict[Decision, str] = {
    Decision.NO_FURTHER_ACTION: "no further action",
    Decision.SIGNPOST: "signposted to universal services",
    Decision.EARLY_HELP: "early help",
    Decision.CHILD_IN_NEED_S17: "child in need (s17)",
    Decision.CHILD_PROTECTION_S47: "child protection enquiry (s47)",
    Decision.IMMEDIATE_PROTECTION: "immediate protection",
}


@dataclass(frozen=True)
class DecisionRow:
    ref: str
    decided_at: datetime
    decision: Decision
    rationale: str
    decided_by: str


def ensure_schema(store: HubStore) -> None:
    """This module's tables, beside the store's own (idempotent)."""
    store.connection.executescript(_DDL)


def _has_tables(store: HubStore) -> bool:
    # A store opened without a correlator (the command line's views, a test's) may predate
    # this module's tables; it then holds no decision and no rationale.
    found = store.connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'decisions'"
    )
    return found.fetchone() is not None


def decision_for(store: HubStore, ref: str) -> DecisionRow | None:
    if not _has_tables(store):
        return None
    row = store.connection.execute(
        "SELECT decided_at, decision, rationale, decided_by FROM decisions WHERE ref = ?", (ref,)
    ).fetchone()
    if row is None:
        return None
    return DecisionRow(ref, from_ms(row[0]), Decision(row[1]), row[2], row[3])


def decided_outcome(store: HubStore, ref: str) -> str | None:
    """What a chronology says became of a decided contact, or None while undecided."""
    found = decision_for(store, ref)
    return None if found is None else f"decided: {DECISION_LABELS[found.decision]}"


def decided_outcomes(store: HubStore, refs: Sequence[str]) -> dict[str, str]:
    """:func:`decided_outcome` of many contacts in one query (a chronology's)."""
    if not refs or not _has_tables(store):
        return {}
    rows = store.connection.execute(
        f"SELECT ref, decision FROM decisions WHERE ref IN ({','.join('?' * len(refs))})",
        tuple(refs),
    )
    return {ref: f"decided: {DECISION_LABELS[Decision(decision)]}" for ref, decision in rows}


def record_rationale(
    db: sqlite3.Connection, ref: str, at: datetime, rationale: str | None, by: str
) -> None:
    if rationale:
        db.execute(
            "INSERT INTO rating_rationales (ref, changed_at, rationale, changed_by)"
            " VALUES (?, ?, ?, ?)",
            (ref, to_ms(at), rationale, by),
        )


def rating_history(store: HubStore, ref: str) -> list[RatingChange]:
    """The contact's ratings, oldest first, each re-rating with its rationale."""
    rationales = (
        dict(
            store.connection.execute(
                "SELECT changed_at, rationale FROM rating_rationales WHERE ref = ?", (ref,)
            ).fetchall()
        )
        if _has_tables(store)
        else {}
    )
    return [
        RatingChange(
            brag=brag, changed_at=at, deadline=deadline, rationale=rationales.get(to_ms(at))
        )
        for at, brag, deadline in store.rating_changes(ref)
    ]


def refusal(command: ContactCommand, store: HubStore, ref: str) -> Rejected | None:
    """Why a decision may not be taken, beyond the checks every command gets."""
    if command.decision is None:
        return Rejected("bad-command", "a decision needs a decision")
    if not (command.rationale or "").strip():
        return Rejected("bad-command", "a decision needs a rationale")
    if decision_for(store, ref) is not None:
        return Rejected("already-decided", f"{ref} was decided already")
    return None


def _by(command: ContactCommand, sender: str) -> str:
    # The console names its signed-in user; the signature proves only the screening role.
    return command.issued_by or sender


def _feedback_message(ref: str, decision: Decision) -> str:
    return (
        f"Thank you for your referral ({ref}). The Multi-Agency Safeguarding Hub has "
        f"completed its checks; the outcome is: {DECISION_LABELS[decision]}."
    )


def decide(
    correlator: Correlator,
    command: ContactCommand,
    row: ContactRow,
    message_id: str,
    sender: str,
    now: datetime,
) -> CommandResult:
    """Record the decision and send the feedback and notices (the module docstring)."""
    from hub.correlator import CommandResult  # the correlator imports this module

    assert command.decision is not None and command.rationale is not None  # refusal() checks
    store, topology = correlator.store, correlator.topology
    decision, by = command.decision, _by(command, sender)
    contact = decode(row.body, Contact)
    requests = store.requests_for(row.ref)
    with store.transaction() as db:
        db.execute(
            "INSERT INTO decisions (ref, decided_at, decision, rationale, decided_by,"
            " command_id) VALUES (?, ?, ?, ?, ?, ?)",
            (row.ref, to_ms(now), decision.value, command.rationale, by, command.command_id),
        )
        store.update_contact(db, row.ref, deadline_done=True)
        audit.append(
            db,
            sender,
            "decided",
            row.ref,
            now,
            decision=decision.value,
            rationale=command.rationale,
            by=by,
            command_id=command.command_id,
        )
        feedback = ReferrerFeedback(
            feedback_id=str(uuid.uuid4()),
            contact_ref=row.ref,
            decided_at=now,
            decision=decision,
            referrer=contact.referrer,
            message=_feedback_message(row.ref, decision),
        )
        correlator._send(db, topology.referrer, "feedback", feedback, row.ref)
        for request in requests:
            notice = OutcomeNotice(
                notice_id=str(uuid.uuid4()),
                contact_ref=row.ref,
                agency=request.agency,
                request_id=request.request_id,
                decided_at=now,
                decision=decision,
            )
            key = topology.request_key(request.agency, correlator.policy.lane(row.brag))
            correlator._send(db, topology.requests, key, notice, row.ref)
        correlator._event(
            db,
            HubEventKind.DECIDED,
            row.ref,
            brag=row.brag,
            decision=decision.value,
            agencies=",".join(r.agency for r in requests),
        )
        store.mark_seen(db, message_id, now)
    log.info("contact_decided", ref=row.ref, decision=decision.value, agencies=len(requests))
    return CommandResult(
        CommandReply(
            command_id=command.command_id,
            ok=True,
            contact_ref=row.ref,
            brag=row.brag,
            deadline=row.deadline,
        )
    )
