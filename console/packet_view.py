"""A packet laid out for reading: people by name and role, agencies in a fixed order, each
agency's findings as labelled lists (not a dump of fields), strengths and engagement, who did
not answer, the restricted marker with its reference, identity conflicts, the chronology as a
timeline and the rating history with each rationale."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel

from console.board import agency_sort_key
from mash.screening import decode_findings
from schemas.enums import MatchMethod, ResponseOutcome
from schemas.models import AvroModel, ScreeningPacket, Subject

__all__ = ["AgencySection", "PacketView", "person_name", "view_packet"]

_IDENTIFIERS = {
    MatchMethod.NHS_NUMBER: "NHS number",
    MatchMethod.UPN: "Unique Pupil Number",
    MatchMethod.LA_CHILD_ID: "local authority child id",
}


def person_name(subject: Subject) -> str:
    name = " ".join(p for p in (subject.given_name, subject.family_name) if p)
    return name or ("Unborn baby" if subject.role.value == "UNBORN" else subject.subject_id)


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _value(value: object, names: dict[str, str]) -> str:
    if isinstance(value, date):
        return value.strftime("%d %B %Y")
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, BaseModel | dict):
        fields = value.items() if isinstance(value, dict) else iter(value)
        parts = []
        for k, v in fields:
            if v in (None, [], ""):
                continue
            if k in ("subject_id", "subject_ids"):
                ids = v if isinstance(v, list) else [v]
                parts.append("about " + ", ".join(names.get(str(i), str(i)) for i in ids))
                continue
            parts.append(f"{k.replace('_', ' ')}: {_value(v, names)}")
        return "; ".join(parts)
    if isinstance(value, list):
        return ", ".join(_value(v, names) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).replace("_", " ").lower() if str(value).isupper() else str(value)


@dataclass(frozen=True)
class AgencySection:
    agency: str
    outcome: str
    late: bool
    findings: tuple[tuple[str, tuple[str, ...]], ...]
    strengths: tuple[str, ...]
    engagement: str
    engagement_notes: str | None
    conflicts: tuple[str, ...]
    restricted_reference: str | None


@dataclass(frozen=True)
class PacketView:
    packet: ScreeningPacket
    people: tuple[tuple[str, str, str], ...]  # name, role, date of birth or due date
    agencies: tuple[AgencySection, ...]
    missing: tuple[str, ...]
    names: dict[str, str]


def _findings(data: bytes | None, names: dict[str, str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    found: AvroModel | dict[str, Any] | None = decode_findings(data) if data else None
    if found is None:
        return ()
    fields = found.items() if isinstance(found, dict) else iter(found)
    sections = []
    for name, value in fields:
        if value in (None, [], False, ""):
            continue
        items = value if isinstance(value, list) else [value]
        sections.append((_label(name), tuple(_value(v, names) for v in items)))
    return tuple(sections)


def view_packet(packet: ScreeningPacket) -> PacketView:
    names = {s.subject_id: person_name(s) for s in packet.subjects}
    people = tuple(
        (
            person_name(s),
            s.role.value.replace("_", " ").lower(),
            (s.date_of_birth.strftime("%d %B %Y") if s.date_of_birth else "")
            or (
                f"due {s.expected_date_of_delivery:%d %B %Y}" if s.expected_date_of_delivery else ""
            ),
        )
        for s in packet.subjects
    )
    restricted = {r.agency: r.reference for r in packet.restricted_held}
    sections = []
    for answer in sorted(packet.answers, key=lambda a: agency_sort_key(a.agency)):
        conflicts = tuple(
            f"The {_IDENTIFIERS.get(m.identifier_conflict, str(m.identifier_conflict))} given "
            f"for {names.get(m.subject_id, m.subject_id)} disagrees with {answer.agency}'s "
            "records: check by hand"
            for m in answer.matches
            if m.identifier_conflict is not None
        )
        sections.append(
            AgencySection(
                agency=answer.agency,
                outcome="Known" if answer.outcome is ResponseOutcome.KNOWN else "Not known",
                late=answer.agency in packet.late_agencies,
                findings=_findings(answer.findings, names),
                strengths=tuple(answer.strengths),
                engagement=answer.engagement.value.replace("_", " ").lower(),
                engagement_notes=answer.engagement_notes,
                conflicts=conflicts,
                restricted_reference=restricted.get(answer.agency),
            )
        )
    return PacketView(
        packet=packet,
        people=people,
        agencies=tuple(sections),
        missing=tuple(sorted(packet.missing_agencies, key=agency_sort_key)),
        names=names,
    )
