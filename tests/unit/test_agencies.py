"""The four agencies' lookups over their fictional exports, driven by the example contacts."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from stdnum.gb import nhs, upn

from adapters.education import EducationAgency
from adapters.health import HealthAgency
from adapters.housing import HousingAgency
from adapters.kit.agency import Agency, Lookup
from adapters.police import PoliceAgency
from schemas.codec import decode, encode
from schemas.enums import Brag, Consent, Engagement, LawfulBasis, MatchMethod
from schemas.models import (
    AvroModel,
    EducationFindings,
    HealthFindings,
    HousingFindings,
    InformationRequest,
    PoliceFindings,
    Subject,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "contacts"
ISSUED = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

DRUGS_WARRANT = "case-17-year-old-drugs-warrant.json"
UNBORN = "case-unborn-baby-gp.json"
NOBODY_KNOWS = "green-family-not-known.json"
ATTENDANCE = "green-school-attendance.json"
OVERCROWDING = "green-housing-overcrowding.json"

FINDINGS: dict[str, type[AvroModel]] = {
    "police": PoliceFindings,
    "health": HealthFindings,
    "education": EducationFindings,
    "housing": HousingFindings,
}
AGENCY_CLASSES: dict[str, Callable[[Path | None], Agency]] = {
    "police": PoliceAgency,
    "health": HealthAgency,
    "education": EducationAgency,
    "housing": HousingAgency,
}


def request_for(example: str, agency: str) -> InformationRequest:
    data = json.loads((EXAMPLES / example).read_text(encoding="utf-8"))
    return InformationRequest(
        request_id=f"req-{agency}",
        contact_ref="MASH-2026-000001",
        agency=agency,
        brag=Brag(data["brag"]),
        deadline=ISSUED + timedelta(hours=4),
        issued_at=ISSUED,
        concerns_summary=data["concerns_summary"],
        consent=Consent(data["consent"]),
        lawful_basis=LawfulBasis(data["lawful_basis"]),
        subjects=[Subject.model_validate(s) for s in data["subjects"]],
    )


@pytest.fixture(scope="module")
def agencies() -> dict[str, Agency]:
    return {name: make(None) for name, make in AGENCY_CLASSES.items()}


def ask(agencies: dict[str, Agency], example: str, agency: str) -> Lookup:
    return agencies[agency].lookup(request_for(example, agency))


M = TypeVar("M", bound=AvroModel)


def findings(lookup: Lookup, model: type[M]) -> M:
    assert isinstance(lookup.findings, model)
    return lookup.findings


def matched(lookup: Lookup) -> dict[str, MatchMethod]:
    return {m.subject_id: m.method for m in lookup.matches if m.matched}


# --- Who is known -----------------------------------------------------------------------


def test_each_agency_names_itself(agencies: dict[str, Agency]) -> None:
    assert {name: agency.name for name, agency in agencies.items()} == {
        name: name for name in AGENCY_CLASSES
    }


def test_a_family_nobody_knows_is_not_known_to_any_agency(agencies: dict[str, Agency]) -> None:
    for name in agencies:
        lookup = ask(agencies, NOBODY_KNOWS, name)

        assert not lookup.known, name
        assert lookup.findings is None and lookup.strengths == []
        assert lookup.engagement is Engagement.UNKNOWN
        assert all(m.method is MatchMethod.NONE and m.confidence == 0.0 for m in lookup.matches)
        assert [m.subject_id for m in lookup.matches] == ["child", "mother"]


def test_names_written_differently_from_the_export_still_match(
    agencies: dict[str, Agency],
) -> None:
    # The contact spells the stepfather "Carvor"; police hold "CARVER".
    police = ask(agencies, DRUGS_WARRANT, "police")
    stepfather = next(m for m in police.matches if m.subject_id == "stepfather")

    assert stepfather.matched and stepfather.method is MatchMethod.NAME_DOB_POSTCODE
    assert 0.70 <= stepfather.confidence < 0.95


def test_health_matches_by_nhs_number_and_education_by_upn(agencies: dict[str, Agency]) -> None:
    assert matched(ask(agencies, UNBORN, "health")) == {"mother": MatchMethod.NHS_NUMBER}
    assert matched(ask(agencies, ATTENDANCE, "education")) == {"child": MatchMethod.UPN}


# --- Case study 1: the 17-year-old after a drugs warrant --------------------------------


def test_police_know_the_young_person_for_gangs_and_the_stepfather_for_drugs(
    agencies: dict[str, Agency],
) -> None:
    lookup = ask(agencies, DRUGS_WARRANT, "police")
    police = findings(lookup, PoliceFindings)

    categories = {i.category for i in police.incidents if "young-person" in i.subject_ids}
    assert "Gang involvement" in categories and "Drugs warrant" in categories
    assert any("stepfather" in i.subject_ids for i in police.incidents)
    [risk] = police.adults_posing_risk
    assert risk.relationship == "stepfather" and "drug" in risk.risk_summary.lower()
    assert lookup.engagement is Engagement.DOES_NOT_ENGAGE


def test_health_holds_earlier_hospital_admissions_for_the_young_person(
    agencies: dict[str, Agency],
) -> None:
    health = findings(ask(agencies, DRUGS_WARRANT, "health"), HealthFindings)

    admissions = [a for a in health.admissions if a.subject_id == "young-person"]
    assert len(admissions) >= 2
    assert all(a.admitted_on < ISSUED.date() for a in admissions)


def test_housing_shows_younger_children_the_referrer_did_not_name(
    agencies: dict[str, Agency],
) -> None:
    housing = findings(ask(agencies, DRUGS_WARRANT, "housing"), HousingFindings)

    children = [m for m in housing.household_members if m.age is not None and m.age < 17]
    assert len(children) == 2
    assert {m.relationship for m in children} <= {"son", "daughter"}
    assert housing.tenancy is not None


def test_education_shows_the_young_person_and_the_younger_siblings_at_school(
    agencies: dict[str, Agency],
) -> None:
    education = findings(ask(agencies, DRUGS_WARRANT, "education"), EducationFindings)

    assert education.school is not None and education.school.year_group == 13
    assert any(e.kind.value == "PERMANENT" for e in education.exclusions)
    # The referrer did not name the younger half-siblings; education knows them.
    assert [(p.name, p.year_group) for p in education.household_pupils] == [
        ("Mia Carver", 6),
        ("Leo Carver", 2),
    ]
    mia = education.household_pupils[0]
    assert mia.school == "Larkspur Primary School"
    assert mia.safeguarding_concerns and "police" in mia.safeguarding_concerns[0].summary
    # The young person's own concerns are his alone.
    assert education.safeguarding_concerns
    assert all("police came" not in c.summary for c in education.safeguarding_concerns)


# --- Case study 2: the unborn baby ------------------------------------------------------


def test_health_returns_the_mothers_pregnancy_with_previous_children_in_care(
    agencies: dict[str, Agency],
) -> None:
    lookup = ask(agencies, UNBORN, "health")
    pregnancy = findings(lookup, HealthFindings).pregnancy

    assert pregnancy is not None
    assert pregnancy.subject_id == "mother" and pregnancy.weeks == 13
    assert pregnancy.previous_children_in_care and not pregnancy.booked_antenatal
    assert not next(m for m in lookup.matches if m.subject_id == "unborn").matched


def test_police_return_abuse_of_earlier_children_and_current_offending(
    agencies: dict[str, Agency],
) -> None:
    police = findings(ask(agencies, UNBORN, "police"), PoliceFindings)

    assert any(i.category == "Child cruelty" for i in police.incidents)
    assert any(i.occurred_on.year >= 2025 for i in police.incidents)
    assert [r.relationship for r in police.adults_posing_risk] == ["mother"]
    assert all(i.subject_ids == ["mother"] for i in police.incidents)


# --- Ordinary contacts ------------------------------------------------------------------


def test_school_attendance_case_returns_attendance_and_strengths(
    agencies: dict[str, Agency],
) -> None:
    lookup = ask(agencies, ATTENDANCE, "education")
    education = findings(lookup, EducationFindings)

    assert education.attendance_percent is not None and education.attendance_percent < 90
    assert lookup.strengths and lookup.engagement is Engagement.ENGAGES_WELL
    assert not ask(agencies, ATTENDANCE, "police").known


def test_overcrowding_case_returns_an_overcrowded_tenancy_with_arrears(
    agencies: dict[str, Agency],
) -> None:
    housing = findings(ask(agencies, OVERCROWDING, "housing"), HousingFindings)

    assert housing.overcrowded and housing.arrears_pounds
    assert len(housing.household_members) == 5
    assert housing.homelessness


# --- Contract ---------------------------------------------------------------------------


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_every_findings_model_round_trips_through_the_codec(
    agencies: dict[str, Agency], example: str
) -> None:
    for name, model in FINDINGS.items():
        lookup = ask(agencies, example, name)
        if lookup.findings is None:
            assert not lookup.known
            continue
        assert isinstance(lookup.findings, model)
        assert decode(encode(lookup.findings), model) == lookup.findings


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_findings_refer_only_to_the_requests_subject_ids(
    agencies: dict[str, Agency], example: str
) -> None:
    for name in agencies:
        request = request_for(example, name)
        lookup = agencies[name].lookup(request)
        ids = {s.subject_id for s in request.subjects}
        assert {m.subject_id for m in lookup.matches} == ids
        payload = lookup.findings.model_dump() if lookup.findings else {}
        assert _subject_ids_in(payload) <= ids


def _subject_ids_in(value: object) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "subject_id" and isinstance(item, str):
                found.add(item)
            elif key == "subject_ids" and isinstance(item, list):
                found.update(str(i) for i in item)
            else:
                found |= _subject_ids_in(item)
    elif isinstance(value, list):
        for item in value:
            found |= _subject_ids_in(item)
    return found


# --- Another household with the same names ----------------------------------------------

PLANTED = "PLANTED"


def _append(path: Path, **row: str) -> None:
    with path.open(newline="", encoding="utf-8") as handle:
        columns = next(csv.reader(handle))
    with path.open("a", newline="", encoding="utf-8") as handle:
        csv.DictWriter(handle, fieldnames=columns, lineterminator="\n").writerow(row)


def _plant_namesakes(agency: str, folder: Path) -> None:
    """A second Holloway/Carver family: same names and birthdays at another postcode, and a
    "Reese Holloway" born a year later at the real family's postcode."""
    elsewhere = {"postcode": "ZX1 1AB", "household_id": "ELSEWHERE"}
    same_street = {"postcode": "ZX4 7QD", "household_id": "NEXT-DOOR"}
    reece = {"given_name": "Reece", "family_name": "Holloway", "date_of_birth": "2009-07-26"}
    reese = {"given_name": "Reese", "family_name": "Holloway", "date_of_birth": "2010-07-26"}
    wayne = {"given_name": "Wayne", "family_name": "Carver", "date_of_birth": "1981-07-08"}
    sibling = {"given_name": PLANTED, "family_name": "Carver", "date_of_birth": "2017-01-01"}
    if agency == "police":
        _append(folder / "people.csv", person_id="X1", **reece, **elsewhere)
        _append(folder / "people.csv", person_id="X2", **wayne, **elsewhere)
        _append(folder / "people.csv", person_id="X3", **reese, **same_street)
        for person_id in ("X1", "X3"):
            _append(
                folder / "incidents.csv",
                incident_id=f"I-{person_id}",
                person_id=person_id,
                occurred_on="2025-01-01",
                category=PLANTED,
                summary=PLANTED,
            )
        _append(folder / "risk_adults.csv", person_id="X2", relationship=PLANTED, risk_summary="x")
        _append(
            folder / "call_outs.csv",
            call_out_id="C-X",
            household_id="ELSEWHERE",
            occurred_on="2025-01-01",
            reason=PLANTED,
            domestic_abuse="false",
        )
    elif agency == "health":
        common = {"gp_practice": PLANTED, "nhs_number": "9990000008"}
        _append(folder / "patients.csv", patient_id="X1", **reece, **elsewhere, **common)
        _append(folder / "patients.csv", patient_id="X3", **reese, **same_street, gp_practice="p")
        for patient_id in ("X1", "X3"):
            _append(
                folder / "admissions.csv",
                admission_id=f"A-{patient_id}",
                patient_id=patient_id,
                admitted_on="2025-01-01",
                reason=PLANTED,
            )
        _append(folder / "health_visiting.csv", household_id="ELSEWHERE", team="t", involvement="i")
    elif agency == "education":
        school = {"school": PLANTED, "year_group": "12", "attendance_percent": "99"}
        _append(folder / "pupils.csv", pupil_id="X1", **reece, **elsewhere, **school)
        _append(folder / "pupils.csv", pupil_id="X2", **sibling, **elsewhere, **school)
        _append(folder / "pupils.csv", pupil_id="X3", **reese, **same_street, **school)
        for pupil_id in ("X2", "X3"):
            _append(
                folder / "safeguarding.csv",
                concern_id=f"S-{pupil_id}",
                pupil_id=pupil_id,
                raised_on="2025-01-01",
                summary=PLANTED,
            )
    else:
        for resident_id, person in (("X1", reece), ("X2", wayne), ("X4", sibling)):
            _append(
                folder / "residents.csv",
                resident_id=resident_id,
                **person,
                **elsewhere,
                relationship="son",
                strengths=PLANTED,
            )
        _append(
            folder / "asb.csv",
            report_id="B-X",
            household_id="ELSEWHERE",
            reported_on="2025-01-01",
            summary=PLANTED,
        )


@pytest.mark.parametrize("agency", sorted(AGENCY_CLASSES))
def test_findings_never_include_a_namesake_from_another_household(
    agency: str, tmp_path: Path
) -> None:
    folder = tmp_path / agency
    shutil.copytree(ROOT / "adapters" / agency / "data", folder)
    _plant_namesakes(agency, folder)
    planted = AGENCY_CLASSES[agency](folder)

    lookup = planted.lookup(request_for(DRUGS_WARRANT, agency))

    assert lookup.known
    assert all(m.record_id is None or not m.record_id.startswith("X") for m in lookup.matches)
    assert PLANTED not in json.dumps(
        lookup.findings.model_dump(mode="json") if lookup.findings else {}
    )
    assert PLANTED not in " ".join(lookup.strengths)
    # The namesakes are live records: asked about by their own postcode, they are found.
    request = request_for(DRUGS_WARRANT, agency)
    moved = [
        s.model_copy(update={"postcode": "ZX1 1AB"}) if s.subject_id == "young-person" else s
        for s in request.subjects
    ]
    elsewhere = planted.lookup(request.model_copy(update={"subjects": moved}))
    assert next(m for m in elsewhere.matches if m.subject_id == "young-person").record_id == "X1"


# --- Exports ----------------------------------------------------------------------------


def test_a_bad_date_in_an_export_names_the_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "police"
    shutil.copytree(ROOT / "adapters" / "police" / "data", folder)
    lines = (folder / "incidents.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    cells = lines[3].split(",")
    cells[header.index("occurred_on")] = "31/12/2025"
    lines[3] = ",".join(cells)
    (folder / "incidents.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    with pytest.raises(ValueError, match=r"incidents\.csv, line 4, column 'occurred_on'"):
        PoliceAgency(folder)


def test_a_record_for_an_unknown_person_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "health"
    shutil.copytree(ROOT / "adapters" / "health" / "data", folder)
    _append(
        folder / "admissions.csv",
        admission_id="A-1",
        patient_id="NOBODY",
        admitted_on="2025-01-01",
        reason="x",
    )

    with pytest.raises(ValueError, match=r"admissions\.csv, line \d+, column 'patient_id'"):
        HealthAgency(folder)


def test_exports_hold_only_fictional_identifiers_and_zx_postcodes() -> None:
    data = ROOT / "adapters"
    patients = list(csv.DictReader((data / "health/data/patients.csv").open(encoding="utf-8")))
    pupils = list(csv.DictReader((data / "education/data/pupils.csv").open(encoding="utf-8")))

    assert all(nhs.is_valid(p["nhs_number"]) for p in patients)
    assert all(p["nhs_number"].startswith("999") for p in patients)
    assert all(upn.is_valid(p["upn"]) and p["upn"][1:4] == "302" for p in pupils)
    for path in data.glob("*/data/*.csv"):
        for row in csv.DictReader(path.open(encoding="utf-8")):
            if row.get("postcode"):
                assert row["postcode"].upper().startswith("ZX"), path.name


def test_the_generator_reproduces_the_committed_exports(tmp_path: Path) -> None:
    script = ROOT / "scripts" / "generate_fictional_records.py"
    subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path)], check=True, capture_output=True
    )

    for path in sorted((ROOT / "adapters").glob("*/data/*.csv")):
        fresh = tmp_path / path.relative_to(ROOT / "adapters")
        assert fresh.read_bytes() == path.read_bytes(), f"{path.name} is stale: rerun the script"
