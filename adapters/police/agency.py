"""Police: the force's nominal records, incidents, call-outs and adults posing risk.

Police share no identifier with the other agencies, so people are matched by name, date of
birth and postcode (see ``adapters.kit.matching``). What is disclosed, on a need-to-know
basis:

- incidents in which a matched subject was involved, naming the subjects involved;
- call-outs to the home of a matched subject's household;
- adults posing risk who live in a matched household, whether or not the referrer named
  them: finding the adult nobody mentioned is what a MASH check is for;
- restricted intelligence about a matched subject (``restricted_intelligence.csv``), which
  the adapter seals for the MASH restricted file: it never travels or rests in clear.

The export is the files in ``data/`` (columns in ``data/README.md``); a force replaces them
with its own export in the same shape, or reads its own database instead: ``sql/`` holds a
sample configuration (one query per kind of record, see ``adapters.kit.sources.sql``) and
the fictional database it reads.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import ClassVar

from adapters.kit.agency import Lookup
from adapters.kit.matching import (
    PERSON_COLUMNS,
    CsvRow,
    ExportFile,
    SubjectMatcher,
    combine_assessments,
)
from adapters.kit.sources import AgencyIndex, Records, RecordSource, RecordView
from schemas.models import (
    AdultPosingRisk,
    InformationRequest,
    PoliceCallOut,
    PoliceFindings,
    PoliceIncident,
    RestrictedItem,
)

__all__ = ["DATA_DIR", "EXPORT", "SQL_DIR", "PoliceAgency"]

DATA_DIR = Path(__file__).resolve().parent / "data"
SQL_DIR = Path(__file__).resolve().parent / "sql"

EXPORT = (
    ExportFile("people.csv", ("person_id", *PERSON_COLUMNS)),
    ExportFile("incidents.csv", ("incident_id", "person_id", "occurred_on", "category", "summary")),
    ExportFile(
        "call_outs.csv", ("call_out_id", "household_id", "occurred_on", "reason", "domestic_abuse")
    ),
    ExportFile("risk_adults.csv", ("person_id", "relationship", "risk_summary")),
    # A force that shares nothing restricted leaves this file out.
    ExportFile(
        "restricted_intelligence.csv",
        ("intelligence_id", "person_id", "category", "summary"),
        optional=True,
    ),
)
"""The kinds of record the adapter reads and the columns it needs (see ``data/README.md``):
files of a CSV export, or queries of the force's database."""


@dataclass(frozen=True)
class _Incident:
    incident_id: str
    occurred_on: date
    category: str
    summary: str
    person_ids: tuple[str, ...]


@dataclass(frozen=True)
class _CallOut:
    call_out_id: str
    occurred_on: date
    reason: str
    domestic_abuse: bool


@dataclass(frozen=True)
class _RiskAdult:
    person_id: str
    relationship: str
    risk_summary: str


class PoliceAgency:
    """Police records: a folder of CSV exports read once (``--data DIR``, by default the
    fictional ``data/``), or the force's database read for each request (``--source sql``)."""

    record_kinds: ClassVar[tuple[ExportFile, ...]] = EXPORT

    def __init__(self, source: Path | RecordSource | None = None) -> None:
        self._index = AgencyIndex(source, default=DATA_DIR, kinds=EXPORT, build=_PoliceIndex)

    @property
    def name(self) -> str:
        return "police"

    @property
    def view(self) -> RecordView:
        """Where the records are read from (a CSV export, a database)."""
        return self._index.view

    def close(self) -> None:
        self._index.close()

    def lookup(self, request: InformationRequest) -> Lookup:
        return self._index.for_request(request).lookup(request)


class _PoliceIndex:
    """The records, indexed for lookups: people by date of birth and postcode, findings by
    person and household."""

    def __init__(self, export: Records) -> None:
        self._people = export.people("people.csv", "person_id")
        self._matcher = SubjectMatcher(self._people.records.values(), strong_ids=())
        self._incidents = self._read_incidents(export.rows("incidents.csv"))
        self._call_outs: dict[str, list[_CallOut]] = defaultdict(list)
        for row in export.rows("call_outs.csv"):
            self._call_outs[row.text("household_id")].append(
                _CallOut(
                    row.text("call_out_id"),
                    row.required_date("occurred_on"),
                    row.text("reason"),
                    row.boolean("domestic_abuse"),
                )
            )
        self._risks: dict[str, list[_RiskAdult]] = defaultdict(list)
        for row in export.rows("risk_adults.csv"):
            person_id = self._people.reference(row, "person_id")
            self._risks[person_id].append(
                _RiskAdult(person_id, row.text("relationship"), row.text("risk_summary"))
            )

        self._restricted: dict[str, list[tuple[str, str]]] = defaultdict(list)
        if export.has("restricted_intelligence.csv"):
            for row in export.rows("restricted_intelligence.csv"):
                self._restricted[self._people.reference(row, "person_id")].append(
                    (row.text("category"), row.text("summary"))
                )

    def lookup(self, request: InformationRequest) -> Lookup:
        result = self._matcher.match_all(request.subjects)
        if not result.matched:
            return Lookup(matches=result.matches)
        households = result.household_ids
        subject_of = {m.record.record_id: m.subject.subject_id for m in result.matched}
        order = {s.subject_id: i for i, s in enumerate(request.subjects)}

        incidents = []
        for incident in self._incidents:
            involved = sorted(
                {subject_of[p] for p in incident.person_ids if p in subject_of},
                key=lambda subject_id: order[subject_id],
            )
            if involved:
                incidents.append(
                    PoliceIncident(
                        occurred_on=incident.occurred_on,
                        category=incident.category,
                        summary=incident.summary,
                        subject_ids=involved,
                    )
                )
        call_outs = sorted(
            (c for h in households for c in self._call_outs.get(h, [])),
            key=lambda c: (c.occurred_on, c.call_out_id),
            reverse=True,
        )
        risks = [
            AdultPosingRisk(
                name=person.display_name,
                relationship=risk.relationship,
                risk_summary=risk.risk_summary,
            )
            for person in self._people.members(households)
            for risk in self._risks.get(person.record_id, [])
        ]
        findings = PoliceFindings(
            incidents=incidents,
            call_outs=[
                PoliceCallOut(
                    occurred_on=c.occurred_on, reason=c.reason, domestic_abuse=c.domestic_abuse
                )
                for c in call_outs
            ],
            adults_posing_risk=risks,
        )
        strengths, engagement, notes = combine_assessments(self._people.assessments(households))
        restricted = [
            RestrictedItem(category=category, summary=summary, subject_ids=[subject_id])
            for record_id, subject_id in subject_of.items()
            for category, summary in self._restricted.get(record_id, [])
        ]
        return Lookup(
            matches=result.matches,
            findings=findings,
            strengths=strengths,
            engagement=engagement,
            engagement_notes=notes,
            restricted=restricted,
        )

    def _read_incidents(self, rows: list[CsvRow]) -> list[_Incident]:
        # One row per person involved, so an incident with two people has two rows.
        people: dict[str, list[str]] = defaultdict(list)
        first: dict[str, tuple[date, str, str]] = {}
        for row in rows:
            incident_id = row.text("incident_id")
            people[incident_id].append(self._people.reference(row, "person_id"))
            first.setdefault(
                incident_id,
                (row.required_date("occurred_on"), row.text("category"), row.text("summary")),
            )
        incidents = [
            _Incident(incident_id, occurred, category, summary, tuple(people[incident_id]))
            for incident_id, (occurred, category, summary) in first.items()
        ]
        # Newest first: the screening social worker reads from the top.
        return sorted(incidents, key=lambda i: (i.occurred_on, i.incident_id), reverse=True)
