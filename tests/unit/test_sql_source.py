"""The adapter kit's SQL record source: an agency's database read through its own queries,
read-only, with every parameter bound, and refused at start-up with one line per problem.

PostgreSQL tests use a database of their own on the machine's server (dropped at the end);
the SQLite ones a file in the test's folder.
"""

from __future__ import annotations

import csv
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from adapters.kit.matching import ExportError, read_csv
from adapters.kit.sources import SourceUnavailable
from adapters.kit.sources.sql import SqlSource, SqlView
from adapters.police.agency import DATA_DIR, EXPORT, SQL_DIR, PoliceAgency
from broker.consumer import TRANSIENT
from schemas.enums import Brag, Consent, LawfulBasis, SubjectRole
from schemas.models import InformationRequest, Subject
from tests.contract.postgres_support import (
    POLICE_TABLES,
    conninfo,
    police_database,
    postgres_database,
)

CONFIG = SQL_DIR / "police.toml"
URL_VARIABLE = "MASH_POLICE_DATABASE_URL"


def request_for(*subjects: Subject) -> InformationRequest:
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
        subjects=list(subjects),
    )


SOPHIA = Subject(
    subject_id="S1",
    role=SubjectRole.CHILD,
    given_name="Sophia",
    family_name="Martin",
    date_of_birth=date(2012, 4, 15),
    postcode="ZX3 5SP",
)


def config_with(tmp_path: Path, *replacements: tuple[str, str]) -> Path:
    """The sample police configuration with some of its text replaced."""
    text = CONFIG.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "police.toml"
    path.write_text(text, encoding="utf-8")
    return path


def source(config: Path, url: str) -> SqlSource:
    return SqlSource.from_file(config, {URL_VARIABLE: url})


def problems_opening(config: Path, url: str) -> list[str]:
    with pytest.raises(ExportError) as refused:
        PoliceAgency(source(config, url))
    return refused.value.problems


def count(url: str, table: str) -> int:
    with psycopg.connect(conninfo(url)) as connection:
        row = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture(scope="module")
def police_url() -> Iterator[str]:
    with police_database() as url:
        yield url


# --- Bound, never formatted in ---------------------------------------------------------------


def test_a_subjects_name_with_sql_metacharacters_is_bound_not_run(
    police_url: str, tmp_path: Path
) -> None:
    # A query that selects by name too, so the name really reaches the database.
    config = config_with(
        tmp_path,
        (
            "WHERE born_on IN :dates_of_birth OR",
            "WHERE born_on IN :dates_of_birth OR surname IN :family_names "
            "OR forename IN :given_names OR",
        ),
    )
    with psycopg.connect(conninfo(police_url)) as connection:
        connection.execute(
            "INSERT INTO nominal (nominal_ref, forename, surname, born_on, postcode, "
            "location_ref) VALUES ('PN999002', 'Siobhan', 'O''Brien', '2013-03-17', "
            "'ZX0 7AB', 'LOC999002')"
        )
    people_before = count(police_url, "nominal")
    agency = PoliceAgency(source(config, police_url))
    try:
        obrien = Subject(
            subject_id="S1",
            role=SubjectRole.CHILD,
            given_name="Siobhan",
            family_name="O'Brien",
            date_of_birth=date(2013, 3, 17),
            postcode="ZX0 7AB",
        )
        attack = obrien.model_copy(
            update={
                "given_name": "x') OR 1=1; --",
                "family_name": "'); DROP TABLE nominal; --",
                "date_of_birth": date(2013, 3, 18),
            }
        )

        found = agency.lookup(request_for(obrien))
        refused = agency.lookup(request_for(attack))

        assert found.known and found.matches[0].record_id == "PN999002"
        assert not refused.known and refused.findings is None
        assert count(police_url, "nominal") == people_before  # still there, every row
    finally:
        agency.close()
        with psycopg.connect(conninfo(police_url)) as connection:
            connection.execute("DELETE FROM nominal WHERE nominal_ref = 'PN999002'")


# --- Read-only ---------------------------------------------------------------------------------


def test_a_query_that_tries_to_write_is_refused_by_the_read_only_transaction(
    police_url: str, tmp_path: Path
) -> None:
    # Were the transaction not read-only, checking this query at start-up would delete every
    # incident (the DELETE is not limited by what is bound).
    config = config_with(
        tmp_path,
        (
            "SELECT incident_ref AS incident_id, nominal_ref AS person_id, occurred_on, "
            "category, summary\nFROM incident_nominal",
            "WITH gone AS (DELETE FROM incident_nominal RETURNING *)\n"
            "SELECT incident_ref AS incident_id, nominal_ref AS person_id, occurred_on, "
            "category, summary\nFROM gone",
        ),
    )
    before = count(police_url, "incident_nominal")

    problems = problems_opening(config, police_url)

    # PostgreSQL names the statement (a SELECT holding a DELETE) that it refused.
    [problem] = problems
    assert problem.startswith(f"{config}: [queries.incidents]: the database refused the query")
    assert problem.endswith("in a read-only transaction)")
    assert count(police_url, "incident_nominal") == before > 0


def test_an_sqlite_database_is_read_only_too(tmp_path: Path) -> None:
    url = sqlite_police(tmp_path)
    config = config_with(
        tmp_path,
        ('url_env = "MASH_POLICE_DATABASE_URL"', f'url = "{url}"'),
        (
            "SELECT nominal_ref AS person_id, relationship, risk_summary\nFROM risk_nominal\n"
            "WHERE nominal_ref IN :person_ids\nORDER BY nominal_ref, relationship",
            "DELETE FROM risk_nominal WHERE nominal_ref IN :person_ids OR 1 = 1 "
            "RETURNING nominal_ref AS person_id, relationship, risk_summary",
        ),
    )

    with pytest.raises(ExportError) as refused:
        PoliceAgency(SqlSource.from_file(config, {}))

    [problem] = refused.value.problems
    assert problem.startswith(f"{config}: [queries.risk_adults]: the database refused the query")
    assert "readonly" in problem
    with sqlite3.connect(tmp_path / "police.db") as connection:
        assert connection.execute("SELECT count(*) FROM risk_nominal").fetchone() == (8,)


# --- Any dialect ---------------------------------------------------------------------------


def sqlite_police(tmp_path: Path) -> str:
    """The police database in SQLite: the same schema and fictional rows."""
    path = tmp_path / "police.db"
    with sqlite3.connect(path) as connection:
        connection.executescript((SQL_DIR / "schema.sql").read_text(encoding="utf-8"))
        for table, (file, columns) in POLICE_TABLES.items():
            with (DATA_DIR / file).open(newline="", encoding="utf-8") as handle:
                rows = [[r[c] or None for c in columns.values()] for r in csv.DictReader(handle)]
            marks = ", ".join("?" for _ in columns)
            connection.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
            )
    return f"sqlite:///{path}"


def test_police_on_sqlite_answers_as_from_the_export(tmp_path: Path) -> None:
    url = sqlite_police(tmp_path)
    from_database = PoliceAgency(source(CONFIG, url))
    from_export = PoliceAgency()
    try:
        for person in read_csv(DATA_DIR / "people.csv")[:40]:
            born = person.get("date_of_birth")
            subject = SOPHIA.model_copy(
                update={
                    "given_name": person["given_name"],
                    "family_name": person["family_name"],
                    "date_of_birth": date.fromisoformat(born) if born else None,
                    "postcode": person.get("postcode"),
                }
            )
            request = request_for(subject)
            assert from_database.lookup(request) == from_export.lookup(request), person
    finally:
        from_database.close()


# --- Checked at start-up, one line per problem ----------------------------------------------


def test_a_result_without_a_needed_column_is_named_with_its_query(
    police_url: str, tmp_path: Path
) -> None:
    config = config_with(
        tmp_path,
        ("SELECT cad_ref AS call_out_id,", "SELECT cad_ref,"),
        ("nominal_ref AS person_id, relationship, risk_summary", "nominal_ref AS person_id"),
    )

    problems = problems_opening(config, police_url)

    assert problems == [
        f"{config}: [queries.call_outs]: the result has no column call_out_id (select it, or "
        "map it under [queries.call_outs.columns])",
        f"{config}: [queries.risk_adults]: the result has no column relationship, "
        "risk_summary (select it, or map it under [queries.risk_adults.columns])",
    ]


def test_an_unreachable_database_is_one_line_without_the_password(tmp_path: Path) -> None:
    url = "postgresql+psycopg://mash_reader:s3cret-pw@127.0.0.1:1/records"

    problems = problems_opening(CONFIG, url)

    [problem] = problems
    assert problem.startswith(f"{CONFIG}: cannot connect to the database (")
    assert "s3cret-pw" not in problem


def test_configuration_problems_are_all_listed_without_the_url(tmp_path: Path) -> None:
    secret = tmp_path / "url"
    secret.write_text("not a url with s3cret-pw in it\n")
    config = config_with(
        tmp_path,
        ('url_env = "MASH_POLICE_DATABASE_URL"', 'url_file = "url"'),
        ("WHERE location_ref IN :household_ids\nORDER BY cad_ref", "WHERE x = :call_out_ref"),
    )

    with pytest.raises(ExportError) as refused:
        SqlSource.from_file(config, {})

    assert refused.value.problems == [
        f"{config}: the database URL ({secret}) is not a URL SQLAlchemy reads "
        "(dialect+driver://user:password@host/database)",
        f"{config}: [queries.call_outs] uses :call_out_ref, which the adapter does not bind "
        "(it binds :dates_of_birth, :postcodes, :given_names, :family_names, :nhs_numbers, "
        ":upns, :la_child_ids, :person_ids, :household_ids)",
    ]
    assert "s3cret" not in "".join(refused.value.problems)


def test_queries_are_checked_against_what_the_adapter_reads(tmp_path: Path) -> None:
    config = config_with(
        tmp_path,
        ("[queries.risk_adults]", "[queries.risks]"),
        ("OR location_ref IN :household_ids", ""),
    )

    problems = problems_opening(config, "sqlite://")

    assert problems == [
        f"{config}: [queries.risks] is not a kind of record this adapter reads (it reads "
        "people, incidents, call_outs, risk_adults, restricted_intelligence)",
        f"{config}: [queries.people] must select people by the subjects' details (e.g. "
        "date_of_birth IN :dates_of_birth) and by their households (OR household_id IN "
        ":household_ids), or the adults living with a child are never found",
        f"{config}: no [queries.risk_adults] (its sql is required)",
    ]


def test_a_password_in_the_file_itself_is_refused(tmp_path: Path) -> None:
    config = config_with(
        tmp_path,
        ('url_env = "MASH_POLICE_DATABASE_URL"', 'url = "postgresql://u:pw@db/records"'),
    )

    with pytest.raises(ExportError) as refused:
        SqlSource.from_file(config, {})

    assert refused.value.problems == [
        f"{config}: [database] url holds a password: put the URL in a variable (url_env) or "
        "a secret file (url_file) instead"
    ]


def test_an_unset_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ExportError) as refused:
        SqlSource.from_file(CONFIG, {})

    assert refused.value.problems == [
        f"{CONFIG}: the variable MASH_POLICE_DATABASE_URL (url_env) is not set"
    ]


# --- A database that goes away ------------------------------------------------------------------


def test_a_database_that_goes_away_holds_the_request_without_naming_the_child() -> None:
    with postgres_database("mash_police_gone") as url:
        from tests.contract.postgres_support import load_police

        load_police(url)
        agency = PoliceAgency(source(CONFIG, url))
        assert agency.lookup(request_for(SOPHIA)).known
    # Dropped (with its connections) on leaving the block: the adapter is still running.
    try:
        with pytest.raises(SourceUnavailable) as unavailable:
            agency.lookup(request_for(SOPHIA))
    finally:
        agency.close()

    # Transient to the adapter's consumer: the request is held and retried, not dead-lettered.
    assert isinstance(unavailable.value, TRANSIENT)
    assert "Sophia" not in str(unavailable.value) and "2012" not in str(unavailable.value)


# --- mash adapter police --source sql --config FILE -------------------------------------------


def mash_adapter(*args: str, env: dict[str, str] | None = None) -> list[str]:
    process = subprocess.run(
        [sys.executable, "-m", "mash", "adapter", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        timeout=60,
    )
    assert process.returncode == 1, process.stderr.decode()
    assert process.stdout == b""
    assert b"Traceback" not in process.stderr
    return process.stderr.decode().splitlines()


def test_the_command_refuses_a_bad_url_in_one_line(tmp_path: Path) -> None:
    lines = mash_adapter(
        "police",
        "--source",
        "sql",
        "--config",
        str(CONFIG),
        env={URL_VARIABLE: "postgresql+psycopg://u:s3cret@127.0.0.1:5432:bad/x"},
    )

    assert lines == [
        f"error: police database: {CONFIG}: the database URL ($MASH_POLICE_DATABASE_URL) is "
        "not a URL SQLAlchemy reads (dialect+driver://user:password@host/database)"
    ]


def test_the_command_refuses_an_unreachable_database_in_one_line() -> None:
    lines = mash_adapter(
        "police",
        env={
            "MASH_POLICE_SOURCE": "sql",
            "MASH_POLICE_SQL_CONFIG": str(CONFIG),
            URL_VARIABLE: "postgresql+psycopg://mash_reader:s3cret@127.0.0.1:1/records",
        },
    )

    [line] = lines
    assert line.startswith(f"error: police database: {CONFIG}: cannot connect to the database")
    assert "s3cret" not in line


def test_the_command_refuses_a_missing_column_in_one_line(police_url: str, tmp_path: Path) -> None:
    config = config_with(tmp_path, ("SELECT cad_ref AS call_out_id,", "SELECT cad_ref,"))

    lines = mash_adapter(
        "police", "--source", "sql", "--config", str(config), env={URL_VARIABLE: police_url}
    )

    assert lines == [
        f"error: police database: {config}: [queries.call_outs]: the result has no column "
        "call_out_id (select it, or map it under [queries.call_outs.columns])"
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["police", "--source", "sql"], "--source sql needs --config FILE"),
        (["police", "--source", "oracle"], "--source must be csv or sql, not 'oracle'"),
        (["police", "--config", "x.toml"], "--config is for --source sql"),
        (["health", "--source", "sql", "--config", "x.toml"], "does not read a database"),
    ],
)
def test_the_command_says_what_is_wrong_with_its_options(args: list[str], expected: str) -> None:
    [line] = mash_adapter(*args)

    assert line.startswith("error: ") and expected in line


def test_the_command_reads_the_database_it_is_pointed_at(police_url: str) -> None:
    from mash.cli import _load_records

    os.environ[URL_VARIABLE] = police_url
    try:
        agency = _load_records("police", None, "sql", CONFIG)
    finally:
        del os.environ[URL_VARIABLE]
    assert isinstance(agency, PoliceAgency)
    try:
        assert isinstance(agency.view, SqlView)
        assert agency.lookup(request_for(SOPHIA)).known
    finally:
        agency.close()


def test_every_kind_of_police_record_has_a_query_in_the_sample() -> None:
    sample = SqlSource.from_file(CONFIG, {URL_VARIABLE: "sqlite://"})

    assert set(sample.queries) == {e.name.removesuffix(".csv") for e in EXPORT}


# --- mash adapter new NAME --source sql ---------------------------------------------------------


def test_a_new_adapter_with_the_sql_source_reads_its_sample_database(tmp_path: Path) -> None:
    from adapters.kit.scaffold import new_adapter

    package = new_adapter("youth-justice", tmp_path, source="sql")
    sql = package / "mash_adapter_youth_justice" / "sql"
    assert sorted(p.name for p in sql.iterdir()) == ["schema.sql", "source.toml"]
    assert "MASH_YOUTH_JUSTICE_DATABASE_URL" in (sql / "source.toml").read_text()

    # Its own test, as generated: the sample configuration over the sample database (SQLite)
    # answers everyone on the fictional export as the export does.
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_sql_source.py",
        ],
        cwd=package,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
            "PYTHONPATH": os.pathsep.join([str(package), str(Path(__file__).resolve().parents[2])]),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1].startswith("1 passed")


def test_a_new_adapter_reads_csv_unless_asked_for_sql(tmp_path: Path) -> None:
    from adapters.kit.scaffold import ScaffoldError, new_adapter

    package = new_adapter("youth-justice", tmp_path)

    assert not (package / "mash_adapter_youth_justice" / "sql").exists()
    assert not (package / "tests" / "test_sql_source.py").exists()
    with pytest.raises(ScaffoldError, match="--source must be csv or sql"):
        new_adapter("probation", tmp_path, source="oracle")
