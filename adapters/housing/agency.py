"""Housing: residents, tenancies, homelessness approaches and anti-social behaviour.

Housing records carry no identifier shared with the other agencies, so people are matched
by name, date of birth and postcode (see ``adapters.kit.matching``). What is disclosed, on a
need-to-know basis:

- the tenancy of the child's household (the household of the first matched subject, children
  first), whether it is overcrowded and any arrears;
- everyone recorded as living there, with their age on the day of the request and their
  relationship to the lead tenant: this is how the MASH learns of children the referrer did
  not mention;
- homelessness approaches and anti-social behaviour reports of every matched household.

The export is the files in ``data/`` (columns in ``data/README.md``); a housing service
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
from schemas.enums import Tenure
from schemas.models import (
    AntiSocialBehaviourReport,
    HomelessnessApproach,
    HouseholdMember,
    HousingFindings,
    InformationRequest,
    Tenancy,
)

__all__ = ["DATA_DIR", "EXPORT", "HousingAgency"]

DATA_DIR = Path(__file__).resolve().parent / "data"

EXPORT = (
    ExportFile("residents.csv", ("resident_id", *PERSON_COLUMNS, "relationship")),
    ExportFile(
        "tenancies.csv",
        ("tenancy_id", "household_id", "tenure", "started_on", "address", "overcrowded"),
    ),
    ExportFile(
        "homelessness.csv", ("approach_id", "household_id", "presented_on", "reason", "outcome")
    ),
    ExportFile("asb.csv", ("report_id", "household_id", "reported_on", "summary")),
)
"""The files the adapter reads and the columns it needs (see ``data/README.md``)."""


@dataclass(frozen=True)
class _Tenancy:
    tenancy: Tenancy
    overcrowded: bool
    arrears_pounds: float | None


class HousingAgency:
    """Housing records read from a folder of CSV exports, loaded once."""

    def __init__(self, data_dir: Path | None = None) -> None:
        export = ExportFolder(data_dir or DATA_DIR, EXPORT)
        self._residents = export.people("residents.csv", "resident_id")
        self._matcher = SubjectMatcher(self._residents.records.values(), strong_ids=())
        self._relationships = {
            resident_id: row.text("relationship")
            for resident_id, row in self._residents.rows.items()
        }
        self._tenancies: dict[str, _Tenancy] = {}
        for row in export.rows("tenancies.csv"):
            household_id = row.text("household_id")
            if household_id in self._tenancies:
                raise row.error("household_id", "a second tenancy for the same household")
            self._tenancies[household_id] = _Tenancy(
                Tenancy(
                    tenure=row.choice("tenure", Tenure),
                    started_on=row.optional_date("started_on"),
                    address=row.text("address"),
                ),
                overcrowded=row.boolean("overcrowded"),
                arrears_pounds=row.optional_number("arrears_pounds"),
            )
        self._homelessness: dict[str, list[HomelessnessApproach]] = defaultdict(list)
        for row in export.rows("homelessness.csv"):
            self._homelessness[row.text("household_id")].append(
                HomelessnessApproach(
                    presented_on=row.required_date("presented_on"),
                    reason=row.text("reason"),
                    outcome=row.text("outcome"),
                )
            )
        self._asb: dict[str, list[AntiSocialBehaviourReport]] = defaultdict(list)
        for row in export.rows("asb.csv"):
            self._asb[row.text("household_id")].append(
                AntiSocialBehaviourReport(
                    reported_on=row.required_date("reported_on"), summary=row.text("summary")
                )
            )

    @property
    def name(self) -> str:
        return "housing"

    def lookup(self, request: InformationRequest) -> Lookup:
        result = self._matcher.match_all(request.subjects)
        if not result.matched:
            return Lookup(matches=result.matches)
        households = result.household_ids
        home = households[0]
        tenancy = self._tenancies.get(home)
        today: date = request.issued_at.date()
        members = [
            HouseholdMember(
                name=person.display_name,
                age=person.age_on(today),
                relationship=self._relationships[person.record_id],
            )
            # Oldest first, so the adults head the list as they do on a tenancy file.
            for person in sorted(self._residents.members([home]), key=_born)
        ]
        findings = HousingFindings(
            tenancy=tenancy.tenancy if tenancy else None,
            household_members=members,
            homelessness=sorted(
                (a for h in households for a in self._homelessness.get(h, [])),
                key=lambda a: a.presented_on,
                reverse=True,
            ),
            overcrowded=tenancy.overcrowded if tenancy else False,
            arrears_pounds=tenancy.arrears_pounds if tenancy else None,
            anti_social_behaviour=sorted(
                (r for h in households for r in self._asb.get(h, [])),
                key=lambda r: r.reported_on,
                reverse=True,
            ),
        )
        strengths, engagement, notes = combine_assessments(self._residents.assessments(households))
        return Lookup(
            matches=result.matches,
            findings=findings,
            strengths=strengths,
            engagement=engagement,
            engagement_notes=notes,
        )


def _born(person: PersonRecord) -> date:
    return person.date_of_birth or date.max
