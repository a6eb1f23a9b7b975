"""Children's social care, the fifth agency: its lookup over the fictional export, driven by
the example contacts, and the records a screening officer needs from it."""

from __future__ import annotations

import csv
import shutil
from datetime import date
from pathlib import Path

import pytest

from adapters.registry import installed_agencies, load_agency
from adapters.social_care import SocialCareAgency
from adapters.social_care.agency import DATA_DIR
from broker.settings import DEFAULT_AGENCIES
from schemas.codec import decode, encode
from schemas.enums import AllocationRole, CaseType, MatchMethod, SubjectRole
from schemas.models import InformationRequest, SocialCareFindings, Subject
from tests.unit.test_agencies import ATTENDANCE, NOBODY_KNOWS, OVERCROWDING, request_for

BABY = "red-baby-unexplained-bruising.json"


@pytest.fixture(scope="module")
def social_care() -> SocialCareAgency:
    return SocialCareAgency()


def ask(agency: SocialCareAgency, request: InformationRequest) -> SocialCareFindings:
    lookup = agency.lookup(request)
    assert isinstance(lookup.findings, SocialCareFindings)
    return lookup.findings


def rows(name: str) -> list[dict[str, str]]:
    with (DATA_DIR / name).open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def child_request(person: dict[str, str], **ids: str | None) -> InformationRequest:
    """A request naming one child of the export, by the identifiers given."""
    base = request_for(NOBODY_KNOWS, "social-care")
    subject = Subject(
        subject_id="child",
        role=SubjectRole.CHILD,
        given_name=person["given_name"],
        family_name=person["family_name"],
        date_of_birth=date.fromisoformat(person["date_of_birth"]),
        postcode=ids.pop("postcode", person["postcode"]),
        **ids,
    )
    return base.model_copy(update={"subjects": [subject]})


def test_social_care_is_installed_but_not_asked_unless_configured() -> None:
    assert installed_agencies()["social-care"] == "adapters.social_care:SocialCareAgency"
    assert load_agency("social-care")().name == "social-care"
    assert "social-care" not in DEFAULT_AGENCIES


def test_a_child_with_a_lead_professional_comes_back_with_the_worker_and_earlier_contacts(
    social_care: SocialCareAgency,
) -> None:
    findings = ask(social_care, request_for(ATTENDANCE, "social-care"))

    [worker] = findings.allocated_workers
    assert (worker.subject_id, worker.role) == ("child", AllocationRole.LEAD_PROFESSIONAL)
    assert worker.name and worker.team
    assert [c.case_type for c in findings.open_cases] == [CaseType.EARLY_HELP]
    # Two earlier contacts from school about attendance, newest first: a pattern.
    assert [(c.source, c.category) for c in findings.contacts] == [("School", "Attendance")] * 2
    assert findings.contacts[0].received_on > findings.contacts[1].received_on


def test_a_child_known_only_for_an_earlier_contact_has_no_allocated_worker(
    social_care: SocialCareAgency,
) -> None:
    findings = ask(social_care, request_for(BABY, "social-care"))

    assert findings.allocated_workers == []
    assert [(c.subject_id, c.category) for c in findings.contacts] == [("baby", "Domestic abuse")]


@pytest.mark.parametrize("example", [NOBODY_KNOWS, OVERCROWDING])
def test_a_family_social_care_never_met_is_not_known(
    social_care: SocialCareAgency, example: str
) -> None:
    lookup = social_care.lookup(request_for(example, "social-care"))
    assert not lookup.known
    assert lookup.findings is None


def test_a_child_is_matched_by_the_local_authority_child_id_wherever_they_now_live(
    social_care: SocialCareAgency,
) -> None:
    person = next(p for p in rows("people.csv") if p["la_child_id"])
    request = child_request(person, la_child_id=person["la_child_id"], postcode="ZX1 9ZZ")

    [match] = social_care.lookup(request).matches
    assert match.matched
    assert match.method is MatchMethod.LA_CHILD_ID
    assert match.confidence == 1.0


def test_child_protection_plans_current_and_past_are_returned(
    social_care: SocialCareAgency,
) -> None:
    people = {p["person_id"]: p for p in rows("people.csv")}
    plan = next(p for p in rows("plans.csv") if people[p["person_id"]]["la_child_id"])
    person = people[plan["person_id"]]

    findings = ask(social_care, child_request(person, la_child_id=person["la_child_id"]))

    assert plan["category"] in {p.category.value for p in findings.protection_plans}
    ended = {p.ended_on for p in findings.protection_plans}
    assert (date.fromisoformat(plan["ended_on"]) if plan["ended_on"] else None) in ended


def test_every_allocated_child_in_the_export_gets_its_worker_back(
    social_care: SocialCareAgency,
) -> None:
    people = {p["person_id"]: p for p in rows("people.csv")}
    allocations = rows("allocations.csv")
    assert len(allocations) >= 5
    for allocation in allocations:
        person = people[allocation["person_id"]]
        findings = ask(social_care, child_request(person, la_child_id=person["la_child_id"]))
        assert [(w.name, w.team) for w in findings.allocated_workers] == [
            (allocation["worker_name"], allocation["team"])
        ]


def test_social_care_findings_round_trip_through_the_codec(
    social_care: SocialCareAgency,
) -> None:
    findings = ask(social_care, request_for(ATTENDANCE, "social-care"))
    assert decode(encode(findings), SocialCareFindings) == findings


def test_a_second_allocated_worker_for_one_child_is_refused_naming_file_and_line(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "data"
    shutil.copytree(DATA_DIR, folder)
    allocations = (folder / "allocations.csv").read_text(encoding="utf-8").splitlines()
    (folder / "allocations.csv").write_text(
        "\n".join([*allocations, allocations[1]]) + "\n", encoding="utf-8"
    )

    with pytest.raises(ValueError) as refused:
        SocialCareAgency(folder)
    assert f"allocations.csv, line {len(allocations) + 1}, column 'person_id'" in str(refused.value)
