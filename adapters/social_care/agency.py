"""Children's social care: earlier contacts and referrals, open cases, child protection
plans, and the social worker or lead professional allocated to a child.

Social care is the local authority, so it holds the local authority child id; its child
records carry the NHS number too. People are matched by either, else by name, date of birth
and postcode (see ``adapters.kit.matching``). What is disclosed, on a need-to-know basis,
for every matched subject:

- earlier contacts and referrals (date, who made them, the concern's category, the
  outcome), newest first: with the hub's own record they make the contact's chronology;
- open cases (early help, child in need, child protection, looked after) with the date
  each was opened;
- child protection plans, current and past, with their category;
- the allocated worker (name, team, role): the hub sends the contact straight on to them,
  as the MASH does when a child already has a social worker or lead professional.

The export is the files in ``data/`` (columns in ``data/README.md``); a local authority
replaces them with its own export in the same shape.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TypeVar

from adapters.kit.agency import Lookup
from adapters.kit.matching import (
    PERSON_COLUMNS,
    ExportFile,
    ExportFolder,
    MatchedSubject,
    SubjectMatcher,
    combine_assessments,
)
from schemas.enums import AbuseCategory, AllocationRole, CaseType, MatchMethod
from schemas.models import (
    AllocatedWorker,
    InformationRequest,
    OpenCase,
    ProtectionPlan,
    SocialCareContact,
    SocialCareFindings,
)

__all__ = ["DATA_DIR", "EXPORT", "SocialCareAgency"]

DATA_DIR = Path(__file__).resolve().parent / "data"

EXPORT = (
    ExportFile("people.csv", ("person_id", *PERSON_COLUMNS)),
    ExportFile(
        "contacts.csv",
        ("contact_id", "person_id", "received_on", "source", "category", "outcome"),
    ),
    ExportFile("cases.csv", ("case_id", "person_id", "case_type", "opened_on")),
    ExportFile("plans.csv", ("plan_id", "person_id", "category", "started_on", "ended_on")),
    ExportFile("allocations.csv", ("person_id", "worker_name", "team", "role")),
)
"""The files the adapter reads and the columns it needs (see ``data/README.md``)."""

T = TypeVar("T")


@dataclass(frozen=True)
class _Contact:
    contact_id: str
    received_on: date
    source: str
    category: str
    outcome: str
    referral: bool


@dataclass(frozen=True)
class _Case:
    case_type: CaseType
    opened_on: date


@dataclass(frozen=True)
class _Plan:
    category: AbuseCategory
    started_on: date
    ended_on: date | None


@dataclass(frozen=True)
class _Allocation:
    name: str
    team: str
    role: AllocationRole
    allocated_on: date | None


class SocialCareAgency:
    """Children's social care records read from a folder of CSV exports, loaded once."""

    def __init__(self, data_dir: Path | None = None) -> None:
        export = ExportFolder(data_dir or DATA_DIR, EXPORT)
        self._people = export.people("people.csv", "person_id")
        self._matcher = SubjectMatcher(
            self._people.records.values(),
            strong_ids=(MatchMethod.LA_CHILD_ID, MatchMethod.NHS_NUMBER),
        )
        self._contacts: dict[str, list[_Contact]] = defaultdict(list)
        for row in export.rows("contacts.csv"):
            self._contacts[self._people.reference(row, "person_id")].append(
                _Contact(
                    contact_id=row.text("contact_id"),
                    received_on=row.required_date("received_on"),
                    source=row.text("source"),
                    category=row.text("category"),
                    outcome=row.text("outcome"),
                    referral=row.boolean("referral"),
                )
            )
        self._cases: dict[str, list[_Case]] = defaultdict(list)
        for row in export.rows("cases.csv"):
            self._cases[self._people.reference(row, "person_id")].append(
                _Case(row.choice("case_type", CaseType), row.required_date("opened_on"))
            )
        self._plans: dict[str, list[_Plan]] = defaultdict(list)
        for row in export.rows("plans.csv"):
            self._plans[self._people.reference(row, "person_id")].append(
                _Plan(
                    row.choice("category", AbuseCategory),
                    row.required_date("started_on"),
                    row.optional_date("ended_on"),
                )
            )
        self._allocations: dict[str, _Allocation] = {}
        for row in export.rows("allocations.csv"):
            person_id = self._people.reference(row, "person_id")
            if person_id in self._allocations:
                # Two workers for one child is a record to fix, not a choice to guess.
                raise row.error("person_id", "a second allocated worker for the same person")
            self._allocations[person_id] = _Allocation(
                name=row.text("worker_name"),
                team=row.text("team"),
                role=row.choice("role", AllocationRole),
                allocated_on=row.optional_date("allocated_on"),
            )

    @property
    def name(self) -> str:
        return "social-care"

    def lookup(self, request: InformationRequest) -> Lookup:
        result = self._matcher.match_all(request.subjects)
        if not result.matched:
            return Lookup(matches=result.matches)
        matched = result.by_priority()
        contacts = [
            SocialCareContact(
                subject_id=subject_id,
                received_on=c.received_on,
                source=c.source,
                category=c.category,
                outcome=c.outcome,
                referral=c.referral,
            )
            for subject_id, c in _each(matched, self._contacts)
        ]
        contacts.sort(key=lambda c: (c.received_on, c.subject_id), reverse=True)
        plans = [
            ProtectionPlan(
                subject_id=subject_id,
                category=p.category,
                started_on=p.started_on,
                ended_on=p.ended_on,
            )
            for subject_id, p in _each(matched, self._plans)
        ]
        plans.sort(key=lambda p: (p.started_on, p.subject_id), reverse=True)
        findings = SocialCareFindings(
            contacts=contacts,
            open_cases=[
                OpenCase(subject_id=subject_id, case_type=c.case_type, opened_on=c.opened_on)
                for subject_id, c in _each(matched, self._cases)
            ],
            protection_plans=plans,
            allocated_workers=[
                AllocatedWorker(
                    subject_id=m.subject.subject_id,
                    name=allocation.name,
                    team=allocation.team,
                    role=allocation.role,
                    allocated_on=allocation.allocated_on,
                )
                for m in matched
                if (allocation := self._allocations.get(m.record.record_id)) is not None
            ],
        )
        strengths, engagement, notes = combine_assessments(
            self._people.assessments(result.household_ids)
        )
        return Lookup(
            matches=result.matches,
            findings=findings,
            strengths=strengths,
            engagement=engagement,
            engagement_notes=notes,
        )


def _each(matched: list[MatchedSubject], records: Mapping[str, list[T]]) -> list[tuple[str, T]]:
    """Each matched subject's records, labelled with the request's subject id."""
    return [
        (m.subject.subject_id, record)
        for m in matched
        for record in records.get(m.record.record_id, [])
    ]
