"""Matching a request's subjects to an agency's records: right person, or nobody."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from stdnum.gb import nhs, upn

from adapters.education import EducationAgency
from adapters.kit import matching
from adapters.kit.matching import (
    SIMILARITY_THRESHOLD,
    ExportError,
    ExportFile,
    ExportFolder,
    PersonRecord,
    SubjectMatcher,
    check_export,
    normalise_name,
    parse_date,
    read_csv,
    read_rows,
)
from schemas.enums import Brag, Consent, LawfulBasis, MatchMethod, SubjectRole
from schemas.models import InformationRequest, Subject

NHS_A = "9994012347"
NHS_B = "9994012355"
UPN_A = "J302205720001"


def person(
    record_id: str = "R1",
    given: str = "Reece Anthony",
    family: str = "Holloway",
    born: date | None = date(2008, 11, 2),
    postcode: str | None = "ZX4 7QD",
    household: str = "H1",
    nhs_number: str | None = None,
    upn_value: str | None = None,
) -> PersonRecord:
    return PersonRecord(
        record_id=record_id,
        given_name=given,
        family_name=family,
        date_of_birth=born,
        postcode=postcode,
        household_id=household,
        nhs_number=nhs_number,
        upn=upn_value,
    )


def subject(
    given: str | None = "Reece",
    family: str | None = "Holloway",
    born: date | None = date(2008, 11, 2),
    postcode: str | None = "ZX4 7QD",
    nhs_number: str | None = None,
    upn_value: str | None = None,
    subject_id: str = "s1",
) -> Subject:
    return Subject(
        subject_id=subject_id,
        role=SubjectRole.CHILD,
        given_name=given,
        family_name=family,
        date_of_birth=born,
        postcode=postcode,
        nhs_number=nhs_number,
        upn=upn_value,
    )


def test_fictional_identifiers_used_here_are_valid() -> None:
    assert nhs.is_valid(NHS_A) and nhs.is_valid(NHS_B) and upn.is_valid(UPN_A)


def test_nhs_number_matches_with_full_confidence_when_birthday_and_name_corroborate_it() -> None:
    matcher = SubjectMatcher([person(nhs_number=NHS_A)], strong_ids=(MatchMethod.NHS_NUMBER,))

    # Another postcode (the family moved) does not matter once the identifier is corroborated.
    match, record = matcher.match(subject(postcode="ZX9 9AA", nhs_number="999 401 2347"))

    assert match.matched and match.method is MatchMethod.NHS_NUMBER
    assert match.confidence == 1.0 and match.record_id == "R1"
    assert match.identifier_conflict is None
    assert record is not None and record.record_id == "R1"


def test_upn_matches_for_an_agency_that_holds_upns() -> None:
    matcher = SubjectMatcher([person(upn_value=UPN_A)], strong_ids=(MatchMethod.UPN,))

    match, _ = matcher.match(subject(upn_value=UPN_A))

    assert match.matched and match.method is MatchMethod.UPN


@pytest.mark.parametrize(
    ("what", "details"),
    [
        ("another child's name and birthday", {"given": "Zak", "family": "Khan"}),
        ("a twin's name and the same birthday", {"given": "Amy"}),
        ("the birthday with day and month swapped", {"born": date(2008, 2, 11)}),
        ("only the family name shared", {"given": "Mia", "born": date(2009, 3, 1)}),
        ("no name or birthday to check it against", {"given": None, "born": None}),
    ],
)
@pytest.mark.parametrize("kind", [MatchMethod.NHS_NUMBER, MatchMethod.UPN, MatchMethod.LA_CHILD_ID])
def test_an_identifier_the_record_does_not_corroborate_is_a_conflict_not_a_match(
    what: str, details: dict[str, object], kind: MatchMethod
) -> None:
    held = {MatchMethod.NHS_NUMBER: NHS_A, MatchMethod.UPN: UPN_A, MatchMethod.LA_CHILD_ID: "LA77"}
    field = {MatchMethod.NHS_NUMBER: "nhs_number", MatchMethod.UPN: "upn"}.get(kind, "la_child_id")
    record = PersonRecord(
        record_id="R1",
        given_name="Ava",
        family_name="Holloway",
        date_of_birth=date(2008, 11, 2),
        postcode="ZX4 7QD",
        household_id="H1",
        **{field: held[kind]},
    )
    matcher = SubjectMatcher([record], strong_ids=(kind,))
    asked = subject(**{"given": "Ava", **details})  # type: ignore[arg-type]
    asked = asked.model_copy(update={field: held[kind]})

    match, found = matcher.match(asked)

    assert not match.matched, f"matched on {what}"
    assert found is None and match.record_id is None and match.confidence == 0.0
    assert match.identifier_conflict is kind


def test_another_pupils_upn_with_a_childs_details_discloses_nothing_and_flags_a_conflict() -> None:
    """The reported case: Zak Khan's request carried Isabella Green's UPN, and education
    answered KNOWN with her school, attendance, strengths and her brothers' names."""
    education = EducationAgency()
    zak = Subject(
        subject_id="S1",
        role=SubjectRole.CHILD,
        given_name="Zak",
        family_name="Khan",
        date_of_birth=date(2014, 1, 1),
        postcode="ZX1 1AA",
        upn="W302205713002",  # Isabella Green's
    )

    lookup = education.lookup(_request(zak))

    assert not lookup.known
    assert lookup.findings is None and lookup.strengths == []
    assert [(m.matched, m.record_id, m.identifier_conflict) for m in lookup.matches] == [
        (False, None, MatchMethod.UPN)
    ]


def test_a_pupils_own_upn_and_details_still_match() -> None:
    isabella = Subject(
        subject_id="S1",
        role=SubjectRole.CHILD,
        given_name="Isabella",
        family_name="Green",
        date_of_birth=date(2009, 2, 3),
        upn="W302205713002",
    )

    lookup = EducationAgency().lookup(_request(isabella))

    assert lookup.known and lookup.matches[0].method is MatchMethod.UPN


def test_a_sibling_with_a_conflicting_upn_does_not_open_the_household() -> None:
    # A parent the school does not hold, and a "sibling" carrying Jack Green's UPN under
    # another name: nothing about the Greens, brothers included, may come back.
    sibling = Subject(
        subject_id="S2",
        role=SubjectRole.SIBLING,
        given_name="Zak",
        family_name="Khan",
        date_of_birth=date(2018, 4, 6),
        upn="V302205722002",
    )

    lookup = EducationAgency().lookup(_request(sibling))

    assert not lookup.known and lookup.findings is None
    assert lookup.matches[0].identifier_conflict is MatchMethod.UPN


def _request(*subjects: Subject) -> InformationRequest:
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    return InformationRequest(
        request_id="req-1",
        contact_ref="MASH-2026-000001",
        agency="education",
        brag=Brag.AMBER,
        deadline=now + timedelta(hours=8),
        issued_at=now,
        concerns_summary="fictional",
        consent=Consent.GIVEN,
        lawful_basis=LawfulBasis.CONSENT,
        subjects=list(subjects),
    )


def test_an_identifier_the_agency_does_not_hold_is_not_used() -> None:
    matcher = SubjectMatcher([person(nhs_number=NHS_A)], strong_ids=())

    match, _ = matcher.match(subject(given=None, family=None, nhs_number=NHS_A))

    assert not match.matched


@pytest.mark.parametrize(
    ("given", "family", "postcode"),
    [
        ("Reece", "Holloway", "ZX4 7QD"),
        ("REECE", "HOLLOWAY", "zx47qd"),
        ("reece", "holloway", " ZX4  7QD "),
        ("Reese", "Holloway", "ZX4 7QD"),
        ("Reece Anthony", "Holloway", "ZX4 7QD"),
        ("Holloway", "Reece", "ZX4 7QD"),
    ],
)
def test_name_dob_and_postcode_match_despite_case_spacing_spelling_and_middle_names(
    given: str, family: str, postcode: str
) -> None:
    matcher = SubjectMatcher([person()])

    match, record = matcher.match(subject(given=given, family=family, postcode=postcode))

    assert match.matched and match.method is MatchMethod.NAME_DOB_POSTCODE
    assert 0.70 <= match.confidence <= 0.95
    assert record is not None and record.record_id == "R1"


def test_accents_hyphens_and_apostrophes_do_not_stop_a_match() -> None:
    matcher = SubjectMatcher(
        [
            person("Z", given="Zoe", family="Smith Jones", born=date(2013, 12, 1)),
            person("O", given="Sean", family="O'Brien", born=date(2012, 1, 1)),
        ]
    )

    zoe, _ = matcher.match(subject(given="Zoë", family="Smith-Jones", born=date(2013, 12, 1)))
    sean, _ = matcher.match(subject(given="Seán", family="OBrien", born=date(2012, 1, 1)))

    assert zoe.matched and zoe.record_id == "Z"
    assert sean.matched and sean.record_id == "O"


def test_normalised_names_drop_case_accents_and_punctuation() -> None:
    assert normalise_name("  ZOË  Smith-Jones ") == "zoe smith jones"
    assert normalise_name("O\u2019Brien") == "obrien"


def test_an_identical_name_is_more_certain_than_a_misspelt_one() -> None:
    matcher = SubjectMatcher([person()])

    exact, _ = matcher.match(subject(given="Reece"))
    misspelt, _ = matcher.match(subject(given="Reese"))

    assert exact.confidence == 0.95
    assert 0.70 <= misspelt.confidence < exact.confidence


@pytest.mark.parametrize(
    ("born", "postcode"),
    [(date(2008, 11, 3), "ZX4 7QD"), (date(2008, 11, 2), "ZX4 7QE")],
)
def test_a_wrong_date_of_birth_or_postcode_is_not_known(born: date, postcode: str) -> None:
    matcher = SubjectMatcher([person()])

    match, record = matcher.match(subject(born=born, postcode=postcode))

    assert not match.matched and match.method is MatchMethod.NONE
    assert match.confidence == 0.0 and match.record_id is None and record is None


def test_a_different_name_at_the_same_address_and_birthday_is_not_known() -> None:
    matcher = SubjectMatcher([person(given="Mia", family="Carver")])

    match, _ = matcher.match(subject(given="Reece", family="Holloway"))

    assert not match.matched


def test_twins_like_records_with_no_clear_winner_are_not_known() -> None:
    matcher = SubjectMatcher(
        [
            person("T1", given="Jayden", family="Smith"),
            person("T2", given="Jaiden", family="Smith"),
        ]
    )

    match, record = matcher.match(subject(given="Jaden", family="Smith"))

    assert not match.matched and record is None


def test_a_twin_named_exactly_is_told_apart_from_the_other() -> None:
    matcher = SubjectMatcher(
        [person("T1", given="Ava", family="Smith"), person("T2", given="Eva", family="Smith")]
    )

    match, _ = matcher.match(subject(given="Ava", family="Smith"))

    assert match.matched and match.record_id == "T1"


def test_duplicate_records_of_the_same_name_are_not_known() -> None:
    matcher = SubjectMatcher([person("A"), person("B")])

    match, _ = matcher.match(subject())

    assert not match.matched


def test_a_conflicting_nhs_number_is_not_known_even_when_everything_else_agrees() -> None:
    matcher = SubjectMatcher([person(nhs_number=NHS_A)], strong_ids=(MatchMethod.NHS_NUMBER,))

    match, _ = matcher.match(subject(nhs_number=NHS_B))

    assert not match.matched
    # The details point at a record with another NHS number: a person should look.
    assert match.identifier_conflict is MatchMethod.NHS_NUMBER


@pytest.mark.parametrize(("asked", "held"), [("Eva", "Ava"), ("Jake", "Jack")])
def test_a_twin_not_on_the_records_is_not_matched_to_the_other_by_name(
    asked: str, held: str
) -> None:
    # Same birthday and address, and 93 alike as full names: only the given names differ.
    matcher = SubjectMatcher([person("T2", given=held, family="Richardson")])

    match, _ = matcher.match(subject(given=asked, family="Richardson"))

    assert not match.matched


def test_an_nhs_number_unknown_to_the_agency_falls_back_to_name_when_the_record_has_none() -> None:
    matcher = SubjectMatcher([person()], strong_ids=(MatchMethod.NHS_NUMBER,))

    match, _ = matcher.match(subject(nhs_number=NHS_B))

    assert match.matched and match.method is MatchMethod.NAME_DOB_POSTCODE


def test_a_shared_nhs_number_in_the_agency_data_is_not_known() -> None:
    matcher = SubjectMatcher(
        [person("A", nhs_number=NHS_A), person("B", given="Mia", nhs_number=NHS_A)],
        strong_ids=(MatchMethod.NHS_NUMBER,),
    )

    match, _ = matcher.match(subject(nhs_number=NHS_A))

    assert not match.matched
    assert match.identifier_conflict is MatchMethod.NHS_NUMBER


@pytest.mark.parametrize(
    "partial",
    [
        {"given_name": None},
        {"family_name": None},
        {"date_of_birth": None},
        {"postcode": None},
    ],
)
def test_a_subject_without_name_birthday_or_postcode_is_not_known(
    partial: dict[str, None],
) -> None:
    matcher = SubjectMatcher([person()])

    match, _ = matcher.match(subject().model_copy(update=partial))

    assert not match.matched


def test_two_subjects_claiming_one_record_are_both_not_known() -> None:
    matcher = SubjectMatcher([person()])

    result = matcher.match_all([subject(subject_id="a"), subject(subject_id="b")])

    assert [m.matched for m in result.matches] == [False, False]
    assert result.matched == []


def test_match_all_answers_every_subject_in_order() -> None:
    matcher = SubjectMatcher([person()])

    result = matcher.match_all([subject(subject_id="x", given="Nobody"), subject(subject_id="y")])

    assert [m.subject_id for m in result.matches] == ["x", "y"]
    assert [m.matched for m in result.matches] == [False, True]
    assert result.household_ids == ["H1"]


def test_matching_stays_fast_with_thousands_of_records() -> None:
    first = date(1970, 1, 1)
    people = [
        person(f"R{i}", given=f"Name{i}", born=first + timedelta(days=i)) for i in range(20_000)
    ]
    matcher = SubjectMatcher(people, strong_ids=(MatchMethod.NHS_NUMBER,))
    subjects = [
        subject(given=f"Name{i}", born=first + timedelta(days=i)) for i in range(0, 20_000, 40)
    ]

    started = time.perf_counter()
    matches = [matcher.match(s)[0] for s in subjects]
    elapsed = time.perf_counter() - started

    assert all(m.matched for m in matches)
    assert elapsed < 2.0


def test_the_threshold_is_the_documented_one() -> None:
    assert SIMILARITY_THRESHOLD == 88.0
    assert matching.__doc__ is not None and "88" in matching.__doc__


def test_a_bad_date_names_file_line_and_column_but_not_the_value(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("id,date_of_birth\nA,2008-11-02\nB,02/11/2008\n", encoding="utf-8")

    rows = read_rows(path)
    with pytest.raises(ValueError) as raised:
        [row.required_date("date_of_birth") for row in rows]

    message = str(raised.value)
    assert "people.csv" in message and "line 3" in message and "date_of_birth" in message
    assert "02/11/2008" not in message


def test_parse_date_reads_iso_dates() -> None:
    assert parse_date("2026-03-02", path="x.csv", line=2, column="d") == date(2026, 3, 2)


def test_read_csv_leaves_empty_cells_out(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n1,,3\n", encoding="utf-8")

    assert read_csv(path) == [{"a": "1", "c": "3"}]


def test_a_missing_column_or_file_is_a_clear_value_error(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")

    with pytest.raises(ValueError, match="missing column"):
        read_rows(path, required=("a", "c"))
    with pytest.raises(ValueError, match="file not found"):
        read_rows(tmp_path / "absent.csv")


def test_an_export_folder_is_checked_whole_with_one_line_per_problem(tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text("person_id,given_name\n", encoding="utf-8")
    (tmp_path / "notes.csv").write_bytes("note\n\xe9t\xe9\n".encode("latin-1"))
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    files = (
        ExportFile("people.csv", ("person_id", "given_name", "family_name", "household_id")),
        ExportFile("events.csv", ("event_id",)),
        ExportFile("restricted.csv", ("category",), optional=True),  # absent, and allowed to be
        ExportFile("notes.csv", ("note",)),
        ExportFile("empty.csv", ("a",)),
    )

    with pytest.raises(ExportError) as refused:
        ExportFolder(tmp_path, files)

    assert refused.value.problems == [
        f"{tmp_path / 'people.csv'}, line 1: missing column(s) family_name, household_id",
        f"{tmp_path / 'events.csv'}: file not found",
        f"{tmp_path / 'notes.csv'}: not UTF-8 text",
        f"{tmp_path / 'empty.csv'}: empty, a header row is required",
    ]


def test_an_export_folder_that_is_not_there_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ExportError) as refused:
        check_export(tmp_path / "absent", (ExportFile("people.csv", ("person_id",)),))

    assert refused.value.problems == [f"{tmp_path / 'absent'}: no such folder"]
