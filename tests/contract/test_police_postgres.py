"""The police adapter reading the force's database (PostgreSQL) instead of CSV exports keeps
the same contract, and answers exactly as from the export.

The database is created on the machine's server for this module, loaded with the same
fictional rows as ``adapters/police/data/`` through the tables of
``adapters/police/sql/schema.sql`` (the force's own names: nominals, locations), read through
the sample configuration ``adapters/police/sql/police.toml``, and dropped at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from adapters.kit.agency import Agency
from adapters.kit.matching import read_csv
from adapters.kit.sources.sql import SqlSource, SqlView
from adapters.police.agency import DATA_DIR, SQL_DIR, PoliceAgency
from schemas.enums import Brag, Consent, LawfulBasis, SubjectRole
from schemas.models import InformationRequest, Subject
from tests.contract.postgres_support import conninfo, police_database
from tests.contract.test_police import TestPoliceContract as _CsvContract

CONFIG = SQL_DIR / "police.toml"


@pytest.fixture(scope="module")
def police_url() -> Iterator[str]:
    with police_database() as url:
        yield url


def police_on(url: str) -> PoliceAgency:
    return PoliceAgency(SqlSource.from_file(CONFIG, {"MASH_POLICE_DATABASE_URL": url}))


def dispose(agency: PoliceAgency) -> None:
    agency.close()  # the engine's pool, closed before the database is dropped


class TestPolicePostgresContract(_CsvContract):
    """Every test of the police contract, the adapter reading PostgreSQL."""

    @pytest.fixture(scope="class")
    @classmethod
    def agency_records(cls, police_url: str) -> Iterator[Agency | None]:
        agency = police_on(police_url)
        # The contract must not quietly fall back to the CSV export.
        assert isinstance(agency.view, SqlView)
        yield agency
        dispose(agency)


def request_for(subject: Subject) -> InformationRequest:
    issued = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    return InformationRequest(
        request_id="req-1",
        contact_ref="MASH-2026-000001",
        agency="police",
        brag=Brag.AMBER,
        deadline=issued + timedelta(hours=4),
        issued_at=issued,
        concerns_summary="A fictional concern.",
        consent=Consent.GIVEN,
        lawful_basis=LawfulBasis.CONSENT,
        subjects=[subject],
    )


def test_every_person_gets_the_same_answer_from_the_database_as_from_the_export(
    police_url: str,
) -> None:
    from_export = PoliceAgency()
    from_database = police_on(police_url)
    try:
        people = read_csv(DATA_DIR / "people.csv")
        known = 0
        for person in people:
            born = person.get("date_of_birth")
            subject = Subject(
                subject_id="S1",
                role=SubjectRole.CHILD,
                given_name=person["given_name"],
                family_name=person["family_name"],
                date_of_birth=date.fromisoformat(born) if born else None,
                postcode=person.get("postcode"),
            )
            request = request_for(subject)

            expected = from_export.lookup(request)
            got = from_database.lookup(request)

            assert got == expected, f"{person['person_id']} is answered differently"
            known += expected.known
        # Not a comparison of two empty answers: nearly everyone is on the records.
        assert known >= len(people) * 0.9
    finally:
        dispose(from_database)


def test_a_record_added_to_the_database_is_answered_without_a_restart(police_url: str) -> None:
    newcomer = Subject(
        subject_id="S1",
        role=SubjectRole.CHILD,
        given_name="Tamsin",
        family_name="Quarrendon",
        date_of_birth=date(2015, 6, 21),
        postcode="ZX0 4QQ",
    )
    agency = police_on(police_url)
    try:
        assert not agency.lookup(request_for(newcomer)).known
        with psycopg.connect(conninfo(police_url)) as connection:
            connection.execute(
                "INSERT INTO nominal (nominal_ref, forename, surname, born_on, postcode, "
                "location_ref) VALUES ('PN999001', 'Tamsin', 'Quarrendon', '2015-06-21', "
                "'ZX0 4QQ', 'LOC999001')"
            )

        lookup = agency.lookup(request_for(newcomer))

        assert lookup.known
        assert lookup.matches[0].record_id == "PN999001"
    finally:
        dispose(agency)
        with psycopg.connect(conninfo(police_url)) as connection:
            connection.execute("DELETE FROM nominal WHERE nominal_ref = 'PN999001'")
