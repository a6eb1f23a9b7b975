"""Reminders before a deadline: stored with the contact like the deadline itself.

When a contact arrives (and again when it is re-rated) its reminder times are computed from
:meth:`hub.policy.BragPolicy.reminder_times` and stored. When one falls due, every agency still
outstanding gets a :class:`~schemas.models.RequestReminder` on its request queue, on the
contact's lane; the reminder row is marked sent in the same transaction that puts the
messages in the outbox, so each reminder goes out exactly once, even across restarts.

A re-rating replaces the reminders not yet sent (those already sent stay, as a record);
reminder times that the new rating puts in the past are dropped rather than sent at once,
since the re-issued request already tells the agency its new deadline. A reminder that falls
due after its contact's deadline passed, or once every agency has answered, reminds nobody.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from schemas.enums import Brag, HubEventKind
from schemas.models import RequestReminder
from telemetry.tracing import trace_id_of

if TYPE_CHECKING:
    from hub.correlator import Correlator

__all__ = ["Reminders", "SentReminder"]

log = structlog.get_logger("mash.hub")


@dataclass(frozen=True)
class SentReminder:
    ref: str
    agency: str
    brag: Brag
    fraction: float


class Reminders:
    def __init__(self, correlator: Correlator) -> None:
        self._c = correlator

    def schedule(
        self,
        db: sqlite3.Connection,
        ref: str,
        received_at: datetime,
        brag: Brag,
        now: datetime,
    ) -> None:
        policy = self._c.policy
        times = policy.reminder_times(received_at, brag)
        self._c.store.replace_reminders(
            db,
            ref,
            [(f, at) for f, at in zip(policy.reminder_fractions, times, strict=True) if at > now],
        )

    def fire_due(self) -> list[SentReminder]:
        """Send every reminder that has fallen due, once; returns what was sent."""
        store, now = self._c.store, self._c.clock()
        sent: list[SentReminder] = []
        for due in store.due_reminders(now):
            with store.transaction() as db:
                reminder = store.reminder(due.id)
                if reminder is None or reminder.sent_at is not None:
                    continue
                contact = store.contact(reminder.ref)
                assert contact is not None  # reminders reference their contact
                outstanding = (
                    []
                    if contact.deadline_done or contact.deadline <= now
                    else [r for r in store.requests_for(reminder.ref) if r.answered_at is None]
                )
                for request in outstanding:
                    message = RequestReminder(
                        request_id=request.request_id,
                        contact_ref=contact.ref,
                        agency=request.agency,
                        brag=contact.brag,
                        deadline=contact.deadline,
                        sent_at=now,
                        fraction=reminder.fraction,
                    )
                    key = self._c.topology.request_key(
                        request.agency, self._c.policy.lane(contact.brag)
                    )
                    self._c._send(db, self._c.topology.requests, key, message, contact.ref)
                    sent.append(
                        SentReminder(contact.ref, request.agency, contact.brag, reminder.fraction)
                    )
                agencies = [r.agency for r in outstanding]
                store.mark_reminder_sent(db, reminder.id, now, agencies)
                if agencies:
                    self._c._event(
                        db,
                        HubEventKind.REMINDER_SENT,
                        contact.ref,
                        brag=contact.brag,
                        agencies=",".join(agencies),
                        fraction=f"{reminder.fraction:g}",
                        deadline=contact.deadline.isoformat(),
                    )
            if agencies:
                log.info(
                    "reminder_sent",
                    ref=contact.ref,
                    trace_id=trace_id_of(store.traceparent(contact.ref)),
                    brag=contact.brag.value,
                    agencies=agencies,
                    fraction=reminder.fraction,
                    left_s=int((contact.deadline - now).total_seconds()),
                )
        return sent
