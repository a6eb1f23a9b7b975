"""``mash report``: how the MASH met its timescales, per agency and rating.

Read from the operational record of every exchange in the hub's database (one row per
request: who was asked, when, at what rating, when and how they answered; see
:func:`hub.views.exchanges`). For each agency and rating over the period:

* **requests** sent, and how many were **answered** (on time or late);
* **median** and **95th percentile** answer time, from the request being sent to the answer
  reaching the hub (answered requests only; percentiles by linear interpolation between
  closest ranks, so with few answers the 95th lies near the slowest);
* **deadlines met**: the share answered by the deadline in force when they answered, out of
  every request whose deadline is decided (answered, or passed without an answer); requests
  still within their deadline are not counted either way.

The rating an exchange counts under is the one its answer was measured against -- after a
re-rating, the new one.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from hub.views import Exchange
from ops.status import BRAG_ORDER, span
from schemas.enums import Brag

__all__ = ["ReportRow", "parse_since", "percentile", "render_report", "summarise"]

ALL = "ALL"
_SINCE = re.compile(r"^(\d+)([dhmw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime) -> datetime:
    """``7d``, ``24h``, ``90m``, ``2w``, or an ISO date or time, to the start of the period."""
    match = _SINCE.match(text.strip().lower())
    if match:
        return now - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        start = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r}: use a period such as 7d, 24h or 90m, or a date such as 2026-11-01"
        ) from None
    return start if start.tzinfo else start.replace(tzinfo=now.tzinfo)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class ReportRow:
    agency: str
    brag: str  # a rating, or ALL
    requests: int
    answered: int
    late: int
    missed: int
    pending: int
    median_seconds: float | None
    p95_seconds: float | None
    deadlines_met: float | None  # 0..1; None when no deadline has been decided yet

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _row(agency: str, brag: str, exchanges: Sequence[Exchange]) -> ReportRow:
    times = [e.answer_seconds for e in exchanges if e.answer_seconds is not None]
    by_status = defaultdict(int, {s: 0 for s in ("answered", "late", "missed", "pending")})
    for e in exchanges:
        by_status[e.status] += 1
    decided = by_status["answered"] + by_status["late"] + by_status["missed"]
    median = statistics.median(times) if times else None
    return ReportRow(
        agency=agency,
        brag=brag,
        requests=len(exchanges),
        answered=by_status["answered"] + by_status["late"],
        late=by_status["late"],
        missed=by_status["missed"],
        pending=by_status["pending"],
        median_seconds=median,
        p95_seconds=percentile(times, 95),
        deadlines_met=by_status["answered"] / decided if decided else None,
    )


def summarise(exchanges: Sequence[Exchange]) -> list[ReportRow]:
    """One row per agency and rating, a row per agency across ratings, and a total."""
    groups: dict[tuple[str, Brag], list[Exchange]] = defaultdict(list)
    for e in exchanges:
        groups[(e.agency, e.brag)].append(e)
    rows = []
    for agency in sorted({e.agency for e in exchanges}):
        for brag in BRAG_ORDER:
            if groups.get((agency, brag)):
                rows.append(_row(agency, brag.value, groups[(agency, brag)]))
        rows.append(_row(agency, ALL, [e for e in exchanges if e.agency == agency]))
    if exchanges:
        rows.append(_row(ALL, ALL, exchanges))
    return rows


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}s" if value < 60 else span(value)


def render_report(
    rows: Sequence[ReportRow], since: datetime, now: datetime, console: Console
) -> None:
    table = Table(
        title=(
            f"Exchanges from {since:%Y-%m-%d %H:%M} to {now:%Y-%m-%d %H:%M} UTC, "
            "per agency and rating"
        ),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("agency")
    table.add_column("rating")
    for column in ("requests", "answered", "late", "missed", "pending", "median", "p95", "met"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            row.agency,
            row.brag,
            str(row.requests),
            str(row.answered),
            str(row.late),
            str(row.missed),
            str(row.pending),
            _seconds(row.median_seconds),
            _seconds(row.p95_seconds),
            "-" if row.deadlines_met is None else f"{row.deadlines_met:.0%}",
            style="bold" if row.brag == ALL else None,
            end_section=row.brag == ALL,
        )
    if not rows:
        console.print("No requests were sent in this period.")
        return
    console.print(table)
    console.print(
        "median and p95: from request sent to answer received; met: answered by the deadline, "
        "of those whose deadline has been decided",
        style="dim",
    )
