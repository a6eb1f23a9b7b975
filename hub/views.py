"""Read-only views of the hub's database for operators and managers.

``mash status`` and ``mash report`` open the database read-only (the hub may be running and
writing it; SQLite's WAL lets both go on), and the hub's own metrics read the same views.
Every view returns references, agencies, ratings and times: never a child's details, which
stay inside the encoded contact and answer bodies these queries do not touch.

Categories used throughout:

* **open** -- some agency has not answered and the deadline has not passed;
* **overdue** -- the deadline has passed and some agency has still not answered;
* an *exchange* is one request to one agency: ``answered`` (by the deadline), ``late``
  (answered after it), ``missed`` (deadline passed, no answer yet) or ``pending``.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from hub.store import StoreError, from_ms, to_ms
from schemas.enums import Brag

__all__ = [
    "Exchange",
    "ExchangeStatus",
    "OldestRequest",
    "OpenContact",
    "contact_counts",
    "exchanges",
    "nearest_open_deadlines",
    "oldest_open_requests",
    "oldest_unanswered",
    "open_contacts",
    "open_readonly",
    "reminders_sent_since",
]

ExchangeStatus = Literal["answered", "late", "missed", "pending"]


def open_readonly(path: Path | str) -> sqlite3.Connection:
    """The hub database at ``path``, opened so that nothing here can change it."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: no hub database here (set MASH_DB_PATH or --db)")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        db.row_factory = sqlite3.Row
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not a usable hub database ({exc})") from None
    if not {"contacts", "requests", "reminders"} <= tables:
        db.close()
        raise StoreError(f"{path}: not a mash-hub database of this version (run the hub once)")
    return db


@dataclass(frozen=True)
class OpenContact:
    ref: str
    brag: Brag
    received_at: datetime
    deadline: datetime
    outstanding: tuple[str, ...]
    reminders_sent: int
    next_reminder: datetime | None

    def left(self, now: datetime) -> float:
        """Seconds until the deadline; negative once it has passed."""
        return (self.deadline - now).total_seconds()


@dataclass(frozen=True)
class OldestRequest:
    agency: str
    ref: str
    request_id: str
    sent_at: datetime
    deadline: datetime
    unanswered: int


@dataclass(frozen=True)
class Exchange:
    """One request to one agency, and what came of it."""

    request_id: str
    ref: str
    agency: str
    sent_at: datetime
    sent_brag: Brag | None
    brag: Brag  # the rating it was (or is being) measured against
    deadline: datetime
    answered_at: datetime | None
    outcome: str | None  # KNOWN or NOT_KNOWN once answered
    status: ExchangeStatus

    @property
    def answer_seconds(self) -> float | None:
        if self.answered_at is None:
            return None
        return (self.answered_at - self.sent_at).total_seconds()


_OUTSTANDING = "r.answered_at IS NULL"


def contact_counts(db: sqlite3.Connection, now: datetime) -> dict[str, dict[Brag, int]]:
    """How many contacts are open and overdue, by rating (every rating present, maybe 0)."""
    counts: dict[str, dict[Brag, int]] = {
        "open": dict.fromkeys(Brag, 0),
        "overdue": dict.fromkeys(Brag, 0),
    }
    rows = db.execute(
        "SELECT c.brag, c.deadline > ? AS in_time, COUNT(DISTINCT c.ref) FROM contacts c"
        f" JOIN requests r ON r.ref = c.ref WHERE {_OUTSTANDING}"
        " GROUP BY c.brag, in_time",
        (to_ms(now),),
    )
    for brag, in_time, count in rows:
        counts["open" if in_time else "overdue"][Brag(brag)] = int(count)
    return counts


def nearest_open_deadlines(db: sqlite3.Connection, now: datetime) -> dict[Brag, datetime]:
    """By rating, the nearest deadline of an open contact (ratings with none are left out)."""
    rows = db.execute(
        "SELECT c.brag, MIN(c.deadline) FROM contacts c WHERE c.deadline > ? AND EXISTS"
        f" (SELECT 1 FROM requests r WHERE r.ref = c.ref AND {_OUTSTANDING}) GROUP BY c.brag",
        (to_ms(now),),
    )
    return {Brag(brag): from_ms(deadline) for brag, deadline in rows}


def oldest_open_requests(db: sqlite3.Connection, now: datetime) -> dict[tuple[str, Brag], datetime]:
    """By agency and the contact's rating, when the oldest request still unanswered on an
    open contact was sent. Requests whose deadline has passed are left out: they count once
    as a missed deadline, and would otherwise mark an agency slow for ever."""
    rows = db.execute(
        "SELECT r.agency, c.brag, MIN(r.sent_at) FROM requests r JOIN contacts c"
        f" ON c.ref = r.ref WHERE {_OUTSTANDING} AND c.deadline > ? GROUP BY r.agency, c.brag",
        (to_ms(now),),
    )
    return {(agency, Brag(brag)): from_ms(sent) for agency, brag, sent in rows}


def open_contacts(
    db: sqlite3.Connection, now: datetime, *, overdue: bool = False, limit: int = 50
) -> list[OpenContact]:
    """Contacts some agency has not answered, deadline not yet passed (or, with ``overdue``,
    passed), the nearest (or most overdue) deadline first."""
    rows = db.execute(
        "SELECT c.ref, c.brag, c.received_at, c.deadline,"
        f" (SELECT GROUP_CONCAT(agency) FROM requests r WHERE r.ref = c.ref AND {_OUTSTANDING}),"
        " (SELECT COUNT(*) FROM reminders m WHERE m.ref = c.ref AND m.sent_at IS NOT NULL"
        "  AND m.agencies != ''),"
        " (SELECT MIN(due_at) FROM reminders m WHERE m.ref = c.ref AND m.sent_at IS NULL)"
        " FROM contacts c WHERE EXISTS"
        f" (SELECT 1 FROM requests r WHERE r.ref = c.ref AND {_OUTSTANDING})"
        f" AND c.deadline {'<=' if overdue else '>'} ? ORDER BY c.deadline LIMIT ?",
        (to_ms(now), limit),
    )
    return [
        OpenContact(
            ref=r[0],
            brag=Brag(r[1]),
            received_at=from_ms(r[2]),
            deadline=from_ms(r[3]),
            outstanding=tuple(sorted((r[4] or "").split(","))),
            reminders_sent=int(r[5]),
            next_reminder=None if r[6] is None or r[3] <= to_ms(now) else from_ms(r[6]),
        )
        for r in rows
    ]


def oldest_unanswered(db: sqlite3.Connection) -> list[OldestRequest]:
    """For each agency with anything outstanding, its oldest unanswered request."""
    rows = db.execute(
        "SELECT r.agency, r.ref, r.request_id, r.sent_at, c.deadline, counts.n"
        " FROM requests r JOIN contacts c ON c.ref = r.ref"
        " JOIN (SELECT agency, MIN(sent_at) AS oldest, COUNT(*) AS n FROM requests r"
        f"       WHERE {_OUTSTANDING} GROUP BY agency) counts"
        "   ON counts.agency = r.agency AND counts.oldest = r.sent_at"
        f" WHERE {_OUTSTANDING} GROUP BY r.agency ORDER BY r.agency"
    )
    return [
        OldestRequest(
            agency=r[0],
            ref=r[1],
            request_id=r[2],
            sent_at=from_ms(r[3]),
            deadline=from_ms(r[4]),
            unanswered=int(r[5]),
        )
        for r in rows
    ]


def reminders_sent_since(db: sqlite3.Connection, since: datetime) -> dict[str, int]:
    """Reminders sent since ``since``, by agency."""
    counts: dict[str, int] = defaultdict(int)
    rows = db.execute(
        "SELECT agencies FROM reminders WHERE sent_at >= ? AND agencies != ''", (to_ms(since),)
    )
    for (agencies,) in rows:
        for agency in agencies.split(","):
            counts[agency] += 1
    return dict(sorted(counts.items()))


def exchanges(db: sqlite3.Connection, since: datetime, now: datetime) -> list[Exchange]:
    """Every request sent since ``since``: the operational record ``mash report`` reads.

    An answered request is measured against the rating and deadline in force when the answer
    arrived (recorded then); an unanswered one against the contact's current rating.
    """
    rows = db.execute(
        "SELECT r.request_id, r.ref, r.agency, r.sent_at, r.sent_brag,"
        " COALESCE(r.brag, c.brag), COALESCE(r.deadline, c.deadline),"
        " r.answered_at, r.outcome, r.late"
        " FROM requests r JOIN contacts c ON c.ref = r.ref"
        " WHERE r.sent_at >= ? ORDER BY r.sent_at, r.rowid",
        (to_ms(since),),
    )
    result = []
    for r in rows:
        deadline = from_ms(r[6])
        status: ExchangeStatus
        if r[7] is not None:
            status = "late" if r[9] else "answered"
        else:
            status = "missed" if deadline <= now else "pending"
        result.append(
            Exchange(
                request_id=r[0],
                ref=r[1],
                agency=r[2],
                sent_at=from_ms(r[3]),
                sent_brag=None if r[4] is None else Brag(r[4]),
                brag=Brag(r[5]),
                deadline=deadline,
                answered_at=None if r[7] is None else from_ms(r[7]),
                outcome=r[8],
                status=status,
            )
        )
    return result
