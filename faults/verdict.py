"""The counts a fault run ends with, in the style of the RabbitMQ team's Jepsen checker."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Verdict", "table"]


@dataclass(frozen=True)
class Verdict:
    fault: str
    attempted: int  # contacts the load generator tried to submit
    confirmed: int  # contacts the broker confirmed
    lost: int  # confirmed contacts with no final packet
    duplicated: int  # effects that happened twice (a second final packet, a second deadline)
    unexpected: int  # packets for unknown contacts, dead letters, amendments without a late answer
    final_packets_min: int  # fewest final packets one contact had
    final_packets_max: int  # most final packets one contact had
    amendments: int
    redeliveries: int  # the same packet delivered again (harmless: consumers dedupe by id)
    deadlines_due: int
    deadlines_fired: int
    queues_non_empty: int
    faults_injected: int
    seconds: float
    # Connections the hub and adapters lost (None: not counted, the fault itself cuts them).
    connection_losses: int | None = None

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.unexpected == 0
            and self.confirmed == self.attempted
            and self.final_packets_min == 1
            and self.final_packets_max == 1
            and self.deadlines_fired == self.deadlines_due
            and self.queues_non_empty == 0
            and self.faults_injected > 0
            and not self.connection_losses
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


_COLUMNS = (
    ("fault", "fault"),
    ("attempted", "attempted"),
    ("confirmed", "confirmed"),
    ("lost", "lost"),
    ("duplicated", "dup"),
    ("unexpected", "unexp"),
    ("packets", "final/contact"),
    ("amendments", "amend"),
    ("redeliveries", "redeliv"),
    ("deadlines", "deadlines fired/due"),
    ("queues_non_empty", "queues left"),
    ("faults_injected", "faults"),
    ("connection_losses", "conn lost"),
    ("seconds", "s"),
    ("ok", "goal met"),
)


def _cell(verdict: Verdict, key: str) -> str:
    if key == "packets":
        low, high = verdict.final_packets_min, verdict.final_packets_max
        return str(low) if low == high else f"{low}-{high}"
    if key == "deadlines":
        return f"{verdict.deadlines_fired}/{verdict.deadlines_due}"
    if key == "seconds":
        return f"{verdict.seconds:.1f}"
    if key == "connection_losses":
        return "-" if verdict.connection_losses is None else str(verdict.connection_losses)
    if key == "ok":
        return "yes" if verdict.ok else "NO"
    return str(getattr(verdict, key))


def table(verdicts: Sequence[Verdict]) -> str:
    rows = [[title for _, title in _COLUMNS]]
    rows += [[_cell(v, key) for key, _ in _COLUMNS] for v in verdicts]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(
            cell.rjust(w) if i else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
