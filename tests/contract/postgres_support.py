"""A PostgreSQL database of a test's own on the machine's server, loaded with the police
adapter's fictional records: what the police contract and SQL source tests read.

The server is ``MASH_TEST_POSTGRES_URL`` (default the local one, user ``postgres``); each
database has a unique name and is dropped at the end, whatever happened.
"""

from __future__ import annotations

import contextlib
import csv
import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from adapters.police.agency import DATA_DIR, SQL_DIR

__all__ = [
    "SERVER_URL",
    "conninfo",
    "load_police",
    "police_database",
    "postgres_database",
    "require_server",
]

SERVER_URL = os.environ.get(
    "MASH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)

# Each table of schema.sql: the CSV file its rows come from, and its columns in the CSV.
POLICE_TABLES: Mapping[str, tuple[str, Mapping[str, str]]] = {
    "nominal": (
        "people.csv",
        {
            "nominal_ref": "person_id",
            "forename": "given_name",
            "surname": "family_name",
            "born_on": "date_of_birth",
            "postcode": "postcode",
            "location_ref": "household_id",
            "strengths": "strengths",
            "engagement": "engagement",
            "engagement_notes": "engagement_notes",
        },
    ),
    "incident_nominal": (
        "incidents.csv",
        {
            "incident_ref": "incident_id",
            "nominal_ref": "person_id",
            "occurred_on": "occurred_on",
            "category": "category",
            "summary": "summary",
        },
    ),
    "call_out": (
        "call_outs.csv",
        {
            "cad_ref": "call_out_id",
            "location_ref": "household_id",
            "occurred_on": "occurred_on",
            "reason": "reason",
            "domestic_abuse": "domestic_abuse",
        },
    ),
    "risk_nominal": (
        "risk_adults.csv",
        {
            "nominal_ref": "person_id",
            "relationship": "relationship",
            "risk_summary": "risk_summary",
        },
    ),
    "restricted_intelligence": (
        "restricted_intelligence.csv",
        {
            "intelligence_ref": "intelligence_id",
            "nominal_ref": "person_id",
            "category": "category",
            "summary": "summary",
        },
    ),
}


def conninfo(url: str) -> str:
    """The libpq form of a SQLAlchemy URL, for psycopg itself."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def require_server() -> None:
    """Skip, saying why, where no PostgreSQL server answers (a machine without one)."""
    try:
        with psycopg.connect(conninfo(SERVER_URL), connect_timeout=5):
            pass
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server at MASH_TEST_POSTGRES_URL ({type(exc).__name__})")


@contextlib.contextmanager
def postgres_database(prefix: str = "mash_test") -> Iterator[str]:
    """A new, empty database; yields its SQLAlchemy URL and drops it at the end."""
    require_server()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(conninfo(SERVER_URL), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo(SERVER_URL), autocommit=True) as admin:
            # FORCE: an adapter's pooled connections may still be open.
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def load_police(url: str, data_dir: Path = DATA_DIR) -> None:
    """schema.sql, then every row of the police CSV export (an empty cell as NULL)."""
    with psycopg.connect(conninfo(url)) as connection:
        connection.execute((SQL_DIR / "schema.sql").read_text(encoding="utf-8"))
        for table, (file, columns) in POLICE_TABLES.items():
            with (data_dir / file).open(newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
            statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                sql.Identifier(table),
                sql.SQL(", ").join(sql.Identifier(c) for c in columns),
                sql.SQL(", ").join(sql.Placeholder() for _ in columns),
            )
            with connection.cursor() as cursor:
                values = [[row[column] or None for column in columns.values()] for row in rows]
                cursor.executemany(statement, values)


@contextlib.contextmanager
def police_database() -> Iterator[str]:
    """A database holding the police adapter's fictional records; yields its URL."""
    with postgres_database("mash_police") as url:
        load_police(url)
        yield url
