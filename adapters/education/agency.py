"""Education: pupils on roll, attendance, exclusions, safeguarding concerns and SEN.

Education matches by Unique Pupil Number first and falls back to name, date of birth and
postcode (see ``adapters.kit.matching``). ``EducationFindings`` describes one pupil, and
the other pupils who live with them:

- the placement, attendance, exclusions, safeguarding concerns and special educational
  needs are those of the first matched child (CHILD before SIBLING, in request order);
- ``household_pupils`` lists every other pupil in a matched household, oldest first, with
  their year, school and safeguarding concerns. Younger siblings at school are part of the
  risk picture even when the referrer did not know they exist.

The export is the files in ``data/`` (columns in ``data/README.md``); a local authority
replaces them with its own export in the same shape.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from adapters.kit.agency import Lookup
from adapters.kit.matching import (
    PERSON_COLUMNS,
    ExportFile,
    ExportFolder,
    PersonRecord,
    SubjectMatcher,
    combine_assessments,
)
from schemas.enums import ExclusionKind, MatchMethod, SenProvision
from schemas.models import (
    EducationFindings,
    Exclusion,
    HouseholdPupil,
    InformationRequest,
    SafeguardingConcern,
    SchoolPlacement,
    SpecialEducationalNeeds,
)

__all__ = ["DATA_DIR", "EXPORT", "EducationAgency"]

DATA_DIR = Path(__file__).resolve().parent / "data"

EXPORT = (
    ExportFile(
        "pupils.csv",
        ("pupil_id", *PERSON_COLUMNS, "upn", "school", "year_group", "attendance_percent"),
    ),
    ExportFile(
        "exclusions.csv", ("exclusion_id", "pupil_id", "excluded_on", "kind", "days", "reason")
    ),
    ExportFile("safeguarding.csv", ("concern_id", "pupil_id", "raised_on", "summary")),
    ExportFile("sen.csv", ("pupil_id", "provision", "needs")),
)
"""The files the adapter reads and the columns it needs (see ``data/README.md``)."""


@dataclass(frozen=True)
class _Pupil:
    school: str
    year_group: int | None
    attendance_percent: float | None


@dataclass(frozen=True)
class _Concern:
    concern_id: str
    raised_on: date
    summary: str


class EducationAgency:
    """Education records read from a folder of CSV exports, loaded once."""

    def __init__(self, data_dir: Path | None = None) -> None:
        export = ExportFolder(data_dir or DATA_DIR, EXPORT)
        self._pupils = export.people("pupils.csv", "pupil_id")
        self._matcher = SubjectMatcher(self._pupils.records.values(), strong_ids=(MatchMethod.UPN,))
        self._placements = {
            pupil_id: _Pupil(
                school=row.text("school"),
                year_group=row.optional_integer("year_group"),
                attendance_percent=row.optional_number("attendance_percent"),
            )
            for pupil_id, row in self._pupils.rows.items()
        }
        self._exclusions: dict[str, list[Exclusion]] = defaultdict(list)
        for row in export.rows("exclusions.csv"):
            self._exclusions[self._pupils.reference(row, "pupil_id")].append(
                Exclusion(
                    excluded_on=row.required_date("excluded_on"),
                    kind=row.choice("kind", ExclusionKind),
                    days=row.optional_integer("days") or 0,
                    reason=row.text("reason"),
                )
            )
        self._concerns: dict[str, list[_Concern]] = defaultdict(list)
        for row in export.rows("safeguarding.csv"):
            self._concerns[self._pupils.reference(row, "pupil_id")].append(
                _Concern(
                    row.text("concern_id"), row.required_date("raised_on"), row.text("summary")
                )
            )
        self._sen: dict[str, SpecialEducationalNeeds] = {}
        for row in export.rows("sen.csv"):
            self._sen[self._pupils.reference(row, "pupil_id")] = SpecialEducationalNeeds(
                provision=row.choice("provision", SenProvision), needs=row.text("needs")
            )

    @property
    def name(self) -> str:
        return "education"

    def lookup(self, request: InformationRequest) -> Lookup:
        result = self._matcher.match_all(request.subjects)
        if not result.matched:
            return Lookup(matches=result.matches)
        pupil_id = result.by_priority()[0].record.record_id
        placement = self._placements[pupil_id]
        others = sorted(
            (p for p in self._pupils.members(result.household_ids) if p.record_id != pupil_id),
            key=_born,
        )
        findings = EducationFindings(
            school=SchoolPlacement(name=placement.school, year_group=placement.year_group),
            attendance_percent=placement.attendance_percent,
            exclusions=sorted(
                self._exclusions.get(pupil_id, []), key=lambda e: e.excluded_on, reverse=True
            ),
            safeguarding_concerns=self._concerns_of(pupil_id),
            sen=self._sen.get(pupil_id),
            household_pupils=[
                HouseholdPupil(
                    name=other.display_name,
                    year_group=self._placements[other.record_id].year_group,
                    school=self._placements[other.record_id].school,
                    safeguarding_concerns=self._concerns_of(other.record_id),
                )
                for other in others
            ],
        )
        strengths, engagement, notes = combine_assessments(
            self._pupils.assessments(result.household_ids)
        )
        return Lookup(
            matches=result.matches,
            findings=findings,
            strengths=strengths,
            engagement=engagement,
            engagement_notes=notes,
        )

    def _concerns_of(self, pupil_id: str) -> list[SafeguardingConcern]:
        """The pupil's safeguarding concerns, most recent first."""
        concerns = sorted(
            self._concerns.get(pupil_id, []), key=lambda c: (c.raised_on, c.concern_id)
        )[::-1]
        return [SafeguardingConcern(raised_on=c.raised_on, summary=c.summary) for c in concerns]


def _born(person: PersonRecord) -> date:
    return person.date_of_birth or date.max
