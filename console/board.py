"""The board: every open contact, most urgent first, with a gauge per agency.

Order: overdue contacts first (longest overdue at the top), then contacts waiting on an agency
that is lagging across contacts (late, or outstanding past a reminder, on two or more open
contacts), then by rating (Red, Amber, Green, Blue) and by time left. Time left counts clock
time for a clock window (Red's four hours) and opening hours for a working-day window, with
the calendar of :mod:`hub.policy`, so a Friday-evening Amber does not look as if it were
running out over the weekend.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from console.store import BoardContact
from hub.policy import BragPolicy
from schemas.enums import Brag

__all__ = ["AGENCY_ORDER", "Board", "BoardRow", "Gauge", "build_board", "format_left"]

# Agencies always in this order on the board and in the packet, then any others by name.
AGENCY_ORDER = ("police", "health", "education", "housing", "social-care")
_RATING_ORDER = {Brag.RED: 0, Brag.AMBER: 1, Brag.GREEN: 2, Brag.BLUE: 3}
LAGGING_AT = 2  # open contacts on which an agency is late or reminded to count as lagging


class Gauge(StrEnum):
    ANSWERED = "answered"
    OUTSTANDING = "outstanding"
    REMINDED = "reminded"
    OVERDUE = "overdue"


@dataclass(frozen=True)
class BoardRow:
    contact: BoardContact
    overdue: bool
    time_left: timedelta
    working_time: bool  # time_left counts opening hours only
    gauges: tuple[tuple[str, Gauge], ...]
    lagging: tuple[str, ...]  # agencies behind on this contact that lag across contacts


@dataclass(frozen=True)
class Board:
    rows: tuple[BoardRow, ...]
    lagging: tuple[str, ...]
    counts: dict[Gauge, int]


def agency_sort_key(agency: str) -> tuple[int, str]:
    return (
        AGENCY_ORDER.index(agency) if agency in AGENCY_ORDER else len(AGENCY_ORDER),
        agency,
    )


def _gauge(contact: BoardContact, agency: str, overdue: bool) -> Gauge:
    if agency in contact.answered:
        return Gauge.ANSWERED
    if overdue:
        return Gauge.OVERDUE
    if agency in contact.reminded:
        return Gauge.REMINDED
    return Gauge.OUTSTANDING


def _time_left(policy: BragPolicy, contact: BoardContact, now: datetime) -> tuple[timedelta, bool]:
    if policy.window(contact.brag).kind == "working_days":
        if now >= contact.deadline:
            return contact.deadline - now, True
        return policy.calendar.working_time(now, contact.deadline), True
    return contact.deadline - now, False


def build_board(contacts: list[BoardContact], policy: BragPolicy, now: datetime) -> Board:
    rows: list[BoardRow] = []
    behind: Counter[str] = Counter()
    for contact in contacts:
        overdue = now >= contact.deadline and bool(set(contact.agencies) - contact.answered)
        gauges = tuple(
            (agency, _gauge(contact, agency, overdue))
            for agency in sorted(contact.agencies, key=agency_sort_key)
        )
        for agency, gauge in gauges:
            if gauge in (Gauge.OVERDUE, Gauge.REMINDED) or agency in contact.late:
                behind[agency] += 1
        left, working = _time_left(policy, contact, now)
        rows.append(BoardRow(contact, overdue, left, working, gauges, ()))
    lagging = tuple(sorted((a for a, n in behind.items() if n >= LAGGING_AT), key=agency_sort_key))
    rows = [
        BoardRow(
            r.contact,
            r.overdue,
            r.time_left,
            r.working_time,
            r.gauges,
            # Behind here too: a contact merely waiting on a lagging agency is not escalated.
            tuple(a for a, g in r.gauges if a in lagging and g in (Gauge.REMINDED, Gauge.OVERDUE)),
        )
        for r in rows
    ]
    rows.sort(
        key=lambda r: (
            not r.overdue,
            not r.lagging,
            _RATING_ORDER[r.contact.brag],
            r.contact.deadline,
            r.contact.ref,
        )
    )
    counts = Counter(g for r in rows for _, g in r.gauges)
    return Board(tuple(rows), lagging, {g: counts.get(g, 0) for g in Gauge})


def format_left(left: timedelta, working: bool) -> str:
    """``2h 05m left`` / ``3h 10m working time left`` / ``overdue by 12m``."""
    seconds = int(left.total_seconds())
    overdue = seconds < 0
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    text = (f"{days}d " if days else "") + f"{hours}h {minutes:02d}m"
    if overdue:
        return f"overdue by {text}"
    return f"{text} {'working time ' if working else ''}left"
