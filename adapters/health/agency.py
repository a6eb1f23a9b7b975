"""Health: GP registrations, hospital admissions, A&E, missed appointments, pregnancies and
health visiting.

Health matches by NHS number first and falls back to name, date of birth and postcode (see
``adapters.kit.matching``). What is disclosed, on a need-to-know basis:

- for every matched subject, their GP registration, admissions, A&E attendances and missed
  appointments;
- the health visiting involvement with a matched household (the child's first);
- a current pregnancy of a matched subject. When the request is about an unborn baby the
  pregnancy is the mother's, so a matched PARENT is preferred: an unborn subject has no
  record of its own to match.

The export is the files in ``data/`` (columns in ``data/README.md``); a trust replaces them
with its own export in the same shape.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from adapters.kit.agency import Lookup
from adapters.kit.matching import (
    PERSON_COLUMNS,
    CsvRow,
    ExportFile,
    ExportFolder,
    MatchedSubject,
    RequestMatch,
    SubjectMatcher,
    combine_assessments,
)
from schemas.enums import MatchMethod, SubjectRole
from schemas.models import (
    AeAttendance,
    GpRegistration,
    HealthFindings,
    HealthVisitorInvolvement,
    HospitalAdmission,
    InformationRequest,
    MissedAppointment,
    Pregnancy,
)

__all__ = ["DATA_DIR", "EXPORT", "HealthAgency"]

DATA_DIR = Path(__file__).resolve().parent / "data"

EXPORT = (
    ExportFile("patients.csv", ("patient_id", *PERSON_COLUMNS, "nhs_number", "gp_practice")),
    ExportFile("admissions.csv", ("admission_id", "patient_id", "admitted_on", "reason")),
    ExportFile("ae_attendances.csv", ("attendance_id", "patient_id", "attended_on", "reason")),
    ExportFile("missed_appointments.csv", ("appointment_id", "patient_id", "due_on", "service")),
    ExportFile(
        "pregnancies.csv",
        (
            "pregnancy_id",
            "patient_id",
            "weeks",
            "expected_date_of_delivery",
            "previous_children_in_care",
            "booked_antenatal",
        ),
    ),
    ExportFile("health_visiting.csv", ("household_id", "team", "involvement")),
)
"""The files the adapter reads and the columns it needs (see ``data/README.md``)."""


@dataclass(frozen=True)
class _Event:
    """A dated entry against a patient: an admission, an attendance, a missed appointment."""

    event_id: str
    on: date
    what: str


@dataclass(frozen=True)
class _Pregnancy:
    weeks: int
    expected_date_of_delivery: date | None
    previous_children_in_care: bool
    booked_antenatal: bool


class HealthAgency:
    """Health records read from a folder of CSV exports, loaded once."""

    def __init__(self, data_dir: Path | None = None) -> None:
        export = ExportFolder(data_dir or DATA_DIR, EXPORT)
        self._patients = export.people("patients.csv", "patient_id")
        self._matcher = SubjectMatcher(
            self._patients.records.values(), strong_ids=(MatchMethod.NHS_NUMBER,)
        )
        self._registrations = {
            patient_id: (row.text("gp_practice"), row.optional_date("registered_since"))
            for patient_id, row in self._patients.rows.items()
        }
        self._admissions = self._events(
            export.rows("admissions.csv"), "admission_id", "admitted_on"
        )
        self._ae = self._events(export.rows("ae_attendances.csv"), "attendance_id", "attended_on")
        self._missed = self._events(
            export.rows("missed_appointments.csv"), "appointment_id", "due_on", "service"
        )
        self._pregnancies: dict[str, _Pregnancy] = {}
        for row in export.rows("pregnancies.csv"):
            self._pregnancies[self._patients.reference(row, "patient_id")] = _Pregnancy(
                weeks=row.integer("weeks"),
                expected_date_of_delivery=row.optional_date("expected_date_of_delivery"),
                previous_children_in_care=row.boolean("previous_children_in_care"),
                booked_antenatal=row.boolean("booked_antenatal"),
            )
        self._health_visiting = {
            row.text("household_id"): HealthVisitorInvolvement(
                team=row.text("team"), involvement=row.text("involvement")
            )
            for row in export.rows("health_visiting.csv")
        }

    @property
    def name(self) -> str:
        return "health"

    def lookup(self, request: InformationRequest) -> Lookup:
        result = self._matcher.match_all(request.subjects)
        if not result.matched:
            return Lookup(matches=result.matches)
        matched = result.matched
        registrations = []
        for m in matched:
            practice, since = self._registrations[m.record.record_id]
            registrations.append(
                GpRegistration(
                    subject_id=m.subject.subject_id, practice=practice, registered_since=since
                )
            )
        findings = HealthFindings(
            registrations=registrations,
            admissions=[
                HospitalAdmission(subject_id=subject_id, admitted_on=e.on, reason=e.what)
                for subject_id, e in _events_of(matched, self._admissions)
            ],
            ae_attendances=[
                AeAttendance(subject_id=subject_id, attended_on=e.on, reason=e.what)
                for subject_id, e in _events_of(matched, self._ae)
            ],
            missed_appointments=[
                MissedAppointment(subject_id=subject_id, due_on=e.on, service=e.what)
                for subject_id, e in _events_of(matched, self._missed)
            ],
            health_visitor=next(
                (
                    self._health_visiting[h]
                    for h in result.household_ids
                    if h in self._health_visiting
                ),
                None,
            ),
            pregnancy=self._pregnancy(request, result),
        )
        strengths, engagement, notes = combine_assessments(
            self._patients.assessments(result.household_ids)
        )
        return Lookup(
            matches=result.matches,
            findings=findings,
            strengths=strengths,
            engagement=engagement,
            engagement_notes=notes,
        )

    def _pregnancy(self, request: InformationRequest, result: RequestMatch) -> Pregnancy | None:
        unborn = any(s.role is SubjectRole.UNBORN for s in request.subjects)
        candidates = [m for m in result.by_priority() if m.record.record_id in self._pregnancies]
        if unborn:
            # The unborn baby's pregnancy is its mother's: look at the parents first.
            candidates.sort(key=lambda m: m.subject.role is not SubjectRole.PARENT)
        if not candidates:
            return None
        mother = candidates[0]
        found = self._pregnancies[mother.record.record_id]
        return Pregnancy(
            subject_id=mother.subject.subject_id,
            weeks=found.weeks,
            expected_date_of_delivery=found.expected_date_of_delivery,
            previous_children_in_care=found.previous_children_in_care,
            booked_antenatal=found.booked_antenatal,
        )

    def _events(
        self, rows: list[CsvRow], id_column: str, date_column: str, what_column: str = "reason"
    ) -> dict[str, list[_Event]]:
        events: dict[str, list[_Event]] = defaultdict(list)
        for row in rows:
            events[self._patients.reference(row, "patient_id")].append(
                _Event(row.text(id_column), row.required_date(date_column), row.text(what_column))
            )
        return events


def _events_of(
    matched: list[MatchedSubject], events: Mapping[str, list[_Event]]
) -> list[tuple[str, _Event]]:
    """Each matched subject's events, newest first, labelled with the request's subject id."""
    found = [
        (m.subject.subject_id, event)
        for m in matched
        for event in events.get(m.record.record_id, [])
    ]
    return sorted(found, key=lambda pair: (pair[1].on, pair[1].event_id), reverse=True)
