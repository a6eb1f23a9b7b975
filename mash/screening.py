"""An assembled packet as a screening officer reads it: the rating and deadline first, who
answered and who did not, whether the child has an allocated worker the contact went to, the
chronology of earlier concerns, then each agency's findings, strengths and engagement."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from schemas import models
from schemas.codec import DecodeError, decode, decode_record, schema_name_of
from schemas.enums import Brag, MatchMethod, ResponseOutcome
from schemas.models import (
    AllocatedContact,
    AllocatedWorker,
    AvroModel,
    ScreeningPacket,
    SubjectMatch,
)

__all__ = ["decode_findings", "render_packet", "render_routed"]

_UK = ZoneInfo("Europe/London")
_COLOURS = {
    Brag.RED: "bold red",
    Brag.AMBER: "bold yellow",
    Brag.GREEN: "bold green",
    Brag.BLUE: "bold blue",
}
_IDENTIFIERS = {
    MatchMethod.NHS_NUMBER: "NHS number",
    MatchMethod.UPN: "UPN",
    MatchMethod.LA_CHILD_ID: "LA child id",
}
_FINDINGS: dict[str, type[AvroModel]] = {
    cls.avro_name: cls
    for cls in vars(models).values()
    if isinstance(cls, type) and issubclass(cls, AvroModel) and cls is not AvroModel
}


def _when(value: datetime) -> str:
    return value.astimezone(_UK).strftime("%a %d %b %Y %H:%M")


def _full_name(*parts: str | None) -> str:
    return " ".join(p for p in parts if p)


def decode_findings(data: bytes) -> AvroModel | dict[str, Any] | None:
    """The findings as their model, or, for an agency added by a separate package (whose
    schema the registry knows but mash-hub has no model for), as the decoded record."""
    try:
        name = schema_name_of(data)
        model = _FINDINGS.get(name)
        return decode(data, model) if model is not None else decode_record(data, name)
    except (DecodeError, KeyError):
        return None


def _value(value: object) -> str:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, BaseModel | dict):
        fields = value.items() if isinstance(value, dict) else iter(value)
        return "; ".join(
            f"{k.replace('_', ' ')}: {_value(v)}"
            for k, v in fields
            if v not in (None, [], "") and k != "subject_ids"
        )
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value)
    return str(value)


def _findings_lines(findings: AvroModel | dict[str, Any]) -> list[str]:
    lines: list[str] = []
    fields = findings.items() if isinstance(findings, dict) else iter(findings)
    for name, value in fields:
        if value in (None, [], False):
            continue
        label = name.replace("_", " ")
        if isinstance(value, list):
            lines.append(f"{label}:")
            lines.extend(f"  • {_value(item)}" for item in value)
        else:
            lines.append(f"{label}: {_value(value)}")
    return lines


def _worker(worker: AllocatedWorker) -> str:
    role = worker.role.value.replace("_", " ").lower()
    since = f", since {worker.allocated_on.isoformat()}" if worker.allocated_on else ""
    return f"{role} {worker.name} ({worker.team}{since}) for {worker.subject_id}"


def _identifier(match: SubjectMatch) -> str:
    kind = match.identifier_conflict
    return _IDENTIFIERS.get(kind, str(kind)) if kind is not None else ""


def _identifier_conflicts(packet: ScreeningPacket) -> list[str]:
    """Each agency's subjects whose identifier its records did not corroborate (held for
    someone with another date of birth or name, or pointing at two records)."""
    return [
        f"{answer.agency}: the {_identifier(match)} given for {match.subject_id} disagrees "
        "with its records"
        for answer in packet.answers
        for match in answer.matches
        if match.identifier_conflict is not None
    ]


def _chronology(packet: ScreeningPacket) -> Table:
    table = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
    for column in ("date", "recorded by", "from", "about", "concern", "rating", "outcome"):
        table.add_column(column)
    for entry in packet.chronology:
        table.add_row(
            entry.on.isoformat(),
            entry.contact_ref or entry.recorded_by,
            entry.source,
            entry.subject_id or "",
            entry.category or "",
            Text(entry.brag.value, style=_COLOURS[entry.brag]) if entry.brag else "",
            entry.outcome or "",
        )
    return table


def render_routed(routed: AllocatedContact) -> RenderableType:
    """A contact sent on to the child's allocated worker, as their team receives it."""
    return Text.assemble(
        (f"{routed.contact_ref} sent straight on to the allocated ", "bold magenta"),
        (_worker(routed.worker), "magenta"),
        f" ({routed.brag.value}, due {_when(routed.deadline)})",
    )


def render_packet(packet: ScreeningPacket) -> RenderableType:
    colour = _COLOURS[packet.brag]
    title = Text.assemble(
        (f"{packet.contact_ref}  ", "bold"),
        (packet.brag.value, colour),
        f"  packet v{packet.version} ({packet.reason.value.lower()})",
    )
    head = Table.grid(padding=(0, 2))
    head.add_row("Received", _when(packet.received_at))
    head.add_row("Deadline", _when(packet.deadline))
    if len(packet.rating_history) > 1:
        history = " → ".join(
            f"{c.brag.value} at {c.changed_at.astimezone(_UK):%H:%M}" for c in packet.rating_history
        )
        head.add_row("Ratings", history)
    head.add_row("Concern", packet.concerns_summary)
    head.add_row("Basis", f"consent {packet.consent.value.lower()}; {packet.lawful_basis.value}")
    subjects = ", ".join(
        f"{s.role.value.lower()} {_full_name(s.given_name, s.family_name) or s.subject_id}"
        for s in packet.subjects
    )
    head.add_row("Subjects", subjects)
    conflicts = _identifier_conflicts(packet)
    if conflicts:
        # Not a match and not a "not known" to rely on: someone has to look by hand.
        head.add_row("Check identity", Text("; ".join(conflicts), style="bold yellow"))
    if packet.missing_agencies:
        head.add_row("Not answered", Text(", ".join(packet.missing_agencies), style="bold red"))
    if packet.late_agencies:
        head.add_row("Answered late", ", ".join(packet.late_agencies))
    if packet.restricted_held:
        # Only that it exists and where: the content is sealed for the restricted file.
        held = "; ".join(f"{h.agency} ({h.reference})" for h in packet.restricted_held)
        head.add_row("Restricted", Text(f"held on the restricted file: {held}", style="magenta"))
    if packet.allocated_worker is not None:
        # The seeds' first screening question: is there already a worker for this child?
        head.add_row(
            "Allocated",
            Text(f"sent straight on to {_worker(packet.allocated_worker)}", style="bold magenta"),
        )
    mash_earlier = sum(1 for e in packet.chronology if e.contact_ref)
    omitted = packet.chronology_omitted
    head.add_row(
        "Chronology",
        f"{len(packet.chronology) + omitted} earlier concern(s), "
        f"{mash_earlier + omitted} of them to this MASH"
        + (f" (the {omitted} oldest of those not listed)" if omitted else "")
        if packet.chronology
        else "first concern known",
    )

    parts: list[RenderableType] = [head]
    if packet.chronology:
        parts.append(_chronology(packet))
    for answer in packet.answers:
        known = answer.outcome is ResponseOutcome.KNOWN
        lines = [
            Text.assemble(
                (f"{answer.agency.upper()}: ", "bold"),
                ("known" if known else "not known", "green" if known else "dim"),
            )
        ]
        for match in answer.matches:
            if match.identifier_conflict is not None:
                lines.append(
                    Text(
                        f"  {match.subject_id}: {_identifier(match)} conflict, check by hand",
                        style="bold yellow",
                    )
                )
            if match.matched:
                lines.append(
                    Text(
                        f"  {match.subject_id} matched by {match.method.value.lower()} "
                        f"(confidence {match.confidence:.2f})",
                        style="dim",
                    )
                )
        findings = decode_findings(answer.findings) if answer.findings else None
        if findings is not None:
            lines.extend(Text("  " + line) for line in _findings_lines(findings))
        if answer.strengths:
            lines.append(Text("  strengths: " + "; ".join(answer.strengths)))
        if known:
            note = f" ({answer.engagement_notes})" if answer.engagement_notes else ""
            lines.append(Text(f"  engagement: {answer.engagement.value.lower()}{note}"))
        parts.append(Group(*lines))
    return Panel(Group(*parts), title=title, title_align="left", border_style=colour)
