"""``mash status``: one screen for the hub operator.

Queues (depth, consumers, rates where the management API gives them), contacts open and
overdue by rating with the time left on each, each agency's oldest unanswered request,
reminders sent in the last day, and dead letters. Contacts and deadlines come from the hub's
database, opened read-only; queue figures from the broker (see :mod:`broker.stats`). Either
may be unavailable: the screen then says so and shows the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from broker.stats import QueueReport, queue_figures
from broker.topology import Topology
from hub.monitoring import MIN_FREE_BYTES
from hub.settings import HubSettings
from hub.store import StoreError, database_fault
from hub.views import (
    OldestRequest,
    OpenContact,
    contact_counts,
    oldest_unanswered,
    open_contacts,
    open_readonly,
    reminders_sent_since,
)
from ops.connection import BrokerUnreachable, operator_connection
from schemas.enums import Brag

__all__ = ["Status", "gather_status", "render_status", "span"]

BRAG_ORDER = (Brag.RED, Brag.AMBER, Brag.GREEN, Brag.BLUE)
_BRAG_STYLE = {Brag.RED: "bold red", Brag.AMBER: "yellow", Brag.GREEN: "green", Brag.BLUE: "blue"}


@dataclass
class Status:
    taken_at: datetime
    prefix: str
    queues: QueueReport | None = None
    broker_error: str = ""
    database_error: str = ""
    # Deleted or replaced under the running hub, read-only or full (hub.store.database_fault).
    database_fault: str = ""
    counts: dict[str, dict[Brag, int]] = field(default_factory=dict)
    open: list[OpenContact] = field(default_factory=list)
    overdue: list[OpenContact] = field(default_factory=list)
    oldest: list[OldestRequest] = field(default_factory=list)
    reminders_last_day: dict[str, int] = field(default_factory=dict)

    @property
    def dead_letters(self) -> dict[str, int]:
        if self.queues is None:
            return {}
        return {
            q.name: q.messages for q in self.queues.queues if q.name.endswith(".dead") and q.exists
        }

    def short(self, name: str) -> str:
        return name.removeprefix(f"{self.prefix}.")

    def to_json(self) -> dict[str, Any]:
        now = self.taken_at

        def contact(c: OpenContact) -> dict[str, Any]:
            return {
                "ref": c.ref,
                "brag": c.brag.value,
                "received_at": c.received_at.isoformat(),
                "deadline": c.deadline.isoformat(),
                "seconds_left": round(c.left(now)),
                "waiting_for": list(c.outstanding),
                "reminders_sent": c.reminders_sent,
                "next_reminder": c.next_reminder.isoformat() if c.next_reminder else None,
            }

        return {
            "taken_at": now.isoformat(),
            "prefix": self.prefix,
            "broker": {
                "source": self.queues.source if self.queues else None,
                "note": self.queues.note if self.queues else "",
                "error": self.broker_error,
            },
            "database_error": self.database_error,
            "database_fault": self.database_fault,
            "queues": [
                {
                    "name": self.short(q.name),
                    "exists": q.exists,
                    "messages": q.messages,
                    "ready": q.ready,
                    "unacked": q.unacked,
                    "consumers": q.consumers,
                    "in_rate": q.in_rate,
                    "out_rate": q.out_rate,
                    "ack_rate": q.ack_rate,
                }
                for q in (self.queues.queues if self.queues else [])
            ],
            "contacts": {
                category: {brag.value: n for brag, n in by_brag.items()}
                for category, by_brag in self.counts.items()
            },
            "open": [contact(c) for c in self.open],
            "overdue": [contact(c) for c in self.overdue],
            "oldest_unanswered": [
                {
                    "agency": o.agency,
                    "ref": o.ref,
                    "request_id": o.request_id,
                    "sent_at": o.sent_at.isoformat(),
                    "waiting_seconds": round((now - o.sent_at).total_seconds()),
                    "deadline": o.deadline.isoformat(),
                    "unanswered": o.unanswered,
                }
                for o in self.oldest
            ],
            "reminders_last_day": self.reminders_last_day,
            "dead_letters": {self.short(q): n for q, n in self.dead_letters.items()},
        }


async def gather_status(
    settings: HubSettings, *, limit: int = 50, now: datetime | None = None
) -> Status:
    now = now or datetime.now(UTC)
    status = Status(taken_at=now, prefix=settings.prefix)
    status.database_fault = database_fault(settings.db_path, MIN_FREE_BYTES) or ""
    try:
        db = open_readonly(settings.db_path)
    except StoreError as exc:
        status.database_error = str(exc)
    else:
        try:
            status.counts = contact_counts(db, now)
            status.open = open_contacts(db, now, limit=limit)
            status.overdue = open_contacts(db, now, overdue=True, limit=limit)
            status.oldest = oldest_unanswered(db)
            status.reminders_last_day = reminders_sent_since(db, now - timedelta(days=1))
        finally:
            db.close()
    topology = Topology(settings)
    try:
        # MASH_TLS_* as every process uses them: a certificate-only broker is reachable too.
        connection = await operator_connection(settings, "mash-status")
    except BrokerUnreachable as exc:
        status.broker_error = str(exc)
    else:
        async with connection:
            status.queues = await queue_figures(settings, connection, topology.all_queue_names())
    return status


def span(seconds: float) -> str:
    """A duration as an operator reads it: 45s, 12m, 3h05m, 2d4h; negative when past."""
    sign = "-" if seconds < 0 else ""
    s = int(abs(seconds))
    if s < 60:
        text = f"{s}s"
    elif s < 3600:
        text = f"{s // 60}m"
    elif s < 86400:
        text = f"{s // 3600}h{s % 3600 // 60:02d}m"
    else:
        text = f"{s // 86400}d{s % 86400 // 3600}h"
    return sign + text


def _clock(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in columns:
        numeric = column in ("msgs", "ready", "unacked", "cons", "in/s", "out/s", "open", "overdue")
        table.add_column(column, justify="right" if numeric else "left")
    return table


def _brag(brag: Brag) -> Text:
    return Text(brag.value, style=_BRAG_STYLE[brag])


def render_status(status: Status, console: Console) -> None:
    now = status.taken_at
    parts: list[RenderableType] = []
    source = {"management": "management API", "passive": "passive declares"}
    header = f"mash status  prefix {status.prefix}  {now.strftime('%Y-%m-%d %H:%M:%S')} UTC"
    if status.queues is not None:
        header += f"  queues via {source[status.queues.source]}"
    parts.append(Text(header, style="bold"))
    if status.queues is not None and status.queues.note:
        parts.append(Text(status.queues.note + "; no rates", style="dim"))
    for problem in (status.broker_error, status.database_error):
        if problem:
            parts.append(Text(problem, style="bold red"))
    if status.database_fault and status.database_fault not in status.database_error:
        parts.append(Text(f"database fault: {status.database_fault}", style="bold red"))

    if status.queues is not None:
        queues = _table("Queues", "queue", "msgs", "ready", "unacked", "cons", "in/s", "out/s")
        for q in status.queues.queues:
            if q.name.endswith(".dead"):
                continue
            if not q.exists:
                queues.add_row(status.short(q.name), "missing", style="red")
                continue
            queues.add_row(
                status.short(q.name),
                str(q.messages),
                "-" if q.ready is None else str(q.ready),
                "-" if q.unacked is None else str(q.unacked),
                str(q.consumers),
                _rate(q.in_rate),
                _rate(q.out_rate),
                # Events are read when wanted; the hub's instance record is read at its start.
                style="red"
                if q.consumers == 0 and not q.name.endswith(("ops.events", "hub.instance"))
                else None,
            )
        parts.append(queues)

    if not status.database_error:
        counts = _table("Contacts", "rating", "open", "overdue")
        for brag in BRAG_ORDER:
            counts.add_row(
                _brag(brag),
                str(status.counts.get("open", {}).get(brag, 0)),
                str(status.counts.get("overdue", {}).get(brag, 0)),
            )
        parts.append(counts)

        opened = _table("Open contacts", "ref", "rating", "deadline UTC", "left", "waiting for")
        opened.add_column("reminders")
        for c in status.open:
            reminders = f"{c.reminders_sent} sent"
            if c.next_reminder is not None:
                reminders += f", next in {span((c.next_reminder - now).total_seconds())}"
            opened.add_row(
                c.ref,
                _brag(c.brag),
                _clock(c.deadline),
                span(c.left(now)),
                ", ".join(c.outstanding),
                reminders,
            )
        parts.append(opened if status.open else Text("No open contacts.", style="dim"))

        overdue = _table("Overdue contacts", "ref", "rating", "deadline UTC", "overdue by")
        overdue.add_column("still missing")
        for c in status.overdue:
            overdue.add_row(
                c.ref,
                _brag(c.brag),
                _clock(c.deadline),
                span(-c.left(now)),
                ", ".join(c.outstanding),
            )
        parts.append(overdue if status.overdue else Text("No overdue contacts.", style="dim"))

        oldest = _table("Oldest unanswered request per agency", "agency", "ref", "sent UTC")
        for column in ("waiting", "deadline in", "unanswered"):
            oldest.add_column(column, justify="right" if column == "unanswered" else "left")
        for o in status.oldest:
            oldest.add_row(
                o.agency,
                o.ref,
                _clock(o.sent_at),
                span((now - o.sent_at).total_seconds()),
                span((o.deadline - now).total_seconds()),
                str(o.unanswered),
            )
        parts.append(oldest if status.oldest else Text("Every request answered.", style="dim"))

        reminded = ", ".join(f"{a} {n}" for a, n in status.reminders_last_day.items())
        parts.append(Text(f"Reminders sent in the last 24h: {reminded or 'none'}"))

    if status.queues is not None:
        dead = status.dead_letters
        total = sum(dead.values())
        line = f"Dead letters: {total}"
        if total:
            line += "  (" + ", ".join(f"{status.short(q)} {n}" for q, n in dead.items() if n) + ")"
            line += "  see 'mash dlq list'"
        parts.append(Text(line, style="bold red" if total else ""))
    console.print(Group(*parts))
